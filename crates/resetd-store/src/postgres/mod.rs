//! The PostgreSQL store: for several stateless resetd instances sharing one database.
//!
//! - Selected by `database_url = "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?...]"` (or
//!   `postgresql://`). The usual libpq URL parameters are understood (`connect_timeout`,
//!   `application_name`, `options`, ...); resetd adds two of its own, removed before connecting:
//!   `schema=NAME` (tables live in that schema, created by the migration; default: the server's
//!   `search_path`) and `pool_size=N` (connections per instance, default [`DEFAULT_POOL_SIZE`]).
//!   No TLS: run resetd next to its database or through a tunnel.
//! - Every change that touches several rows is one transaction; cross-instance guarantees
//!   (single-use tokens, cool-down, lockout counters, outbox and request claims) are made by row
//!   locks and conditional updates in the database, never by process memory. The SQL of each
//!   port is in its own module (`directory`, `recovery`, `credentials`, `audit`, `outbox`); the
//!   order in which they take row locks is written at the top of `recovery`.
//! - Schema: [`Schema::migrate`] applies the versioned migrations under an advisory lock, so
//!   instances starting together are safe; [`PostgresStore::connect`] does not migrate.

mod arrivals;
mod audit;
mod credentials;
mod directory;
mod keys;
mod lifecycle;
mod outbox;
mod pool;
mod recovery;
mod retention;
mod rows;
mod schema;
#[doc(hidden)]
pub mod testing;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use resetd_core::model::{
    AuditEvent, Client, Lookup, NewAudit, NewResetRequest, OutboxMessage, OutboxStatus, Person,
    ResetRequest, ResetToken, Tenant, TenantSettings, Timestamp,
};
use resetd_core::ports::{
    Audit, ClaimId, Credentials, Directory, IssueToken, LoginStart, Outbox, PasswordChange,
    Recovery, Resolution, Resolved, Schema, StoreError,
};
use resetd_core::secret::SecretHash;
use resetd_core::types::{ClientName, Login, PersonId, TenantId};
use tokio_postgres::error::SqlState;

use self::pool::Pool;
use crate::sealing::OutboxKeys;

/// Connections per instance unless the URL says `pool_size=N`.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// The most connections one instance may open.
const MAX_POOL_SIZE: usize = 256;

/// How long opening a connection may take unless the URL sets `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `url` names a PostgreSQL database (and so selects this store).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A parsed `database_url`.
#[derive(Clone)]
pub struct PgOptions {
    config: tokio_postgres::Config,
    schema: Option<String>,
    pool_size: usize,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PgOptions {
    /// Parses a `postgres://` URL, taking out resetd's own `schema` and `pool_size` parameters.
    /// Errors never repeat the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<PgOptions, String> {
        if !is_postgres_url(url) {
            return Err("a PostgreSQL URL starts with postgres:// or postgresql://".into());
        }
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, q),
            None => (url, ""),
        };
        let mut schema = None;
        let mut pool_size = DEFAULT_POOL_SIZE;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "schema" => schema = Some(parse_schema(value)?),
                "pool_size" => {
                    pool_size = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
                        .ok_or_else(|| {
                            format!("pool_size must be a number from 1 to {MAX_POOL_SIZE}")
                        })?
                }
                _ => rest.push(pair),
            }
        }
        let cleaned = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut config = tokio_postgres::Config::from_str(&cleaned)
            .map_err(|e| format!("not a valid PostgreSQL URL ({})", describe(&e)))?;
        if config.get_user().is_none() {
            return Err(
                "the PostgreSQL URL must name a user (postgres://USER@HOST/DATABASE)".into(),
            );
        }
        if config.get_hosts().is_empty() {
            return Err(
                "the PostgreSQL URL must name a host (postgres://USER@HOST/DATABASE)".into(),
            );
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("resetd");
        }
        if let Some(s) = &schema {
            // Every connection resolves table names in the schema (and only there).
            let options = match config.get_options() {
                Some(o) if !o.is_empty() => format!("{o} -c search_path={s}"),
                _ => format!("-c search_path={s}"),
            };
            config.options(options);
        }
        Ok(PgOptions {
            config,
            schema,
            pool_size,
        })
    }

    /// The schema named by the URL, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Connections per instance.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// A description for logs and messages: user, hosts, database and schema, never the password.
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let host = match h {
                    tokio_postgres::config::Host::Tcp(t) => t.clone(),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                };
                match self
                    .config
                    .get_ports()
                    .get(i)
                    .or(self.config.get_ports().first())
                {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                }
            })
            .collect();
        let mut s = format!(
            "postgres://{}@{}/{}",
            self.config.get_user().unwrap_or(""),
            hosts.join(","),
            self.config.get_dbname().unwrap_or("")
        );
        if let Some(schema) = &self.schema {
            s.push_str(&format!(" (schema {schema})"));
        }
        s
    }
}

