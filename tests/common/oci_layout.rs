//! Builds small but real images on disk as OCI image layouts (`oci-layout`, `index.json`,
//! `blobs/sha256/...`) for the client tests to push: each platform image has one
//! uncompressed tar layer holding a text file, and a config whose `diff_ids` match it, so
//! podman and containerd can unpack what they pull. A run with `multi_arch` also writes an
//! OCI index over two platforms.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::{digest_of, OCI_INDEX, OCI_MANIFEST};

/// What [`write_layout`] wrote: the digests clients should see in the registry.
pub struct Layout {
    /// (architecture, manifest digest) of each platform image.
    pub platforms: Vec<(String, String)>,
    /// The digest of the index over the platforms, when there is one.
    pub index: Option<String>,
    /// The bytes of the top manifest (the index, or the only image manifest).
    pub top: Vec<u8>,
}

/// Writes an OCI layout at `dir` whose `index.json` names one image, tagged `tag`: an
/// index over amd64 and arm64 when `multi_arch`, else an amd64 image manifest.
pub fn write_layout(dir: &Path, tag: &str, multi_arch: bool) -> Layout {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();

    let arches: &[&str] = if multi_arch {
        &["amd64", "arm64"]
    } else {
        &["amd64"]
    };
    let mut platforms = Vec::new();
    let mut descriptors = Vec::new();
    for arch in arches {
        let manifest = platform_image(dir, arch, tag);
        let digest = digest_of(&manifest);
        descriptors.push(json!({
            "mediaType": OCI_MANIFEST, "digest": digest, "size": manifest.len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
        platforms.push((arch.to_string(), digest));
    }

    let (top, top_type, index) = if multi_arch {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors});
        let bytes = serde_json::to_vec(&index).unwrap();
        let digest = write_blob(dir, &bytes);
        (bytes, OCI_INDEX, Some(digest))
    } else {
        let digest = &platforms[0].1;
        let bytes = std::fs::read(blob_path(dir, digest)).unwrap();
        (bytes, OCI_MANIFEST, None)
    };
    let layout_index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": top_type, "digest": digest_of(&top), "size": top.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&layout_index).unwrap(),
    )
    .unwrap();
    Layout {
        platforms,
        index,
        top,
    }
}

/// One platform's layer, config and manifest; returns the manifest's bytes.
fn platform_image(dir: &Path, arch: &str, tag: &str) -> Vec<u8> {
    let scratch = tempfile::tempdir().unwrap();
    let content = scratch.path().join("content");
    std::fs::create_dir(&content).unwrap();
    std::fs::write(
        content.join("hello.txt"),
        format!("hello from {arch} {tag}\n"),
    )
    .unwrap();
    let tar = scratch.path().join("layer.tar");
    let status = Command::new("tar")
        .args([
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
            "-cf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(&content)
        .arg("hello.txt")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    let layer = std::fs::read(&tar).unwrap();
    let layer_digest = write_blob(dir, &layer);

    let config = json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": format!("berth test {tag}")}],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = write_blob(dir, &config);

    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest, "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest, "size": layer.len(),
        }],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    write_blob(dir, &manifest);
    manifest
}

fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let digest = digest_of(bytes);
    std::fs::write(blob_path(dir, &digest), bytes).unwrap();
    digest
}

fn blob_path(dir: &Path, digest: &str) -> std::path::PathBuf {
    dir.join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// A folder holding only the Berth dev CA as `ca.crt`: the shape containers/image tools
/// (skopeo, podman) read with `--cert-dir`, where a stray `.key` would be taken for a
/// client certificate.
pub fn cert_dir(ca: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(ca, dir.path().join("ca.crt")).unwrap();
    dir
}
