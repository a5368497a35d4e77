//! The registry engine: the OCI Distribution operations over blobs, upload sessions,
//! manifests, tags and the catalog. It is a library the gateway calls once a request has
//! been authenticated and authorised; it knows nothing of HTTP headers or callers.
//!
//! It reads and writes through the [`Storage`] trait, in the keys [`Layout`] names, so the
//! same engine runs on a local directory or an S3 bucket. Every method does blocking
//! storage work: the gateway calls them on tokio's blocking pool, never on the async threads
//! that serve connections.

pub mod blob;
pub mod browse;
pub mod catalog;
pub mod delete;
pub mod error;
pub mod hash_state;
pub mod manifest;
pub mod name;
pub mod referrers;
pub mod tag;
pub mod upload;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::storage::fs::FsStorage;
use crate::storage::{Layout, Storage, StorageError};

pub use blob::ByteRange;
pub use error::RegistryError;
pub use name::{Digest, Reference, RepositoryName, Tag, UploadId};

/// The registry over one storage backend.
pub struct Registry {
    storage: Arc<dyn Storage>,
    layout: Layout,
    /// What may be deleted.
    delete: DeleteConfig,
    /// How long a presigned blob URL lives, when blob pulls are redirected to the store.
    redirect: Option<Duration>,
    /// Upload sessions a request is writing to now, in this process: a second writer is
    /// refused rather than interleaving its bytes with the first one's.
    busy_uploads: upload::BusyUploads,
}

/// `storage.delete` in proxy.yaml: whether manifests, tags and blobs may be deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteConfig {
    /// Whether `DELETE` on manifests, tags and blobs is served. Default `false`: they are
    /// refused with 405 `UNSUPPORTED`.
    #[serde(default)]
    pub enabled: bool,
    /// Whether a manifest that an index in the same repository still lists may be deleted.
    /// Default `false`: such a delete is refused with 409, so the index keeps no hole.
    #[serde(default)]
    pub referenced_manifests: bool,
}

impl Registry {
    /// A registry serving the data directory `root` (created when missing).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        Ok(Self::new(Arc::new(FsStorage::open(root)?)))
    }

    /// A registry over `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Registry {
            storage,
            layout: Layout::new(),
            delete: DeleteConfig::default(),
            redirect: None,
            busy_uploads: upload::BusyUploads::default(),
        }
    }

    /// The same registry answering blob pulls with a redirect to a URL presigned for
    /// `expiry`, when the backend can make one (off by default).
    pub fn with_redirect(mut self, expiry: Option<Duration>) -> Self {
        self.redirect = expiry;
        self
    }

    /// The same registry with deletion configured as `delete` says (off by default).
    pub fn with_delete(mut self, delete: DeleteConfig) -> Self {
        self.delete = delete;
        self
    }

    /// Whether `DELETE` is served at all (`storage.delete.enabled`).
    pub fn deletes_enabled(&self) -> bool {
        self.delete.enabled
    }

    /// Where this registry keeps things.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The backend content is kept in.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Reads a `link` object holding a digest; `None` when it does not exist or is not one.
    fn read_link(&self, key: &str) -> Result<Option<Digest>, StorageError> {
        let Some(bytes) = self.storage.read(key)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        Ok(Digest::parse(text.trim()).ok())
    }

    /// Writes a `link` object pointing at `digest`.
    fn write_link(&self, key: &str, digest: &Digest) -> Result<(), StorageError> {
        self.storage.write(key, digest.to_string().as_bytes())
    }

    /// The digests named by `<algorithm>/<hex>` folders below `folder` (a `_layers`,
    /// revisions or referrers folder), sorted; folders whose names are not a digest are
    /// skipped.
    fn digests_below(&self, folder: &str) -> Result<Vec<Digest>, StorageError> {
        let mut digests = Vec::new();
        for algorithm in self.storage.list(folder)? {
            for hex in self.storage.list(&format!("{folder}/{algorithm}"))? {
                if let Ok(digest) = Digest::parse(&format!("{algorithm}:{hex}")) {
                    digests.push(digest);
                }
            }
        }
        Ok(digests)
    }
}
