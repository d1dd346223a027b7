//! The hosted reset page: the default client that reset links point to
//! (`{public_url}/reset/{tenant}?token=…`), and a "forgot password" page. Server-rendered HTML
//! that works without JavaScript; `page.js` only adds a live strength hint.
//!
//! Flow: `GET /reset/{t}?token=T` stores T in a cookie and answers `303` to `/reset/{t}`, so the
//! token leaves the address bar and history; `GET /reset/{t}` shows the form (or why the link is
//! no longer usable); `POST /reset/{t}` re-renders the form with every problem at once (`422`) or
//! answers `303` to `/reset/{t}/done`. `GET/POST /forgot/{t}` always ends on the same
//! confirmation, `/forgot/{t}/sent`. Security measures are in [`guard`]; see also docs/page.md.

mod forgot;
mod guard;
mod locale;
mod render;

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Form, Router};
use minijinja::Value;
use resetd_core::model::Tenant;
use resetd_core::policy::Verdict;
use resetd_core::secret::ResetSecret;
use resetd_core::service::TokenInfo;
use resetd_core::types::{Password, TenantId, PASSWORD_MAX_CHARS};
use resetd_core::CoreError;
use serde::Deserialize;

pub use guard::CSP;
pub use render::{PageError, PageOptions, Pages};

use crate::surface::{Effect, Limit, SurfaceError};
use crate::{AppState, ClientIp};
use forgot::{forgot_page, forgot_sent, forgot_submit};
use guard::Cookies;
use locale::Language;

/// The surface's name in logs.
const PAGE: &str = "page";

/// The page routes, and `/assets/` for their stylesheet and script.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/reset/{tenant}",
            get(reset_page)
                .post(reset_submit)
                .fallback(method_not_allowed),
        )
        .route(
            "/reset/{tenant}/done",
            get(reset_done).fallback(method_not_allowed),
        )
        .route(
            "/forgot/{tenant}",
            get(forgot_page)
                .post(forgot_submit)
                .fallback(method_not_allowed),
        )
        .route(
            "/forgot/{tenant}/sent",
            get(forgot_sent).fallback(method_not_allowed),
        )
        .route("/reset/{tenant}/{*rest}", any(not_found))
        .route("/forgot/{tenant}/{*rest}", any(not_found))
        .route("/reset/{tenant}/", any(not_found))
        .route("/forgot/{tenant}/", any(not_found))
        .route("/reset", any(not_found))
        .route("/reset/", any(not_found))
        .route("/forgot", any(not_found))
        .route("/forgot/", any(not_found))
        .layer(axum::middleware::map_response(
            |mut res: Response| async move {
                guard::secure(&mut res);
                res
            },
        ))
        .route("/assets/{file}", get(asset))
}

/// The page's answer to a request that ran past the request timeout: the "busy" page with
/// `Retry-After`, in the language the browser asks for (no tenant is looked up: the database may
/// be what is slow).
pub fn timeout_answer(state: AppState) -> crate::body::TimeoutAnswer {
    std::sync::Arc::new(move |headers: &HeaderMap| {
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let language = locale::negotiate(None, accept, None, state.pages.languages(""));
        let public_url = &state.service.config().public_url;
        let origin = guard::origin_of(public_url);
        let v = Visit {
            state: state.clone(),
            base: public_url[origin.len()..].trim_end_matches('/').to_owned(),
            origin: origin.to_owned(),
            cookies: Cookies::for_public_url(public_url),
            tenant: Err(CoreError::UnknownTenant),
            language,
            token_param: None,
            malformed: false,
            on_forgot: false,
        };
        let mut res = v.surface_failure(SurfaceError::timeout());
        guard::secure(&mut res);
        res
    })
}

// ---- the request's context ----------------------------------------------------------------------

/// The query parameters the pages read; others are ignored.
#[derive(Deserialize, Default)]
struct VisitQuery {
    token: Option<String>,
    locale: Option<String>,
}

/// Everything a page handler needs to know about the request before doing its work: the tenant
/// (if it exists), the language, where the service lives, and how to name cookies.
struct Visit {
    state: AppState,
    tenant: Result<Tenant, CoreError>,
    language: Language,
    /// The path of the public URL (`""` at the root); every link starts with it.
    base: String,
    /// `scheme://host[:port]` of the public URL, for the same-origin check.
    origin: String,
    cookies: Cookies,
    /// `?token=` on the first load.
    token_param: Option<String>,
    /// A malformed query or path, answered with a 400 page once the language is known.
    malformed: bool,
    /// The request is for the forgot-password form (a CSRF failure offers to reload that one).
    on_forgot: bool,
}

