//! Read helpers for browsing a repository rather than pulling from it: its tags with the
//! manifest each names and when it was pushed, every manifest it holds, and small blobs such
//! as image configs read whole. The web UI ([`crate::ui`]) reads through these; the
//! distribution API never does.

use std::time::SystemTime;

use super::{Digest, Reference, Registry, RegistryError, RepositoryName};

/// One tag as stored: the digest its `current` link names and when that link was written.
#[derive(Debug, Clone)]
pub struct TagLink {
    /// The tag's name.
    pub tag: String,
    /// The manifest the tag points at now.
    pub digest: Digest,
    /// When the tag was last pushed (the modification time of its `current` link); `None`
    /// when the filesystem does not report it.
    pub pushed: Option<SystemTime>,
}

impl Registry {
    /// Every tag of the repository with its digest and push time, in lexical order.
    ///
    /// # Errors
    /// [`RegistryError::NameUnknown`] when the repository does not exist.
    pub fn tag_links(&self, repository: &RepositoryName) -> Result<Vec<TagLink>, RegistryError> {
        if !self.repository_exists(repository) {
            return Err(RegistryError::NameUnknown);
        }
        let mut found = Vec::new();
        for tag in self.storage.list(&self.layout.tags(repository))? {
            let link = self.layout.tag_current_link_named(repository, &tag);
            let Some(digest) = self.read_link(&link)? else {
                continue;
            };
            let pushed = self.storage.modified(&link)?;
            found.push(TagLink {
                tag,
                digest,
                pushed,
            });
        }
        Ok(found)
    }

    /// Every manifest the repository holds (its revision links), sorted by digest.
    ///
    /// # Errors
    /// Only storage failures; a missing repository has none.
    pub fn revisions(&self, repository: &RepositoryName) -> Result<Vec<Digest>, RegistryError> {
        Ok(self.digests_below(&self.layout.manifest_revisions(repository))?)
    }

    /// When a manifest revision was first linked into the repository.
    pub fn revision_time(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Option<SystemTime> {
        let link = self.layout.manifest_revision_link(repository, digest);
        self.storage.modified(&link).ok().flatten()
    }

    /// The content of a blob linked into `repository`, when it is at most `limit` bytes;
    /// `None` when it is larger (an image config is small, a layer is not read this way).
    ///
    /// # Errors
    /// [`RegistryError::BlobUnknown`] when the repository does not hold it.
    pub fn blob_read_small(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let size = self.blob_size(repository, digest)?;
        if size > limit {
            return Ok(None);
        }
        Ok(self.storage.read(&self.layout.blob_data(digest))?)
    }

    /// The digest a tag or digest names in `repository`.
    ///
    /// # Errors
    /// [`RegistryError::ManifestUnknown`] when the repository has no such manifest or tag.
    pub fn resolve_reference(
        &self,
        repository: &RepositoryName,
        reference: &Reference,
    ) -> Result<Digest, RegistryError> {
        self.resolve(repository, reference)
    }

    /// Whether `repository` exists (holds a `_manifests` folder).
    pub fn repository_exists(&self, repository: &RepositoryName) -> bool {
        self.storage
            .list(&self.layout.repository(repository))
            .is_ok_and(|folders| folders.iter().any(|folder| folder == "_manifests"))
    }
}

/// A registry in a temp dir whose repository `app` holds one OCI image tagged with each of
/// `tags`; returns the image's digest too. Shared by the engine's unit tests.
#[cfg(test)]
pub(super) fn registry_with_image(
    tags: &[&str],
) -> (tempfile::TempDir, Registry, RepositoryName, Digest) {
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::open(root.path()).unwrap();
    let repository = RepositoryName::parse("app").unwrap();
    let config_digest = Digest::sha256_of(b"{}");
    let id = registry.upload_start(&repository).unwrap();
    let mut writer = registry.upload_append(&repository, &id, None).unwrap();
    writer.write(bytes::Bytes::from_static(b"{}")).unwrap();
    registry.upload_chunk_done(writer).unwrap();
    registry
        .upload_complete(&repository, &id, &config_digest)
        .unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{{"mediaType":"application/vnd.oci.image.config.v1+json",
            "digest":"{config_digest}","size":2}},"layers":[]}}"#
    );
    let digest = Digest::sha256_of(manifest.as_bytes());
    for tag in tags {
        let reference = Reference::parse(tag).unwrap();
        registry
            .manifest_put(&repository, &reference, None, manifest.as_bytes())
            .unwrap();
    }
    (root, registry, repository, digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_links_name_digest_and_push_time() {
        let (_root, registry, repository, digest) = registry_with_image(&["v1"]);
        let links = registry.tag_links(&repository).unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].tag, "v1");
        assert_eq!(links[0].digest, digest);
        assert!(links[0].pushed.is_some());
        assert_eq!(registry.revisions(&repository).unwrap(), vec![digest]);
        let config_digest = Digest::sha256_of(b"{}");
        let read = registry.blob_read_small(&repository, &config_digest, 16);
        assert_eq!(read.unwrap().as_deref(), Some(&b"{}"[..]));
        let too_big = registry.blob_read_small(&repository, &config_digest, 1);
        assert!(too_big.unwrap().is_none());
    }
}
