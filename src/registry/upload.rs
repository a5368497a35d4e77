//! Upload sessions: a blob arrives in one or more chunks into `_uploads/<id>/data`, is hashed
//! as it streams, and becomes a blob only when the client's digest matches what was stored.
//! A mismatch, an abandoned session or a crash never leaves a partial blob visible: the
//! blob appears by one rename of a complete, fsynced file.

use std::fs::File;
use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256, Sha512};

use super::name::Algorithm;
use super::{Digest, Registry, RegistryError, RepositoryName, UploadId};
use crate::storage::fs;

/// How far an upload has got and the running sha256 of its bytes.
#[derive(Clone)]
pub struct HashState {
    offset: u64,
    sha256: Sha256,
}

/// Appends one chunk to an upload session; created by [`Registry::upload_append`] and handed
/// back with [`Registry::upload_chunk_done`]. Runs on a blocking thread.
pub struct UploadWriter {
    file: File,
    id: UploadId,
    state: HashState,
}

impl UploadWriter {
    /// Writes and hashes `chunk`. On failure the file is cut back to where the chunk began,
    /// so file and hash never disagree.
    ///
    /// # Errors
    /// The write's I/O error (disk full, for one).
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        if let Err(error) = self.file.write_all(chunk) {
            let _ = self.file.set_len(self.state.offset);
            return Err(error);
        }
        self.state.sha256.update(chunk);
        self.state.offset += chunk.len() as u64;
        Ok(())
    }

    /// Bytes in the session so far.
    pub fn offset(&self) -> u64 {
        self.state.offset
    }
}

impl Registry {
    /// Starts an upload session in `repository`.
    pub fn upload_start(&self, repository: &RepositoryName) -> Result<UploadId, RegistryError> {
        let id = UploadId::generate();
        let dir = self.layout.upload_dir(repository, &id);
        std::fs::create_dir_all(&dir)?;
        File::create(dir.join("data"))?;
        let started_at = humantime_now();
        std::fs::write(dir.join("startedat"), started_at)?;

        self.upload_hashes
            .lock()
            .expect("upload hash map lock poisoned")
            .insert(
                id.clone(),
                HashState {
                    offset: 0,
                    sha256: Sha256::new(),
                },
            );
        Ok(id)
    }

    /// Bytes received so far by a session.
    ///
    /// # Errors
    /// [`RegistryError::BlobUploadUnknown`] when the session does not exist here.
    pub fn upload_size(
        &self,
        repository: &RepositoryName,
        id: &UploadId,
    ) -> Result<u64, RegistryError> {
        fs::file_size(&self.layout.upload_data(repository, id))?
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
        let state = self.take_hash_state(repository, id)?;
        if let Some(start) = start {
            if start != state.offset {
                self.put_hash_state(id, state.clone());
                return Err(RegistryError::RangeInvalid {
                    repository: repository.clone(),
                    id: id.clone(),
                    current_size: state.offset,
                });
            }
        }
        let file = match fs::open_append(&self.layout.upload_data(repository, id)) {
            Ok(file) => file,
            Err(error) => {
                self.put_hash_state(id, state);
                return Err(error.into());
            }
        };
        Ok(UploadWriter {
            file,
            id: id.clone(),
            state,
        })
    }

    /// Hands a writer back after its chunk, keeping the hash for the next one; returns the
    /// session's size.
    pub fn upload_chunk_done(&self, writer: UploadWriter) -> u64 {
        let offset = writer.state.offset;
        self.put_hash_state(&writer.id, writer.state);
        offset
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
        let state = self.take_hash_state(repository, id)?;
        let data = self.layout.upload_data(repository, id);
        let upload_dir = self.layout.upload_dir(repository, id);

        // The client's digest is a claim; the bytes we stored are the truth.
        let actual = match digest.algorithm() {
            Algorithm::Sha256 => Digest::from_sha256(state.sha256.finalize().into()),
            Algorithm::Sha512 => hash_file_sha512(&data)?,
        };
        if &actual != digest {
            fs::remove_dir_all_if_present(&upload_dir)?;
            return Err(RegistryError::DigestInvalid {
                detail: format!("content hashes to {actual}, not {digest}"),
            });
        }

        let target = self.layout.blob_data(digest);
        if fs::file_size(&target)?.is_none() {
            File::open(&data)?.sync_all()?;
            fs::rename_durable(&data, &target)?;
        }
        self.link_layer(repository, digest)?;
        fs::remove_dir_all_if_present(&upload_dir)?;
        Ok(state.offset)
    }

