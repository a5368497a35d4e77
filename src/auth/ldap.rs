//! Passwords checked against the company directory (LDAP or Active Directory), for users not
//! defined in proxy.yaml.
//!
//! A check is two steps: a service account searches for the user's entry with the configured
//! filter (the user name escaped, so `*)(uid=*` matches nobody), then a fresh connection binds
//! as that entry's DN with the password. Groups come from an attribute of the entry
//! (`memberOf`) or from a group search. Service-account connections are kept in a small pool;
//! user binds never reuse them. Successful checks are remembered briefly ([`SuccessCache`]).
//!
//! # Security
//! An empty password is refused before any bind: many servers take an empty simple bind as
//! an anonymous one and report success. The service account's password comes from a file
//! or the environment and is never logged.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use serde::Deserialize;

use super::cache::SuccessCache;
use super::Outcome;

/// `auth.ldap` in proxy.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host:port` or `ldaps://host:port`. Required.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS. Default false.
    #[serde(default)]
    pub starttls: bool,
    /// PEM bundle of the CA that signed the directory's certificate. Default: the system's
    /// trusted CAs.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// DN of the service account that searches for users. Required.
    pub bind_dn: String,
    /// File holding the service account's password (one line). One of this or
    /// `bind_password_env` is required.
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// Environment variable holding the service account's password.
    #[serde(default)]
    pub bind_password_env: Option<String>,
    /// Where users are searched (subtree). Required.
    pub user_base: String,
    /// Search filter; `{user}` is replaced by the escaped user name. Default `(uid={user})`.
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// Attribute of the user entry holding the user name as ACL rules spell it
    /// (`sAMAccountName` on Active Directory). The name signed in with must equal one of
    /// its values exactly: directories match names case-insensitively and ignore spaces, so
    /// without this `Alice` would find `alice` and step around rules that name `alice`.
    /// Default `uid`.
    #[serde(default = "default_name_attribute")]
    pub name_attribute: String,
    /// Attribute of the user entry listing group DNs, e.g. `memberOf`. Default: none.
    #[serde(default)]
    pub group_attribute: Option<String>,
    /// A search for the user's groups instead of (or besides) `group_attribute`.
    #[serde(default)]
    pub group_search: Option<GroupSearchConfig>,
    /// Time to connect (and finish TLS). Default 5s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time for one search or bind. Default 5s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub operation_timeout: Duration,
    /// Service-account connections kept open. Default 4.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// How long a successful check is remembered. Default 60s.
    #[serde(default = "default_cache_ttl", with = "humantime_serde")]
    pub cache_ttl: Duration,
}

/// A search for the groups a user belongs to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSearchConfig {
    /// Where groups are searched (subtree). Required.
    pub base: String,
    /// Filter; `{dn}` is the user's escaped DN, `{user}` the escaped user name.
    /// Default `(member={dn})`.
    #[serde(default = "default_group_filter")]
    pub filter: String,
    /// Attribute holding a group's name. Default `cn`.
    #[serde(default = "default_group_name")]
    pub name_attribute: String,
}

/// Why a directory check did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// No such user, several entries for the name, or a wrong or empty password.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The directory could not be reached or did not answer properly; not the user's fault.
    #[error("directory {url} unavailable during {step}: {problem}")]
    Unavailable {
        url: String,
        step: &'static str,
        problem: String,
    },
    /// The service account's password could not be read at startup.
    #[error("cannot read the LDAP bind password: {0}")]
    BindPassword(String),
    /// The CA bundle for the directory's TLS could not be used.
    #[error("cannot use the LDAP CA bundle {path}: {problem}")]
    Ca { path: PathBuf, problem: String },
}

/// A user the directory vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The user's groups, by name.
    pub groups: Vec<String>,
}

/// Checks passwords against the directory.
pub struct Directory {
    config: LdapConfig,
    /// The service account's password; never logged.
    bind_password: String,
    settings: LdapConnSettings,
    pool: Mutex<Vec<Ldap>>,
    cache: SuccessCache<DirectoryUser>,
}

// --- impl LdapConfig ---

