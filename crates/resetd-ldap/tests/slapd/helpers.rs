//! Building a backend for a test directory, and a proxy that loses answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use resetd_core::ports::{AccountQuery, ExternalAccount, ExternalCredentials};
use resetd_core::types::Password;
use resetd_ldap::testing::Slapd;
use resetd_ldap::LdapBackend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A slapd, or `None` to skip (never on CI).
pub fn slapd() -> Option<Slapd> {
    Slapd::start()
}

/// The backend for `slapd`, with `extra` fields set in its table.
pub fn backend(slapd: &Slapd, extra: &[(&str, toml::Value)]) -> Arc<LdapBackend> {
    backend_at(slapd, &slapd.url(), extra)
}

/// The backend for `slapd`'s directory reached at `url` (a proxy in front of it).
pub fn backend_at(slapd: &Slapd, url: &str, extra: &[(&str, toml::Value)]) -> Arc<LdapBackend> {
    let mut table = slapd.credentials_table();
    table.insert("url".into(), url.into());
    for (k, v) in extra {
        table.insert((*k).into(), v.clone());
    }
    resetd_ldap::backend(&toml::Value::Table(table)).unwrap()
}

pub fn password(s: &str) -> Password {
    Password::parse(s).unwrap()
}

pub async fn by_login(b: &LdapBackend, login: &str) -> Option<ExternalAccount> {
    b.find_account(&AccountQuery::Login(login.into()))
        .await
        .unwrap()
}

pub async fn by_email(b: &LdapBackend, email: &str) -> Option<ExternalAccount> {
    b.find_account(&AccountQuery::Email(email.into()))
        .await
        .unwrap()
}

/// A TCP listener that accepts connections and never answers (a hung server).
pub async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    (url, task)
}

/// A proxy to `upstream` that passes every request on, but of the answers on each connection
/// passes only the first `answers` LDAP messages (say, the bind's) when `losing` is set: the
/// directory acts, the client never hears it.
pub struct LossyProxy {
    pub url: String,
    answers: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl LossyProxy {
    pub async fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ldap://{}", listener.local_addr().unwrap());
        let answers = Arc::new(AtomicUsize::new(usize::MAX));
        let shared = answers.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let limit = shared.load(Ordering::SeqCst);
                tokio::spawn(relay(client, upstream_port, limit));
            }
        });
        Self { url, answers, task }
    }

    /// From the next connection on, pass only `n` answers per connection.
    pub fn pass_answers(&self, n: usize) {
        self.answers.store(n, Ordering::SeqCst);
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream_port: u16, limit: usize) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
        return;
    };
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
    });
    // Answers, split into LDAP messages (BER: tag, length, content).
    let mut buf = Vec::new();
    let mut passed = 0usize;
    let mut chunk = [0u8; 4096];
    loop {
        match server_rx.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        while let Some(len) = message_len(&buf) {
            let message: Vec<u8> = buf.drain(..len).collect();
            if passed < limit {
                passed += 1;
                if client_tx.write_all(&message).await.is_err() {
                    return;
                }
            }
        }
    }
    up.abort();
}

/// The length of the first complete BER element in `buf`, if it is all there.
fn message_len(buf: &[u8]) -> Option<usize> {
    let first = *buf.get(1)?;
    let (header, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        let bytes = buf.get(2..2 + n)?;
        (
            2 + n,
            bytes.iter().fold(0usize, |a, b| a << 8 | usize::from(*b)),
        )
    };
    (buf.len() >= header + len).then_some(header + len)
}