    /// Cancels a session and deletes what it received.
    pub fn upload_cancel(
        &self,
        repository: &RepositoryName,
        id: &UploadId,
    ) -> Result<(), RegistryError> {
        self.take_hash_state(repository, id)?;
        fs::remove_dir_all_if_present(&self.layout.upload_dir(repository, id))?;
        Ok(())
    }

    /// Takes a session's hash state out of the map, or rebuilds it from the data file when
    /// the process restarted since the last chunk.
    fn take_hash_state(
        &self,
        repository: &RepositoryName,
        id: &UploadId,
    ) -> Result<HashState, RegistryError> {
        let data = self.layout.upload_data(repository, id);
        let Some(size) = fs::file_size(&data)? else {
            return Err(RegistryError::BlobUploadUnknown);
        };
        let cached = self
            .upload_hashes
            .lock()
            .expect("upload hash map lock poisoned")
            .remove(id);
        match cached {
            Some(state) if state.offset == size => Ok(state),
            _ => Ok(hash_file_sha256(&data)?),
        }
    }

    fn put_hash_state(&self, id: &UploadId, state: HashState) {
        self.upload_hashes
            .lock()
            .expect("upload hash map lock poisoned")
            .insert(id.clone(), state);
    }
}

fn hash_file_sha256(path: &std::path::Path) -> io::Result<HashState> {
    let mut sha256 = Sha256::new();
    let offset = hash_file(path, |chunk| sha256.update(chunk))?;
    Ok(HashState { offset, sha256 })
}

fn hash_file_sha512(path: &std::path::Path) -> io::Result<Digest> {
    let mut sha512 = Sha512::new();
    hash_file(path, |chunk| sha512.update(chunk))?;
    Ok(Digest::from_sha512(sha512.finalize().into()))
}

fn hash_file(path: &std::path::Path, mut update: impl FnMut(&[u8])) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(total);
        }
        update(&buffer[..read]);
        total += read as u64;
    }
}

/// RFC 3339 UTC time, as the CNCF registry writes into `startedat`.
fn humantime_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatched_digest_stores_nothing() {
        let root = tempfile::tempdir().unwrap();
        let registry = Registry::open(root.path()).unwrap();
        let repository = RepositoryName::parse("a/b").unwrap();
        let id = registry.upload_start(&repository).unwrap();
        let mut writer = registry.upload_append(&repository, &id, Some(0)).unwrap();
        writer.write(b"hello").unwrap();
        registry.upload_chunk_done(writer);

        let wrong = Digest::sha256_of(b"other");
        let result = registry.upload_complete(&repository, &id, &wrong);
        assert!(matches!(result, Err(RegistryError::DigestInvalid { .. })));
        assert!(!registry.layout.blob_data(&wrong).exists());
        assert!(!registry.layout.upload_dir(&repository, &id).exists());
    }

    #[test]
    fn chunks_must_continue_where_the_last_ended_and_survive_a_lost_hash_state() {
        let root = tempfile::tempdir().unwrap();
        let registry = Registry::open(root.path()).unwrap();
        let repository = RepositoryName::parse("a").unwrap();
        let id = registry.upload_start(&repository).unwrap();

        let mut writer = registry.upload_append(&repository, &id, None).unwrap();
        writer.write(b"hel").unwrap();
        registry.upload_chunk_done(writer);
        assert!(matches!(
            registry.upload_append(&repository, &id, Some(0)),
            Err(RegistryError::RangeInvalid {
                current_size: 3,
                ..
            })
        ));

        // As after a restart: the in-memory hash is gone and is rebuilt from the file.
        registry.upload_hashes.lock().unwrap().clear();
        let mut writer = registry.upload_append(&repository, &id, Some(3)).unwrap();
        writer.write(b"lo").unwrap();
        registry.upload_chunk_done(writer);

        let digest = Digest::sha256_of(b"hello");
        assert_eq!(
            registry.upload_complete(&repository, &id, &digest).unwrap(),
            5
        );
        assert_eq!(registry.blob_size(&repository, &digest).unwrap(), 5);
    }
}
