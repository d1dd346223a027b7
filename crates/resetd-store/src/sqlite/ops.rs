//! The SQL behind each [`Store`](resetd_core::store::Store) method. Write operations run on the
//! writer thread inside the batch transaction and their own savepoint, so an `Err` returned from
//! here undoes everything the operation did and nothing else.

use resetd_core::model::{
    ApiKey, AuditEvent, Client, Lookup, NewAudit, NewMessage, NewResetRequest, OutboxMessage,
    OutboxStatus, Person, ResetRequest, ResetToken, Tenant, TenantSettings, Timestamp,
};
use resetd_core::secret::SecretHash;
use resetd_core::store::{IssueToken, PasswordChange, Resolution, Resolved, StoreError};
use resetd_core::types::{ClientName, ObjectId, PersonId, TenantId};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection};

use super::rows::{self, all, exec, get, one};

/// Longest `last_error` kept for an outbox message, in characters.
pub(crate) const MAX_ERROR_CHARS: usize = 500;

fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encoding JSON: {e}")))
}

fn limit(n: u32) -> i64 {
    i64::from(n)
}

// ---- shared pieces ----------------------------------------------------------------------------

pub(crate) fn insert_audit(c: &Connection, a: &NewAudit) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO audit_event (tenant, person, kind, actor, ip, at, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            a.tenant.as_str(),
            a.person.as_ref().map(PersonId::as_str),
            a.kind,
            a.actor,
            a.ip,
            a.at.0,
            to_json(&a.detail)?
        ],
    )?;
    Ok(())
}

fn insert_message(c: &Connection, m: &NewMessage) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO outbox (tenant, kind, recipient, subject, text, html, message_id, attempts, next_attempt_at, \
         status, created_at, deliver_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, 'pending', ?8, ?9)",
        params![
            m.tenant.as_str(),
            m.kind.as_str(),
            m.recipient.as_str(),
            m.subject,
            m.text,
            m.html,
            m.message_id,
            m.created_at.0,
            m.deliver_by.0
        ],
    )?;
    Ok(())
}

/// Voids the person's live tokens (not used, not revoked) as of `at`.
fn revoke_live_tokens(
    c: &Connection,
    tenant: &TenantId,
    person: &PersonId,
    at: Timestamp,
) -> Result<(), StoreError> {
    exec(
        c,
        "UPDATE reset_token SET revoked_at = ?3 \
         WHERE tenant = ?1 AND person = ?2 AND used_at IS NULL AND revoked_at IS NULL",
        params![tenant.as_str(), person.as_str(), at.0],
    )?;
    Ok(())
}

pub(crate) fn found(changed: usize) -> Result<(), StoreError> {
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

// ---- tenants ----------------------------------------------------------------------------------

pub(crate) fn create_tenant(c: &Connection, t: &Tenant) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO tenant (id, settings, created_at) VALUES (?1, ?2, ?3)",
        params![t.id.as_str(), to_json(&t.settings)?, t.created_at.0],
    )?;
    Ok(())
}

pub(crate) fn get_tenant(c: &Connection, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
    let sql = format!("SELECT {} FROM tenant WHERE id = ?1", rows::TENANT_COLS);
    one(c, &sql, [id.as_str()], rows::tenant)
}

pub(crate) fn update_tenant_settings(
    c: &Connection,
    id: &TenantId,
    s: &TenantSettings,
) -> Result<(), StoreError> {
    found(exec(
        c,
        "UPDATE tenant SET settings = ?2 WHERE id = ?1",
        params![id.as_str(), to_json(s)?],
    )?)
}

pub(crate) fn list_tenants(c: &Connection) -> Result<Vec<Tenant>, StoreError> {
    let sql = format!("SELECT {} FROM tenant ORDER BY id", rows::TENANT_COLS);
    all(c, &sql, [], rows::tenant)
}

// ---- people -----------------------------------------------------------------------------------

pub(crate) fn insert_person(
    c: &Connection,
    p: &Person,
    audit: &NewAudit,
) -> Result<i64, StoreError> {
    let number = insert_person_row(c, p)?;
    insert_audit(c, audit)?;
    Ok(number)
}