impl LdapConfig {
    /// Problems that the types cannot express.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let secure = self.url.starts_with("ldaps://");
        if !secure && !self.url.starts_with("ldap://") {
            problems.push(format!(
                "auth.ldap.url {:?} must start with ldap:// or ldaps://",
                self.url
            ));
        }
        if self.starttls && secure {
            problems.push("auth.ldap.starttls is for ldap:// URLs, not ldaps://".to_string());
        }
        if self.bind_password_file.is_some() == self.bind_password_env.is_some() {
            problems.push(
                "auth.ldap needs exactly one of bind_password_file and bind_password_env"
                    .to_string(),
            );
        }
        if !self.user_filter.contains("{user}") {
            problems.push("auth.ldap.user_filter must contain {user}".to_string());
        }
        if self.pool_size == 0 {
            problems.push("auth.ldap.pool_size must be at least 1".to_string());
        }
        problems
    }

    /// Whether the connection is encrypted.
    pub fn uses_tls(&self) -> bool {
        self.starttls || self.url.starts_with("ldaps://")
    }
}

// --- impl Directory ---

impl Directory {
    /// Reads the bind password and the CA; connects lazily, on the first login.
    ///
    /// # Errors
    /// [`LdapError::BindPassword`] or [`LdapError::Ca`].
    pub fn new(config: LdapConfig) -> Result<Directory, LdapError> {
        let bind_password = read_bind_password(&config)?;
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(config.connect_timeout)
            .set_starttls(config.starttls);
        if let Some(path) = &config.ca {
            settings = settings.set_config(client_tls_config(path)?);
        }
        let cache = SuccessCache::new(config.cache_ttl);
        Ok(Directory {
            config,
            bind_password,
            settings,
            pool: Mutex::new(Vec::new()),
            cache,
        })
    }

    /// The directory's URL, for logs.
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// Checks `password` for `user`; returns their groups.
    ///
    /// # Errors
    /// [`LdapError::InvalidCredentials`] for an unknown user or a wrong or empty password
    /// alike; [`LdapError::Unavailable`] when the directory cannot answer.
    pub async fn verify(
        &self,
        user: &str,
        password: &str,
    ) -> Result<(DirectoryUser, Outcome), LdapError> {
        if password.is_empty() || user.is_empty() {
            return Err(LdapError::InvalidCredentials);
        }
        if let Some(found) = self.cache.lookup(user, password) {
            return Ok((found, Outcome::Cached));
        }

        let entry = self.find_user(user).await?;
        self.bind_as(&entry.dn, password).await?;
        let found = DirectoryUser {
            groups: self.groups_of(user, &entry).await?,
        };
        self.cache.remember(user, password, found.clone());
        Ok((found, Outcome::Verified))
    }

    /// Whether a check of `user` with `password` succeeded within `cache_ttl`, so
    /// [`Directory::verify`] would answer without asking the directory.
    pub fn remembers(&self, user: &str, password: &str) -> bool {
        self.cache.lookup(user, password).is_some()
    }

    /// Looks `user` up without a password (for refresh tokens); their groups when found.
    ///
    /// # Errors
    /// As [`Directory::verify`].
    pub async fn lookup(&self, user: &str) -> Result<DirectoryUser, LdapError> {
        if user.is_empty() {
            return Err(LdapError::InvalidCredentials);
        }
        let entry = self.find_user(user).await?;
        Ok(DirectoryUser {
            groups: self.groups_of(user, &entry).await?,
        })
    }

