//! The PostgreSQL schema as an ordered list of migrations, tracked in `resetd_schema_migrations`.
//!
//! Rules: never edit a migration that has shipped; append a new one. The versions are this
//! backend's own (SQLite counts separately). Timestamps are BIGINT Unix milliseconds, JSON columns
//! hold text written by `serde_json`, counters are BIGINT (so every integer parameter is an `i64`).
//!
//! Several instances may start at once: [`migrate`] runs in one transaction that first takes a
//! transaction-scoped advisory lock derived from the schema name, so the instances queue up; the
//! first applies the migrations, the others then find the schema current and change nothing.

use resetd_core::model::fold_login;
use resetd_core::store::StoreError;
use tokio_postgres::GenericClient;

use super::pool::{Db, Pooled};

/// The migrations in order; migration `i` (0-based) brings the schema to version `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema (design.md section 2), the same model as SQLite's versions 1-2.
    r#"
CREATE TABLE tenant (
    id          TEXT PRIMARY KEY,
    settings    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE person (
    id                   TEXT PRIMARY KEY,
    tenant               TEXT NOT NULL REFERENCES tenant(id),
    number               BIGINT NOT NULL,
    login                TEXT NOT NULL,
    email                TEXT NOT NULL,
    display_name         TEXT NOT NULL DEFAULT '',
    locale               TEXT,
    enabled              BOOLEAN NOT NULL DEFAULT TRUE,
    roles                TEXT NOT NULL DEFAULT '[]',
    attributes           TEXT NOT NULL DEFAULT '{}',
    password_hash        TEXT,
    password_changed_at  BIGINT,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins        BIGINT NOT NULL DEFAULT 0,
    locked_until         BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    CONSTRAINT person_login UNIQUE (tenant, login),
    CONSTRAINT person_number UNIQUE (tenant, number)
);
-- Email lookups ignore ASCII case only (as SQLite's NOCASE does, so both backends find the same
-- people); the oldest person (lowest number) wins.
CREATE INDEX person_email ON person
    (tenant, translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), number);

