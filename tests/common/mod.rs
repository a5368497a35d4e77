//! Shared test harness: starts a real `berth serve` on free loopback ports (or, for a test
//! that cannot use loopback, in a network namespace of its own; see [`netns`]), in a temp dir,
//! with certificates that the server generates itself on first start, and gives tests an
//! HTTPS client that trusts exactly that development CA.

#![allow(dead_code)]

pub mod docker;
pub mod netns;
pub mod oci_layout;
pub mod pki;
pub mod s3;
pub mod slapd;
pub mod ui;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use netns::TestHost;

/// Password every test user gets unless a test picks its own.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running `berth serve` and the temp dir that holds its config, certificates and data.
pub struct Berth {
    /// The address the registry and metrics listeners are on: loopback, or a test host's.
    pub ip: String,
    pub port: u16,
    pub metrics_port: u16,
    pub dir: tempfile::TempDir,
    /// The `tls:` and `storage:` values of the config, kept for rewrites.
    tls: String,
    storage: String,
    /// The bucket and root prefix, when the storage is S3.
    pub bucket: Option<(s3::Bucket, String)>,
    child: Child,
    /// The namespace the server runs in, if not the root one; dropped after the server stops.
    host: Option<TestHost>,
}

/// Which backend a test runs Berth on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// A `data` directory in the test's temp dir.
    Filesystem,
    /// A fresh bucket of the test process's Garage.
    S3,
}

/// Environment variables an S3 client could pick up from outside the test: credentials,
/// endpoints and trust. Berth gets none of them; the tests configure it explicitly.
const AWS_ENVIRONMENT: &[&str] = &[
    "AWS_CA_BUNDLE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
];

