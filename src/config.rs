//! proxy.yaml: the one configuration file. It is read into a [`Config`], checked whole, and
//! every problem is reported with the file, line and column, so `serve` refuses to start and
//! a live reload refuses to apply instead of running with a half-understood file. Unknown keys
//! are errors: a silently ignored typo in an access rule would be a security bug.
//!
//! Relative paths in the file are resolved against the file's own directory. Which settings
//! apply live and which need a restart is decided in [`crate::live`].

pub mod locate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::acl::{RepositoryPattern, Rule, TagRule};
use crate::audit::AuditConfig;
use crate::auth::ldap::LdapConfig;
use crate::auth::token::TokenConfig;
use crate::auth::PasswordHash;
use crate::registry::DeleteConfig;
use crate::storage::s3::{S3Config, MIN_PART_SIZE};
use crate::tls::client_cert::ClientAuthConfig;
use locate::{Position, Positions};

/// The sample proxy.yaml, built into the binary: `berth serve` runs on it when started
/// without a config file in the working directory.
pub const EMBEDDED_DEFAULT: &str = include_str!("../proxy.yaml");

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTPS address of the registry. Required.
    pub listen: SocketAddr,
    /// Plain-HTTP address of `/metrics`. Default `127.0.0.1:9090`.
    #[serde(default = "default_metrics_listen")]
    pub metrics_listen: SocketAddr,
    /// Server certificate and key (PEM), generated for development when the files are
    /// missing; and client certificates (mutual TLS).
    pub tls: TlsConfig,
    /// Where content is stored.
    pub storage: StorageConfig,
    /// Local users: name to argon2id PHC string. Default: none.
    #[serde(default)]
    pub users: BTreeMap<String, PasswordHash>,
    /// Groups: name to member user names (local, directory or certificate users). Default:
    /// none.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Ordered access rules; see [`crate::acl`]. Default: none, so everything is refused.
    #[serde(default)]
    pub acl: Vec<Rule>,
    /// Authentication settings beyond local users. Default: basic authentication only.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Repository patterns anyone may pull from, signed in or not, when no rule decided.
    /// Default: none.
    #[serde(default)]
    pub public: Vec<RepositoryPattern>,
    /// Tags that can be pushed once and then never moved or deleted. Default: none.
    #[serde(default)]
    pub immutable_tags: Vec<TagRule>,
    /// Where the audit log goes. Default: nowhere (no audit log).
    #[serde(default)]
    pub audit: AuditConfig,
    /// Realm named in the basic-auth challenge. Default `berth`.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Worker threads serving connections. Default: the number of CPUs.
    #[serde(default)]
    pub threads: Option<usize>,
}

/// How callers authenticate besides basic credentials.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer tokens: Berth as a Docker token server. Default: off.
    #[serde(default)]
    pub token: Option<TokenConfig>,
    /// Passwords of users not in `users:` checked against LDAP. Default: off.
    #[serde(default)]
    pub ldap: Option<LdapConfig>,
}

/// Certificate and key for the HTTPS listener, and what it asks of clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; reloaded when the file changes.
    pub cert: PathBuf,
    /// PEM private key; reloaded when the file changes.
    pub key: PathBuf,
    /// Client certificates (mutual TLS). Default: not asked for.
    #[serde(default)]
    pub client_auth: ClientAuthConfig,
}

/// The storage backend: exactly one of `filesystem` and `s3`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Filesystem storage. Default: none.
    #[serde(default)]
    pub filesystem: Option<FilesystemConfig>,
    /// S3-compatible object storage. Default: none.
    #[serde(default)]
    pub s3: Option<S3Config>,
    /// Whether content may be deleted. Default: deletion off.
    #[serde(default)]
    pub delete: DeleteConfig,
}

