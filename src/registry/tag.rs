//! Tags of one repository, listed from `_manifests/tags`.

use super::{Digest, Reference, Registry, RegistryError, RepositoryName, Tag};

impl Registry {
    /// The repository's tags in lexical order.
    ///
    /// # Errors
    /// [`RegistryError::NameUnknown`] when the repository does not exist.
    pub fn tags(&self, repository: &RepositoryName) -> Result<Vec<String>, RegistryError> {
        let folders = self.storage.list(&self.layout.repository(repository))?;
        if !folders.iter().any(|folder| folder == "_manifests") {
            return Err(RegistryError::NameUnknown);
        }
        let mut tags = Vec::new();
        for tag in self.storage.list(&self.layout.tags(repository))? {
            let current = self.layout.tag_current_link_named(repository, &tag);
            if self.storage.size(&current)?.is_some() {
                tags.push(tag);
            }
        }
        Ok(tags)
    }

    /// The digest `tag` points at, or `None` when the repository has no such tag. One small
    /// file read: cheap enough to ask before every tagged manifest push.
    ///
    /// # Errors
    /// [`RegistryError::Storage`] when the link exists but cannot be read.
    pub fn tag_digest(
        &self,
        repository: &RepositoryName,
        tag: &Tag,
    ) -> Result<Option<Digest>, RegistryError> {
        Ok(self.read_link(&self.layout.tag_current_link(repository, tag))?)
    }

    /// The tags deleting the manifest `reference` takes away: the tag itself, or, for a
    /// digest, every tag that points at it now, in lexical order. Protected ones must be
    /// found before the delete.
    ///
    /// # Errors
    /// [`RegistryError::Storage`] when the tags cannot be listed.
    pub fn tags_removed_by(
        &self,
        repository: &RepositoryName,
        reference: &Reference,
    ) -> Result<Vec<String>, RegistryError> {
        let digest = match reference {
            Reference::Tag(tag) => return Ok(vec![tag.to_string()]),
            Reference::Digest(digest) => digest,
        };
        let mut naming = Vec::new();
        for tag in self.storage.list(&self.layout.tags(repository))? {
            let link = self.layout.tag_current_link_named(repository, &tag);
            if self.read_link(&link)?.as_ref() == Some(digest) {
                naming.push(tag);
            }
        }
        Ok(naming)
    }
}