impl Berth {
    /// Starts Berth with the given YAML appended to a config that sets `listen`,
    /// `metrics_listen`, `tls` and `storage`. `body` supplies `users`, `groups`, `acl`.
    pub fn start(body: &str) -> Berth {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, body)
    }

    /// Like [`Berth::start`], but in a directory the test prepared (for example one that
    /// already holds a CNCF registry's data under `data/`).
    pub fn start_in(dir: tempfile::TempDir, body: &str) -> Berth {
        Self::start_configured(dir, DEFAULT_STORAGE, body)
    }

    /// Like [`Berth::start`] with deletion switched on (`storage.delete.enabled`), and
    /// `referenced_manifests` as given.
    pub fn start_with_delete(referenced_manifests: bool, body: &str) -> Berth {
        let storage = format!(
            "{{filesystem: {{root: data}}, \
             delete: {{enabled: true, referenced_manifests: {referenced_manifests}}}}}"
        );
        Self::start_configured(tempfile::tempdir().expect("temp dir"), &storage, body)
    }

    /// Starts Berth on the given backend: a fresh bucket of the shared Garage for
    /// [`StorageKind::S3`]. `delete` switches deletion on (with referenced manifests
    /// protected).
    pub fn start_on(kind: StorageKind, delete: bool, body: &str) -> Berth {
        let delete_yaml = if delete {
            ", delete: {enabled: true}"
        } else {
            ""
        };
        match kind {
            StorageKind::Filesystem => {
                let storage = format!("{{filesystem: {{root: data}}{delete_yaml}}}");
                Self::start_configured(tempfile::tempdir().expect("temp dir"), &storage, body)
            }
            StorageKind::S3 => {
                let bucket = s3::Garage::shared().bucket();
                Self::start_on_bucket(&bucket, "/berth", "", delete_yaml, body)
            }
        }
    }

    /// Starts Berth on `bucket` below `root`; `s3_extra` goes inside `storage.s3`, `extra`
    /// beside it. Several nodes may share one bucket.
    pub fn start_on_bucket(
        bucket: &s3::Bucket,
        root: &str,
        s3_extra: &str,
        extra: &str,
        body: &str,
    ) -> Berth {
        let storage = bucket.storage_yaml(root, s3_extra, extra);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut berth = Self::start_configured(dir, &storage, body);
        berth.bucket = Some((bucket.clone(), root.to_string()));
        berth
    }

    /// Whether the storage holds the object `key` (relative to the storage root).
    pub fn has_object(&self, key: &str) -> bool {
        match &self.bucket {
            Some((bucket, root)) => bucket.has(root, key),
            None => self.data_root().join(key).is_file(),
        }
    }

    /// Starts Berth in `dir` with `storage` as the `storage:` value and `body` after it.
    pub fn start_configured(dir: tempfile::TempDir, storage: &str, body: &str) -> Berth {
        Self::spawn(dir, "127.0.0.1", None, DEFAULT_TLS, storage, body)
    }

    /// Like [`Berth::start_in`], with `tls` (a YAML value) as the `tls:` section, for tests
    /// of client certificates.
    pub fn start_with_tls(dir: tempfile::TempDir, tls: &str, body: &str) -> Berth {
        Self::spawn(dir, "127.0.0.1", None, tls, DEFAULT_STORAGE, body)
    }

    /// Like [`Berth::start_with_tls`], with the server running inside `host`'s network
    /// namespace and listening on its address; `host` is removed after the server stops.
    pub fn start_in_host(dir: tempfile::TempDir, host: TestHost, tls: &str, body: &str) -> Berth {
        let ip = host.ip().to_string();
        Self::spawn(dir, &ip, Some(host), tls, DEFAULT_STORAGE, body)
    }

    fn spawn(
        dir: tempfile::TempDir,
        ip: &str,
        host: Option<TestHost>,
        tls: &str,
        storage: &str,
        body: &str,
    ) -> Berth {
        // A fresh namespace has nothing listening, so a port free on loopback here is free
        // there too.
        let port = free_port();
        let metrics_port = free_port();
        let config = config_text(ip, port, metrics_port, tls, storage, body);
        std::fs::write(dir.path().join("proxy.yaml"), config).expect("write config");

        let log = std::fs::File::create(dir.path().join("berth.log")).expect("log file");
        let mut command = match &host {
            Some(host) => host.command(berth_binary()),
            None => Command::new(berth_binary()),
        };
        command
            .args(["serve", "--config"])
            .arg(dir.path().join("proxy.yaml"))
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        for name in AWS_ENVIRONMENT {
            command.env_remove(name);
        }
        let child = command.spawn().expect("start berth serve");
        let berth = Berth {
            ip: ip.to_string(),
            port,
            metrics_port,
            dir,
            tls: tls.to_string(),
            storage: storage.to_string(),
            bucket: None,
            child,
            host,
        };
        berth.wait_until_listening();
        berth
    }

    /// `https://IP:PORT`
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.ip, self.port)
    }

    /// `IP:PORT`, the registry host as docker names it.
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("certs/ca.crt")
    }

    /// The config file the server runs on (and watches).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("proxy.yaml")
    }

    /// The whole config text [`Berth::start`] would write for `body`, on this server's ports.
    pub fn config_text(&self, body: &str) -> String {
        let (ip, tls, storage) = (&self.ip, &self.tls, &self.storage);
        config_text(ip, self.port, self.metrics_port, tls, storage, body)
    }

    /// Rewrites the config file in place (truncate and write) with `body` after the same
    /// `listen`, `metrics_listen`, `tls` and `storage` lines.
    pub fn write_config(&self, body: &str) {
        std::fs::write(self.config_path(), self.config_text(body)).expect("rewrite config");
    }

    /// The server's process id, for sending it signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berth.log")).unwrap_or_default()
    }

    /// An HTTPS client that trusts the server's development CA and nothing else.
    pub fn client(&self) -> reqwest::blocking::Client {
        self.client_builder().build().expect("build client")
    }

    /// Like [`Berth::client`], presenting a client certificate (`cert_pem` then `key_pem`).
    pub fn client_with_identity(&self, cert_pem: &str, key_pem: &str) -> reqwest::blocking::Client {
        let identity = reqwest::Identity::from_pem(format!("{cert_pem}{key_pem}").as_bytes())
            .expect("client identity");
        self.client_builder()
            .identity(identity)
            .build()
            .expect("build client")
    }

    fn client_builder(&self) -> reqwest::blocking::ClientBuilder {
        let pem = std::fs::read(self.ca_path()).expect("read dev CA");
        let ca = reqwest::Certificate::from_pem(&pem).expect("parse dev CA");
        reqwest::blocking::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
    }

    /// The Prometheus text exposition from the metrics listener.
    pub fn metrics(&self) -> String {
        let url = format!("http://{}:{}/metrics", self.ip, self.metrics_port);
        reqwest::blocking::get(url)
            .expect("scrape")
            .text()
            .expect("metrics text")
    }

    /// Value of one sample, e.g. `metric(r#"berth_auth_attempts_total{method="basic"}"#)`;
    /// 0 when absent. The selector must match the exposition text's label order.
    pub fn metric(&self, selector: &str) -> f64 {
        metric_value(&self.metrics(), selector)
    }

    /// Waits for both listeners, connecting from this (the root) namespace, so a server in a
    /// test host is only ready once it is reachable over the veth link.
    fn wait_until_listening(&self) {
        let ip: std::net::IpAddr = self.ip.parse().expect("listen address is an IP");
        let reachable = |port| {
            let address = std::net::SocketAddr::new(ip, port);
            TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready =
                self.ca_path().exists() && reachable(self.port) && reachable(self.metrics_port);
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("berth did not start listening; its log:\n{}", self.log());
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The config [`Berth::start`] writes: listeners on the given ports, TLS and storage in the
/// temp dir, then `body`.
fn config_text(
    ip: &str,
    port: u16,
    metrics_port: u16,
    tls: &str,
    storage: &str,
    body: &str,
) -> String {
    format!(
        "listen: {ip}:{port}\n\
         metrics_listen: {ip}:{metrics_port}\n\
         tls: {tls}\n\
         storage: {storage}\n\
         {body}\n"
    )
}

/// The `tls:` value of an ordinary test server: a development certificate made on start.
const DEFAULT_TLS: &str = "{cert: certs/server.crt, key: certs/server.key}";
/// The `storage:` value of an ordinary test server.
const DEFAULT_STORAGE: &str = "{filesystem: {root: data}}";

/// Sums every sample line of `text` that starts with `selector`.
pub fn metric_value(text: &str, selector: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix(selector))
        .filter_map(|rest| rest.trim().parse::<f64>().ok())
        .sum()
}

/// Sums every sample of the metric family `name`, whatever its labels; 0 when absent.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix(name))
        .filter(|rest| rest.starts_with('{') || rest.starts_with(' '))
        .filter_map(|rest| rest.rsplit(' ').next()?.trim().parse::<f64>().ok())
        .sum()
}

