//! Manifests: image manifests and indexes (Docker schema 2 and OCI), stored as blobs and made
//! visible to a repository by a revision link, and to a tag by the tag's `current` link.
//! A manifest is accepted only when every blob and child manifest it names is already in
//! the repository, so a pull of an accepted manifest never finds a hole.

use serde::Deserialize;

use super::{Digest, Reference, Registry, RegistryError, RepositoryName, Tag};
use crate::storage::StorageError;

/// Largest manifest accepted, as in the CNCF registry.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The config media type of an artifact that has no config: its content is `{}`.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The bytes of the empty descriptor's blob.
const EMPTY_JSON: &[u8] = b"{}";

/// A stored manifest, ready to send.
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// What a manifest push stored.
pub struct Pushed {
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's `subject`, when it has one (the gateway echoes it in `OCI-Subject`).
    pub subject: Option<Digest>,
}

/// The parts of a manifest the registry reads; everything else is stored untouched.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ManifestFields {
    schema_version: Option<u32>,
    media_type: Option<String>,
    pub(super) config: Option<Descriptor>,
    #[serde(default)]
    pub(super) layers: Vec<Descriptor>,
    pub(super) manifests: Option<Vec<Descriptor>>,
    pub(super) subject: Option<Descriptor>,
    pub(super) artifact_type: Option<String>,
    pub(super) annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Descriptor {
    pub(super) media_type: Option<String>,
    pub(super) digest: String,
    #[serde(default)]
    urls: Vec<String>,
}

impl ManifestFields {
    /// Parses the fields the registry reads from a manifest's bytes.
    pub(super) fn parse(bytes: &[u8]) -> Result<Self, RegistryError> {
        serde_json::from_slice(bytes).map_err(|error| RegistryError::ManifestInvalid {
            detail: format!("manifest is not valid JSON: {error}"),
        })
    }

    /// The media type the manifest was stored as.
    pub(super) fn media_type(&self) -> String {
        media_type_of(self, None)
    }

    /// Whether this is an index (OCI index or Docker manifest list).
    pub(super) fn is_index(&self) -> bool {
        let media_type = self.media_type();
        media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
    }
}