/// Filesystem storage in the CNCF registry's layout.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemConfig {
    /// The data directory (the CNCF registry's `rootdirectory`).
    pub root: PathBuf,
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration: every problem found.
    #[error("{}", list_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// One thing wrong in the file, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Line and column, when known.
    pub position: Option<Position>,
    /// What is wrong, in the admin's words.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(Position { line, column }) => write!(f, "{line}:{column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// `FILE:LINE:COLUMN: problem`, one problem per line, the way compilers report.
fn list_problems(path: &Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|problem| format!("{}:{problem}", path.display()))
        .collect();
    lines.join("\n")
}

fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

fn default_realm() -> String {
    "berth".to_string()
}

impl Config {
    /// Reads and checks the file at `path`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, and the line and column where the parser knows them.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Checks `text` as if read from `path` (which names it in errors and anchors relative
    /// paths).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        };

        let mut config: Config =
            serde_yaml_ng::from_str(text).map_err(|error| invalid(vec![syntax_problem(&error)]))?;
        let problems = config.check(&Positions::of(text));
        if !problems.is_empty() {
            return Err(invalid(problems));
        }

        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// The settings that differ from `running` but only take effect on a restart, by their
    /// names in proxy.yaml.
    pub fn restart_only_changes(&self, running: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.listen != running.listen {
            changed.push("listen");
        }
        if self.metrics_listen != running.metrics_listen {
            changed.push("metrics_listen");
        }
        if self.storage != running.storage {
            changed.push("storage");
        }
        if self.threads != running.threads {
            changed.push("threads");
        }
        changed
    }

    /// Checks that cannot be expressed in the types: every problem, not just the first.
    fn check(&self, positions: &Positions) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut problem = |paths: &[&str], message: String| {
            problems.push(Problem {
                position: positions.find(paths.iter().copied()),
                message,
            })
        };

        // The realm goes into a quoted header value.
        let printable = |c: char| c.is_ascii_graphic() || c == ' ';
        if !self
            .realm
            .chars()
            .all(|c| printable(c) && c != '"' && c != '\\')
        {
            problem(
                &["realm"],
                "realm may hold only printable ASCII without quotes or backslashes".into(),
            );
        }

        for message in self.tls.client_auth.problems() {
            problem(&["tls.client_auth", "tls"], message);
        }
        if let Some(ldap) = &self.auth.ldap {
            for message in ldap.problems() {
                problem(&["auth.ldap", "auth"], message);
            }
        }
        // Groups may also come from the directory or from certificates, so a rule may name a
        // group proxy.yaml does not define only when one of those is configured.
        let client_auth = &self.tls.client_auth;
        let outside_groups = self.auth.ldap.is_some()
            || (client_auth.enabled() && client_auth.groups_from.is_some());

        for (index, rule) in self.acl.iter().enumerate() {
            let (at, number) = (format!("acl[{index}]"), index + 1);
            if rule.actions.is_empty() && rule.deny.is_empty() {
                let message = format!(
                    "acl rule {number} has no actions: list what it allows under actions, \
                     or what it refuses under deny"
                );
                problem(&[&format!("{at}.actions"), &at], message);
            }
            for action in rule.actions.iter().filter(|a| rule.deny.contains(a)) {
                let message = format!("acl rule {number} both allows and denies {action}");
                problem(&[&format!("{at}.deny"), &at], message);
            }
            if rule.repos.is_empty() {
                let message = format!("acl rule {number} names no repositories");
                problem(&[&format!("{at}.repos"), &at], message);
            }
            if rule.users.is_empty() && rule.groups.is_empty() && !rule.anonymous {
                let message = format!(
                    "acl rule {number} applies to nobody: give it users, groups or anonymous: true"
                );
                problem(&[&at], message);
            }
            for (item, group) in rule.groups.iter().enumerate() {
                let mapped = client_auth
                    .groups
                    .values()
                    .any(|groups| groups.contains(group));
                if !self.groups.contains_key(group) && !outside_groups && !mapped {
                    let message = format!("acl rule {number} names unknown group {group:?}");
                    problem(&[&format!("{at}.groups[{item}]"), &at], message);
                }
            }
        }