/// Inserts a person with the next number of its tenant, which it returns.
fn insert_person_row(c: &Connection, p: &Person) -> Result<i64, StoreError> {
    // The writer is the only writer of this process and holds the database's write lock (BEGIN
    // IMMEDIATE), so max + 1 cannot race with another insert, here or in another process.
    let number: i64 = one(
        c,
        "SELECT COALESCE(MAX(number), 0) + 1 FROM person WHERE tenant = ?1",
        [p.tenant.as_str()],
        |r| get(r, 0),
    )?
    .unwrap_or(1);
    exec(
        c,
        "INSERT INTO person (id, tenant, number, login, email, display_name, locale, enabled, roles, attributes, \
         password_hash, password_changed_at, must_change_password, failed_logins, locked_until, created_at, \
         updated_at, verified) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        params![
            p.id.as_str(),
            p.tenant.as_str(),
            number,
            p.login.as_str(),
            p.email.as_str(),
            p.display_name.as_str(),
            p.locale.as_ref().map(|l| l.as_str()),
            p.enabled,
            to_json(&p.roles)?,
            to_json(&p.attributes)?,
            p.password_hash,
            p.password_changed_at.map(|t| t.0),
            p.must_change_password,
            p.failed_logins,
            p.locked_until.map(|t| t.0),
            p.created_at.0,
            p.updated_at.0,
            p.verified
        ],
    )?;
    Ok(number)
}

pub(crate) fn get_person(
    c: &Connection,
    tenant: &TenantId,
    id: &PersonId,
) -> Result<Option<Person>, StoreError> {
    let sql = format!(
        "SELECT {} FROM person WHERE tenant = ?1 AND id = ?2",
        rows::PERSON_COLS
    );
    one(c, &sql, [tenant.as_str(), id.as_str()], rows::person)
}

pub(crate) fn find_person(
    c: &Connection,
    tenant: &TenantId,
    lookup: &Lookup,
) -> Result<Option<Person>, StoreError> {
    match lookup {
        Lookup::Login(login) => {
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = ?1 AND login = ?2",
                rows::PERSON_COLS
            );
            one(c, &sql, [tenant.as_str(), login], rows::person)
        }
        Lookup::Email(email) => {
            // ASCII case-insensitive, as people type addresses with any capitalisation; the oldest
            // account with the address wins.
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = ?1 AND email = ?2 COLLATE NOCASE ORDER BY number LIMIT 1",
                rows::PERSON_COLS
            );
            one(c, &sql, [tenant.as_str(), email], rows::person)
        }
        Lookup::Id(id) => match PersonId::parse(id) {
            Ok(id) => get_person(c, tenant, &id),
            Err(_) => Ok(None),
        },
        Lookup::Number(n) => {
            let sql = format!(
                "SELECT {} FROM person WHERE tenant = ?1 AND number = ?2",
                rows::PERSON_COLS
            );
            one(c, &sql, params![tenant.as_str(), n], rows::person)
        }
        Lookup::ObjectId(oid) => {
            // The ObjectId is the first 24 hex digits of the id: a range scan on the primary key.
            // Ids are random, so two people sharing a prefix is not a practical concern; should
            // it ever happen, the older one wins, as with email.
            match ObjectId::parse(oid) {
                Ok(oid) => {
                    let sql = format!(
                        "SELECT {} FROM person WHERE id >= ?2 AND id <= ?3 AND tenant = ?1 \
                         ORDER BY number LIMIT 1",
                        rows::PERSON_COLS
                    );
                    let (low, high) = (format!("{oid}00000000"), format!("{oid}ffffffff"));
                    one(c, &sql, [tenant.as_str(), &low, &high], rows::person)
                }
                Err(_) => Ok(None),
            }
        }
    }
}

pub(crate) fn update_person(
    c: &Connection,
    p: &Person,
    audit: &NewAudit,
) -> Result<(), StoreError> {
    found(exec(
        c,
        "UPDATE person SET login = ?3, email = ?4, display_name = ?5, locale = ?6, enabled = ?7, roles = ?8, \
         attributes = ?9, updated_at = ?10, verified = ?11 WHERE tenant = ?1 AND id = ?2",
        params![
            p.tenant.as_str(),
            p.id.as_str(),
            p.login.as_str(),
            p.email.as_str(),
            p.display_name.as_str(),
            p.locale.as_ref().map(|l| l.as_str()),
            p.enabled,
            to_json(&p.roles)?,
            to_json(&p.attributes)?,
            p.updated_at.0,
            p.verified
        ],
    )?)?;
    insert_audit(c, audit)
}

// ---- API keys ---------------------------------------------------------------------------------

