//! A real OpenLDAP `slapd` for tests (this crate's and the binary's black-box tests), as the
//! PostgreSQL tests have their server: Debian's `slapd` started as an ordinary process on a free
//! loopback port, with a generated `slapd.conf` (back_mdb; core, cosine, inetorgperson and nis
//! schemas; the ppolicy overlay with a default policy of `pwdMinLength` 12 and `pwdCheckQuality`
//! 2, hashing cleartext passwords) and a small directory ([`PEOPLE`], a service account that may
//! write passwords). It is killed by its PID when the guard is dropped.
//!
//! When `slapd` is not installed, [`Slapd::start`] prints a visible notice and returns `None`
//! so the test can skip, unless `CI=true`, where a missing server fails the run (it panics).
//! `scripts/test.sh` installs `slapd` and `ldap-utils`.

#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test support: a missing or broken slapd fails the test that needs it"
)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The directory's suffix.
pub const SUFFIX: &str = "dc=example,dc=org";
/// Where people are (the tenant's `base_dn`).
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=org";
/// The service account resetd binds as; the ACL lets it read people and write `userPassword`.
pub const SERVICE_DN: &str = "cn=resetd,ou=services,dc=example,dc=org";
pub const SERVICE_PASSWORD: &str = "service-bind-Secret-77";
/// The directory's root, for a test's own changes (deleting an entry, say).
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
pub const ROOT_PASSWORD: &str = "root-Secret-for-tests-91";
/// The default policy's minimum length.
pub const MIN_LENGTH: usize = 12;

/// A person in the generated directory.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    pub uid: &'static str,
    pub cn: &'static str,
    pub mail: Option<&'static str>,
    pub password: &'static str,
    /// Locked for good by an administrator (`pwdAccountLockedTime: 000001010000Z`).
    pub locked: bool,
}

/// The people: alice and bob are ordinary; carol has no mail; dave is locked by an
/// administrator; erin and frank share one mail address (so an email lookup is ambiguous).
pub const PEOPLE: &[Person] = &[
    person(
        "alice",
        "Alice Liddell",
        Some("alice@example.org"),
        "alice-Old-password-1",
    ),
    person(
        "bob",
        "Bob Builder",
        Some("bob@example.org"),
        "bob-Old-password-22",
    ),
    person("carol", "Carol Noaddress", None, "carol-Old-password-3"),
    Person {
        locked: true,
        ..person(
            "dave",
            "Dave Locked",
            Some("dave@example.org"),
            "dave-Old-password-4",
        )
    },
    person(
        "erin",
        "Erin Shared",
        Some("shared@example.org"),
        "erin-Old-password-5",
    ),
    person(
        "frank",
        "Frank Shared",
        Some("shared@example.org"),
        "frank-Old-password-6",
    ),
];

const fn person(
    uid: &'static str,
    cn: &'static str,
    mail: Option<&'static str>,
    password: &'static str,
) -> Person {
    Person {
        uid,
        cn,
        mail,
        password,
        locked: false,
    }
}

/// A person of [`PEOPLE`] by uid.
pub fn person_by_uid(uid: &str) -> &'static Person {
    PEOPLE
        .iter()
        .find(|p| p.uid == uid)
        .unwrap_or_else(|| panic!("no person {uid} in the test directory"))
}

/// A person's DN.
pub fn person_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE_DN}")
}

/// A running private slapd; killed (by PID) and its files removed when dropped.
pub struct Slapd {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    binaries: Binaries,
}

#[derive(Debug, Clone)]
struct Binaries {
    slapd: PathBuf,
    slapadd: PathBuf,
    ldapwhoami: Option<PathBuf>,
    ldapmodify: Option<PathBuf>,
    schema_dir: PathBuf,
    module_dir: PathBuf,
}

