//! The SQLite store: the embedded default.
//!
//! - One file, WAL mode, `synchronous=FULL` (a success means the change is on disk),
//!   `busy_timeout` 5 s, foreign keys on. Other processes (the CLI) may use the same file at the
//!   same time; `BEGIN IMMEDIATE` and the busy timeout serialise their writes with ours.
//! - Writes: a single writer thread with group commit: it takes every queued change (up to 512),
//!   runs them in one `BEGIN IMMEDIATE` transaction, each in its own savepoint so a failing
//!   change is undone alone, commits once (one fsync) and only then answers each caller. If the
//!   commit fails, every change of the batch gets the error.
//! - Reads: a small pool of `query_only` connections, used on tokio's blocking threads.
//! - Schema: [`Schema::migrate`] applies the versioned migrations; [`SqliteStore::open`] does not.
//! - The SQL of each port is in its own module (`directory`, `keys`, `recovery`, `credentials`,
//!   `audit`, `outbox`). Write operations run on the writer thread inside the batch transaction and their
//!   own savepoint, so an `Err` returned from one undoes everything the operation did and nothing
//!   else.

mod audit;
mod credentials;
mod directory;
mod keys;
mod lifecycle;
mod outbox;
mod recovery;
mod retention;
mod rows;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
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
use rusqlite::{ffi, Connection, ErrorCode, OpenFlags};
use tokio::sync::{oneshot, Semaphore};
use tracing::Instrument;

use self::writer::{Job, Task};
use crate::sealing::OutboxKeys;

/// How long a connection waits for another connection's lock before giving up with an error.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// How many read connections run at once.
const READERS: usize = 4;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// The SQLite implementation of every port ([`Store`](resetd_core::ports::Store)). Cheap to share
/// behind an `Arc`; dropping the last handle stops the writer thread after it has finished its
/// current batch.
pub struct SqliteStore {
    inner: Arc<Inner>,
    /// Seals outbox bodies at rest (see [`crate::sealing`]).
    keys: Arc<OutboxKeys>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    idle_readers: Mutex<Vec<Connection>>,
    read_permits: Arc<Semaphore>,
    writer: Option<Sender<Box<dyn Job>>>,
    writer_thread: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer's loop; wait so the file is closed when we return.
        self.writer.take();
        if let Some(t) = self.writer_thread.take() {
            let _ = t.join();
        }
    }
}

/// Maps a SQLite error: unique-key violations become `Conflict` (naming the key), foreign-key
/// violations `NotFound` (the record referred to does not exist); a database locked past the
/// busy timeout, a full disk or an I/O failure `Unavailable` (SQLite has rolled the change back,
/// and the same call may succeed later); anything else `Backend`.
pub(crate) fn db(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        match f.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return StoreError::Conflict(conflict_name(msg.as_deref().unwrap_or("")));
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => return StoreError::NotFound,
            _ => {}
        }
        if matches!(
            f.code,
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
        ) {
            return StoreError::Unavailable(e.to_string());
        }
    }
    StoreError::Backend(e.to_string())
}

/// The name of the key in a message like `UNIQUE constraint failed: person.tenant, person.login`.
fn conflict_name(msg: &str) -> String {
    let columns: Vec<&str> = msg
        .rsplit(": ")
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    let table = columns
        .first()
        .and_then(|c| c.split('.').next())
        .unwrap_or("");
    match table {
        "person" if columns.contains(&"person.login") => "login".into(),
        "" => "record".into(),
        t => t.into(),
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{what} {}: {e}", path.display()))
}

/// Settings every connection of ours uses.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // secure_delete: deleted and overwritten content (an erased outbox body) is zeroed in the
    // file rather than left in free space.
    // temp_store: the savepoint each writer job runs in keeps its undo pages in memory; in a
    // temporary file, creating and filling it was about a third of the writer's time.
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; \
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(db)
}

/// Switches the file to WAL. This needs a brief exclusive lock, so retry while another process
/// (opening the same new file) holds it.
fn enable_wal(conn: &Connection) -> Result<(), StoreError> {
    let mut tries = 0;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(StoreError::Backend(format!(
                    "could not enable WAL (journal mode is {mode})"
                )))
            }
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(db(e)),
        }
    }
}

