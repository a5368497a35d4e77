//! Where every object lives, the same layout as the CNCF registry's filesystem driver, so an
//! existing `registry:2` data directory is served in place:
//!
//! ```text
//! <root>/docker/registry/v2/
//! ├── blobs/sha256/<hex[0..2]>/<hex>/data          content, written once, never partial
//! └── repositories/<name>/
//!     ├── _layers/sha256/<hex>/link                the repository has the blob
//!     ├── _manifests/revisions/sha256/<hex>/link   the repository has the manifest
//!     ├── _manifests/tags/<tag>/current/link       the digest the tag points at now
//!     ├── _manifests/tags/<tag>/index/sha256/<hex>/link   every digest the tag has named
//!     ├── _referrers/sha256/<subject-hex>/sha256/<referrer-hex>/link
//!     │                                            a manifest whose `subject` is <subject>
//!     └── _uploads/<uuid>/{data,startedat}         an upload in progress
//! ```
//!
//! `sha512` digests use the same shapes with `sha512` in place of `sha256`.
//!
//! `_referrers` is Berth's own: the CNCF registry has no referrers API, ignores the folder,
//! and serves such a data directory as before. It is written when a manifest with a
//! `subject` is pushed and pruned when that manifest is deleted, so answering
//! `GET /v2/<name>/referrers/<digest>` lists one folder instead of reading every manifest.
//! A referrers answer still checks each referrer's revision link, so a stale entry left by
//! a crash between the two writes is never served.
//!
//! Every path is built from parsed names ([`RepositoryName`], [`Digest`], [`Tag`],
//! [`UploadId`]), which cannot contain `..` or separators that leave the root.

use std::path::{Path, PathBuf};

use crate::registry::name::{Digest, RepositoryName, Tag, UploadId};

/// Paths of the storage layout under one data root.
#[derive(Debug, Clone)]
pub struct Layout {
    v2: PathBuf,
}

impl Layout {
    /// The layout under `root`, the directory named by `storage.filesystem.root`.
    pub fn new(root: &Path) -> Self {
        Layout {
            v2: root.join("docker/registry/v2"),
        }
    }

    /// The blob's content file.
    pub fn blob_data(&self, digest: &Digest) -> PathBuf {
        self.blob_dir(digest).join("data")
    }

    /// The directory that holds a blob's `data`.
    pub fn blob_dir(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.v2
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    /// Where repositories live; each directory with `_manifests` below it is one.
    pub fn repositories(&self) -> PathBuf {
        self.v2.join("repositories")
    }

    pub fn repository(&self, name: &RepositoryName) -> PathBuf {
        self.repositories().join(name.as_str())
    }

    /// The link that says `name` holds the layer or config blob `digest`.
    pub fn layer_link(&self, name: &RepositoryName, digest: &Digest) -> PathBuf {
        self.digest_dir(self.repository(name).join("_layers"), digest)
            .join("link")
    }

    /// The link that says `name` holds the manifest `digest`.
    pub fn manifest_revision_link(&self, name: &RepositoryName, digest: &Digest) -> PathBuf {
        self.digest_dir(self.manifest_revisions(name), digest)
            .join("link")
    }

    pub fn tags(&self, name: &RepositoryName) -> PathBuf {
        self.repository(name).join("_manifests/tags")
    }

    pub fn tag_current_link(&self, name: &RepositoryName, tag: &Tag) -> PathBuf {
        self.tags(name).join(tag.as_str()).join("current/link")
    }

    pub fn tag_index_link(&self, name: &RepositoryName, tag: &Tag, digest: &Digest) -> PathBuf {
        let index = self.tags(name).join(tag.as_str()).join("index");
        self.digest_dir(index, digest).join("link")
    }

    /// The folder of links to the manifests whose `subject` is `subject`.
    pub fn referrers(&self, name: &RepositoryName, subject: &Digest) -> PathBuf {
        self.digest_dir(self.repository(name).join("_referrers"), subject)
    }

    /// The link that says `referrer` is a manifest in `name` whose `subject` is `subject`.
    pub fn referrer_link(
        &self,
        name: &RepositoryName,
        subject: &Digest,
        referrer: &Digest,
    ) -> PathBuf {
        self.digest_dir(self.referrers(name, subject), referrer)
            .join("link")
    }

    /// The folder of a repository's manifest revision links.
    pub fn manifest_revisions(&self, name: &RepositoryName) -> PathBuf {
        self.repository(name).join("_manifests/revisions")
    }

    pub fn upload_dir(&self, name: &RepositoryName, id: &UploadId) -> PathBuf {
        self.repository(name).join("_uploads").join(id.as_str())
    }

    pub fn upload_data(&self, name: &RepositoryName, id: &UploadId) -> PathBuf {
        self.upload_dir(name, id).join("data")
    }

    fn digest_dir(&self, base: PathBuf, digest: &Digest) -> PathBuf {
        base.join(digest.algorithm().as_str()).join(digest.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_the_cncf_registry() {
        let layout = Layout::new(Path::new("/d"));
        let digest = Digest::parse(&format!("sha256:ab{}", "0".repeat(62))).unwrap();
        let name = RepositoryName::parse("team/app").unwrap();
        let hex = digest.hex();
        assert_eq!(
            layout.blob_data(&digest),
            PathBuf::from(format!("/d/docker/registry/v2/blobs/sha256/ab/{hex}/data"))
        );
        assert_eq!(
            layout.layer_link(&name, &digest),
            PathBuf::from(format!(
                "/d/docker/registry/v2/repositories/team/app/_layers/sha256/{hex}/link"
            ))
        );
        let tag = Tag::parse("v1").unwrap();
        assert_eq!(
            layout.tag_current_link(&name, &tag),
            PathBuf::from(
                "/d/docker/registry/v2/repositories/team/app/_manifests/tags/v1/current/link"
            )
        );
    }
}
