//! proxy.yaml: the one configuration file. It is read once into a [`Config`], checked whole,
//! and every problem is reported with the file, line and column so `serve` refuses to start
//! instead of running with a half-understood file. Unknown keys are errors: a silently
//! ignored typo in an access rule would be a security bug.
//!
//! Relative paths in the file are resolved against the file's own directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::acl::Rule;
use crate::auth::ldap::LdapConfig;
use crate::auth::token::TokenConfig;
use crate::auth::PasswordHash;
use crate::tls::client_cert::ClientAuthConfig;

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
    /// Ordered access rules; first match wins, nothing matching means deny. Default: none.
    #[serde(default)]
    pub acl: Vec<Rule>,
    /// Authentication settings beyond local users. Default: basic authentication only.
    #[serde(default)]
    pub auth: AuthConfig,
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

/// The storage backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub filesystem: FilesystemConfig,
}

/// Filesystem storage in the CNCF registry's layout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemConfig {
    /// The data directory (the CNCF registry's `rootdirectory`).
    pub root: PathBuf,
}

/// A problem with the configuration file, located as precisely as possible.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
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
        let invalid = |problem: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            problem,
        };

        let mut config: Config =
            serde_yaml_ng::from_str(text).map_err(|error| invalid(error.to_string()))?;
        let problems = config.check(text);
        if !problems.is_empty() {
            return Err(invalid(problems.join("\n  ")));
        }

        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// Checks that cannot be expressed in the types: every problem, not just the first.
    fn check(&self, text: &str) -> Vec<String> {
        let mut problems = self.tls.client_auth.problems();
        if let Some(ldap) = &self.auth.ldap {
            problems.extend(ldap.problems());
        }
        // Groups may also come from the directory or from certificates, so a rule may name a
        // group proxy.yaml does not define only when one of those is configured.
        let client_auth = &self.tls.client_auth;
        let outside_groups = self.auth.ldap.is_some()
            || (client_auth.enabled() && client_auth.groups_from.is_some());
        for (index, rule) in self.acl.iter().enumerate() {
            let at = locate_rule(text, index);
            if rule.actions.is_empty() {
                problems.push(format!("{at}acl rule {} grants no actions", index + 1));
            }
            if rule.repos.is_empty() {
                problems.push(format!("{at}acl rule {} names no repositories", index + 1));
            }
            if rule.users.is_empty() && rule.groups.is_empty() && !rule.anonymous {
                problems.push(format!(
                    "{at}acl rule {} applies to nobody: give it users, groups or anonymous: true",
                    index + 1
                ));
            }
            for group in &rule.groups {
                let mapped = client_auth
                    .groups
                    .values()
                    .any(|groups| groups.contains(group));
                if !self.groups.contains_key(group) && !outside_groups && !mapped {
                    problems.push(format!(
                        "{at}acl rule {} names unknown group {group:?}",
                        index + 1
                    ));
                }
            }
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
        resolve(&mut self.storage.filesystem.root);
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

/// "line N: " for the start of the `index`-th item under `acl:`, or "" when not found.
fn locate_rule(text: &str, index: usize) -> String {
    let mut in_acl = false;
    let mut seen = 0;
    for (number, line) in text.lines().enumerate() {
        if line.starts_with("acl:") {
            in_acl = true;
            continue;
        }
        if in_acl && !line.starts_with(' ') && !line.starts_with('-') && !line.trim().is_empty() {
            break;
        }
        if in_acl && line.trim_start().starts_with("- ") {
            if seen == index {
                return format!("line {}: ", number + 1);
            }
            seen += 1;
        }
    }
    String::new()
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
        assert!(error.contains("line 5"), "{error}");
        assert!(error.contains("pul"), "{error}");

        let error = load(&format!("{BASE}listn: 1\n")).unwrap_err().to_string();
        assert!(
            error.contains("unknown field") && error.contains("line 4"),
            "{error}"
        );

        let error = load(&format!("{BASE}users: {{a: plaintext}}\n"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("argon2"), "{error}");
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let yaml = format!(
            "{BASE}acl:\n  - {{groups: [nope], repos: [x], actions: []}}\n  \
             - {{repos: [y], actions: [pull]}}\n"
        );
        let error = load(&yaml).unwrap_err().to_string();
        assert!(error.contains("unknown group \"nope\""), "{error}");
        assert!(error.contains("grants no actions"), "{error}");
        assert!(
            error.contains("line 6: acl rule 2 applies to nobody"),
            "{error}"
        );
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