/// The path of the `berth` binary cargo built for these tests.
pub fn berth_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

/// An argon2id PHC string for `password`, made by `berth hash-password`; cached per password.
pub fn hash_password(password: &str) -> String {
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<String, String>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hash) = cache.lock().unwrap().get(password) {
        return hash.clone();
    }

    let mut child = Command::new(berth_binary())
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run berth hash-password");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "hash-password failed");
    let hash = String::from_utf8(output.stdout).unwrap().trim().to_string();
    cache
        .lock()
        .unwrap()
        .insert(password.to_string(), hash.clone());
    hash
}

/// A `users:` block giving each name [`PASSWORD`].
pub fn users_block(names: &[&str]) -> String {
    let hash = hash_password(PASSWORD);
    let mut yaml = String::from("users:\n");
    for name in names {
        yaml.push_str(&format!("  {name}: \"{hash}\"\n"));
    }
    yaml
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().unwrap().port()
}

/// Every regular file below `root`, relative to it, sorted.
pub fn files_below(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

// --- Registry helpers (added for http_api.rs and http_errors.rs) ---

/// Media types of the four manifest kinds Berth stores.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The `Accept` header docker sends when it pulls a manifest.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// One HTTP response, read whole, from either reqwest or [`raw_request`].
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    fn read(response: reqwest::blocking::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().expect("read response body").to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header is text").to_string())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.describe()))
    }

    /// `errors[0].code` of a distribution-spec error body.
    pub fn error_code(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        value["errors"][0]["code"].as_str().map(str::to_string)
    }

    /// Status, headers and (the start of) the body, for assertion messages.
    pub fn describe(&self) -> String {
        let mut body = self.text();
        body.truncate(500);
        format!(
            "status {} headers {:?} body {body:?}",
            self.status, self.headers
        )
    }

    /// Asserts the status and the spec error code in the body.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "want {status} {code}, got {}",
            self.describe()
        );
        assert_eq!(
            self.error_code().as_deref(),
            Some(code),
            "want error code {code}, got {}",
            self.describe()
        );
    }

    /// Asserts the status, with the whole reply in the message when it differs.
    pub fn assert_status(&self, status: u16) {
        assert_eq!(
            self.status,
            status,
            "want {status}, got {}",
            self.describe()
        );
    }
}

/// An HTTPS client for one caller: a user with [`PASSWORD`], a user with another password, or
/// anonymous.
pub struct RegistryClient {
    client: reqwest::blocking::Client,
    base: String,
    credential: Option<(String, String)>,
}

impl RegistryClient {
    /// A client that signs in as `user` with [`PASSWORD`], or sends no credentials for `None`.
    pub fn new(berth: &Berth, user: Option<&str>) -> RegistryClient {
        let credential = user.map(|u| (u.to_string(), PASSWORD.to_string()));
        RegistryClient {
            client: berth.client(),
            base: berth.url(),
            credential,
        }
    }

