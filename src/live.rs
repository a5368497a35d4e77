//! What can change while Berth serves, and how it changes.
//!
//! The gateway reads one [`Snapshot`] at the start of each request and uses it to the end, so
//! a request runs under exactly one configuration. A [`Reloader`] builds the next snapshot
//! from proxy.yaml, on a change to the file (or to the certificate and key it names) and on
//! `SIGHUP`, and swaps it in whole; requests already running keep the one they started with.
//!
//! - Change live: `users`, `groups`, `acl`, `public`, `immutable_tags`, `realm`, `audit`,
//!   `auth` (token settings and keys),
//!   and the certificate and key that `tls` names.
//! - Need a restart: `listen`, `metrics_listen`, `storage`, `threads`.
//!
//! A reload that finds any problem applies nothing: it logs every problem with file, line and
//! column, counts a failed reload, and the running snapshot stays. A changed restart-only
//! setting does not fail the reload; it is logged as needing a restart, and the rest applies.

pub mod watch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::acl::{Action, Decision, Policy};
use crate::audit::{AuditError, AuditEvent, AuditLog};
use crate::auth::ldap::{Directory, LdapError};
use crate::auth::token::{TokenError, TokenService};
use crate::auth::{Authenticator, Identity};
use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;
use crate::registry::Digest;
use crate::tls::{self, TlsError};

/// Everything a request needs that a reload may change.
pub struct Snapshot {
    /// 1 for the configuration `serve` started with, then one more per applied reload.
    pub generation: u64,
    /// Users, their password hashes and groups. A new snapshot has a new verifier, so a
    /// removed user or changed password stops working at once, cache or not.
    pub auth: Authenticator,
    /// The access rules, public repositories and protected tags.
    pub policy: Policy,
    /// Realm named in the basic-auth challenge.
    pub realm: String,
    /// Where audit events go.
    pub audit: AuditLog,
    /// The token service, when token authentication is on.
    pub tokens: Option<Arc<TokenService>>,
}

/// One audited request, as the gateway or the web UI saw it; [`Snapshot::audit`] adds the
/// rule text and the generation.
pub struct Audited<'a> {
    /// `push`, `tag_move`, `delete` or `denied`.
    pub event: &'static str,
    pub identity: &'a Identity,
    /// The client's IP address.
    pub client: &'a str,
    pub repository: &'a str,
    /// The tag or digest the request named.
    pub reference: Option<String>,
    /// The manifest or blob stored or removed, when known.
    pub digest: Option<&'a Digest>,
    /// For a tag move, what the tag named before.
    pub previous: Option<&'a Digest>,
    pub action: Action,
    pub decision: Decision,
}

