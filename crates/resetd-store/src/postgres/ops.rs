//! The SQL behind each [`Store`](resetd_core::store::Store) method on PostgreSQL.
//!
//! Transactions run at READ COMMITTED (each statement sees what was committed before it started).
//! Where SQLite relies on its single writer, PostgreSQL needs explicit row locks; they are always
//! taken in the same order — tenant, then person, then that person's tokens — so concurrent
//! operations wait for each other instead of deadlocking:
//! - creating a person locks the tenant row, so `MAX(number) + 1` cannot race;
//! - issuing a token and changing a password lock the person row first, so the cool-down check
//!   and the single use of a token hold across instances;
//! - claims (outbox, reset requests) use `FOR UPDATE SKIP LOCKED`, so concurrent claimers take
//!   disjoint rows without waiting for each other.

use resetd_core::model::{
    ApiKey, AuditEvent, Client, Lookup, NewAudit, NewMessage, NewResetRequest, Person,
    ResetRequest, ResetToken, Tenant, TenantSettings, Timestamp,
};
use resetd_core::secret::SecretHash;
use resetd_core::store::{IssueToken, PasswordChange, Resolution, Resolved, StoreError};
use resetd_core::types::{ClientName, ObjectId, PersonId, TenantId};
use tokio_postgres::GenericClient;

use super::pool::{Db, Pooled};
use super::rows::{self, get, map_all};

/// Longest `last_error` kept for an outbox message, in characters (as for SQLite).
const MAX_ERROR_CHARS: usize = 500;

fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encoding JSON: {e}")))
}

pub(super) fn limit(n: u32) -> i64 {
    i64::from(n)
}

pub(crate) fn found(changed: u64) -> Result<(), StoreError> {
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// `error` cut to [`MAX_ERROR_CHARS`] characters (on a character boundary).
pub(super) fn truncate_error(error: &str) -> &str {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => &error[..i],
        None => error,
    }
}

// ---- shared pieces ----------------------------------------------------------------------------

pub(crate) async fn insert_audit<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    a: &NewAudit,
) -> Result<(), StoreError> {
    let detail = to_json(&a.detail)?;
    db.exec(
        "INSERT INTO audit_event (tenant, person, kind, actor, ip, at, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &a.tenant.as_str(),
            &a.person.as_ref().map(PersonId::as_str),
            &a.kind,
            &a.actor,
            &a.ip,
            &a.at.0,
            &detail,
        ],
    )
    .await?;
    Ok(())
}

async fn insert_message<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    m: &NewMessage,
) -> Result<(), StoreError> {
    db.exec(
        "INSERT INTO outbox (tenant, kind, recipient, subject, text, html, message_id, attempts, next_attempt_at, \
         status, created_at, deliver_by) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, 'pending', $8, $9)",
        &[
            &m.tenant.as_str(),
            &m.kind.as_str(),
            &m.recipient.as_str(),
            &m.subject,
            &m.text,
            &m.html,
            &m.message_id,
            &m.created_at.0,
            &m.deliver_by.0,
        ],
    )
    .await?;
    Ok(())
}

/// Voids the person's live tokens (not used, not revoked) as of `at`.
async fn revoke_live_tokens<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    tenant: &TenantId,
    person: &PersonId,
    at: Timestamp,
) -> Result<(), StoreError> {
    db.exec(
        "UPDATE reset_token SET revoked_at = $3 \
         WHERE tenant = $1 AND person = $2 AND used_at IS NULL AND revoked_at IS NULL",
        &[&tenant.as_str(), &person.as_str(), &at.0],
    )
    .await?;
    Ok(())
}

/// Locks the person's row until the end of the transaction; `false` when there is no such person.
async fn lock_person<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    tenant: &TenantId,
    person: &PersonId,
) -> Result<bool, StoreError> {
    Ok(db
        .opt(
            "SELECT 1 FROM person WHERE tenant = $1 AND id = $2 FOR NO KEY UPDATE",
            &[&tenant.as_str(), &person.as_str()],
        )
        .await?
        .is_some())
}

// ---- tenants ----------------------------------------------------------------------------------

pub(crate) async fn create_tenant(c: &mut Pooled, t: &Tenant) -> Result<(), StoreError> {
    let settings = to_json(&t.settings)?;
    c.db()
        .exec(
            "INSERT INTO tenant (id, settings, created_at) VALUES ($1, $2, $3)",
            &[&t.id.as_str(), &settings, &t.created_at.0],
        )
        .await?;
    Ok(())
}

