//! [`Directory`] for [`MemoryStore`]: tenants, people and clients, with the SQL stores' keys
//! (unique tenant, login per tenant, client name per tenant) and their references (a person or
//! client needs its tenant: `NotFound` otherwise). API keys are in `api_keys`.

use async_trait::async_trait;

use super::store::{MemoryStore, State};
use crate::model::{fold_login, Client, Lookup, NewAudit, Person, Tenant, TenantSettings};
use crate::ports::{Directory, StoreError};
use crate::types::{ClientName, ObjectId, PersonId, TenantId};

fn conflict(what: &str) -> StoreError {
    StoreError::Conflict(what.to_owned())
}

impl State {
    /// Inserts a person with the next number of its tenant, which it returns.
    fn insert_person_row(&mut self, p: &Person) -> Result<i64, StoreError> {
        if !self.tenant_exists(&p.tenant) {
            return Err(StoreError::NotFound);
        }
        if self.people.iter().any(|q| q.id == p.id) {
            return Err(conflict("person"));
        }
        if self
            .people
            .iter()
            .any(|q| q.tenant == p.tenant && q.login == p.login)
        {
            return Err(conflict("login"));
        }
        let number = self
            .people
            .iter()
            .filter(|q| q.tenant == p.tenant)
            .map(|q| q.number)
            .max()
            .unwrap_or(0)
            + 1;
        self.people.push(Person {
            number,
            // The counters are the login's, never written with the person.
            failed_logins: 0,
            locked_until: None,
            ..p.clone()
        });
        Ok(number)
    }

    /// The person a lookup names, by the SQL stores' rules: logins exactly, email addresses
    /// ignoring ASCII case (the oldest account wins), ids and numbers exactly, ObjectIds of
    /// either case as the id's prefix (the oldest wins), logins in any case exactly first, else
    /// the one login that folds alike (several: none).
    pub(super) fn find(&self, tenant: &TenantId, lookup: &Lookup) -> Option<&Person> {
        let mut of_tenant = self.people.iter().filter(|p| &p.tenant == tenant);
        match lookup {
            Lookup::Login(l) => of_tenant.find(|p| p.login.as_str() == l),
            Lookup::Email(e) => of_tenant
                .filter(|p| p.email.as_str().eq_ignore_ascii_case(e))
                .min_by_key(|p| p.number),
            Lookup::Id(id) => {
                let id = PersonId::parse(id).ok()?;
                of_tenant.find(|p| p.id == id)
            }
            Lookup::Number(n) => of_tenant.find(|p| p.number == *n),
            Lookup::ObjectId(oid) => {
                let oid = ObjectId::parse(oid).ok()?;
                of_tenant
                    .filter(|p| p.id.as_str().starts_with(oid.as_str()))
                    .min_by_key(|p| p.number)
            }
            Lookup::LoginAnyCase(l) => {
                let folded = fold_login(l);
                let candidates: Vec<&Person> = of_tenant
                    .filter(|p| fold_login(p.login.as_str()) == folded)
                    .collect();
                match candidates.iter().find(|p| p.login.as_str() == l) {
                    Some(exact) => Some(exact),
                    None if candidates.len() == 1 => candidates.first().copied(),
                    None => None,
                }
            }
        }
    }
}