pub(crate) fn insert_api_key(
    c: &Connection,
    k: &ApiKey,
    hash: &SecretHash,
    audit: Option<&NewAudit>,
) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO api_key (id, tenant, name, scopes, hash, created_at, revoked_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            k.id,
            k.tenant.as_str(),
            k.name,
            to_json(&k.scopes)?,
            &hash.0[..],
            k.created_at.0,
            k.revoked_at.map(|t| t.0)
        ],
    )?;
    if let Some(a) = audit {
        insert_audit(c, a)?;
    }
    Ok(())
}

pub(crate) fn find_api_key(
    c: &Connection,
    hash: &SecretHash,
) -> Result<Option<ApiKey>, StoreError> {
    let sql = format!("SELECT {} FROM api_key WHERE hash = ?1", rows::API_KEY_COLS);
    one(c, &sql, [&hash.0[..]], rows::api_key)
}

// ---- clients ----------------------------------------------------------------------------------

pub(crate) fn upsert_client(
    c: &Connection,
    cl: &Client,
    audit: &NewAudit,
) -> Result<(), StoreError> {
    // A replaced client keeps its original registration time.
    exec(
        c,
        "INSERT INTO client (tenant, name, link_template, allowed_prefixes, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (tenant, name) DO UPDATE SET link_template = excluded.link_template, \
         allowed_prefixes = excluded.allowed_prefixes",
        params![
            cl.tenant.as_str(),
            cl.name.as_str(),
            cl.link_template.as_str(),
            to_json(&cl.allowed_prefixes)?,
            cl.created_at.0
        ],
    )?;
    insert_audit(c, audit)
}

pub(crate) fn get_client(
    c: &Connection,
    tenant: &TenantId,
    name: &ClientName,
) -> Result<Option<Client>, StoreError> {
    let sql = format!(
        "SELECT {} FROM client WHERE tenant = ?1 AND name = ?2",
        rows::CLIENT_COLS
    );
    one(c, &sql, [tenant.as_str(), name.as_str()], rows::client)
}

pub(crate) fn list_clients(c: &Connection, tenant: &TenantId) -> Result<Vec<Client>, StoreError> {
    let sql = format!(
        "SELECT {} FROM client WHERE tenant = ?1 ORDER BY name",
        rows::CLIENT_COLS
    );
    all(c, &sql, [tenant.as_str()], rows::client)
}

// ---- reset requests and tokens ----------------------------------------------------------------

