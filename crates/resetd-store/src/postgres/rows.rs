//! Reading records back from PostgreSQL rows. As for SQLite, every value is re-validated through
//! the core's checked constructors; anything that does not parse is a `Backend` error naming the
//! column (never its value), never a panic.

use resetd_core::model::{
    AuditEvent, Client, LinkTemplate, Lookup, MessageKind, NewMessage, OutboxMessage, OutboxStatus,
    Person, ResetRequest, ResetToken, Tenant, TenantSettings, Timestamp, TokenPurpose,
};
use resetd_core::secret::SecretHash;
use resetd_core::store::StoreError;
use resetd_core::types::{ClientName, DisplayName, Email, Locale, Login, PersonId, TenantId};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use super::db;

/// A `Backend` error naming the corrupt column (never its value).
pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt value in the database: {what}"))
}

/// Column `i` of `row`.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i).map_err(db)
}

pub(crate) fn ts(row: &Row, i: usize) -> Result<Timestamp, StoreError> {
    get::<i64>(row, i).map(Timestamp)
}

pub(crate) fn opt_ts(row: &Row, i: usize) -> Result<Option<Timestamp>, StoreError> {
    Ok(get::<Option<i64>>(row, i)?.map(Timestamp))
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(
    row: &Row,
    i: usize,
    what: &str,
) -> Result<T, StoreError> {
    let s: &str = get(row, i)?;
    serde_json::from_str(s).map_err(|_| corrupt(what))
}

/// A non-negative counter column as `u32`.
pub(crate) fn count(row: &Row, i: usize, what: &str) -> Result<u32, StoreError> {
    u32::try_from(get::<i64>(row, i)?).map_err(|_| corrupt(what))
}

pub(crate) fn tenant_id(s: &str) -> Result<TenantId, StoreError> {
    TenantId::parse(s).map_err(|_| corrupt("tenant"))
}

fn person_id(s: &str) -> Result<PersonId, StoreError> {
    PersonId::parse(s).map_err(|_| corrupt("person id"))
}

fn client_name(s: Option<&str>) -> Result<Option<ClientName>, StoreError> {
    s.map(|s| ClientName::parse(s).map_err(|_| corrupt("client name")))
        .transpose()
}

fn locale(s: Option<&str>) -> Result<Option<Locale>, StoreError> {
    s.map(|s| Locale::parse(s).map_err(|_| corrupt("locale")))
        .transpose()
}

fn secret_hash(row: &Row, i: usize) -> Result<SecretHash, StoreError> {
    let b: &[u8] = get(row, i)?;
    SecretHash::from_slice(b).ok_or_else(|| corrupt("hash"))
}

pub(crate) const TENANT_COLS: &str = "id, settings, created_at";

pub(crate) fn tenant(row: &Row) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: tenant_id(get(row, 0)?)?,
        settings: json::<TenantSettings>(row, 1, "tenant settings")?,
        created_at: ts(row, 2)?,
    })
}

/// A person's columns, for `SELECT {PERSON_COLS} FROM person`. The failure count and lock are
/// the login's counter (`login_attempt`), which exists whether or not anyone has the login; the
/// `person` columns of the same names are no longer read.
pub(crate) const PERSON_COLS: &str = "id, tenant, number, login, email, display_name, locale, enabled, roles, \
     attributes, password_hash, password_changed_at, must_change_password, \
     COALESCE((SELECT a.failures FROM login_attempt a WHERE a.tenant = person.tenant AND a.login = person.login), 0), \
     (SELECT a.locked_until FROM login_attempt a WHERE a.tenant = person.tenant AND a.login = person.login), \
     created_at, updated_at, verified";

pub(crate) fn person(row: &Row) -> Result<Person, StoreError> {
    Ok(Person {
        id: person_id(get(row, 0)?)?,
        tenant: tenant_id(get(row, 1)?)?,
        number: get(row, 2)?,
        login: Login::parse(get(row, 3)?).map_err(|_| corrupt("login"))?,
        email: Email::parse(get(row, 4)?).map_err(|_| corrupt("email"))?,
        display_name: DisplayName::parse(get(row, 5)?).map_err(|_| corrupt("display name"))?,
        locale: locale(get(row, 6)?)?,
        enabled: get(row, 7)?,
        roles: json(row, 8, "roles")?,
        attributes: json(row, 9, "attributes")?,
        password_hash: get(row, 10)?,
        password_changed_at: opt_ts(row, 11)?,
        must_change_password: get(row, 12)?,
        failed_logins: count(row, 13, "failed logins")?,
        locked_until: opt_ts(row, 14)?,
        created_at: ts(row, 15)?,
        updated_at: ts(row, 16)?,
        verified: get(row, 17)?,
    })
}

