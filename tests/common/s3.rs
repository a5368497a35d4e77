//! A real S3-compatible store for the tests: Garage, one node per test process on free
//! loopback ports, with sqlite metadata and replication factor 1, set up through its own
//! CLI (`layout assign`, `layout apply`, `key import`, `bucket create`, `bucket allow`) with
//! a generated RPC secret and admin token. Each test gets a fresh bucket from
//! [`Garage::shared`], or its own Garage from [`Garage::start`] when it must stop the
//! store.
//!
//! The `garage` binary comes from `BERTH_GARAGE`, which `tests/run-all.sh` sets after
//! installing it from crates.io into `~/.cache/berth/tools`; without the variable, that
//! place is looked at. Without a binary the tests fail and say so.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use berth::storage::s3::{S3Config, S3Storage};
use berth::storage::Storage;

use super::free_port;

/// The region Garage signs for.
pub const REGION: &str = "garage";

/// One Garage node and the access key every bucket grants.
pub struct Garage {
    dir: tempfile::TempDir,
    config: PathBuf,
    /// The S3 API's port.
    pub s3_port: u16,
    /// Access key id of the key that owns every bucket.
    pub key_id: String,
    /// Its secret.
    pub secret: String,
    child: Mutex<Option<Child>>,
}

/// A bucket of a Garage, with what a client needs to reach it.
#[derive(Clone)]
pub struct Bucket {
    pub name: String,
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
}

impl Garage {
    /// The Garage this test process shares, started on first use.
    pub fn shared() -> &'static Garage {
        static SHARED: OnceLock<Garage> = OnceLock::new();
        SHARED.get_or_init(Garage::start)
    }

    /// A Garage of the caller's own, stopped when dropped.
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().expect("garage dir");
        let (rpc_port, s3_port, admin_port) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        let secret_hex = random_hex(32);
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{meta}\"\n\
                 data_dir = \"{data}\"\n\
                 db_engine = \"sqlite\"\n\
                 metadata_fsync = false\n\
                 data_fsync = false\n\
                 replication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
                 rpc_secret = \"{secret_hex}\"\n\
                 [s3_api]\n\
                 s3_region = \"{REGION}\"\n\
                 api_bind_addr = \"127.0.0.1:{s3_port}\"\n\
                 root_domain = \".s3.garage.localhost\"\n\
                 [admin]\n\
                 api_bind_addr = \"127.0.0.1:{admin_port}\"\n\
                 admin_token = \"{admin}\"\n",
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
                admin = random_hex(32),
            ),
        )
        .expect("write garage.toml");

        let garage = Garage {
            dir,
            config,
            s3_port,
            key_id: format!("GK{}", random_hex(12)),
            secret: random_hex(32),
            child: Mutex::new(None),
        };
        garage.run_server();

        // One node holding everything, and one key for every bucket.
        let status = garage.cli_ok(&["status"]);
        let node = garage_node_id(&status);
        garage.cli_ok(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        garage.cli_ok(&["layout", "apply", "--version", "1"]);
        garage.cli_ok(&["key", "import", "--yes", &garage.key_id, &garage.secret]);
        garage
    }

    /// A new empty bucket that the key may read, write and own.
    pub fn bucket(&self) -> Bucket {
        let name = format!("t-{}", random_hex(8));
        self.cli_ok(&["bucket", "create", &name]);
        self.cli_ok(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            &name,
            "--key",
            &self.key_id,
        ]);
        Bucket {
            name,
            endpoint: format!("http://127.0.0.1:{}", self.s3_port),
            key_id: self.key_id.clone(),
            secret: self.secret.clone(),
        }
    }

    /// Kills the server (as a crash would); its data stays for [`Garage::restart`].
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports and data.
    pub fn restart(&self) {
        self.stop();
        self.run_server();
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    fn run_server(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("garage.log"))
            .expect("garage log");
        let mut command = Command::new(garage_binary());
        command
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        *self.child.lock().unwrap() = Some(spawn_tied(command));

        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.s3_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "garage did not listen within 60s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(garage_binary())
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .output()
            .expect("run the garage CLI")
    }

    /// Runs a CLI command, retrying while the node is still coming up; panics when it keeps
    /// failing.
    fn cli_ok(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = self.cli(args);
            if output.status.success() {
                return String::from_utf8_lossy(&output.stdout).into_owned();
            }
            if Instant::now() > deadline {
                panic!(
                    "garage {args:?} failed:\n{}{}\nserver log:\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Bucket {
    /// The `storage:` value for a Berth on this bucket, below `root`, with `extra` YAML
    /// (such as `delete: {...}`) beside `s3`, and `s3_extra` inside it.
    pub fn storage_yaml(&self, root: &str, s3_extra: &str, extra: &str) -> String {
        format!(
            "{{s3: {{bucket: {}, region: {REGION}, endpoint: \"{}\", path_style: true, \
             root: \"{root}\", access_key_id: {}, secret_access_key: {}{s3_extra}}}{extra}}}",
            self.name, self.endpoint, self.key_id, self.secret
        )
    }

    /// A client of this bucket through Berth's own S3 backend, below `root`.
    pub fn storage(&self, root: &str) -> S3Storage {
        let yaml = format!(
            "{{bucket: {}, region: {REGION}, endpoint: \"{}\", path_style: true, root: \"{root}\", \
             access_key_id: {}, secret_access_key: {}, retry: {{max_retries: 1, timeout: 5s}}}}",
            self.name, self.endpoint, self.key_id, self.secret
        );
        let config: S3Config = serde_yaml_ng::from_str(&yaml).expect("S3 config");
        S3Storage::new(&config).expect("S3 client")
    }

    /// Whether the object `key` (below `root`) exists.
    pub fn has(&self, root: &str, key: &str) -> bool {
        self.storage(root).size(key).expect("HEAD object").is_some()
    }
}

/// The `garage` binary the tests run.
///
/// # Panics
/// When it is not installed: the S3 tests must fail, not skip, without it.
pub fn garage_binary() -> PathBuf {
    let path = std::env::var_os("BERTH_GARAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/berth/tools/bin/garage")
        });
    assert!(
        path.is_file(),
        "no garage binary at {}: the S3 tests need Garage from crates.io; run them with \
         `bash tests/run-all.sh`, which installs it, or set BERTH_GARAGE",
        path.display()
    );
    path
}

/// The node id in `garage status` output: the first 16-hex-digit word of a node line.
fn garage_node_id(status: &str) -> String {
    status
        .split_whitespace()
        .find(|word| word.len() == 16 && word.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no node id in garage status:\n{status}"))
        .to_string()
}

/// Spawns `command` from one thread that lives as long as the test process, with
/// `PR_SET_PDEATHSIG`, so the child dies with the process even when nothing drops it (the
/// shared Garage lives in a static). The signal follows the spawning *thread*, hence the
/// dedicated one.
pub fn spawn_tied(command: Command) -> Child {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Request>();
        std::thread::spawn(move || {
            for (mut command, reply) in receiver {
                use std::os::unix::process::CommandExt;
                // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
                unsafe {
                    command.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let _ = reply.send(command.spawn());
            }
        });
        Mutex::new(sender)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap()
        .send((command, reply))
        .expect("spawner thread alive");
    answer
        .recv()
        .expect("spawner answers")
        .expect("spawn garage")
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buffer = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}
