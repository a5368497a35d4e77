//! skopeo (containers/image) against Berth through TLS and basic auth: `copy` between `oci:`
//! and `dir:` layouts and Berth (a multi-architecture index with `--all`, by tag and by
//! digest), `inspect`, `list-tags` and `delete`.

mod common;

use std::path::Path;
use std::process::Command;

use common::oci_layout::{cert_dir, write_layout};
use common::*;

/// skopeo signed in to one Berth as alice, trusting its dev CA.
struct Skopeo<'a> {
    berth: &'a Berth,
    certs: tempfile::TempDir,
    creds: String,
}

impl Skopeo<'_> {
    /// Runs skopeo with `args`; panics with its output (and Berth's log) when it fails.
    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("skopeo")
            .args(args)
            .output()
            .expect("run skopeo: tests/run-all.sh installs it");
        assert!(
            output.status.success(),
            "skopeo {args:?} failed:\n{}\n{}\nberth log tail:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            tail(&self.berth.log())
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `skopeo [global] copy [extra] from to` with Berth's trust and credentials on the
    /// side(s) named by `sides` (`"src"`, `"dest"`).
    fn copy(&self, global: &[&str], extra: &[&str], sides: &[&str], from: &str, to: &str) {
        let certs = path(self.certs.path()).to_string();
        let mut args: Vec<String> = global.iter().map(|a| a.to_string()).collect();
        args.push("copy".into());
        args.extend(extra.iter().map(|a| a.to_string()));
        for side in sides {
            args.extend([format!("--{side}-cert-dir"), certs.clone()]);
            args.extend([format!("--{side}-creds"), self.creds.clone()]);
        }
        args.extend([from.to_string(), to.to_string()]);
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// `skopeo [global] command --cert-dir .. --creds .. target` (inspect, list-tags, delete).
    fn at(&self, global: &[&str], command: &[&str], target: &str) -> String {
        let mut args: Vec<&str> = global.to_vec();
        args.extend(command);
        args.extend([
            "--cert-dir",
            path(self.certs.path()),
            "--creds",
            &self.creds,
        ]);
        args.push(target);
        self.run(&args)
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

#[test]
fn skopeo_copies_inspects_lists_and_deletes() {
    let berth = Berth::start_with_delete(
        false,
        &format!(
            "{}acl:\n  - {{users: [alice], repos: [\"alice/**\"], \
             actions: [pull, push, delete]}}\n",
            users_block(&["alice"])
        ),
    );
    let skopeo = Skopeo {
        berth: &berth,
        certs: cert_dir(&berth.ca_path()),
        creds: format!("alice:{PASSWORD}"),
    };
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    write_layout(&layout, "v1", true);
    let host = berth.host();
    let digest_file = work.path().join("digest");

    // oci: -> Berth, every platform, by tag.
    let target = format!("docker://{host}/alice/multi:v1");
    let source = format!("oci:{}:v1", path(&layout));
    let extra = ["--all", "--digestfile", path(&digest_file)];
    skopeo.copy(&[], &extra, &["dest"], &source, &target);
    let index = std::fs::read_to_string(&digest_file).unwrap();

    // skopeo may re-encode what it copies; what Berth serves is what skopeo pushed, and
    // inspect resolves a platform from it.
    let raw = skopeo.at(&[], &["inspect", "--raw"], &target);
    assert_eq!(digest_of(raw.as_bytes()), index);
    let top: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(top["mediaType"], OCI_INDEX);
    let platforms: Vec<String> = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(platforms.len(), 2);
    let arm64 = ["--override-arch", "arm64", "--override-os", "linux"];
    let inspected = skopeo.at(&arm64, &["inspect"], &target);
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected["Architecture"], "arm64");
    // skopeo reports the digest it was asked for: the index's.
    assert_eq!(inspected["Digest"].as_str(), Some(index.as_str()));

    // Berth -> dir:, every platform, by the index digest.
    let by_digest = format!("docker://{host}/alice/multi@{index}");
    let pulled = work.path().join("pulled");
    let dest = format!("dir:{}", path(&pulled));
    skopeo.copy(&[], &["--all"], &["src"], &by_digest, &dest);
    assert_eq!(
        std::fs::read(pulled.join("manifest.json")).unwrap(),
        raw.as_bytes()
    );
    for digest in &platforms {
        let hex = digest.strip_prefix("sha256:").unwrap();
        assert!(
            pulled.join(format!("{hex}.manifest.json")).exists(),
            "{digest}"
        );
    }

    // dir: -> Berth under another name, then Berth -> oci: for one platform.
    let copy = format!("docker://{host}/alice/copy:v2");
    skopeo.copy(&[], &["--all"], &["dest"], &dest, &copy);
    let single = work.path().join("single");
    let oci_dest = format!("oci:{}:amd64", path(&single));
    skopeo.copy(
        &["--override-arch", "amd64"],
        &[],
        &["src"],
        &copy,
        &oci_dest,
    );
    let single_index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(single.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        single_index["manifests"][0]["digest"].as_str(),
        Some(platforms[0].as_str())
    );

    // list-tags, and delete by tag (skopeo resolves it and deletes the digest).
    let also = format!("docker://{host}/alice/multi:also");
    skopeo.copy(&[], &["--all"], &["src", "dest"], &target, &also);
    let repository = format!("docker://{host}/alice/multi");
    let tags = skopeo.at(&[], &["list-tags"], &repository);
    let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["also", "v1"]));

    skopeo.at(&[], &["delete"], &target);
    let alice = RegistryClient::new(&berth, Some("alice"));
    alice
        .get(&format!("/v2/alice/multi/manifests/{index}"))
        .assert_error(404, "MANIFEST_UNKNOWN");
    // Both tags named the index, so both went with it.
    assert_eq!(
        alice.get("/v2/alice/multi/tags/list").json()["tags"],
        serde_json::json!([])
    );
    // The platform manifests are no longer listed by any index: they may go too.
    let platform = format!("docker://{host}/alice/multi@{}", platforms[0]);
    skopeo.at(&[], &["delete"], &platform);
}

#[test]
fn skopeo_fails_cleanly_with_a_wrong_password() {
    let berth = Berth::start(&format!(
        "{}acl:\n  - {{users: [alice], repos: [\"alice/**\"], actions: [pull, push]}}\n",
        users_block(&["alice"])
    ));
    let certs = cert_dir(&berth.ca_path());
    let output = Command::new("skopeo")
        .args(["list-tags", "--cert-dir"])
        .arg(certs.path())
        .args(["--creds", "alice:wrong"])
        .arg(format!("docker://{}/alice/none", berth.host()))
        .output()
        .expect("run skopeo: tests/run-all.sh installs it");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("401") || stderr.to_lowercase().contains("unauthorized"),
        "{stderr}"
    );
}
