//! The referrers API's engine half: which manifests in a repository name a given digest as
//! their `subject`. Links under `_referrers` (see [`crate::storage::layout`]) are written
//! when such a manifest is pushed, so an answer lists one folder instead of reading every
//! manifest in the repository.
//!
//! Limitation: the whole list comes back in one answer; there is no `Link` pagination of
//! referrers, which the spec leaves optional.

use serde::Serialize;

use super::manifest::{ManifestFields, OCI_INDEX};
use super::{Digest, Registry, RegistryError, RepositoryName};
use crate::storage::layout::digest_dir;
use crate::storage::StorageError;

/// One entry of a referrers answer: a descriptor of a manifest whose `subject` was asked for.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    /// The referrer's own media type (an OCI image manifest or index).
    pub media_type: String,
    /// The referrer's digest.
    pub digest: String,
    /// The referrer's size in bytes.
    pub size: u64,
    /// The manifest's `artifactType`, else (for an image manifest) its config's media type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifest's own annotations, copied as they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Registry {
    /// The manifests of `repository` whose `subject` is `subject`, ordered by digest;
    /// with `artifact_type`, only those of that artifact type. A repository or subject
    /// nobody refers to has none: the answer is empty, never an error.
    ///
    /// # Errors
    /// Only storage failures.
    pub fn referrers(
        &self,
        repository: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, RegistryError> {
        let folder = self.layout.referrers(repository, subject);
        let mut found = Vec::new();
        for digest in self.digests_below(&folder)? {
            if let Some(referrer) = self.referrer(repository, &digest)? {
                found.push(referrer);
            }
        }
        found.retain(|referrer| {
            artifact_type.is_none_or(|wanted| referrer.artifact_type.as_deref() == Some(wanted))
        });
        found.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(found)
    }

    /// The descriptor of one referrer; `None` when it has been deleted since it was linked.
    fn referrer(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<Referrer>, RegistryError> {
        let revision = self.layout.manifest_revision_link(repository, digest);
        if self.read_link(&revision)?.as_ref() != Some(digest) {
            return Ok(None);
        }
        let Some(bytes) = self.storage.read(&self.layout.blob_data(digest))? else {
            return Ok(None);
        };
        let Ok(fields) = ManifestFields::parse(&bytes) else {
            return Ok(None);
        };
        let media_type = fields.media_type();
        let artifact_type = fields.artifact_type.clone().or_else(|| {
            let config = fields.config.as_ref()?;
            (media_type != OCI_INDEX)
                .then(|| config.media_type.clone())
                .flatten()
        });
        Ok(Some(Referrer {
            media_type,
            digest: digest.to_string(),
            size: bytes.len() as u64,
            artifact_type,
            annotations: fields.annotations,
        }))
    }

    /// Forgets that `referrer` refers to `subject` (when `referrer` is deleted).
    pub(super) fn unlink_referrer(
        &self,
        repository: &RepositoryName,
        subject: &Digest,
        referrer: &Digest,
    ) -> Result<(), StorageError> {
        let folder = digest_dir(&self.layout.referrers(repository, subject), referrer);
        self.storage.delete_all(&folder)
    }
}
