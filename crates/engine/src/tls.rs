//! How the native client opens a server's WebSocket, and whom it trusts on
//! `wss://`: the system's certificate authorities (a public server), or
//! exactly one certificate named by its SHA-256 fingerprint (a room hosted
//! from a Huddle app, whose certificate the app made itself and whose links
//! carry the fingerprint).
//!
//! A pinned certificate is trusted for what it is, not for the name it was
//! issued to: the address of a hosted room is a LAN address that changes,
//! and the fingerprint came with the link the user opened.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// A server's WebSocket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Whom to trust on `wss://`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ServerTrust {
    /// The system's certificate authorities, for the server's name.
    #[default]
    System,
    /// Exactly the certificate with this fingerprint.
    Pinned(Fingerprint),
}

/// The SHA-256 of a certificate (its DER bytes), written as 32 hex pairs
/// joined by colons, as browsers show it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a certificate.
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A fingerprint that is not 32 hex pairs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a certificate fingerprint is 64 hex digits (colons allowed)")]
pub struct BadFingerprint;

impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    /// Hex digits, upper or lower case, with or without colons.
    fn from_str(s: &str) -> Result<Fingerprint, BadFingerprint> {
        let digits: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
        if digits.len() != 64 {
            return Err(BadFingerprint);
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).map_err(|_| BadFingerprint)?;
            *slot = u8::from_str_radix(text, 16).map_err(|_| BadFingerprint)?;
        }
        Ok(Fingerprint(out))
    }
}

/// Opens the WebSocket at `url` (`ws://` or `wss://`), trusting `trust`.
pub async fn connect(
    url: &str,
    trust: &ServerTrust,
) -> Result<(Socket, Response), tokio_tungstenite::tungstenite::Error> {
    let connector = url.starts_with("wss:").then(|| connector(trust));
    let (socket, response) =
        tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector).await?;
    steady_retransmissions(&socket);
    Ok((socket, response))
}

/// Lost segments of the socket go again at a steady pace, not a doubling
/// one (Linux's thin-stream linear timeouts, as the server's `tcp.rs` sets
/// them): after a network dropout, whatever the client wrote meanwhile
/// holds its next frame back until TCP's timer fires. Seen in the network
/// lab's `network-drop-3s`: the dropped member had an ICE restart's offer
/// 111 ms after its network was back and answered at once, and the other
/// side connected 1.03 s later.
fn steady_retransmissions(socket: &Socket) {
    #[cfg(target_os = "linux")]
    {
        let stream = match socket.get_ref() {
            MaybeTlsStream::Plain(stream) => stream,
            MaybeTlsStream::Rustls(tls) => tls.get_ref().0,
            _ => return,
        };
        let _ = socket2::SockRef::from(stream).set_tcp_thin_linear_timeouts(true);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

/// The TLS side of a `wss://` connection that trusts `trust` (for callers
/// that build their own request).
pub fn connector(trust: &ServerTrust) -> Connector {
    Connector::Rustls(client_config(trust))
}

/// The TLS failure inside an I/O error of the handshake, said for a person.
pub fn tls_failure(error: &std::io::Error) -> Option<String> {
    let tls = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    let what = match tls {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not from an authority this system trusts \
             (a room hosted from a Huddle app is trusted through its link)"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's certificate is for another name".to_owned(),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server's certificate has expired".to_owned(),
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => other.to_string(),
        other => other.to_string(),
    };
    Some(format!("the secure connection (TLS) failed: {what}"))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(trust: &ServerTrust) -> Arc<ClientConfig> {
    match trust {
        ServerTrust::System => system_config(),
        ServerTrust::Pinned(fingerprint) => {
            let verifier = Arc::new(Pinned {
                fingerprint: *fingerprint,
                provider: provider(),
            });
            let config = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.dangerous()
                        .with_custom_certificate_verifier(verifier)
                        .with_no_client_auth()
                });
            Arc::new(config.unwrap_or_else(|_| fallback_config()))
        }
    }
}

/// The system's roots, loaded once.
fn system_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "a system certificate store could not be read");
            }
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "system certificate authorities");
            let config = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth());
            Arc::new(config.unwrap_or_else(|_| fallback_config()))
        })
        .clone()
}

/// A configuration that trusts nothing (only if the provider were unusable,
/// which the ring provider never is): every handshake fails, with a reason.
fn fallback_config() -> ClientConfig {
    ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}

/// Trusts exactly one certificate.
#[derive(Debug)]
struct Pinned {
    fingerprint: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if Fingerprint::of(end_entity) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(NotThePinnedCertificate)),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The server showed another certificate than the link's.
#[derive(Debug, thiserror::Error)]
#[error("the server's certificate is not the one its link names (fingerprint differs)")]
struct NotThePinnedCertificate;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_signaling_socket_retransmits_at_a_steady_pace() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            tokio_tungstenite::accept_async(stream).await.unwrap()
        });
        let (socket, _) = connect(&url, &ServerTrust::default()).await.unwrap();
        let MaybeTlsStream::Plain(stream) = socket.get_ref() else {
            panic!("ws:// is plain TCP");
        };
        assert!(socket2::SockRef::from(stream)
            .tcp_thin_linear_timeouts()
            .unwrap());
        drop(server.await.unwrap());
    }

    #[test]
    fn fingerprints_read_as_browsers_write_them() {
        let f = Fingerprint::of(b"certificate");
        let written = f.to_string();
        assert_eq!(written.len(), 32 * 3 - 1);
        assert_eq!(written.parse::<Fingerprint>(), Ok(f));
        assert_eq!(
            written
                .replace(':', "")
                .to_lowercase()
                .parse::<Fingerprint>(),
            Ok(f)
        );
        assert_eq!("AB:CD".parse::<Fingerprint>(), Err(BadFingerprint));
        assert_eq!("zz".repeat(32).parse::<Fingerprint>(), Err(BadFingerprint));
    }
}