pub(crate) async fn get_tenant(
    c: &mut Pooled,
    id: &TenantId,
) -> Result<Option<Tenant>, StoreError> {
    let sql = format!("SELECT {} FROM tenant WHERE id = $1", rows::TENANT_COLS);
    c.db()
        .opt(&sql, &[&id.as_str()])
        .await?
        .map(|r| rows::tenant(&r))
        .transpose()
}

pub(crate) async fn update_tenant_settings(
    c: &mut Pooled,
    id: &TenantId,
    s: &TenantSettings,
) -> Result<(), StoreError> {
    let settings = to_json(s)?;
    found(
        c.db()
            .exec(
                "UPDATE tenant SET settings = $2 WHERE id = $1",
                &[&id.as_str(), &settings],
            )
            .await?,
    )
}

pub(crate) async fn list_tenants(c: &mut Pooled) -> Result<Vec<Tenant>, StoreError> {
    let sql = format!("SELECT {} FROM tenant ORDER BY id", rows::TENANT_COLS);
    map_all(c.db().all(&sql, &[]).await?, rows::tenant)
}

// ---- people -----------------------------------------------------------------------------------

/// Locks the tenant row and returns the next free person number (`NotFound` without the tenant).
/// The lock serialises the inserts of one tenant, so MAX + 1 cannot race (NO KEY UPDATE: it does
/// not block foreign-key checks against the tenant).
async fn lock_next_person_number<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    tenant: &TenantId,
) -> Result<i64, StoreError> {
    let tenant = tenant.as_str();
    let tenant_exists = db
        .opt(
            "SELECT 1 FROM tenant WHERE id = $1 FOR NO KEY UPDATE",
            &[&tenant],
        )
        .await?
        .is_some();
    if !tenant_exists {
        return Err(StoreError::NotFound);
    }
    get(
        &db.one(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM person WHERE tenant = $1",
            &[&tenant],
        )
        .await?,
        0,
    )
}

/// Inserts `p` as a new row numbered `number`.
async fn insert_person_row<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    p: &Person,
    number: i64,
) -> Result<(), StoreError> {
    let roles = to_json(&p.roles)?;
    let attributes = to_json(&p.attributes)?;
    let failed = i64::from(p.failed_logins);
    db.exec(
        "INSERT INTO person (id, tenant, number, login, email, display_name, locale, enabled, roles, attributes, \
         password_hash, password_changed_at, must_change_password, failed_logins, locked_until, created_at, \
         updated_at, verified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        &[
            &p.id.as_str(),
            &p.tenant.as_str(),
            &number,
            &p.login.as_str(),
            &p.email.as_str(),
            &p.display_name.as_str(),
            &p.locale.as_ref().map(|l| l.as_str()),
            &p.enabled,
            &roles,
            &attributes,
            &p.password_hash,
            &p.password_changed_at.map(|t| t.0),
            &p.must_change_password,
            &failed,
            &p.locked_until.map(|t| t.0),
            &p.created_at.0,
            &p.updated_at.0,
            &p.verified,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn insert_person(
    c: &mut Pooled,
    p: &Person,
    audit: &NewAudit,
) -> Result<i64, StoreError> {
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        let number = lock_next_person_number(&db, &p.tenant).await?;
        insert_person_row(&db, p, number).await?;
        insert_audit(&db, audit).await?;
        Ok(number)
    }
    .await;
    tx.finish(result).await
}

pub(crate) async fn get_person(
    c: &mut Pooled,
    tenant: &TenantId,
    id: &PersonId,
) -> Result<Option<Person>, StoreError> {
    let sql = format!(
        "SELECT {} FROM person WHERE tenant = $1 AND id = $2",
        rows::PERSON_COLS
    );
    c.db()
        .opt(&sql, &[&tenant.as_str(), &id.as_str()])
        .await?
        .map(|r| rows::person(&r))
        .transpose()
}

pub(crate) async fn find_person(
    c: &mut Pooled,
    tenant: &TenantId,
    lookup: &Lookup,
) -> Result<Option<Person>, StoreError> {
    match lookup {
        Lookup::Login(login) => {
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = $1 AND login = $2",
                rows::PERSON_COLS
            );
            c.db()
                .opt(&sql, &[&tenant.as_str(), login])
                .await?
                .map(|r| rows::person(&r))
                .transpose()
        }
        Lookup::Email(email) => {
            // ASCII case-insensitive (the expression of the person_email index); the oldest
            // account with the address wins.
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = $1 AND \
                 translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = \
                 translate($2, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') \
                 ORDER BY number LIMIT 1",
                rows::PERSON_COLS
            );
            c.db()
                .opt(&sql, &[&tenant.as_str(), email])
                .await?
                .map(|r| rows::person(&r))
                .transpose()
        }
        Lookup::Id(id) => match PersonId::parse(id) {
            Ok(id) => get_person(c, tenant, &id).await,
            Err(_) => Ok(None),
        },
        Lookup::Number(n) => {
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = $1 AND number = $2",
                rows::PERSON_COLS
            );
            c.db()
                .opt(&sql, &[&tenant.as_str(), n])
                .await?
                .map(|r| rows::person(&r))
                .transpose()
        }
        Lookup::ObjectId(oid) => {
            // The ObjectId is the first 24 hex digits of the id: a range scan on the primary key;
            // should two ids ever share the prefix, the older person wins, as with email.
            let Ok(oid) = ObjectId::parse(oid) else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT {} FROM person WHERE id >= $2 AND id <= $3 AND tenant = $1 ORDER BY number LIMIT 1",
                rows::PERSON_COLS
            );
            let (low, high) = (format!("{oid}00000000"), format!("{oid}ffffffff"));
            c.db()
                .opt(&sql, &[&tenant.as_str(), &low, &high])
                .await?
                .map(|r| rows::person(&r))
                .transpose()
        }
    }
}

