//! The products whose password-reset APIs resetd speaks (its vendor dialects), and which emails
//! speak for which of them: [`Branding`].
//!
//! A person who asked Unleash for a new password expects an email from Unleash, in Unleash's
//! words, not one from "resetd". So each product has built-in templates in English and German
//! (`templates/brands/{brand}/{lang}/`, after the vendor's own emails where they are public:
//! docs/email.md, "Emails in a product's words"), a product name and a sender display name.
//! [`Branding`] says which messages they apply to: a message belongs to a product by its tenant
//! and the client its link points to (the clients a dialect registers, `unleash`,
//! `alfresco.<app>`, `payabli`), or by its tenant alone for a dialect whose emails name no client
//! (EmpowerID's notices, Payabli's links to the hosted page). The binary builds it from the
//! dialects' configuration; the operator's own templates and settings still win (see
//! [`crate::TemplateRenderer`]).

use std::collections::{BTreeMap, BTreeSet};

use resetd_core::types::{ClientName, TenantId};

/// A product resetd can write emails for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Brand {
    /// Alfresco Content Services (its Share and other client apps).
    Alfresco,
    /// Crafter Profile (the sites built on Crafter CMS).
    Crafter,
    /// EmpowerID.
    EmpowerId,
    /// Payabli (its PartnerHub and PayHub portals).
    Payabli,
    /// Unleash.
    Unleash,
}

impl Brand {
    /// Every product, in the order of their keys.
    pub const ALL: [Brand; 5] = [
        Brand::Alfresco,
        Brand::Crafter,
        Brand::EmpowerId,
        Brand::Payabli,
        Brand::Unleash,
    ];

    /// Its key: the dialect's name (`[dialects.<key>]`) and the directory of its templates.
    pub fn key(self) -> &'static str {
        match self {
            Brand::Alfresco => "alfresco",
            Brand::Crafter => "crafter",
            Brand::EmpowerId => "empowerid",
            Brand::Payabli => "payabli",
            Brand::Unleash => "unleash",
        }
    }

    /// The product's name as its own emails write it (`product_name` in its templates).
    pub fn product_name(self) -> &'static str {
        match self {
            Brand::Alfresco => "Alfresco",
            Brand::Crafter => "Crafter",
            Brand::EmpowerId => "EmpowerID",
            Brand::Payabli => "Payabli",
            Brand::Unleash => "Unleash",
        }
    }

    /// The sender's display name (Unleash sends as `Unleash <noreply@getunleash.io>` by default;
    /// the others name no sender of their own, so their product name is used). The address
    /// stays the configured one: resetd never sends as a vendor's domain.
    pub fn sender_name(self) -> &'static str {
        self.product_name()
    }
}

/// Which of a tenant's messages a product claims.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Clients {
    /// Messages for this client (one the dialect registers, or the one it is limited to).
    Named(ClientName),
    /// Messages for any client no product names (Crafter without a configured client).
    Any,
    /// Messages without a client (EmpowerID's notices, Payabli's links to the hosted page).
    None,
}

/// Which messages speak for which product, with the product names and sender names to use.
#[derive(Debug, Clone, Default)]
pub struct Branding {
    claims: BTreeMap<(TenantId, Clients), BTreeSet<Brand>>,
    product_names: BTreeMap<Brand, String>,
    sender_names: BTreeMap<Brand, Option<String>>,
}

impl Branding {
    /// No message speaks for a product.
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages of `tenant` for `clients` speak for `brand`. A slot claimed by two products
    /// speaks for neither (see [`Branding::conflicts`]).
    pub fn claim(&mut self, tenant: TenantId, clients: Clients, brand: Brand) {
        self.claims
            .entry((tenant, clients))
            .or_default()
            .insert(brand);
    }

    /// Names the product `name` in `brand`'s emails instead of its own name.
    pub fn set_product_name(&mut self, brand: Brand, name: String) {
        self.product_names.insert(brand, name);
    }

    /// Sends `brand`'s emails with the display name `name`, or with the configured sender's own
    /// (`None`: the operator named the sender).
    pub fn set_sender_name(&mut self, brand: Brand, name: Option<String>) {
        self.sender_names.insert(brand, name);
    }

