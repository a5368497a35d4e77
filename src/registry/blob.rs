//! Blobs: content-addressed bytes shared by every repository, made visible to one repository
//! by a `_layers` link. Reads check the link, so a repository never serves another's blob.

use std::fs::File;
use std::io::{Seek, SeekFrom};

use super::{Digest, Registry, RegistryError, RepositoryName};
use crate::storage::fs;

/// An open blob ready to stream: the file positioned at the first byte to send.
pub struct BlobReader {
    pub file: File,
    /// Total size of the blob.
    pub size: u64,
    /// The inclusive byte range being sent; the whole blob when no range was asked for.
    pub range: (u64, u64),
}

/// A byte range of a blob asked for with `Range: bytes=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `first-` or `first-last` (inclusive); a `last` past the end means the end.
    From { first: u64, last: Option<u64> },
    /// `-count`: the last `count` bytes.
    Suffix(u64),
}

impl Registry {
    /// The size of a blob linked into `repository`.
    ///
    /// # Errors
    /// [`RegistryError::BlobUnknown`] when the repository does not hold it.
    pub fn blob_size(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<u64, RegistryError> {
        if fs::read_link(&self.layout.layer_link(repository, digest))?.as_ref() != Some(digest) {
            return Err(RegistryError::BlobUnknown);
        }
        fs::file_size(&self.layout.blob_data(digest))?.ok_or(RegistryError::BlobUnknown)
    }

    /// Opens a blob for reading, optionally a byte range of it.
    ///
    /// # Errors
    /// [`RegistryError::BlobUnknown`], or [`RegistryError::RangeNotSatisfiable`] when the
    /// range starts past the end (or is an empty suffix, or the blob is empty).
    pub fn blob_open(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobReader, RegistryError> {
        let size = self.blob_size(repository, digest)?;
        let mut file = File::open(self.layout.blob_data(digest))?;

        let unsatisfiable = RegistryError::RangeNotSatisfiable { size };
        let (first, last) = match range {
            None => (0, size.saturating_sub(1)),
            Some(ByteRange::From { first, .. }) if first >= size => return Err(unsatisfiable),
            Some(ByteRange::From { first, last }) => {
                (first, last.unwrap_or(u64::MAX).min(size - 1))
            }
            Some(ByteRange::Suffix(count)) if count == 0 || size == 0 => return Err(unsatisfiable),
            Some(ByteRange::Suffix(count)) => (size - count.min(size), size - 1),
        };
        if first > 0 {
            file.seek(SeekFrom::Start(first))?;
        }
        Ok(BlobReader {
            file,
            size,
            range: (first, last),
        })
    }

    /// Makes a blob that `from` holds visible in `repository` too, without copying it.
    /// Returns whether it was mounted; `false` sends the caller to an ordinary upload.
    ///
    /// The caller must already have checked that the client may pull `from`.
    pub fn blob_mount(
        &self,
        repository: &RepositoryName,
        from: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        match self.blob_size(from, digest) {
            Ok(_) => {}
            Err(RegistryError::BlobUnknown) => return Ok(false),
            Err(error) => return Err(error),
        }
        fs::write_link(&self.layout.layer_link(repository, digest), digest)?;
        Ok(true)
    }

    /// Mounts a blob into `repository` from the first of `candidates` that holds it (the
    /// repositories the caller may pull). Returns whether one did.
    pub fn blob_mount_from_any(
        &self,
        repository: &RepositoryName,
        candidates: &[RepositoryName],
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        if fs::file_size(&self.layout.blob_data(digest))?.is_none() {
            return Ok(false);
        }
        for from in candidates {
            if self.blob_mount(repository, from, digest)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Links an existing blob into `repository`.
    pub(super) fn link_layer(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> std::io::Result<()> {
        let link = self.layout.layer_link(repository, digest);
        if fs::read_link(&link)?.as_ref() == Some(digest) {
            return Ok(());
        }
        fs::write_link(&link, digest)
    }
}
