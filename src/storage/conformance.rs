//! The contract of [`Storage`] as a test suite: every backend runs [`run`] on an empty store
//! (the filesystem one in this crate's unit tests, S3 against a real Garage in
//! `tests/storage_conformance.rs`). A backend is done when it passes.
//!
//! It lives outside `cfg(test)` so that integration tests, which start real object stores,
//! can run it too. Every check panics with what the backend did wrong.

use bytes::Bytes;

use super::Storage;

/// Runs every check on `storage`, which must be empty.
///
/// # Panics
/// When the backend breaks the contract, or fails an operation.
pub fn run(storage: &dyn Storage) {
    small_objects_round_trip(storage);
    listing_names_folders_only(storage);
    delete_all_removes_a_tree_and_nothing_else(storage);
    reads_stream_the_asked_range(storage);
    uploads_grow_by_chunks_and_commit_whole(storage);
    an_unfinished_chunk_leaves_the_session_as_it_was(storage);
    commit_keeps_an_existing_blob_and_cancel_forgets(storage);
    empty_uploads_make_empty_blobs(storage);
}

/// Absent objects read as `None`; writes replace whole objects.
pub fn small_objects_round_trip(storage: &dyn Storage) {
    assert_eq!(storage.read("small/a/link").unwrap(), None, "absent read");
    assert_eq!(storage.size("small/a/link").unwrap(), None, "absent size");
    storage.write("small/a/link", b"first").unwrap();
    storage.write("small/a/link", b"second").unwrap();
    assert_eq!(storage.read("small/a/link").unwrap().unwrap(), b"second");
    assert_eq!(storage.size("small/a/link").unwrap(), Some(6));
}

/// `list` names the folders directly below a prefix, sorted, and not the objects in it.
pub fn listing_names_folders_only(storage: &dyn Storage) {
    for key in [
        "tree/b/x/link",
        "tree/a/link",
        "tree/c/d/e/link",
        "tree/object",
    ] {
        storage.write(key, b"x").unwrap();
    }
    assert_eq!(storage.list("tree").unwrap(), ["a", "b", "c"]);
    assert_eq!(storage.list("tree/c").unwrap(), ["d"]);
    assert!(storage.list("tree/a").unwrap().is_empty(), "no folders");
    assert!(storage.list("absent").unwrap().is_empty(), "absent prefix");
    // A prefix is a folder name, not a string prefix.
    assert!(storage.list("tre").unwrap().is_empty(), "partial name");
}

/// `delete_all` removes an object or a whole folder, leaving siblings that merely share a
/// name prefix; deleting what is not there succeeds.
pub fn delete_all_removes_a_tree_and_nothing_else(storage: &dyn Storage) {
    for key in ["del/ab/1/link", "del/ab/2/link", "del/abc/link", "del/file"] {
        storage.write(key, b"x").unwrap();
    }
    storage.delete_all("del/ab").unwrap();
    storage.delete_all("del/file").unwrap();
    storage.delete_all("del/never").unwrap();
    assert_eq!(storage.read("del/ab/1/link").unwrap(), None);
    assert_eq!(storage.read("del/file").unwrap(), None);
    assert_eq!(storage.read("del/abc/link").unwrap().unwrap(), b"x");
    assert_eq!(storage.list("del").unwrap(), ["abc"]);
}

/// `open` streams exactly the bytes asked for.
pub fn reads_stream_the_asked_range(storage: &dyn Storage) {
    let content = pattern(3 * 1024 * 1024 + 17);
    storage.write("range/data", &content).unwrap();
    assert_eq!(
        collect(storage, "range/data", 0, content.len() as u64),
        content
    );
    assert_eq!(collect(storage, "range/data", 5, 10), &content[5..15]);
    let tail = content.len() as u64 - 1;
    assert_eq!(
        collect(storage, "range/data", tail, 1),
        &content[tail as usize..]
    );
    assert!(collect(storage, "range/data", 0, 0).is_empty());
}

