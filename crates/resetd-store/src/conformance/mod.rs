//! The store conformance suite: one set of checks that every [`Store`] implementation must pass,
//! whatever its backend (cargo feature `conformance`, for test crates only).
//!
//! Each check takes a freshly migrated, **empty** store (some look at global state such as the
//! outbox queue) and panics on the first violation. The checks are grouped by port, one module
//! each; [`conformance_tests!`](crate::conformance_tests) is the one list of them. Run them all,
//! one test per check, from a test file of the implementing crate:
//!
//! ```text
//! async fn fresh() -> Arc<dyn Store> { /* a new, migrated, empty store */ }
//! resetd_store::conformance_tests!(fresh);
//! ```
//!
//! `fresh` is an async function (or closure) whose output is one of the [`Fresh`] shapes: the
//! store alone, the store with a guard that must outlive the check (a temporary directory, a
//! throw-away schema), or either in an `Option` whose `None` skips the check (a server that is
//! not there). The test crate needs `tokio` with the `macros` and `rt-multi-thread` features.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support behind the `conformance` feature: a check fails by panicking"
)]

use std::future::Future;
use std::sync::Arc;

use resetd_core::ports::Store;

pub mod audit;
pub mod claims;
pub mod credentials;
pub mod directory;
mod fixtures;
pub mod keys;
pub mod lifecycle;
pub mod outbox;
pub mod recovery;
pub mod retention;
pub mod schema;

pub use fixtures::T0;

/// Declares one `#[tokio::test]` per conformance check, named after it, in the calling module.
/// `$fresh` makes each check's store (see the [module docs](crate::conformance)). This is the
/// only list of the checks: a check added to a port's module is run by every backend once it is
/// named here.
#[macro_export]
macro_rules! conformance_tests {
    (@list $fresh:expr, $at_rest:ident) => {
        $crate::conformance_tests!(@each $fresh, $at_rest;
            schema::ping_and_migrate_are_idempotent,
            directory::tenants,
            directory::people,
            keys::api_keys,
            keys::api_keys_are_listed,
            keys::api_keys_are_revoked_once,
            keys::api_keys_rotate_with_an_overlap,
            keys::api_keys_record_their_last_use,
            directory::clients,
            directory::dialect_lookups,
            directory::logins_in_any_case,
            directory::people_import_upserts_by_login,
            directory::failed_write_does_not_abort_others,
            recovery::reset_request_lifecycle,
            recovery::reset_request_claims_are_leased,
            recovery::concurrent_issues_honour_the_cooldown,
            recovery::direct_issue_and_void,
            recovery::group_commit_many_requests,
            recovery::tokens_keep_their_purpose,
            recovery::requests_are_looked_up_and_discarded_in_batches,
            credentials::token_is_single_use_under_concurrency,
            credentials::password_change_voids_tokens,
            credentials::password_history_is_pruned,
            credentials::login_attempts_lock_and_reset,
            credentials::login_attempts_are_reserved_atomically,
            claims::claim_has_one_winner_under_concurrency,
            claims::released_token_is_live_again,
            claims::lapsed_claim_is_never_live_again,
            claims::consume_with_a_wrong_claim_is_token_gone,
            claims::shadow_rows_upsert_by_id,
            claims::forgiven_attempts_come_off_the_count,
            outbox::outbox_claims_are_leased,
            outbox::outbox_delivery_states,
            audit::audit_listing,
            lifecycle::people_are_listed_by_page,
            lifecycle::erasure_removes_personal_data,
            lifecycle::clients_are_removed,
            lifecycle::tenants_are_removed,
            retention::retention_keeps_what_is_live_or_inside_its_period,
        );
    };
    ($fresh:expr, bodies_at_rest: $at_rest:ident) => {
        $crate::conformance_tests!(@list $fresh, $at_rest);
    };
    ($fresh:expr) => {
        $crate::conformance_tests!(@list $fresh, Sealed);
    };
    (@each $fresh:expr, $at_rest:ident; $($port:ident :: $check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                $crate::conformance::run(
                    $fresh,
                    $crate::conformance::BodiesAtRest::$at_rest,
                    $crate::conformance::$port::$check,
                )
                .await;
            }
        )*
    };
}

/// How a backend keeps a queued email's body until it is sent. The SQL backends seal it
/// (`crate::sealing`); the core's in-memory store, which has no key and no disk, keeps it as queued.
/// The checks that look at a stored body assert the form the backend declares; every other
/// assertion is the same for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodiesAtRest {
    /// Sealed with the outbox key (what the SQL backends must do).
    Sealed,
    /// As queued (a store that never writes to disk).
    Plain,
}

tokio::task_local! {
    static BODIES_AT_REST: BodiesAtRest;
}

/// The form the store under check keeps bodies in (sealed unless the backend said otherwise).
pub(crate) fn bodies_at_rest() -> BodiesAtRest {
    BODIES_AT_REST
        .try_with(|b| *b)
        .unwrap_or(BodiesAtRest::Sealed)
}

/// What a backend's `fresh` function may give a check.
pub trait Fresh {
    /// Kept alive until the check has finished, then dropped.
    type Guard;
    /// The store and its guard, or `None` to skip the check.
    fn into_store(self) -> Option<(Arc<dyn Store>, Self::Guard)>;
}

/// A store that needs nothing kept alive (an in-memory one).
impl Fresh for Arc<dyn Store> {
    type Guard = ();
    fn into_store(self) -> Option<(Arc<dyn Store>, ())> {
        Some((self, ()))
    }
}

/// A store and what it lives in.
impl<G> Fresh for (Arc<dyn Store>, G) {
    type Guard = G;
    fn into_store(self) -> Option<(Arc<dyn Store>, G)> {
        Some(self)
    }
}

/// `None` skips the check: the backend is not available here (and said so).
impl<T: Fresh> Fresh for Option<T> {
    type Guard = T::Guard;
    fn into_store(self) -> Option<(Arc<dyn Store>, T::Guard)> {
        self.and_then(Fresh::into_store)
    }
}

/// Runs `check` on a store from `fresh`, then drops the store's guard; nothing when `fresh`
/// skips. What [`conformance_tests!`](crate::conformance_tests) expands to.
pub async fn run<F, S, C>(
    fresh: impl FnOnce() -> F,
    bodies: BodiesAtRest,
    check: impl FnOnce(Arc<dyn Store>) -> C,
) where
    F: Future<Output = S>,
    S: Fresh,
    C: Future<Output = ()>,
{
    let Some((store, guard)) = fresh().await.into_store() else {
        return;
    };
    BODIES_AT_REST.scope(bodies, check(store)).await;
    drop(guard);
}
