//! Day-two administration under /v1: people listed by page and erased, a tenant shown and
//! removed, a client shown and removed. Admin keys only.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use resetd_core::model::{Lookup, Tenant};
use resetd_core::ports::PeoplePage;
use resetd_core::types::{ClientName, Email, InvalidInput, Login};
use resetd_core::CoreError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{admin, client_json, person_id, person_json, tenant, ApiResult};
use crate::problem::{Path, Problem, Query};
use crate::AppState;

/// The page size when `?limit=` is absent.
const DEFAULT_LIMIT: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PeopleQuery {
    login: Option<String>,
    email: Option<String>,
    q: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /v1/{tenant}/people`: with `?login=` or `?email=`, the one person it names (as before);
/// otherwise a page in number order, `?q=` searching login, email and display name.
pub(super) async fn find_or_list(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(t): Path<String>,
    Query(q): Query<PeopleQuery>,
) -> ApiResult {
    let t = tenant(&t)?;
    admin(&s, &t, &headers).await?;
    let listing = q.q.is_some() || q.after.is_some() || q.limit.is_some();
    let lookup = match (q.login, q.email, listing) {
        (Some(l), None, false) => Lookup::login(&Login::parse(&l)?),
        (None, Some(e), false) => Lookup::email(&Email::parse(&e)?),
        (None, None, _) => {
            let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
            let page = PeoplePage::parse(q.after.unwrap_or(0), limit, q.q.as_deref())?;
            let people = s.service.list_people(&t, &page).await?;
            let now = s.service.now();
            let next = (people.len() as u32 == limit)
                .then(|| people.last().map(|p| p.number))
                .flatten();
            let items: Vec<Value> = people.iter().map(|p| person_json(p, now)).collect();
            return Ok(Json(json!({ "items": items, "next_after": next })).into_response());
        }
        (Some(_), Some(_), _) => {
            return Err(InvalidInput::new("login", "give exactly one of ?login= or ?email=").into())
        }
        (Some(_), None, true) | (None, Some(_), true) => {
            return Err(InvalidInput::new(
                "login",
                "?login= and ?email= find one person: list with ?q=, ?after= and ?limit= instead",
            )
            .into())
        }
    };
    let items = match s.service.find_person(&t, &lookup).await {
        Ok(p) => vec![person_json(&p, s.service.now())],
        Err(CoreError::NotFound(_)) => vec![],
        Err(e) => return Err(e.into()),
    };
    Ok(Json(json!({ "items": items })).into_response())
}

/// `DELETE /v1/{tenant}/people/{id}`: erases the person (204); unknown or erased already: 404.
pub(super) async fn erase_person(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    s.service.erase_person(&t, &person_id(&id)?, &actor).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn tenant_json(t: &Tenant) -> Value {
    json!({"id": t.id, "settings": t.settings, "created_at": t.created_at.rfc3339()})
}

/// `GET /v1/{tenant}`: the tenant and its settings.
pub(super) async fn show_tenant(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(t): Path<String>,
) -> ApiResult {
    let t = tenant(&t)?;
    admin(&s, &t, &headers).await?;
    let found = s.service.tenant(&t).await?;
    Ok(Json(tenant_json(&found)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveQuery {
    #[serde(default)]
    force: bool,
}

/// `DELETE /v1/{tenant}[?force=true]`: removes the tenant, its people only with `force`.
pub(super) async fn remove_tenant(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(t): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    match s.service.remove_tenant(&t, q.force, &actor).await {
        Ok(removed) => Ok(Json(json!({"id": t, "people_erased": removed.people})).into_response()),
        // The one conflict of this call: the people it would erase.
        Err(CoreError::Conflict(_)) => Err(Problem::new(
            StatusCode::CONFLICT,
            "tenant-has-people",
            "Tenant Has People",
            "The tenant has people; add ?force=true to erase them with it.",
        )),
        Err(e) => Err(e.into()),
    }
}

fn client_name(raw: &str) -> Result<ClientName, Problem> {
    // A name that cannot be registered names no client.
    ClientName::parse(raw).map_err(|_| Problem::from(CoreError::NotFound("client")))
}

/// `GET /v1/{tenant}/clients/{name}`.
pub(super) async fn show_client(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((t, name)): Path<(String, String)>,
) -> ApiResult {
    let t = tenant(&t)?;
    admin(&s, &t, &headers).await?;
    let name = client_name(&name)?;
    match s.service.client(&t, &name).await {
        Ok(c) => Ok(Json(client_json(&c)).into_response()),
        Err(CoreError::UnknownClient) => Err(CoreError::NotFound("client").into()),
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /v1/{tenant}/clients/{name}`: 204; unknown: 404.
pub(super) async fn remove_client(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((t, name)): Path<(String, String)>,
) -> ApiResult {
    let t = tenant(&t)?;
    let actor = admin(&s, &t, &headers).await?;
    s.service
        .remove_client(&t, &client_name(&name)?, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
