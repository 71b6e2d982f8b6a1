//! The hosting certificate: a self-signed certificate the app makes once and
//! keeps in its data directory, so that a hosted room is served over HTTPS
//! and `wss://`. Browsers give camera and microphone only to secure pages,
//! so a guest on `http://<LAN address>` could only watch; over HTTPS (after
//! the browser's one-time warning about a certificate no authority signed)
//! they take part. The fingerprint is shown beside the links, for guests
//! who compare, and desktop links carry it, so the app trusts exactly this
//! certificate.
//!
//! It names the LAN address, `localhost` and 127.0.0.1, and is made anew
//! (a new fingerprint) only when the LAN address is not among its names.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use huddle_engine::tls::Fingerprint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use thiserror::Error;

const CERT_FILE: &str = "hosting-cert.pem";
const KEY_FILE: &str = "hosting-key.pem";
/// The names the kept certificate was made for, one per line.
const NAMES_FILE: &str = "hosting-names.txt";

#[derive(Debug, Error)]
pub enum CertificateError {
    #[error("the hosting certificate could not be made: {0}")]
    Make(#[from] rcgen::Error),
    #[error("the hosting certificate could not be kept in {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the hosting certificate could not be used: {0}")]
    Unusable(#[from] huddle_server::config::ConfigError),
}

impl HostCertificate {
    /// The server's TLS configuration with this certificate.
    pub fn server_config(&self) -> Result<std::sync::Arc<rustls::ServerConfig>, CertificateError> {
        Ok(huddle_server::tls::server_config(&self.cert, &self.key)?)
    }
}

/// The certificate in use: its files and its fingerprint.
#[derive(Debug, Clone)]
pub struct HostCertificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub fingerprint: Fingerprint,
}

/// The names a certificate for `lan` must have.
fn names_for(lan: IpAddr) -> Vec<String> {
    let mut names = vec![
        lan.to_string(),
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
    ];
    names.dedup();
    names
}

/// The kept certificate when it names `lan`; else a new one, kept.
pub fn load_or_make(dir: &Path, lan: IpAddr) -> Result<HostCertificate, CertificateError> {
    let names = names_for(lan);
    let (cert, key, names_file) = (
        dir.join(CERT_FILE),
        dir.join(KEY_FILE),
        dir.join(NAMES_FILE),
    );
    let kept_names = std::fs::read_to_string(&names_file).unwrap_or_default();
    let covers = names.iter().all(|n| kept_names.lines().any(|k| k == n));
    if covers && key.is_file() {
        if let Some(fingerprint) = fingerprint_of(&cert) {
            return Ok(HostCertificate {
                cert,
                key,
                fingerprint,
            });
        }
    }
    let made = rcgen::generate_simple_self_signed(names.clone())?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CertificateError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes()).map_err(io(&key))?;
    std::fs::write(&cert, made.cert.pem()).map_err(io(&cert))?;
    std::fs::write(&names_file, names.join("\n")).map_err(io(&names_file))?;
    Ok(HostCertificate {
        fingerprint: Fingerprint::of(made.cert.der()),
        cert,
        key,
    })
}

fn fingerprint_of(cert: &Path) -> Option<Fingerprint> {
    let der = CertificateDer::from_pem_file(cert).ok()?;
    Some(Fingerprint::of(&der))
}

/// Writes a file only its owner may read (the private key).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn kept_while_the_address_is_named_and_made_anew_when_it_moves() {
        let dir = std::env::temp_dir().join(format!("huddle-cert-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));
        let first = load_or_make(&dir, home).unwrap();
        let again = load_or_make(&dir, home).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint, "kept, not made anew");
        let moved = load_or_make(&dir, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))).unwrap();
        assert_ne!(first.fingerprint, moved.fingerprint);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&moved.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is readable by others: {mode:o}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
