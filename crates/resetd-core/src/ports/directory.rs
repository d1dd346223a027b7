//! The directory port: tenants, people and clients, the records every surface resolves a request
//! against (API keys have their own port, `api_keys`).

use async_trait::async_trait;

use super::StoreError;
use crate::model::{Client, Lookup, NewAudit, Person, Tenant, TenantSettings};
use crate::types::{ClientName, PersonId, TenantId};

/// Who exists, and who may call.
#[async_trait]
pub trait Directory: Send + Sync {
    /// Creates a tenant; `Conflict` if the name is taken.
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;
    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;
    /// Replaces a tenant's settings.
    async fn update_tenant_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// Creates a person (its `number` is assigned by the store and returned); `Conflict` on a taken login.
    async fn insert_person(&self, person: &Person, audit: NewAudit) -> Result<i64, StoreError>;
    async fn get_person(
        &self,
        tenant: &TenantId,
        id: &PersonId,
    ) -> Result<Option<Person>, StoreError>;
    /// A person by login, email (the oldest with that address), id, number or ObjectId.
    async fn find_person(
        &self,
        tenant: &TenantId,
        lookup: &Lookup,
    ) -> Result<Option<Person>, StoreError>;
    /// [`Directory::find_person`] for each of `lookups`, in their order: one read where the
    /// store can (the reset worker looks up a batch of requests at once). This default reads
    /// them one at a time.
    async fn find_people(
        &self,
        tenant: &TenantId,
        lookups: &[Lookup],
    ) -> Result<Vec<Option<Person>>, StoreError> {
        let mut found = Vec::with_capacity(lookups.len());
        for lookup in lookups {
            found.push(self.find_person(tenant, lookup).await?);
        }
        Ok(found)
    }
    /// Writes a person's profile fields (login, email, names, locale, enabled, roles, attributes).
    async fn update_person(&self, person: &Person, audit: NewAudit) -> Result<(), StoreError>;
    /// Imports people in one transaction, matched by login: a new login is inserted (its
    /// `number` assigned), an existing one gets its profile fields (email, name, locale, enabled,
    /// verified, roles, attributes) replaced and keeps its id, number and counters. A row's
    /// `password_hash` (when `Some`) replaces the stored one only when that is missing or not
    /// Argon2id, so a re-run never undoes a password set or upgraded in resetd. Returns, per row,
    /// whether it was inserted (`true`) or updated. One audit event for the batch.
    ///
    /// The imported hash is a credential written by the directory port: with a credential
    /// backend of its own this becomes two calls (see `docs/architecture.md`, "Ports").
    async fn upsert_people(
        &self,
        people: &[Person],
        audit: NewAudit,
    ) -> Result<Vec<bool>, StoreError>;

    /// Writes the shadow row of a person who lives in an external system (see
    /// `docs/credentials.md`): inserted under `person.id` (its `number` assigned) when new,
    /// else its login, email, display name and enabled flag are replaced and everything else
    /// (number, password dates, must-change, counters) kept. Returns the row as stored.
    /// `Conflict` when another person holds the login.
    async fn upsert_shadow_person(&self, person: &Person) -> Result<Person, StoreError>;

    /// Registers or replaces a client.
    async fn upsert_client(&self, client: &Client, audit: NewAudit) -> Result<(), StoreError>;
    async fn get_client(
        &self,
        tenant: &TenantId,
        name: &ClientName,
    ) -> Result<Option<Client>, StoreError>;
    async fn list_clients(&self, tenant: &TenantId) -> Result<Vec<Client>, StoreError>;
}
