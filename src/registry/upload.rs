//! Upload sessions: a blob arrives in one or more chunks into the session's folder
//! (`_uploads/<id>`), is hashed as it streams, and becomes a blob only when the client's
//! digest matches what was stored. A mismatch, an abandoned session or a crash never leaves a
//! partial blob visible: the backend makes the blob appear in one atomic step.
//!
//! The running SHA-256 is saved in the session after every chunk
//! (`hashstates/sha256/<offset>`, see [`super::hash_state`]), so the next chunk continues
//! it on whichever node receives it, and completing a session needs no second pass over
//! its bytes. A session without a saved state for its size (one a crash interrupted between
//! the chunk and the state) is hashed again from its bytes, once. `sha512` digests are always
//! computed that way, at completion.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sha2::{Digest as _, Sha512};

use super::hash_state::HashState;
use super::name::Algorithm;
use super::{Digest, Registry, RegistryError, RepositoryName, UploadId};
use crate::storage::{ByteStream, ChunkWriter, StorageError};

/// Appends one chunk to an upload session; created by [`Registry::upload_append`] and handed
/// back with [`Registry::upload_chunk_done`]. Runs on a blocking thread.
pub struct UploadWriter {
    chunk: Box<dyn ChunkWriter>,
    repository: RepositoryName,
    id: UploadId,
    hash: HashState,
    /// Marks the session busy until the writer is handed back or dropped.
    _busy: BusyGuard,
}

/// The upload sessions being written to now, by id.
#[derive(Default)]
pub(super) struct BusyUploads(Arc<Mutex<HashSet<UploadId>>>);

impl BusyUploads {
    /// Marks `id` busy; `None` when another request already writes to it.
    fn claim(&self, id: &UploadId) -> Option<BusyGuard> {
        let mut busy = self.0.lock().expect("busy uploads lock poisoned");
        busy.insert(id.clone()).then(|| BusyGuard {
            set: self.0.clone(),
            id: id.clone(),
        })
    }
}

/// Frees its session for the next writer when dropped, whatever happened to the chunk.
struct BusyGuard {
    set: Arc<Mutex<HashSet<UploadId>>>,
    id: UploadId,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.set.lock() {
            busy.remove(&self.id);
        }
    }
}

impl UploadWriter {
    /// Stores and hashes `chunk`.
    ///
    /// # Errors
    /// The backend's failure; the session then keeps the size it had before this chunk.
    pub fn write(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        self.hash.update(&chunk);
        self.chunk.write(chunk)
    }

    /// Bytes in the session so far, this chunk included.
    pub fn offset(&self) -> u64 {
        self.hash.length()
    }
}

impl Registry {
    /// Starts an upload session in `repository`.
    pub fn upload_start(&self, repository: &RepositoryName) -> Result<UploadId, RegistryError> {
        let id = UploadId::generate();
        let upload = self.layout.upload_dir(repository, &id);
        self.storage.upload_create(&upload)?;
        self.save_hash_state(repository, &id, &HashState::new())?;
        Ok(id)
    }

    /// Bytes received so far by a session.
    ///
    /// # Errors
    /// [`RegistryError::BlobUploadUnknown`] when the session does not exist.
    pub fn upload_size(
        &self,
        repository: &RepositoryName,
        id: &UploadId,
    ) -> Result<u64, RegistryError> {
        self.storage
            .upload_size(&self.layout.upload_dir(repository, id))?
            .ok_or(RegistryError::BlobUploadUnknown)
    }

    /// Opens a session for one more chunk. `start`, from a `Content-Range`, must equal the
    /// bytes received so far.
    ///
    /// # Errors
    /// [`RegistryError::BlobUploadUnknown`], or [`RegistryError::RangeInvalid`] for a chunk
    /// that does not continue where the last one ended.
    pub fn upload_append(
        &self,
        repository: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
    ) -> Result<UploadWriter, RegistryError> {
        let busy = self.claim_session(id)?;
        let size = self.upload_size(repository, id)?;
        if start.is_some_and(|start| start != size) {
            return Err(RegistryError::RangeInvalid {
                repository: repository.clone(),
                id: id.clone(),
                current_size: size,
            });
        }
        let hash = self.hash_state(repository, id, size)?;
        let upload = self.layout.upload_dir(repository, id);
        let chunk = self.storage.upload_append(&upload, size)?;
        Ok(UploadWriter {
            chunk,
            repository: repository.clone(),
            id: id.clone(),
            hash,
            _busy: busy,
        })
    }

