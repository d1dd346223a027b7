//! `resetd outbox …`: list, retry and abandon outgoing email.

use std::path::Path;

use clap::Subcommand;
use resetd_core::model::{OutboxMessage, OutboxStatus};
use resetd_core::ports::Outbox;
use resetd_core::service::Actor;
use resetd_core::types::TenantId;
use resetd_core::Service;
use resetd_server::native::message_json;
use resetd_store::OutboxKeys;

/// `resetd outbox …`.
#[derive(Subcommand)]
pub enum OutboxCmd {
    /// List queued, sent and dead messages, newest first (tab-separated: id, tenant, kind,
    /// recipient, status, attempts, next attempt, created, sent, last error, the id of the
    /// outbox key that sealed its body or `-` once erased).
    List {
        /// Only this tenant's messages (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Only messages in this state.
        #[arg(long, value_parser = ["pending", "sent", "dead"])]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// One JSON object per line (the API's message form, plus the sealing key's id as
        /// `sealed_with`).
        #[arg(long)]
        json: bool,
    },
    /// Queue a dead (or waiting) message again, due now, with a full set of attempts. A running
    /// server picks it up within a second. A message given up after a failed delivery had its
    /// body erased and cannot be queued again.
    Retry {
        /// The message id (from `resetd outbox list`).
        id: i64,
        /// Only if the message belongs to this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Mark dead every pending message sealed with an outbox key that the key file lacks (a key
    /// lost for good), so that `serve` starts again. Their links are gone; the people concerned
    /// ask for a new email.
    Abandon,
}

fn tenant(raw: Option<&str>) -> Result<Option<TenantId>, String> {
    raw.map(|t| TenantId::parse(t).map_err(|e| format!("--tenant: {e}")))
        .transpose()
}

fn dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

fn line(m: &OutboxMessage) -> String {
    let next = (m.status == resetd_core::model::OutboxStatus::Pending)
        .then(|| m.next_attempt_at.rfc3339());
    [
        m.id.to_string(),
        m.message.tenant.to_string(),
        m.message.kind.as_str().to_owned(),
        m.message.recipient.to_string(),
        m.status.as_str().to_owned(),
        m.attempts.to_string(),
        dash(next),
        m.message.created_at.rfc3339(),
        dash(m.sent_at.map(|t| t.rfc3339())),
        dash(m.last_error.clone()),
        // The outbox key that sealed its body, for key rotation; `-` once erased.
        dash(OutboxKeys::sealed_with(&m.message.text).map(str::to_owned)),
    ]
    .join("\t")
}

/// Runs one `resetd outbox` command. `abandon` works on the outbox below the use cases (it
/// marks messages dead whatever their tenant), through the store the binary opened.
pub async fn run(
    service: &Service,
    outbox: &(impl Outbox + ?Sized),
    key_file: &Path,
    cmd: OutboxCmd,
) -> Result<(), String> {
    match cmd {
        OutboxCmd::List {
            tenant: t,
            status,
            limit,
            json,
        } => {
            let t = tenant(t.as_deref())?;
            let status = status
                .as_deref()
                .and_then(resetd_core::model::OutboxStatus::parse);
            let messages = service
                .outbox(t.as_ref(), status, limit)
                .await
                .map_err(|e| e.to_string())?;
            for m in &messages {
                if json {
                    let mut v = message_json(m);
                    v["tenant"] = m.message.tenant.as_str().into();
                    v["sealed_with"] = OutboxKeys::sealed_with(&m.message.text).into();
                    super::json_line(&v);
                } else {
                    println!("{}", line(m));
                }
            }
            Ok(())
        }
        OutboxCmd::Retry { id, tenant: t } => {
            let t = tenant(t.as_deref())?;
            service
                .retry_message(t.as_ref(), id, &Actor::Cli, None)
                .await
                .map_err(|e| match e {
                    resetd_core::CoreError::NotFound(_) => format!(
                        "no pending or dead message {id}{} (sent messages cannot be retried)",
                        t.map(|t| format!(" in tenant {t}")).unwrap_or_default()
                    ),
                    resetd_core::CoreError::MessageErased => format!(
                        "message {id} was given up and its body erased (it held a reset link); \
                         it cannot be sent again: ask for a new reset email instead"
                    ),
                    other => other.to_string(),
                })?;
            println!("message {id} queued again");
            Ok(())
        }
        OutboxCmd::Abandon => {
            let keys = crate::outbox_key::load_unchecked(key_file)?;
            let pending = outbox
                .list_outbox(None, Some(OutboxStatus::Pending), u32::MAX)
                .await
                .map_err(|e| e.to_string())?;
            let mut abandoned = 0;
            for m in &pending {
                let Some(id) = OutboxKeys::sealed_with(&m.message.text) else {
                    continue;
                };
                if keys.has(id) {
                    continue;
                }
                let reason = format!(
                    "abandoned by `resetd outbox abandon`: sealed with outbox key {id}, which is lost"
                );
                outbox
                    .mark_failed(m.id, &reason, None)
                    .await
                    .map_err(|e| e.to_string())?;
                abandoned += 1;
            }
            println!("{abandoned} pending message(s) sealed with a lost key marked dead");
            Ok(())
        }
    }
}
