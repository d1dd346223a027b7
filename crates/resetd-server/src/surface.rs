//! What every HTTP surface (the native API, each dialect, the hosted page) does around its one
//! use case, written once: take a token from the caller's bucket (per IP and surface for an
//! anonymous caller, per API key for an authenticated server-to-server one), call the core, wake
//! the worker that finishes the job and count it. A handler says *which* limit and *which* effect;
//! this module knows what that means, so a new surface cannot forget a wake-up or a counter.
//!
//! [`SurfaceError`] holds the outcomes that are the same on every surface whatever the vendor:
//! refused by a limit, unavailable for now, or broken on our side. Each surface words them in its
//! own envelope (`From<SurfaceError>`), and each `CoreError` mapping reaches them through
//! [`SurfaceError::overloaded`], [`SurfaceError::database`] and [`SurfaceError::internal`], which
//! also log what must be logged, once.
//!
//! Some answers depend on the time: a Retry-After computed from a moment (a lock's end, a
//! cool-down's end), Alfresco's dated error number. An error value cannot read the service's
//! clock when it becomes a response, so it leaves a [`Clocked`] writer in the response, and
//! [`stamp`], one layer over the public router, writes it with `service.now()`.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use resetd_core::error::{RETRY_OVERLOADED_SECS, RETRY_UNAVAILABLE_SECS};
use resetd_core::model::Timestamp;
use resetd_core::CoreError;

use crate::ratelimit::KeyLimiter;
use crate::{AppState, ClientIp};

/// Which per-IP bucket a request draws from (each surface has its own of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Asking for a reset email (`http.recovery_per_minute`).
    Recovery,
    /// Guessing a secret: a login, a new password with a token, or credentials that failed
    /// (`http.auth_per_minute`).
    Auth,
    /// An anonymous password policy check, milliseconds of CPU each (`http.password_check_per_minute`).
    PasswordCheck,
}

/// What a use case that succeeded leaves for the background workers and the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A reset request was recorded: the reset worker resolves it. Counted as requested.
    ResetRequested,
    /// A reset link was issued with its email at once (a trusted caller's send): the mailer
    /// sends it. Counted as requested.
    LinkSent,
    /// A reset was completed with a token: the mailer sends the "password changed" notice.
    /// Counted as completed.
    ResetCompleted,
    /// Email was queued (an administrator's set, a message sent again): the mailer sends it.
    MailQueued,
    /// A login: counted as succeeded, or as failed when the pair was wrong or the account locked.
    Login,
}

/// A surface's outcome that is not about the request's content, the same on every surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurfaceError {
    /// A per-IP or per-key limit refused the request; retry after this many seconds (at least 1).
    Limited {
        /// Seconds until the bucket has a token again.
        retry_after: i64,
    },
    /// resetd cannot answer for now; the client should retry after [`Unavailable::retry_after`].
    Unavailable(Unavailable),
    /// Something went wrong on resetd's side; it was logged, and the answer says nothing more.
    Internal,
}

/// Why resetd cannot answer for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The password hashing pool is full (a flood sheds here rather than grow memory).
    Overloaded,
    /// The database cannot serve (locked, full, restarting).
    Database,
    /// The request ran past the request timeout.
    Timeout,
}

impl Unavailable {
    /// The seconds to put in Retry-After: a second for a full hashing pool, a few for a
    /// database (it usually recovers within that) and for a timed-out request.
    pub fn retry_after(self) -> i64 {
        match self {
            Unavailable::Overloaded => RETRY_OVERLOADED_SECS,
            Unavailable::Database | Unavailable::Timeout => RETRY_UNAVAILABLE_SECS,
        }
    }
}

impl SurfaceError {
    /// The arm for [`CoreError::Overloaded`]. Not logged: a flood is expected to end here.
    pub fn overloaded() -> Self {
        SurfaceError::Unavailable(Unavailable::Overloaded)
    }

    /// The arm for [`CoreError::Unavailable`]: logged, as an operator should know; the cause
    /// never reaches the client.
    pub fn database(cause: &str) -> Self {
        tracing::warn!(error = %cause, "database unavailable");
        SurfaceError::Unavailable(Unavailable::Database)
    }

    /// The answer to a request that ran past the request timeout (logged where it is detected).
    pub fn timeout() -> Self {
        SurfaceError::Unavailable(Unavailable::Timeout)
    }

    /// The arm for [`CoreError::Internal`], and for the variants a surface's calls never raise
    /// (which would be a bug): logged once with the surface's name, never shown.
    pub fn internal(surface: &'static str, error: &dyn Display) -> Self {
        tracing::error!(surface, error = %error, "internal error");
        SurfaceError::Internal
    }
}

impl AppState {
    /// Takes one token from `surface`'s `limit` bucket for the caller's network (`surface`: the
    /// name the surface logs with). A caller whose address is unknown (never over TCP) is not
    /// limited.
    pub fn admit(
        &self,
        surface: &'static str,
        limit: Limit,
        ip: ClientIp,
    ) -> Result<(), SurfaceError> {
        let Some(addr) = ip.0 else {
            return Ok(());
        };
        let (limiter, name) = match limit {
            Limit::Recovery => (&self.recovery_limiter, "recovery"),
            Limit::Auth => (&self.auth_limiter, "auth"),
            Limit::PasswordCheck => (&self.check_limiter, "password_check"),
        };
        limiter
            .check_on(surface, addr)
            .map_err(|secs| self.limited(surface, name, secs))
    }

