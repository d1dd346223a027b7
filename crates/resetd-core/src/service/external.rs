//! Tenants whose passwords live in an external system (issue 17, `docs/credentials.md`): the
//! wiring, the lookup of people who live there and their shadow rows, and the bounded write that
//! the password sets share. The flows that use them are in `external_set.rs`.
//!
//! A shadow row is an ordinary `person` row whose id is derived from the tenant and the external
//! stable id ([`shadow_id`]), so the same account always maps to the same row (and its tokens,
//! cool-down, audit trail and login counter) without a column of its own, on every store.

use std::sync::Arc;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::CoreError;
use crate::model::{Lookup, Person};
use crate::policy::{Verdict, Violation};
use crate::ports::{AccountQuery, ExternalAccount, ExternalCredentials, ExternalError};
use crate::types::{DisplayName, Email, Login, Password, PersonId, TenantId};

use super::{Result, Service};

/// How long a token stays claimed for an external write before the claim lapses: longer than the
/// adapters' bounded timeouts times [`MAX_WRITE_ATTEMPTS`], so a caller that is still retrying
/// holds the claim.
pub const EXTERNAL_CLAIM_LEASE_SECS: i64 = 120;

/// How many times one password set calls the external system when its answer stays unknown
/// (each call is bounded by the adapter's own timeout).
pub const MAX_WRITE_ATTEMPTS: u32 = 3;

/// The violation code of a password the external system refused with its own reason.
pub const BACKEND_POLICY_CODE: &str = "backend_policy";