impl Snapshot {
    /// Writes one audit event, naming the rule behind `audited.decision` as this snapshot's
    /// policy words it.
    pub fn audit(&self, audited: Audited<'_>) {
        let basis = audited.decision.basis();
        self.audit.record(AuditEvent {
            time: String::new(),
            event: audited.event,
            user: audited.identity.user.as_deref(),
            groups: &audited.identity.groups,
            auth: audited.identity.method.as_str(),
            client: audited.client,
            repository: audited.repository,
            reference: audited.reference,
            digest: audited.digest.map(Digest::to_string),
            previous: audited.previous.map(Digest::to_string),
            action: audited.action.as_str(),
            decision: audited.decision.as_str(),
            rule: basis.to_string(),
            rule_text: self.policy.text_of(basis),
            config_generation: self.generation,
        });
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Why a reload was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// proxy.yaml is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The certificate or key it names cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The audit log it names cannot be opened.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The token signing key or a trusted issuer's key cannot be used.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The LDAP settings cannot be used.
    #[error(transparent)]
    Ldap(#[from] LdapError),
}

impl Snapshot {
    /// Builds the live part of `config`.
    ///
    /// # Errors
    /// [`ReloadError`] when the audit file cannot be opened or a token key is unusable.
    pub fn build(config: &Config, generation: u64) -> Result<Snapshot, ReloadError> {
        let tokens = match config.auth.token.clone().filter(|token| token.enabled) {
            Some(token_config) => Some(Arc::new(TokenService::load(token_config)?)),
            None => None,
        };
        let directory = match config.auth.ldap.clone() {
            Some(ldap) => Some(Directory::new(ldap)?),
            None => None,
        };
        Ok(Snapshot {
            generation,
            auth: Authenticator::new(
                config.users.clone(),
                &config.groups,
                tokens.clone(),
                directory,
                config.tls.client_auth.policy,
            ),
            policy: Policy::new(
                config.acl.clone(),
                config.public.clone(),
                config.immutable_tags.clone(),
            ),
            realm: config.realm.clone(),
            audit: AuditLog::open(&config.audit)?,
            tokens,
        })
    }
}

/// Validates a config file as a reload would, without applying anything: `berth check`.
///
/// # Errors
/// The first kind of failure a reload would report, with all of its problems.
pub fn check(path: &std::path::Path) -> Result<Config, ReloadError> {
    let config = Config::load(path)?;
    // A missing certificate is made for development at startup; any other file must load.
    if config.tls.cert.exists() {
        tls::load_certified_key(&config.tls.cert, &config.tls.key)?;
    }
    // What building the snapshot would open, checked without creating anything.
    crate::audit::check(&config.audit)?;
    if let Some(token) = config.auth.token.as_ref().filter(|token| token.enabled) {
        TokenService::check(token)?;
    }
    Ok(config)
}

/// Rebuilds the live snapshot from the config file.
pub struct Reloader {
    path: PathBuf,
    /// The configuration `serve` started with: its restart-only settings are the ones in force.
    startup: Config,
    live: Arc<ArcSwap<Snapshot>>,
    metrics: Metrics,
    /// Reloads run one at a time, whatever triggered them.
    running: Mutex<()>,
}

impl Reloader {
    /// A reloader for the config at `path`, which `serve` started with as `startup`.
    pub fn new(
        path: PathBuf,
        startup: Config,
        live: Arc<ArcSwap<Snapshot>>,
        metrics: Metrics,
    ) -> Self {
        Reloader {
            path,
            startup,
            live,
            metrics,
            running: Mutex::new(()),
        }
    }

    /// Reads, validates and applies the config file; logs and counts the outcome. Returns
    /// the new generation.
    ///
    /// # Errors
    /// [`ReloadError`] when anything is wrong; then nothing was applied.
    pub fn reload(&self) -> Result<u64, ReloadError> {
        let _one_at_a_time = self.running.lock().expect("reload lock poisoned");
        match self.prepare() {
            Ok(snapshot) => {
                let generation = snapshot.generation;
                self.live.store(Arc::new(snapshot));
                self.metrics.config_reloaded(generation, SystemTime::now());
                Ok(generation)
            }
            Err(error) => {
                self.metrics.config_reload_failed();
                Err(error)
            }
        }
    }

    /// Everything that can fail, before anything is swapped.
    fn prepare(&self) -> Result<Snapshot, ReloadError> {
        let config = Config::load(&self.path)?;
        for setting in config.restart_only_changes(&self.startup) {
            tracing::warn!(
                setting, path = %self.path.display(),
                "setting changed in the config file needs a restart; keeping the running value"
            );
        }
        let generation = self.live.load().generation + 1;
        let snapshot = Snapshot::build(&config, generation)?;
        tracing::info!(
            generation, users = config.users.len(), rules = config.acl.len(),
            path = %self.path.display(), "configuration reloaded"
        );
        Ok(snapshot)
    }

    /// The files whose change should trigger a reload: the config and the TLS files.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        vec![
            self.path.clone(),
            self.startup.tls.cert.clone(),
            self.startup.tls.key.clone(),
        ]
    }
}