    /// The one entry the user filter finds for `user`.
    async fn find_user(&self, user: &str) -> Result<SearchEntry, LdapError> {
        let filter = self
            .config
            .user_filter
            .replace("{user}", &ldap3::ldap_escape(user));
        let mut attributes = vec![self.config.name_attribute.clone()];
        if let Some(attribute) = &self.config.group_attribute {
            attributes.push(attribute.clone());
        }
        let base = self.config.user_base.clone();
        let mut entries = self.search(&base, &filter, attributes).await?;
        if entries.len() != 1 {
            tracing::debug!(
                user,
                found = entries.len(),
                "directory user not found uniquely"
            );
            return Err(LdapError::InvalidCredentials);
        }
        let entry = entries.remove(0);

        // The directory's spelling of the name decides, not the caller's.
        let spelled_alike = entry
            .attrs
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(&self.config.name_attribute))
            .flat_map(|(_, values)| values)
            .any(|value| value == user);
        if !spelled_alike {
            tracing::debug!(
                user,
                attribute = %self.config.name_attribute,
                "directory user name differs from the entry's own spelling"
            );
            return Err(LdapError::InvalidCredentials);
        }
        Ok(entry)
    }

    /// Binds as `dn` with `password` on a connection of its own.
    async fn bind_as(&self, dn: &str, password: &str) -> Result<(), LdapError> {
        let mut ldap = self.connect().await?;
        let result = ldap
            .with_timeout(self.config.operation_timeout)
            .simple_bind(dn, password)
            .await;
        tokio::spawn(async move {
            let _ = ldap.unbind().await;
        });
        match result {
            Ok(result) if result.rc == 0 => Ok(()),
            // invalidCredentials, inappropriateAuthentication, unwillingToPerform (AD for
            // disabled accounts), insufficientAccessRights: the user's problem, not ours.
            Ok(result) if [49, 48, 53, 50].contains(&result.rc) => {
                Err(LdapError::InvalidCredentials)
            }
            Ok(result) => Err(self.unavailable("bind", format!("result code {}", result.rc))),
            Err(error) => Err(self.unavailable("bind", error.to_string())),
        }
    }

    async fn groups_of(&self, user: &str, entry: &SearchEntry) -> Result<Vec<String>, LdapError> {
        let mut groups = Vec::new();
        if let Some(attribute) = &self.config.group_attribute {
            let values = entry
                .attrs
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(attribute))
                .flat_map(|(_, values)| values);
            groups.extend(values.filter_map(|dn| first_rdn_value(dn)));
        }
        if let Some(search) = &self.config.group_search {
            let filter = search
                .filter
                .replace("{dn}", &ldap3::ldap_escape(entry.dn.as_str()))
                .replace("{user}", &ldap3::ldap_escape(user));
            let attributes = vec![search.name_attribute.clone()];
            for group in self.search(&search.base, &filter, attributes).await? {
                let names = group
                    .attrs
                    .into_iter()
                    .filter(|(name, _)| name.eq_ignore_ascii_case(&search.name_attribute))
                    .flat_map(|(_, values)| values);
                groups.extend(names);
            }
        }
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    /// A subtree search on a pooled service-account connection.
    async fn search(
        &self,
        base: &str,
        filter: &str,
        attributes: Vec<String>,
    ) -> Result<Vec<SearchEntry>, LdapError> {
        let mut ldap = match self.take_pooled() {
            Some(ldap) => ldap,
            None => self.service_connection().await?,
        };
        let outcome = ldap
            .with_timeout(self.config.operation_timeout)
            .search(base, Scope::Subtree, filter, attributes)
            .await;
        let (entries, result) = match outcome {
            Ok(search) => (search.0, search.1),
            Err(error) => {
                // The connection may be broken; it is not returned to the pool.
                return Err(self.unavailable("search", error.to_string()));
            }
        };
        self.return_to_pool(ldap);
        match result.rc {
            0 => {}
            // noSuchObject: the base does not exist, so neither does the user.
            32 => return Ok(Vec::new()),
            rc => return Err(self.unavailable("search", format!("result code {rc}"))),
        }

        // ldap3 panics on an entry it cannot parse; a malformed answer is a directory fault.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            entries
                .into_iter()
                .map(SearchEntry::construct)
                .collect::<Vec<_>>()
        }));
        parsed.map_err(|_| self.unavailable("search", "malformed search entry".into()))
    }

    /// A new connection bound as the service account.
    async fn service_connection(&self) -> Result<Ldap, LdapError> {
        let mut ldap = self.connect().await?;
        let result = ldap
            .with_timeout(self.config.operation_timeout)
            .simple_bind(&self.config.bind_dn, &self.bind_password)
            .await
            .map_err(|error| self.unavailable("service bind", error.to_string()))?;
        if result.rc != 0 {
            let problem = format!(
                "service account bind refused with result code {}",
                result.rc
            );
            return Err(self.unavailable("service bind", problem));
        }
        Ok(ldap)
    }

    async fn connect(&self) -> Result<Ldap, LdapError> {
        let connecting = LdapConnAsync::with_settings(self.settings.clone(), &self.config.url);
        // The connect timeout covers TCP; this one also bounds TLS and StartTLS.
        let limit = self.config.connect_timeout + self.config.operation_timeout;
        let (connection, ldap) = match tokio::time::timeout(limit, connecting).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(error)) => return Err(self.unavailable("connect", error.to_string())),
            Err(_) => return Err(self.unavailable("connect", "timed out".into())),
        };
        tokio::spawn(async move {
            if let Err(error) = connection.drive().await {
                tracing::debug!(%error, "ldap connection ended");
            }
        });
        Ok(ldap)
    }

    fn take_pooled(&self) -> Option<Ldap> {
        self.pool.lock().expect("ldap pool lock poisoned").pop()
    }

    fn return_to_pool(&self, ldap: Ldap) {
        let mut pool = self.pool.lock().expect("ldap pool lock poisoned");
        if pool.len() < self.config.pool_size {
            pool.push(ldap);
        }
    }

    fn unavailable(&self, step: &'static str, problem: String) -> LdapError {
        // A failed operation may mean every pooled connection is dead; start afresh.
        self.pool.lock().expect("ldap pool lock poisoned").clear();
        LdapError::Unavailable {
            url: self.config.url.clone(),
            step,
            problem,
        }
    }
}

