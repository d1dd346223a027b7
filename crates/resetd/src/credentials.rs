//! `[credentials.<tenant>]`: the tenants whose passwords (and maybe people) live in an external
//! system (issue 17, `docs/credentials.md`). Each section names its adapter with `kind`; the rest
//! of the table is the adapter's own configuration, checked by the adapter when it connects.
//!
//! An adapter plugs in with one arm of [`connect`]:
//! `Kind::Ldap => resetd_ldap::connect(&section.table)`, returning
//! `Result<Arc<dyn ExternalCredentials>, String>` (the error names the key, never a secret).

use std::collections::BTreeMap;
use std::sync::Arc;

use resetd_core::ports::ExternalCredentials;
use resetd_core::store::Store;
use resetd_core::types::TenantId;

/// The sections as written: tenant name to table.
pub type Sections = BTreeMap<String, toml::Table>;

/// Each configured tenant with its connected adapter.
pub type Backends = Vec<(TenantId, Arc<dyn ExternalCredentials>)>;

/// The adapters this frame knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An LDAP directory: OpenLDAP, or Active Directory (`crates/resetd-ldap`).
    Ldap,
    /// Unleash's own user store through its admin API (`crates/resetd-apps`).
    Unleash,
    /// Any application behind a signed HTTP credential sink (`crates/resetd-apps`).
    Webhook,
}

impl Kind {
    const NAMES: &'static str = "\"ldap\", \"unleash\" or \"webhook\"";

    fn parse(s: &str) -> Option<Self> {
        match s {
            "ldap" => Some(Self::Ldap),
            "unleash" => Some(Self::Unleash),
            "webhook" => Some(Self::Webhook),
            _ => None,
        }
    }
}

/// One checked section: its tenant, its adapter, and the adapter's table (without `kind`).
#[derive(Debug, Clone)]
pub struct Section {
    pub tenant: TenantId,
    pub kind: Kind,
    pub table: toml::Table,
}

/// Checks every section's tenant name and kind; the error names the section and the key.
pub fn check(sections: &Sections) -> Result<Vec<Section>, String> {
    sections
        .iter()
        .map(|(name, table)| {
            let tenant = TenantId::parse(name)
                .map_err(|e| format!("[credentials.{name}]: not a tenant name: {e}"))?;
            let kind = match table.get("kind") {
                Some(toml::Value::String(k)) => Kind::parse(k).ok_or_else(|| {
                    format!(
                        "[credentials.{name}] kind: unknown kind \"{}\"; expected {}",
                        k.escape_debug(),
                        Kind::NAMES
                    )
                })?,
                Some(_) => {
                    return Err(format!(
                        "[credentials.{name}] kind: must be a string, {}",
                        Kind::NAMES
                    ))
                }
                None => {
                    return Err(format!(
                        "[credentials.{name}]: kind is missing; expected {}",
                        Kind::NAMES
                    ))
                }
            };
            let mut table = table.clone();
            table.remove("kind");
            Ok(Section {
                tenant,
                kind,
                table,
            })
        })
        .collect()
}

/// Builds each section's adapter; a start error names the section.
pub fn connect(sections: &[Section]) -> Result<Backends, String> {
    sections
        .iter()
        .map(|s| {
            let backend = match s.kind {
                Kind::Ldap => resetd_ldap::connect(&toml::Value::Table(s.table.clone())),
                Kind::Unleash => resetd_apps::connect_unleash(&s.table),
                Kind::Webhook => resetd_apps::connect_webhook(&s.table),
            }
            .map_err(|e| format!("[credentials.{}]: {e}", s.tenant))?;
            Ok((s.tenant.clone(), backend))
        })
        .collect()
}

/// Every section's tenant must exist (the bootstrap tenant counts: it is created at start).
pub async fn check_tenants(
    store: &dyn Store,
    sections: &[Section],
    bootstrap: &str,
) -> Result<(), String> {
    for s in sections {
        if s.tenant.as_str() == bootstrap {
            continue;
        }
        let found = store
            .get_tenant(&s.tenant)
            .await
            .map_err(|e| format!("[credentials.{}]: {e}", s.tenant))?;
        if found.is_none() {
            return Err(format!(
                "[credentials.{t}]: unknown tenant \"{t}\" (create it with `resetd tenant add {t}`)",
                t = s.tenant
            ));
        }
    }
    Ok(())
}

/// Whether a key of an adapter's table holds a secret (masked by `check-config`).
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "key"]
        .iter()
        .any(|w| k.contains(w))
}

/// The sections with every secret-looking value replaced by `<redacted>`, at any depth.
pub fn redacted(sections: &Sections) -> Sections {
    fn mask(table: &mut toml::Table) {
        for (k, v) in table.iter_mut() {
            match v {
                toml::Value::Table(t) => mask(t),
                _ if is_secret_key(k) => *v = toml::Value::String("<redacted>".into()),
                _ => {}
            }
        }
    }
    let mut out = sections.clone();
    for t in out.values_mut() {
        mask(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> Sections {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn each_kind_is_known_and_the_rest_goes_to_the_adapter() {
        let s = check(&sections(
            "[acme]\nkind = \"ldap\"\nurl = \"ldaps://dir.example\"\n[ops]\nkind = \"webhook\"\n",
        ))
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].tenant.as_str(), s[0].kind), ("acme", Kind::Ldap));
        assert!(s[0].table.get("kind").is_none());
        assert_eq!(s[0].table["url"].as_str(), Some("ldaps://dir.example"));
        assert_eq!(s[1].kind, Kind::Webhook);
    }

    #[test]
    fn a_bad_section_is_named_with_its_key() {
        let e = check(&sections("[acme]\nkind = \"memory\"\n")).unwrap_err();
        assert!(
            e.contains("[credentials.acme] kind") && e.contains("memory"),
            "{e}"
        );
        let e = check(&sections("[acme]\nurl = \"x\"\n")).unwrap_err();
        assert!(e.contains("kind is missing"), "{e}");
        let e = check(&sections("[\"Not A Tenant\"]\nkind = \"ldap\"\n")).unwrap_err();
        assert!(e.contains("not a tenant name"), "{e}");
    }

    #[test]
    fn an_adapter_refuses_a_bad_section_naming_it() {
        for kind in ["ldap", "unleash", "webhook"] {
            let s = check(&sections(&format!("[acme]\nkind = \"{kind}\"\n"))).unwrap();
            let e = connect(&s).err().unwrap();
            assert!(e.starts_with("[credentials.acme]: "), "{kind}: {e}");
            assert!(!e.contains("not built in"), "{kind}: {e}");
        }
    }

    #[test]
    fn secrets_are_masked_when_printed() {
        let s = sections(
            "[acme]\nkind = \"ldap\"\nbind_password = \"hunter2\"\n[acme.tls]\nclient_key = \"k\"\n",
        );
        let printed = toml::to_string(&redacted(&s)).unwrap();
        assert!(
            !printed.contains("hunter2") && !printed.contains("\"k\""),
            "{printed}"
        );
        assert!(printed.contains("kind = \"ldap\""));
    }
}
