//! Bearer tokens: Berth as a Docker Registry token server, and verification of tokens from
//! Berth itself and from outside issuers the config trusts.
//!
//! Tokens are JWTs signed with the configured algorithm (ES256 unless configured otherwise)
//! and carry `iss`, `sub`, `aud` (the service), `exp`, `nbf`, `iat`, `jti` and `access`, the
//! list of repositories and actions granted. Refresh tokens, handed to `docker login` as its
//! identity token, carry no `access` and a `refresh` mark, and are accepted only by the
//! token endpoint.
//!
//! # Security
//! The algorithm a token may use comes from the config, never from the token's header, so
//! `alg: none` and HMAC-with-a-public-key tokens are refused before any signature check.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::acl::Action;

/// Settings of the token service (`auth.token` in proxy.yaml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Whether registry requests are challenged for bearer tokens. Default true when the
    /// section is present.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The service name: the `aud` of issued tokens and `service` in challenges.
    /// Default `berth`.
    #[serde(default = "default_service")]
    pub service: String,
    /// The `iss` of issued tokens. Default `berth`.
    #[serde(default = "default_service")]
    pub issuer: String,
    /// URL of the token endpoint in challenges. Default `https://<Host header>/token`.
    #[serde(default)]
    pub realm: Option<String>,
    /// Signing algorithm: `ES256` (default), `RS256` or `EdDSA`.
    #[serde(default)]
    pub algorithm: SigningAlgorithm,
    /// PEM private key for signing. Default `certs/token.key`; made on first start for
    /// ES256 and EdDSA when missing (RS256 keys must be supplied).
    #[serde(default = "default_key_path")]
    pub key: PathBuf,
    /// Lifetime of access tokens. Default 5 minutes.
    #[serde(default = "default_lifetime", with = "humantime_serde")]
    pub lifetime: Duration,
    /// Lifetime of refresh (identity) tokens. Default 30 days.
    #[serde(default = "default_refresh_lifetime", with = "humantime_serde")]
    pub refresh_lifetime: Duration,
    /// Other issuers whose tokens are accepted. Default: none.
    #[serde(default)]
    pub trusted_issuers: Vec<TrustedIssuerConfig>,
}

/// An outside issuer whose tokens Berth accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerConfig {
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// The `aud` its tokens must carry for Berth.
    pub audience: String,
    /// A PEM public key (EC, RSA or Ed25519).
    #[serde(default)]
    pub public_key: Option<PathBuf>,
    /// A JWKS document with its keys.
    #[serde(default)]
    pub jwks: Option<PathBuf>,
    /// Algorithms accepted from it. Default: the one its key type implies.
    #[serde(default)]
    pub algorithms: Vec<SigningAlgorithm>,
    /// Put before the `sub` of its tokens to make the user name the ACL sees, so that this
    /// issuer cannot speak for local users (`ci:` makes `sub: deploy` the user `ci:deploy`).
    /// Default: none, which lets the issuer act as any user: trust it with that.
    #[serde(default)]
    pub subject_prefix: String,
}

/// The signing algorithms Berth issues and accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SigningAlgorithm {
    #[default]
    ES256,
    RS256,
    EdDSA,
}

