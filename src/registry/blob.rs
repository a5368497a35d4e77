//! Blobs: content-addressed bytes shared by every repository, made visible to one repository
//! by a `_layers` link. Reads check the link, so a repository never serves another's blob.

use super::{Digest, Registry, RegistryError, RepositoryName};
use crate::storage::{ByteStream, StorageError};

/// An open blob ready to stream, from the first byte to send.
pub struct BlobReader {
    /// The bytes of `range`, in chunks.
    pub chunks: ByteStream,
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
        if self
            .read_link(&self.layout.layer_link(repository, digest))?
            .as_ref()
            != Some(digest)
        {
            return Err(RegistryError::BlobUnknown);
        }
        self.storage
            .size(&self.layout.blob_data(digest))?
            .ok_or(RegistryError::BlobUnknown)
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
        let length = if size == 0 { 0 } else { last - first + 1 };
        let chunks = self
            .storage
            .open(&self.layout.blob_data(digest), first, length)?;
        Ok(BlobReader {
            chunks,
            size,
            range: (first, last),
        })
    }

    /// A short-lived URL the client may fetch the blob from directly, when blob pulls are
    /// redirected (`storage.s3.redirect`) and the backend can presign; `None` otherwise.
    ///
    /// # Errors
    /// [`RegistryError::BlobUnknown`] when the repository does not hold the blob.
    pub fn blob_redirect(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<String>, RegistryError> {
        let Some(expiry) = self.redirect else {
            return Ok(None);
        };
        self.blob_size(repository, digest)?;
        Ok(self
            .storage
            .presign(&self.layout.blob_data(digest), expiry)?)
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
        self.write_link(&self.layout.layer_link(repository, digest), digest)?;
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
        if self.storage.size(&self.layout.blob_data(digest))?.is_none() {
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
    ) -> Result<(), StorageError> {
        let link = self.layout.layer_link(repository, digest);
        if self.read_link(&link)?.as_ref() == Some(digest) {
            return Ok(());
        }
        self.write_link(&link, digest)
    }
}