        if self.storage.filesystem.is_some() == self.storage.s3.is_some() {
            problem(
                &["storage"],
                "storage needs exactly one backend: filesystem or s3".to_string(),
            );
        }
        if let Some(s3) = &self.storage.s3 {
            if s3.secret_access_key.is_some() && s3.secret_access_key_file.is_some() {
                let message = "storage.s3 takes secret_access_key or secret_access_key_file, \
                               not both"
                    .to_string();
                problem(&["storage.s3"], message);
            }
            if s3.part_size < MIN_PART_SIZE {
                let message = format!(
                    "storage.s3.part_size must be at least 5 MiB ({MIN_PART_SIZE}), not {}",
                    s3.part_size
                );
                problem(&["storage.s3.part_size", "storage.s3"], message);
            }
        }

        for (index, rule) in self.immutable_tags.iter().enumerate() {
            let at = format!("immutable_tags[{index}]");
            if rule.repos.is_empty() || rule.tags.is_empty() {
                let message = format!(
                    "immutable_tags rule {} needs both repos and tags",
                    index + 1
                );
                problem(&[&at], message);
            }
        }
        if self.audit.file.is_some() && self.audit.stdout {
            problem(
                &["audit"],
                "audit takes either file or stdout, not both".to_string(),
            );
        }
        problems
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        resolve(&mut self.tls.cert);
        resolve(&mut self.tls.key);
        if let Some(filesystem) = &mut self.storage.filesystem {
            resolve(&mut filesystem.root);
        }
        if let Some(s3) = &mut self.storage.s3 {
            for path in [&mut s3.ca_file, &mut s3.secret_access_key_file] {
                path.iter_mut().for_each(&resolve);
            }
        }
        self.audit.file.iter_mut().for_each(|p| resolve(p));
        let client_auth = &mut self.tls.client_auth;
        client_auth.ca.iter_mut().for_each(|p| resolve(p));
        client_auth.crl.iter_mut().for_each(|p| resolve(p));
        if let Some(ldap) = &mut self.auth.ldap {
            ldap.ca.iter_mut().for_each(|p| resolve(p));
            ldap.bind_password_file.iter_mut().for_each(|p| resolve(p));
        }
        if let Some(token) = &mut self.auth.token {
            resolve(&mut token.key);
            for issuer in &mut token.trusted_issuers {
                issuer.public_key.iter_mut().for_each(|p| resolve(p));
                issuer.jwks.iter_mut().for_each(|p| resolve(p));
            }
        }
    }
}

