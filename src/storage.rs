//! Storage for the registry: the [`Storage`] trait, the contract every backend meets; where
//! objects live ([`layout`]); and the backends: the local filesystem ([`fs`]) and
//! S3-compatible object stores ([`s3`]). [`conformance`] is the test suite that proves a
//! backend meets the contract.
//!
//! The registry engine addresses everything by *key*: a `/`-separated path below the
//! storage root, built by [`Layout`] from parsed names, such as
//! `docker/registry/v2/blobs/sha256/ab/<hex>/data`. "Folders" exist only as key prefixes,
//! as in an object store; on disk they are directories.
//!
//! The trait is synchronous. The engine runs on tokio's blocking pool (see
//! [`crate::registry`]), a request's body flows through a bounded channel into one blocking
//! writer, and the S3 backend drives its async client on a small runtime of its own. So
//! each request holds one blocking thread while it streams, as it did before the trait,
//! and the engine stays plain sequential code.

pub mod conformance;
pub mod fs;
pub mod layout;
pub mod s3;

use std::time::Duration;

use bytes::Bytes;

pub use layout::Layout;

/// What the registry needs from a place to keep content.
///
/// Guarantees every backend gives:
/// - [`Storage::write`] and [`Storage::upload_commit`] are atomic: a reader sees the old
///   object or the complete new one, never part of one.
/// - A blob key appears only through [`Storage::upload_commit`] (or a whole-object
///   [`Storage::write`] of a manifest); a failed or abandoned upload leaves nothing there.
/// - Upload sessions live in the store, not in process memory: any process sharing the
///   store can continue a session another started.
pub trait Storage: Send + Sync {
    /// The backend's name for logs and metric labels: `filesystem` or `s3`.
    fn backend(&self) -> &'static str;

    /// A small object's whole content (a link or a manifest); `None` when it does not exist.
    ///
    /// # Errors
    /// The backend's failure, never "not found".
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Replaces a small object atomically.
    ///
    /// # Errors
    /// The backend's failure; the old content, if any, is still there then.
    fn write(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError>;

    /// The size of the object at `key`; `None` when there is none.
    ///
    /// # Errors
    /// The backend's failure, never "not found".
    fn size(&self, key: &str) -> Result<Option<u64>, StorageError>;

    /// When the object at `key` was last written; `None` when there is none or the backend
    /// cannot tell. Used only for display (push times in the web UI).
    ///
    /// # Errors
    /// The backend's failure, never "not found".
    fn modified(&self, key: &str) -> Result<Option<std::time::SystemTime>, StorageError>;

    /// The names of the folders directly below `prefix`, sorted; empty when there are none.
    /// Objects directly in `prefix` are not listed.
    ///
    /// # Errors
    /// The backend's failure.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;

    /// Deletes the object `key` and everything below it as a folder; nothing there is fine.
    ///
    /// # Errors
    /// The backend's failure; part of the tree may be gone then.
    fn delete_all(&self, key: &str) -> Result<(), StorageError>;

    /// Streams `length` bytes of the object at `key` from byte `first`.
    ///
    /// # Errors
    /// The backend's failure when opening; later failures arrive in the stream.
    fn open(&self, key: &str, first: u64, length: u64) -> Result<ByteStream, StorageError>;

    /// A URL from which a client may `GET` the object at `key` directly for `expires`;
    /// `None` when the backend cannot hand out such URLs (the filesystem).
    ///
    /// # Errors
    /// The backend's failure to sign.
    fn presign(&self, key: &str, expires: Duration) -> Result<Option<String>, StorageError> {
        let _ = (key, expires);
        Ok(None)
    }

    /// Creates an empty upload session in the folder `upload` (and its `startedat`).
    ///
    /// # Errors
    /// The backend's failure.
    fn upload_create(&self, upload: &str) -> Result<(), StorageError>;

    /// Bytes the session in `upload` has received; `None` when there is no such session.
    ///
    /// # Errors
    /// The backend's failure, or [`StorageError::UploadInconsistent`].
    fn upload_size(&self, upload: &str) -> Result<Option<u64>, StorageError>;

    /// Opens the session for one more chunk, which starts at `offset` (the session's size,
    /// checked by the caller). Nothing of the chunk counts until [`ChunkWriter::finish`];
    /// a writer dropped unfinished leaves the session as it was.
    ///
    /// # Errors
    /// The backend's failure.
    fn upload_append(
        &self,
        upload: &str,
        offset: u64,
    ) -> Result<Box<dyn ChunkWriter>, StorageError>;

    /// Streams every byte the session has received, in order (to hash it again).
    ///
    /// # Errors
    /// The backend's failure.
    fn upload_read(&self, upload: &str) -> Result<ByteStream, StorageError>;

    /// Makes the session's bytes the object `blob`, atomically, and removes the session. The
    /// caller has checked the bytes' digest. When `blob` already exists (the same content,
    /// since blob keys are digests) it is left as it is.
    ///
    /// # Errors
    /// The backend's failure; `blob` is then absent or complete, never partial.
    fn upload_commit(&self, upload: &str, blob: &str) -> Result<(), StorageError>;

    /// Ends the session in `upload` and deletes what it received.
    ///
    /// # Errors
    /// The backend's failure.
    fn upload_cancel(&self, upload: &str) -> Result<(), StorageError> {
        self.delete_all(upload)
    }
}

/// Chunks of an object, in order, as they arrive from the backend.
pub type ByteStream = Box<dyn Iterator<Item = Result<Bytes, StorageError>> + Send>;

/// One chunk of an upload on its way into storage; made by [`Storage::upload_append`].
pub trait ChunkWriter: Send {
    /// Stores the next bytes of the chunk.
    ///
    /// # Errors
    /// The backend's failure; the writer is unusable afterwards and the session keeps the
    /// size it had before this chunk.
    fn write(&mut self, bytes: Bytes) -> Result<(), StorageError>;