impl FromRequestParts<AppState> for Visit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut malformed = false;
        let query = axum::extract::Query::<VisitQuery>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_else(|_| {
                malformed = true;
                VisitQuery::default()
            });
        let raw_tenant =
            axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state)
                .await
                .ok()
                .and_then(|p| p.0.into_iter().find(|(k, _)| k == "tenant").map(|(_, v)| v));
        let tenant = match raw_tenant.as_deref().map(TenantId::parse) {
            Some(Ok(id)) => state.service.tenant(&id).await,
            Some(Err(_)) | None => Err(CoreError::UnknownTenant),
        };
        let scope = tenant.as_ref().map(|t| t.id.as_str()).unwrap_or("");
        let accept = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let default_locale = tenant
            .as_ref()
            .ok()
            .map(|t| t.settings.default_locale.as_str());
        let language = locale::negotiate(
            query.locale.as_deref(),
            accept,
            default_locale,
            state.pages.languages(scope),
        );
        let public_url = &state.service.config().public_url;
        let origin = guard::origin_of(public_url);
        Ok(Visit {
            state: state.clone(),
            base: public_url[origin.len()..].trim_end_matches('/').to_owned(),
            origin: origin.to_owned(),
            cookies: Cookies::for_public_url(public_url),
            tenant,
            language,
            token_param: query.token,
            malformed,
            on_forgot: false,
        })
    }
}

/// The error pages, each with its status and strings `error_{status}_heading`/`_text`.
#[derive(Debug, Clone, Copy)]
enum Failure {
    BadRequest,
    /// The CSRF check failed; the page offers to reload the form.
    Forbidden,
    NotFound,
    MethodNotAllowed,
    TooLarge,
    /// The form did not arrive within the body deadline.
    Timeout,
    UnsupportedMedia,
    RateLimited(i64),
    /// Overloaded or the database unavailable: retry after this many seconds.
    Busy(i64),
    Internal,
}

impl Failure {
    fn status(self) -> StatusCode {
        match self {
            Failure::BadRequest => StatusCode::BAD_REQUEST,
            Failure::Forbidden => StatusCode::FORBIDDEN,
            Failure::NotFound => StatusCode::NOT_FOUND,
            Failure::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Failure::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Failure::Timeout => StatusCode::REQUEST_TIMEOUT,
            Failure::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Failure::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Failure::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Why the reset form cannot be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    /// No token cookie: the page was opened without the link (or cookies are blocked).
    Missing,
    /// The token is expired, used, superseded or was never issued.
    Unusable,
}

/// Form errors, in the order they are shown: `(field id, message)`.
#[derive(Default)]
struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    fn push(&mut self, field: &'static str, message: String) {
        self.0.push((field, message));
    }

    fn on(&self, field: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
            .collect()
    }

    fn summary(&self) -> Vec<Value> {
        self.0
            .iter()
            .map(|(f, m)| minijinja::context! { field => *f, message => m })
            .collect()
    }
}

/// A `{placeholder}` substitution in a page string.
fn fill(text: &str, key: &str, value: impl std::fmt::Display) -> String {
    text.replace(&format!("{{{key}}}"), &value.to_string())
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// Whether a `?token=` value is worth storing (a token's alphabet and at most 64 characters);
/// anything else is stored as a marker that shows the "link no longer valid" page.
fn storable_token(raw: &str) -> &str {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        raw
    } else {
        "invalid"
    }
}

impl Visit {
    fn tenant_name(&self) -> &str {
        self.tenant.as_ref().map(|t| t.id.as_str()).unwrap_or("")
    }

    fn string(&self, key: &str) -> String {
        self.state
            .pages
            .strings(self.tenant_name(), &self.language.lang)
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_owned())
    }

    fn reset_path(&self) -> String {
        format!("{}/reset/{}", self.base, self.tenant_name())
    }

    fn forgot_path(&self) -> String {
        format!("{}/forgot/{}", self.base, self.tenant_name())
    }

