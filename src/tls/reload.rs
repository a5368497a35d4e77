//! Hot reload of the listener's TLS material: the server certificate and key, and the client
//! CA bundles and CRLs. A file watcher (inotify through `notify`) notices a change, the new
//! files are loaded and checked, and the new certificate or verifier is swapped in whole.
//! Handshakes already done keep what they used, so no connection is dropped; a file that
//! does not load is logged and the old material stays in use.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::client_cert::{ClientAuthConfig, ReloadingClientVerifier};
use super::TlsError;

/// How long to wait after a change for the rest of a multi-file update (certificate, then
/// key) before loading. Picked, not measured: editors and cert-manager write within it.
const SETTLE: Duration = Duration::from_millis(300);

/// The server certificate, swapped whole when its files change.
#[derive(Debug)]
pub struct ReloadingCertificate {
    current: ArcSwap<CertifiedKey>,
}

impl ReloadingCertificate {
    pub fn new(initial: Arc<CertifiedKey>) -> Self {
        ReloadingCertificate {
            current: ArcSwap::new(initial),
        }
    }

    /// Serves `certified` to handshakes from now on.
    pub fn swap(&self, certified: Arc<CertifiedKey>) {
        self.current.store(certified);
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// What to reload and where it goes.
pub struct ReloadTargets {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub certificate: Arc<ReloadingCertificate>,
    /// The client certificate settings and verifier, when client certificates are on.
    pub client: Option<(Arc<ClientAuthConfig>, Arc<ReloadingClientVerifier>)>,
}

/// Keeps the file watcher alive; reloading stops when it is dropped.
pub struct CertificateWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Watches every file of `targets` and reloads on change.
///
/// The directories holding the files are watched rather than the files, so that a file
/// replaced by a rename (as most tools write) is still seen.
///
/// # Errors
/// [`TlsError::Watch`] when the watcher cannot be set up.
pub fn watch(targets: ReloadTargets) -> Result<CertificateWatcher, TlsError> {
    let mut files: BTreeSet<PathBuf> = [targets.cert.clone(), targets.key.clone()].into();
    if let Some((config, _)) = &targets.client {
        files.extend(config.watched_files());
    }
    let files: BTreeSet<PathBuf> = files.iter().map(|path| absolute(path)).collect();
    let directories: BTreeSet<PathBuf> = files
        .iter()
        .filter_map(|path| path.parent().map(Path::to_path_buf))
        .collect();

    let (changed, changes) = mpsc::channel::<()>();
    let watched = files.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        if event.paths.iter().any(|path| watched.contains(path)) {
            let _ = changed.send(());
        }
    })
    .map_err(|error| TlsError::Watch(error.to_string()))?;
    for directory in &directories {
        watcher
            .watch(directory, RecursiveMode::NonRecursive)
            .map_err(|error| TlsError::Watch(format!("{}: {error}", directory.display())))?;
    }

    std::thread::Builder::new()
        .name("berth-tls-reload".into())
        .spawn(move || {
            while changes.recv().is_ok() {
                std::thread::sleep(SETTLE);
                while changes.try_recv().is_ok() {}
                reload(&targets);
            }
        })
        .map_err(|error| TlsError::Watch(error.to_string()))?;
    Ok(CertificateWatcher { _watcher: watcher })
}

/// Loads everything again, swapping in what loads and keeping the old for what does not.
fn reload(targets: &ReloadTargets) {
    match super::load_certified_key(&targets.cert, &targets.key) {
        Ok(certified) => {
            targets.certificate.swap(certified);
            tracing::info!(cert = %targets.cert.display(), "server certificate reloaded");
        }
        Err(error) => {
            tracing::error!(%error, "failed to reload certificate; the old one stays in use");
        }
    }
    let Some((config, verifier)) = &targets.client else {
        return;
    };
    match config.load_verifier() {
        Ok(loaded) => {
            verifier.swap(loaded);
            tracing::info!("client CA bundle and CRLs reloaded");
        }
        Err(error) => {
            tracing::error!(
                %error,
                "failed to reload client CA bundle or CRL; the old ones stay in use"
            );
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
