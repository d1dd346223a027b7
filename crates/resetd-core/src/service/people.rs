//! Accounts: creating one, importing many, reading and changing their profiles.

use serde_json::json;

use crate::error::CoreError;
use crate::import::ImportRow;
use crate::model::{Lookup, Person, Timestamp};
use crate::types::{DisplayName, Email, Locale, Login, Password, PersonId, TenantId};

use super::external::Found;
use super::{personal_words, Actor, Result, Service};

/// A new person as an admin describes them.
#[derive(Debug, Clone)]
pub struct NewPersonInput {
    /// Unique per tenant.
    pub login: Login,
    pub email: Email,
    pub display_name: Option<DisplayName>,
    pub locale: Option<Locale>,
    /// Enabled (default true).
    pub enabled: bool,
    /// Whether the email address is known to be confirmed.
    pub verified: bool,
    pub roles: Vec<String>,
    /// A JSON object.
    pub attributes: serde_json::Value,
    /// An initial password, checked against the policy.
    pub password: Option<Password>,
}

/// Changes to a person's profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PersonPatch {
    pub email: Option<Email>,
    pub display_name: Option<DisplayName>,
    /// `Some(None)` clears it.
    pub locale: Option<Option<Locale>>,
    pub enabled: Option<bool>,
    /// Mark the email address confirmed or not.
    pub verified: Option<bool>,
    /// Replaces the roles.
    pub roles: Option<Vec<String>>,
    /// Replaces the attributes.
    pub attributes: Option<serde_json::Value>,
}

impl NewPersonInput {
    /// The account this describes, not yet stored (its `number` is the store's to give) and
    /// without a password; returns the initial password beside it.
    fn into_person(self, tenant: &TenantId, now: Timestamp) -> (Person, Option<Password>) {
        let person = Person {
            id: PersonId::generate(),
            number: 0,
            tenant: tenant.clone(),
            login: self.login,
            email: self.email,
            display_name: self.display_name.unwrap_or_else(DisplayName::empty),
            locale: self.locale,
            enabled: self.enabled,
            verified: self.verified,
            roles: self.roles,
            attributes: self.attributes,
            password_hash: None,
            password_changed_at: None,
            must_change_password: false,
            failed_logins: 0,
            locked_until: None,
            created_at: now,
            updated_at: now,
        };
        (person, self.password)
    }
}

/// An imported row as a new account, keeping the hash it brought.
fn imported_person(row: ImportRow, tenant: &TenantId, now: Timestamp) -> Person {
    let input = NewPersonInput {
        login: row.login,
        email: row.email,
        display_name: row.display_name,
        locale: row.locale,
        enabled: row.enabled,
        verified: row.verified,
        roles: row.roles,
        attributes: row.attributes,
        password: None,
    };
    let (mut person, _) = input.into_person(tenant, now);
    person.password_hash = row.password_hash.map(|h| h.into_string());
    person.password_changed_at = person.password_hash.is_some().then_some(now);
    person
}

impl Service {
    /// Creates a person.
    pub async fn create_person(
        &self,
        tenant: &TenantId,
        input: NewPersonInput,
        actor: &Actor,
    ) -> Result<Person> {
        let t = self.tenant(tenant).await?;
        self.refuse_if_external(tenant, "create people")?;
        check_attributes(&input.attributes, &input.roles)?;
        let now = self.now();
        let (mut person, password) = input.into_person(tenant, now);
        if let Some(pw) = password {
            let verdict = self
                .policy_verdict(&t, &t.settings.policy(), &pw, &personal_words(&person))
                .await?;
            if !verdict.is_ok() {
                return Err(CoreError::Policy(verdict));
            }
            person.password_hash = Some(self.hasher.hash(&pw).await?);
            person.password_changed_at = Some(now);
        }
        let audit = self.audit(
            tenant,
            Some(&person.id),
            "person_created",
            actor,
            None,
            json!({"login": person.login}),
        );
        person.number = self.store.insert_person(&person, audit).await?;
        Ok(person)
    }

