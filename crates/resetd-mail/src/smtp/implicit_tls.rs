//! Implicit TLS (SMTPS) over resetd's own TCP connection, so that the connection can have
//! Nagle's algorithm turned off like the others (lettre's own implicit-TLS connect offers no way
//! to do that). Trusts the same certificates as the STARTTLS path: the Mozilla roots and the
//! configured `ca_file`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Starts TLS sessions with one server.
pub(super) struct Connector {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl Connector {
    /// TLS with `host` (the name its certificate must carry), trusting the Mozilla roots and the
    /// PEM certificates in `extra_roots`.
    pub(super) fn new(host: &str, extra_roots: Option<&[u8]>) -> Result<Self, String> {
        let mut roots: RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
        for cert in extra_roots
            .map(CertificateDer::pem_slice_iter)
            .into_iter()
            .flatten()
        {
            let cert = cert.map_err(|e| format!("mail.smtp.ca_file: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("mail.smtp.ca_file: {e}"))?;
        }
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("mail.smtp TLS settings: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            format!("mail.smtp.host {host:?} cannot be checked against a certificate: {e}")
        })?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// The TLS handshake over `tcp`, certificate checked.
    pub(super) async fn connect(&self, tcp: TcpStream) -> io::Result<TlsTcp> {
        Ok(TlsTcp(
            self.connector.connect(self.name.clone(), tcp).await?,
        ))
    }
}

/// A TLS session over TCP, as lettre's SMTP client takes it.
pub(super) struct TlsTcp(TlsStream<TcpStream>);

impl fmt::Debug for TlsTcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TlsTcp").field(&self.0.get_ref().0).finish()
    }
}

impl AsyncRead for TlsTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}