CREATE TABLE api_key (
    id            TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL REFERENCES tenant(id),
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    hash          BYTEA NOT NULL CONSTRAINT api_key_hash UNIQUE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_key_tenant ON api_key (tenant);

CREATE TABLE client (
    tenant            TEXT NOT NULL REFERENCES tenant(id),
    name              TEXT NOT NULL,
    link_template     TEXT NOT NULL,
    allowed_prefixes  TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- Identity values are never reused, so a worker holding the id of a request that another worker
-- already resolved can never resolve a newer request by mistake. No foreign key: the row must be
-- written cheaply whatever the account, and it is short-lived. claimed_until is the lease of the
-- worker resolving it (NULL: nobody holds it).
CREATE TABLE reset_request (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant         TEXT NOT NULL,
    lookup         TEXT NOT NULL,
    client         TEXT,
    locale         TEXT,
    ip             TEXT,
    created_at     BIGINT NOT NULL,
    claimed_until  BIGINT
);

CREATE TABLE reset_token (
    hash        BYTEA PRIMARY KEY,
    tenant      TEXT NOT NULL,
    person      TEXT NOT NULL REFERENCES person(id),
    client      TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT,
    ip          TEXT
);
CREATE INDEX reset_token_person ON reset_token (tenant, person, created_at);

CREATE TABLE outbox (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    text             TEXT NOT NULL,
    html             TEXT,
    message_id       TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
-- Claims scan only pending rows, in due order.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_tenant ON outbox (tenant, id);

-- No foreign keys: the log outlives what it talks about (and records requests for unknown tenants).
CREATE TABLE audit_event (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant  TEXT NOT NULL,
    person  TEXT,
    kind    TEXT NOT NULL,
    actor   TEXT NOT NULL,
    ip      TEXT,
    at      BIGINT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_event_tenant ON audit_event (tenant, id);

CREATE TABLE password_history (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant  TEXT NOT NULL,
    person  TEXT NOT NULL REFERENCES person(id),
    hash    TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX password_history_person ON password_history (tenant, person, id);
"#,
    // 2: whether a person's email address is confirmed (Crafter Profile's `verified`).
    r#"
ALTER TABLE person ADD COLUMN verified BOOLEAN NOT NULL DEFAULT FALSE;
"#,
    // 3: failed logins are counted per tenant and login, whether or not anyone has the login, so
    // a lock says nothing about who exists; an attempt is reserved here before its password is
    // checked (issue 13; SQLite's version 4). The person's failed_logins and locked_until are no
    // longer read; a lock in force is carried over.
    r#"
CREATE TABLE login_attempt (
    tenant        TEXT NOT NULL,
    login         TEXT NOT NULL,
    -- Attempts granted in the window (each reserved before its password was checked).
    failures      BIGINT NOT NULL,
    -- When the count is forgotten; a lock ends then too.
    window_until  BIGINT NOT NULL,
    -- Set when the count reached the threshold.
    locked_until  BIGINT,
    -- Whether the latest attempt was granted (read back by the upsert's RETURNING).
    granted       BOOLEAN NOT NULL,
    PRIMARY KEY (tenant, login)
);
CREATE INDEX login_attempt_window ON login_attempt (window_until);
INSERT INTO login_attempt (tenant, login, failures, window_until, locked_until, granted)
    SELECT tenant, login, failed_logins, locked_until, locked_until, FALSE FROM person
    WHERE locked_until IS NOT NULL;
"#,
    // 4: outbox bodies hold reset links: new ones are sealed (crate::sealing), and the bodies of
    // messages already sent or dead are erased.
    r#"
UPDATE outbox SET text = '', html = NULL WHERE status IN ('sent', 'dead');
"#,
    // 5: the retry budget of a message is a deadline, set when it is queued (as SQLite's 6). Rows
    // queued before: a reset link gets its tenant's link lifetime after it was queued (30 minutes
    // if the settings lack it), a notice a day.
    r#"
ALTER TABLE outbox ADD COLUMN deliver_by BIGINT;
UPDATE outbox o SET deliver_by = o.created_at + 1000 * CASE o.kind
    WHEN 'reset_link' THEN COALESCE(
        (SELECT (t.settings::jsonb ->> 'token_ttl_secs')::bigint FROM tenant t WHERE t.id = o.tenant),
        1800)
    ELSE 86400 END;
ALTER TABLE outbox ALTER COLUMN deliver_by SET NOT NULL;
"#,
    // 6: what each token was minted for (as SQLite's 7): every token so far was a "forgot
    // password" link. No CHECK, so that a newer version may add purposes; this one reads a purpose
    // it does not know as no token.
    r#"
ALTER TABLE reset_token ADD COLUMN purpose TEXT NOT NULL DEFAULT 'reset';
"#,
    // 7: logins found ignoring letter case (Lookup::LoginAnyCase) through their fold, indexed
    // (as SQLite's 8). Not unique: two logins may fold alike. The fold is the core's
    // (resetd_core::model::fold_login), which lower() is not (it follows the database's
    // locale), so existing rows are filled in by `fold_logins` right after this runs.
    r#"
ALTER TABLE person ADD COLUMN login_folded TEXT NOT NULL DEFAULT '';
CREATE INDEX person_login_folded ON person (tenant, login_folded);
"#,
    // 8: a token claimed for a password write to an external system (as SQLite's 9; issue 17,
    // the rule in docs/architecture.md): the claimer's random id and its lease's end. A token
    // with a claim is never live; releasing clears both.
    r#"
ALTER TABLE reset_token ADD COLUMN claim_id TEXT;
ALTER TABLE reset_token ADD COLUMN claimed_until BIGINT;
"#,
    // 9: API keys may expire, and a rotation keeps the replaced secret's hash until the end of
    // its overlap (as SQLite's 10). Unique like `hash`, so a secret names one key whichever
    // column holds it.
    r#"
ALTER TABLE api_key ADD COLUMN expires_at BIGINT;
ALTER TABLE api_key ADD COLUMN previous_hash BYTEA CONSTRAINT api_key_previous_hash UNIQUE;
ALTER TABLE api_key ADD COLUMN previous_until BIGINT;
"#,
    // 10: retention deletes tokens a while after they expired (as SQLite's 11).
    r#"
CREATE INDEX reset_token_expires ON reset_token (expires_at);
"#,
];

/// The migration after which [`fold_logins`] fills in `person.login_folded`.
const FOLDED_LOGINS: i64 = 7;

/// Writes every person's `login_folded` with the core's fold (migration 7's Rust step).
async fn fold_logins(db: &Db<'_, impl GenericClient + Sync>) -> Result<(), StoreError> {
    let rows = db.all("SELECT tenant, id, login FROM person", &[]).await?;
    for r in rows {
        let (tenant, id, login): (String, String, String) = (
            r.try_get(0).map_err(super::db)?,
            r.try_get(1).map_err(super::db)?,
            r.try_get(2).map_err(super::db)?,
        );
        db.exec(
            "UPDATE person SET login_folded = $3 WHERE tenant = $1 AND id = $2",
            &[&tenant, &id, &fold_login(&login)],
        )
        .await?;
    }
    Ok(())
}

/// The schema version this build writes.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// The advisory lock key for migrating `schema` (the same in every resetd process): FNV-1a of a
/// fixed prefix and the schema name, so migrations of different schemas do not wait for each other.
pub(crate) fn lock_key(schema: Option<&str>) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"resetd-migrate:"
        .iter()
        .chain(schema.unwrap_or("").as_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// Brings the schema up to date in one transaction, under the advisory lock. `schema` (already
/// validated as a plain identifier) is created first when named.
pub(crate) async fn migrate(conn: &mut Pooled, schema: Option<&str>) -> Result<(), StoreError> {
    let tx = conn.begin().await?;
    let result = async {
        let db = tx.db();
        db.one(
            "SELECT pg_advisory_xact_lock($1)",
            &[&lock_key(schema)],
        )
        .await?;
        if let Some(s) = schema {
            // A validated identifier: lower-case letters, digits and '_' only.
            db.batch(&format!("CREATE SCHEMA IF NOT EXISTS {s}")).await?;
        }
        db.batch(
            "CREATE TABLE IF NOT EXISTS resetd_schema_migrations (
                 version     BIGINT PRIMARY KEY,
                 applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
        let current: i64 = db
            .one(
                "SELECT COALESCE(MAX(version), 0) FROM resetd_schema_migrations",
                &[],
            )
            .await?
            .try_get(0)
            .map_err(super::db)?;
        if current < 0 || current > latest() {
            return Err(StoreError::Backend(format!(
                "the database schema is version {current}; this build of resetd knows versions 0 to {}",
                latest()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let version = i as i64 + 1;
            db.batch(sql)
                .await
                .map_err(|e| StoreError::Backend(format!("migration {version}: {e}")))?;
            if version == FOLDED_LOGINS {
                fold_logins(&db).await?;
            }
            db.exec(
                "INSERT INTO resetd_schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await?;
        }
        Ok(())
    }
    .await;
    tx.finish(result).await
}

/// The database's current schema version (0 before the first migration).
pub(crate) async fn version(conn: &mut Pooled) -> Result<i64, StoreError> {
    let db = conn.db();
    let exists: bool = db
        .one(
            "SELECT to_regclass('resetd_schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .try_get(0)
        .map_err(super::db)?;
    if !exists {
        return Ok(0);
    }
    db.one(
        "SELECT COALESCE(MAX(version), 0) FROM resetd_schema_migrations",
        &[],
    )
    .await?
    .try_get(0)
    .map_err(super::db)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;
    use crate::postgres::testing::{server_url, TestSchema};

    /// Migration 3 on a version-2 schema holding queued mail: each row gets its deadline.
    #[tokio::test]
    async fn queued_messages_get_a_deadline_from_their_kind_and_tenant() {
        let Some(server) = server_url().await else {
            return;
        };
        let schema = TestSchema::new(&server);
        let (c, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        c.batch_execute(&format!(
            "CREATE SCHEMA {0}; SET search_path TO {0};",
            schema.name
        ))
        .await
        .unwrap();
        for m in &MIGRATIONS[..2] {
            c.batch_execute(m).await.unwrap();
        }
        c.batch_execute(
            "INSERT INTO tenant VALUES ('acme', '{\"token_ttl_secs\":600}', 0);
             INSERT INTO tenant VALUES ('bare', '{}', 0);
             INSERT INTO outbox (tenant, kind, recipient, subject, text, message_id, next_attempt_at, status, created_at) VALUES
                 ('acme', 'reset_link', 'a@x', 's', 't', '<1@x>', 5, 'pending', 5000),
                 ('acme', 'password_changed', 'a@x', 's', 't', '<2@x>', 5, 'pending', 5000),
                 ('bare', 'reset_link', 'b@x', 's', 't', '<3@x>', 5, 'dead', 7000);",
        )
        .await
        .unwrap();
        for m in &MIGRATIONS[2..] {
            c.batch_execute(m).await.unwrap();
        }
        let deadlines: Vec<i64> = c
            .query("SELECT deliver_by FROM outbox ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            deadlines,
            [5000 + 600_000, 5000 + 86_400_000, 7000 + 1_800_000]
        );
        drop(c);
    }

    /// Migration 6 on a version-5 schema holding a token: it is a reset token.
    #[tokio::test]
    async fn tokens_from_before_purposes_are_reset_tokens() {
        let Some(server) = server_url().await else {
            return;
        };
        let schema = TestSchema::new(&server);
        let (c, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        c.batch_execute(&format!(
            "CREATE SCHEMA {0}; SET search_path TO {0};",
            schema.name
        ))
        .await
        .unwrap();
        for m in &MIGRATIONS[..5] {
            c.batch_execute(m).await.unwrap();
        }
        c.batch_execute(
            "INSERT INTO tenant VALUES ('acme', '{}', 0);
             INSERT INTO person (id, tenant, number, login, email, created_at, updated_at)
                 VALUES ('a', 'acme', 1, 'alice', 'a@x', 0, 0);
             INSERT INTO reset_token (hash, tenant, person, created_at, expires_at)
                 VALUES ('\\x00', 'acme', 'a', 0, 1);",
        )
        .await
        .unwrap();
        for m in &MIGRATIONS[5..] {
            c.batch_execute(m).await.unwrap();
        }
        let purpose: String = c
            .query_one("SELECT purpose FROM reset_token", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(purpose, "reset");
        drop(c);
    }
}
