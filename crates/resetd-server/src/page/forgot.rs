//! "Forgot password": the form, its submission (the same confirmation whether or not anyone has
//! the login or address, so the page tells nobody who has an account) and the confirmation.

use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use resetd_core::model::Lookup;
use resetd_core::types::{Email, Login};
use serde::Deserialize;

use super::{see_other, Failure, FieldErrors, Visit, PAGE};
use crate::surface::{Effect, Limit};
use crate::ClientIp;

pub(super) async fn forgot_page(v: Visit, headers: HeaderMap) -> Response {
    if let Err(res) = v.checked_tenant() {
        return *res;
    }
    v.forgot_form(&headers, StatusCode::OK, &FieldErrors::default())
}

/// The forgot-password form's fields.
#[derive(Deserialize)]
pub(super) struct ForgotForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    csrf: String,
}

pub(super) async fn forgot_submit(
    mut v: Visit,
    ip: ClientIp,
    headers: HeaderMap,
    form: Result<Form<ForgotForm>, FormRejection>,
) -> Response {
    v.on_forgot_page();
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
    if let Err(e) = v.state.admit(PAGE, Limit::Recovery, ip) {
        return v.surface_failure(e);
    }
    let input = form.login.trim();
    let lookup = if input.is_empty() {
        Err("forgot_empty")
    } else {
        Email::parse(input)
            .map(|e| Lookup::email(&e))
            .or_else(|_| Login::parse(input).map(|l| Lookup::login(&l)))
            .map_err(|_| "forgot_invalid")
    };
    let lookup = match lookup {
        Ok(l) => l,
        Err(key) => {
            let mut errors = FieldErrors::default();
            errors.push("login", v.string(key));
            return v.forgot_form(&headers, StatusCode::UNPROCESSABLE_ENTITY, &errors);
        }
    };
    let requested = v.state.run(
        Effect::ResetRequested,
        v.state
            .service
            .request_reset(&tenant.id, lookup, None, v.language.locale(), ip.text()),
    );
    match requested.await {
        Ok(()) => see_other(&v.language_query_on(&format!("{}/sent", v.forgot_path()))),
        Err(e) => v.core_failure(e),
    }
}

pub(super) async fn forgot_sent(v: Visit) -> Response {
    let tenant = match v.checked_tenant() {
        Ok(t) => t,
        Err(res) => return *res,
    };
    let ctx = minijinja::context! {
        expires_in_minutes => (tenant.settings.token_ttl_secs + 59) / 60,
        cooldown_secs => tenant.settings.cooldown_secs,
        forgot_url => v.language_query_on(&v.forgot_path()),
    };
    v.render(StatusCode::OK, "forgot_sent", ctx)
}
