//! [`Lifecycle`] for [`MemoryStore`]: people by page, erasure and removal with the SQL stores'
//! semantics (one transaction each: an `Err` changes nothing).

use async_trait::async_trait;

use super::store::{MemoryStore, State};
use crate::model::{NewAudit, Person};
use crate::ports::{
    could_name, matches_search, Lifecycle, PeoplePage, StoreError, TenantRemoval,
    PERSONAL_DETAIL_KEYS,
};
use crate::types::{ClientName, PersonId, TenantId};

impl State {
    /// Erases one person (see [`Lifecycle::erase_person`]), without the closing audit event.
    fn erase(
        &mut self,
        tenant: &TenantId,
        id: &PersonId,
        pseudonym: &PersonId,
    ) -> Result<(), StoreError> {
        let i = self.person_index(tenant, id).ok_or(StoreError::NotFound)?;
        let p = self.people.remove(i);
        self.history
            .retain(|(_, t, q, _)| !(t == tenant && q == id));
        self.tokens
            .retain(|t| !(&t.tenant == tenant && &t.person == id));
        self.outbox.retain(|_, m| {
            !(&m.message.tenant == tenant
                && m.message
                    .recipient
                    .as_str()
                    .eq_ignore_ascii_case(p.email.as_str()))
        });
        self.requests
            .retain(|_, (r, _)| !(&r.tenant == tenant && could_name(&r.lookup, &p)));
        self.counters.remove(&(tenant.clone(), p.login.clone()));
        for (t, e) in &mut self.audit {
            if t == tenant && e.person.as_deref() == Some(id.as_str()) {
                e.person = Some(pseudonym.as_str().to_owned());
                e.ip = None;
                if let Some(detail) = e.detail.as_object_mut() {
                    for key in PERSONAL_DETAIL_KEYS {
                        detail.remove(key);
                    }
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Lifecycle for MemoryStore {
    async fn list_people(
        &self,
        tenant: &TenantId,
        page: &PeoplePage,
    ) -> Result<Vec<Person>, StoreError> {
        self.read("list_people", |s| {
            let mut people: Vec<&Person> = s
                .people
                .iter()
                .filter(|p| &p.tenant == tenant && p.number > page.after)
                .filter(|p| {
                    page.search.as_deref().is_none_or(|q| {
                        [p.login.as_str(), p.email.as_str(), p.display_name.as_str()]
                            .iter()
                            .any(|f| matches_search(f, q))
                    })
                })
                .collect();
            people.sort_by_key(|p| p.number);
            people
                .into_iter()
                .take(page.limit as usize)
                .map(|p| s.view(p))
                .collect()
        })
    }

    async fn erase_person(
        &self,
        tenant: &TenantId,
        id: &PersonId,
        pseudonym: &PersonId,
        audit: NewAudit,
    ) -> Result<(), StoreError> {
        self.write("erase_person", |s| {
            s.erase(tenant, id, pseudonym)?;
            s.insert_audit(&audit);
            Ok(())
        })
    }

    async fn delete_client(
        &self,
        tenant: &TenantId,
        name: &ClientName,
        audit: NewAudit,
    ) -> Result<(), StoreError> {
        self.write("delete_client", |s| {
            s.clients
                .remove(&(tenant.clone(), name.clone()))
                .ok_or(StoreError::NotFound)?;
            s.insert_audit(&audit);
            Ok(())
        })
    }

    async fn delete_tenant(
        &self,
        tenant: &TenantId,
        force: bool,
        audit: NewAudit,
    ) -> Result<TenantRemoval, StoreError> {
        self.write("delete_tenant", |s| {
            if !s.tenant_exists(tenant) {
                return Err(StoreError::NotFound);
            }
            let ids: Vec<PersonId> = s
                .people
                .iter()
                .filter(|p| &p.tenant == tenant)
                .map(|p| p.id.clone())
                .collect();
            if !ids.is_empty() && !force {
                return Err(StoreError::Conflict("people".into()));
            }
            for id in &ids {
                s.erase(tenant, id, &PersonId::generate())?;
            }
            s.api_keys.retain(|k| &k.key.tenant != tenant);
            s.clients.retain(|(t, _), _| t != tenant);
            s.requests.retain(|_, (r, _)| &r.tenant != tenant);
            s.tokens.retain(|t| &t.tenant != tenant);
            s.outbox.retain(|_, m| &m.message.tenant != tenant);
            s.counters.retain(|(t, _), _| t != tenant);
            s.tenants.remove(tenant);
            s.insert_audit(&audit);
            Ok(TenantRemoval {
                people: ids.len() as u64,
            })
        })
    }
}