/// A parser error as a [`Problem`]: its message without the trailing "at line L column C",
/// which the position carries instead.
fn syntax_problem(error: &serde_yaml_ng::Error) -> Problem {
    let text = error.to_string();
    let Some(location) = error.location() else {
        return Problem {
            position: None,
            message: text,
        };
    };
    let (line, column) = (location.line(), location.column());
    let suffix = format!(" at line {line} column {column}");
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
    Problem {
        position: Some(Position { line, column }),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.yaml");
        std::fs::write(&path, yaml).unwrap();
        Config::load(&path)
    }

    const BASE: &str =
        "listen: 127.0.0.1:5443\ntls: {cert: c, key: k}\nstorage: {filesystem: {root: d}}\n";

    #[test]
    fn the_shipped_sample_loads() {
        let config = Config::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proxy.yaml"
        )))
        .unwrap();
        assert_eq!(config.listen.port(), 5443);
        assert!(
            config.users.is_empty(),
            "the sample must ship no working credential"
        );
    }

    #[test]
    fn errors_name_line_and_problem() {
        let error = load(&format!(
            "{BASE}acl:\n  - {{users: [a], repos: [x], actions: [pul]}}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("proxy.yaml:5:"), "{error}");
        assert!(error.contains("pul"), "{error}");

        let error = load(&format!("{BASE}listn: 1\n")).unwrap_err().to_string();
        assert!(
            error.contains("unknown field") && error.contains("proxy.yaml:4:1: "),
            "{error}"
        );

        let error = load(&format!("{BASE}users: {{a: plaintext}}\n"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("argon2"), "{error}");

        let error = load(&format!(
            "{BASE}acl:\n  - {{users: [a], repos: [\"team/**b\"], actions: [pull]}}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("proxy.yaml:5:") && error.contains("team/**b"),
            "{error}"
        );
    }

    #[test]
    fn storage_takes_exactly_one_backend() {
        let s3 = "listen: 127.0.0.1:5443\ntls: {cert: c, key: k}\n\
                  storage: {s3: {bucket: b, endpoint: \"http://127.0.0.1:3900\", \
                  path_style: true, secret_access_key: hidden}}\n";
        let config = load(s3).unwrap();
        let bucket = config.storage.s3.as_ref().unwrap();
        assert_eq!(bucket.region, "us-east-1");
        assert!(!format!("{config:?}").contains("hidden"), "secret in Debug");

        let both = s3.replace("{s3:", "{filesystem: {root: d}, s3:");
        let error = load(&both).unwrap_err().to_string();
        assert!(error.contains("exactly one backend"), "{error}");
        let neither = "listen: 127.0.0.1:5443\ntls: {cert: c, key: k}\nstorage: {}\n";
        let error = load(neither).unwrap_err().to_string();
        assert!(error.contains("exactly one backend"), "{error}");
        let small = s3.replace("path_style", "part_size: 1024, path_style");
        let error = load(&small).unwrap_err().to_string();
        assert!(error.contains("part_size"), "{error}");
    }

    #[test]
    fn restart_only_settings_are_named() {
        let running = Config::parse(Path::new("p.yaml"), BASE).unwrap();
        let edited = BASE.replace("5443", "5444") + "threads: 3\nrealm: other\n";
        let edited = Config::parse(Path::new("p.yaml"), &edited).unwrap();
        assert_eq!(edited.restart_only_changes(&running), ["listen", "threads"]);
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let yaml = format!(
            "{BASE}acl:\n  - {{groups: [nope], repos: [x], actions: []}}\n  \
             - {{repos: [y], actions: [pull]}}\n  \
             - users: [a]\n    repos: [z]\n    actions: [pull]\n    deny: [pull]\n"
        );
        let error = load(&yaml).unwrap_err().to_string();
        let lines: Vec<&str> = error.lines().collect();
        let expected = [
            ":5:34: acl rule 1 has no actions",
            ":5:15: acl rule 1 names unknown group \"nope\"",
            ":6:5: acl rule 2 applies to nobody",
            ":10:5: acl rule 3 both allows and denies pull",
        ];
        assert_eq!(lines.len(), expected.len(), "{error}");
        for (line, want) in lines.iter().zip(expected) {
            assert!(line.contains(want), "{line:?} lacks {want:?}");
        }
    }

    #[test]
    fn client_auth_and_ldap_sections_are_checked() {
        let yaml = "listen: 127.0.0.1:5443\nstorage: {filesystem: {root: d}}\n\
            tls: {cert: c, key: k, client_auth: {mode: required, groups_from: ou}}\n\
            auth: {ldap: {url: 'ldap://h', bind_dn: x, user_base: y, user_filter: '(uid=x)'}}\n\
            acl:\n  - {groups: [builders], repos: [x], actions: [pull]}\n";
        let error = load(yaml).unwrap_err().to_string();
        assert!(error.contains("client_auth.ca"), "{error}");
        assert!(error.contains("bind_password_file"), "{error}");
        assert!(error.contains("{user}"), "{error}");
        assert!(!error.contains("unknown group"), "{error}");

        let yaml = "listen: 127.0.0.1:5443\nstorage: {filesystem: {root: d}}\n\
            tls: {cert: c, key: k, client_auth: {mode: sometimes}}\n";
        let error = load(yaml).unwrap_err().to_string();
        assert!(error.contains("sometimes"), "{error}");
    }
}
