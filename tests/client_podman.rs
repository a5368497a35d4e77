//! podman against Berth through TLS and basic auth: `login`, `push` and `pull` with its own
//! trust settings (`--cert-dir` holding Berth's dev CA). podman runs on private `--root`
//! and `--runroot` folders with the vfs driver, so it touches no system image store.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::oci_layout::{cert_dir, write_layout};
use common::*;

/// podman with a private store, auth file and trust for one Berth.
struct Podman<'a> {
    berth: &'a Berth,
    state: tempfile::TempDir,
    certs: tempfile::TempDir,
}

impl<'a> Podman<'a> {
    fn new(berth: &'a Berth) -> Self {
        let state = tempfile::tempdir().unwrap();
        // podman insists that a REGISTRY_AUTH_FILE it is pointed at exists.
        std::fs::write(state.path().join("auth.json"), "{}").unwrap();
        Podman {
            berth,
            state,
            certs: cert_dir(&berth.ca_path()),
        }
    }

    fn command(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let state = self.state.path();
        let mut command = Command::new("podman");
        command
            .arg("--root")
            .arg(state.join("root"))
            .arg("--runroot")
            .arg(state.join("runroot"))
            .arg("--tmpdir")
            .arg(state.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"])
            .args(["--cgroup-manager", "cgroupfs"])
            .args(args)
            .env("REGISTRY_AUTH_FILE", state.join("auth.json"))
            .env("XDG_RUNTIME_DIR", state.join("xdg"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .expect("run podman: tests/run-all.sh installs it");
        let input = stdin.unwrap_or("").to_string();
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
        drop(pipe);
        child.wait_with_output().unwrap()
    }

    /// Runs podman; panics with its output and Berth's log when it fails.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.command(args, stdin);
        assert!(
            output.status.success(),
            "podman {args:?} failed:\n{}\n{}\nberth log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.berth.log()
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn cert_dir(&self) -> &str {
        self.certs.path().to_str().unwrap()
    }
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn podman_logs_in_pushes_and_pulls() {
    let berth = Berth::start(&format!(
        "{}acl:\n  - {{users: [alice], repos: [\"alice/**\"], actions: [pull, push]}}\n",
        users_block(&["alice"])
    ));
    let podman = Podman::new(&berth);
    // podman names an image pulled from oci: after its path, which must be lowercase.
    let work = tempfile::Builder::new()
        .prefix(&format!("berth-podman-{}", berth.port))
        .rand_bytes(0)
        .tempdir()
        .unwrap();
    let layout = work.path().join("layout");
    write_layout(&layout, "v1", false);
    let host = berth.host();
    let image = format!("{host}/alice/podman:v1");

    // A local image to push, from an OCI layout.
    let id = podman.run(&["pull", "-q", &format!("oci:{}:v1", text(&layout))], None);
    podman.run(&["tag", &id, &image], None);

    // Without Berth's CA, podman refuses the certificate.
    let refused = podman.command(
        &["login", "-u", "alice", "--password-stdin", &host],
        Some(PASSWORD),
    );
    assert!(!refused.status.success(), "login trusted an unknown CA");

    let certs = podman.cert_dir();
    let login = [
        "login",
        "--cert-dir",
        certs,
        "-u",
        "alice",
        "--password-stdin",
        &host,
    ];
    let wrong = podman.command(&login, Some("wrong password"));
    assert!(
        !wrong.status.success(),
        "login with a wrong password succeeded"
    );
    podman.run(&login, Some(PASSWORD));
    podman.run(&["push", "--cert-dir", certs, &image], None);

    // Berth holds it, readable over HTTP.
    let alice = RegistryClient::new(&berth, Some("alice"));
    let reply = alice.send(
        "GET",
        "/v2/alice/podman/manifests/v1",
        &[("Accept", MANIFEST_ACCEPT)],
        None,
    );
    reply.assert_status(200);
    let digest = reply.header("Docker-Content-Digest").unwrap();

    // Gone locally, then pulled back by tag and by digest.
    podman.run(&["rmi", "-f", &image], None);
    podman.run(&["pull", "-q", "--cert-dir", certs, &image], None);
    let architecture = podman.run(
        &["image", "inspect", "--format", "{{.Architecture}}", &image],
        None,
    );
    assert_eq!(architecture, "amd64");
    let by_digest = format!("{host}/alice/podman@{digest}");
    podman.run(&["pull", "-q", "--cert-dir", certs, &by_digest], None);
    let format = "{{json .RepoDigests}}";
    let digests = podman.run(&["image", "inspect", "--format", format, &by_digest], None);
    assert!(digests.contains(&by_digest), "{digests} lacks {by_digest}");

    podman.run(&["logout", &host], None);
}
