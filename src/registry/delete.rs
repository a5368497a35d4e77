//! Deleting manifests, tags and blobs from a repository, when `storage.delete.enabled` allows
//! it. A delete removes links only: the content under `blobs/` stays until garbage
//! collection, so another repository that links the same blob keeps it.
//!
//! - A manifest by digest: its revision link, every tag that points at it, and its entry in
//!   the referrers index of its `subject`. Refused while an index in the same repository
//!   still lists it, unless `storage.delete.referenced_manifests` is on.
//! - A tag: only the tag; the manifest stays reachable by digest.
//! - A blob: its `_layers` link in this repository.
//!
//! Limitation: checking whether an index still lists a manifest reads every index of the
//! repository, so deleting in a repository with very many indexes is slow.

use super::manifest::ManifestFields;
use super::{Digest, Reference, Registry, RegistryError, RepositoryName};
use crate::storage::layout::digest_dir;

impl Registry {
    /// Deletes a manifest by digest, or a tag by name.
    ///
    /// # Errors
    /// [`RegistryError::Unsupported`] when deletion is off, [`RegistryError::ManifestUnknown`]
    /// when there is no such manifest or tag, [`RegistryError::ManifestReferenced`] when an
    /// index in the repository still lists the manifest and config forbids deleting it.
    pub fn manifest_delete(
        &self,
        repository: &RepositoryName,
        reference: &Reference,
    ) -> Result<(), RegistryError> {
        if !self.delete.enabled {
            return Err(RegistryError::Unsupported);
        }
        let digest = match reference {
            Reference::Tag(tag) => {
                self.resolve(repository, reference)?;
                let folder = self.layout.tag(repository, tag.as_str());
                self.storage.delete_all(&folder)?;
                return Ok(());
            }
            Reference::Digest(digest) => digest,
        };
        self.resolve(repository, reference)?;

        if !self.delete.referenced_manifests {
            if let Some(index) = self.index_listing(repository, digest)? {
                return Err(RegistryError::ManifestReferenced {
                    digest: digest.to_string(),
                    index: index.to_string(),
                });
            }
        }

        // The referrers entry first: it is only an index over revision links.
        if let Some(bytes) = self.storage.read(&self.layout.blob_data(digest))? {
            let subject = ManifestFields::parse(&bytes)
                .ok()
                .and_then(|fields| fields.subject)
                .and_then(|subject| Digest::parse(&subject.digest).ok());
            if let Some(subject) = subject {
                self.unlink_referrer(repository, &subject, digest)?;
            }
        }
        for tag in self.storage.list(&self.layout.tags(repository))? {
            let current = self.layout.tag_current_link_named(repository, &tag);
            if self.read_link(&current)?.as_ref() == Some(digest) {
                self.storage
                    .delete_all(&self.layout.tag(repository, &tag))?;
            }
        }
        let revisions = self.layout.manifest_revisions(repository);
        self.storage.delete_all(&digest_dir(&revisions, digest))?;
        Ok(())
    }

    /// Removes a blob from a repository (the content stays for other repositories).
    ///
    /// # Errors
    /// [`RegistryError::Unsupported`] when deletion is off, [`RegistryError::BlobUnknown`]
    /// when the repository does not hold the blob.
    pub fn blob_delete(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        if !self.delete.enabled {
            return Err(RegistryError::Unsupported);
        }
        self.blob_size(repository, digest)?;
        let layers = format!("{}/_layers", self.layout.repository(repository));
        self.storage.delete_all(&digest_dir(&layers, digest))?;
        Ok(())
    }

    /// An index in `repository` that lists `digest` among its manifests, if any.
    fn index_listing(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<Digest>, RegistryError> {
        let wanted = digest.to_string();
        let revisions = self.layout.manifest_revisions(repository);
        for candidate in self.digests_below(&revisions)? {
            let Some(bytes) = self.storage.read(&self.layout.blob_data(&candidate))? else {
                continue;
            };
            let Ok(fields) = ManifestFields::parse(&bytes) else {
                continue;
            };
            let lists = fields.is_index()
                && fields
                    .manifests
                    .iter()
                    .flatten()
                    .any(|child| child.digest == wanted);
            if lists {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }
}

impl Registry {
    /// Every digest a tag keeps alive: its manifest, the manifest's config and layers, and
    /// for an index its child manifests and theirs. Used to stop blob deletes from breaking
    /// protected tags.
    ///
    /// # Errors
    /// [`RegistryError::ManifestUnknown`] when the tag does not exist.
    pub fn digests_under_tag(
        &self,
        repository: &RepositoryName,
        tag: &super::Tag,
    ) -> Result<Vec<Digest>, RegistryError> {
        let top = self.resolve(repository, &Reference::Tag(tag.clone()))?;
        let mut found = Vec::new();
        let mut manifests = vec![top];
        while let Some(digest) = manifests.pop() {
            let Some(bytes) = self.storage.read(&self.layout.blob_data(&digest))? else {
                continue;
            };
            found.push(digest);
            let Ok(fields) = ManifestFields::parse(&bytes) else {
                continue;
            };
            let blobs = fields.config.iter().chain(fields.layers.iter());
            found.extend(blobs.filter_map(|d| Digest::parse(&d.digest).ok()));
            let children = fields.manifests.iter().flatten();
            manifests.extend(children.filter_map(|d| Digest::parse(&d.digest).ok()));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::super::DeleteConfig;
    use super::*;

    #[test]
    fn deletion_is_refused_unless_enabled() {
        let root = tempfile::tempdir().unwrap();
        let registry = Registry::open(root.path()).unwrap();
        let repository = RepositoryName::parse("a").unwrap();
        let digest = Digest::sha256_of(b"x");
        assert!(matches!(
            registry.blob_delete(&repository, &digest),
            Err(RegistryError::Unsupported)
        ));
        let registry = registry.with_delete(DeleteConfig {
            enabled: true,
            referenced_manifests: false,
        });
        assert!(matches!(
            registry.blob_delete(&repository, &digest),
            Err(RegistryError::BlobUnknown)
        ));
    }
}
