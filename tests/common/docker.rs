//! Driving the real Docker CLI against the dockerd that `tests/run-all.sh` starts.
//!
//! Each [`Docker`] has its own `DOCKER_CONFIG`, so one test's `docker login` never leaks into
//! another's. Images live in the shared daemon, so tests name them after their own registry
//! port. [`DockerTrust`] makes that daemon trust one Berth's development CA for as long as it
//! lives.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Berth;

/// The line the static test binary prints; `docker run` of a test image must show it.
pub const HELLO_LINE: &str = "hello from a static binary inside a berth test image";

/// Longest any one docker command may take; a 64 MiB push through a debug build takes well
/// under a minute here, so this only catches hangs (picked without measuring further).
const DOCKER_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// A Docker CLI bound to the suite's dockerd, with a private client config directory.
pub struct Docker {
    host: String,
    config: tempfile::TempDir,
}

/// What one `docker` invocation did.
pub struct DockerOutput {
    pub args: String,
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Trust in one Berth's development CA, installed in `/etc/docker/certs.d/IP:PORT/` and
/// removed again on drop.
pub struct DockerTrust {
    dir: PathBuf,
}

impl Docker {
    /// A client for the dockerd named by `DOCKER_HOST`.
    ///
    /// # Panics
    /// When `DOCKER_HOST` is unset: these tests need the private dockerd that
    /// `tests/run-all.sh` starts, and must never pass silently without it.
    pub fn new() -> Docker {
        let host = match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.is_empty() => host,
            _ => panic!(
                "DOCKER_HOST is not set. The Docker end-to-end tests need the private dockerd \
                 that the suite starts: run them with `bash tests/run-all.sh` \
                 (for example `bash tests/run-all.sh --test docker_e2e`)"
            ),
        };
        let config = tempfile::tempdir().expect("docker config dir");
        Docker { host, config }
    }

    /// The private client config directory (`config.json` lives there).
    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    /// Runs `docker ARGS` and captures its output.
    pub fn run(&self, args: &[&str]) -> DockerOutput {
        self.run_with_stdin(args, None)
    }

    /// Runs `docker ARGS`, panicking with its output (and Berth's log, when given) on failure.
    pub fn ok(&self, args: &[&str], berth: Option<&Berth>) -> DockerOutput {
        let output = self.run(args);
        if !output.success {
            panic!(
                "{}{}",
                output.describe(),
                berth.map(log_tail).unwrap_or_default()
            );
        }
        output
    }

    /// `docker login HOST -u USER --password-stdin`.
    pub fn login(&self, host: &str, user: &str, password: &str) -> DockerOutput {
        let args = ["login", host, "--username", user, "--password-stdin"];
        self.run_with_stdin(&args, Some(password))
    }

    /// Builds `context` into `tag` with the legacy builder (one layer per COPY).
    ///
    /// Builds in one test process run one at a time: the legacy builder races when two
    /// builds of identical content (the same image id) run at once, as a test's filesystem
    /// and S3 variants do ("failed to get digest ... no such file or directory").
    pub fn build(&self, context: &Path, tag: &str) {
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let context = context.to_str().expect("utf-8 temp path");
        let _turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.ok(&["build", "--tag", tag, context], None);
    }

    /// Whether the daemon holds an image called `reference`.
    pub fn has_image(&self, reference: &str) -> bool {
        self.run(&["image", "inspect", reference]).success
    }

    fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> DockerOutput {
        let mut child = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", self.config.path())
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CLI_HINTS", "false")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the docker CLI (is docker installed? use tests/run-all.sh)");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(text.as_bytes()).expect("write docker stdin");
        }

        // Read both pipes while waiting, so a chatty command never blocks on a full pipe, and
        // give up on a command that hangs rather than stalling the whole suite.
        let stdout = read_in_background(child.stdout.take().expect("piped stdout"));
        let stderr = read_in_background(child.stderr.take().expect("piped stderr"));
        let deadline = Instant::now() + DOCKER_COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for docker") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = stdout.join().expect("docker stdout reader");
        let mut stderr = stderr.join().expect("docker stderr reader");
        if status.is_none() {
            stderr.push_str(&format!("\n(killed after {DOCKER_COMMAND_TIMEOUT:?})"));
        }
        DockerOutput {
            args: args.join(" "),
            success: status.is_some_and(|status| status.success()),
            stdout,
            stderr,
        }
    }
}