fn open_rw(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(db)?;
    configure(&conn)?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db)?;
    configure(&conn)?;
    // Readers are read-write connections that refuse to write: a read-only connection could not
    // create the WAL index files when it happens to be the first to open the database.
    conn.execute_batch("PRAGMA query_only = ON;").map_err(db)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and its parent directory, switches
    /// it to WAL and starts the writer thread. It does not migrate: call [`Schema::migrate`].
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, e))?;
        }
        let conn = open_rw(path)?;
        enable_wal(&conn)?;
        // A larger page cache for the one connection that writes: the indexes a reset touches
        // (token hashes, people) are read at random, and a miss is a read from the file.
        conn.execute_batch("PRAGMA cache_size = -32768;")
            .map_err(db)?;
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let thread = std::thread::Builder::new()
            .name("resetd-sqlite-writer".into())
            .spawn(move || writer::run(conn, rx))
            .map_err(|e| StoreError::Backend(format!("starting the writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                idle_readers: Mutex::new(Vec::new()),
                read_permits: Arc::new(Semaphore::new(READERS)),
                writer: Some(tx),
                writer_thread: Some(thread),
            }),
            keys: Arc::new(OutboxKeys::ephemeral()),
        })
    }

    /// The keys that seal outbox bodies at rest. Without this call the store seals with a key
    /// of its own that dies with the process ([`OutboxKeys::ephemeral`]): fine for tests, but
    /// mail still queued at exit could never be sent. The binary always passes its key file.
    pub fn with_outbox_keys(mut self, keys: Arc<OutboxKeys>) -> SqliteStore {
        self.keys = keys;
        self
    }

    /// Seals the bodies of pending email queued in clear by a version of resetd before sealing
    /// (with this store's keys: call it after [`SqliteStore::with_outbox_keys`]), then empties
    /// the WAL so that the clear bodies' pages leave it (`secure_delete` zeroes them in the
    /// file). Returns how many were sealed.
    pub async fn seal_plain_outbox(&self) -> Result<u64, StoreError> {
        let keys = self.keys.clone();
        let sealed = self
            .write(move |c| outbox::seal_plain_outbox(c, &keys))
            .await?;
        if sealed > 0 {
            let path = self.inner.path.clone();
            tokio::task::spawn_blocking(move || {
                let conn = open_rw(&path)?;
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .map_err(db)
            })
            .await
            .map_err(|_| StoreError::Backend("the checkpoint failed unexpectedly".into()))??;
        }
        Ok(sealed)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema version this build migrates to.
    pub fn latest_schema_version() -> i64 {
        schema::latest()
    }

    /// The database's current schema version (0 before the first migration).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.read(schema::version).await
    }

    /// Runs `f` on a pooled read connection on a blocking thread.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.read_untraced(f)
            .instrument(crate::common::span("sqlite", "read"))
            .await
    }

    async fn read_untraced<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .inner
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = inner
                .idle_readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            let conn = match idle {
                Some(c) => c,
                None => open_reader(&inner.path)?,
            };
            let result = f(&conn);
            inner
                .idle_readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
            result
        })
        .await
        .map_err(|_| StoreError::Backend("a database read failed unexpectedly".into()))?
    }

    /// Queues `f` for the writer thread and waits until its batch is committed.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(Box::new(Task::new(f, tx)), rx).await
    }

    /// [`SqliteStore::write`] for an `f` that runs exactly one statement ([`Task::statement`]).
    async fn write_statement<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(Box::new(Task::statement(f, tx)), rx).await
    }

    async fn submit<T>(
        &self,
        job: Box<dyn Job>,
        rx: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let queue = self.inner.writer.as_ref().ok_or_else(closed)?;
        queue.send(job).map_err(|_| closed())?;
        rx.instrument(crate::common::span("sqlite", "write"))
            .await
            .map_err(|_| closed())?
    }
}

fn closed() -> StoreError {
    StoreError::Backend("the SQLite writer has stopped".into())
}

#[async_trait]
impl Schema for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        // Its own connection: the migration's BEGIN IMMEDIATE must not be nested in a batch.
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = open_rw(&path)?;
            schema::migrate(&mut conn)
        })
        .await
        .map_err(|_| StoreError::Backend("the migration failed unexpectedly".into()))?
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(db))
            .await
    }
}

