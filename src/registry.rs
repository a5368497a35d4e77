//! The registry engine: the OCI Distribution operations over blobs, upload sessions,
//! manifests, tags and the catalog. It is a library the gateway calls once a request has
//! been authenticated and authorised; it knows nothing of HTTP headers or callers.
//!
//! Every method does blocking filesystem work: the gateway calls them on tokio's blocking
//! pool, never on the async threads that serve connections.

pub mod blob;
pub mod browse;
pub mod catalog;
pub mod delete;
pub mod error;
pub mod manifest;
pub mod name;
pub mod referrers;
pub mod tag;
pub mod upload;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde::Deserialize;

use crate::storage::Layout;

pub use blob::ByteRange;
pub use error::RegistryError;
pub use name::{Digest, Reference, RepositoryName, Tag, UploadId};

/// The registry over one data root.
pub struct Registry {
    layout: Layout,
    /// Hash state of uploads in progress, so a digest is computed once while bytes stream.
    /// A session missing here (after a restart) is rehashed from its data file when needed.
    upload_hashes: Mutex<HashMap<UploadId, upload::HashState>>,
    /// What may be deleted.
    delete: DeleteConfig,
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
        std::fs::create_dir_all(root)?;
        Ok(Registry {
            layout: Layout::new(root),
            upload_hashes: Mutex::new(HashMap::new()),
            delete: DeleteConfig::default(),
        })
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
}
