//! `resetd apikey …`: create, list, show, revoke and rotate API keys on the configured database,
//! as the native API's /v1/{tenant}/api-keys does. Secrets are printed once, on stdout alone;
//! listings never hold one. See `docs/api-keys.md`.

use clap::Subcommand;
use resetd_core::api_key::{ApiKey, ApiKeyId, NewApiKey, Overlap, Scope};
use resetd_core::model::Timestamp;
use resetd_core::service::Actor;
use resetd_core::types::TenantId;
use resetd_core::{CoreError, Service};
use resetd_server::native::api_key_json as key_json;

#[derive(Subcommand)]
pub enum ApiKeyCmd {
    /// Create an API key and print it once (stdout; its id goes to stderr).
    Create {
        #[arg(long)]
        tenant: String,
        /// What the key may do: admin, read (audit and outbox reads), crafter, empowerid or
        /// payabli (that dialect only). Repeatable or comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "admin")]
        scope: Vec<String>,
        #[arg(long, default_value = "cli")]
        name: String,
        /// When the key stops working: an RFC 3339 date-time (2027-01-01T00:00:00Z) or a
        /// duration from now (90d, 12h, 30m, 45s).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List API keys (never their secrets): id, tenant, name, scopes, state, created, last used,
    /// expires.
    List {
        /// Only this tenant's keys (default: every tenant's).
        #[arg(long)]
        tenant: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show one API key (never its secret).
    Show {
        id: String,
        /// As one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key: its secrets stop working at once on every surface.
    Revoke { id: String },
    /// Give an API key a new secret (printed once); the old one keeps working for the overlap.
    Rotate {
        id: String,
        /// Seconds the old secret keeps working (0 to 86400).
        #[arg(long, default_value_t = Overlap::DEFAULT_SECS)]
        overlap: i64,
    },
}

/// Runs one `apikey` command.
pub async fn run(service: &Service, cmd: ApiKeyCmd) -> Result<(), String> {
    match cmd {
        ApiKeyCmd::Create {
            tenant,
            scope,
            name,
            expires,
        } => {
            let tenant = TenantId::parse(&tenant).map_err(|e| e.to_string())?;
            let scopes = scope
                .iter()
                .map(|s| Scope::parse(s.trim()).map_err(|_| unknown_scope(s)))
                .collect::<Result<Vec<_>, _>>()?;
            let expires_at = expires
                .as_deref()
                .map(|e| expiry(e, service.now()))
                .transpose()?;
            let new = NewApiKey {
                name,
                scopes,
                expires_at,
            };
            let (key, secret) = service
                .create_key(&tenant, new, &Actor::Cli)
                .await
                .map_err(explain)?;
            eprintln!(
                "API key {} created for tenant {tenant}; it is shown only now:",
                key.id
            );
            println!("{}", secret.expose());
            Ok(())
        }
        ApiKeyCmd::List { tenant, json } => {
            let tenant = tenant
                .as_deref()
                .map(TenantId::parse)
                .transpose()
                .map_err(|e| e.to_string())?;
            let now = service.now();
            for k in service.api_keys(tenant.as_ref()).await.map_err(explain)? {
                if json {
                    println!("{}", key_json(&k, now));
                } else {
                    println!("{}", key_line(&k, now));
                }
            }
            Ok(())
        }
        ApiKeyCmd::Show { id, json } => {
            let k = service
                .api_key(None, &key_id(&id)?)
                .await
                .map_err(explain)?;
            let now = service.now();
            if json {
                println!("{}", key_json(&k, now));
            } else {
                println!("{}", key_line(&k, now));
            }
            Ok(())
        }
        ApiKeyCmd::Revoke { id } => {
            let k = service
                .revoke_api_key(None, &key_id(&id)?, &Actor::Cli, None)
                .await
                .map_err(explain)?;
            println!("API key {} of tenant {} revoked", k.id, k.tenant);
            Ok(())
        }
        ApiKeyCmd::Rotate { id, overlap } => {
            let overlap = Overlap::from_secs(overlap).map_err(|e| format!("--overlap: {e}"))?;
            let (k, secret) = service
                .rotate_api_key(None, &key_id(&id)?, overlap, &Actor::Cli, None)
                .await
                .map_err(explain)?;
            eprintln!(
                "API key {} rotated; the old secret works until {}; the new one is shown only now:",
                k.id,
                k.previous_until.map(Timestamp::rfc3339).unwrap_or_default()
            );
            println!("{}", secret.expose());
            Ok(())
        }
    }
}

fn unknown_scope(s: &str) -> String {
    let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    format!("unknown scope {s:?} (known: {})", known.join(", "))
}

fn key_id(raw: &str) -> Result<ApiKeyId, String> {
    ApiKeyId::parse(raw).map_err(|_| format!("no API key has the id {raw:?}"))
}

fn explain(e: CoreError) -> String {
    match e {
        CoreError::NotFound(_) => "no API key has this id".into(),
        CoreError::KeyRevoked => "the API key is revoked already".into(),
        CoreError::KeyExpired => "the API key has expired; create a new one".into(),
        other => other.to_string(),
    }
}

/// `--expires`: an RFC 3339 date-time, or a whole number of seconds, minutes, hours or days
/// from `now`.
fn expiry(raw: &str, now: Timestamp) -> Result<Timestamp, String> {
    let bad = || {
        format!(
            "--expires {raw:?}: expected an RFC 3339 date-time (2027-01-01T00:00:00Z) or a \
             duration such as 90d, 12h, 30m or 45s"
        )
    };
    if let Ok(t) = Timestamp::parse_rfc3339("expires", raw) {
        return Ok(t);
    }
    let (digits, unit) = raw.split_at(raw.len().saturating_sub(1));
    let per: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(bad());
    }
    n.checked_mul(per)
        .map(|secs| now.plus_secs(secs))
        .ok_or_else(bad)
}

/// Tab-separated: id, tenant, name, scopes, state, created, last used, expires ("-" for none).
fn key_line(k: &ApiKey, now: Timestamp) -> String {
    let t = |t: Option<Timestamp>| t.map(Timestamp::rfc3339).unwrap_or_else(|| "-".into());
    let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        k.id,
        k.tenant,
        k.name,
        scopes.join(","),
        k.state(now).as_str(),
        k.created_at.rfc3339(),
        t(k.last_used_at),
        t(k.expires_at)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_takes_a_date_or_a_duration() {
        let now = Timestamp(1_000_000);
        assert_eq!(expiry("90d", now), Ok(now.plus_secs(90 * 86_400)));
        assert_eq!(expiry("45s", now), Ok(now.plus_secs(45)));
        assert_eq!(expiry("1970-01-01T00:00:02Z", now), Ok(Timestamp(2000)));
        for bad in ["", "d", "0d", "-1h", "10w", "soon", "9999999999999999d"] {
            assert!(expiry(bad, now).is_err(), "{bad}");
        }
    }
}