impl Slapd {
    /// Starts a slapd with the generated directory, or `None` (after a notice on stderr) when
    /// slapd is not installed. Panics when it is missing with `CI=true`, or does not start.
    pub fn start() -> Option<Self> {
        let binaries = match Binaries::find() {
            Ok(b) => b,
            Err(why) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!(
                        "slapd is required on CI (CI=true) but {why}; scripts/test.sh installs \
                         the Debian packages slapd and ldap-utils"
                    );
                }
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED (slapd test): {why}; install slapd and ldap-utils (scripts/test.sh \
                     does). With CI=true this is a failure."
                );
                return None;
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("resetd-slapd-")
            .tempdir()
            .expect("a temporary directory for slapd");
        write_files(dir.path(), &binaries);
        load(dir.path(), &binaries);
        let mut last_error = String::new();
        // A free port can be taken between our probe and slapd's bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            match spawn(dir.path(), &binaries, port) {
                Ok(child) => {
                    return Some(Self {
                        child: Some(child),
                        port,
                        dir,
                        binaries,
                    })
                }
                Err(e) => last_error = e,
            }
        }
        panic!("slapd did not start: {last_error}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The slapd process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (a directory that is down) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        let child = spawn(self.dir.path(), &self.binaries, self.port)
            .unwrap_or_else(|e| panic!("slapd did not restart: {e}"));
        self.child = Some(child);
    }

    /// The `[credentials.<tenant>]` table for this directory, `kind` included; a test adds or
    /// overrides fields (`password_write`, `timeout_secs`, ...).
    pub fn credentials_table(&self) -> toml::Table {
        let mut t = toml::Table::new();
        t.insert("kind".into(), "ldap".into());
        t.insert("url".into(), self.url().into());
        t.insert("bind_dn".into(), SERVICE_DN.into());
        t.insert("bind_password".into(), SERVICE_PASSWORD.into());
        t.insert("base_dn".into(), PEOPLE_DN.into());
        t.insert("timeout_secs".into(), 3.into());
        t
    }

    /// Whether the real `ldapwhoami` binds as `dn` with `password` (the check a person's own
    /// LDAP client would make). Panics when ldap-utils is missing.
    pub fn ldapwhoami(&self, dn: &str, password: &str) -> bool {
        let bin = self
            .binaries
            .ldapwhoami
            .as_ref()
            .expect("ldapwhoami (Debian package ldap-utils)");
        let status = Command::new(bin)
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                dn,
                "-w",
                password,
                "-o",
                "nettimeout=5",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ldapwhoami runs");
        status.success()
    }

    /// Applies an LDIF change (`ldapmodify` as the root DN); panics when it fails.
    pub fn ldapmodify(&self, ldif: &str) {
        let bin = self
            .binaries
            .ldapmodify
            .as_ref()
            .expect("ldapmodify (Debian package ldap-utils)");
        let mut child = Command::new(bin)
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("ldif written");
        let out = child.wait_with_output().expect("ldapmodify ends");
        assert!(
            out.status.success(),
            "ldapmodify failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The server's log (its stderr), for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Binaries {
    fn find() -> Result<Self, String> {
        let slapd = std::env::var_os("RESETD_TEST_SLAPD")
            .map(PathBuf::from)
            .or_else(|| which("slapd", &["/usr/sbin", "/usr/local/sbin", "/usr/libexec"]))
            .ok_or("no slapd binary was found")?;
        let slapadd = slapd.with_file_name("slapadd");
        if !slapadd.exists() {
            return Err(format!("no slapadd beside {}", slapd.display()));
        }
        let schema_dir = ["/etc/ldap/schema", "/etc/openldap/schema"]
            .iter()
            .map(PathBuf::from)
            .find(|d| d.join("inetorgperson.schema").exists())
            .ok_or("no OpenLDAP schema directory (inetorgperson.schema) was found")?;
        let module_dir = ["/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap"]
            .iter()
            .map(PathBuf::from)
            .find(|d| d.join("ppolicy.so").exists() || d.join("ppolicy.la").exists())
            .ok_or("no OpenLDAP module directory with ppolicy was found")?;
        Ok(Self {
            slapd,
            slapadd,
            ldapwhoami: which("ldapwhoami", &["/usr/bin"]),
            ldapmodify: which("ldapmodify", &["/usr/bin"]),
            schema_dir,
            module_dir,
        })
    }
}

fn which(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn write_files(dir: &Path, bin: &Binaries) {
    std::fs::create_dir_all(dir.join("db")).expect("slapd's database directory");
    std::fs::write(dir.join("slapd.conf"), slapd_conf(dir, bin)).expect("slapd.conf written");
    std::fs::write(dir.join("data.ldif"), data_ldif()).expect("data.ldif written");
}

fn slapd_conf(dir: &Path, bin: &Binaries) -> String {
    let d = dir.display();
    let schema = bin.schema_dir.display();
    let modules = bin.module_dir.display();
    format!(
        "include {schema}/core.schema\n\
         include {schema}/cosine.schema\n\
         include {schema}/inetorgperson.schema\n\
         include {schema}/nis.schema\n\
         pidfile {d}/slapd.pid\n\
         argsfile {d}/slapd.args\n\
         modulepath {modules}\n\
         moduleload back_mdb\n\
         moduleload ppolicy\n\
         database mdb\n\
         maxsize 33554432\n\
         suffix \"{SUFFIX}\"\n\
         rootdn \"{ROOT_DN}\"\n\
         rootpw \"{ROOT_PASSWORD}\"\n\
         directory {d}/db\n\
         # The service account: read people, write their passwords. People: bind, and change\n\
         # their own password. Nobody else reads anything.\n\
         access to attrs=userPassword\n  by dn.exact=\"{SERVICE_DN}\" write\n  by self write\n  \
         by anonymous auth\n  by * none\n\
         access to *\n  by dn.exact=\"{SERVICE_DN}\" read\n  by self read\n  by * none\n\
         overlay ppolicy\n\
         ppolicy_default \"cn=default,ou=policies,{SUFFIX}\"\n\
         ppolicy_hash_cleartext\n"
    )
}

fn data_ldif() -> String {
    let mut ldif = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: ou=policies,{SUFFIX}\nobjectClass: organizationalUnit\nou: policies\n\n\
         dn: cn=default,ou=policies,{SUFFIX}\nobjectClass: applicationProcess\n\
         objectClass: pwdPolicy\ncn: default\npwdAttribute: userPassword\n\
         pwdMinLength: {MIN_LENGTH}\npwdCheckQuality: 2\n\n\
         dn: {SERVICE_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n\
         cn: resetd\nuserPassword: {SERVICE_PASSWORD}\n\n"
    );
    for p in PEOPLE {
        let surname = p.cn.rsplit(' ').next().unwrap_or(p.cn);
        ldif.push_str(&format!(
            "dn: {}\nobjectClass: inetOrgPerson\nuid: {}\ncn: {}\nsn: {surname}\nuserPassword: {}\n",
            person_dn(p.uid),
            p.uid,
            p.cn,
            p.password
        ));
        if let Some(mail) = p.mail {
            ldif.push_str(&format!("mail: {mail}\n"));
        }
        if p.locked {
            ldif.push_str("pwdAccountLockedTime: 000001010000Z\n");
        }
        ldif.push('\n');
    }
    ldif
}

/// Loads the directory offline (slapadd) before the server runs.
fn load(dir: &Path, bin: &Binaries) {
    let out = Command::new(&bin.slapadd)
        .arg("-f")
        .arg(dir.join("slapd.conf"))
        .arg("-l")
        .arg(dir.join("data.ldif"))
        .output()
        .expect("slapadd runs");
    assert!(
        out.status.success(),
        "slapadd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts slapd in the foreground (`-d 0` keeps it from forking, so the PID is slapd's) and
/// waits until it accepts connections.
fn spawn(dir: &Path, bin: &Binaries, port: u16) -> Result<Child, String> {
    let log = std::fs::File::create(dir.join("slapd.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(&bin.slapd)
        .arg("-f")
        .arg(dir.join("slapd.conf"))
        .arg("-h")
        .arg(format!("ldap://127.0.0.1:{port}/"))
        .args(["-d", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.slapd.display()))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("slapd.log")).unwrap_or_default();
            return Err(format!("slapd exited ({status}): {log}"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "slapd did not accept connections on port {port} within 15 s"
    ))
}
