//! Authentication: turning a request's credentials into an [`Identity`]. The gateway calls
//! [`Authenticator::authenticate`] once per request, before any ACL check.
//!
//! Supported today: HTTP basic against local users with argon2id hashes ([`password`]),
//! bearer tokens from Berth's token service or a trusted issuer ([`token`]), and anonymous
//! callers (no `Authorization` header).

pub mod basic;
pub mod password;
pub mod token;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use password::{PasswordHash, PasswordVerifier};
use token::{ResourceActions, TokenError, TokenService};

/// Who the caller is, whatever proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name; `None` for an anonymous caller.
    pub user: Option<String>,
    /// Groups the user belongs to, from proxy.yaml.
    pub groups: Vec<String>,
    /// How the caller proved who they are.
    pub method: AuthMethod,
    /// For bearer tokens, what the token grants; the ACL still has the last word.
    /// `None` for every other method.
    pub granted: Option<Vec<ResourceActions>>,
}

impl Identity {
    /// A caller that sent no credentials.
    pub fn anonymous() -> Self {
        Identity {
            user: None,
            groups: Vec::new(),
            method: AuthMethod::Anonymous,
            granted: None,
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
    Bearer,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::Basic => "basic",
            AuthMethod::Bearer => "bearer",
        }
    }
}

/// Why credentials were refused. Unknown users and wrong passwords look alike.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The `Authorization` header is not a credential we can read.
    #[error("malformed authorization header")]
    Malformed,
    /// Unknown user or wrong password; deliberately not told apart.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// A bearer token failed verification.
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl AuthError {
    /// The method whose attempt failed, for metrics.
    pub fn method(&self) -> AuthMethod {
        match self {
            AuthError::Token(_) => AuthMethod::Bearer,
            _ => AuthMethod::Basic,
        }
    }
}

/// Resolves credentials to identities: local users, their groups, and bearer tokens.
pub struct Authenticator {
    passwords: PasswordVerifier,
    groups_by_user: BTreeMap<String, Vec<String>>,
    tokens: Option<Arc<TokenService>>,
}

/// What [`Authenticator::authenticate`] found, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No credentials were sent.
    Anonymous,
    /// Verified just now (argon2 for a password, a signature for a token).
    Verified,
    /// Matched a recent successful verification.
    Cached,
}

impl Authenticator {
    /// Builds the authenticator from the users and groups in the config, and the token
    /// service when token authentication is on.
    pub fn new(
        users: BTreeMap<String, PasswordHash>,
        groups: &BTreeMap<String, Vec<String>>,
        tokens: Option<Arc<TokenService>>,
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
            tokens,
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
        if let Some(token) = bearer_token(header) {
            return self.authenticate_token(token);
        }
        let credential = basic::parse(header).ok_or(AuthError::Malformed)?;

        // Some clients send empty basic credentials when they have none.
        if credential.user.is_empty() && credential.password.is_empty() {
            return Ok((Identity::anonymous(), Outcome::Anonymous));
        }

        let outcome = self
            .verify_password(&credential.user, &credential.password)
            .await?;
        let identity = self.identity_of(credential.user, AuthMethod::Basic);
        Ok((identity, outcome))
    }

    /// Checks a user name and password, as the token endpoint does for its grants.
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`] for an unknown user or a wrong password alike.
    pub async fn verify_password(&self, user: &str, password: &str) -> Result<Outcome, AuthError> {
        self.passwords.verify(user, password).await
    }

    /// A stamp of `user`'s current credential, for binding refresh tokens to it: the
    /// SHA-256 of the stored PHC string. It reveals nothing useful (the salt inside the PHC
    /// string stays secret), and changes whenever the password does. `None` for users
    /// without a local password.
    pub fn credential_stamp(&self, user: &str) -> Option<String> {
        self.passwords.stamp(user)
    }

    /// Whether a refresh token's user still exists with the credential it was issued under.
    ///
    /// # Security
    /// The stamps are compared in constant time.
    pub fn credential_still_valid(&self, grant: &token::RefreshGrant) -> bool {
        use subtle::ConstantTimeEq as _;
        if !self.passwords.knows(&grant.subject) {
            return false;
        }
        match (self.credential_stamp(&grant.subject), &grant.credential) {
            (Some(now), Some(then)) => bool::from(now.as_bytes().ct_eq(then.as_bytes())),
            _ => false,
        }
    }

    /// The identity of a user known by name, with their groups.
    pub fn identity_of(&self, user: String, method: AuthMethod) -> Identity {
        let groups = self.groups_by_user.get(&user).cloned().unwrap_or_default();
        Identity {
            user: Some(user),
            groups,
            method,
            granted: None,
        }
    }

    fn authenticate_token(&self, token: &str) -> Result<(Identity, Outcome), AuthError> {
        let Some(tokens) = &self.tokens else {
            return Err(AuthError::Token(TokenError::Invalid {
                reason: "tokens_disabled",
            }));
        };
        let verified = tokens.verify_access(token)?;
        let mut identity = match verified.subject {
            Some(subject) => self.identity_of(subject, AuthMethod::Bearer),
            None => Identity::anonymous(),
        };
        identity.method = AuthMethod::Bearer;
        identity.granted = Some(verified.access);
        Ok((identity, Outcome::Verified))
    }
}

/// The token of an `Authorization: Bearer ...` header.
fn bearer_token(header: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
