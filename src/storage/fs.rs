//! The filesystem backend: keys are paths below the data directory, in the CNCF registry's
//! filesystem layout. Small files are written to a temp name, fsynced and renamed, so a reader
//! sees the old content or the new, never a torn one; directories are fsynced after a rename
//! so the rename survives a crash. An upload appends to `_uploads/<id>/data` and becomes a
//! blob by one rename of the complete, fsynced file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use super::{ByteStream, ChunkWriter, Storage, StorageError};

/// Storage in a local data directory.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    /// Storage below `root`, created when missing.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        Ok(FsStorage {
            root: root.to_path_buf(),
        })
    }

    /// The file or directory a key names.
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

impl Storage for FsStorage {
    fn backend(&self) -> &'static str {
        "filesystem"
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match fs::read(self.path(key)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if is_absent(&error) => Ok(None),
            Err(error) => Err(StorageError::io("read", key, error)),
        }
    }

    fn write(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        write_atomic(&self.path(key), bytes).map_err(|e| StorageError::io("write", key, e))
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        file_size(&self.path(key)).map_err(|e| StorageError::io("stat", key, e))
    }

    fn modified(&self, key: &str) -> Result<Option<std::time::SystemTime>, StorageError> {
        match fs::metadata(self.path(key)) {
            Ok(meta) => Ok(meta.modified().ok()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StorageError::io("stat", key, error)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        list_dirs(&self.path(prefix)).map_err(|e| StorageError::io("list", prefix, e))
    }

    fn delete_all(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key);
        let result = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => remove_dir_all_if_present(&path),
            Ok(_) => fs::remove_file(&path),
            Err(error) if is_absent(&error) => Ok(()),
            Err(error) => Err(error),
        };
        result.map_err(|e| StorageError::io("delete", key, e))
    }

    fn open(&self, key: &str, first: u64, length: u64) -> Result<ByteStream, StorageError> {
        let opened = File::open(self.path(key)).and_then(|mut file| {
            file.seek(SeekFrom::Start(first))?;
            Ok(file)
        });
        let file = opened.map_err(|e| StorageError::io("open", key, e))?;
        Ok(Box::new(FileChunks {
            file,
            remaining: length,
            key: key.to_string(),
        }))
    }

    fn upload_create(&self, upload: &str) -> Result<(), StorageError> {
        let dir = self.path(upload);
        let created = fs::create_dir_all(&dir)
            .and_then(|()| File::create(dir.join("data")).map(drop))
            .and_then(|()| fs::write(dir.join("startedat"), started_at()));
        created.map_err(|e| StorageError::io("upload_create", upload, e))
    }

    fn upload_size(&self, upload: &str) -> Result<Option<u64>, StorageError> {
        file_size(&self.path(upload).join("data"))
            .map_err(|e| StorageError::io("upload_size", upload, e))
    }

    fn upload_append(
        &self,
        upload: &str,
        offset: u64,
    ) -> Result<Box<dyn ChunkWriter>, StorageError> {
        let file = open_append(&self.path(upload).join("data"))
            .map_err(|e| StorageError::io("upload_append", upload, e))?;
        Ok(Box::new(FileChunkWriter {
            file,
            start: offset,
            finished: false,
            key: upload.to_string(),
        }))
    }

    fn upload_read(&self, upload: &str) -> Result<ByteStream, StorageError> {
        let data = format!("{upload}/data");
        let size = self.size(&data)?.unwrap_or(0);
        self.open(&data, 0, size)
    }

    fn upload_commit(&self, upload: &str, blob: &str) -> Result<(), StorageError> {
        let data = self.path(upload).join("data");
        let target = self.path(blob);
        let moved = (|| {
            if file_size(&target)?.is_none() {
                File::open(&data)?.sync_all()?;
                rename_durable(&data, &target)?;
            }
            remove_dir_all_if_present(&self.path(upload))
        })();
        moved.map_err(|e| StorageError::io("upload_commit", upload, e))
    }
}

/// Appends one chunk to an upload's `data` file.
struct FileChunkWriter {
    file: File,
    /// The file's size when the chunk began.
    start: u64,
    finished: bool,
    key: String,
}

impl ChunkWriter for FileChunkWriter {
    fn write(&mut self, bytes: Bytes) -> Result<(), StorageError> {
        self.file
            .write_all(&bytes)
            .map_err(|error| StorageError::io("upload_append", &self.key, error))
    }

    fn finish(mut self: Box<Self>) -> Result<(), StorageError> {
        self.finished = true;
        Ok(())
    }
}

impl Drop for FileChunkWriter {
    /// A chunk that failed or was abandoned is cut off again, so the session keeps the size
    /// (and saved hash) it had.
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.file.set_len(self.start);
        }
    }
}

/// Reads a file in [`READ_CHUNK`] pieces until `remaining` bytes have been sent.
struct FileChunks {
    file: File,
    remaining: u64,
    key: String,
}

impl Iterator for FileChunks {
    type Item = Result<Bytes, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let mut buffer = BytesMut::zeroed(READ_CHUNK.min(self.remaining as usize));
        let read = match self.file.read(&mut buffer) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than its size",
            )),
            other => other,
        };
        match read {
            Ok(read) => {
                buffer.truncate(read);
                self.remaining -= read as u64;
                Some(Ok(buffer.freeze()))
            }
            Err(error) => {
                self.remaining = 0;
                Some(Err(StorageError::io("read", &self.key, error)))
            }
        }
    }
}

/// Size of each read from a file when streaming it.
const READ_CHUNK: usize = 256 * 1024;

fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// RFC 3339 UTC time, as the CNCF registry writes into `startedat`.
pub fn started_at() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Writes `bytes` to `path` atomically, creating parent directories.
///
/// # Errors
/// Any I/O error; the temp file is removed when the write fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent"))?;
    fs::create_dir_all(parent)?;

    let temp = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        sync_dir(parent)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Moves a finished file into place and makes the move durable.
pub fn rename_durable(from: &Path, to: &Path) -> io::Result<()> {
    let parent = to
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent"))?;
    fs::create_dir_all(parent)?;
    fs::rename(from, to)?;
    sync_dir(parent)
}

/// Fsyncs a directory so that entries created or renamed in it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The names of the subdirectories of `dir`, sorted; empty when `dir` does not exist.
pub fn list_dirs(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if is_absent(&error) => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Opens a file for appending, creating it when absent.
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Removes a directory tree; a missing one is not an error.
pub fn remove_dir_all_if_present(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Size of a regular file, `None` when it does not exist.
pub fn file_size(path: &Path) -> io::Result<Option<u64>> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
        Ok(_) => Ok(None),
        Err(error) if is_absent(&error) => Ok(None),
        Err(error) => Err(error),
    }
}
