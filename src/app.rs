//! Wiring: builds the Pingora server from a [`Config`] (the HTTPS registry service and the
//! plain-HTTP metrics service), starts the live-reload watchers, and runs it. No request
//! logic lives here.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use http::StatusCode;
use pingora::apps::{HttpServerApp, ReusedHttpStream};
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::http::ServerSession;
use pingora::server::configuration::ServerConf;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::listening::Service;

use crate::auth::ldap::LdapError;
use crate::config::{Config, ConfigError};
use crate::gateway::{respond, Gateway};
use crate::live::watch::{self, WatchError};
use crate::live::{Reloader, Snapshot};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::storage::fs::FsStorage;
use crate::storage::s3::{S3SetupError, S3Storage};
use crate::storage::Storage;
use crate::tls::client_cert::{ClientCertMode, PeerCertificateCallback, ReloadingClientVerifier};
use crate::tls::reload::{self, CertificateWatcher, ReloadTargets, ReloadingCertificate};
use crate::tls::{self, TlsError};

/// Seconds between SIGTERM and closing the listeners.
const SHUTDOWN_GRACE_SECONDS: u64 = 1;
/// Seconds requests in flight get to finish after that; a guess at a slow layer upload.
const SHUTDOWN_DRAIN_SECONDS: u64 = 30;

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Live(#[from] crate::live::ReloadError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error(transparent)]
    Ldap(#[from] LdapError),
    #[error("cannot open the data directory {path}: {source}")]
    Storage {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    S3(#[from] S3SetupError),
    #[error("cannot set up the HTTPS listener: {0}")]
    Listener(String),
}

/// Loads the config at `config_path` and serves until the process is stopped.
///
/// # Errors
/// [`StartError`] for anything that prevents starting; once running it does not return.
pub fn serve(config_path: &Path, use_embedded_default: bool) -> Result<(), StartError> {
    let config = if use_embedded_default && !config_path.exists() {
        tracing::warn!(
            path = %config_path.display(),
            "no config file; running on the built-in sample configuration"
        );
        Config::parse(config_path, crate::config::EMBEDDED_DEFAULT)?
    } else {
        Config::load(config_path)?
    };

    if let Some(dev_ca) = tls::ensure_dev_certificates(&config.tls.cert, &config.tls.key)? {
        print_trust_instructions(&dev_ca.ca_cert, &config);
    }
    let certified_key = tls::load_certified_key(&config.tls.cert, &config.tls.key)?;

    let (storage, location) = open_storage(&config)?;
    let redirect = config.storage.s3.as_ref().map(|s3| &s3.redirect);
    let registry = Registry::new(storage)
        .with_delete(config.storage.delete)
        .with_redirect(redirect.filter(|r| r.enabled).map(|r| r.expiry));
    let metrics = Metrics::register();
    metrics.config_loaded(1, std::time::SystemTime::now());
    let live = Arc::new(ArcSwap::from_pointee(Snapshot::build(&config, 1)?));
    let gateway = Gateway::new(Arc::new(registry), live.clone(), metrics.clone());

    // Live reload, unless running on the built-in sample (there is no file to watch).
    if config_path.exists() {
        let reloader = Reloader::new(
            config_path.to_path_buf(),
            config.clone(),
            live,
            metrics.clone(),
        );
        watch::spawn(Arc::new(reloader))?;
    }

    let threads = config
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    // SIGTERM stops accepting at once and gives requests in flight up to half a minute to
    // finish (Pingora's defaults wait five minutes first, for zero-downtime upgrades Berth does
    // not do). SIGINT stops at once.
    let server_conf = ServerConf {
        threads,
        grace_period_seconds: Some(SHUTDOWN_GRACE_SECONDS),
        graceful_shutdown_timeout_seconds: Some(SHUTDOWN_DRAIN_SECONDS),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, server_conf);
    server.bootstrap();

    let mut registry_service = Service::new("berth registry".to_string(), gateway);
    let (tls_settings, _watcher) = listener_tls(&config, certified_key)?;
    registry_service.add_tls_with_settings(&config.listen.to_string(), None, tls_settings);
    registry_service.threads = Some(threads);

    let mut metrics_service =
        Service::new("berth metrics".to_string(), MetricsEndpoint { metrics });
    metrics_service.add_tcp(&config.metrics_listen.to_string());
    metrics_service.threads = Some(1);

    server.add_service(registry_service);
    server.add_service(metrics_service);
    tracing::info!(
        listen = %config.listen, metrics_listen = %config.metrics_listen,
        storage = %location, users = config.users.len(), rules = config.acl.len(), threads,
        "berth serving"
    );
    if config.users.is_empty() && config.auth.ldap.is_none() && !config.tls.client_auth.enabled() {
        tracing::warn!("no users are configured: only anonymous access rules can match");
    }
    if let Some(ldap) = &config.auth.ldap {
        if !ldap.uses_tls() {
            let url = &ldap.url;
            tracing::warn!(%url, "ldap without TLS: passwords cross the network in clear");
        }
    }
    server.run_forever()
}

/// The listener's TLS settings: the server certificate and, when configured, the client
/// certificate verifier and the hook that reads verified certificates; plus the watcher that
/// reloads both when their files change (it must live as long as the server).
fn listener_tls(
    config: &Config,
    certified_key: Arc<rustls::sign::CertifiedKey>,
) -> Result<(TlsSettings, CertificateWatcher), StartError> {
    let client_auth = Arc::new(config.tls.client_auth.clone());
    let callback = PeerCertificateCallback::new(client_auth.clone());
    let mut settings = TlsSettings::with_callbacks(Box::new(callback))
        .map_err(|error| StartError::Listener(error.to_string()))?;

    let certificate = Arc::new(ReloadingCertificate::new(certified_key));
    settings.set_cert_resolver(certificate.clone());

    let client = if client_auth.enabled() {
        let mandatory = client_auth.mode == ClientCertMode::Required;
        let verifier = client_auth.load_verifier()?;
        let reloading = Arc::new(ReloadingClientVerifier::new(verifier, mandatory));
        settings.set_client_cert_verifier(reloading.clone());
        tracing::info!(
            mode = ?client_auth.mode, policy = ?client_auth.policy,
            subject = ?client_auth.subject, "client certificates on"
        );
        Some((client_auth, reloading))
    } else {
        None
    };

    let watcher = reload::watch(ReloadTargets {
        cert: config.tls.cert.clone(),
        key: config.tls.key.clone(),
        certificate,
        client,
    })?;
    Ok((settings, watcher))
}

/// The configured backend, and where it keeps things for the startup log line.
fn open_storage(config: &Config) -> Result<(Arc<dyn Storage>, String), StartError> {
    if let Some(s3) = &config.storage.s3 {
        let location = format!("s3://{}/{}", s3.bucket, s3.root.trim_matches('/'));
        return Ok((Arc::new(S3Storage::new(s3)?), location));
    }
    let root = config
        .storage
        .filesystem
        .as_ref()
        .map(|filesystem| filesystem.root.clone())
        .expect("Config::check admits exactly one storage backend");
    let storage = FsStorage::open(&root).map_err(|source| StartError::Storage {
        path: root.clone(),
        source,
    })?;
    Ok((Arc::new(storage), root.display().to_string()))
}

fn print_trust_instructions(ca_cert: &Path, config: &Config) {
    let ca = ca_cert
        .canonicalize()
        .unwrap_or_else(|_| ca_cert.to_path_buf());
    let port = config.listen.port();
    eprintln!(
        "Created a development CA and a server certificate for localhost and 127.0.0.1.\n\
         To make docker trust it, run:\n\n\
         \x20 sudo mkdir -p /etc/docker/certs.d/localhost:{port}\n\
         \x20 sudo mkdir -p /etc/docker/certs.d/127.0.0.1:{port}\n\
         \x20 sudo cp {ca} /etc/docker/certs.d/localhost:{port}/ca.crt\n\
         \x20 sudo cp {ca} /etc/docker/certs.d/127.0.0.1:{port}/ca.crt\n",
        ca = ca.display()
    );
}

/// Serves `GET /metrics` on the plain-HTTP metrics listener.
struct MetricsEndpoint {
    metrics: Metrics,
}

#[async_trait]
impl HttpServerApp for MetricsEndpoint {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        _shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        if !matches!(session.read_request().await, Ok(true)) {
            return None;
        }
        let (status, body) = if session.req_header().uri.path() == "/metrics" {
            (StatusCode::OK, self.metrics.render())
        } else {
            (
                StatusCode::NOT_FOUND,
                b"not found; metrics are at /metrics\n".to_vec(),
            )
        };
        let mut head = respond::header(status);
        respond::set(&mut head, "Content-Type", "text/plain; version=0.0.4");
        respond::set(&mut head, "Content-Length", body.len());
        session.set_keepalive(None);
        if session.write_response_header(Box::new(head)).await.is_ok() {
            let _ = session.write_response_body(Bytes::from(body), true).await;
        }
        let _ = session.finish().await;
        None
    }
}