/// A schema name: a plain lower-case SQL identifier, so it needs no quoting anywhere.
fn parse_schema(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.starts_with("pg_");
    if ok {
        Ok(s.to_owned())
    } else {
        Err("schema must be 1 to 63 of a-z, 0-9 and '_', not starting with a digit or pg_".into())
    }
}

/// The text of a driver error with its cause. For database errors only severity, code and
/// message: their DETAIL may quote row values.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(d) = e.as_db_error() {
        return format!("{}: {} ({})", d.severity(), d.message(), d.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Maps a driver error: unique violations become `Conflict` (naming the key as the SQLite store
/// does), foreign-key violations `NotFound` (the record referred to does not exist); a lost
/// connection, a server shutting down or starting, or one out of disk, memory or connections
/// `Unavailable` (the same call may succeed later); anything else `Backend`.
pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    if let Some(d) = e.as_db_error() {
        if *d.code() == SqlState::UNIQUE_VIOLATION {
            return StoreError::Conflict(conflict_name(d.constraint(), d.table()));
        }
        if *d.code() == SqlState::FOREIGN_KEY_VIOLATION {
            return StoreError::NotFound;
        }
        if is_transient(d.code()) {
            return StoreError::Unavailable(describe(&e));
        }
    } else if e.is_closed() || io_cause(&e) {
        return StoreError::Unavailable(describe(&e));
    }
    StoreError::Backend(describe(&e))
}

/// SQLSTATEs after which a retry may succeed: class 08 (connection exception), 53 (insufficient
/// resources: disk full, out of memory, too many connections), 57P01-57P03 (the server is
/// shutting down, crashed or still starting) and 40001/40P01 (serialization failure, deadlock).
fn is_transient(code: &SqlState) -> bool {
    let c = code.code();
    c.starts_with("08")
        || c.starts_with("53")
        || matches!(c, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
}

/// Whether the error came from the socket (the link to the server broke or never formed).
fn io_cause(e: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}

fn conflict_name(constraint: Option<&str>, table: Option<&str>) -> String {
    match (constraint, table) {
        (Some("person_login"), _) => "login".into(),
        (_, Some(t)) if !t.is_empty() => t.into(),
        _ => "record".into(),
    }
}

/// The PostgreSQL implementation of every port ([`Store`](resetd_core::ports::Store)). Cheap to
/// share behind an `Arc`.
pub struct PostgresStore {
    pool: Arc<Pool>,
    options: PgOptions,
    /// Seals outbox bodies at rest (see [`crate::sealing`]).
    keys: Arc<OutboxKeys>,
    /// Reset requests arriving together are inserted together (see [`arrivals`]).
    arrivals: arrivals::Arrivals,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.options.describe())
            .field("pool_size", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Parses `url` and opens one connection to check that the database answers. It does not
    /// migrate: call [`Schema::migrate`].
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let options = PgOptions::parse(url).map_err(StoreError::Backend)?;
        Self::with_options(options).await
    }

    /// Like [`PostgresStore::connect`] with already parsed options.
    pub async fn with_options(options: PgOptions) -> Result<PostgresStore, StoreError> {
        let pool = Pool::new(options.config.clone(), options.pool_size);
        drop(pool.get().await?);
        Ok(PostgresStore {
            pool,
            options,
            keys: Arc::new(OutboxKeys::ephemeral()),
            arrivals: arrivals::Arrivals::default(),
        })
    }

    /// The keys that seal outbox bodies at rest. Without this call the store seals with a key
    /// of its own that dies with the process ([`OutboxKeys::ephemeral`]): fine for tests, but
    /// mail still queued at exit, or claimed by another instance, could never be sent. The
    /// binary always passes its key file, and every instance on one database needs the same.
    pub fn with_outbox_keys(mut self, keys: Arc<OutboxKeys>) -> PostgresStore {
        self.keys = keys;
        self
    }

    /// Seals the bodies of pending email queued in clear by a version of resetd before sealing
    /// (with this store's keys: call it after [`PostgresStore::with_outbox_keys`]). Returns how
    /// many were sealed. The clear row versions stay in the table's heap until PostgreSQL's
    /// vacuum reuses them; no query or dump sees them.
    pub async fn seal_plain_outbox(&self) -> Result<u64, StoreError> {
        outbox::seal_plain_outbox(&mut self.pool.get().await?, &self.keys).await
    }

    /// What this store is connected to (no password), for logs.
    pub fn describe(&self) -> String {
        self.options.describe()
    }

    /// The schema version this build migrates to.
    pub fn latest_schema_version() -> i64 {
        schema::latest()
    }

    /// The database's current schema version (0 before the first migration).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        schema::version(&mut self.pool.get().await?).await
    }
}