    /// A client that signs in as `user` with `password`.
    pub fn with_password(berth: &Berth, user: &str, password: &str) -> RegistryClient {
        let credential = Some((user.to_string(), password.to_string()));
        RegistryClient {
            client: berth.client(),
            base: berth.url(),
            credential,
        }
    }

    /// A client over an HTTPS client built elsewhere (one presenting a client certificate),
    /// signing in with `credential` when given.
    pub fn over(
        berth: &Berth,
        client: reqwest::blocking::Client,
        credential: Option<(&str, &str)>,
    ) -> RegistryClient {
        RegistryClient {
            client,
            base: berth.url(),
            credential: credential.map(|(u, p)| (u.to_string(), p.to_string())),
        }
    }

    /// Sends one request, returning the transport error (a refused TLS handshake) rather
    /// than panicking on it.
    pub fn try_get(&self, target: &str) -> Result<Reply, reqwest::Error> {
        let mut request = self.client.get(self.absolute(target));
        if let Some((user, password)) = &self.credential {
            request = request.basic_auth(user, Some(password));
        }
        request.send().map(Reply::read)
    }

    /// Sends one request. `target` is a path (`/v2/...`) or an absolute URL (a `Location`).
    pub fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, self.absolute(target));
        if let Some((user, password)) = &self.credential {
            request = request.basic_auth(user, Some(password));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        Reply::read(request.send().unwrap_or_else(|e| panic!("{target}: {e:?}")))
    }

    /// Like [`RegistryClient::send`], with a body of unknown length (chunked transfer
    /// encoding), the way docker streams a layer.
    pub fn send_chunked(&self, method: &str, target: &str, body: Vec<u8>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, self.absolute(target));
        if let Some((user, password)) = &self.credential {
            request = request.basic_auth(user, Some(password));
        }
        let reader = std::io::Cursor::new(body);
        request = request
            .header("Content-Type", "application/octet-stream")
            .body(reqwest::blocking::Body::new(reader));
        Reply::read(request.send().unwrap_or_else(|e| panic!("{target}: {e:?}")))
    }

    pub fn get(&self, target: &str) -> Reply {
        self.send("GET", target, &[], None)
    }

    pub fn head(&self, target: &str) -> Reply {
        self.send("HEAD", target, &[], None)
    }

    /// Starts an upload session; asserts 202 and returns its absolute `Location`.
    pub fn start_upload(&self, repository: &str) -> String {
        let reply = self.send(
            "POST",
            &format!("/v2/{repository}/blobs/uploads/"),
            &[],
            None,
        );
        reply.assert_status(202);
        let location = reply.header("Location").expect("upload Location");
        self.absolute(&location)
    }

    /// Pushes `bytes` as a blob of `repository` (POST, then PUT with the whole body); asserts
    /// 201 and returns the digest.
    pub fn push_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = digest_of(bytes);
        let location = self.start_upload(repository);
        let target = with_query(&location, &format!("digest={digest}"));
        let headers = [("Content-Type", "application/octet-stream")];
        let reply = self.send("PUT", &target, &headers, Some(bytes.to_vec()));
        reply.assert_status(201);
        digest
    }

    /// PUTs a manifest under `reference` with `media_type` as its Content-Type.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Reply {
        let target = format!("/v2/{repository}/manifests/{reference}");
        self.send(
            "PUT",
            &target,
            &[("Content-Type", media_type)],
            Some(bytes.to_vec()),
        )
    }

    /// Pushes a config blob and one layer, then an image manifest of `media_type` (docker v2
    /// or OCI) that names them, tagged `tag`; asserts 201 and returns the manifest's bytes.
    pub fn push_image(&self, repository: &str, tag: &str, media_type: &str) -> Vec<u8> {
        let config = self.push_blob(
            repository,
            &sample_bytes(&format!("{repository}:{tag}"), 64),
        );
        let layer = sample_bytes(&format!("layer {repository}:{tag}"), 3000);
        let layer = (self.push_blob(repository, &layer), layer.len());
        let manifest = image_manifest(media_type, (config.as_str(), 64), &[layer]);
        self.put_manifest(repository, tag, media_type, &manifest)
            .assert_status(201);
        manifest
    }

    /// `target` as an absolute URL.
    pub fn absolute(&self, target: &str) -> String {
        if target.starts_with("http://") || target.starts_with("https://") {
            target.to_string()
        } else {
            format!("{}{target}", self.base)
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// `len` deterministic, incompressible-looking bytes that depend on `seed`.
pub fn sample_bytes(seed: &str, len: usize) -> Vec<u8> {
    use sha2::Digest;
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u64;
    while out.len() < len {
        let mut hasher = sha2::Sha256::new();
        hasher.update(seed.as_bytes());
        hasher.update(counter.to_le_bytes());
        out.extend_from_slice(&hasher.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// `url` with `pair` appended to its query string.
pub fn with_query(url: &str, pair: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{pair}")
}

/// An image manifest (docker v2 or OCI, by `media_type`) naming `config` and `layers`, each
/// given as (digest, size). Pretty-printed so that a server that re-serialises it would
/// change its digest.
pub fn image_manifest(
    media_type: &str,
    config: (&str, usize),
    layers: &[(String, usize)],
) -> Vec<u8> {
    let (config_type, layer_type) = if media_type == DOCKER_MANIFEST {
        (
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    } else {
        (
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
    };
    let layers: Vec<_> = layers
        .iter()
        .map(|(digest, size)| {
            serde_json::json!({"mediaType": layer_type, "size": size, "digest": digest})
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "size": config.1, "digest": config.0},
        "layers": layers,
    });
    serde_json::to_vec_pretty(&manifest).unwrap()
}

/// A manifest list or OCI index (by `media_type`) naming `manifests`, each given as
/// (media type, digest, size).
pub fn index_manifest(media_type: &str, manifests: &[(&str, String, usize)]) -> Vec<u8> {
    let manifests: Vec<_> = manifests
        .iter()
        .map(|(child_type, digest, size)| {
            serde_json::json!({
                "mediaType": child_type,
                "size": size,
                "digest": digest,
                "platform": {"architecture": "amd64", "os": "linux"},
            })
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": manifests,
    });
    serde_json::to_vec_pretty(&index).unwrap()
}

/// Where the CNCF layout keeps a blob's bytes, relative to the data root.
pub fn blob_data_path(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2])
}

/// Entries (files or directories) in a repository's `_uploads` folder; empty when absent.
pub fn upload_entries(data_root: &Path, repository: &str) -> Vec<String> {
    let dir = data_root.join(format!(
        "docker/registry/v2/repositories/{repository}/_uploads"
    ));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Sends a request with the path exactly as written (no `..` or `%2e%2e` normalisation), with
/// curl, as `user` with [`PASSWORD`] or anonymously. `body` is (Content-Type, bytes).
pub fn raw_request(
    berth: &Berth,
    user: Option<&str>,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Reply {
    let scratch = tempfile::tempdir().expect("scratch dir");
    let headers_file = scratch.path().join("headers");
    let body_file = scratch.path().join("body");

    let mut command = Command::new("curl");
    command
        .args([
            "--silent",
            "--show-error",
            "--path-as-is",
            "--globoff",
            "--http1.1",
        ])
        .args(["--max-time", "60", "-H", "Expect:"])
        .arg("--cacert")
        .arg(berth.ca_path())
        .arg("-D")
        .arg(&headers_file)
        .arg("-o")
        .arg(&body_file);
    if method == "HEAD" {
        command.arg("--head");
    } else {
        command.args(["-X", method]);
    }
    if let Some(user) = user {
        command.arg("-u").arg(format!("{user}:{PASSWORD}"));
    }
    if let Some((content_type, body)) = body {
        let request_body = scratch.path().join("request");
        std::fs::write(&request_body, body).unwrap();
        command
            .arg("-H")
            .arg(format!("Content-Type: {content_type}"))
            .arg("--data-binary")
            .arg(format!("@{}", request_body.display()));
    }
    command.arg(format!("{}{path}", berth.url()));

    let output = command.output().expect("run curl");
    assert!(
        output.status.success(),
        "curl {method} {path} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let head = std::fs::read_to_string(&headers_file).unwrap_or_default();
    let body = std::fs::read(&body_file).unwrap_or_default();
    parse_raw_head(&head, body)
}

/// The last response head in curl's `-D` dump (skipping any interim `100 Continue`).
fn parse_raw_head(dump: &str, body: Vec<u8>) -> Reply {
    let last = dump
        .split("\r\n\r\n")
        .filter(|block| block.trim_start().starts_with("HTTP/"))
        .last()
        .unwrap_or_else(|| panic!("no response head in {dump:?}"));
    let mut lines = last.trim_start().lines();
    let status_line = lines.next().unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap();
        let value = reqwest::header::HeaderValue::from_str(value.trim()).unwrap();
        headers.append(name, value);
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// Waits up to ten seconds for `selector` to reach `at_least` (metrics may be recorded just
/// after the response is written), and returns its last value.
pub fn wait_for_metric(berth: &Berth, selector: &str, at_least: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = berth.metric(selector);
        if value >= at_least || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
