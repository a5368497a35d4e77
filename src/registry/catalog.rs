//! The catalog: every repository in the data root, found by walking `repositories/` for
//! directories that hold `_manifests`, as the CNCF registry does. Mounts without `from` walk
//! the same way for directories that hold `_layers`.

use super::{Registry, RegistryError, RepositoryName};
use crate::storage::StorageError;

impl Registry {
    /// Every repository, in lexical order. The gateway filters it by what the caller may see.
    pub fn catalog(&self) -> Result<Vec<RepositoryName>, RegistryError> {
        self.repositories_holding("_manifests")
    }

    /// Every repository that holds blobs (a `_layers` folder), in lexical order.
    pub fn blob_repositories(&self) -> Result<Vec<RepositoryName>, RegistryError> {
        self.repositories_holding("_layers")
    }

    fn repositories_holding(&self, marker: &str) -> Result<Vec<RepositoryName>, RegistryError> {
        let mut found = Vec::new();
        let root = self.layout.repositories();
        let top = self.storage.list(&root)?;
        self.walk(&root, "", top, marker, &mut found)?;
        found.sort();
        Ok(found)
    }

    /// Looks at each of `entries`, the folders of `folder`: one whose own folders include
    /// `marker` is a repository; every one may hold more repositories below. Each folder is
    /// listed once.
    fn walk(
        &self,
        folder: &str,
        prefix: &str,
        entries: Vec<String>,
        marker: &str,
        found: &mut Vec<RepositoryName>,
    ) -> Result<(), StorageError> {
        for entry in entries {
            // `_layers`, `_manifests` and `_uploads` belong to the repository above.
            if entry.starts_with('_') {
                continue;
            }
            let name = if prefix.is_empty() {
                entry.clone()
            } else {
                format!("{prefix}/{entry}")
            };
            let path = format!("{folder}/{entry}");
            let below = self.storage.list(&path)?;
            if below.iter().any(|child| child == marker) {
                if let Ok(repository) = RepositoryName::parse(&name) {
                    found.push(repository);
                }
            }
            self.walk(&path, &name, below, marker, found)?;
        }
        Ok(())
    }
}