    /// The tenant, or the response for a request that cannot go on (malformed or unknown).
    fn checked_tenant(&self) -> Result<Tenant, Box<Response>> {
        if self.malformed {
            return Err(Box::new(self.failure(Failure::BadRequest)));
        }
        match &self.tenant {
            Ok(t) => Ok(t.clone()),
            Err(e) => Err(Box::new(self.core_failure(e.clone()))),
        }
    }

    fn render(&self, status: StatusCode, page: &str, ctx: Value) -> Response {
        match self.state.pages.render(
            &self.base,
            self.tenant_name(),
            &self.language.lang,
            page,
            ctx,
        ) {
            Ok(body) => html(status, body),
            Err(e) => {
                tracing::error!(error = %e, page, "a page could not be rendered");
                html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!DOCTYPE html><title>Error</title><h1>Something went wrong</h1>".into(),
                )
            }
        }
    }

    fn failure(&self, f: Failure) -> Response {
        let status = f.status();
        let code = status.as_u16();
        let mut message = self.string(&format!("error_{code}_text"));
        if let Failure::RateLimited(secs) = f {
            message = fill(&message, "seconds", secs);
        }
        let (back_url, back_label) = match f {
            Failure::Forbidden => (
                Some(self.language_query_on(&self.current_form_path())),
                self.string("reload"),
            ),
            Failure::BadRequest if self.tenant.is_ok() => (
                Some(self.language_query_on(&self.forgot_path())),
                self.string("back_to_start"),
            ),
            _ => (None, String::new()),
        };
        let ctx = minijinja::context! {
            heading => self.string(&format!("error_{code}_heading")),
            message => message,
            back_url => back_url,
            back_label => back_label,
        };
        let mut res = self.render(status, "error", ctx);
        if let Failure::RateLimited(secs) | Failure::Busy(secs) = f {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res
    }

    /// Marks the request as one for the forgot-password form.
    fn on_forgot_page(&mut self) {
        self.on_forgot = true;
    }

    /// The form a CSRF failure offers to reload.
    fn current_form_path(&self) -> String {
        if self.on_forgot {
            self.forgot_path()
        } else {
            self.reset_path()
        }
    }

    fn language_query_on(&self, path: &str) -> String {
        format!("{path}{}", self.language.query())
    }

    fn core_failure(&self, e: CoreError) -> Response {
        match e {
            CoreError::UnknownTenant | CoreError::NotFound(_) => self.failure(Failure::NotFound),
            CoreError::Invalid(_) => self.failure(Failure::BadRequest),
            CoreError::Overloaded => self.surface_failure(SurfaceError::overloaded()),
            CoreError::Unavailable(cause) => self.surface_failure(SurfaceError::database(&cause)),
            CoreError::Internal(msg) => self.surface_failure(SurfaceError::internal(PAGE, &msg)),
            // The page's calls never raise these, or the handler answers them first (a gone
            // token, the policy's verdict): arriving here is a bug.
            e @ (CoreError::Conflict(_)
            | CoreError::UnknownClient
            | CoreError::LinkNotAllowed
            | CoreError::MessageErased
            | CoreError::KeyRevoked
            | CoreError::KeyExpired
            | CoreError::Disabled
            | CoreError::CoolingDown { .. }
            | CoreError::TokenGone
            | CoreError::Policy(_)
            | CoreError::BadCredentials
            | CoreError::Locked { .. }
            | CoreError::Unauthenticated
            | CoreError::Forbidden) => self.surface_failure(SurfaceError::internal(PAGE, &e)),
        }
    }

    fn surface_failure(&self, e: SurfaceError) -> Response {
        match e {
            SurfaceError::Limited { retry_after } => {
                self.failure(Failure::RateLimited(retry_after))
            }
            SurfaceError::Unavailable(why) => self.failure(Failure::Busy(why.retry_after())),
            SurfaceError::Internal => self.failure(Failure::Internal),
        }
    }

    fn form_rejection(&self, r: &FormRejection) -> Response {
        if crate::body::timed_out(r) {
            return self.failure(Failure::Timeout);
        }
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => self.failure(Failure::TooLarge),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => self.failure(Failure::UnsupportedMedia),
            _ => self.failure(Failure::BadRequest),
        }
    }

    /// A CSRF value for a form being rendered; sets the cookie on `res` when it is new.
    fn csrf(&self, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
        let (value, fresh) = self.cookies.csrf_value(headers);
        let set = fresh.then(|| self.cookies.set_csrf(&value));
        (value, set)
    }

    fn gone(&self, why: Gone) -> Response {
        let status = match why {
            Gone::Missing => StatusCode::BAD_REQUEST,
            Gone::Unusable => StatusCode::GONE,
        };
        let ctx = minijinja::context! {
            reason => if why == Gone::Missing { "missing" } else { "gone" },
            forgot_url => self.language_query_on(&self.forgot_path()),
        };
        let mut res = self.render(status, "reset_gone", ctx);
        if why == Gone::Unusable {
            res.headers_mut().append(
                header::SET_COOKIE,
                self.cookies.clear_token(&self.reset_path()),
            );
        }
        res
    }

    /// The reset form with `errors` next to their fields (and in a summary that takes focus).
    fn reset_form(
        &self,
        headers: &HeaderMap,
        status: StatusCode,
        info: &TokenInfo,
        errors: &FieldErrors,
    ) -> Response {
        let (csrf, set_cookie) = self.csrf(headers);
        let minutes = (self.state.service.now().secs_until(info.expires_at) + 59) / 60;
        let ctx = minijinja::context! {
            login => info.login.as_str(),
            min_length => info.min_password_length,
            expires_in_minutes => minutes,
            csrf => csrf,
            action => self.language_query_on(&self.reset_path()),
            check_url => format!("{}/v1/{}/password/check", self.base, self.tenant_name()),
            errors => errors.summary(),
            password_errors => errors.on("password"),
            confirm_errors => errors.on("confirm"),
        };
        let mut res = self.render(status, "reset_form", ctx);
        if let Some(c) = set_cookie {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
        res
    }

    /// The reset form again, saying the server is busy, when a transient failure stopped the
    /// change (the person keeps what they typed in mind and retries).
    fn busy_form(&self, headers: &HeaderMap, info: &TokenInfo, e: SurfaceError) -> Response {
        let SurfaceError::Unavailable(why) = e else {
            return self.surface_failure(e);
        };
        let mut errors = FieldErrors::default();
        errors.push("password", self.string("busy"));
        let mut res = self.reset_form(headers, StatusCode::SERVICE_UNAVAILABLE, info, &errors);
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(why.retry_after()));
        res
    }

    /// The forgot-password form.
    fn forgot_form(
        &self,
        headers: &HeaderMap,
        status: StatusCode,
        errors: &FieldErrors,
    ) -> Response {
        let (csrf, set_cookie) = self.csrf(headers);
        let ctx = minijinja::context! {
            csrf => csrf,
            action => self.language_query_on(&self.forgot_path()),
            errors => errors.summary(),
            login_errors => errors.on("login"),
        };
        let mut res = self.render(status, "forgot_form", ctx);
        if let Some(c) = set_cookie {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
        res
    }

    /// The policy's violations in the page's language (the core's English text for codes the
    /// string tables do not know).
    fn violations(&self, verdict: &Verdict, min_length: usize, errors: &mut FieldErrors) {
        for v in &verdict.violations {
            let key = format!("violation_{}", v.code);
            let text = self
                .state
                .pages
                .strings(self.tenant_name(), &self.language.lang)
                .get(&key)
                .map(|s| fill(&fill(s, "min", min_length), "max", PASSWORD_MAX_CHARS))
                .unwrap_or_else(|| v.message.clone());
            errors.push("password", text);
        }
    }
}

