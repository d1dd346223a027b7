//! Email rendering with attacker-influenced values (display names, logins, locales): no panic,
//! a one-line subject, and HTML that never carries a raw tag from a value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resetd_core::model::MessageKind;
use resetd_core::render::{MessageContext, Renderer};
use resetd_core::types::{Locale, TenantId};
use std::sync::OnceLock;

static RENDERER: OnceLock<resetd_mail::TemplateRenderer> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let r = RENDERER.get_or_init(|| resetd_mail::TemplateRenderer::new(None, Some("help@example.com".into()), "resetd".into()).unwrap());
    let mut parts = s.splitn(3, '\u{1}');
    let name = parts.next().unwrap_or("");
    let login = parts.next().unwrap_or("");
    let locale = Locale::parse(parts.next().unwrap_or("en")).unwrap_or_else(|_| Locale::parse("en").unwrap());
    let tenant = TenantId::parse("acme").unwrap();
    for kind in [MessageKind::ResetLink, MessageKind::PasswordChanged] {
        let ctx = MessageContext {
            tenant: &tenant,
            kind,
            client: None,
            locale: &locale,
            name,
            login,
            link: Some("https://example.com/reset?token=abc"),
            expires_in_minutes: 30,
        };
        if let Ok(m) = r.render(&ctx) {
            assert!(!m.subject.contains(['\r', '\n']));
            if let Some(html) = m.html {
                if name.contains("<script") || login.contains("<script") {
                    assert!(!html.contains("<script"));
                }
            }
        }
    }
});
