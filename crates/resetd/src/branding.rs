//! Which emails speak for which vendor product, from the dialects' configuration (the
//! composition of [`resetd_mail::Branding`]; the words themselves live in `resetd-mail`).

use resetd_core::types::{ClientName, TenantId};
use resetd_mail::{names_a_sender, Brand, Branding, Clients};
use resetd_server::dialects::{alfresco, payabli, unleash, DialectsConfig};

use crate::config::Mail;

/// The branding of every enabled dialect: the clients each registers (or, for the emails that
/// name no client, its tenants), with the operator's `mail.product_name` and a `mail.from` that
/// names its sender winning over every product's own.
pub fn branding(dialects: &DialectsConfig, mail: &Mail) -> Branding {
    let mut b = Branding::new();
    let tenant = |t: &str| TenantId::parse(t).ok();
    let client = |c: &str| ClientName::parse(c).ok();
    if let Some(c) = dialects.alfresco.as_ref().filter(|c| c.enabled) {
        for app in c.clients.keys() {
            let name = client(&format!("{}{app}", alfresco::CLIENT_PREFIX));
            if let (Some(t), Some(name)) = (tenant(&c.tenant), name) {
                b.claim(t, Clients::Named(name), Brand::Alfresco);
            }
        }
    }
    if let Some(c) = dialects.unleash.as_ref().filter(|c| c.enabled) {
        if let (Some(t), Some(name)) = (tenant(&c.tenant), client(unleash::CLIENT)) {
            b.claim(t, Clients::Named(name), Brand::Unleash);
        }
    }
    if let Some(c) = dialects.payabli.as_ref().filter(|c| c.enabled) {
        let tenants =
            std::iter::once(c.tenant.as_str()).chain(c.entries.iter().map(|e| e.tenant.as_str()));
        for t in tenants.filter_map(tenant) {
            // Without a link template its links go to the hosted page, with no client.
            match client(payabli::CLIENT).filter(|_| !c.link_template.is_empty()) {
                Some(name) => b.claim(t, Clients::Named(name), Brand::Payabli),
                None => b.claim(t, Clients::None, Brand::Payabli),
            }
        }
    }
    if let Some(c) = dialects.crafter.as_ref().filter(|c| c.enabled) {
        if let Some(t) = tenant(&c.tenant) {
            // The URL names the client: only the configured one, else any of the tenant's.
            match c.client.as_deref().and_then(client) {
                Some(name) => b.claim(t, Clients::Named(name), Brand::Crafter),
                None => b.claim(t, Clients::Any, Brand::Crafter),
            }
        }
    }
    if let Some(c) = dialects.empowerid.as_ref().filter(|c| c.enabled) {
        // An administrator's password set: its notice names no client.
        if let Some(t) = tenant(&c.tenant) {
            b.claim(t, Clients::None, Brand::EmpowerId);
        }
    }
    for brand in Brand::ALL {
        if let Some(name) = &mail.product_name {
            b.set_product_name(brand, name.clone());
        }
        if mail.from.as_deref().is_some_and(names_a_sender) {
            b.set_sender_name(brand, None);
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(toml: &str) -> Config {
        toml::from_str(toml).unwrap()
    }

    fn brand(b: &Branding, tenant: &str, client: Option<&str>) -> Option<Brand> {
        let client = client.map(|c| ClientName::parse(c).unwrap());
        b.brand_for(&TenantId::parse(tenant).unwrap(), client.as_ref())
    }

    #[test]
    fn each_enabled_dialect_claims_its_clients_or_its_tenant() {
        let c = config(
            "[dialects.alfresco]\nenabled = true\ntenant = \"docs\"\n\
             [dialects.alfresco.clients.share]\nreset_password_page_url = \"https://share.example.com/r\"\n\
             [dialects.unleash]\nenabled = true\ntenant = \"flags\"\n\
             [dialects.payabli]\nenabled = true\ntenant = \"pay\"\nrequest_tokens = [\"k\"]\n\
             [[dialects.payabli.entries]]\nentry = \"pp\"\nentry_type = 2\ntenant = \"pay2\"\n\
             [dialects.crafter]\nenabled = true\ntenant = \"site\"\n\
             [dialects.empowerid]\nenabled = true\ntenant = \"corp\"\n",
        );
        let b = branding(&c.dialects, &c.mail);
        assert_eq!(
            brand(&b, "docs", Some("alfresco.share")),
            Some(Brand::Alfresco)
        );
        assert_eq!(brand(&b, "docs", Some("alfresco.other")), None);
        assert_eq!(brand(&b, "flags", Some("unleash")), Some(Brand::Unleash));
        assert_eq!(brand(&b, "flags", None), None);
        assert_eq!(brand(&b, "pay", None), Some(Brand::Payabli));
        assert_eq!(brand(&b, "pay2", None), Some(Brand::Payabli));
        assert_eq!(brand(&b, "site", Some("portal")), Some(Brand::Crafter));
        assert_eq!(brand(&b, "site", None), None);
        assert_eq!(brand(&b, "corp", None), Some(Brand::EmpowerId));
        assert_eq!(brand(&b, "default", None), None);
        // Unset names: the products' own.
        assert_eq!(b.product_name(Brand::Unleash), "Unleash");
        assert_eq!(b.sender_name(Brand::Unleash), Some("Unleash"));
    }

    #[test]
    fn disabled_dialects_claim_nothing_and_the_operators_names_win() {
        let c = config(
            "[mail]\nfrom = \"Acme Accounts <accounts@acme.example>\"\nproduct_name = \"Acme\"\n\
             [dialects.unleash]\nenabled = true\ntenant = \"default\"\n\
             [dialects.payabli]\nenabled = true\ntenant = \"default\"\nrequest_tokens = [\"k\"]\n\
             link_template = \"https://pay.example.com/r?t={token}\"\n\
             [dialects.crafter]\nenabled = false\ntenant = \"default\"\n",
        );
        let b = branding(&c.dialects, &c.mail);
        assert_eq!(brand(&b, "default", Some("payabli")), Some(Brand::Payabli));
        assert_eq!(brand(&b, "default", None), None);
        assert_eq!(brand(&b, "default", Some("portal")), None);
        assert_eq!(b.product_name(Brand::Unleash), "Acme");
        assert_eq!(b.sender_name(Brand::Unleash), None);
        // A sender without a display name leaves the products' names.
        let c = config("[mail]\nfrom = \"accounts@acme.example\"\n");
        let b = branding(&c.dialects, &c.mail);
        assert_eq!(b.sender_name(Brand::Payabli), Some("Payabli"));
        assert_eq!(b.product_name(Brand::Payabli), "Payabli");
    }
}