impl SigningAlgorithm {
    fn jwt(self) -> Algorithm {
        match self {
            SigningAlgorithm::ES256 => Algorithm::ES256,
            SigningAlgorithm::RS256 => Algorithm::RS256,
            SigningAlgorithm::EdDSA => Algorithm::EdDSA,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_service() -> String {
    "berth".to_string()
}

fn default_key_path() -> PathBuf {
    PathBuf::from("certs/token.key")
}

fn default_lifetime() -> Duration {
    Duration::from_secs(300)
}

fn default_refresh_lifetime() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

/// What a token grants on one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceActions {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl ResourceActions {
    /// Parses a scope: `repository:team/app:pull,push` or `registry:catalog:*`. The name may
    /// contain `:` only in the resource-type part (`repository(plugin)`), never at its end.
    pub fn parse_scope(scope: &str) -> Option<Self> {
        let (resource_type, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if resource_type.is_empty() || name.is_empty() {
            return None;
        }
        let actions = actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        Some(ResourceActions {
            resource_type: resource_type.into(),
            name: name.into(),
            actions,
        })
    }

    /// Whether this grant covers `action` on repository `name`.
    pub fn allows_repository(&self, name: &str, action: Action) -> bool {
        self.resource_type == "repository"
            && self.name == name
            && self
                .actions
                .iter()
                .any(|a| a == "*" || a == action.as_str())
    }

    /// Whether this grant is the catalog scope.
    pub fn allows_catalog(&self) -> bool {
        self.resource_type == "registry"
            && self.name == "catalog"
            && self.actions.iter().any(|a| a == "*")
    }
}

/// The claims of every token Berth issues or accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user; empty for anonymous callers.
    #[serde(default)]
    pub sub: String,
    /// One audience or several (RFC 7519 allows both); `validate_aud` checks either form.
    pub aud: Audience,
    pub exp: u64,
    /// Optional in outside issuers' tokens; Berth always sets it.
    #[serde(default)]
    pub nbf: u64,
    #[serde(default)]
    pub iat: u64,
    #[serde(default)]
    pub jti: String,
    #[serde(default)]
    pub access: Vec<ResourceActions>,
    /// In Berth's own access tokens, the groups the directory or a client certificate
    /// proved for the subject when the token was issued (proxy.yaml's groups are read
    /// afresh on every request). Ignored in tokens of outside issuers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Marks a refresh token; such a token is refused as an access token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refresh: bool,
    /// In a refresh token, a stamp of the user's credential when it was issued: changing the
    /// password changes the stamp and so retires every refresh token issued before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The `aud` claim: a string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Several(Vec<String>),
}

/// A verified refresh token.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub subject: String,
    /// The credential stamp it was issued under (see [`Claims::credential`]).
    pub credential: Option<String>,
}

/// A verified access token.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// `None` for an anonymous token.
    pub subject: Option<String>,
    pub access: Vec<ResourceActions>,
    /// [`Claims::groups`] of a token Berth issued; empty for outside issuers' tokens.
    pub proven_groups: Vec<String>,
    pub issuer: String,
    pub jti: String,
}

/// Why a token or the token service's setup was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Signature, algorithm, issuer, audience, expiry or shape is wrong.
    #[error("invalid token: {reason}")]
    Invalid { reason: &'static str },
    /// A refresh token was presented where an access token is needed, or the reverse.
    #[error("wrong kind of token")]
    WrongKind,
    /// The signing key cannot be read or made.
    #[error("token signing key {path}: {problem}")]
    Key { path: PathBuf, problem: String },
    /// A trusted issuer's key or JWKS is unusable.
    #[error("trusted issuer {issuer:?}: {problem}")]
    TrustedIssuer { issuer: String, problem: String },
}

impl TokenError {
    /// A bounded label for the verification metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            TokenError::Invalid { reason } => reason,
            TokenError::WrongKind => "wrong_kind",
            TokenError::Key { .. } | TokenError::TrustedIssuer { .. } => "setup",
        }
    }
}

/// Issues and verifies tokens.
pub struct TokenService {
    config: TokenConfig,
    encoding_key: EncodingKey,
    kid: String,
    public_jwks: JwkSet,
    issuers: Vec<IssuerKeys>,
}

/// Keys that may sign tokens of one issuer, with the audience they must name.
struct IssuerKeys {
    issuer: String,
    audience: String,
    keys: Vec<(Option<String>, DecodingKey)>,
    algorithms: Vec<Algorithm>,
}

impl TokenService {
    /// Loads (or on first start makes) the signing key and the trusted issuers' keys.
    /// Relative paths in `config` must already be resolved.
    ///
    /// # Errors
    /// [`TokenError::Key`] or [`TokenError::TrustedIssuer`] naming what is unusable.
    pub fn load(config: TokenConfig) -> Result<Self, TokenError> {
        Self::load_keys(config, true)
    }

    /// Checks the token settings as [`TokenService::load`] would, without making a missing
    /// signing key (for `berth check`): a key that exists must load, a missing one must be
    /// one Berth can make, and every trusted issuer's keys must load.
    ///
    /// # Errors
    /// As [`TokenService::load`].
    pub fn check(config: &TokenConfig) -> Result<(), TokenError> {
        if config.key.exists() {
            return Self::load_keys(config.clone(), false).map(|_| ());
        }
        if config.algorithm == SigningAlgorithm::RS256 {
            return Err(TokenError::Key {
                path: config.key.clone(),
                problem: "missing; RS256 keys are not generated".into(),
            });
        }
        for trusted in &config.trusted_issuers {
            load_trusted_issuer(trusted)?;
        }
        Ok(())
    }

