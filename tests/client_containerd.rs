//! containerd's `ctr` against Berth through TLS and basic auth. The test starts its own
//! containerd on a socket, root and state in a temp dir (the CRI plugin off, the `native`
//! snapshotter, which needs no overlayfs), imports a two-platform OCI layout, pushes it to
//! Berth, and pulls it back by tag and by digest after forgetting it locally.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::oci_layout::write_layout;
use common::*;

/// A containerd daemon owned by the test; stopped on drop.
struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let config = format!(
            "version = 2\n\
             root = \"{root}/root\"\n\
             state = \"{root}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{root}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{root}/containerd.sock.ttrpc\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{root}/opt\"\n",
            root = root.display()
        );
        std::fs::write(root.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(root.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(root.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd: tests/run-all.sh installs it");
        let daemon = Containerd { dir, child };
        daemon.wait_until_serving();
        daemon
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.ctr(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("containerd did not start; its log:\n{}", self.log());
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["--namespace", "berth-test"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr: tests/run-all.sh installs containerd")
    }

    /// Runs ctr; panics with its output, containerd's and Berth's logs when it fails.
    fn run(&self, berth: &Berth, args: &[&str]) -> String {
        let output = self.ctr(args);
        assert!(
            output.status.success(),
            "ctr {args:?} failed:\n{}\n{}\ncontainerd log:\n{}\nberth log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log(),
            berth.log()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn ctr_pushes_and_pulls_a_multi_arch_image() {
    let berth = Berth::start(&format!(
        "{}acl:\n  - {{users: [alice], repos: [\"alice/**\"], actions: [pull, push]}}\n",
        users_block(&["alice"])
    ));
    let containerd = Containerd::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = write_layout(&layout, "v1", true);
    let index = image.index.clone().unwrap();

    // ctr imports an OCI layout from a tar archive.
    let archive = work.path().join("image.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let host = berth.host();
    let name = format!("{host}/alice/ctr");
    let reference = format!("{name}:v1");
    containerd.run(
        &berth,
        &[
            "images",
            "import",
            "--all-platforms",
            "--no-unpack",
            "--base-name",
            &name,
            text(&archive),
        ],
    );

    // ctr talks plain HTTP to 127.0.0.1 unless a hosts.toml says https, with the CA.
    let hosts = work.path().join("hosts");
    std::fs::create_dir_all(hosts.join(&host)).unwrap();
    let hosts_toml = format!(
        "server = \"https://{host}\"\n\
         [host.\"https://{host}\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n  \
         ca = \"{}\"\n",
        berth.ca_path().display()
    );
    std::fs::write(hosts.join(&host).join("hosts.toml"), hosts_toml).unwrap();
    let user = format!("alice:{PASSWORD}");
    let auth = ["--user", user.as_str(), "--hosts-dir", text(&hosts)];
    let mut push = vec!["images", "push"];
    push.extend(auth);
    push.push(&reference);
    containerd.run(&berth, &push);

    // Berth serves the index byte for byte, and each platform under it.
    let alice = RegistryClient::new(&berth, Some("alice"));
    let reply = alice.send(
        "GET",
        "/v2/alice/ctr/manifests/v1",
        &[("Accept", OCI_INDEX)],
        None,
    );
    reply.assert_status(200);
    assert_eq!(reply.body, image.top);
    assert_eq!(reply.header("Docker-Content-Digest"), Some(index.clone()));
    for (_, digest) in &image.platforms {
        alice
            .get(&format!("/v2/alice/ctr/manifests/{digest}"))
            .assert_status(200);
    }

    // Forget it locally (content goes with the last image naming it), then pull it back.
    containerd.run(&berth, &["images", "rm", "--sync", &reference]);
    let by_digest = format!("{name}@{index}");
    for target in [&reference, &by_digest] {
        let mut pull = vec![
            "images",
            "pull",
            "--all-platforms",
            "--snapshotter",
            "native",
        ];
        pull.extend(auth);
        pull.push(target);
        containerd.run(&berth, &pull);
    }
    // The layers came from Berth again, not from a local cache.
    let log = berth.log();
    let blob_reads = log
        .lines()
        .filter(|line| line.contains("method=GET route=\"blob\"") && line.contains("status=200"))
        .count();
    assert!(
        blob_reads >= 4,
        "expected layer and config reads in:\n{log}"
    );
    let listed = containerd.run(&berth, &["images", "ls", "-q"]);
    assert!(listed.lines().any(|line| line == reference), "{listed}");
    let checked = containerd.run(&berth, &["images", "check"]);
    assert!(checked.contains("complete"), "{checked}");

    // A wrong password is refused.
    let wrong = containerd.ctr(&[
        "images",
        "pull",
        "--user",
        "alice:wrong",
        "--hosts-dir",
        text(&hosts),
        &reference,
    ]);
    assert!(!wrong.status.success());
}