    /// The product a message of `tenant` for `client` speaks for: the product claiming that
    /// client, else (for a client) one claiming any client of the tenant, else none.
    pub fn brand_for(&self, tenant: &TenantId, client: Option<&ClientName>) -> Option<Brand> {
        let only = |clients: Clients| {
            let brands = self.claims.get(&(tenant.clone(), clients))?;
            match brands.iter().collect::<Vec<_>>().as_slice() {
                [one] => Some(**one),
                _ => None,
            }
        };
        match client {
            Some(c) => {
                let named = self
                    .claims
                    .get(&(tenant.clone(), Clients::Named(c.clone())));
                match named {
                    Some(_) => only(Clients::Named(c.clone())),
                    None => only(Clients::Any),
                }
            }
            None => only(Clients::None),
        }
    }

    /// The product name `brand`'s emails show.
    pub fn product_name(&self, brand: Brand) -> &str {
        self.product_names
            .get(&brand)
            .map_or(brand.product_name(), String::as_str)
    }

    /// The sender display name of `brand`'s emails; `None` keeps the configured sender's.
    pub fn sender_name(&self, brand: Brand) -> Option<&str> {
        match self.sender_names.get(&brand) {
            Some(name) => name.as_deref(),
            None => Some(brand.sender_name()),
        }
    }

    /// The slots two or more products claim, in words for a warning at start-up: their messages
    /// keep resetd's own wording, as neither product is surely the one the person knows.
    pub fn conflicts(&self) -> Vec<String> {
        self.claims
            .iter()
            .filter(|(_, brands)| brands.len() > 1)
            .map(|((tenant, clients), brands)| {
                let names: Vec<&str> = brands.iter().map(|b| b.product_name()).collect();
                let which = match clients {
                    Clients::Named(c) => format!("for the client {c}"),
                    Clients::Any => "for its other clients".to_owned(),
                    Clients::None => "without a client".to_owned(),
                };
                format!(
                    "tenant {tenant}: the emails {which} could speak for {}; they keep resetd's \
                     own wording (override them in mail.templates_dir)",
                    names.join(" or ")
                )
            })
            .collect()
    }
}