pub(crate) const CLIENT_COLS: &str = "tenant, name, link_template, allowed_prefixes, created_at";

pub(crate) fn client(row: &Row) -> Result<Client, StoreError> {
    Ok(Client {
        tenant: tenant_id(get(row, 0)?)?,
        name: client_name(Some(get(row, 1)?))?.ok_or_else(|| corrupt("client name"))?,
        link_template: LinkTemplate::parse(get(row, 2)?).map_err(|_| corrupt("link template"))?,
        allowed_prefixes: json(row, 3, "allowed prefixes")?,
        created_at: ts(row, 4)?,
    })
}

pub(crate) const REQUEST_COLS: &str = "id, tenant, lookup, client, locale, ip, created_at";

pub(crate) fn reset_request(row: &Row) -> Result<ResetRequest, StoreError> {
    Ok(ResetRequest {
        id: get(row, 0)?,
        tenant: tenant_id(get(row, 1)?)?,
        lookup: json::<Lookup>(row, 2, "lookup")?,
        client: client_name(get(row, 3)?)?,
        locale: locale(get(row, 4)?)?,
        ip: get(row, 5)?,
        created_at: ts(row, 6)?,
    })
}

pub(crate) const TOKEN_COLS: &str =
    "hash, tenant, person, client, created_at, expires_at, used_at, revoked_at, ip, purpose, \
     claim_id IS NOT NULL";

/// A token row; `None` when its purpose is one this build does not know (see
/// [`Recovery::find_token`](resetd_core::ports::Recovery::find_token)).
pub(crate) fn reset_token(row: &Row) -> Result<Option<ResetToken>, StoreError> {
    let Some(purpose) = TokenPurpose::parse(get(row, 9)?) else {
        return Ok(None);
    };
    Ok(Some(ResetToken {
        hash: secret_hash(row, 0)?,
        tenant: tenant_id(get(row, 1)?)?,
        person: person_id(get(row, 2)?)?,
        purpose,
        client: client_name(get(row, 3)?)?,
        created_at: ts(row, 4)?,
        expires_at: ts(row, 5)?,
        used_at: opt_ts(row, 6)?,
        revoked_at: opt_ts(row, 7)?,
        ip: get(row, 8)?,
        claimed: get(row, 10)?,
    }))
}

pub(crate) const OUTBOX_COLS: &str =
    "id, tenant, kind, recipient, subject, text, html, message_id, created_at, \
     attempts, next_attempt_at, status, last_error, sent_at, deliver_by";

pub(crate) fn outbox(row: &Row) -> Result<OutboxMessage, StoreError> {
    Ok(OutboxMessage {
        id: get(row, 0)?,
        message: NewMessage {
            tenant: tenant_id(get(row, 1)?)?,
            kind: MessageKind::parse(get(row, 2)?).ok_or_else(|| corrupt("message kind"))?,
            recipient: Email::parse(get(row, 3)?).map_err(|_| corrupt("recipient"))?,
            subject: get(row, 4)?,
            text: get(row, 5)?,
            html: get(row, 6)?,
            // Opened with the body (crate::sealing), where it is kept.
            sender_name: None,
            message_id: get(row, 7)?,
            created_at: ts(row, 8)?,
            deliver_by: ts(row, 14)?,
        },
        attempts: count(row, 9, "attempts")?,
        next_attempt_at: ts(row, 10)?,
        status: status(row, 11)?,
        last_error: get(row, 12)?,
        sent_at: opt_ts(row, 13)?,
    })
}

pub(crate) fn status(row: &Row, i: usize) -> Result<OutboxStatus, StoreError> {
    OutboxStatus::parse(get(row, i)?).ok_or_else(|| corrupt("outbox status"))
}

pub(crate) const AUDIT_COLS: &str = "id, person, kind, actor, ip, at, detail";

pub(crate) fn audit(row: &Row) -> Result<AuditEvent, StoreError> {
    Ok(AuditEvent {
        id: get(row, 0)?,
        person: get(row, 1)?,
        kind: get(row, 2)?,
        actor: get(row, 3)?,
        ip: get(row, 4)?,
        at: ts(row, 5)?,
        detail: json(row, 6, "audit detail")?,
    })
}

/// Maps every row with `f`.
pub(crate) fn map_all<T>(
    rows: Vec<Row>,
    f: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(f).collect()
}
