//! The email-rendering port; `resetd-mail` implements it with templates.

use crate::model::MessageKind;
use crate::types::{ClientName, Locale, TenantId};

/// Everything a template may show. Holds the link (a secret) only for `ResetLink`.
#[derive(Debug, Clone)]
pub struct MessageContext<'a> {
    /// Tenant.
    pub tenant: &'a TenantId,
    /// Which message.
    pub kind: MessageKind,
    /// The client the link points to, for per-client templates.
    pub client: Option<&'a ClientName>,
    /// The locale to render in (person's, else request's, else tenant default).
    pub locale: &'a Locale,
    /// The person's display name, or login when empty.
    pub name: &'a str,
    /// The person's login.
    pub login: &'a str,
    /// The reset link.
    pub link: Option<&'a str>,
    /// Minutes until the link expires.
    pub expires_in_minutes: i64,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: Option<String>,
    /// The display name of the sender, when the message speaks for a product other than the one
    /// the configured sender names (a vendor dialect's emails); `None` keeps the configured one.
    pub sender_name: Option<String>,
}

/// Renders emails.
pub trait Renderer: Send + Sync {
    /// Renders one message; the error text is for logs.
    fn render(&self, ctx: &MessageContext<'_>) -> Result<Rendered, String>;
}
