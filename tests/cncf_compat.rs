//! Berth serves what the CNCF registry (Debian's `docker-registry`) wrote: docker pushes an
//! image to the CNCF registry, the registry stops, Berth starts on the same data directory
//! (or the same S3 bucket and root, written by the registry's S3 driver), and docker pulls
//! and runs the image through Berth.
//!
//! Needs the private dockerd that `tests/run-all.sh` starts (`DOCKER_HOST`),
//! `/usr/bin/docker-registry`, and for the S3 test the Garage that run-all.sh installs.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::docker::{log_tail, write_image_context, Docker, DockerTrust, HELLO_LINE};
use common::s3::{Bucket, Garage, REGION};
use common::{free_port, users_block, Berth, PASSWORD};

const CNCF_REGISTRY: &str = "/usr/bin/docker-registry";

/// CA-bundle variables the environment may set; the registry serves plain HTTP here and
/// should not pick up any trust settings from outside.
const INHERITED_TRUST: &[&str] = &[
    "AWS_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
];

#[test]
fn berth_serves_what_the_cncf_registry_stored() {
    serves_what_the_cncf_registry_stored(None);
}

#[test]
fn berth_serves_a_bucket_the_cncf_registry_s3_driver_wrote() {
    serves_what_the_cncf_registry_stored(Some(Garage::shared().bucket()));
}

/// On the filesystem, or with `bucket` on S3 under the root `/cncf`.
fn serves_what_the_cncf_registry_stored(bucket: Option<Bucket>) {
    let docker = Docker::new();
    let dir = tempfile::tempdir().unwrap();

    // docker pushes a small two-layer image to the CNCF registry over plain HTTP (docker
    // treats 127.0.0.0/8 as an insecure registry).
    let storage = match &bucket {
        None => format!(
            "  filesystem:\n    rootdirectory: {}\n",
            dir.path().join("data").display()
        ),
        Some(bucket) => format!(
            "  s3:\n    region: {REGION}\n    regionendpoint: {}\n    bucket: {}\n    \
             accesskey: {}\n    secretkey: {}\n    rootdirectory: /cncf\n    \
             secure: false\n    v4auth: true\n  redirect:\n    disable: true\n",
            bucket.endpoint, bucket.name, bucket.key_id, bucket.secret
        ),
    };
    let registry = CncfRegistry::start(dir.path(), &storage);
    // The S3 variant's image gets a random layer, so no identical image that the other
    // variant built can stand in for the blobs its pull must fetch.
    let context = tempfile::tempdir().unwrap();
    let random_layer = if bucket.is_some() { 1024 * 1024 } else { 0 };
    write_image_context(context.path(), random_layer);
    let cncf_image = format!("127.0.0.1:{}/cncf/hello:v1", registry.port);
    docker.build(context.path(), &cncf_image);
    let pushed = registry.push(&docker, &cncf_image);
    drop(registry);

    // Berth on the same directory (its storage root `data` is where the registry wrote) or
    // the same bucket and root.
    let body = format!(
        "{}acl:\n  - {{users: [alice], repos: [\"cncf/**\"], actions: [pull]}}\n",
        users_block(&["alice"])
    );
    let berth = match &bucket {
        None => Berth::start_in(dir, &body),
        Some(bucket) => Berth::start_on_bucket(bucket, "/cncf", "", "", &body),
    };
    let _trust = DockerTrust::install(&berth);

    let tags = berth
        .client()
        .get(format!("{}/v2/cncf/hello/tags/list", berth.url()))
        .basic_auth("alice", Some(PASSWORD))
        .send()
        .expect("GET tags/list");
    assert_eq!(tags.status(), 200, "{}", log_tail(&berth));
    let tags: serde_json::Value = tags.json().expect("tags JSON");
    assert_eq!(
        tags["tags"],
        serde_json::json!(["v1"]),
        "tags of cncf/hello"
    );

    // Nothing local is left, so the pull fetches every blob from what the registry wrote.
    docker.ok(&["rmi", &cncf_image], None);
    let berth_image = format!("{}/cncf/hello:v1", berth.host());
    assert!(
        !docker.has_image(&berth_image),
        "image still present locally"
    );
    let login = docker.login(&berth.host(), "alice", PASSWORD);
    assert!(login.success, "{}{}", login.describe(), log_tail(&berth));
    let pull = docker.ok(&["pull", &berth_image], Some(&berth));
    assert_eq!(pull.digest(), pushed, "Berth served a different manifest");

    let inspect = docker.ok(
        &[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Cmd}}",
            &berth_image,
        ],
        None,
    );
    assert_eq!(inspect.stdout.trim(), r#"["/hello"]"#);
    let run = docker.ok(
        &["run", "--rm", "--network", "none", &berth_image],
        Some(&berth),
    );
    assert_eq!(run.stdout.trim(), HELLO_LINE);

    docker.run(&["rmi", &berth_image]);
}

/// A `docker-registry serve` on a free loopback port, storing as `storage` (the YAML lines
/// below `storage:`) says, with its config and log in `dir`; killed on drop.
struct CncfRegistry {
    port: u16,
    log: std::path::PathBuf,
    child: Child,
}

impl CncfRegistry {
    fn start(dir: &Path, storage: &str) -> CncfRegistry {
        let port = free_port();
        let config = dir.join("cncf-registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: info\n\
                 storage:\n{storage}\
                 http:\n  addr: 127.0.0.1:{port}\n"
            ),
        )
        .expect("write registry config");

        let log = dir.join("cncf-registry.log");
        let log_file = std::fs::File::create(&log).expect("registry log");
        let mut command = Command::new(CNCF_REGISTRY);
        command
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        for name in INHERITED_TRUST {
            command.env_remove(name);
        }
        let child = command
            .spawn()
            .expect("start /usr/bin/docker-registry (apt-get install docker-registry)");
        let registry = CncfRegistry { port, log, child };

        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not listen:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// Pushes `image` with `docker` and returns its manifest digest.
    fn push(&self, docker: &Docker, image: &str) -> String {
        let push = docker.run(&["push", image]);
        assert!(
            push.success,
            "{}--- registry log\n{}",
            push.describe(),
            self.log()
        );
        push.digest()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for CncfRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
