//! Where every object lives: the keys of the CNCF registry's storage drivers, so an existing
//! `registry:2` data directory or bucket is served in place. Keys are relative to the
//! storage root (`storage.filesystem.root`, or `storage.s3.root` in the bucket):
//!
//! ```text
//! docker/registry/v2/
//! ├── blobs/sha256/<hex[0..2]>/<hex>/data          content, written once, never partial
//! └── repositories/<name>/
//!     ├── _layers/sha256/<hex>/link                the repository has the blob
//!     ├── _manifests/revisions/sha256/<hex>/link   the repository has the manifest
//!     ├── _manifests/tags/<tag>/current/link       the digest the tag points at now
//!     ├── _manifests/tags/<tag>/index/sha256/<hex>/link   every digest the tag has named
//!     ├── _referrers/sha256/<subject-hex>/sha256/<referrer-hex>/link
//!     │                                            a manifest whose `subject` is <subject>
//!     └── _uploads/<uuid>/                         an upload in progress: startedat,
//!         hashstates/sha256/<offset>               the running hash after <offset> bytes,
//!         data (filesystem) or chunks/<offset> (S3)  the bytes received
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
//! Every key is built from parsed names ([`RepositoryName`], [`Digest`], [`Tag`],
//! [`UploadId`]), which cannot contain `..` or separators that leave the root.

use crate::registry::name::{Digest, RepositoryName, Tag, UploadId};

/// Keys of the storage layout.
#[derive(Debug, Clone, Default)]
pub struct Layout;

/// The CNCF registry's top folder below the root.
const V2: &str = "docker/registry/v2";

impl Layout {
    /// The layout (the same under every root).
    pub fn new() -> Self {
        Layout
    }

    /// The blob's content.
    pub fn blob_data(&self, digest: &Digest) -> String {
        format!("{}/data", self.blob_dir(digest))
    }

    /// The folder that holds a blob's `data`.
    pub fn blob_dir(&self, digest: &Digest) -> String {
        let hex = digest.hex();
        let algorithm = digest.algorithm().as_str();
        format!("{V2}/blobs/{algorithm}/{}/{hex}", &hex[..2])
    }

    /// Where repositories live; each folder with `_manifests` below it is one.
    pub fn repositories(&self) -> String {
        format!("{V2}/repositories")
    }

    /// The folder of one repository.
    pub fn repository(&self, name: &RepositoryName) -> String {
        format!("{}/{}", self.repositories(), name.as_str())
    }

    /// The link that says `name` holds the layer or config blob `digest`.
    pub fn layer_link(&self, name: &RepositoryName, digest: &Digest) -> String {
        let layers = format!("{}/_layers", self.repository(name));
        format!("{}/link", digest_dir(&layers, digest))
    }

    /// The link that says `name` holds the manifest `digest`.
    pub fn manifest_revision_link(&self, name: &RepositoryName, digest: &Digest) -> String {
        format!(
            "{}/link",
            digest_dir(&self.manifest_revisions(name), digest)
        )
    }

    /// The folder of a repository's tags, one folder per tag.
    pub fn tags(&self, name: &RepositoryName) -> String {
        format!("{}/_manifests/tags", self.repository(name))
    }

    /// The folder of one tag.
    pub fn tag(&self, name: &RepositoryName, tag: &str) -> String {
        format!("{}/{tag}", self.tags(name))
    }

    /// The link to the manifest a tag names now.
    pub fn tag_current_link(&self, name: &RepositoryName, tag: &Tag) -> String {
        self.tag_current_link_named(name, tag.as_str())
    }

    /// [`Layout::tag_current_link`] for a tag name read back from storage.
    pub fn tag_current_link_named(&self, name: &RepositoryName, tag: &str) -> String {
        format!("{}/current/link", self.tag(name, tag))
    }

    /// The link that records that `tag` once named `digest`.
    pub fn tag_index_link(&self, name: &RepositoryName, tag: &Tag, digest: &Digest) -> String {
        let index = format!("{}/index", self.tag(name, tag.as_str()));
        format!("{}/link", digest_dir(&index, digest))
    }

    /// The folder of links to the manifests whose `subject` is `subject`.
    pub fn referrers(&self, name: &RepositoryName, subject: &Digest) -> String {
        digest_dir(&format!("{}/_referrers", self.repository(name)), subject)
    }

    /// The link that says `referrer` is a manifest in `name` whose `subject` is `subject`.
    pub fn referrer_link(
        &self,
        name: &RepositoryName,
        subject: &Digest,
        referrer: &Digest,
    ) -> String {
        format!(
            "{}/link",
            digest_dir(&self.referrers(name, subject), referrer)
        )
    }

    /// The folder of a repository's manifest revision links.
    pub fn manifest_revisions(&self, name: &RepositoryName) -> String {
        format!("{}/_manifests/revisions", self.repository(name))
    }

    /// The folder of one upload session.
    pub fn upload_dir(&self, name: &RepositoryName, id: &UploadId) -> String {
        format!("{}/_uploads/{}", self.repository(name), id.as_str())
    }

    /// The saved hash state of an upload after its first `offset` bytes.
    pub fn upload_hash_state(&self, name: &RepositoryName, id: &UploadId, offset: u64) -> String {
        format!("{}/hashstates/sha256/{offset}", self.upload_dir(name, id))
    }
}

/// `<base>/<algorithm>/<hex>`: how links to a digest are filed.
pub fn digest_dir(base: &str, digest: &Digest) -> String {
    format!("{base}/{}/{}", digest.algorithm().as_str(), digest.hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_cncf_registry() {
        let layout = Layout::new();
        let digest = Digest::parse(&format!("sha256:ab{}", "0".repeat(62))).unwrap();
        let name = RepositoryName::parse("team/app").unwrap();
        let hex = digest.hex();
        assert_eq!(
            layout.blob_data(&digest),
            format!("docker/registry/v2/blobs/sha256/ab/{hex}/data")
        );
        assert_eq!(
            layout.layer_link(&name, &digest),
            format!("docker/registry/v2/repositories/team/app/_layers/sha256/{hex}/link")
        );
        let tag = Tag::parse("v1").unwrap();
        assert_eq!(
            layout.tag_current_link(&name, &tag),
            "docker/registry/v2/repositories/team/app/_manifests/tags/v1/current/link"
        );
        let id = UploadId::generate();
        assert_eq!(
            layout.upload_hash_state(&name, &id, 5),
            format!(
                "docker/registry/v2/repositories/team/app/_uploads/{}/hashstates/sha256/5",
                id.as_str()
            )
        );
    }
}
