//! The SQLite schema as an ordered list of migrations, tracked with `PRAGMA user_version`.
//!
//! Rules: never edit a migration that has shipped; append a new one. All timestamps are INTEGER
//! Unix milliseconds. JSON columns hold text written by `serde_json`.

use resetd_core::model::fold_login;
use resetd_core::store::StoreError;
use rusqlite::{Connection, TransactionBehavior};

use super::db;

/// The migrations in order; migration `i` (0-based) brings the schema to version `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema (design.md section 2).
    r#"
CREATE TABLE tenant (
    id          TEXT PRIMARY KEY NOT NULL,
    settings    TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE person (
    id                   TEXT PRIMARY KEY NOT NULL,
    tenant               TEXT NOT NULL REFERENCES tenant(id),
    number               INTEGER NOT NULL,
    login                TEXT NOT NULL,
    email                TEXT NOT NULL,
    display_name         TEXT NOT NULL DEFAULT '',
    locale               TEXT,
    enabled              INTEGER NOT NULL DEFAULT 1,
    roles                TEXT NOT NULL DEFAULT '[]',
    attributes           TEXT NOT NULL DEFAULT '{}',
    password_hash        TEXT,
    password_changed_at  INTEGER,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    failed_logins        INTEGER NOT NULL DEFAULT 0,
    locked_until         INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE UNIQUE INDEX person_login ON person (tenant, login);
CREATE UNIQUE INDEX person_number ON person (tenant, number);
-- Email lookups ignore ASCII case; the oldest person (lowest number) wins.
CREATE INDEX person_email ON person (tenant, email COLLATE NOCASE, number);

CREATE TABLE api_key (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant        TEXT NOT NULL REFERENCES tenant(id),
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    hash          BLOB NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_key_tenant ON api_key (tenant);

CREATE TABLE client (
    tenant            TEXT NOT NULL REFERENCES tenant(id),
    name              TEXT NOT NULL,
    link_template     TEXT NOT NULL,
    allowed_prefixes  TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- AUTOINCREMENT: ids are never reused, so a worker holding the id of a request that another
-- worker already resolved can never resolve a newer request by mistake. No foreign key: the row
-- must be written cheaply and durably whatever the account, and it is short-lived.
CREATE TABLE reset_request (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant      TEXT NOT NULL,
    lookup      TEXT NOT NULL,
    client      TEXT,
    locale      TEXT,
    ip          TEXT,
    created_at  INTEGER NOT NULL
);

CREATE TABLE reset_token (
    hash        BLOB PRIMARY KEY NOT NULL,
    tenant      TEXT NOT NULL,
    person      TEXT NOT NULL REFERENCES person(id),
    client      TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER,
    ip          TEXT
);
CREATE INDEX reset_token_person ON reset_token (tenant, person, created_at);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    text             TEXT NOT NULL,
    html             TEXT,
    message_id       TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_tenant ON outbox (tenant, id);

-- No foreign keys: the log outlives what it talks about (and records requests for unknown tenants).
CREATE TABLE audit_event (
    id      INTEGER PRIMARY KEY,
    tenant  TEXT NOT NULL,
    person  TEXT,
    kind    TEXT NOT NULL,
    actor   TEXT NOT NULL,
    ip      TEXT,
    at      INTEGER NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_event_tenant ON audit_event (tenant, id);

CREATE TABLE password_history (
    id      INTEGER PRIMARY KEY,
    tenant  TEXT NOT NULL,
    person  TEXT NOT NULL REFERENCES person(id),
    hash    TEXT NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX password_history_person ON password_history (tenant, person, id);
"#,
    // 2: reset requests are claimed with a lease, so several workers split the queue.
    r#"
ALTER TABLE reset_request ADD COLUMN claimed_until INTEGER;
"#,
    // 3: whether a person's email address is confirmed (Crafter Profile's `verified`).
    r#"
ALTER TABLE person ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
"#,
    // 4: failed logins are counted per tenant and login, whether or not anyone has the login, so
    // a lock says nothing about who exists; an attempt is reserved here before its password is
    // checked (issue 13). The person's failed_logins and locked_until are no longer read; a
    // lock in force is carried over.
    r#"
CREATE TABLE login_attempt (
    tenant        TEXT NOT NULL,
    login         TEXT NOT NULL,
    -- Attempts granted in the window (each reserved before its password was checked).
    failures      INTEGER NOT NULL,
    -- When the count is forgotten; a lock ends then too.
    window_until  INTEGER NOT NULL,
    -- Set when the count reached the threshold.
    locked_until  INTEGER,
    -- Whether the latest attempt was granted (read back by the upsert's RETURNING).
    granted       INTEGER NOT NULL,
    PRIMARY KEY (tenant, login)
);
CREATE INDEX login_attempt_window ON login_attempt (window_until);
INSERT INTO login_attempt (tenant, login, failures, window_until, locked_until, granted)
    SELECT tenant, login, failed_logins, locked_until, locked_until, 0 FROM person
    WHERE locked_until IS NOT NULL;
"#,
    // 5: outbox bodies hold reset links: new ones are sealed (crate::sealing), and the bodies of
    // messages already sent or dead are erased.
    r#"
UPDATE outbox SET text = '', html = NULL WHERE status IN ('sent', 'dead');
"#,
    // 6: the retry budget of a message is a deadline, set when it is queued. Rows queued before:
    // a reset link gets its tenant's link lifetime after it was queued (the token expired then,
    // give or take the moment it took to queue; 30 minutes if the settings lack it), a notice
    // a day.
    r#"
ALTER TABLE outbox ADD COLUMN deliver_by INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET deliver_by = created_at + 1000 * CASE kind
    WHEN 'reset_link' THEN COALESCE(
        (SELECT json_extract(t.settings, '$.token_ttl_secs') FROM tenant t WHERE t.id = outbox.tenant),
        1800)
    ELSE 86400 END;
"#,
    // 7: what each token was minted for (TokenPurpose's stable name); every token so far was a
    // "forgot password" link. No CHECK: a newer version may add purposes without rebuilding the
    // table, and this one reads a purpose it does not know as no token.
    r#"
ALTER TABLE reset_token ADD COLUMN purpose TEXT NOT NULL DEFAULT 'reset';
"#,
    // 8: logins found ignoring letter case (Lookup::LoginAnyCase) through their fold, indexed.
    // Not unique: logins are unique as written, and two may fold alike. The fold is the core's
    // (resetd_core::model::fold_login), which SQL lower() is not, so existing rows are filled
    // in by `fold_logins` right after this runs.
    r#"
ALTER TABLE person ADD COLUMN login_folded TEXT NOT NULL DEFAULT '';
CREATE INDEX person_login_folded ON person (tenant, login_folded);
"#,
    // 9: a token claimed for a password write to an external system (issue 17, the rule in
    // docs/architecture.md): the claimer's random id and its lease's end. A token with a claim
    // is never live; releasing clears both.
    r#"
ALTER TABLE reset_token ADD COLUMN claim_id TEXT;
ALTER TABLE reset_token ADD COLUMN claimed_until INTEGER;
"#,
    // 10: API keys may expire, and a rotation keeps the replaced secret's hash until the end of
    // its overlap (`previous_hash` valid while `previous_until` is later than now). Unique like
    // `hash`, so a secret names one key whichever column holds it.
    r#"
ALTER TABLE api_key ADD COLUMN expires_at INTEGER;
ALTER TABLE api_key ADD COLUMN previous_hash BLOB;
ALTER TABLE api_key ADD COLUMN previous_until INTEGER;
CREATE UNIQUE INDEX api_key_previous_hash ON api_key (previous_hash);
"#,
    // 11: retention deletes tokens a while after they expired (issue 19), found by this index.
    r#"
CREATE INDEX reset_token_expires ON reset_token (expires_at);
"#,
];

/// The migration after which [`fold_logins`] fills in `person.login_folded`.
const FOLDED_LOGINS: i64 = 8;

/// Writes every person's `login_folded` with the core's fold (migration 8's Rust step).
fn fold_logins(tx: &Connection) -> Result<(), StoreError> {
    let logins: Vec<(String, String, String)> = {
        let mut st = tx
            .prepare("SELECT tenant, id, login FROM person")
            .map_err(db)?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)?
    };
    let mut st = tx
        .prepare("UPDATE person SET login_folded = ?3 WHERE tenant = ?1 AND id = ?2")
        .map_err(db)?;
    for (tenant, id, login) in logins {
        st.execute(rusqlite::params![tenant, id, fold_login(&login)])
            .map_err(db)?;
    }
    Ok(())
}

/// The schema version this build writes.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the schema up to date in one `BEGIN IMMEDIATE` transaction. Two processes migrating at
/// once are serialised by the write lock; the second sees the new version and does nothing.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let current: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db)?;
    if current < 0 || current > latest() {
        return Err(StoreError::Backend(format!(
            "the database schema is version {current}; this build of resetd knows versions 0 to {}",
            latest()
        )));
    }
    if current == latest() {
        return Ok(()); // the transaction rolls back on drop; nothing was written
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Backend(format!("migration {}: {e}", i + 1)))?;
        if i as i64 + 1 == FOLDED_LOGINS {
            fold_logins(&tx)?;
        }
    }
    // PRAGMA takes no bound parameters; the value is our own integer.
    tx.execute_batch(&format!("PRAGMA user_version = {}", latest()))
        .map_err(db)?;
    tx.commit().map_err(db)?;
    // Migration 5 erased old bodies; with secure_delete their bytes are zeroed in the file, but
    // the pages that held them are still in the WAL until a checkpoint: empty it now. Best effort
    // (another connection may be reading); the next checkpoint does it anyway.
    if current < 5 {
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
    Ok(())
}

/// The schema version of the database behind `conn`.
pub(crate) fn version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_is_upgraded_with_its_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1; INSERT INTO reset_request (tenant, lookup, created_at) \
             VALUES ('acme', '{\"by\":\"login\",\"value\":\"a\"}', 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), latest());
        let unclaimed: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM reset_request WHERE claimed_until IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unclaimed, 1, "old requests start unclaimed");
        migrate(&mut conn).unwrap();
    }

    #[test]
    fn a_lock_in_force_on_a_person_row_moves_to_the_login_counter() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 3; INSERT INTO tenant VALUES ('acme', '{}', 0); \
             INSERT INTO person (id, tenant, number, login, email, failed_logins, locked_until, \
             created_at, updated_at) VALUES \
             ('a', 'acme', 1, 'locked', 'l@example.com', 0, 5000, 0, 0), \
             ('b', 'acme', 2, 'free', 'f@example.com', 4, NULL, 0, 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows: Vec<(String, i64, Option<i64>)> = conn
            .prepare("SELECT login, window_until, locked_until FROM login_attempt")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, vec![("locked".to_owned(), 5000, Some(5000))]);
    }

    #[test]
    fn upgrading_erases_the_bodies_of_sent_and_dead_messages() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch("PRAGMA user_version = 3;").unwrap();
        for (id, status) in [(1, "sent"), (2, "dead"), (3, "pending")] {
            conn.execute(
                "INSERT INTO outbox (id, tenant, kind, recipient, subject, text, html, message_id, \
                 next_attempt_at, status, created_at) VALUES (?1, 'acme', 'reset_link', 'a@b.c', \
                 's', 'token=SECRET', '<a>SECRET</a>', ?2, 1, ?3, 1)",
                rusqlite::params![id, format!("<{id}@x>"), status],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let bodies: Vec<(String, Option<String>)> = conn
            .prepare("SELECT text, html FROM outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(bodies[0], (String::new(), None));
        assert_eq!(bodies[1], (String::new(), None));
        // A pending one is still to be sent (it is erased once sent).
        assert_eq!(bodies[2].0, "token=SECRET");
    }

    #[test]
    fn existing_logins_get_the_cores_fold_not_sqls() {
        let mut conn = Connection::open_in_memory().unwrap();
        for m in &MIGRATIONS[..7] {
            conn.execute_batch(m).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 7; INSERT INTO tenant VALUES ('acme', '{}', 0); \
             INSERT INTO person (id, tenant, number, login, email, created_at, updated_at) \
             VALUES ('a', 'acme', 1, 'Alf.Known', 'a@x', 0, 0), ('b', 'acme', 2, 'ÄNNE', 'b@x', 0, 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let folded: Vec<String> = conn
            .prepare("SELECT login_folded FROM person ORDER BY number")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(folded, ["alf.known", "änne"]);
    }

    #[test]
    fn tokens_from_before_purposes_are_reset_tokens() {
        let mut conn = Connection::open_in_memory().unwrap();
        for m in &MIGRATIONS[..6] {
            conn.execute_batch(m).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 6; INSERT INTO tenant VALUES ('acme', '{}', 0); \
             INSERT INTO person (id, tenant, number, login, email, created_at, updated_at) \
             VALUES ('a', 'acme', 1, 'alice', 'a@x', 0, 0); \
             INSERT INTO reset_token (hash, tenant, person, created_at, expires_at) \
             VALUES (x'00', 'acme', 'a', 0, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let purpose: String = conn
            .query_row("SELECT purpose FROM reset_token", [], |r| r.get(0))
            .unwrap();
        assert_eq!(purpose, "reset");
    }

    #[test]
    fn queued_messages_get_a_deadline_from_their_kind_and_tenant() {
        let mut conn = Connection::open_in_memory().unwrap();
        for m in &MIGRATIONS[..3] {
            conn.execute_batch(m).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 3;
             INSERT INTO tenant VALUES ('acme', '{\"token_ttl_secs\":600}', 0);
             INSERT INTO tenant VALUES ('bare', '{}', 0);
             INSERT INTO outbox (tenant, kind, recipient, subject, text, message_id, next_attempt_at, status, created_at) VALUES
                 ('acme', 'reset_link', 'a@x', 's', 't', '<1@x>', 5, 'pending', 5000),
                 ('acme', 'password_changed', 'a@x', 's', 't', '<2@x>', 5, 'pending', 5000),
                 ('bare', 'reset_link', 'b@x', 's', 't', '<3@x>', 5, 'dead', 7000);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let deadlines: Vec<i64> = conn
            .prepare("SELECT deliver_by FROM outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            deadlines,
            [5000 + 600_000, 5000 + 86_400_000, 7000 + 1_800_000]
        );
    }
}