pub(crate) async fn update_person(
    c: &mut Pooled,
    p: &Person,
    audit: &NewAudit,
) -> Result<(), StoreError> {
    let roles = to_json(&p.roles)?;
    let attributes = to_json(&p.attributes)?;
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        found(
            db.exec(
                "UPDATE person SET login = $3, email = $4, display_name = $5, locale = $6, enabled = $7, roles = $8, \
                 attributes = $9, updated_at = $10, verified = $11 WHERE tenant = $1 AND id = $2",
                &[
                    &p.tenant.as_str(),
                    &p.id.as_str(),
                    &p.login.as_str(),
                    &p.email.as_str(),
                    &p.display_name.as_str(),
                    &p.locale.as_ref().map(|l| l.as_str()),
                    &p.enabled,
                    &roles,
                    &attributes,
                    &p.updated_at.0,
                    &p.verified,
                ],
            )
            .await?,
        )?;
        insert_audit(&db, audit).await
    }
    .await;
    tx.finish(result).await
}

// ---- API keys ---------------------------------------------------------------------------------

pub(crate) async fn insert_api_key(
    c: &mut Pooled,
    k: &ApiKey,
    hash: &SecretHash,
    audit: Option<&NewAudit>,
) -> Result<(), StoreError> {
    let scopes = to_json(&k.scopes)?;
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        db.exec(
            "INSERT INTO api_key (id, tenant, name, scopes, hash, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &k.id,
                &k.tenant.as_str(),
                &k.name,
                &scopes,
                &&hash.0[..],
                &k.created_at.0,
                &k.revoked_at.map(|t| t.0),
            ],
        )
        .await?;
        if let Some(a) = audit {
            insert_audit(&db, a).await?;
        }
        Ok(())
    }
    .await;
    tx.finish(result).await
}

pub(crate) async fn find_api_key(
    c: &mut Pooled,
    hash: &SecretHash,
) -> Result<Option<ApiKey>, StoreError> {
    let sql = format!("SELECT {} FROM api_key WHERE hash = $1", rows::API_KEY_COLS);
    c.db()
        .opt(&sql, &[&&hash.0[..]])
        .await?
        .map(|r| rows::api_key(&r))
        .transpose()
}

// ---- clients ----------------------------------------------------------------------------------

