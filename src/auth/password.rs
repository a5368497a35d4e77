//! Local users with argon2id password hashes, verified on the blocking pool.
//!
//! Argon2 is slow on purpose, and a docker push sends the password on every request, so
//! successful verifications are remembered for a short time in a [`SuccessCache`].
//!
//! # Security
//! An unknown user costs one argon2 verification against a throwaway hash, so unknown user
//! and wrong password take the same time and give the same answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

use super::cache::SuccessCache;
use super::{AuthError, Outcome};

/// How long a successful verification is remembered. Picked, not measured: short enough
/// that a removed user or changed password stops working within a minute.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Argon2 runs at once; each takes about 19 MiB, so this bounds memory under a login storm.
const CONCURRENT_VERIFICATIONS: usize = 4;

/// An argon2 PHC string, checked when the config is read.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct PasswordHash(String);

impl TryFrom<String> for PasswordHash {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let parsed = argon2::PasswordHash::new(&text).map_err(|_| {
            "not an argon2 PHC string; make one with `berth hash-password`".to_string()
        })?;
        if !parsed.algorithm.as_str().starts_with("argon2") {
            return Err(format!("hash algorithm {} is not argon2", parsed.algorithm));
        }
        Ok(PasswordHash(text))
    }
}

/// Hashes a password with argon2id and default parameters, as `berth hash-password` does.
///
/// # Errors
/// Only when argon2 itself fails (it does not for valid parameters).
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks user names and passwords against the configured hashes.
pub struct PasswordVerifier {
    users: Arc<BTreeMap<String, PasswordHash>>,
    /// Verified against when the user is unknown, so that case costs the same.
    decoy: Arc<String>,
    cache: SuccessCache<()>,
    permits: Arc<Semaphore>,
}

impl PasswordVerifier {
    pub fn new(users: BTreeMap<String, PasswordHash>) -> Self {
        let decoy = hash("decoy password that matches nothing").expect("argon2 defaults are valid");
        PasswordVerifier {
            users: Arc::new(users),
            decoy: Arc::new(decoy),
            cache: SuccessCache::new(CACHE_TTL),
            permits: Arc::new(Semaphore::new(CONCURRENT_VERIFICATIONS)),
        }
    }

    /// Verifies `password` for `user`.
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`] for an unknown user or a wrong password alike.
    pub async fn verify(&self, user: &str, password: &str) -> Result<Outcome, AuthError> {
        if self.cache.lookup(user, password).is_some() {
            return Ok(Outcome::Cached);
        }

        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AuthError::InvalidCredentials)?;
        let users = self.users.clone();
        let decoy = self.decoy.clone();
        let (owned_user, owned_password) = (user.to_string(), password.to_string());
        let verified = tokio::task::spawn_blocking(move || {
            let (user, password) = (owned_user, owned_password);
            let _permit = permit;
            let (hash, known) = match users.get(&user) {
                Some(hash) => (hash.0.as_str(), true),
                None => (decoy.as_str(), false),
            };
            let matches = argon2::PasswordHash::new(hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false);
            known && matches
        })
        .await
        .unwrap_or(false);

        if !verified {
            return Err(AuthError::InvalidCredentials);
        }
        self.cache.remember(user, password, ());
        Ok(Outcome::Verified)
    }

    /// Whether `user` is configured.
    pub fn knows(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// The SHA-256 of `user`'s PHC string, hex; `None` for unknown users.
    pub fn stamp(&self, user: &str) -> Option<String> {
        use sha2::Digest as _;
        let hash = self.users.get(user)?;
        Some(hex::encode(sha2::Sha256::digest(hash.0.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> PasswordVerifier {
        let hash = PasswordHash::try_from(hash("s3cret").unwrap()).unwrap();
        PasswordVerifier::new(BTreeMap::from([("alice".to_string(), hash)]))
    }

    #[tokio::test]
    async fn verifies_then_serves_from_cache() {
        let verifier = verifier();
        assert_eq!(
            verifier.verify("alice", "s3cret").await.unwrap(),
            Outcome::Verified
        );
        assert_eq!(
            verifier.verify("alice", "s3cret").await.unwrap(),
            Outcome::Cached
        );
    }

    #[tokio::test]
    async fn unknown_user_and_wrong_password_are_the_same_error() {
        let verifier = verifier();
        assert!(matches!(
            verifier.verify("alice", "wrong").await,
            Err(AuthError::InvalidCredentials)
        ));
        assert!(matches!(
            verifier.verify("mallory", "s3cret").await,
            Err(AuthError::InvalidCredentials)
        ));
        // A failure is never cached.
        assert!(matches!(
            verifier.verify("alice", "wrong").await,
            Err(AuthError::InvalidCredentials)
        ));
    }

    #[test]
    fn config_refuses_hashes_that_are_not_argon2() {
        assert!(PasswordHash::try_from("plaintext".to_string()).is_err());
        assert!(PasswordHash::try_from("$2b$12$abcdefghijklmnopqrstuu".to_string()).is_err());
    }
}
