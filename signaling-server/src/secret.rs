//! Secrets the server compares or keeps.
//!
//! Access tokens are compared in constant time. Resume tokens are indexed
//! and stored by their SHA-256 digest ([`token_digest`]), so a room's
//! snapshot in Redis holds nothing that resumes a member. Room passwords are
//! never kept: a room holds a salted Argon2id hash of its password (in memory and
//! in the snapshots a backplane writes to Redis), and a joiner's password is
//! checked against it. Hashing is deliberately slow and memory-hungry, so it
//! runs on the blocking pool, at most [`HASHING_AT_ONCE`] at a time — a burst
//! of locked joins queues instead of taking every core and gigabytes.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use thiserror::Error;
use tokio::sync::Semaphore;

/// Password hashes computed at once, server-wide.
pub const HASHING_AT_ONCE: usize = 2;
/// Argon2id cost: 8 MiB, 2 passes (~10 ms on one core of the development
/// machine, release build). Room passwords guard rooms that live minutes to
/// hours; the online guessing limit (`guesses.rs`) is the main defence, the
/// hash keeps a leaked snapshot from giving the password away.
const MEMORY_KIB: u32 = 8 * 1024;
const PASSES: u32 = 2;

static HASHING: Semaphore = Semaphore::const_new(HASHING_AT_ONCE);

/// Compares without an early exit, so the time taken does not tell how much
/// of a guessed secret was right.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The digest a secret random token (a resume token) is known by: hex
/// SHA-256. The tokens carry ~190 random bits, so a fast hash suffices.
pub fn token_digest(token: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashing failed (a bug: the parameters are fixed).
#[derive(Debug, Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// A room password's salted Argon2id hash, in PHC string form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHash(Arc<str>);

impl PasswordHash {
    /// A hash read back from storage, if it is one.
    pub fn from_stored(stored: &str) -> Option<PasswordHash> {
        argon2::password_hash::PasswordHash::new(stored)
            .ok()
            .map(|_| PasswordHash(stored.into()))
    }

    /// The PHC string, for storage.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Hashes `password` with a fresh salt.
    pub async fn new(password: &str) -> Result<PasswordHash, HashError> {
        let password = password.to_owned();
        blocking(move || {
            let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
                .map_err(|e| HashError(e.to_string()))?;
            hasher()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| PasswordHash(h.to_string().into()))
                .map_err(|e| HashError(e.to_string()))
        })
        .await
        .unwrap_or_else(|| Err(HashError("the hashing task ended".into())))
    }

    /// Whether `password` is the one hashed.
    pub async fn matches(&self, password: &str) -> bool {
        let stored = self.0.clone();
        let password = password.to_owned();
        blocking(move || {
            argon2::password_hash::PasswordHash::new(&stored)
                .is_ok_and(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
        })
        .await
        .unwrap_or(false)
    }
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Runs `f` on the blocking pool, within the server-wide hashing limit.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let _permit = HASHING.acquire().await.ok()?;
    tokio::task::spawn_blocking(f).await.ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_matches_its_password_only_and_is_salted() {
        let a = PasswordHash::new("correct horse").await.unwrap();
        let b = PasswordHash::new("correct horse").await.unwrap();
        assert_ne!(a, b, "salted");
        assert!(!a.as_str().contains("correct horse"));
        assert!(a.as_str().starts_with("$argon2id$"));
        assert!(a.matches("correct horse").await);
        assert!(!a.matches("correct horsf").await);
        let back = PasswordHash::from_stored(a.as_str()).unwrap();
        assert!(back.matches("correct horse").await);
        assert!(PasswordHash::from_stored("hunter2").is_none());
    }

    #[test]
    fn token_digests_are_sha256_hex() {
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