#[async_trait]
impl Directory for SqliteStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let t = tenant.clone();
        self.write(move |c| directory::create_tenant(c, &t)).await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let id = id.clone();
        self.read(move |c| directory::get_tenant(c, &id)).await
    }

    async fn update_tenant_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        let (id, s) = (id.clone(), settings.clone());
        self.write(move |c| directory::update_tenant_settings(c, &id, &s))
            .await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.read(directory::list_tenants).await
    }

    async fn insert_person(&self, person: &Person, audit: NewAudit) -> Result<i64, StoreError> {
        let p = person.clone();
        self.write(move |c| directory::insert_person(c, &p, &audit))
            .await
    }

    async fn get_person(
        &self,
        tenant: &TenantId,
        id: &PersonId,
    ) -> Result<Option<Person>, StoreError> {
        let (t, id) = (tenant.clone(), id.clone());
        self.read(move |c| directory::get_person(c, &t, &id)).await
    }

    async fn find_person(
        &self,
        tenant: &TenantId,
        lookup: &Lookup,
    ) -> Result<Option<Person>, StoreError> {
        let (t, l) = (tenant.clone(), lookup.clone());
        self.read(move |c| directory::find_person(c, &t, &l)).await
    }

    async fn find_people(
        &self,
        tenant: &TenantId,
        lookups: &[Lookup],
    ) -> Result<Vec<Option<Person>>, StoreError> {
        let (t, ls) = (tenant.clone(), lookups.to_vec());
        self.read(move |c| {
            ls.iter()
                .map(|l| directory::find_person(c, &t, l))
                .collect()
        })
        .await
    }

    async fn update_person(&self, person: &Person, audit: NewAudit) -> Result<(), StoreError> {
        let p = person.clone();
        self.write(move |c| directory::update_person(c, &p, &audit))
            .await
    }

    async fn upsert_people(
        &self,
        people: &[Person],
        audit: NewAudit,
    ) -> Result<Vec<bool>, StoreError> {
        let people = people.to_vec();
        self.write(move |c| directory::upsert_people(c, &people, &audit))
            .await
    }

    async fn upsert_shadow_person(&self, person: &Person) -> Result<Person, StoreError> {
        let p = person.clone();
        self.write(move |c| directory::upsert_shadow_person(c, &p))
            .await
    }

    async fn upsert_client(&self, client: &Client, audit: NewAudit) -> Result<(), StoreError> {
        let cl = client.clone();
        self.write(move |c| directory::upsert_client(c, &cl, &audit))
            .await
    }

    async fn get_client(
        &self,
        tenant: &TenantId,
        name: &ClientName,
    ) -> Result<Option<Client>, StoreError> {
        let (t, n) = (tenant.clone(), name.clone());
        self.read(move |c| directory::get_client(c, &t, &n)).await
    }

    async fn list_clients(&self, tenant: &TenantId) -> Result<Vec<Client>, StoreError> {
        let t = tenant.clone();
        self.read(move |c| directory::list_clients(c, &t)).await
    }
}

#[async_trait]
impl Recovery for SqliteStore {
    async fn insert_reset_request(&self, request: &NewResetRequest) -> Result<i64, StoreError> {
        let r = request.clone();
        self.write_statement(move |c| recovery::insert_reset_request(c, &r))
            .await
    }

    async fn count_reset_requests(&self) -> Result<u64, StoreError> {
        self.read(recovery::count_reset_requests).await
    }