    fn load_keys(config: TokenConfig, generate_missing: bool) -> Result<Self, TokenError> {
        let algorithm = config.algorithm;
        let key_path = config.key.clone();
        let key_error = |problem: String| TokenError::Key {
            path: key_path.clone(),
            problem,
        };

        let pem = match std::fs::read(&key_path) {
            Ok(pem) => pem,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && generate_missing => {
                generate_signing_key(&key_path, algorithm).map_err(key_error)?
            }
            Err(error) => return Err(key_error(error.to_string())),
        };
        let encoding_key = match algorithm {
            SigningAlgorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            SigningAlgorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            SigningAlgorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        }
        .map_err(|error| key_error(format!("not a {algorithm:?} private key: {error}")))?;

        let mut jwk = Jwk::from_encoding_key(&encoding_key, algorithm.jwt())
            .map_err(|error| key_error(error.to_string()))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|error| key_error(error.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        let own_key = DecodingKey::from_jwk(&jwk).map_err(|error| key_error(error.to_string()))?;

        let mut issuers = vec![IssuerKeys {
            issuer: config.issuer.clone(),
            audience: config.service.clone(),
            keys: vec![(Some(kid.clone()), own_key)],
            algorithms: vec![algorithm.jwt()],
        }];
        for trusted in &config.trusted_issuers {
            issuers.push(load_trusted_issuer(trusted)?);
        }

        let public_jwks = JwkSet { keys: vec![jwk] };
        Ok(TokenService {
            config,
            encoding_key,
            kid,
            public_jwks,
            issuers,
        })
    }

    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    /// Berth's public keys as a JWKS document.
    pub fn jwks(&self) -> &JwkSet {
        &self.public_jwks
    }

    /// Issues an access token for `subject` (`None`: anonymous) granting `access`.
    /// Returns the token and its `iat`.
    pub fn issue_access(
        &self,
        subject: Option<&str>,
        proven_groups: Vec<String>,
        access: Vec<ResourceActions>,
    ) -> (String, u64) {
        let mut claims = self.claims(subject.unwrap_or(""), self.config.lifetime, access, false);
        claims.groups = proven_groups;
        let issued_at = claims.iat;
        (self.sign(&claims), issued_at)
    }

    /// Issues a refresh token for `subject`, to be traded for access tokens later, bound to
    /// `credential`, the stamp of the user's credential now.
    pub fn issue_refresh(&self, subject: &str, credential: Option<String>) -> String {
        let mut claims = self.claims(subject, self.config.refresh_lifetime, Vec::new(), true);
        claims.credential = credential;
        self.sign(&claims)
    }

    /// Verifies an access token from Berth or a trusted issuer.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] for any failed check, [`TokenError::WrongKind`] for a refresh
    /// token.
    pub fn verify_access(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let claims = self.verify(token)?;
        if claims.refresh {
            return Err(TokenError::WrongKind);
        }
        let prefix = self.subject_prefix(&claims.iss);
        let subject = (!claims.sub.is_empty()).then(|| format!("{prefix}{}", claims.sub));
        let proven_groups = if claims.iss == self.config.issuer {
            claims.groups
        } else {
            Vec::new()
        };
        Ok(VerifiedToken {
            subject,
            access: claims.access,
            proven_groups,
            issuer: claims.iss,
            jti: claims.jti,
        })
    }

    /// Verifies a refresh token Berth issued. The caller must still check its credential
    /// stamp against the user's current one.
    ///
    /// # Errors
    /// As [`TokenService::verify_access`]; an access token is [`TokenError::WrongKind`].
    pub fn verify_refresh(&self, token: &str) -> Result<RefreshGrant, TokenError> {
        let claims = self.verify(token)?;
        if !claims.refresh || claims.iss != self.config.issuer || claims.sub.is_empty() {
            return Err(TokenError::WrongKind);
        }
        Ok(RefreshGrant {
            subject: claims.sub,
            credential: claims.credential,
        })
    }

    /// What a trusted issuer's subjects are prefixed with; empty for Berth's own tokens.
    fn subject_prefix(&self, issuer: &str) -> &str {
        self.config
            .trusted_issuers
            .iter()
            .find(|trusted| trusted.issuer == issuer && issuer != self.config.issuer)
            .map_or("", |trusted| trusted.subject_prefix.as_str())
    }

    fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let invalid = |reason| TokenError::Invalid { reason };
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed"))?;
        let unverified: Claims = jsonwebtoken::dangerous::insecure_decode(token)
            .map_err(|_| invalid("malformed"))?
            .claims;

        // Which issuer's keys apply is read from the claims; the signature check below
        // then proves the claims came from that issuer.
        let issuer = self
            .issuers
            .iter()
            .find(|keys| keys.issuer == unverified.iss)
            .ok_or(invalid("unknown_issuer"))?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(invalid("algorithm"));
        }

