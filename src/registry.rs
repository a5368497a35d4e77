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
pub mod tag;
pub mod upload;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use crate::storage::Layout;

pub use error::RegistryError;
pub use name::{Digest, Reference, RepositoryName, Tag, UploadId};

/// The registry over one data root.
pub struct Registry {
    layout: Layout,
    /// Hash state of uploads in progress, so a digest is computed once while bytes stream.
    /// A session missing here (after a restart) is rehashed from its data file when needed.
    upload_hashes: Mutex<HashMap<UploadId, upload::HashState>>,
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
        })
    }

    /// Where this registry keeps things.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}