impl DockerOutput {
    /// stdout and stderr together, for searching messages docker prints on either.
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The digest docker reports after a push (`TAG: digest: sha256:... size: N`) or a pull
    /// (`Digest: sha256:...`).
    pub fn digest(&self) -> String {
        self.combined()
            .split_whitespace()
            .find(|word| word.starts_with("sha256:") && word.len() == 71)
            .unwrap_or_else(|| panic!("no digest in output of {}", self.describe()))
            .to_string()
    }

    /// A readable account of the invocation for panic messages.
    pub fn describe(&self) -> String {
        format!(
            "`docker {}` {}\n--- stdout\n{}\n--- stderr\n{}\n",
            self.args,
            if self.success { "succeeded" } else { "failed" },
            self.stdout,
            self.stderr
        )
    }
}

impl DockerTrust {
    /// Copies `berth`'s `certs/ca.crt` to `/etc/docker/certs.d/IP:PORT/ca.crt`.
    pub fn install(berth: &Berth) -> DockerTrust {
        let dir = Path::new("/etc/docker/certs.d").join(berth.host());
        std::fs::create_dir_all(&dir).expect("create docker certs.d dir (run as root)");
        std::fs::copy(berth.ca_path(), dir.join("ca.crt")).expect("install dev CA for docker");
        DockerTrust { dir }
    }
}

impl DockerTrust {
    /// Like [`DockerTrust::install`], plus a client certificate and key that docker presents
    /// to this registry (`client.cert`, `client.key`).
    pub fn install_with_client(berth: &Berth, cert_pem: &str, key_pem: &str) -> DockerTrust {
        let trust = DockerTrust::install(berth);
        std::fs::write(trust.dir.join("client.cert"), cert_pem).expect("install client.cert");
        std::fs::write(trust.dir.join("client.key"), key_pem).expect("install client.key");
        trust
    }

    /// Replaces (or, with `None`, removes) the client certificate docker presents.
    pub fn set_client(&self, pair: Option<(&str, &str)>) {
        let (cert, key) = (self.dir.join("client.cert"), self.dir.join("client.key"));
        let _ = std::fs::remove_file(&cert);
        let _ = std::fs::remove_file(&key);
        if let Some((cert_pem, key_pem)) = pair {
            std::fs::write(cert, cert_pem).expect("install client.cert");
            std::fs::write(key, key_pem).expect("install client.key");
        }
    }
}

impl Drop for DockerTrust {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads `pipe` to its end on another thread.
fn read_in_background(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Writes a build context holding a static hello binary (printing [`HELLO_LINE`]), plus a
/// file of `random_bytes` random bytes when non-zero, each in its own layer.
pub fn write_image_context(dir: &Path, random_bytes: u64) {
    let source = dir.join("hello.c");
    std::fs::write(
        &source,
        format!("#include <stdio.h>\nint main(void) {{ puts(\"{HELLO_LINE}\"); return 0; }}\n"),
    )
    .expect("write hello.c");
    let gcc = Command::new("gcc")
        .args(["-static", "-Os", "-o"])
        .arg(dir.join("hello"))
        .arg(&source)
        .output()
        .expect("run gcc (install gcc and libc6-dev, or use tests/run-all.sh)");
    assert!(
        gcc.status.success(),
        "gcc -static failed:\n{}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    std::fs::remove_file(&source).expect("remove hello.c");

    let mut dockerfile = String::from("FROM scratch\n");
    if random_bytes > 0 {
        let mut random = std::fs::File::open("/dev/urandom").expect("open /dev/urandom");
        let mut out = std::fs::File::create(dir.join("random.bin")).expect("create random.bin");
        let copied = std::io::copy(&mut (&mut random).take(random_bytes), &mut out)
            .expect("write random.bin");
        assert_eq!(copied, random_bytes);
        dockerfile.push_str("COPY random.bin /random.bin\n");
    }
    dockerfile.push_str("COPY hello /hello\nCMD [\"/hello\"]\n");
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("write Dockerfile");
}

/// The last lines of Berth's log, for panic messages.
pub fn log_tail(berth: &Berth) -> String {
    let log = berth.log();
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.len().saturating_sub(60);
    format!(
        "--- berth log (last lines)\n{}\n",
        lines[start..].join("\n")
    )
}