pub(crate) fn insert_reset_request(c: &Connection, r: &NewResetRequest) -> Result<i64, StoreError> {
    exec(
        c,
        "INSERT INTO reset_request (tenant, lookup, client, locale, ip, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            r.tenant.as_str(),
            to_json(&r.lookup)?,
            r.client.as_ref().map(ClientName::as_str),
            r.locale.as_ref().map(|l| l.as_str()),
            r.ip,
            r.created_at.0
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub(crate) fn claim_reset_requests(
    c: &Connection,
    now: Timestamp,
    lease_until: Timestamp,
    n: u32,
) -> Result<Vec<ResetRequest>, StoreError> {
    // The writer holds the database's write lock, so the select and the update cannot interleave
    // with another claim, in this process or another.
    let sql = format!(
        "UPDATE reset_request SET claimed_until = ?2 WHERE id IN (SELECT id FROM reset_request \
         WHERE claimed_until IS NULL OR claimed_until <= ?1 ORDER BY id LIMIT ?3) RETURNING {}",
        rows::REQUEST_COLS
    );
    let mut claimed = all(
        c,
        &sql,
        params![now.0, lease_until.0, limit(n)],
        rows::reset_request,
    )?;
    claimed.sort_by_key(|r| r.id); // RETURNING has no defined order
    Ok(claimed)
}

pub(crate) fn resolve_reset_request(
    c: &Connection,
    id: i64,
    resolution: &Resolution,
) -> Result<Resolved, StoreError> {
    if exec(c, "DELETE FROM reset_request WHERE id = ?1", [id])? == 0 {
        return Ok(Resolved::Discarded); // resolved elsewhere: change nothing
    }
    let issue = match resolution {
        Resolution::Discard(audit) => {
            insert_audit(c, audit)?;
            return Ok(Resolved::Discarded);
        }
        Resolution::Issue(issue) => issue,
    };
    issue_token(c, issue)
}

/// Issues a token unless the person is cooling down: supersedes their live tokens, stores the
/// token, queues its email and records the audit event.
pub(crate) fn issue_token(c: &Connection, issue: &IssueToken) -> Result<Resolved, StoreError> {
    let t = &issue.token;
    let cooling: bool = one(
        c,
        "SELECT EXISTS (SELECT 1 FROM reset_token WHERE tenant = ?1 AND person = ?2 AND created_at > ?3)",
        params![t.tenant.as_str(), t.person.as_str(), issue.cooldown_since.0],
        |r| get(r, 0),
    )?
    .unwrap_or(false);
    if cooling {
        return Ok(Resolved::CoolingDown);
    }
    revoke_live_tokens(c, &t.tenant, &t.person, t.created_at)?;
    exec(
        c,
        "INSERT INTO reset_token (hash, tenant, person, client, created_at, expires_at, used_at, revoked_at, ip) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            &t.hash.0[..],
            t.tenant.as_str(),
            t.person.as_str(),
            t.client.as_ref().map(ClientName::as_str),
            t.created_at.0,
            t.expires_at.0,
            t.used_at.map(|x| x.0),
            t.revoked_at.map(|x| x.0),
            t.ip
        ],
    )?;
    insert_message(c, &issue.message)?;
    insert_audit(c, &issue.audit)?;
    Ok(Resolved::Issued)
}

pub(crate) fn void_token(
    c: &Connection,
    tenant: &TenantId,
    hash: &SecretHash,
    at: Timestamp,
    audit: &NewAudit,
) -> Result<bool, StoreError> {
    let voided = exec(
        c,
        "UPDATE reset_token SET revoked_at = ?3 \
         WHERE hash = ?1 AND tenant = ?2 AND used_at IS NULL AND revoked_at IS NULL",
        params![&hash.0[..], tenant.as_str(), at.0],
    )?;
    if voided == 0 {
        return Ok(false);
    }
    insert_audit(c, audit)?;
    Ok(true)
}

pub(crate) fn find_token(
    c: &Connection,
    hash: &SecretHash,
) -> Result<Option<ResetToken>, StoreError> {
    let sql = format!(
        "SELECT {} FROM reset_token WHERE hash = ?1",
        rows::TOKEN_COLS
    );
    one(c, &sql, [&hash.0[..]], rows::reset_token)
}

// ---- passwords and logins ---------------------------------------------------------------------

pub(crate) fn change_password(c: &Connection, ch: &PasswordChange) -> Result<(), StoreError> {
    let (tenant, person) = (ch.tenant.as_str(), ch.person.as_str());
    if let Some(hash) = &ch.token {
        // The single-use guarantee: only one caller can flip used_at from NULL. The token must
        // also belong to this person and still be unexpired at the moment of the change.
        let consumed = exec(
            c,
            "UPDATE reset_token SET used_at = ?1 WHERE hash = ?2 AND tenant = ?3 AND person = ?4 \
             AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?1",
            params![ch.at.0, &hash.0[..], tenant, person],
        )?;
        if consumed != 1 {
            return Err(StoreError::TokenGone);
        }
    }
    let old: Option<String> = one(
        c,
        "SELECT password_hash FROM person WHERE tenant = ?1 AND id = ?2",
        [tenant, person],
        |r| get(r, 0),
    )?
    .ok_or(StoreError::NotFound)?;
    if ch.keep_history > 0 {
        if let Some(old) = old {
            exec(
                c,
                "INSERT INTO password_history (tenant, person, hash, at) VALUES (?1, ?2, ?3, ?4)",
                params![tenant, person, old, ch.at.0],
            )?;
        }
        exec(
            c,
            "DELETE FROM password_history WHERE tenant = ?1 AND person = ?2 AND id NOT IN \
             (SELECT id FROM password_history WHERE tenant = ?1 AND person = ?2 ORDER BY id DESC LIMIT ?3)",
            params![tenant, person, i64::from(ch.keep_history)],
        )?;
    }
    exec(
        c,
        "UPDATE person SET password_hash = ?3, password_changed_at = ?4, must_change_password = ?5, \
         updated_at = ?4 WHERE tenant = ?1 AND id = ?2",
        params![tenant, person, ch.new_hash, ch.at.0, ch.must_change_password],
    )?;
    if ch.unlock {
        super::login::clear_counter(c, &ch.tenant, &ch.person)?;
    }
    // The consumed token has used_at set, so this voids every other live token.
    revoke_live_tokens(c, &ch.tenant, &ch.person, ch.at)?;
    if let Some(m) = &ch.message {
        insert_message(c, m)?;
    }
    insert_audit(c, &ch.audit)
}

pub(crate) fn password_history(
    c: &Connection,
    tenant: &TenantId,
    person: &PersonId,
    n: u32,
) -> Result<Vec<String>, StoreError> {
    all(
        c,
        "SELECT hash FROM password_history WHERE tenant = ?1 AND person = ?2 ORDER BY id DESC LIMIT ?3",
        params![tenant.as_str(), person.as_str(), limit(n)],
        |r| get(r, 0),
    )
}

// ---- audit ------------------------------------------------------------------------------------

pub(crate) fn append_audit(c: &Connection, a: &NewAudit) -> Result<(), StoreError> {
    insert_audit(c, a)
}

pub(crate) fn list_audit(
    c: &Connection,
    tenant: &TenantId,
    before: Option<i64>,
    n: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    let sql = format!(
        "SELECT {} FROM audit_event WHERE tenant = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        rows::AUDIT_COLS
    );
    all(
        c,
        &sql,
        params![tenant.as_str(), before.unwrap_or(i64::MAX), limit(n)],
        rows::audit,
    )
}

// ---- outbox -----------------------------------------------------------------------------------

pub(crate) fn claim_outbox(
    c: &Connection,
    now: Timestamp,
    lease_until: Timestamp,
    n: u32,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let ids: Vec<i64> = all(
        c,
        "SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1 \
         ORDER BY next_attempt_at, id LIMIT ?2",
        params![now.0, limit(n)],
        |r| get(r, 0),
    )?;
    let sql = format!(
        "UPDATE outbox SET next_attempt_at = ?2, attempts = attempts + 1 WHERE id = ?1 RETURNING {}",
        rows::OUTBOX_COLS
    );
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        claimed.extend(one(c, &sql, params![id, lease_until.0], rows::outbox)?);
    }
    Ok(claimed)
}