    /// Takes one token from the bucket of the authenticated API key `key_id` (its public id) in
    /// `keys`, a dialect's per-key limiter: a server-to-server caller asks for all its users
    /// from one address, so its address says nothing about how much it may ask.
    pub fn admit_key(
        &self,
        surface: &'static str,
        keys: &KeyLimiter,
        key_id: &str,
    ) -> Result<(), SurfaceError> {
        keys.check(key_id)
            .map_err(|secs| self.limited(surface, "key", secs))
    }

    /// The answer to a caller whose credentials failed: `refusal`, unless `surface`'s per-IP
    /// [`Limit::Auth`] bucket is empty, then the limit's answer (bad credentials are counted per
    /// address, so that an unknown key cannot escape every limit).
    pub fn refuse<E: From<SurfaceError>>(
        &self,
        surface: &'static str,
        ip: ClientIp,
        refusal: E,
    ) -> E {
        match self.admit(surface, Limit::Auth, ip) {
            Ok(()) => refusal,
            Err(limited) => limited.into(),
        }
    }

    fn limited(&self, surface: &'static str, limit: &'static str, secs: i64) -> SurfaceError {
        self.metrics.limited(surface, limit);
        SurfaceError::Limited {
            retry_after: secs.max(1),
        }
    }

    /// Runs one use case and does what its `effect` asks once it is settled.
    pub async fn run<T>(
        &self,
        effect: Effect,
        call: impl Future<Output = Result<T, CoreError>>,
    ) -> Result<T, CoreError> {
        let result = call.await;
        self.settle(effect, &result);
        result
    }

    /// Does what `effect` asks for a use case that ended with `result` (for an outcome known
    /// without calling the core: a login that cannot exist is a failed login).
    pub fn settle<T>(&self, effect: Effect, result: &Result<T, CoreError>) {
        let m = &self.metrics;
        let count = |c: &std::sync::atomic::AtomicU64| {
            c.fetch_add(1, Ordering::Relaxed);
        };
        match (effect, result) {
            (Effect::Login, Ok(_)) => count(&m.logins_ok),
            (Effect::Login, Err(CoreError::BadCredentials | CoreError::Locked { .. })) => {
                count(&m.logins_failed)
            }
            (_, Err(_)) => {}
            (Effect::ResetRequested, Ok(_)) => {
                self.reset_notify.notify_one();
                count(&m.resets_requested);
            }
            (Effect::LinkSent, Ok(_)) => {
                count(&m.resets_requested);
                self.mail_notify.notify_one();
            }
            (Effect::ResetCompleted, Ok(_)) => {
                count(&m.resets_completed);
                self.mail_notify.notify_one();
            }
            (Effect::MailQueued, Ok(_)) => self.mail_notify.notify_one(),
        }
    }
}

// ---- answers that need the service's clock ----------------------------------------------------

/// Writes an answer once the time is known.
type Writer = Arc<dyn Fn(Timestamp) -> Response + Send + Sync>;

/// A response's writer, left in its extensions until [`stamp`] knows the time.
#[derive(Clone)]
pub struct Clocked(Writer);

/// An answer with `status` whose headers or body depend on the time: `write` makes it with the
/// service's clock. Until then the response is an empty placeholder with the same status, so
/// that layers on the way out (logs, the body deadline) see the real status.
pub fn clocked(
    status: StatusCode,
    write: impl Fn(Timestamp) -> Response + Send + Sync + 'static,
) -> Response {
    let mut res = status.into_response();
    res.extensions_mut().insert(Clocked(Arc::new(write)));
    res
}

/// Writes a [`clocked`] answer with the service's clock (the layer over the public router),
/// keeping what layers added to the placeholder on the way out (`Connection: close` after a
/// late body, the mark of a timed-out request).
pub async fn stamp(State(s): State<AppState>, res: Response) -> Response {
    written(res, s.service.now())
}

/// A [`clocked`] answer written as at `now`; any other response as it is.
pub fn written(mut res: Response, now: Timestamp) -> Response {
    let Some(Clocked(write)) = res.extensions_mut().remove::<Clocked>() else {
        return res;
    };
    let (parts, _) = res.into_parts();
    let mut out = write(now);
    out.headers_mut().extend(parts.headers);
    out.extensions_mut().extend(parts.extensions);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, HeaderValue};

    #[test]
    fn a_clocked_answer_is_written_with_the_time_and_keeps_added_headers() {
        let mut res = clocked(StatusCode::LOCKED, |now| {
            let mut r = (StatusCode::LOCKED, format!("at {}", now.0)).into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(now.0));
            r
        });
        assert_eq!(res.status(), StatusCode::LOCKED);
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        let out = written(res, Timestamp(42));
        assert_eq!(out.status(), StatusCode::LOCKED);
        assert_eq!(out.headers()[header::RETRY_AFTER], "42");
        assert_eq!(out.headers()[header::CONNECTION], "close");
        assert!(out.extensions().get::<Clocked>().is_none());

        let plain = written(StatusCode::OK.into_response(), Timestamp(1));
        assert_eq!(plain.status(), StatusCode::OK);
    }

    #[test]
    fn retry_times_follow_the_cause() {
        assert_eq!(Unavailable::Overloaded.retry_after(), 1);
        assert_eq!(Unavailable::Database.retry_after(), 5);
        assert_eq!(Unavailable::Timeout.retry_after(), 5);
    }
}
