//! Filesystem primitives with the crash guarantees the registry relies on: small files are
//! written to a temp name, fsynced and renamed, so a reader sees the old content or the new,
//! never a torn one; directories are fsynced after a rename so the rename survives a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::registry::name::Digest;

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

/// Reads a `link` file holding a digest; `None` when it does not exist or is not a digest.
pub fn read_link(path: &Path) -> io::Result<Option<Digest>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Digest::parse(text.trim()).ok()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Writes a `link` file pointing at `digest`.
pub fn write_link(path: &Path, digest: &Digest) -> io::Result<()> {
    write_atomic(path, digest.to_string().as_bytes())
}

/// The names of the subdirectories of `dir`, sorted; empty when `dir` does not exist.
pub fn list_dirs(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
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

/// The digests named by `<algorithm>/<hex>` folders below `dir` (a `_layers`, revisions or
/// referrers folder), sorted; folders whose names are not a digest are skipped.
pub fn digests_below(dir: &Path) -> io::Result<Vec<Digest>> {
    let mut digests = Vec::new();
    for algorithm in list_dirs(dir)? {
        for hex in list_dirs(&dir.join(&algorithm))? {
            if let Ok(digest) = Digest::parse(&format!("{algorithm}:{hex}")) {
                digests.push(digest);
            }
        }
    }
    Ok(digests)
}

/// Opens a file for appending, creating it when absent.
pub fn open_append(path: &Path) -> io::Result<File> {
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
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}
