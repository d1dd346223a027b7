//! The lifecycle port: paging through a tenant's people, and removing what the directory holds
//! (a person erased, a client, a whole tenant). Operators' day-two calls, used by the admin use
//! cases (`service/people_admin.rs`) only.

use async_trait::async_trait;

use super::StoreError;
use crate::model::{fold_login, Lookup, NewAudit, Person};
use crate::types::{ClientName, PersonId, TenantId};

/// One page of a tenant's people, in `number` order (stable: a person keeps their number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeoplePage {
    /// Only people whose number is greater (the last number of the previous page); 0: from the
    /// first.
    pub after: i64,
    /// At most this many.
    pub limit: u32,
    /// Only people whose login, email or display name contains this text, ASCII letters in any
    /// case (other characters exactly).
    pub search: Option<String>,
}

/// What removing a tenant removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TenantRemoval {
    /// People erased with it.
    pub people: u64,
}

/// Listing and removal.
#[async_trait]
pub trait Lifecycle: Send + Sync {
    /// A page of the tenant's people (see [`PeoplePage`]); past the end, an empty page.
    async fn list_people(
        &self,
        tenant: &TenantId,
        page: &PeoplePage,
    ) -> Result<Vec<Person>, StoreError>;

    /// Erases a person in one transaction: their row (login, email, name, attributes, hash),
    /// password history, tokens, every outbox message to their address whatever its state,
    /// unresolved reset requests whose lookup could name them ([`could_name`]) and their login's
    /// counter. Their audit events stay, with `person` replaced by `pseudonym`, the IP cleared
    /// and the personal fields of `detail` (login, email, display name) removed; then `audit`
    /// (already naming the pseudonym) is appended. `NotFound` when there is no such person.
    async fn erase_person(
        &self,
        tenant: &TenantId,
        id: &PersonId,
        pseudonym: &PersonId,
        audit: NewAudit,
    ) -> Result<(), StoreError>;

    /// Removes a client. `NotFound` when there is none by that name.
    async fn delete_client(
        &self,
        tenant: &TenantId,
        name: &ClientName,
        audit: NewAudit,
    ) -> Result<(), StoreError>;

    /// Removes a tenant and everything it holds (API keys, clients, requests, tokens, outbox,
    /// login counters), erasing each person as [`Lifecycle::erase_person`] does with a fresh
    /// pseudonym each. With people and without `force`: `Conflict("people")` and nothing changes.
    /// `NotFound` when there is no such tenant. The audit trail stays, with `audit` appended.
    async fn delete_tenant(
        &self,
        tenant: &TenantId,
        force: bool,
        audit: NewAudit,
    ) -> Result<TenantRemoval, StoreError>;
}

/// The keys of an audit event's `detail` that can hold a person's personal data.
pub const PERSONAL_DETAIL_KEYS: [&str; 3] = ["login", "email", "display_name"];

/// Whether a lookup could name this person under any of the directory's rules (exact login,
/// email in any ASCII case, id, number, ObjectId prefix, login folded alike): the reset requests
/// to drop when the person is erased. Errs on the side of naming them.
pub fn could_name(lookup: &Lookup, p: &Person) -> bool {
    match lookup {
        Lookup::Login(l) => p.login.as_str() == l,
        Lookup::Email(e) => p.email.as_str().eq_ignore_ascii_case(e),
        Lookup::Id(id) => p.id.as_str() == id,
        Lookup::Number(n) => p.number == *n,
        Lookup::ObjectId(oid) => {
            oid.len() == 24 && p.id.as_str().starts_with(&oid.to_ascii_lowercase())
        }
        Lookup::LoginAnyCase(l) => fold_login(l) == fold_login(p.login.as_str()),
    }
}

/// Whether `text` contains `needle`, ASCII letters in any case: the search of [`PeoplePage`]
/// (SQLite's `LIKE`), for a store without SQL.
pub fn matches_search(text: &str, needle: &str) -> bool {
    text.to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}