    /// Makes the chunk part of the session.
    ///
    /// # Errors
    /// The backend's failure; the session keeps the size it had before this chunk.
    fn finish(self: Box<Self>) -> Result<(), StorageError>;
}

/// Why a storage operation failed. Not-found is not an error: operations return `None`.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A filesystem `operation` on `key` failed.
    #[error("filesystem {operation} of {key} failed")]
    Io {
        operation: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },

    /// The object store failed `operation` on `key`, after the retries that were safe.
    #[error("object store {operation} of {key} failed")]
    ObjectStore {
        operation: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },

    /// The chunks of upload session `upload` do not line up (two writers raced on one
    /// session): `detail` says where.
    #[error("upload {upload} is inconsistent: {detail}")]
    UploadInconsistent { upload: String, detail: String },
}

impl StorageError {
    /// The operation that failed, as the `operation` metric label.
    pub fn operation(&self) -> &'static str {
        match self {
            StorageError::Io { operation, .. } | StorageError::ObjectStore { operation, .. } => {
                operation
            }
            StorageError::UploadInconsistent { .. } => "upload_size",
        }
    }

    /// The backend that failed, as the `backend` metric label.
    pub fn backend(&self) -> &'static str {
        match self {
            StorageError::Io { .. } => "filesystem",
            StorageError::ObjectStore { .. } => "s3",
            StorageError::UploadInconsistent { .. } => "any",
        }
    }

    /// Whether the store could not be reached or answered with a server error, timeout or
    /// throttling even after retries: the client should try again later.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StorageError::ObjectStore {
                source: object_store::Error::Generic { .. },
                ..
            }
        )
    }

    /// A filesystem error on `key` during `operation`.
    pub fn io(operation: &'static str, key: &str, source: std::io::Error) -> Self {
        StorageError::Io {
            operation,
            key: key.to_string(),
            source,
        }
    }
}
