//! Operators' day-two calls: paging through people, erasing a person, removing a client or a
//! whole tenant. Erasure keeps the audit trail under a random replacement id (see
//! `docs/erasure.md` for what remains and why).

use serde_json::json;

use crate::error::CoreError;
use crate::model::Person;
use crate::ports::{PeoplePage, StoreError, TenantRemoval};
use crate::types::{ClientName, InvalidInput, PersonId, TenantId};

use super::{Actor, Result, Service};

/// The largest page [`Service::list_people`] returns.
pub const MAX_PAGE: u32 = 1000;

/// The longest search text.
const MAX_SEARCH_CHARS: usize = 256;

impl PeoplePage {
    /// A checked page request: `limit` 1 to [`MAX_PAGE`], `after` not negative, a search text of
    /// 1 to 256 printable characters (empty means none).
    pub fn parse(after: i64, limit: u32, search: Option<&str>) -> Result<Self> {
        if after < 0 {
            return Err(InvalidInput::new("after", "must be 0 or a person number").into());
        }
        if limit == 0 || limit > MAX_PAGE {
            return Err(InvalidInput::new("limit", "must be 1 to 1000").into());
        }
        let search = match search.filter(|s| !s.is_empty()) {
            Some(s) if s.chars().count() > MAX_SEARCH_CHARS || s.chars().any(char::is_control) => {
                return Err(
                    InvalidInput::new("q", "must be at most 256 printable characters").into(),
                )
            }
            other => other.map(str::to_owned),
        };
        Ok(Self {
            after,
            limit,
            search,
        })
    }
}

impl Service {
    /// A page of the tenant's people in number order; past the end, an empty page.
    pub async fn list_people(&self, tenant: &TenantId, page: &PeoplePage) -> Result<Vec<Person>> {
        self.tenant(tenant).await?;
        Ok(self.store.list_people(tenant, page).await?)
    }

    /// Erases a person's personal data (see [`crate::ports::Lifecycle::erase_person`]) and
    /// returns the random id their audit events now carry. `NotFound("person")` when there is
    /// no such person, including one erased already.
    pub async fn erase_person(
        &self,
        tenant: &TenantId,
        id: &PersonId,
        actor: &Actor,
    ) -> Result<PersonId> {
        self.tenant(tenant).await?;
        let pseudonym = PersonId::generate();
        let audit = self.audit(
            tenant,
            Some(&pseudonym),
            "person_erased",
            actor,
            None,
            json!({}),
        );
        match self.store.erase_person(tenant, id, &pseudonym, audit).await {
            Ok(()) => Ok(pseudonym),
            Err(StoreError::NotFound) => Err(CoreError::NotFound("person")),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a client; `NotFound("client")` when there is none by that name.
    pub async fn remove_client(
        &self,
        tenant: &TenantId,
        name: &ClientName,
        actor: &Actor,
    ) -> Result<()> {
        self.tenant(tenant).await?;
        let audit = self.audit(
            tenant,
            None,
            "client_removed",
            actor,
            None,
            json!({"client": name}),
        );
        let removed = self.store.delete_client(tenant, name, audit).await;
        // This instance refuses it at once; another one when its cache period ends.
        self.forget_clients(tenant);
        match removed {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(CoreError::NotFound("client")),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a tenant with its keys, clients and queued work; its people only with `force`
    /// (they are erased), else `Conflict("people")`. `UnknownTenant` when there is none.
    pub async fn remove_tenant(
        &self,
        tenant: &TenantId,
        force: bool,
        actor: &Actor,
    ) -> Result<TenantRemoval> {
        self.tenant(tenant).await?;
        let audit = self.audit(
            tenant,
            None,
            "tenant_removed",
            actor,
            None,
            json!({"force": force}),
        );
        let removed = self.store.delete_tenant(tenant, force, audit).await;
        self.forget_clients(tenant);
        let removed = match removed {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Err(CoreError::UnknownTenant),
            // Surfaces word this one themselves (the option to pass is theirs).
            Err(StoreError::Conflict(_)) => return Err(CoreError::Conflict("people".into())),
            Err(e) => return Err(e.into()),
        };
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(tenant);
        Ok(removed)
    }
}