/// What a lookup in an external system found.
pub(super) enum Found {
    /// The account, as its shadow row now stands.
    Person(Box<Person>),
    /// No account answers the lookup.
    Nobody,
    /// An entry answered but cannot be used (the named field failed its checked constructor);
    /// treated as no account.
    Unusable(&'static str),
}

/// The id of the shadow row of the account with `stable_id` in `tenant`: the first 128 bits of
/// a SHA-256 over both, as 32 hex digits like a generated id (so every lookup by id works).
pub fn shadow_id(tenant: &TenantId, stable_id: &str) -> PersonId {
    let mut h = Sha256::new();
    h.update(b"resetd shadow person\0");
    h.update(tenant.as_str().as_bytes());
    h.update(b"\0");
    h.update(stable_id.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    PersonId::from_bytes(&first)
}

/// The core's answer to an external failure, for a call that is not about a token.
pub(super) fn external_failure(e: ExternalError) -> CoreError {
    match e {
        ExternalError::Refused(reason) => CoreError::Policy(refused(reason)),
        ExternalError::Unavailable(m) | ExternalError::Indeterminate(m) => {
            CoreError::Unavailable(format!("credential backend: {m}"))
        }
        ExternalError::NoAccount => CoreError::NotFound("person"),
        ExternalError::Failed(m) => CoreError::Internal(format!("credential backend: {m}")),
    }
}

/// The verdict for a password the external system refused: its reason as one violation.
fn refused(reason: String) -> Verdict {
    Verdict {
        violations: vec![Violation {
            code: BACKEND_POLICY_CODE,
            message: reason,
        }],
        score: 0,
    }
}

impl Service {
    /// Keeps `tenant`'s passwords (and, by its capabilities, people) in `backend`. Tenants
    /// without one work on resetd's own tables only.
    pub fn with_external(
        mut self,
        tenant: TenantId,
        backend: Arc<dyn ExternalCredentials>,
    ) -> Self {
        self.externals.insert(tenant, backend);
        self
    }

    /// The tenant's external system, if it has one.
    pub(super) fn external(&self, tenant: &TenantId) -> Option<Arc<dyn ExternalCredentials>> {
        self.externals.get(tenant).cloned()
    }

    /// Refuses a local-only administration path (an import of hashes, creating a person whose
    /// password resetd would keep) for a tenant whose people or passwords live elsewhere.
    pub(super) fn refuse_if_external(&self, tenant: &TenantId, what: &str) -> Result<()> {
        match self.external(tenant).map(|b| b.capabilities()) {
            Some(c) if c.holds_people || c.verifies_passwords => {
                Err(CoreError::Invalid(crate::types::InvalidInput::new(
                    "tenant",
                    format!(
                        "keeps its people or passwords in an external credential system; {what} \
                         there instead"
                    ),
                )))
            }
            _ => Ok(()),
        }
    }

    /// Finds the person `lookup` names. For a tenant whose people live in an external system, a
    /// login or email is asked there and the answer written to its shadow row; an id, number or
    /// ObjectId names a shadow row already known. Anything else is the store's lookup.
    pub(super) async fn lookup_person(&self, tenant: &TenantId, lookup: &Lookup) -> Result<Found> {
        let query = match lookup {
            Lookup::Login(l) | Lookup::LoginAnyCase(l) => AccountQuery::Login(l.clone()),
            Lookup::Email(e) => AccountQuery::Email(e.clone()),
            Lookup::Id(_) | Lookup::Number(_) | Lookup::ObjectId(_) => {
                return self.local_lookup(tenant, lookup).await;
            }
        };
        let Some(backend) = self.people_elsewhere(tenant) else {
            return self.local_lookup(tenant, lookup).await;
        };
        match backend.find_account(&query).await {
            Ok(Some(account)) => self.shadow(tenant, &account).await,
            Ok(None) | Err(ExternalError::NoAccount) => Ok(Found::Nobody),
            Err(e) => Err(external_failure(e)),
        }
    }

    /// Whether [`Service::lookup_person`] answers `lookup` from the store alone.
    pub(super) fn looks_up_locally(&self, tenant: &TenantId, lookup: &Lookup) -> bool {
        matches!(
            lookup,
            Lookup::Id(_) | Lookup::Number(_) | Lookup::ObjectId(_)
        ) || self.people_elsewhere(tenant).is_none()
    }

    /// The tenant's external system, when the people live there.
    fn people_elsewhere(&self, tenant: &TenantId) -> Option<Arc<dyn ExternalCredentials>> {
        self.external(tenant)
            .filter(|b| b.capabilities().holds_people)
    }

    async fn local_lookup(&self, tenant: &TenantId, lookup: &Lookup) -> Result<Found> {
        Ok(match self.store.find_person(tenant, lookup).await? {
            Some(p) => Found::Person(Box::new(p)),
            None => Found::Nobody,
        })
    }

    /// Parses an external account into the core's types and upserts its shadow row. Only the
    /// profile is kept: never a password or its hash.
    pub(super) async fn shadow(&self, tenant: &TenantId, a: &ExternalAccount) -> Result<Found> {
        if a.stable_id.is_empty() {
            return Ok(Found::Unusable("stable_id"));
        }
        let Ok(login) = Login::parse(&a.login) else {
            return Ok(Found::Unusable("login"));
        };
        let Some(Ok(email)) = a.email.as_deref().map(Email::parse) else {
            return Ok(Found::Unusable("email"));
        };
        // A name is only shown; one that does not parse is left out rather than the account.
        let display_name = a
            .display_name
            .as_deref()
            .and_then(|n| DisplayName::parse(n).ok())
            .unwrap_or_else(DisplayName::empty);
        let now = self.now();
        let person = Person {
            id: shadow_id(tenant, &a.stable_id),
            number: 0,
            tenant: tenant.clone(),
            login,
            email,
            display_name,
            locale: None,
            enabled: a.enabled,
            verified: false,
            roles: Vec::new(),
            attributes: json!({}),
            password_hash: None,
            password_changed_at: None,
            must_change_password: false,
            failed_logins: 0,
            locked_until: None,
            created_at: now,
            updated_at: now,
        };
        let stored = self.store.upsert_shadow_person(&person).await?;
        Ok(Found::Person(Box::new(stored)))
    }

    /// The external account a password set for `person` writes to. Where people live in the
    /// system it is looked up again by login (the answer is fresh, and its stable id must still
    /// be the shadow row's); for a sink it is the local person.
    pub(super) async fn account_of(
        &self,
        backend: &dyn ExternalCredentials,
        person: &Person,
    ) -> std::result::Result<ExternalAccount, ExternalError> {
        if !backend.capabilities().holds_people {
            return Ok(ExternalAccount {
                stable_id: person.id.as_str().to_owned(),
                locator: person.id.as_str().to_owned(),
                login: person.login.as_str().to_owned(),
                email: Some(person.email.as_str().to_owned()),
                display_name: Some(person.display_name.as_str().to_owned())
                    .filter(|n| !n.is_empty()),
                enabled: person.enabled,
            });
        }
        let query = AccountQuery::Login(person.login.as_str().to_owned());
        match backend.find_account(&query).await? {
            Some(a) if shadow_id(&person.tenant, &a.stable_id) == person.id => Ok(a),
            Some(_) | None => Err(ExternalError::NoAccount),
        }
    }

    /// Sets the password in the external system, calling again with the same `change_id` while
    /// the answer stays unknown, at most [`MAX_WRITE_ATTEMPTS`] times and only while the clock is
    /// before `until` (the claim's lease). The last answer is returned as is.
    pub(super) async fn write_external(
        &self,
        backend: &dyn ExternalCredentials,
        account: &ExternalAccount,
        password: &Password,
        change_id: &str,
        until: crate::model::Timestamp,
    ) -> std::result::Result<(), ExternalError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match backend.set_password(account, password, change_id).await {
                Err(ExternalError::Indeterminate(_))
                    if attempts < MAX_WRITE_ATTEMPTS && self.now() < until => {}
                answer => return answer,
            }
        }
    }
}