/// Chunks of any size append in order; the session's bytes read back in order; the commit
/// makes them one object and removes the session.
pub fn uploads_grow_by_chunks_and_commit_whole(storage: &dyn Storage) {
    let upload = "uploads/one";
    assert_eq!(storage.upload_size(upload).unwrap(), None, "no session yet");
    storage.upload_create(upload).unwrap();
    assert_eq!(storage.upload_size(upload).unwrap(), Some(0));

    // A chunk larger than a multipart part, in body-sized pieces; then two small ones.
    let content = pattern(9 * 1024 * 1024 + 3);
    let (big, rest) = content.split_at(9 * 1024 * 1024);
    append(storage, upload, 0, big);
    append(storage, upload, big.len() as u64, &rest[..1]);
    append(storage, upload, big.len() as u64 + 1, &rest[1..]);
    assert_eq!(
        storage.upload_size(upload).unwrap(),
        Some(content.len() as u64)
    );
    let read: Vec<u8> = storage
        .upload_read(upload)
        .unwrap()
        .flat_map(|chunk| chunk.unwrap().to_vec())
        .collect();
    assert!(read == content, "upload_read returned other bytes");

    storage.upload_commit(upload, "blobs/one/data").unwrap();
    let size = content.len() as u64;
    assert_eq!(storage.size("blobs/one/data").unwrap(), Some(size));
    assert!(
        collect(storage, "blobs/one/data", 0, size) == content,
        "blob bytes"
    );
    assert_eq!(storage.upload_size(upload).unwrap(), None, "session gone");

    // One chunk (what docker sends) takes the backend's fast path.
    storage.upload_create("uploads/single").unwrap();
    append(storage, "uploads/single", 0, b"single");
    storage
        .upload_commit("uploads/single", "blobs/single/data")
        .unwrap();
    assert_eq!(
        storage.read("blobs/single/data").unwrap().unwrap(),
        b"single"
    );
}

/// A writer dropped before `finish` adds nothing to its session.
pub fn an_unfinished_chunk_leaves_the_session_as_it_was(storage: &dyn Storage) {
    let upload = "uploads/dropped";
    storage.upload_create(upload).unwrap();
    append(storage, upload, 0, b"kept");
    let mut writer = storage.upload_append(upload, 4).unwrap();
    writer.write(Bytes::from(pattern(6 * 1024 * 1024))).unwrap();
    drop(writer);
    assert_eq!(storage.upload_size(upload).unwrap(), Some(4));
    append(storage, upload, 4, b"more");
    assert_eq!(storage.upload_size(upload).unwrap(), Some(8));
    storage.upload_cancel(upload).unwrap();
    assert_eq!(storage.upload_size(upload).unwrap(), None);
}

/// A commit onto an existing blob keeps the blob; cancel removes the session.
pub fn commit_keeps_an_existing_blob_and_cancel_forgets(storage: &dyn Storage) {
    storage.write("blobs/kept/data", b"same").unwrap();
    storage.upload_create("uploads/again").unwrap();
    append(storage, "uploads/again", 0, b"same");
    storage
        .upload_commit("uploads/again", "blobs/kept/data")
        .unwrap();
    assert_eq!(storage.read("blobs/kept/data").unwrap().unwrap(), b"same");
    assert_eq!(storage.upload_size("uploads/again").unwrap(), None);

    storage.upload_create("uploads/cancelled").unwrap();
    append(storage, "uploads/cancelled", 0, b"gone");
    storage.upload_cancel("uploads/cancelled").unwrap();
    assert_eq!(storage.upload_size("uploads/cancelled").unwrap(), None);
}

/// A session with no bytes commits to an empty blob.
pub fn empty_uploads_make_empty_blobs(storage: &dyn Storage) {
    storage.upload_create("uploads/empty").unwrap();
    append(storage, "uploads/empty", 0, b"");
    storage
        .upload_commit("uploads/empty", "blobs/empty/data")
        .unwrap();
    assert_eq!(storage.size("blobs/empty/data").unwrap(), Some(0));
}

fn append(storage: &dyn Storage, upload: &str, offset: u64, bytes: &[u8]) {
    let mut writer = storage.upload_append(upload, offset).unwrap();
    for piece in bytes.chunks(64 * 1024) {
        writer.write(Bytes::copy_from_slice(piece)).unwrap();
    }
    writer.finish().unwrap();
}

fn collect(storage: &dyn Storage, key: &str, first: u64, length: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    for chunk in storage.open(key, first, length).unwrap() {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    bytes
}

/// Bytes that differ at every offset, so a misplaced chunk shows.
fn pattern(length: usize) -> Vec<u8> {
    (0..length)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_filesystem_backend_conforms() {
        let root = tempfile::tempdir().unwrap();
        let storage = super::super::fs::FsStorage::open(root.path()).unwrap();
        super::run(&storage);
    }
}