    /// Imports a batch of checked rows (upsert by login, see [`Store::upsert_people`]); with
    /// `dry_run` nothing is written and the counts say what would happen. Returns per row whether
    /// it was (or would be) inserted. Rows whose roles or attributes are out of bounds are refused
    /// before anything is written, with their index in `rows`.
    ///
    /// [`Store::upsert_people`]: crate::ports::Directory::upsert_people
    pub async fn import_people(
        &self,
        tenant: &TenantId,
        rows: Vec<ImportRow>,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<Vec<bool>> {
        self.tenant(tenant).await?;
        self.refuse_if_external(tenant, "import people and their passwords")?;
        let now = self.now();
        let mut people = Vec::with_capacity(rows.len());
        for row in rows {
            check_attributes(&row.attributes, &row.roles)?;
            people.push(imported_person(row, tenant, now));
        }
        if dry_run {
            let mut seen = std::collections::HashSet::new();
            let mut inserted = Vec::with_capacity(people.len());
            for p in &people {
                let known = self
                    .store
                    .find_person(tenant, &Lookup::login(&p.login))
                    .await?
                    .is_some();
                inserted.push(!known && seen.insert(p.login.as_str().to_owned()));
            }
            return Ok(inserted);
        }
        let audit = self.audit(
            tenant,
            None,
            "people_imported",
            actor,
            None,
            json!({"rows": people.len()}),
        );
        Ok(self.store.upsert_people(&people, audit).await?)
    }

    /// A person by id.
    pub async fn get_person(&self, tenant: &TenantId, id: &PersonId) -> Result<Person> {
        self.tenant(tenant).await?;
        self.store
            .get_person(tenant, id)
            .await?
            .ok_or(CoreError::NotFound("person"))
    }

    /// A person by login, email or id.
    pub async fn find_person(&self, tenant: &TenantId, lookup: &Lookup) -> Result<Person> {
        self.tenant(tenant).await?;
        match self.lookup_person(tenant, lookup).await? {
            Found::Person(p) => Ok(*p),
            Found::Nobody | Found::Unusable(_) => Err(CoreError::NotFound("person")),
        }
    }

    /// Applies `patch` to a person's profile.
    pub async fn update_person(
        &self,
        tenant: &TenantId,
        id: &PersonId,
        patch: PersonPatch,
        actor: &Actor,
    ) -> Result<Person> {
        let mut p = self.get_person(tenant, id).await?;
        let mut changed = Vec::new();
        if let Some(e) = patch.email {
            p.email = e;
            changed.push("email");
        }
        if let Some(n) = patch.display_name {
            p.display_name = n;
            changed.push("display_name");
        }
        if let Some(l) = patch.locale {
            p.locale = l;
            changed.push("locale");
        }
        if let Some(e) = patch.enabled {
            p.enabled = e;
            changed.push("enabled");
        }
        if let Some(v) = patch.verified {
            p.verified = v;
            changed.push("verified");
        }
        if let Some(r) = patch.roles {
            p.roles = r;
            changed.push("roles");
        }
        if let Some(a) = patch.attributes {
            p.attributes = a;
            changed.push("attributes");
        }
        check_attributes(&p.attributes, &p.roles)?;
        p.updated_at = self.now();
        let audit = self.audit(
            tenant,
            Some(id),
            "person_updated",
            actor,
            None,
            json!({"fields": changed, "enabled": p.enabled}),
        );
        self.store.update_person(&p, audit).await?;
        Ok(p)
    }
}

/// The bounds on free-form roles and attributes, checked wherever they enter (an admin, a patch,
/// an import file).
pub(crate) fn check_attributes(attributes: &serde_json::Value, roles: &[String]) -> Result<()> {
    if !attributes.is_object() {
        return Err(crate::types::InvalidInput::new("attributes", "must be a JSON object").into());
    }
    if serde_json::to_string(attributes)
        .map(|s| s.len())
        .unwrap_or(usize::MAX)
        > 16 * 1024
    {
        return Err(crate::types::InvalidInput::new("attributes", "must be at most 16 KiB").into());
    }
    if roles.len() > 64
        || roles
            .iter()
            .any(|r| r.is_empty() || r.chars().count() > 64 || r.chars().any(char::is_control))
    {
        return Err(crate::types::InvalidInput::new(
            "roles",
            "at most 64 roles of 1 to 64 printable characters",
        )
        .into());
    }
    Ok(())
}