        let mut validation = Validation::new(header.alg);
        validation.algorithms = issuer.algorithms.clone();
        validation.set_audience(&[&issuer.audience]);
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 30;

        let candidates = issuer
            .keys
            .iter()
            .filter(|(kid, _)| match (&header.kid, kid) {
                (Some(wanted), Some(kid)) => wanted == kid,
                _ => true,
            });
        let mut last_error = invalid("signature");
        for (_, key) in candidates {
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(error) => last_error = invalid(reason_of(&error)),
            }
        }
        Err(last_error)
    }

    fn claims(
        &self,
        subject: &str,
        lifetime: Duration,
        access: Vec<ResourceActions>,
        refresh: bool,
    ) -> Claims {
        let now = now_secs();
        Claims {
            iss: self.config.issuer.clone(),
            sub: subject.to_string(),
            aud: Audience::One(self.config.service.clone()),
            exp: now + lifetime.as_secs(),
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            access,
            groups: Vec::new(),
            refresh,
            credential: None,
        }
    }

    fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(self.config.algorithm.jwt());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key)
            .expect("signing with a key loaded and checked at startup")
    }
}

fn reason_of(error: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not_yet_valid",
        ErrorKind::InvalidAudience => "audience",
        ErrorKind::InvalidIssuer => "issuer",
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => "algorithm",
        ErrorKind::MissingRequiredClaim(_) => "missing_claim",
        _ => "signature",
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Formats seconds since the Unix epoch as RFC 3339, as token responses carry `issued_at`.
pub fn rfc3339(secs: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Makes a signing key at `path` (mode 0600) and returns its PEM.
fn generate_signing_key(path: &Path, algorithm: SigningAlgorithm) -> Result<Vec<u8>, String> {
    let rcgen_algorithm = match algorithm {
        SigningAlgorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        SigningAlgorithm::EdDSA => &rcgen::PKCS_ED25519,
        SigningAlgorithm::RS256 => {
            return Err("missing; RS256 keys are not generated, make one with \
                 `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072`"
                .to_string())
        }
    };
    let key = rcgen::KeyPair::generate_for(rcgen_algorithm).map_err(|e| e.to_string())?;
    let pem = key.serialize_pem();
    crate::tls::write_new_file(path, pem.as_bytes(), true).map_err(|e| e.to_string())?;
    tracing::info!(path = %path.display(), ?algorithm, "created token signing key");
    Ok(pem.into_bytes())
}

fn load_trusted_issuer(trusted: &TrustedIssuerConfig) -> Result<IssuerKeys, TokenError> {
    let fail = |problem: String| TokenError::TrustedIssuer {
        issuer: trusted.issuer.clone(),
        problem,
    };
    let mut keys = Vec::new();
    let mut implied = Vec::new();

    if let Some(path) = &trusted.public_key {
        let pem = std::fs::read(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        let parsed = [
            (Algorithm::ES256, DecodingKey::from_ec_pem(&pem)),
            (Algorithm::RS256, DecodingKey::from_rsa_pem(&pem)),
            (Algorithm::EdDSA, DecodingKey::from_ed_pem(&pem)),
        ]
        .into_iter()
        .find_map(|(algorithm, key)| key.ok().map(|key| (algorithm, key)));
        let (algorithm, key) =
            parsed.ok_or_else(|| fail(format!("{} is not a PEM public key", path.display())))?;
        keys.push((None, key));
        implied.push(algorithm);
    }
    if let Some(path) = &trusted.jwks {
        let text = std::fs::read(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        let set: JwkSet = serde_json::from_slice(&text)
            .map_err(|e| fail(format!("{} is not a JWKS document: {e}", path.display())))?;
        for jwk in &set.keys {
            let key = DecodingKey::from_jwk(jwk).map_err(|e| fail(format!("bad JWK: {e}")))?;
            if let Some(algorithm) = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse().ok())
            {
                implied.push(algorithm);
            }
            keys.push((jwk.common.key_id.clone(), key));
        }
    }
    if keys.is_empty() {
        return Err(fail("give it a public_key or a jwks file".into()));
    }

    let algorithms = if trusted.algorithms.is_empty() {
        implied
    } else {
        trusted.algorithms.iter().map(|a| a.jwt()).collect()
    };
    if algorithms.is_empty() {
        return Err(fail(
            "name its algorithms: the JWKS keys carry no `alg`".into(),
        ));
    }
    Ok(IssuerKeys {
        issuer: trusted.issuer.clone(),
        audience: trusted.audience.clone(),
        keys,
        algorithms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(dir: &Path) -> TokenService {
        let yaml = format!("key: {}/token.key\nservice: reg\n", dir.display());
        TokenService::load(serde_yaml_ng::from_str(&yaml).unwrap()).unwrap()
    }

    #[test]
    fn scopes_parse_like_docker_sends_them() {
        let scope = ResourceActions::parse_scope("repository:team/app:pull,push").unwrap();
        assert_eq!(scope.name, "team/app");
        assert_eq!(scope.actions, ["pull", "push"]);
        let catalog = ResourceActions::parse_scope("registry:catalog:*").unwrap();
        assert!(catalog.allows_catalog());
        let plugin = ResourceActions::parse_scope("repository(plugin):a/b:pull").unwrap();
        assert_eq!(plugin.resource_type, "repository(plugin)");
        assert!(ResourceActions::parse_scope("garbage").is_none());
    }

    #[test]
    fn issued_tokens_verify_and_refresh_tokens_are_kept_apart() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = service(dir.path());
        let grant = ResourceActions::parse_scope("repository:a:pull").unwrap();
        let (access, _) = tokens.issue_access(Some("alice"), Vec::new(), vec![grant.clone()]);
        let verified = tokens.verify_access(&access).unwrap();
        assert_eq!(verified.subject.as_deref(), Some("alice"));
        assert_eq!(verified.access, vec![grant]);

        let refresh = tokens.issue_refresh("alice", Some("stamp".into()));
        assert!(matches!(
            tokens.verify_access(&refresh),
            Err(TokenError::WrongKind)
        ));
        let grant = tokens.verify_refresh(&refresh).unwrap();
        assert_eq!(grant.subject, "alice");
        assert_eq!(grant.credential.as_deref(), Some("stamp"));
        assert!(matches!(
            tokens.verify_refresh(&access),
            Err(TokenError::WrongKind)
        ));

        // The key made on first start is reused on the next.
        let again = service(dir.path());
        assert!(again.verify_access(&access).is_ok());
    }

    #[test]
    fn forged_tokens_are_refused() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let tokens = service(dir.path());
        let (good, _) = tokens.issue_access(Some("alice"), Vec::new(), Vec::new());
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);

        let payload = good.split('.').nth(1).unwrap();
        let none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
        assert!(tokens.verify_access(&none).is_err());

        let public_pem = tokens.jwks().keys[0].clone();
        let secret = serde_json::to_vec(&public_pem).unwrap();
        let claims: Claims = jsonwebtoken::dangerous::insecure_decode(&good)
            .unwrap()
            .claims;
        let hmac = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&secret).unwrap(),
        )
        .unwrap();
        assert!(matches!(
            tokens.verify_access(&hmac),
            Err(TokenError::Invalid {
                reason: "algorithm"
            })
        ));

        let mut tampered = good.clone();
        tampered.pop();
        tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
        assert!(tokens.verify_access(&tampered).is_err());
    }
}
