//! The emails the flows queue: whose language they speak, their Message-ID, and the notice that a
//! password changed.

use crate::error::CoreError;
use crate::model::{MessageKind, NewMessage, Person, Tenant, Timestamp};
use crate::render::{MessageContext, Rendered};
use crate::secret::{hex, random_bytes};
use crate::types::{ClientName, Locale};

use super::{Result, Service};

impl Service {
    /// The person's own locale wins over the one a request asked for, then the tenant's default.
    pub(super) fn locale_for(
        &self,
        person: &Person,
        requested: Option<&Locale>,
        tenant: &Tenant,
    ) -> Locale {
        person
            .locale
            .clone()
            .or_else(|| requested.cloned())
            .or_else(|| Locale::parse(&tenant.settings.default_locale).ok())
            .unwrap_or_else(Locale::en)
    }

    pub(super) fn new_message(
        &self,
        person: &Person,
        kind: MessageKind,
        r: Rendered,
        now: Timestamp,
        deliver_by: Timestamp,
    ) -> NewMessage {
        NewMessage {
            tenant: person.tenant.clone(),
            kind,
            recipient: person.email.clone(),
            subject: r.subject,
            text: r.text,
            html: r.html,
            sender_name: r.sender_name,
            message_id: format!(
                "<{}@{}>",
                hex(&random_bytes::<16>()),
                self.config.message_id_domain
            ),
            created_at: now,
            deliver_by,
        }
    }

    /// The "your password was changed" notice, in the words of `client` when the change came
    /// through a link of that client (its templates, and a dialect's product, apply to it).
    pub(super) fn password_changed_message(
        &self,
        person: &Person,
        tenant: &Tenant,
        client: Option<&ClientName>,
    ) -> Result<NewMessage> {
        let locale = self.locale_for(person, None, tenant);
        let ctx = MessageContext {
            tenant: &tenant.id,
            kind: MessageKind::PasswordChanged,
            client,
            locale: &locale,
            name: person_name(person),
            login: person.login.as_str(),
            link: None,
            expires_in_minutes: 0,
        };
        let r = self
            .renderer
            .render(&ctx)
            .map_err(|e| CoreError::Internal(format!("rendering failed: {e}")))?;
        let now = self.now();
        let deliver_by = now.plus_secs(self.config.notice_retry_secs);
        Ok(self.new_message(person, MessageKind::PasswordChanged, r, now, deliver_by))
    }
}

/// How an email addresses the person: by display name, or by login when they have none.
pub(super) fn person_name(p: &Person) -> &str {
    if p.display_name.as_str().is_empty() {
        p.login.as_str()
    } else {
        p.display_name.as_str()
    }
}