    async fn claim_reset_requests(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ResetRequest>, StoreError> {
        self.write(move |c| recovery::claim_reset_requests(c, now, lease_until, limit))
            .await
    }

    async fn resolve_reset_request(
        &self,
        id: i64,
        mut resolution: Resolution,
    ) -> Result<Resolved, StoreError> {
        self.keys.seal_resolution(&mut resolution)?;
        self.write(move |c| recovery::resolve_reset_request(c, id, &resolution))
            .await
    }

    async fn discard_reset_requests(
        &self,
        discards: Vec<(i64, NewAudit)>,
    ) -> Result<(), StoreError> {
        self.write(move |c| recovery::discard_reset_requests(c, &discards))
            .await
    }

    async fn issue_token(&self, mut issue: IssueToken) -> Result<Resolved, StoreError> {
        self.keys.seal(&mut issue.message)?;
        self.write(move |c| recovery::issue_token(c, &issue)).await
    }

    async fn void_token(
        &self,
        tenant: &TenantId,
        hash: SecretHash,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        let t = tenant.clone();
        self.write(move |c| recovery::void_token(c, &t, &hash, at, &audit))
            .await
    }

    async fn find_token(&self, hash: SecretHash) -> Result<Option<ResetToken>, StoreError> {
        self.read(move |c| recovery::find_token(c, &hash)).await
    }

    async fn claim_token(
        &self,
        hash: SecretHash,
        claim: &ClaimId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<(), StoreError> {
        let claim = claim.clone();
        self.write(move |c| recovery::claim_token(c, &hash, &claim, now, lease_until))
            .await
    }

    async fn release_token_claim(
        &self,
        hash: SecretHash,
        claim: &ClaimId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let claim = claim.clone();
        self.write(move |c| recovery::release_token_claim(c, &hash, &claim, now))
            .await
    }
}

#[async_trait]
impl Credentials for SqliteStore {
    async fn change_password(&self, mut change: PasswordChange) -> Result<(), StoreError> {
        self.keys.seal_change(&mut change)?;
        self.write(move |c| credentials::change_password(c, &change))
            .await
    }

    async fn password_history(
        &self,
        tenant: &TenantId,
        person: &PersonId,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let (t, p) = (tenant.clone(), person.clone());
        self.read(move |c| credentials::password_history(c, &t, &p, limit))
            .await
    }

    async fn begin_login(
        &self,
        tenant: &TenantId,
        login: &Login,
        threshold: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<LoginStart, StoreError> {
        let (t, l) = (tenant.clone(), login.clone());
        self.write(move |c| credentials::begin_login(c, &t, &l, threshold, now, until))
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
        let (t, l, p) = (tenant.clone(), login.clone(), person.clone());
        self.write(move |c| {
            credentials::record_login_success(
                c,
                &t,
                &l,
                &p,
                rehash.as_deref(),
                compromised.as_ref(),
            )
        })
        .await
    }

    async fn forgive_login_attempt(
        &self,
        tenant: &TenantId,
        login: &Login,
        threshold: u32,
    ) -> Result<(), StoreError> {
        let (t, l) = (tenant.clone(), login.clone());
        self.write(move |c| credentials::forgive_login_attempt(c, &t, &l, threshold))
            .await
    }

    async fn unlock(
        &self,
        tenant: &TenantId,
        person: &PersonId,
        audit: NewAudit,
    ) -> Result<(), StoreError> {
        let (t, p) = (tenant.clone(), person.clone());
        self.write(move |c| credentials::unlock(c, &t, &p, &audit))
            .await
    }
}

#[async_trait]
impl Audit for SqliteStore {
    async fn append_audit(&self, audit: NewAudit) -> Result<(), StoreError> {
        self.write(move |c| audit::append_audit(c, &audit)).await
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let t = tenant.clone();
        self.read(move |c| audit::list_audit(c, &t, before, limit))
            .await
    }
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn claim_outbox(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let claimed = self
            .write(move |c| outbox::claim_outbox(c, now, lease_until, limit))
            .await?;
        let (opened, unreadable) = self.keys.open_claimed(claimed);
        for (id, why) in unreadable {
            // Dead, and the sealed body kept: restoring its key and retrying sends it.
            self.write(move |c| outbox::mark_unreadable(c, id, &why))
                .await?;
        }
        Ok(opened)
    }

    async fn mark_sent(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        self.write(move |c| outbox::mark_sent(c, id, at)).await
    }

    async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let e = error.to_owned();
        self.write(move |c| outbox::mark_failed(c, id, &e, retry_at))
            .await
    }

    async fn list_outbox(
        &self,
        tenant: Option<&TenantId>,
        status: Option<OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let t = tenant.cloned();
        self.read(move |c| outbox::list_outbox(c, t.as_ref(), status, limit))
            .await
    }

    async fn retry_outbox(
        &self,
        tenant: Option<&TenantId>,
        id: i64,
        at: Timestamp,
    ) -> Result<TenantId, StoreError> {
        let t = tenant.cloned();
        self.write(move |c| outbox::retry_outbox(c, t.as_ref(), id, at))
            .await
    }

    async fn outbox_counts(&self) -> Result<Vec<(OutboxStatus, u64)>, StoreError> {
        self.read(outbox::outbox_counts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_names() {
        assert_eq!(
            conflict_name("UNIQUE constraint failed: person.tenant, person.login"),
            "login"
        );
        assert_eq!(
            conflict_name("UNIQUE constraint failed: person.id"),
            "person"
        );
        assert_eq!(
            conflict_name("UNIQUE constraint failed: tenant.id"),
            "tenant"
        );
        assert_eq!(
            conflict_name("UNIQUE constraint failed: api_key.hash"),
            "api_key"
        );
        assert_eq!(conflict_name(""), "record");
    }
}