#[async_trait]
impl Schema for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut c = self.pool.get().await?;
        schema::migrate(&mut c, self.options.schema()).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.pool.get().await?;
        c.db().one("SELECT 1", &[]).await.map(|_| ())
    }
}

#[async_trait]
impl Directory for PostgresStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        directory::create_tenant(&mut self.pool.get().await?, tenant).await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        directory::get_tenant(&mut self.pool.get().await?, id).await
    }

    async fn update_tenant_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        directory::update_tenant_settings(&mut self.pool.get().await?, id, settings).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        directory::list_tenants(&mut self.pool.get().await?).await
    }

    async fn insert_person(&self, person: &Person, audit: NewAudit) -> Result<i64, StoreError> {
        directory::insert_person(&mut self.pool.get().await?, person, &audit).await
    }

    async fn get_person(
        &self,
        tenant: &TenantId,
        id: &PersonId,
    ) -> Result<Option<Person>, StoreError> {
        directory::get_person(&mut self.pool.get().await?, tenant, id).await
    }

    async fn find_person(
        &self,
        tenant: &TenantId,
        lookup: &Lookup,
    ) -> Result<Option<Person>, StoreError> {
        directory::find_person(&mut self.pool.get().await?, tenant, lookup).await
    }

    async fn update_person(&self, person: &Person, audit: NewAudit) -> Result<(), StoreError> {
        directory::update_person(&mut self.pool.get().await?, person, &audit).await
    }

    async fn upsert_people(
        &self,
        people: &[Person],
        audit: NewAudit,
    ) -> Result<Vec<bool>, StoreError> {
        directory::upsert_people(&mut self.pool.get().await?, people, &audit).await
    }

    async fn upsert_shadow_person(&self, person: &Person) -> Result<Person, StoreError> {
        directory::upsert_shadow_person(&mut self.pool.get().await?, person).await
    }

    async fn upsert_client(&self, client: &Client, audit: NewAudit) -> Result<(), StoreError> {
        directory::upsert_client(&mut self.pool.get().await?, client, &audit).await
    }

    async fn get_client(
        &self,
        tenant: &TenantId,
        name: &ClientName,
    ) -> Result<Option<Client>, StoreError> {
        directory::get_client(&mut self.pool.get().await?, tenant, name).await
    }

    async fn list_clients(&self, tenant: &TenantId) -> Result<Vec<Client>, StoreError> {
        directory::list_clients(&mut self.pool.get().await?, tenant).await
    }
}