// ---- reset ----------------------------------------------------------------------------------------

async fn reset_page(v: Visit, headers: HeaderMap) -> Response {
    let tenant = match v.checked_tenant() {
        Ok(t) => t,
        Err(res) => return *res,
    };
    if let Some(raw) = &v.token_param {
        // First load from the emailed link: keep the token, drop it from the address bar.
        let mut res = see_other(&v.language_query_on(&v.reset_path()));
        let cookie = v.cookies.set_token(
            &v.reset_path(),
            storable_token(raw),
            tenant.settings.token_ttl_secs,
        );
        res.headers_mut().append(header::SET_COOKIE, cookie);
        return res;
    }
    let secret = match v.cookies.token(&headers) {
        None => return v.gone(Gone::Missing),
        Some(raw) => match ResetSecret::parse(raw) {
            Ok(s) => s,
            Err(_) => return v.gone(Gone::Unusable),
        },
    };
    match v.state.service.inspect_token(&tenant.id, &secret).await {
        Ok(info) => v.reset_form(&headers, StatusCode::OK, &info, &FieldErrors::default()),
        Err(CoreError::TokenGone) => v.gone(Gone::Unusable),
        Err(e) => v.core_failure(e),
    }
}

/// The reset form's fields; others (a `username` for password managers) are ignored.
#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf: String,
}

