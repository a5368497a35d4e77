//! Authentication: turning a request's credentials into an [`Identity`]. The gateway calls
//! [`Authenticator::authenticate`] once per request, before any ACL check.
//!
//! Supported: HTTP basic against local users with argon2id hashes ([`password`]) and, for
//! names not in proxy.yaml, against the company directory ([`ldap`]); bearer tokens from
//! Berth's token service or a trusted issuer ([`token`]); verified client certificates
//! (read in [`crate::tls::client_cert`]); and anonymous callers.
//!
//! When a certificate and a credential arrive together they must name the same user; the
//! listener's [`CertificatePolicy`] says which of the two are required.

pub mod basic;
pub mod cache;
pub mod ldap;
pub mod password;
pub mod token;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::acl::Action;
use ldap::{Directory, LdapError};
pub use password::{PasswordHash, PasswordVerifier};
use token::{ResourceActions, TokenError, TokenService};

use crate::tls::client_cert::{CertificatePolicy, PeerCertificate};

/// Who the caller is, whatever proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name; `None` for an anonymous caller.
    pub user: Option<String>,
    /// Groups the user belongs to: from proxy.yaml, the directory or the certificate.
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

    /// Whether no user is known (no credentials, or an anonymous token).
    pub fn is_anonymous(&self) -> bool {
        self.user.is_none()
    }

    /// Whether a bearer token, when one was used, covers `action` on `repository`; always
    /// true for every other method, whose reach only the ACL bounds.
    pub fn token_allows(&self, repository: &str, action: Action) -> bool {
        match &self.granted {
            None => true,
            Some(granted) => granted
                .iter()
                .any(|grant| grant.allows_repository(repository, action)),
        }
    }

    /// The user name for logs; `-` for anonymous callers.
    pub fn display_name(&self) -> &str {
        self.user.as_deref().unwrap_or("-")
    }
}

/// How an identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No credentials.
    Anonymous,
    /// A password checked against proxy.yaml.
    Basic,
    /// A bearer token.
    Bearer,
    /// The web UI's session cookie, after signing in with a password.
    Session,
    /// A password checked against the directory.
    Ldap,
    /// A verified client certificate.
    Certificate,
}

impl AuthMethod {
    /// The name used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::Basic => "basic",
            AuthMethod::Bearer => "bearer",
            AuthMethod::Session => "session",
            AuthMethod::Ldap => "ldap",
            AuthMethod::Certificate => "certificate",
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
    /// The listener's policy needs a client certificate and none was presented.
    #[error("a client certificate is required")]
    CertificateRequired,
    /// The listener's policy needs a password besides the certificate.
    #[error("a password is required besides the client certificate")]
    PasswordRequired,
    /// The certificate names one user and the credential another (or an anonymous token).
    #[error("the client certificate and the credentials name different users")]
    IdentityMismatch {
        /// The certificate's subject.
        certificate: String,
        /// The user the credential names; `None` for an anonymous token.
        credential: Option<String>,
    },
    /// The directory could not check a password; the caller should retry later.
    #[error("the user directory is unavailable")]
    DirectoryUnavailable {
        /// What went wrong, for the operator's log.
        problem: String,
    },
}

impl AuthError {
    /// The method whose attempt failed, for metrics.
    pub fn method(&self) -> AuthMethod {
        match self {
            AuthError::Token(_) => AuthMethod::Bearer,
            AuthError::DirectoryUnavailable { .. } => AuthMethod::Ldap,
            AuthError::CertificateRequired
            | AuthError::PasswordRequired
            | AuthError::IdentityMismatch { .. } => AuthMethod::Certificate,
            _ => AuthMethod::Basic,
        }
    }
}