    /// Makes a writer's chunk part of its session and saves the hash for the next one;
    /// returns the session's size.
    ///
    /// # Errors
    /// The backend's failure; the session then keeps the size it had before this chunk.
    pub fn upload_chunk_done(&self, writer: UploadWriter) -> Result<u64, RegistryError> {
        let UploadWriter {
            chunk,
            repository,
            id,
            hash,
            _busy,
        } = writer;
        chunk.finish()?;
        // Limitation: a crash here leaves the chunk without its hash state; the next chunk
        // or the completion then hashes the session's bytes again from storage.
        self.save_hash_state(&repository, &id, &hash)?;
        Ok(hash.length())
    }

    /// Completes a session: checks the bytes against `digest`, then makes them the blob
    /// `digest` in `repository`. The session is gone afterwards, whatever the outcome.
    ///
    /// # Errors
    /// [`RegistryError::BlobUploadUnknown`], or [`RegistryError::DigestInvalid`] when the
    /// content does not match (nothing is stored then).
    pub fn upload_complete(
        &self,
        repository: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
    ) -> Result<u64, RegistryError> {
        // Held until the blob is committed: a chunk written between the digest check and
        // the commit would otherwise become part of a blob every repository shares.
        let _busy = self.claim_session(id)?;
        let size = self.upload_size(repository, id)?;
        let upload = self.layout.upload_dir(repository, id);

        // The client's digest is a claim; the bytes we stored are the truth.
        let actual = match digest.algorithm() {
            Algorithm::Sha256 => self.hash_state(repository, id, size)?.digest(),
            Algorithm::Sha512 => {
                let mut sha512 = Sha512::new();
                hash_stream(self.storage.upload_read(&upload)?, |c| sha512.update(c))?;
                Digest::from_sha512(sha512.finalize().into())
            }
        };
        if &actual != digest {
            self.storage.upload_cancel(&upload)?;
            return Err(RegistryError::DigestInvalid {
                detail: format!("content hashes to {actual}, not {digest}"),
            });
        }

        self.storage
            .upload_commit(&upload, &self.layout.blob_data(digest))?;
        self.link_layer(repository, digest)?;
        Ok(size)
    }

    /// Cancels a session and deletes what it received.
    pub fn upload_cancel(
        &self,
        repository: &RepositoryName,
        id: &UploadId,
    ) -> Result<(), RegistryError> {
        let _busy = self.claim_session(id)?;
        self.upload_size(repository, id)?;
        self.storage
            .upload_cancel(&self.layout.upload_dir(repository, id))?;
        Ok(())
    }

    /// Claims `id` for one request: a chunk, the completion or the cancel. The claim ends
    /// when the guard is dropped.
    ///
    /// Limitation: this holds within one process; two nodes sharing a bucket can still
    /// work on one session at once, which the digest check then usually refuses.
    fn claim_session(&self, id: &UploadId) -> Result<BusyGuard, RegistryError> {
        self.busy_uploads
            .claim(id)
            .ok_or_else(|| RegistryError::BlobUploadInvalid {
                detail: "another request is working on this upload session; retry when it ends"
                    .into(),
            })
    }

    /// The session's hash after its first `size` bytes: the saved one, or else computed
    /// again from the bytes in storage.
    fn hash_state(
        &self,
        repository: &RepositoryName,
        id: &UploadId,
        size: u64,
    ) -> Result<HashState, RegistryError> {
        let key = self.layout.upload_hash_state(repository, id, size);
        let saved = self
            .storage
            .read(&key)?
            .and_then(|b| HashState::from_bytes(&b));
        if let Some(state) = saved.filter(|state| state.length() == size) {
            return Ok(state);
        }
        let mut state = HashState::new();
        let upload = self.layout.upload_dir(repository, id);
        hash_stream(self.storage.upload_read(&upload)?, |c| state.update(c))?;
        Ok(state)
    }

    fn save_hash_state(
        &self,
        repository: &RepositoryName,
        id: &UploadId,
        state: &HashState,
    ) -> Result<(), StorageError> {
        let key = self
            .layout
            .upload_hash_state(repository, id, state.length());
        self.storage.write(&key, &state.to_bytes())
    }
}

