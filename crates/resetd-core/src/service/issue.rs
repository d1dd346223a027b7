//! Minting a reset token and the email that carries it. Both recovery paths, a queued "forgot
//! password" request and a trusted caller's "send the link now", go through [`Service::issue`],
//! so the token, its link, its email and its audit event are built one way only.

use serde_json::json;

use crate::error::CoreError;
use crate::model::{
    LinkTemplate, Lookup, MessageKind, Person, ResetPageUrl, ResetToken, Tenant, Timestamp,
    TokenPurpose,
};
use crate::render::MessageContext;
use crate::secret::ResetSecret;
use crate::store::IssueToken;
use crate::types::{ClientName, Locale};

use super::message::person_name;
use super::{Actor, Result, Service};

/// Where the emailed link leads.
pub(super) enum LinkTo<'a> {
    /// resetd's own hosted page.
    Hosted,
    /// A registered client's link template.
    Template(&'a LinkTemplate),
    /// A reset page the caller supplied (already allowed by a client), with the token in the
    /// query parameter `param`.
    Page {
        url: &'a ResetPageUrl,
        param: &'static str,
    },
}

/// A token to mint: for whom, through which link, and on whose behalf.
pub(super) struct Grant<'a> {
    pub tenant: &'a Tenant,
    pub person: &'a Person,
    /// The client the token and its email are recorded under.
    pub client: Option<&'a ClientName>,
    pub link: LinkTo<'a>,
    /// The locale the request asked for; the person's own wins.
    pub locale: Option<&'a Locale>,
    pub lookup: &'a Lookup,
    pub actor: &'a Actor,
    pub ip: Option<&'a str>,
    /// Name the client in the audit event (a trusted caller chose it by its page URL).
    pub audit_client: bool,
    /// When the person asked: a queued request's arrival, or now. The cool-down is measured back
    /// from here, so a request that waited in a backlog is coalesced with a token issued while it
    /// waited instead of sending a second email.
    pub asked_at: Option<Timestamp>,
}

impl Service {
    /// Secret, link, email and audit event for one new token, written nowhere yet: the store
    /// applies the cool-down when it stores the result. The only error is a template that fails to
    /// render (`Internal`).
    pub(super) fn issue(&self, g: Grant<'_>) -> Result<IssueToken> {
        let tenant = &g.tenant.id;
        let now = self.now();
        let secret = ResetSecret::generate();
        let link = match g.link {
            LinkTo::Hosted => format!(
                "{}/reset/{}?token={}",
                self.config.public_url,
                tenant,
                secret.expose()
            ),
            LinkTo::Template(t) => t.render(tenant, secret.expose()),
            LinkTo::Page { url, param } => url.link(param, secret.expose()),
        };
        let ttl = g.tenant.settings.token_ttl_secs;
        let locale = self.locale_for(g.person, g.locale, g.tenant);
        let ctx = MessageContext {
            tenant,
            kind: MessageKind::ResetLink,
            client: g.client,
            locale: &locale,
            name: person_name(g.person),
            login: g.person.login.as_str(),
            link: Some(&link),
            expires_in_minutes: (ttl + 59) / 60,
        };
        let rendered = self
            .renderer
            .render(&ctx)
            .map_err(|e| CoreError::Internal(format!("rendering the reset email failed: {e}")))?;
        let message = self.new_message(
            g.person,
            MessageKind::ResetLink,
            rendered,
            now,
            now.plus_secs(ttl),
        );
        let token = ResetToken {
            hash: secret.hash(),
            tenant: tenant.clone(),
            person: g.person.id.clone(),
            // Both paths through here mint "forgot password" links; another recovery method
            // gets a purpose of its own (and a field of `Grant` to choose it).
            purpose: TokenPurpose::Reset,
            client: g.client.cloned(),
            created_at: now,
            expires_at: now.plus_secs(ttl),
            used_at: None,
            revoked_at: None,
            ip: g.ip.map(str::to_owned),
            claimed: false,
        };
        let detail = match g.client.filter(|_| g.audit_client) {
            Some(c) => json!({"by": g.lookup.kind(), "outcome": "token_issued", "client": c}),
            None => json!({"by": g.lookup.kind(), "outcome": "token_issued"}),
        };
        let audit = self.audit(
            tenant,
            Some(&g.person.id),
            "reset_requested",
            g.actor,
            g.ip,
            detail,
        );
        Ok(IssueToken {
            token,
            cooldown_since: cooldown_since(
                g.asked_at.map_or(now, |at| at.min(now)),
                g.tenant.settings.cooldown_secs,
            ),
            message,
            audit,
        })
    }
}

/// The instant after which an earlier token means "cooling down": the cool-down before the person
/// asked. A cool-down of 0 means none: without this, a token issued to the same person by a
/// concurrent request a moment later than `asked` would still count.
fn cooldown_since(asked: Timestamp, cooldown_secs: i64) -> Timestamp {
    if cooldown_secs <= 0 {
        Timestamp(i64::MAX)
    } else {
        asked.plus_secs(-cooldown_secs)
    }
}
