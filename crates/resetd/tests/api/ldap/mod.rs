//! A tenant whose people and passwords live in a real OpenLDAP directory (issue 17 item 1), seen
//! from outside: the real binary with `[credentials.default] kind = "ldap"` on a private slapd
//! (`resetd_ldap::testing::Slapd`: ppolicy with `pwdMinLength` 12). Every reset is checked where
//! a person would check it, with the real `ldapwhoami`: the new password binds, the old does not.
//! Without slapd the tests skip with a notice; with `CI=true` they fail.

mod native;
mod outage;
mod surfaces;

use resetd_ldap::testing::{person_by_uid, person_dn, Slapd};
use serde_json::Value;

use crate::helpers::config::TestConfig;
use crate::helpers::{cli, Server};

/// Passwords that pass resetd's own policy and the directory's (>= 12 characters); they are in
/// the harness's scanned secrets (`helpers::TEST_PASSWORDS`).
const NEW: &str = "violet tangerine orbit 7";
const NEW2: &str = "quiet harbour lantern 42";
/// Passes resetd's policy (length 8 and up, not common, not personal) but is shorter than the
/// directory's `pwdMinLength` 12.
const SHORT_FOR_LDAP: &str = "Qv7#kd2!Zr";

/// A server whose `default` tenant keeps its people in `slapd`.
struct Ldap {
    slapd: Slapd,
    s: Server,
}

/// `[credentials.default]` for `slapd` as TOML text.
fn credentials_section(slapd: &Slapd) -> String {
    let table = slapd.credentials_table();
    let body = toml::to_string(&table).expect("the credentials table as TOML");
    format!("[credentials.default]\n{body}")
}

impl Ldap {
    /// slapd and a server on it with `config` (plus the credentials section), or `None` when
    /// slapd is not installed (outside CI). `tenant_flags` go to `resetd tenant set default`
    /// before the LDAP server starts (e.g. `--lockout-threshold 3`).
    fn start(config: TestConfig, tenant_flags: &[&str]) -> Option<Self> {
        let slapd = Slapd::start()?;
        let with_ldap = config.section(&credentials_section(&slapd));
        let s = if tenant_flags.is_empty() {
            Server::spawn(&with_ldap)
        } else {
            // The admin key is printed at the first start only; the tenant is set while the
            // server is stopped so no cached settings linger.
            let first = Server::spawn(&TestConfig::fast());
            let admin = first.key.clone();
            let dir = first.stop();
            let mut args = vec!["tenant", "set", "default"];
            args.extend_from_slice(tenant_flags);
            cli(dir.path(), None, &args, None);
            let mut s = Server::spawn_in(dir, &with_ldap);
            s.key = admin;
            s
        };
        Some(Self { slapd, s })
    }

    /// Whether the real `ldapwhoami` binds as `uid` with `password`.
    fn binds(&self, uid: &str, password: &str) -> bool {
        self.slapd.ldapwhoami(&person_dn(uid), password)
    }

    /// The directory has `new` for `uid`, and no longer the fixture's old password.
    fn assert_password_is(&self, uid: &str, new: &str) {
        let old = person_by_uid(uid).password;
        assert!(
            self.binds(uid, new),
            "ldapwhoami does not bind {uid} with the new password; slapd log:\n{}",
            self.slapd.log()
        );
        assert!(
            !self.binds(uid, old),
            "ldapwhoami still binds {uid} with the old password"
        );
    }

    /// The shadow row resetd keeps for `login` (it exists once a request by login met it).
    async fn shadow(&self, login: &str) -> Value {
        let found = self.s.find_people(login).await;
        let items = found["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 1, "one shadow row for {login}: {found}");
        items[0].clone()
    }

    /// Requests a reset for `login` (native API) and returns the token of the `nth` mail to
    /// `email`.
    async fn token(&self, login: &str, email: &str, nth: usize) -> String {
        self.s.reset_token(login, email, nth).await
    }
}
