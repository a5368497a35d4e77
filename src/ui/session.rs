//! Signed-in browser sessions: a random 256-bit id in a cookie, and server-side state (who,
//! until when, and the token every form must echo back) in a store keyed by the id's hash.
//!
//! # Security
//! The cookie is `__Host-` prefixed, `Secure`, `HttpOnly` and `SameSite=Strict`, so scripts
//! cannot read it and other sites cannot send it. The store keeps only a SHA-256 of each id,
//! so a memory dump does not hand out live sessions; CSRF tokens are compared in constant
//! time.
//!
//! Limitation: sessions live in process memory, so a restart signs everyone out, and several
//! Berth nodes behind one address do not share them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::AuthMethod;

/// The session cookie's name. `__Host-` makes browsers insist on `Secure`, `Path=/` and no
/// `Domain`, so a sibling host cannot plant one.
pub const COOKIE: &str = "__Host-berth-session";
/// How long a session lasts after sign-in. Picked, not measured: a working day.
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Bound on live sessions; expired ones are dropped when it is reached, and the oldest
/// half after that. Picked, not measured.
const CAPACITY: usize = 100_000;

/// What the server knows about one signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user who signed in.
    pub user: String,
    /// What checked their password: [`AuthMethod::Basic`] (proxy.yaml) or
    /// [`AuthMethod::Ldap`].
    pub method: AuthMethod,
    /// The groups the directory reported at sign-in; groups from proxy.yaml are read from
    /// the running config on every request instead.
    pub directory_groups: Vec<String>,
    /// For a proxy.yaml user, the stamp of their password hash at sign-in: a changed
    /// password changes it, and so ends the session. `None` for directory users.
    pub credential: Option<String>,
    /// The token every form of this session must carry back (hex, 256 bits).
    pub csrf: String,
    expires: Instant,
}

impl Session {
    /// Whether `token` is this session's CSRF token, compared in constant time.
    pub fn csrf_matches(&self, token: &str) -> bool {
        self.csrf.as_bytes().ct_eq(token.as_bytes()).into()
    }

    /// Whether the password this session signed in with is still the user's, by its stamp
    /// ([`crate::auth::Authenticator::credential_stamp`]), compared in constant time.
    pub fn credential_matches(&self, current: &str) -> bool {
        self.credential
            .as_deref()
            .is_some_and(|signed_in| signed_in.as_bytes().ct_eq(current.as_bytes()).into())
    }
}

/// The server-side session store.
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
    lifetime: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(LIFETIME)
    }
}

impl Sessions {
    /// An empty store whose sessions last `lifetime`.
    pub fn new(lifetime: Duration) -> Self {
        Sessions {
            live: Mutex::new(HashMap::new()),
            lifetime,
        }
    }

    /// Starts a session for `user`; returns the id for the cookie and the session.
    pub fn create(
        &self,
        user: String,
        method: AuthMethod,
        directory_groups: Vec<String>,
        credential: Option<String>,
    ) -> (String, Session) {
        let id = random_hex();
        let session = Session {
            user,
            method,
            directory_groups,
            credential,
            csrf: random_hex(),
            expires: Instant::now() + self.lifetime,
        };
        let mut live = self.live.lock().expect("session store lock poisoned");
        if live.len() >= CAPACITY {
            let now = Instant::now();
            live.retain(|_, session| session.expires > now);
        }
        if live.len() >= CAPACITY {
            let mut expiries: Vec<Instant> = live.values().map(|s| s.expires).collect();
            expiries.sort();
            let cutoff = expiries[expiries.len() / 2];
            live.retain(|_, session| session.expires > cutoff);
        }
        live.insert(key(&id), session.clone());
        (id, session)
    }

    /// The live session with cookie id `id`; an expired one is removed and not returned.
    pub fn find(&self, id: &str) -> Option<Session> {
        let mut live = self.live.lock().expect("session store lock poisoned");
        let key = key(id);
        let session = live.get(&key)?;
        if session.expires <= Instant::now() {
            live.remove(&key);
            return None;
        }
        Some(session.clone())
    }

    /// Ends the session with cookie id `id` (sign-out).
    pub fn remove(&self, id: &str) {
        let mut live = self.live.lock().expect("session store lock poisoned");
        live.remove(&key(id));
    }

    /// The `Set-Cookie` value that hands a browser session id `id`.
    pub fn set_cookie(&self, id: &str) -> String {
        let max_age = self.lifetime.as_secs();
        format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
    }
}

/// The `Set-Cookie` value that makes a browser forget its session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The value of cookie `name` in a `Cookie` request header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_until_removed_or_expired() {
        let sessions = Sessions::default();
        let (id, session) = sessions.create("alice".into(), AuthMethod::Basic, Vec::new(), None);
        assert_eq!(id.len(), 64);
        assert_eq!(sessions.find(&id).unwrap().user, "alice");
        assert!(session.csrf_matches(&session.csrf));
        assert!(!session.csrf_matches("forged"));
        sessions.remove(&id);
        assert!(sessions.find(&id).is_none());

        let short = Sessions::new(Duration::ZERO);
        let (id, _) = short.create("bob".into(), AuthMethod::Basic, Vec::new(), None);
        assert!(short.find(&id).is_none());
    }

    #[test]
    fn cookies_are_read_by_name_and_set_with_every_flag() {
        let header = format!("other=1; {COOKIE}=abc ; x=y");
        assert_eq!(cookie_value(&header, COOKIE), Some("abc"));
        assert_eq!(cookie_value("x=y", COOKIE), None);
        let set = Sessions::default().set_cookie("abc");
        for flag in [
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=43200",
        ] {
            assert!(set.contains(flag), "{set} lacks {flag}");
        }
    }
}