pub(crate) async fn upsert_client(
    c: &mut Pooled,
    cl: &Client,
    audit: &NewAudit,
) -> Result<(), StoreError> {
    let prefixes = to_json(&cl.allowed_prefixes)?;
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        // A replaced client keeps its original registration time.
        db.exec(
            "INSERT INTO client (tenant, name, link_template, allowed_prefixes, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant, name) DO UPDATE SET link_template = excluded.link_template, \
             allowed_prefixes = excluded.allowed_prefixes",
            &[
                &cl.tenant.as_str(),
                &cl.name.as_str(),
                &cl.link_template.as_str(),
                &prefixes,
                &cl.created_at.0,
            ],
        )
        .await?;
        insert_audit(&db, audit).await
    }
    .await;
    tx.finish(result).await
}

pub(crate) async fn get_client(
    c: &mut Pooled,
    tenant: &TenantId,
    name: &ClientName,
) -> Result<Option<Client>, StoreError> {
    let sql = format!(
        "SELECT {} FROM client WHERE tenant = $1 AND name = $2",
        rows::CLIENT_COLS
    );
    c.db()
        .opt(&sql, &[&tenant.as_str(), &name.as_str()])
        .await?
        .map(|r| rows::client(&r))
        .transpose()
}

pub(crate) async fn list_clients(
    c: &mut Pooled,
    tenant: &TenantId,
) -> Result<Vec<Client>, StoreError> {
    let sql = format!(
        "SELECT {} FROM client WHERE tenant = $1 ORDER BY name",
        rows::CLIENT_COLS
    );
    map_all(c.db().all(&sql, &[&tenant.as_str()]).await?, rows::client)
}

// ---- reset requests and tokens ----------------------------------------------------------------

pub(crate) async fn insert_reset_request(
    c: &mut Pooled,
    r: &NewResetRequest,
) -> Result<i64, StoreError> {
    let lookup = to_json(&r.lookup)?;
    let row = c
        .db()
        .one(
            "INSERT INTO reset_request (tenant, lookup, client, locale, ip, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &r.tenant.as_str(),
                &lookup,
                &r.client.as_ref().map(ClientName::as_str),
                &r.locale.as_ref().map(|l| l.as_str()),
                &r.ip,
                &r.created_at.0,
            ],
        )
        .await?;
    get(&row, 0)
}

pub(crate) async fn claim_reset_requests(
    c: &mut Pooled,
    now: Timestamp,
    lease_until: Timestamp,
    n: u32,
) -> Result<Vec<ResetRequest>, StoreError> {
    // SKIP LOCKED: rows another instance is claiming right now are left to it; a row claimed and
    // committed meanwhile is re-checked against the WHERE clause after locking and dropped.
    let sql = format!(
        "WITH due AS (SELECT id AS due_id FROM reset_request \
         WHERE claimed_until IS NULL OR claimed_until <= $1 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         UPDATE reset_request SET claimed_until = $2 FROM due WHERE id = due.due_id RETURNING {}",
        rows::REQUEST_COLS
    );
    let mut claimed = map_all(
        c.db()
            .all(&sql, &[&now.0, &lease_until.0, &limit(n)])
            .await?,
        rows::reset_request,
    )?;
    claimed.sort_by_key(|r| r.id); // RETURNING has no defined order
    Ok(claimed)
}

pub(crate) async fn resolve_reset_request(
    c: &mut Pooled,
    id: i64,
    resolution: &Resolution,
) -> Result<Resolved, StoreError> {
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        // The delete is the exactly-once guard: of concurrent resolvers, only one deletes the row.
        if db
            .exec("DELETE FROM reset_request WHERE id = $1", &[&id])
            .await?
            == 0
        {
            return Ok(Resolved::Discarded); // resolved elsewhere: change nothing
        }
        let issue = match resolution {
            Resolution::Discard(audit) => {
                insert_audit(&db, audit).await?;
                return Ok(Resolved::Discarded);
            }
            Resolution::Issue(issue) => issue,
        };
        issue_in(&db, issue).await
    }
    .await;
    tx.finish(result).await
}

/// Issues a token at once (a trusted caller's synchronous reset), with the same rules.
pub(crate) async fn issue_token(
    c: &mut Pooled,
    issue: &IssueToken,
) -> Result<Resolved, StoreError> {
    let tx = c.begin().await?;
    let result = async { issue_in(&tx.db(), issue).await }.await;
    tx.finish(result).await
}