pub(crate) fn mark_sent(c: &Connection, id: i64, at: Timestamp) -> Result<(), StoreError> {
    found(exec(
        c,
        // Erased once sent: the body held a live reset link (see crate::sealing).
        "UPDATE outbox SET status = 'sent', sent_at = ?2, text = '', html = NULL WHERE id = ?1",
        params![id, at.0],
    )?)
}

/// Marks a message whose body cannot be opened dead with `why`, keeping the sealed body (it is
/// unreadable without its key, and restoring the key then retrying sends it).
pub(crate) fn mark_unreadable(c: &Connection, id: i64, why: &str) -> Result<(), StoreError> {
    found(exec(
        c,
        "UPDATE outbox SET status = 'dead', last_error = ?2 WHERE id = ?1",
        params![id, truncate_error(why)],
    )?)
}

/// `error` cut to [`MAX_ERROR_CHARS`] characters (on a character boundary).
pub(crate) fn truncate_error(error: &str) -> &str {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => &error[..i],
        None => error,
    }
}

pub(crate) fn mark_failed(
    c: &Connection,
    id: i64,
    error: &str,
    retry_at: Option<Timestamp>,
) -> Result<(), StoreError> {
    let error = truncate_error(error);
    let changed = match retry_at {
        Some(at) => exec(
            c,
            "UPDATE outbox SET next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
            params![id, at.0, error],
        )?,
        None => exec(
            c,
            // Erased once dead: nobody will send it, and it held a live reset link.
            "UPDATE outbox SET status = 'dead', last_error = ?2, text = '', html = NULL WHERE id = ?1",
            params![id, error],
        )?,
    };
    found(changed)
}

pub(crate) fn list_outbox(
    c: &Connection,
    tenant: Option<&TenantId>,
    status: Option<OutboxStatus>,
    n: u32,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let mut sql = format!("SELECT {} FROM outbox WHERE 1 = 1", rows::OUTBOX_COLS);
    let mut args: Vec<Value> = Vec::new();
    if let Some(t) = tenant {
        args.push(Value::Text(t.as_str().to_owned()));
        sql.push_str(&format!(" AND tenant = ?{}", args.len()));
    }
    if let Some(s) = status {
        args.push(Value::Text(s.as_str().to_owned()));
        sql.push_str(&format!(" AND status = ?{}", args.len()));
    }
    args.push(Value::Integer(limit(n)));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", args.len()));
    all(c, &sql, params_from_iter(args), rows::outbox)
}

