//! Deleting a tag or a manifest from a repository. A delete removes links only: the content
//! under `blobs/` stays until garbage collection, so another repository that links the same
//! blob keeps it.
//!
//! - A tag: only the tag; the manifest stays reachable by digest.
//! - A manifest by digest: its revision link and every tag that points at it.
//!
//! Limitation: deleting a manifest does not check whether an index in the repository still
//! lists it; pulling that index then fails on the missing child.

use super::{Reference, Registry, RegistryError, RepositoryName};
use crate::storage::fs;

impl Registry {
    /// Deletes a manifest by digest (with the tags that point at it), or a tag by name.
    ///
    /// # Errors
    /// [`RegistryError::ManifestUnknown`] when there is no such manifest or tag.
    pub fn manifest_delete(
        &self,
        repository: &RepositoryName,
        reference: &Reference,
    ) -> Result<(), RegistryError> {
        self.resolve(repository, reference)?;
        let digest = match reference {
            Reference::Tag(tag) => {
                let folder = self.layout.tags(repository).join(tag.as_str());
                fs::remove_dir_all_if_present(&folder)?;
                return Ok(());
            }
            Reference::Digest(digest) => digest,
        };

        // Tags first, so no tag ever names a manifest that is gone.
        for tag in fs::list_dirs(&self.layout.tags(repository))? {
            let folder = self.layout.tags(repository).join(&tag);
            if fs::read_link(&folder.join("current/link"))?.as_ref() == Some(digest) {
                fs::remove_dir_all_if_present(&folder)?;
            }
        }
        let revision = self.layout.manifest_revision_link(repository, digest);
        if let Some(folder) = revision.parent() {
            fs::remove_dir_all_if_present(folder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::browse::registry_with_image;
    use super::*;

    #[test]
    fn deleting_a_tag_keeps_the_manifest() {
        let (_root, registry, repository, digest) = registry_with_image(&["v1", "latest"]);
        let v1 = Reference::parse("v1").unwrap();
        registry.manifest_delete(&repository, &v1).unwrap();
        assert_eq!(registry.tags(&repository).unwrap(), vec!["latest"]);
        let by_digest = Reference::Digest(digest);
        assert!(registry.manifest_get(&repository, &by_digest).is_ok());
        assert!(matches!(
            registry.manifest_delete(&repository, &v1),
            Err(RegistryError::ManifestUnknown)
        ));
    }

    #[test]
    fn deleting_a_manifest_removes_its_tags() {
        let (_root, registry, repository, digest) = registry_with_image(&["v1", "latest"]);
        let by_digest = Reference::Digest(digest);
        registry.manifest_delete(&repository, &by_digest).unwrap();
        assert!(registry.tags(&repository).unwrap().is_empty());
        assert!(matches!(
            registry.manifest_get(&repository, &by_digest),
            Err(RegistryError::ManifestUnknown)
        ));
    }
}