/// Voids a live token; whether one was voided.
pub(crate) async fn void_token(
    c: &mut Pooled,
    tenant: &TenantId,
    hash: &SecretHash,
    at: Timestamp,
    audit: &NewAudit,
) -> Result<bool, StoreError> {
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        let voided = db
            .exec(
                "UPDATE reset_token SET revoked_at = $3 \
                 WHERE hash = $1 AND tenant = $2 AND used_at IS NULL AND revoked_at IS NULL",
                &[&&hash.0[..], &tenant.as_str(), &at.0],
            )
            .await?;
        if voided == 0 {
            return Ok(false);
        }
        insert_audit(&db, audit).await?;
        Ok(true)
    }
    .await;
    tx.finish(result).await
}

/// Inside a transaction: unless the person is cooling down, supersedes their live tokens, stores
/// the token, queues its email and records the audit event.
async fn issue_in<C: GenericClient + Sync>(
    db: &Db<'_, C>,
    issue: &IssueToken,
) -> Result<Resolved, StoreError> {
    let t = &issue.token;
    // Serialise issuing per person: a concurrent resolution for the same person (another
    // request, maybe on another instance) waits here and then sees this one's token.
    if !lock_person(db, &t.tenant, &t.person).await? {
        return Err(StoreError::NotFound);
    }
    let cooling: bool = get(
            &db.one(
                "SELECT EXISTS (SELECT 1 FROM reset_token WHERE tenant = $1 AND person = $2 AND created_at > $3)",
                &[&t.tenant.as_str(), &t.person.as_str(), &issue.cooldown_since.0],
            )
            .await?,
            0,
        )?;
    if cooling {
        return Ok(Resolved::CoolingDown); // the request row stays deleted
    }
    revoke_live_tokens(db, &t.tenant, &t.person, t.created_at).await?;
    db.exec(
            "INSERT INTO reset_token (hash, tenant, person, client, created_at, expires_at, used_at, revoked_at, ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &&t.hash.0[..],
                &t.tenant.as_str(),
                &t.person.as_str(),
                &t.client.as_ref().map(ClientName::as_str),
                &t.created_at.0,
                &t.expires_at.0,
                &t.used_at.map(|x| x.0),
                &t.revoked_at.map(|x| x.0),
                &t.ip,
            ],
        )
        .await?;
    insert_message(db, &issue.message).await?;
    insert_audit(db, &issue.audit).await?;
    Ok(Resolved::Issued)
}

pub(crate) async fn find_token(
    c: &mut Pooled,
    hash: &SecretHash,
) -> Result<Option<ResetToken>, StoreError> {
    let sql = format!(
        "SELECT {} FROM reset_token WHERE hash = $1",
        rows::TOKEN_COLS
    );
    c.db()
        .opt(&sql, &[&&hash.0[..]])
        .await?
        .map(|r| rows::reset_token(&r))
        .transpose()
}

// ---- passwords and logins ---------------------------------------------------------------------

pub(crate) async fn change_password(c: &mut Pooled, ch: &PasswordChange) -> Result<(), StoreError> {
    let (tenant, person) = (ch.tenant.as_str(), ch.person.as_str());
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        // The person first (the lock order shared with issuing), then the token.
        let old = db
            .opt(
                "SELECT password_hash FROM person WHERE tenant = $1 AND id = $2 FOR NO KEY UPDATE",
                &[&tenant, &person],
            )
            .await?;
        if let Some(hash) = &ch.token {
            // The single-use guarantee: only one caller can flip used_at from NULL (the others
            // wait for the person lock and then find it set). The token must also belong to this
            // person and still be unexpired at the moment of the change.
            let consumed = db
                .exec(
                    "UPDATE reset_token SET used_at = $1 WHERE hash = $2 AND tenant = $3 AND person = $4 \
                     AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
                    &[&ch.at.0, &&hash.0[..], &tenant, &person],
                )
                .await?;
            if consumed != 1 {
                return Err(StoreError::TokenGone);
            }
        }
        let old: Option<String> = match old {
            Some(row) => get(&row, 0)?,
            None => return Err(StoreError::NotFound),
        };
        if ch.keep_history > 0 {
            if let Some(old) = old {
                db.exec(
                    "INSERT INTO password_history (tenant, person, hash, at) VALUES ($1, $2, $3, $4)",
                    &[&tenant, &person, &old, &ch.at.0],
                )
                .await?;
            }
            db.exec(
                "DELETE FROM password_history WHERE tenant = $1 AND person = $2 AND id NOT IN \
                 (SELECT id FROM password_history WHERE tenant = $1 AND person = $2 ORDER BY id DESC LIMIT $3)",
                &[&tenant, &person, &i64::from(ch.keep_history)],
            )
            .await?;
        }
        db.exec(
            "UPDATE person SET password_hash = $3, password_changed_at = $4, must_change_password = $5, \
             updated_at = $4 WHERE tenant = $1 AND id = $2",
            &[&tenant, &person, &ch.new_hash, &ch.at.0, &ch.must_change_password],
        )
        .await?;
        if ch.unlock {
            db.exec(super::login::CLEAR_COUNTER, &[&tenant, &person])
                .await?;
        }
        // The consumed token has used_at set, so this voids every other live token.
        revoke_live_tokens(&db, &ch.tenant, &ch.person, ch.at).await?;
        if let Some(m) = &ch.message {
            insert_message(&db, m).await?;
        }
        insert_audit(&db, &ch.audit).await
    }
    .await;
    tx.finish(result).await
}