/// Resolves credentials to identities: local users, their groups, the directory, bearer
/// tokens and client certificates.
pub struct Authenticator {
    passwords: PasswordVerifier,
    groups_by_user: BTreeMap<String, Vec<String>>,
    tokens: Option<Arc<TokenService>>,
    directory: Option<Directory>,
    certificate_policy: CertificatePolicy,
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
    /// Builds the authenticator from the users and groups in the config, the token service
    /// when token authentication is on, and the directory when LDAP is configured.
    pub fn new(
        users: BTreeMap<String, PasswordHash>,
        groups: &BTreeMap<String, Vec<String>>,
        tokens: Option<Arc<TokenService>>,
        directory: Option<Directory>,
        certificate_policy: CertificatePolicy,
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
            directory,
            certificate_policy,
        }
    }

    /// Authenticates one request from its `Authorization` header and the client certificate
    /// of its connection.
    ///
    /// # Errors
    /// [`AuthError`] when credentials were sent and do not check out, or when the
    /// certificate policy is not met.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        certificate: Option<&PeerCertificate>,
    ) -> Result<(Identity, Outcome), AuthError> {
        let presented = self.from_header(authorization).await?;
        self.with_certificate(presented, certificate)
    }

    /// Combines what a credential proved (`None` when none was sent) with the connection's
    /// client certificate, as the listener's policy says.
    ///
    /// # Errors
    /// [`AuthError::CertificateRequired`], [`AuthError::PasswordRequired`] or
    /// [`AuthError::IdentityMismatch`].
    pub fn with_certificate(
        &self,
        presented: Option<(Identity, Outcome)>,
        certificate: Option<&PeerCertificate>,
    ) -> Result<(Identity, Outcome), AuthError> {
        let subject = certificate.and_then(|peer| peer.subject.clone());
        let policy = self.certificate_policy;
        match (presented, subject) {
            (None, None) => Ok((Identity::anonymous(), Outcome::Anonymous)),
            (Some(presented), None) => match policy {
                CertificatePolicy::Either => Ok(presented),
                _ => Err(AuthError::CertificateRequired),
            },
            (None, Some(subject)) => match policy {
                CertificatePolicy::CertificateAndPassword => Err(AuthError::PasswordRequired),
                _ => {
                    let mut identity = self.identity_of(subject, AuthMethod::Certificate);
                    add_groups(&mut identity, certificate);
                    Ok((identity, Outcome::Verified))
                }
            },
            (Some((mut identity, outcome)), Some(subject)) => {
                if identity.user.as_deref() != Some(subject.as_str()) {
                    return Err(AuthError::IdentityMismatch {
                        certificate: subject,
                        credential: identity.user,
                    });
                }
                add_groups(&mut identity, certificate);
                Ok((identity, outcome))
            }
        }
    }

    /// What the `Authorization` header proves; `None` when it sends no credentials.
    async fn from_header(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<Option<(Identity, Outcome)>, AuthError> {
        let Some(header) = authorization else {
            return Ok(None);
        };
        if let Some(token) = bearer_token(header) {
            return self.authenticate_token(token).map(Some);
        }
        let credential = basic::parse(header).ok_or(AuthError::Malformed)?;

        // Some clients send empty basic credentials when they have none.
        if credential.user.is_empty() && credential.password.is_empty() {
            return Ok(None);
        }
        self.authenticate_password(&credential.user, &credential.password)
            .await
            .map(Some)
    }

    /// Checks a user name and password: against proxy.yaml when the user is defined there,
    /// else against the directory when one is configured. Used by the token endpoint too.
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`] for an unknown user or a wrong password alike;
    /// [`AuthError::DirectoryUnavailable`] when the directory cannot answer.
    pub async fn authenticate_password(
        &self,
        user: &str,
        password: &str,
    ) -> Result<(Identity, Outcome), AuthError> {
        // Local users first: a directory outage never locks them out.
        let directory = match &self.directory {
            Some(directory) if !self.passwords.knows(user) => directory,
            _ => {
                let outcome = self.passwords.verify(user, password).await?;
                return Ok((
                    self.identity_of(user.to_string(), AuthMethod::Basic),
                    outcome,
                ));
            }
        };

        // A name not in proxy.yaml pays the argon2 a local one does (against the decoy
        // hash), so timing tells local users apart from neither directory users nor nobody.
        if !directory.remembers(user, password) {
            let _ = self.passwords.verify(user, password).await;
        }
        let (found, outcome) = directory
            .verify(user, password)
            .await
            .map_err(directory_error)?;
        let mut identity = self.identity_of(user.to_string(), AuthMethod::Ldap);
        merge_groups(&mut identity, &found.groups);
        Ok((identity, outcome))
    }

    /// The identity behind a refresh token's subject, if that user still exists (in
    /// proxy.yaml, in the directory, or as the subject of the caller's certificate).
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`] when the user is gone;
    /// [`AuthError::DirectoryUnavailable`] when the directory cannot answer.
    pub async fn refresh_identity(
        &self,
        subject: String,
        certificate: Option<&PeerCertificate>,
    ) -> Result<Identity, AuthError> {
        let certified = certificate.is_some_and(|peer| peer.subject.as_ref() == Some(&subject));
        if self.passwords.knows(&subject) || certified {
            let mut identity = self.identity_of(subject, AuthMethod::Bearer);
            add_groups(&mut identity, certificate);
            return Ok(identity);
        }
        let directory = self
            .directory
            .as_ref()
            .ok_or(AuthError::InvalidCredentials)?;
        let found = directory.lookup(&subject).await.map_err(directory_error)?;
        let mut identity = self.identity_of(subject, AuthMethod::Bearer);
        merge_groups(&mut identity, &found.groups);
        Ok(identity)
    }

    /// A stamp of `user`'s current credential, for binding refresh tokens to it: the
    /// SHA-256 of the stored PHC string. It reveals nothing useful (the salt inside the PHC
    /// string stays secret), and changes whenever the password does. `None` for users
    /// without a local password (directory and certificate users).
    pub fn credential_stamp(&self, user: &str) -> Option<String> {
        self.passwords.stamp(user)
    }

    /// Whether a refresh token was issued under its user's current credential: for a local
    /// user, the stamp must match (a changed password retires older refresh tokens); a
    /// token issued to a user without a local password carries no stamp, and
    /// [`Authenticator::refresh_identity`] then checks that the user still exists.
    ///
    /// # Security
    /// The stamps are compared in constant time.
    pub fn credential_still_valid(&self, grant: &token::RefreshGrant) -> bool {
        use subtle::ConstantTimeEq as _;
        match (self.credential_stamp(&grant.subject), &grant.credential) {
            (Some(now), Some(then)) => bool::from(now.as_bytes().ct_eq(then.as_bytes())),
            (None, None) => true,
            _ => false,
        }
    }

    /// Whether `user` is a local user (under `users:` in proxy.yaml).
    pub fn knows_user(&self, user: &str) -> bool {
        self.passwords.knows(user)
    }

    /// Whether passwords of users not in proxy.yaml are checked against a directory.
    pub fn has_directory(&self) -> bool {
        self.directory.is_some()
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

    /// The groups of `identity` that proxy.yaml does not give its user: those the directory
    /// or a client certificate proved. Whatever outlives one request (a web UI session, a
    /// token) keeps only these, and reads the rest from the running config each time.
    pub fn proven_groups(&self, identity: &Identity) -> Vec<String> {
        let configured = identity
            .user
            .as_ref()
            .and_then(|user| self.groups_by_user.get(user));
        identity
            .groups
            .iter()
            .filter(|group| configured.is_none_or(|configured| !configured.contains(group)))
            .cloned()
            .collect()
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
        merge_groups(&mut identity, &verified.proven_groups);
        identity.method = AuthMethod::Bearer;
        identity.granted = Some(verified.access);
        Ok((identity, Outcome::Verified))
    }
}

/// Adds the certificate's groups to an identity it agrees with.
fn add_groups(identity: &mut Identity, certificate: Option<&PeerCertificate>) {
    if let Some(peer) = certificate {
        merge_groups(identity, &peer.groups);
    }
}

fn merge_groups(identity: &mut Identity, groups: &[String]) {
    for group in groups {
        if !identity.groups.contains(group) {
            identity.groups.push(group.clone());
        }
    }
}

fn directory_error(error: LdapError) -> AuthError {
    match error {
        LdapError::Unavailable { .. } => AuthError::DirectoryUnavailable {
            problem: error.to_string(),
        },
        _ => AuthError::InvalidCredentials,
    }
}

/// The token of an `Authorization: Bearer ...` header.
fn bearer_token(header: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