impl Registry {
    /// Stores a manifest under `reference`. `content_type` is the request's header; the
    /// manifest's own `mediaType` wins when present. Returns the manifest's digest.
    ///
    /// # Errors
    /// [`RegistryError::ManifestInvalid`] for malformed or unsupported manifests,
    /// [`RegistryError::ManifestBlobUnknown`] when a referenced blob or manifest is missing,
    /// [`RegistryError::DigestInvalid`] when pushed by a digest the bytes do not have.
    pub fn manifest_put(
        &self,
        repository: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<Pushed, RegistryError> {
        let invalid = |detail: String| RegistryError::ManifestInvalid { detail };
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(invalid(format!(
                "manifest exceeds {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        let fields = ManifestFields::parse(bytes)?;
        if fields.schema_version != Some(2) {
            return Err(invalid("schemaVersion must be 2".into()));
        }
        let media_type = media_type_of(&fields, content_type);
        if ![
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
            OCI_MANIFEST,
            OCI_INDEX,
        ]
        .contains(&media_type.as_str())
        {
            return Err(invalid(format!(
                "unsupported manifest media type {media_type}"
            )));
        }

        let digest = match reference {
            Reference::Digest(claimed) => {
                let actual = Digest::compute(claimed.algorithm(), bytes);
                if &actual != claimed {
                    return Err(RegistryError::DigestInvalid {
                        detail: format!("manifest hashes to {actual}, not {claimed}"),
                    });
                }
                actual
            }
            Reference::Tag(_) => Digest::sha256_of(bytes),
        };
        self.check_references(repository, &fields, &media_type)?;
        let subject = fields
            .subject
            .as_ref()
            .map(|subject| Digest::parse(&subject.digest))
            .transpose()
            .map_err(|_| invalid("subject has a malformed digest".into()))?;

        // Content first, then the revision link, then the tag: a reader following any link
        // always finds what it points at.
        let data = self.layout.blob_data(&digest);
        if self.storage.size(&data)?.is_none() {
            self.storage.write(&data, bytes)?;
        }
        self.write_link(
            &self.layout.manifest_revision_link(repository, &digest),
            &digest,
        )?;
        if let Some(subject) = &subject {
            let link = self.layout.referrer_link(repository, subject, &digest);
            self.write_link(&link, &digest)?;
        }
        if let Reference::Tag(tag) = reference {
            self.tag_set(repository, tag, &digest)?;
        }
        Ok(Pushed { digest, subject })
    }

    /// Fetches a manifest by tag or digest.
    ///
    /// # Errors
    /// [`RegistryError::ManifestUnknown`] when the repository has no such manifest.
    pub fn manifest_get(
        &self,
        repository: &RepositoryName,
        reference: &Reference,
    ) -> Result<Manifest, RegistryError> {
        let digest = self.resolve(repository, reference)?;
        let bytes = self
            .storage
            .read(&self.layout.blob_data(&digest))?
            .ok_or(RegistryError::ManifestUnknown)?;
        let media_type = ManifestFields::parse(&bytes)
            .map(|fields| fields.media_type())
            .unwrap_or_else(|_| OCI_MANIFEST.to_string());
        Ok(Manifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// The digest a reference names in `repository`.
    pub(super) fn resolve(
        &self,
        repository: &RepositoryName,
        reference: &Reference,
    ) -> Result<Digest, RegistryError> {
        let digest = match reference {
            Reference::Digest(digest) => digest.clone(),
            Reference::Tag(tag) => self
                .read_link(&self.layout.tag_current_link(repository, tag))?
                .ok_or(RegistryError::ManifestUnknown)?,
        };
        let link = self.read_link(&self.layout.manifest_revision_link(repository, &digest))?;
        if link.as_ref() != Some(&digest) {
            return Err(RegistryError::ManifestUnknown);
        }
        Ok(digest)
    }

    /// Every blob an image manifest names, and every manifest an index names, must already
    /// be in the repository.
    fn check_references(
        &self,
        repository: &RepositoryName,
        fields: &ManifestFields,
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let unknown = |digest: &str| RegistryError::ManifestBlobUnknown {
            digest: digest.into(),
        };
        let parse = |raw: &str| Digest::parse(raw).map_err(|_| unknown(raw));

        if media_type == DOCKER_MANIFEST_LIST || media_type == OCI_INDEX {
            for child in fields.manifests.iter().flatten() {
                let digest = parse(&child.digest)?;
                let link = self.layout.manifest_revision_link(repository, &digest);
                if self.read_link(&link)?.as_ref() != Some(&digest) {
                    return Err(unknown(&child.digest));
                }
            }
            return Ok(());
        }

        let config = fields
            .config
            .as_ref()
            .ok_or_else(|| RegistryError::ManifestInvalid {
                detail: "image manifest has no config".into(),
            })?;
        // Foreign layers (with `urls`) live outside the registry by design.
        let blobs =
            std::iter::once(config).chain(fields.layers.iter().filter(|l| l.urls.is_empty()));
        for blob in blobs {
            let digest = parse(&blob.digest)?;
            match self.blob_size(repository, &digest) {
                Ok(_) => {}
                Err(RegistryError::BlobUnknown) if is_empty_descriptor(blob, &digest) => {
                    self.store_empty_blob(repository, &digest)?;
                }
                Err(RegistryError::BlobUnknown) => return Err(unknown(&blob.digest)),
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// The empty descriptor's blob (`{}`) is known without being pushed: artifact tools
    /// often name it as a config without uploading it, so it is stored on first use.
    fn store_empty_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        let data = self.layout.blob_data(digest);
        if self.storage.size(&data)?.is_none() {
            self.storage.write(&data, EMPTY_JSON)?;
        }
        self.link_layer(repository, digest)
    }

    /// Points `tag` at `digest`, keeping the tag's history in its index.
    fn tag_set(
        &self,
        repository: &RepositoryName,
        tag: &Tag,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        self.write_link(&self.layout.tag_index_link(repository, tag, digest), digest)?;
        self.write_link(&self.layout.tag_current_link(repository, tag), digest)
    }
}

/// The manifest's media type: its own field, else the request's Content-Type, else what
/// its shape says (OCI allows leaving `mediaType` out).
fn media_type_of(fields: &ManifestFields, content_type: Option<&str>) -> String {
    if let Some(media_type) = &fields.media_type {
        return media_type.clone();
    }
    let header = content_type.map(|value| value.split(';').next().unwrap_or("").trim());
    match header {
        Some(value) if !value.is_empty() && value != "application/json" => value.to_string(),
        _ if fields.manifests.is_some() => OCI_INDEX.to_string(),
        _ => OCI_MANIFEST.to_string(),
    }
}

/// Whether `descriptor` is the OCI empty descriptor: its type and the digest of `{}`.
fn is_empty_descriptor(descriptor: &Descriptor, digest: &Digest) -> bool {
    descriptor.media_type.as_deref() == Some(OCI_EMPTY) && *digest == Digest::sha256_of(EMPTY_JSON)
}

/// Whether a client's `Accept` header lets it receive `media_type`. No header, or one that
/// names no manifest type at all, accepts anything, as docker's older clients expect.
pub fn accepts(accept_headers: &[&str], media_type: &str) -> bool {
    let offered: Vec<&str> = accept_headers
        .iter()
        .flat_map(|header| header.split(','))
        .map(|item| item.split(';').next().unwrap_or("").trim())
        .filter(|item| !item.is_empty())
        .collect();
    let names_manifests = offered
        .iter()
        .any(|item| item.starts_with("application/vnd."));
    !names_manifests
        || offered
            .iter()
            .any(|item| matches!(*item, "*/*" | "application/*") || *item == media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert!(accepts(&[], OCI_MANIFEST));
        assert!(accepts(&["application/json"], OCI_MANIFEST));
        assert!(accepts(
            &[&format!("{DOCKER_MANIFEST}, {OCI_MANIFEST};q=0.5")],
            OCI_MANIFEST
        ));
        assert!(!accepts(&[DOCKER_MANIFEST], OCI_INDEX));
        assert!(accepts(&[DOCKER_MANIFEST, "*/*"], OCI_INDEX));
    }

    #[test]
    fn manifests_missing_blobs_are_refused_and_stored_ones_round_trip() {
        let root = tempfile::tempdir().unwrap();
        let registry = Registry::open(root.path()).unwrap();
        let repository = RepositoryName::parse("app").unwrap();
        let config = Digest::sha256_of(b"{}");
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json",
                "digest":"{config}","size":2}},
            "layers":[]}}"#
        );
        let tag = Reference::parse("latest").unwrap();
        let refused = registry.manifest_put(&repository, &tag, None, manifest.as_bytes());
        assert!(matches!(
            refused,
            Err(RegistryError::ManifestBlobUnknown { .. })
        ));

        let id = registry.upload_start(&repository).unwrap();
        let mut writer = registry.upload_append(&repository, &id, None).unwrap();
        writer.write(bytes::Bytes::from_static(b"{}")).unwrap();
        registry.upload_chunk_done(writer).unwrap();
        registry.upload_complete(&repository, &id, &config).unwrap();

        let digest = registry
            .manifest_put(&repository, &tag, None, manifest.as_bytes())
            .unwrap()
            .digest;
        let fetched = registry.manifest_get(&repository, &tag).unwrap();
        assert_eq!(fetched.digest, digest);
        assert_eq!(fetched.media_type, OCI_MANIFEST);
        assert_eq!(fetched.bytes, manifest.as_bytes());
    }
}