#[async_trait]
impl Recovery for PostgresStore {
    async fn insert_reset_request(&self, request: &NewResetRequest) -> Result<i64, StoreError> {
        self.arrivals.insert(&self.pool, request).await
    }

    async fn count_reset_requests(&self) -> Result<u64, StoreError> {
        recovery::count_reset_requests(&mut self.pool.get().await?).await
    }

    async fn claim_reset_requests(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ResetRequest>, StoreError> {
        recovery::claim_reset_requests(&mut self.pool.get().await?, now, lease_until, limit).await
    }

    async fn resolve_reset_request(
        &self,
        id: i64,
        mut resolution: Resolution,
    ) -> Result<Resolved, StoreError> {
        self.keys.seal_resolution(&mut resolution)?;
        recovery::resolve_reset_request(&mut self.pool.get().await?, id, &resolution).await
    }

    async fn discard_reset_requests(
        &self,
        discards: Vec<(i64, NewAudit)>,
    ) -> Result<(), StoreError> {
        recovery::discard_reset_requests(&mut self.pool.get().await?, &discards).await
    }

    async fn issue_token(&self, mut issue: IssueToken) -> Result<Resolved, StoreError> {
        self.keys.seal(&mut issue.message)?;
        recovery::issue_token(&mut self.pool.get().await?, &issue).await
    }

    async fn void_token(
        &self,
        tenant: &TenantId,
        hash: SecretHash,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        recovery::void_token(&mut self.pool.get().await?, tenant, &hash, at, &audit).await
    }

    async fn find_token(&self, hash: SecretHash) -> Result<Option<ResetToken>, StoreError> {
        recovery::find_token(&mut self.pool.get().await?, &hash).await
    }

    async fn claim_token(
        &self,
        hash: SecretHash,
        claim: &ClaimId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<(), StoreError> {
        recovery::claim_token(&mut self.pool.get().await?, &hash, claim, now, lease_until).await
    }

    async fn release_token_claim(
        &self,
        hash: SecretHash,
        claim: &ClaimId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        recovery::release_token_claim(&mut self.pool.get().await?, &hash, claim, now).await
    }
}

#[async_trait]
impl Credentials for PostgresStore {
    async fn change_password(&self, mut change: PasswordChange) -> Result<(), StoreError> {
        self.keys.seal_change(&mut change)?;
        credentials::change_password(&mut self.pool.get().await?, &change).await
    }

    async fn password_history(
        &self,
        tenant: &TenantId,
        person: &PersonId,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        credentials::password_history(&mut self.pool.get().await?, tenant, person, limit).await
    }

    async fn begin_login(
        &self,
        tenant: &TenantId,
        login: &Login,
        threshold: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<LoginStart, StoreError> {
        credentials::begin_login(
            &mut self.pool.get().await?,
            tenant,
            login,
            threshold,
            now,
            until,
        )
        .await
    }

    async fn record_login_success(
        &self,
        tenant: &TenantId,
        login: &Login,
        person: &PersonId,
        rehash: Option<String>,
        compromised: Option<NewAudit>,
    ) -> Result<(), StoreError> {
        credentials::record_login_success(
            &mut self.pool.get().await?,
            tenant,
            login,
            person,
            rehash.as_deref(),
            compromised.as_ref(),
        )
        .await
    }

    async fn forgive_login_attempt(
        &self,
        tenant: &TenantId,
        login: &Login,
        threshold: u32,
    ) -> Result<(), StoreError> {
        credentials::forgive_login_attempt(&mut self.pool.get().await?, tenant, login, threshold)
            .await
    }

    async fn unlock(
        &self,
        tenant: &TenantId,
        person: &PersonId,
        audit: NewAudit,
    ) -> Result<(), StoreError> {
        credentials::unlock(&mut self.pool.get().await?, tenant, person, &audit).await
    }
}

#[async_trait]
impl Audit for PostgresStore {
    async fn append_audit(&self, audit: NewAudit) -> Result<(), StoreError> {
        audit::append_audit(&mut self.pool.get().await?, &audit).await
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        audit::list_audit(&mut self.pool.get().await?, tenant, before, limit).await
    }
}

#[async_trait]
impl Outbox for PostgresStore {
    async fn claim_outbox(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let claimed =
            outbox::claim_outbox(&mut self.pool.get().await?, now, lease_until, limit).await?;
        let (opened, unreadable) = self.keys.open_claimed(claimed);
        for (id, why) in unreadable {
            // Dead, and the sealed body kept: restoring its key and retrying sends it.
            outbox::mark_unreadable(&mut self.pool.get().await?, id, &why).await?;
        }
        Ok(opened)
    }

    async fn mark_sent(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        outbox::mark_sent(&mut self.pool.get().await?, id, at).await
    }

    async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        outbox::mark_failed(&mut self.pool.get().await?, id, error, retry_at).await
    }

    async fn list_outbox(
        &self,
        tenant: Option<&TenantId>,
        status: Option<OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        outbox::list_outbox(&mut self.pool.get().await?, tenant, status, limit).await
    }

    async fn retry_outbox(
        &self,
        tenant: Option<&TenantId>,
        id: i64,
        at: Timestamp,
    ) -> Result<TenantId, StoreError> {
        outbox::retry_outbox(&mut self.pool.get().await?, tenant, id, at).await
    }

    async fn outbox_counts(&self) -> Result<Vec<(OutboxStatus, u64)>, StoreError> {
        outbox::outbox_counts(&mut self.pool.get().await?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_resetd_parameters_removed() {
        let o = PgOptions::parse(
            "postgres://app:s3cret@db.example.com:6432/resetd?schema=tenant_a&pool_size=4&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(o.schema(), Some("tenant_a"));
        assert_eq!(o.pool_size(), 4);
        assert_eq!(
            o.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert_eq!(o.config.get_options(), Some("-c search_path=tenant_a"));
        assert_eq!(
            o.describe(),
            "postgres://app@db.example.com:6432/resetd (schema tenant_a)"
        );
        assert!(!format!("{o:?}").contains("s3cret"));

        let o = PgOptions::parse("postgresql://app@localhost/resetd").unwrap();
        assert_eq!((o.schema(), o.pool_size()), (None, DEFAULT_POOL_SIZE));
        assert_eq!(o.config.get_options(), None);
        assert_eq!(o.config.get_application_name(), Some("resetd"));
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for (url, needle) in [
            ("mysql://x", "postgres://"),
            ("postgres://app:s3cret@h/db?schema=Bad-Name", "schema"),
            ("postgres://app:s3cret@h/db?schema=pg_catalog", "schema"),
            ("postgres://app:s3cret@h/db?schema=", "schema"),
            ("postgres://app:s3cret@h/db?pool_size=0", "pool_size"),
            ("postgres://app:s3cret@h/db?pool_size=many", "pool_size"),
            ("postgres://app:s3cret@h/db?nonsense=1", "valid"),
            ("postgres://h/db", "user"),
        ] {
            let e = PgOptions::parse(url).unwrap_err();
            assert!(e.contains(needle), "{url}: {e}");
            assert!(!e.contains("s3cret"), "{url}: {e}");
        }
    }

    #[test]
    fn conflicts_are_named_like_sqlite_does() {
        assert_eq!(conflict_name(Some("person_login"), Some("person")), "login");
        assert_eq!(conflict_name(Some("tenant_pkey"), Some("tenant")), "tenant");
        assert_eq!(
            conflict_name(Some("api_key_hash"), Some("api_key")),
            "api_key"
        );
        assert_eq!(conflict_name(None, None), "record");
    }

    #[test]
    fn migration_lock_keys_differ_per_schema() {
        assert_eq!(schema::lock_key(Some("a")), schema::lock_key(Some("a")));
        assert_ne!(schema::lock_key(Some("a")), schema::lock_key(Some("b")));
        assert_ne!(schema::lock_key(None), schema::lock_key(Some("a")));
    }
}