/// Whether the sender `from` (`Name <address>` or an address) carries a display name of its own,
/// which then wins over every product's.
pub fn names_a_sender(from: &str) -> bool {
    from.parse::<lettre::message::Mailbox>()
        .is_ok_and(|m| m.name.is_some_and(|n| !n.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    fn c(s: &str) -> ClientName {
        ClientName::parse(s).unwrap()
    }

    #[test]
    fn messages_speak_for_the_product_claiming_their_client_or_tenant() {
        let mut b = Branding::new();
        b.claim(t("acme"), Clients::Named(c("unleash")), Brand::Unleash);
        b.claim(
            t("acme"),
            Clients::Named(c("alfresco.share")),
            Brand::Alfresco,
        );
        b.claim(t("acme"), Clients::Any, Brand::Crafter);
        b.claim(t("acme"), Clients::None, Brand::EmpowerId);
        let acme = t("acme");
        assert_eq!(
            b.brand_for(&acme, Some(&c("unleash"))),
            Some(Brand::Unleash)
        );
        assert_eq!(
            b.brand_for(&acme, Some(&c("alfresco.share"))),
            Some(Brand::Alfresco)
        );
        assert_eq!(b.brand_for(&acme, Some(&c("portal"))), Some(Brand::Crafter));
        assert_eq!(b.brand_for(&acme, None), Some(Brand::EmpowerId));
        // Another tenant's messages speak for nobody.
        assert_eq!(b.brand_for(&t("other"), Some(&c("unleash"))), None);
        assert_eq!(b.brand_for(&t("other"), None), None);
        assert!(b.conflicts().is_empty());
    }

    #[test]
    fn a_slot_two_products_claim_speaks_for_neither() {
        let mut b = Branding::new();
        b.claim(t("default"), Clients::None, Brand::EmpowerId);
        b.claim(t("default"), Clients::None, Brand::Payabli);
        b.claim(t("default"), Clients::Named(c("portal")), Brand::Crafter);
        b.claim(t("default"), Clients::Named(c("portal")), Brand::Unleash);
        b.claim(t("default"), Clients::Any, Brand::Crafter);
        let d = t("default");
        assert_eq!(b.brand_for(&d, None), None);
        // A named client two products claim does not fall back to the tenant's other clients.
        assert_eq!(b.brand_for(&d, Some(&c("portal"))), None);
        assert_eq!(b.brand_for(&d, Some(&c("shop"))), Some(Brand::Crafter));
        let conflicts = b.conflicts();
        assert_eq!(conflicts.len(), 2, "{conflicts:?}");
        assert!(conflicts
            .iter()
            .any(|w| w.contains("without a client") && w.contains("EmpowerID or Payabli")));
    }

    mod rendered {
        use std::path::Path;

        use resetd_core::model::MessageKind;
        use resetd_core::render::{MessageContext, Rendered, Renderer};
        use resetd_core::types::Locale;

        use super::*;
        use crate::TemplateRenderer;

        const LINK: &str = "https://app.example.com/reset?token=abc123";

        /// Every product claims the client named like its key in `acme`.
        fn branding() -> Branding {
            let mut b = Branding::new();
            for brand in Brand::ALL {
                b.claim(t("acme"), Clients::Named(c(brand.key())), brand);
            }
            b
        }

        fn renderer(dir: Option<&Path>, product_name: &str) -> TemplateRenderer {
            TemplateRenderer::new(
                dir.map(Path::to_owned),
                Some("help@acme.example".into()),
                product_name.into(),
            )
            .unwrap()
            .with_branding(branding())
        }

        fn render(
            r: &TemplateRenderer,
            kind: MessageKind,
            client: Option<&str>,
            locale: &str,
        ) -> Rendered {
            let (tenant, locale) = (t("acme"), Locale::parse(locale).unwrap());
            let client = client.map(c);
            r.render(&MessageContext {
                tenant: &tenant,
                kind,
                client: client.as_ref(),
                locale: &locale,
                name: "Jane <Doe>",
                login: "jdoe",
                link: (kind == MessageKind::ResetLink).then_some(LINK),
                expires_in_minutes: 30,
            })
            .unwrap()
        }

        /// Each product's subject in English and German, its wording, and its sender; the link
        /// stands on a line of its own in the text part (mail clients and tests find it there).
        #[test]
        fn each_product_speaks_its_own_words_in_english_and_german() {
            let r = renderer(None, "resetd");
            let cases = [
                (
                    Brand::Alfresco,
                    "en",
                    "Reset your password",
                    "Password reset successful",
                    "you recently requested to change the password for your Alfresco account",
                ),
                (
                    Brand::Alfresco,
                    "de",
                    "Passwort zurücksetzen",
                    "Passwort erfolgreich zurückgesetzt",
                    "Passwort Ihres Alfresco-Kontos „jdoe“ zu ändern",
                ),
                (
                    Brand::Crafter,
                    "en",
                    "Reset Password",
                    "Password Changed",
                    "Crafter Team",
                ),
                (
                    Brand::Crafter,
                    "de",
                    "Passwort zurücksetzen",
                    "Passwort geändert",
                    "Ihr Crafter-Team",
                ),
                (
                    Brand::EmpowerId,
                    "en",
                    "Reset your EmpowerID password",
                    "Your EmpowerID password has been reset",
                    "your EmpowerID account",
                ),
                (
                    Brand::EmpowerId,
                    "de",
                    "Ihr EmpowerID-Passwort zurücksetzen",
                    "Ihr EmpowerID-Passwort wurde zurückgesetzt",
                    "Ihr EmpowerID-Konto",
                ),
                (
                    Brand::Payabli,
                    "en",
                    "Reset your Payabli password",
                    "Your Payabli password was changed",
                    "your Payabli user",
                ),
                (
                    Brand::Payabli,
                    "de",
                    "Ihr Payabli-Passwort zurücksetzen",
                    "Ihr Payabli-Passwort wurde geändert",
                    "Ihres Payabli-Benutzers",
                ),
                (
                    Brand::Unleash,
                    "en",
                    "Unleash - Reset your password",
                    "Unleash - Your password was changed",
                    "someone has requested to reset the password on your Unleash account",
                ),
                (
                    Brand::Unleash,
                    "de",
                    "Unleash - Passwort zurücksetzen",
                    "Unleash - Ihr Passwort wurde geändert",
                    "Passwort Ihres Unleash-Kontos „jdoe“ zurückzusetzen",
                ),
            ];
            for (brand, lang, reset_subject, changed_subject, words) in cases {
                let client = Some(brand.key());
                let m = render(&r, MessageKind::ResetLink, client, lang);
                assert_eq!(m.subject, reset_subject, "{brand:?} {lang}");
                assert!(m.text.contains(words), "{brand:?} {lang}: {}", m.text);
                assert!(
                    m.text.lines().any(|l| l == LINK),
                    "{brand:?} {lang}: {}",
                    m.text
                );
                let minutes = if lang == "de" {
                    "30 Minuten"
                } else {
                    "30 minutes"
                };
                assert!(m.text.contains(minutes), "{brand:?} {lang}: {}", m.text);
                assert!(m.text.contains("help@acme.example"));
                let html = m.html.unwrap();
                assert!(html.contains(&format!("href=\"{LINK}\"")), "{html}");
                assert!(html.contains(&format!("lang=\"{lang}\"")));
                assert!(
                    html.contains("Jane &lt;Doe&gt;") && !html.contains("<Doe>"),
                    "{html}"
                );
                assert!(!html.contains("resetd") && !m.text.contains("resetd"));
                assert_eq!(m.sender_name.as_deref(), Some(brand.sender_name()));

                let n = render(&r, MessageKind::PasswordChanged, client, lang);
                assert_eq!(n.subject, changed_subject, "{brand:?} {lang}");
                assert!(n.text.contains("jdoe") && n.text.contains("help@acme.example"));
                assert!(n.html.unwrap().contains("jdoe"));
                assert_eq!(n.sender_name.as_deref(), Some(brand.sender_name()));
            }
            // Another language falls back to the product's English.
            let fr = render(&r, MessageKind::ResetLink, Some("unleash"), "fr-FR");
            assert_eq!(fr.subject, "Unleash - Reset your password");
            // A message for no product keeps resetd's own words and sender.
            let own = render(&r, MessageKind::ResetLink, Some("portal"), "en");
            assert_eq!(own.subject, "Reset your resetd password");
            assert_eq!(own.sender_name, None);
        }

        #[test]
        fn the_operators_templates_and_names_win() {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            std::fs::create_dir_all(d.join("acme/unleash/de")).unwrap();
            std::fs::write(
                d.join("acme/unleash/de/reset_link.subject.txt"),
                "Acme flags: {{ product_name }}",
            )
            .unwrap();
            std::fs::write(
                d.join("password_changed.subject.txt"),
                "Changed ({{ product_name }})",
            )
            .unwrap();
            let mut b = branding();
            b.set_product_name(Brand::Unleash, "Acme Flags".into());
            b.set_sender_name(Brand::Unleash, None);
            let r = TemplateRenderer::new(Some(d.to_owned()), None, "Acme".into())
                .unwrap()
                .with_branding(b);
            let m = render(&r, MessageKind::ResetLink, Some("unleash"), "de");
            assert_eq!(m.subject, "Acme flags: Acme Flags");
            // Parts the operator did not write stay the product's, with the operator's name.
            assert!(m.text.contains("Ihres Acme Flags-Kontos"), "{}", m.text);
            assert_eq!(m.sender_name, None);
            // A global file wins over every product's built-in too.
            let n = render(&r, MessageKind::PasswordChanged, Some("payabli"), "en");
            assert_eq!(n.subject, "Changed (Payabli)");
            assert_eq!(n.sender_name.as_deref(), Some("Payabli"));
        }
    }

    #[test]
    fn a_sender_names_itself_only_with_a_display_name() {
        assert!(names_a_sender("Acme Accounts <accounts@acme.example>"));
        assert!(names_a_sender("\"Acme, Inc.\" <accounts@acme.example>"));
        assert!(!names_a_sender("accounts@acme.example"));
        assert!(!names_a_sender("<accounts@acme.example>"));
        assert!(!names_a_sender("not an address"));
    }

    #[test]
    fn product_and_sender_names_default_to_the_products_own() {
        let mut b = Branding::new();
        assert_eq!(b.product_name(Brand::EmpowerId), "EmpowerID");
        assert_eq!(b.sender_name(Brand::Unleash), Some("Unleash"));
        b.set_product_name(Brand::Unleash, "Acme Flags".into());
        b.set_sender_name(Brand::Unleash, None);
        b.set_sender_name(Brand::Payabli, Some("Acme Payments".into()));
        assert_eq!(b.product_name(Brand::Unleash), "Acme Flags");
        assert_eq!(b.sender_name(Brand::Unleash), None);
        assert_eq!(b.sender_name(Brand::Payabli), Some("Acme Payments"));
        let keys: Vec<&str> = Brand::ALL.iter().map(|b| b.key()).collect();
        assert_eq!(
            keys,
            ["alfresco", "crafter", "empowerid", "payabli", "unleash"]
        );
    }
}