#[async_trait]
impl Directory for MemoryStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.write("create_tenant", |s| {
            if s.tenant_exists(&tenant.id) {
                return Err(conflict("tenant"));
            }
            s.tenants.insert(tenant.id.clone(), tenant.clone());
            Ok(())
        })
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.read("get_tenant", |s| s.tenants.get(id).cloned())
    }

    async fn update_tenant_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        self.write("update_tenant_settings", |s| {
            let t = s.tenants.get_mut(id).ok_or(StoreError::NotFound)?;
            t.settings = settings.clone();
            Ok(())
        })
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.read("list_tenants", |s| s.tenants.values().cloned().collect())
    }

    async fn insert_person(&self, person: &Person, audit: NewAudit) -> Result<i64, StoreError> {
        self.write("insert_person", |s| {
            let number = s.insert_person_row(person)?;
            s.insert_audit(&audit);
            Ok(number)
        })
    }

    async fn get_person(
        &self,
        tenant: &TenantId,
        id: &PersonId,
    ) -> Result<Option<Person>, StoreError> {
        self.read("get_person", |s| {
            s.person_index(tenant, id).map(|i| s.view(&s.people[i]))
        })
    }

    async fn find_person(
        &self,
        tenant: &TenantId,
        lookup: &Lookup,
    ) -> Result<Option<Person>, StoreError> {
        self.read("find_person", |s| s.find(tenant, lookup).map(|p| s.view(p)))
    }

    async fn find_people(
        &self,
        tenant: &TenantId,
        lookups: &[Lookup],
    ) -> Result<Vec<Option<Person>>, StoreError> {
        self.read("find_people", |s| {
            lookups
                .iter()
                .map(|l| s.find(tenant, l).map(|p| s.view(p)))
                .collect()
        })
    }

    async fn update_person(&self, person: &Person, audit: NewAudit) -> Result<(), StoreError> {
        self.write("update_person", |s| {
            let i = s
                .person_index(&person.tenant, &person.id)
                .ok_or(StoreError::NotFound)?;
            let clash = s
                .people
                .iter()
                .any(|q| q.tenant == person.tenant && q.login == person.login && q.id != person.id);
            if clash {
                return Err(conflict("login"));
            }
            // The profile fields only: the password and the counters have their own calls.
            let p = &mut s.people[i];
            p.login = person.login.clone();
            p.email = person.email.clone();
            p.display_name = person.display_name.clone();
            p.locale = person.locale.clone();
            p.enabled = person.enabled;
            p.roles = person.roles.clone();
            p.attributes = person.attributes.clone();
            p.updated_at = person.updated_at;
            p.verified = person.verified;
            s.insert_audit(&audit);
            Ok(())
        })
    }

    async fn upsert_people(
        &self,
        people: &[Person],
        audit: NewAudit,
    ) -> Result<Vec<bool>, StoreError> {
        self.write("upsert_people", |s| {
            let mut inserted = Vec::with_capacity(people.len());
            for p in people {
                let known = s
                    .people
                    .iter()
                    .position(|q| q.tenant == p.tenant && q.login == p.login);
                let Some(i) = known else {
                    s.insert_person_row(p)?;
                    inserted.push(true);
                    continue;
                };
                let q = &mut s.people[i];
                q.email = p.email.clone();
                q.display_name = p.display_name.clone();
                q.locale = p.locale.clone();
                q.enabled = p.enabled;
                q.roles = p.roles.clone();
                q.attributes = p.attributes.clone();
                q.updated_at = p.updated_at;
                q.verified = p.verified;
                // A hash set or upgraded in resetd (Argon2id) is never replaced by an import.
                let replaceable = q
                    .password_hash
                    .as_deref()
                    .is_none_or(|h| !h.starts_with("$argon2id$"));
                if p.password_hash.is_some() && replaceable {
                    q.password_hash = p.password_hash.clone();
                    q.password_changed_at = p.password_changed_at;
                }
                inserted.push(false);
            }
            s.insert_audit(&audit);
            Ok(inserted)
        })
    }

    async fn upsert_shadow_person(&self, person: &Person) -> Result<Person, StoreError> {
        self.write("upsert_shadow_person", |s| {
            let taken = s
                .people
                .iter()
                .any(|q| q.tenant == person.tenant && q.login == person.login && q.id != person.id);
            if taken {
                return Err(conflict("login"));
            }
            match s.person_index(&person.tenant, &person.id) {
                None => {
                    s.insert_person_row(person)?;
                }
                Some(i) => {
                    let q = &mut s.people[i];
                    q.login = person.login.clone();
                    q.email = person.email.clone();
                    q.display_name = person.display_name.clone();
                    q.enabled = person.enabled;
                    q.updated_at = person.updated_at;
                }
            }
            let i = s
                .person_index(&person.tenant, &person.id)
                .ok_or(StoreError::NotFound)?;
            Ok(s.view(&s.people[i]))
        })
    }

    async fn upsert_client(&self, client: &Client, audit: NewAudit) -> Result<(), StoreError> {
        self.write("upsert_client", |s| {
            if !s.tenant_exists(&client.tenant) {
                return Err(StoreError::NotFound);
            }
            let key = (client.tenant.clone(), client.name.clone());
            // A replaced client keeps its original registration time.
            let created_at = s
                .clients
                .get(&key)
                .map_or(client.created_at, |c| c.created_at);
            s.clients.insert(
                key,
                Client {
                    created_at,
                    ..client.clone()
                },
            );
            s.insert_audit(&audit);
            Ok(())
        })
    }

    async fn get_client(
        &self,
        tenant: &TenantId,
        name: &ClientName,
    ) -> Result<Option<Client>, StoreError> {
        self.read("get_client", |s| {
            s.clients.get(&(tenant.clone(), name.clone())).cloned()
        })
    }

    async fn list_clients(&self, tenant: &TenantId) -> Result<Vec<Client>, StoreError> {
        // Keyed by (tenant, name), so a tenant's clients come by name.
        self.read("list_clients", |s| {
            s.clients
                .values()
                .filter(|c| &c.tenant == tenant)
                .cloned()
                .collect()
        })
    }
}