/// Feeds every chunk of `stream` to `update`.
fn hash_stream(stream: ByteStream, mut update: impl FnMut(&[u8])) -> Result<(), StorageError> {
    for chunk in stream {
        update(&chunk?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry in a fresh temp dir (kept alive by the returned guard) and an upload
    /// session started in `repository`.
    fn new_session(repository: &str) -> (tempfile::TempDir, Registry, RepositoryName, UploadId) {
        let root = tempfile::tempdir().unwrap();
        let registry = Registry::open(root.path()).unwrap();
        let repository = RepositoryName::parse(repository).unwrap();
        let id = registry.upload_start(&repository).unwrap();
        (root, registry, repository, id)
    }

    #[test]
    fn a_session_takes_one_writer_at_a_time() {
        let (_root, registry, repository, id) = new_session("a");

        let first = registry.upload_append(&repository, &id, None).unwrap();
        let second = registry.upload_append(&repository, &id, None);
        assert!(matches!(
            second,
            Err(RegistryError::BlobUploadInvalid { .. })
        ));

        // Handing the writer back, or dropping it after a failure, frees the session.
        registry.upload_chunk_done(first).unwrap();
        let again = registry.upload_append(&repository, &id, None).unwrap();
        drop(again);
        assert!(registry.upload_append(&repository, &id, None).is_ok());
    }

    #[test]
    fn no_chunk_is_written_while_a_session_completes_or_cancels() {
        let (_root, registry, repository, id) = new_session("a");
        let mut writer = registry.upload_append(&repository, &id, None).unwrap();
        writer.write(Bytes::from_static(b"hello")).unwrap();

        // A completion or cancel racing a chunk in flight is refused, not merged.
        let digest = Digest::sha256_of(b"hello");
        let completed = registry.upload_complete(&repository, &id, &digest);
        assert!(matches!(
            completed,
            Err(RegistryError::BlobUploadInvalid { .. })
        ));
        let cancelled = registry.upload_cancel(&repository, &id);
        assert!(matches!(
            cancelled,
            Err(RegistryError::BlobUploadInvalid { .. })
        ));

        // Once the chunk is done, the completion goes through, and the session is gone.
        registry.upload_chunk_done(writer).unwrap();
        assert_eq!(
            registry.upload_complete(&repository, &id, &digest).unwrap(),
            5
        );
        assert!(matches!(
            registry.upload_append(&repository, &id, None),
            Err(RegistryError::BlobUploadUnknown)
        ));
    }

    #[test]
    fn a_mismatched_digest_stores_nothing() {
        let (_root, registry, repository, id) = new_session("a/b");
        let mut writer = registry.upload_append(&repository, &id, Some(0)).unwrap();
        writer.write(Bytes::from_static(b"hello")).unwrap();
        registry.upload_chunk_done(writer).unwrap();

        let wrong = Digest::sha256_of(b"other");
        let result = registry.upload_complete(&repository, &id, &wrong);
        assert!(matches!(result, Err(RegistryError::DigestInvalid { .. })));
        let storage = registry.storage();
        assert_eq!(
            storage.size(&registry.layout.blob_data(&wrong)).unwrap(),
            None
        );
        let upload = registry.layout.upload_dir(&repository, &id);
        assert_eq!(storage.upload_size(&upload).unwrap(), None);
    }

    #[test]
    fn chunks_must_continue_where_the_last_ended_and_survive_a_lost_hash_state() {
        let (_root, registry, repository, id) = new_session("a");

        let mut writer = registry.upload_append(&repository, &id, None).unwrap();
        writer.write(Bytes::from_static(b"hel")).unwrap();
        registry.upload_chunk_done(writer).unwrap();
        assert!(matches!(
            registry.upload_append(&repository, &id, Some(0)),
            Err(RegistryError::RangeInvalid {
                current_size: 3,
                ..
            })
        ));

        // As after a crash between chunk and hash state: the state is rebuilt from the bytes.
        let state = registry.layout.upload_hash_state(&repository, &id, 3);
        registry.storage().delete_all(&state).unwrap();
        let mut writer = registry.upload_append(&repository, &id, Some(3)).unwrap();
        writer.write(Bytes::from_static(b"lo")).unwrap();
        registry.upload_chunk_done(writer).unwrap();

        let digest = Digest::sha256_of(b"hello");
        assert_eq!(
            registry.upload_complete(&repository, &id, &digest).unwrap(),
            5
        );
        assert_eq!(registry.blob_size(&repository, &digest).unwrap(), 5);
    }
}