pub(crate) async fn password_history(
    c: &mut Pooled,
    tenant: &TenantId,
    person: &PersonId,
    n: u32,
) -> Result<Vec<String>, StoreError> {
    let rows = c
        .db()
        .all(
            "SELECT hash FROM password_history WHERE tenant = $1 AND person = $2 ORDER BY id DESC LIMIT $3",
            &[&tenant.as_str(), &person.as_str(), &limit(n)],
        )
        .await?;
    map_all(rows, |r| get(r, 0))
}

// ---- audit ------------------------------------------------------------------------------------

pub(crate) async fn append_audit(c: &mut Pooled, a: &NewAudit) -> Result<(), StoreError> {
    insert_audit(&c.db(), a).await
}

pub(crate) async fn list_audit(
    c: &mut Pooled,
    tenant: &TenantId,
    before: Option<i64>,
    n: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    let sql = format!(
        "SELECT {} FROM audit_event WHERE tenant = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        rows::AUDIT_COLS
    );
    let rows = c
        .db()
        .all(
            &sql,
            &[&tenant.as_str(), &before.unwrap_or(i64::MAX), &limit(n)],
        )
        .await?;
    map_all(rows, rows::audit)
}

// ---- outbox: see outbox.rs ----------------------------------------------------------------------

pub(crate) use super::outbox::*;

// ---- import -----------------------------------------------------------------------------------

/// See [`resetd_core::ports::Directory::upsert_people`]: one transaction per batch, the tenant row
/// locked so that numbers are assigned without races (as in `insert_person`).
pub(crate) async fn upsert_people(
    c: &mut Pooled,
    people: &[Person],
    audit: &NewAudit,
) -> Result<Vec<bool>, StoreError> {
    let tx = c.begin().await?;
    let result = async {
        let db = tx.db();
        let mut next = lock_next_person_number(&db, &audit.tenant).await?;
        let mut inserted = Vec::with_capacity(people.len());
        for p in people {
            let roles = to_json(&p.roles)?;
            let attributes = to_json(&p.attributes)?;
            let keep = "(password_hash IS NULL OR password_hash NOT LIKE '$argon2id$%')";
            let changed = db
                .exec(
                    &format!(
                        "UPDATE person SET email = $3, display_name = $4, locale = $5, enabled = $6, roles = $7, \
                         attributes = $8, updated_at = $9, verified = $10, \
                         password_changed_at = CASE WHEN $11::TEXT IS NOT NULL AND {keep} THEN $12 ELSE password_changed_at END, \
                         password_hash = CASE WHEN $11::TEXT IS NOT NULL AND {keep} THEN $11 ELSE password_hash END \
                         WHERE tenant = $1 AND login = $2"
                    ),
                    &[
                        &p.tenant.as_str(),
                        &p.login.as_str(),
                        &p.email.as_str(),
                        &p.display_name.as_str(),
                        &p.locale.as_ref().map(|l| l.as_str()),
                        &p.enabled,
                        &roles,
                        &attributes,
                        &p.updated_at.0,
                        &p.verified,
                        &p.password_hash,
                        &p.password_changed_at.map(|t| t.0),
                    ],
                )
                .await?;
            if changed == 0 {
                insert_person_row(&db, p, next).await?;
                next += 1;
            }
            inserted.push(changed == 0);
        }
        insert_audit(&db, audit).await?;
        Ok(inserted)
    }
    .await;
    tx.finish(result).await
}