async fn reset_submit(
    v: Visit,
    ip: ClientIp,
    headers: HeaderMap,
    form: Result<Form<ResetForm>, FormRejection>,
) -> Response {
    let tenant = match v.checked_tenant() {
        Ok(t) => t,
        Err(res) => return *res,
    };
    let form = match form {
        Ok(Form(f)) => f,
        Err(r) => return v.form_rejection(&r),
    };
    if !v.cookies.form_is_genuine(&headers, &form.csrf, &v.origin) {
        return v.failure(Failure::Forbidden);
    }
    if let Err(e) = v.state.admit(PAGE, Limit::Auth, ip) {
        return v.surface_failure(e);
    }
    let secret = match v.cookies.token(&headers) {
        None => return v.gone(Gone::Missing),
        Some(raw) => match ResetSecret::parse(raw) {
            Ok(s) => s,
            Err(_) => return v.gone(Gone::Unusable),
        },
    };
    let service = &v.state.service;
    let info = match service.inspect_token(&tenant.id, &secret).await {
        Ok(info) => info,
        Err(CoreError::TokenGone) => return v.gone(Gone::Unusable),
        Err(e) => return v.core_failure(e),
    };
    let mut errors = FieldErrors::default();
    let min = info.min_password_length;
    let matches = form.password == form.confirm;
    match Password::parse(&form.password) {
        Err(_) => {
            let text = fill(&v.string("violation_too_long"), "max", PASSWORD_MAX_CHARS);
            errors.push("password", text);
        }
        Ok(password) if matches => {
            let ip_text = ip.text();
            let done = v.state.run(
                Effect::ResetCompleted,
                service.complete_reset(&tenant.id, &secret, &password, ip_text.as_deref()),
            );
            match done.await {
                Ok(_) => {
                    let mut res =
                        see_other(&v.language_query_on(&format!("{}/done", v.reset_path())));
                    res.headers_mut()
                        .append(header::SET_COOKIE, v.cookies.clear_token(&v.reset_path()));
                    return res;
                }
                Err(CoreError::Policy(verdict)) => v.violations(&verdict, min, &mut errors),
                Err(CoreError::TokenGone) => return v.gone(Gone::Unusable),
                Err(CoreError::Overloaded) => {
                    return v.busy_form(&headers, &info, SurfaceError::overloaded())
                }
                Err(CoreError::Unavailable(cause)) => {
                    return v.busy_form(&headers, &info, SurfaceError::database(&cause))
                }
                Err(e) => return v.core_failure(e),
            }
        }
        Ok(password) => {
            // Report the policy's verdict together with the mismatch, so one round trip shows all.
            match service
                .check_reset_password(&tenant.id, &secret, &password)
                .await
            {
                Ok(verdict) => v.violations(&verdict, min, &mut errors),
                Err(CoreError::TokenGone) => return v.gone(Gone::Unusable),
                Err(e) => return v.core_failure(e),
            }
        }
    }
    if !matches {
        errors.push("confirm", v.string("confirm_mismatch"));
    }
    v.reset_form(&headers, StatusCode::UNPROCESSABLE_ENTITY, &info, &errors)
}

async fn reset_done(v: Visit) -> Response {
    if let Err(res) = v.checked_tenant() {
        return *res;
    }
    v.render(StatusCode::OK, "reset_done", minijinja::context! {})
}

// ---- everything else --------------------------------------------------------------------------------

async fn not_found(v: Visit) -> Response {
    v.failure(Failure::NotFound)
}

async fn method_not_allowed(v: Visit, uri: axum::http::Uri) -> Response {
    if let Err(res) = v.checked_tenant() {
        return *res;
    }
    let mut res = v.failure(Failure::MethodNotAllowed);
    // The confirmation pages only show; the two forms also take posts.
    let only_get = uri.path().ends_with("/done") || uri.path().ends_with("/sent");
    let allow = if only_get {
        "GET, HEAD"
    } else {
        "GET, HEAD, POST"
    };
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}

/// The stylesheet and script: no secrets, so cached for a year (links carry a content version).
async fn asset(
    State(s): State<AppState>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    match s.pages.asset(&file) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            a.body.to_string(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