pub(crate) fn retry_outbox(
    c: &Connection,
    tenant: Option<&TenantId>,
    id: i64,
    at: Timestamp,
) -> Result<TenantId, StoreError> {
    // attempts restart at 0 (they count leases, for the record). A revived notice gets a fresh
    // retry window as long as its first; a reset link keeps its deadline, the link's expiry. A
    // body erased when the message died cannot be sent again (`Erased`).
    let revived = one(
        c,
        "UPDATE outbox SET status = 'pending', next_attempt_at = ?2, attempts = 0, \
         deliver_by = CASE WHEN kind = 'reset_link' THEN deliver_by \
             ELSE MAX(deliver_by, ?2 + (deliver_by - created_at)) END \
         WHERE id = ?1 AND status IN ('pending', 'dead') AND text <> '' \
         AND (?3 IS NULL OR tenant = ?3) RETURNING tenant",
        params![id, at.0, tenant.map(TenantId::as_str)],
        |r| rows::tenant_id(get(r, 0)?),
    )?;
    if let Some(t) = revived {
        return Ok(t);
    }
    let erased = one(
        c,
        "SELECT 1 FROM outbox WHERE id = ?1 AND status = 'dead' AND text = '' \
         AND (?2 IS NULL OR tenant = ?2)",
        params![id, tenant.map(TenantId::as_str)],
        |_| Ok(()),
    )?;
    Err(match erased {
        Some(()) => StoreError::Erased,
        None => StoreError::NotFound,
    })
}

/// Seals the bodies of pending messages queued in clear by a version before sealing; returns
/// how many. Each update is conditional on the body being unchanged, so a message sent meanwhile
/// by another process is left alone.
pub(crate) fn seal_plain_outbox(
    c: &Connection,
    keys: &crate::sealing::OutboxKeys,
) -> Result<u64, StoreError> {
    let plain = all(
        c,
        &format!(
            "SELECT {} FROM outbox WHERE status = 'pending' AND text <> '' \
             AND text NOT LIKE 'resetd-sealed:%'",
            rows::OUTBOX_COLS
        ),
        [],
        rows::outbox,
    )?;
    let mut sealed = 0;
    for m in plain {
        let mut message = m.message.clone();
        keys.seal(&mut message)?;
        sealed += exec(
            c,
            "UPDATE outbox SET text = ?2, html = NULL WHERE id = ?1 AND text = ?3",
            params![m.id, message.text, m.message.text],
        )? as u64;
    }
    Ok(sealed)
}

pub(crate) fn outbox_counts(c: &Connection) -> Result<Vec<(OutboxStatus, u64)>, StoreError> {
    let counted = all(
        c,
        "SELECT status, COUNT(*) FROM outbox GROUP BY status",
        [],
        |r| {
            let n: i64 = get(r, 1)?;
            Ok((rows::status(r, 0)?, u64::try_from(n).unwrap_or(0)))
        },
    )?;
    // Every status is listed, with 0 where there is none, in a fixed order.
    Ok([
        OutboxStatus::Pending,
        OutboxStatus::Sent,
        OutboxStatus::Dead,
    ]
    .into_iter()
    .map(|s| {
        (
            s,
            counted.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n),
        )
    })
    .collect())
}

// ---- import -----------------------------------------------------------------------------------

/// See [`resetd_core::ports::Directory::upsert_people`]; runs inside the writer's transaction.
pub(crate) fn upsert_people(
    c: &Connection,
    people: &[Person],
    audit: &NewAudit,
) -> Result<Vec<bool>, StoreError> {
    let mut inserted = Vec::with_capacity(people.len());
    for p in people {
        let changed = exec(
            c,
            "UPDATE person SET email = ?3, display_name = ?4, locale = ?5, enabled = ?6, roles = ?7, \
             attributes = ?8, updated_at = ?9, verified = ?10, \
             password_changed_at = CASE WHEN ?11 IS NOT NULL AND (password_hash IS NULL OR password_hash NOT LIKE '$argon2id$%') \
               THEN ?12 ELSE password_changed_at END, \
             password_hash = CASE WHEN ?11 IS NOT NULL AND (password_hash IS NULL OR password_hash NOT LIKE '$argon2id$%') \
               THEN ?11 ELSE password_hash END \
             WHERE tenant = ?1 AND login = ?2",
            params![
                p.tenant.as_str(),
                p.login.as_str(),
                p.email.as_str(),
                p.display_name.as_str(),
                p.locale.as_ref().map(|l| l.as_str()),
                p.enabled,
                to_json(&p.roles)?,
                to_json(&p.attributes)?,
                p.updated_at.0,
                p.verified,
                p.password_hash,
                p.password_changed_at.map(|t| t.0),
            ],
        )?;
        if changed == 0 {
            insert_person_row(c, p)?;
        }
        inserted.push(changed == 0);
    }
    insert_audit(c, audit)?;
    Ok(inserted)
}