/// The value of the first RDN of a DN: `devs` for `cn=devs,ou=groups,dc=example,dc=org`.
fn first_rdn_value(dn: &str) -> Option<String> {
    let first = dn.split(',').next()?;
    let (_, value) = first.split_once('=')?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

fn read_bind_password(config: &LdapConfig) -> Result<String, LdapError> {
    if let Some(path) = &config.bind_password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|error| LdapError::BindPassword(format!("{}: {error}", path.display())))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_string());
    }
    let name = config.bind_password_env.as_deref().unwrap_or_default();
    std::env::var(name)
        .map_err(|_| LdapError::BindPassword(format!("environment variable {name} is not set")))
}

fn client_tls_config(path: &PathBuf) -> Result<Arc<rustls::ClientConfig>, LdapError> {
    let ca_error = |problem: String| LdapError::Ca {
        path: path.clone(),
        problem,
    };
    let certificates = crate::tls::client_cert::read_pem_certificates(path)
        .map_err(|error| ca_error(error.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| ca_error(error.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| ca_error(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn default_user_filter() -> String {
    "(uid={user})".to_string()
}

fn default_name_attribute() -> String {
    "uid".to_string()
}

fn default_group_filter() -> String {
    "(member={dn})".to_string()
}

fn default_group_name() -> String {
    "cn".to_string()
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_pool_size() -> usize {
    4
}

fn default_cache_ttl() -> Duration {
    Duration::from_secs(60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> LdapConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    const BASE: &str = "{url: 'ldap://127.0.0.1:1', bind_dn: 'cn=svc', user_base: 'dc=x', ";

    #[test]
    fn config_problems_are_reported() {
        let good = config(&format!("{BASE}bind_password_env: PW}}"));
        assert!(good.problems().is_empty(), "{:?}", good.problems());
        assert_eq!(good.user_filter, "(uid={user})");

        let both = config(&format!(
            "{BASE}bind_password_env: PW, bind_password_file: f}}"
        ));
        assert_eq!(both.problems().len(), 1);
        let bad = config(&format!(
            "{BASE}bind_password_env: PW, user_filter: '(uid=x)', pool_size: 0}}"
        ));
        assert_eq!(bad.problems().len(), 2, "{:?}", bad.problems());
        assert!(
            serde_yaml_ng::from_str::<LdapConfig>(&format!("{BASE}bind_password: x}}")).is_err()
        );
    }

    #[test]
    fn group_names_come_from_the_first_rdn() {
        let dn = "cn=devs,ou=groups,dc=example,dc=org";
        assert_eq!(first_rdn_value(dn).as_deref(), Some("devs"));
        assert_eq!(first_rdn_value("nonsense"), None);
    }

    #[tokio::test]
    async fn empty_password_is_refused_before_any_connection() {
        std::env::set_var("BERTH_TEST_LDAP_PW", "x");
        let directory = Directory::new(config(&format!(
            "{BASE}bind_password_env: BERTH_TEST_LDAP_PW}}"
        )))
        .unwrap();
        // Port 1 refuses connections: reaching the directory would be Unavailable.
        assert!(matches!(
            directory.verify("alice", "").await,
            Err(LdapError::InvalidCredentials)
        ));
        assert!(matches!(
            directory.verify("alice", "pw").await,
            Err(LdapError::Unavailable { .. })
        ));
    }
}
