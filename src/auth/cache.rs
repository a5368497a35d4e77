//! Recent successful password checks, shared by local users ([`super::password`]) and the
//! directory ([`super::ldap`]): a docker push sends the password with every request, and
//! neither argon2 nor an LDAP round trip should run for each one.
//!
//! Entries are keyed by an HMAC of the user name and password under a per-process random
//! key: the cache never holds a password, and a stolen memory image does not let anyone
//! test guesses faster than the real check would. Failures are never remembered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bound on remembered checks; expired entries are dropped when it is reached.
const CAPACITY: usize = 10_000;

/// Remembers successful checks for `ttl`, with a value (the user's groups, for example).
pub struct SuccessCache<V> {
    entries: Mutex<HashMap<[u8; 32], (Instant, V)>>,
    key: [u8; 32],
    ttl: Duration,
}

impl<V: Clone> SuccessCache<V> {
    /// An empty cache whose entries live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        SuccessCache {
            entries: Mutex::new(HashMap::new()),
            key: rand::random(),
            ttl,
        }
    }

    /// The value remembered for this user name and password, if still fresh.
    pub fn lookup(&self, user: &str, password: &str) -> Option<V> {
        let key = self.key_for(user, password);
        let entries = self.entries.lock().expect("auth cache lock poisoned");
        let (expires, value) = entries.get(&key)?;
        (*expires > Instant::now()).then(|| value.clone())
    }

    /// Remembers a successful check.
    pub fn remember(&self, user: &str, password: &str, value: V) {
        let key = self.key_for(user, password);
        let mut entries = self.entries.lock().expect("auth cache lock poisoned");
        if entries.len() >= CAPACITY {
            let now = Instant::now();
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now() + self.ttl, value));
    }

    fn key_for(&self, user: &str, password: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(user.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_user_and_password_until_expiry() {
        let cache = SuccessCache::new(Duration::from_secs(60));
        cache.remember("alice", "pw", vec!["devs".to_string()]);
        assert_eq!(cache.lookup("alice", "pw"), Some(vec!["devs".to_string()]));
        assert_eq!(cache.lookup("alice", "other"), None);
        assert_eq!(cache.lookup("alicepw", ""), None);

        let expired = SuccessCache::new(Duration::ZERO);
        expired.remember("alice", "pw", ());
        assert_eq!(expired.lookup("alice", "pw"), None);
    }
}
