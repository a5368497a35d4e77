//! The catalog: every repository in the data root, found by walking `repositories/` for
//! directories that hold `_manifests`, as the CNCF registry does. Mounts without `from` walk
//! the same way for directories that hold `_layers`.

use std::path::Path;

use super::{Registry, RegistryError, RepositoryName};
use crate::storage::fs;

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
        walk(&self.layout.repositories(), "", marker, &mut found)?;
        found.sort();
        Ok(found)
    }
}

fn walk(
    dir: &Path,
    prefix: &str,
    marker: &str,
    found: &mut Vec<RepositoryName>,
) -> std::io::Result<()> {
    for entry in fs::list_dirs(dir)? {
        // `_layers`, `_manifests` and `_uploads` belong to the repository above.
        if entry.starts_with('_') {
            continue;
        }
        let name = if prefix.is_empty() {
            entry.clone()
        } else {
            format!("{prefix}/{entry}")
        };
        let path = dir.join(&entry);
        if path.join(marker).is_dir() {
            if let Ok(repository) = RepositoryName::parse(&name) {
                found.push(repository);
            }
        }
        walk(&path, &name, marker, found)?;
    }
    Ok(())
}
