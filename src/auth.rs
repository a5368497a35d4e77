//! Authentication: turning a request's credentials into an [`Identity`]. The gateway calls
//! [`Authenticator::authenticate`] once per request, before any ACL check.
//!
//! Supported today: HTTP basic against local users with argon2id hashes ([`password`]),
//! and anonymous callers (no `Authorization` header).

pub mod basic;
pub mod password;

use std::collections::BTreeMap;

pub use password::{PasswordHash, PasswordVerifier};

/// Who the caller is, whatever proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name; `None` for an anonymous caller.
    pub user: Option<String>,
    /// Groups the user belongs to, from proxy.yaml.
    pub groups: Vec<String>,
    /// How the caller proved who they are.
    pub method: AuthMethod,
}

impl Identity {
    /// A caller that sent no credentials.
    pub fn anonymous() -> Self {
        Identity {
            user: None,
            groups: Vec::new(),
            method: AuthMethod::Anonymous,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.user.is_none()
    }

    /// The user name for logs; `-` for anonymous callers.
    pub fn display_name(&self) -> &str {
        self.user.as_deref().unwrap_or("-")
    }
}

/// How an identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Anonymous,
    Basic,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::Basic => "basic",
        }
    }
}

/// Why credentials were refused. Both variants produce the same response.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The `Authorization` header is not a basic credential we can read.
    #[error("malformed authorization header")]
    Malformed,
    /// Unknown user or wrong password; deliberately not told apart.
    #[error("invalid username or password")]
    InvalidCredentials,
}

/// Resolves credentials to identities: local users and their groups.
pub struct Authenticator {
    passwords: PasswordVerifier,
    groups_by_user: BTreeMap<String, Vec<String>>,
}

/// What [`Authenticator::authenticate`] found, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No credentials were sent.
    Anonymous,
    /// Verified with argon2 just now.
    Verified,
    /// Matched a recent successful verification.
    Cached,
}

impl Authenticator {
    /// Builds the authenticator from the users and groups in the config.
    pub fn new(
        users: BTreeMap<String, PasswordHash>,
        groups: &BTreeMap<String, Vec<String>>,
    ) -> Self {
        let mut groups_by_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (group, members) in groups {
            for member in members {
                groups_by_user
                    .entry(member.clone())
                    .or_default()
                    .push(group.clone());
            }
        }
        Authenticator {
            passwords: PasswordVerifier::new(users),
            groups_by_user,
        }
    }

    /// Authenticates one request from its `Authorization` header.
    ///
    /// # Errors
    /// [`AuthError`] when credentials were sent and do not check out.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<(Identity, Outcome), AuthError> {
        let Some(header) = authorization else {
            return Ok((Identity::anonymous(), Outcome::Anonymous));
        };
        let credential = basic::parse(header).ok_or(AuthError::Malformed)?;

        // Some clients send empty basic credentials when they have none.
        if credential.user.is_empty() && credential.password.is_empty() {
            return Ok((Identity::anonymous(), Outcome::Anonymous));
        }

        let outcome = self
            .passwords
            .verify(&credential.user, &credential.password)
            .await?;
        let groups = self
            .groups_by_user
            .get(&credential.user)
            .cloned()
            .unwrap_or_default();
        let identity = Identity {
            user: Some(credential.user),
            groups,
            method: AuthMethod::Basic,
        };
        Ok((identity, outcome))
    }
}
