//! The S3 backend: the registry's keys as objects in one bucket of any S3-compatible store
//! (AWS S3, Garage, MinIO, Ceph RGW), below an optional root prefix, exactly where the CNCF
//! registry's S3 driver puts them, so a `registry:2` bucket is served in place.
//!
//! Several Berth nodes may share one bucket: nothing about an upload lives in a node.
//!
//! - A chunk of an upload (one `PATCH` or `PUT` body) streams into its own object,
//!   `_uploads/<id>/chunks/<offset>`, as an S3 multipart upload: parts of `part_size`
//!   bytes are sent as the body arrives, one part in flight while the next fills, so a node
//!   holds at most about two parts of any push in memory and nothing on disk. A chunk smaller
//!   than a part is one plain `PUT`. The chunk object exists only once its upload completed,
//!   so a failed chunk leaves the session as it was.
//! - The session's size is the sum of its chunk objects (one `LIST`); its running hash is
//!   saved beside them by the engine ([`crate::registry::hash_state`]).
//! - Completing makes the blob with one server-side `CopyObject` when the session is one
//!   chunk of at most 5 GiB (docker sends a layer as one `PATCH`), and otherwise by streaming
//!   the chunks back through the node into a multipart upload of the blob key (many small
//!   chunks, or a layer over the 5 GiB `CopyObject` limit). Either way the blob key appears
//!   whole, at once, and only after the engine checked the digest. The session's objects
//!   are deleted afterwards.
//!
//! Requests are retried with exponential backoff on timeouts, connection failures, `5xx`
//! and throttling, up to `retry.max_retries` times within `retry.timeout` (every request
//! Berth makes is idempotent: puts of whole objects or parts, gets, lists, deletes, copies).
//!
//! Limitations: a session of many small chunks costs a second pass of its bytes through the
//! node at completion (S3's `UploadPartCopy` would avoid it, but the client crate offers no
//! such call). Multipart uploads a crashed node left open are not aborted by Berth: give
//! the bucket a lifecycle rule that aborts incomplete multipart uploads after a day.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, MultipartUpload, ObjectMeta, ObjectStore,
    PutPayload, RetryConfig,
};
use serde::Deserialize;
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

use super::{ByteStream, ChunkWriter, Storage, StorageError};

/// `storage.s3` in proxy.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket. Required.
    pub bucket: String,
    /// The region requests are signed for. Default `us-east-1` (Garage's default is
    /// `garage`).
    #[serde(default = "default_region")]
    pub region: String,
    /// The store's URL, such as `http://garage:3900`. Default: AWS for `region`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-hosted
    /// (`bucket.endpoint/key`). Default `false`; Garage, MinIO and most self-hosted stores
    /// want `true`.
    #[serde(default)]
    pub path_style: bool,
    /// The prefix every key lives under, the CNCF driver's `rootdirectory`. Default: none,
    /// keys start at `docker/registry/v2`.
    #[serde(default)]
    pub root: String,
    /// Access key id. Default: `AWS_ACCESS_KEY_ID`, else the AWS chain (web identity, ECS
    /// task role, instance metadata).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// File holding the secret access key (trailing whitespace ignored). Default:
    /// `AWS_SECRET_ACCESS_KEY`, else the AWS chain.
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// The secret access key itself. Prefer `secret_access_key_file` or the environment.
    #[serde(default)]
    pub secret_access_key: Option<SecretKey>,
    /// PEM file of extra certificate authorities to trust for `endpoint`. Default: the
    /// system's trust store only.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Bytes per multipart part, at least 5 MiB. Default 8 MiB (not tuned by measurement);
    /// a push holds at most about two parts in memory.
    #[serde(default = "default_part_size")]
    pub part_size: u64,
    /// Redirect blob pulls to presigned URLs. Default: off.
    #[serde(default)]
    pub redirect: RedirectConfig,
    /// Retrying failed requests.
    #[serde(default)]
    pub retry: RetrySettings,
    /// Longest a single request may take. Default 60 s.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
}

/// A secret access key from the config file; `Debug` shows `***`, so it never reaches a log.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretKey(pub String);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `storage.s3.redirect`: answer blob `GET`s with `307` to a presigned URL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectConfig {
    /// Whether to redirect. Default `false`: Berth streams blobs itself.
    #[serde(default)]
    pub enabled: bool,
    /// How long a presigned URL is valid. Default 20 minutes.
    #[serde(default = "default_redirect_expiry", with = "humantime_serde")]
    pub expiry: Duration,
}

/// `storage.s3.retry`: how hard to try before a request fails.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    /// Retries of one request. Default 10.
    #[serde(default = "default_max_retries")]
    pub max_retries: usize,
    /// Time after the first attempt beyond which no retry starts. Default 3 minutes.
    #[serde(default = "default_retry_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// Why the S3 backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum S3SetupError {
    /// A file named in the config could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The client rejected the settings.
    #[error("invalid S3 settings: {0}")]
    Client(#[from] object_store::Error),
    /// The endpoint is not a URL.
    #[error("storage.s3.endpoint {endpoint} is not a URL")]
    Endpoint { endpoint: String },
    /// `part_size` is below S3's minimum.
    #[error("storage.s3.part_size must be at least 5 MiB (5242880), not {0}")]
    PartSize(u64),
    /// The runtime that drives the client could not start.
    #[error("cannot start the S3 client's runtime: {0}")]
    Runtime(std::io::Error),
}

/// The registry's storage in an S3 bucket.
pub struct S3Storage {
    store: Arc<AmazonS3>,
    root: String,
    part_size: usize,
    runtime: ClientRuntime,
}

impl S3Storage {
    /// Connects to the bucket `config` names. Nothing is sent until the first operation.
    ///
    /// # Errors
    /// [`S3SetupError`] for unreadable files and settings the client refuses.
    pub fn new(config: &S3Config) -> Result<Self, S3SetupError> {
        if config.part_size < MIN_PART_SIZE {
            return Err(S3SetupError::PartSize(config.part_size));
        }
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| S3SetupError::Read {
                path: path.clone(),
                source,
            })
        };

        let mut options = ClientOptions::new().with_timeout(config.request_timeout);
        if let Some(ca_file) = &config.ca_file {
            for certificate in object_store::Certificate::from_pem_bundle(&read(ca_file)?)? {
                options = options.with_root_certificate(certificate);
            }
        }
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: config.retry.max_retries,
            retry_timeout: config.retry.timeout,
        };

        // The environment first (credentials and the AWS chain's settings), then the file.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_client_options(options)
            .with_retry(retry);
        if let Some(endpoint) = &config.endpoint {
            let endpoint = endpoint_for(endpoint, &config.bucket, config.path_style)?;
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(path) = &config.secret_access_key_file {
            let secret = String::from_utf8_lossy(&read(path)?).trim().to_string();
            builder = builder.with_secret_access_key(secret);
        } else if let Some(SecretKey(secret)) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("berth-s3")
            .enable_all()
            .build()
            .map_err(S3SetupError::Runtime)?;
        Ok(S3Storage {
            store: Arc::new(builder.build()?),
            root: config.root.trim_matches('/').to_string(),
            part_size: config.part_size as usize,
            runtime: ClientRuntime(Some(runtime)),
        })
    }

    /// The object path of a key: the key below the root prefix.
    pub fn path(&self, key: &str) -> Path {
        if self.root.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.root))
        }
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.handle().block_on(future)
    }

    /// Every object below `upload`'s `chunks/`, in order, checked to follow on each other.
    fn chunks(&self, upload: &str) -> Result<Option<Vec<ObjectMeta>>, StorageError> {
        let prefix = self.path(upload);
        let failed = |source| StorageError::ObjectStore {
            operation: "upload_size",
            key: upload.to_string(),
            source,
        };
        let objects: Vec<ObjectMeta> = self
            .block_on(self.store.list(Some(&prefix)).collect::<Vec<_>>())
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(failed)?;
        if objects.is_empty() {
            return Ok(None);
        }

        let chunks_prefix = self.path(&format!("{upload}/chunks"));
        let mut chunks: Vec<(u64, ObjectMeta)> = objects
            .into_iter()
            .filter(|meta| meta.location.prefix_match(&chunks_prefix).is_some())
            .filter_map(|meta| Some((meta.location.filename()?.parse().ok()?, meta)))
            .collect();
        chunks.sort_by_key(|(offset, _)| *offset);
        let mut expected = 0;
        for (offset, meta) in &chunks {
            if *offset != expected {
                return Err(StorageError::UploadInconsistent {
                    upload: upload.to_string(),
                    detail: format!("a chunk starts at {offset}, expected {expected}"),
                });
            }
            expected += meta.size;
        }
        Ok(Some(chunks.into_iter().map(|(_, meta)| meta).collect()))
    }

    /// A writer that streams into the object `path` as a multipart upload.
    fn writer(&self, path: Path, key: &str, operation: &'static str) -> S3ChunkWriter {
        S3ChunkWriter {
            store: self.store.clone(),
            runtime: self.runtime.handle().clone(),
            path,
            key: key.to_string(),
            operation,
            part_size: self.part_size,
            buffer: Vec::new(),
            buffered: 0,
            upload: None,
            in_flight: None,
        }
    }

    fn failed(
        &self,
        operation: &'static str,
        key: &str,
    ) -> impl Fn(object_store::Error) -> StorageError {
        let key = key.to_string();
        move |source| StorageError::ObjectStore {
            operation,
            key: key.clone(),
            source,
        }
    }
}

impl Storage for S3Storage {
    fn backend(&self) -> &'static str {
        "s3"
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.path(key);
        let result = self.block_on(async {
            let got = self.store.get(&path).await?;
            got.bytes().await
        });
        match result {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.failed("read", key)(error)),
        }
    }

    fn write(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let payload = PutPayload::from(bytes.to_vec());
        self.block_on(self.store.put(&self.path(key), payload))
            .map(drop)
            .map_err(self.failed("write", key))
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        match self.block_on(self.store.head(&self.path(key))) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.failed("stat", key)(error)),
        }
    }

    fn modified(&self, key: &str) -> Result<Option<std::time::SystemTime>, StorageError> {
        match self.block_on(self.store.head(&self.path(key))) {
            Ok(meta) => Ok(Some(meta.last_modified.into())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.failed("stat", key)(error)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let listed = self
            .block_on(self.store.list_with_delimiter(Some(&self.path(prefix))))
            .map_err(self.failed("list", prefix))?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|path| path.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    fn delete_all(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key);
        let store = self.store.clone();
        self.block_on(async {
            let below = store
                .list(Some(&path))
                .map(|meta| meta.map(|meta| meta.location));
            let mut deleted = store.delete_stream(below.boxed());
            while let Some(result) = deleted.next().await {
                match result {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(error) => return Err(error),
                }
            }
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(error) => Err(error),
            }
        })
        .map_err(self.failed("delete", key))
    }

    fn open(&self, key: &str, first: u64, length: u64) -> Result<ByteStream, StorageError> {
        if length == 0 {
            return Ok(Box::new(std::iter::empty()));
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(first..first + length)),
            ..GetOptions::default()
        };
        let got = self
            .block_on(self.store.get_opts(&self.path(key), options))
            .map_err(self.failed("open", key))?;
        Ok(Box::new(BodyChunks {
            stream: Some(got.into_stream()),
            runtime: self.runtime.handle().clone(),
            key: key.to_string(),
        }))
    }

    fn presign(&self, key: &str, expires: Duration) -> Result<Option<String>, StorageError> {
        let url = self
            .block_on(
                self.store
                    .signed_url(http::Method::GET, &self.path(key), expires),
            )
            .map_err(self.failed("presign", key))?;
        Ok(Some(url.to_string()))
    }

    fn upload_create(&self, upload: &str) -> Result<(), StorageError> {
        let started = super::fs::started_at().into_bytes();
        self.block_on(
            self.store
                .put(&self.path(&format!("{upload}/startedat")), started.into()),
        )
        .map(drop)
        .map_err(self.failed("upload_create", upload))
    }

    fn upload_size(&self, upload: &str) -> Result<Option<u64>, StorageError> {
        Ok(self
            .chunks(upload)?
            .map(|chunks| chunks.iter().map(|meta| meta.size).sum()))
    }

    fn upload_append(
        &self,
        upload: &str,
        offset: u64,
    ) -> Result<Box<dyn ChunkWriter>, StorageError> {
        let path = self.path(&format!("{upload}/chunks/{offset:020}"));
        Ok(Box::new(self.writer(path, upload, "upload_append")))
    }

    fn upload_read(&self, upload: &str) -> Result<ByteStream, StorageError> {
        let chunks = self.chunks(upload)?.unwrap_or_default();
        Ok(Box::new(ChunkObjects {
            store: self.store.clone(),
            runtime: self.runtime.handle().clone(),
            pending: chunks.into_iter().map(|meta| meta.location).collect(),
            current: None,
            key: upload.to_string(),
        }))
    }

    fn upload_commit(&self, upload: &str, blob: &str) -> Result<(), StorageError> {
        let failed = self.failed("upload_commit", upload);
        let chunks = self.chunks(upload)?.unwrap_or_default();
        let target = self.path(blob);

        if self.size(blob)?.is_none() {
            match chunks.as_slice() {
                [] => {
                    let empty = PutPayload::default();
                    self.block_on(self.store.put(&target, empty))
                        .map_err(&failed)?;
                }
                [only] if only.size <= MAX_COPY_SIZE => {
                    self.block_on(self.store.copy(&only.location, &target))
                        .map_err(&failed)?;
                }
                _ => {
                    let mut writer = self.writer(target, upload, "upload_commit");
                    for chunk in self.upload_read(upload)? {
                        writer.write(chunk?)?;
                    }
                    Box::new(writer).finish()?;
                }
            }
        }
        self.delete_all(upload)
    }
}

/// Owns the runtime that drives the async client; shuts it down without blocking, so the
/// storage may be dropped anywhere.
struct ClientRuntime(Option<Runtime>);

impl ClientRuntime {
    fn handle(&self) -> &Handle {
        self.0
            .as_ref()
            .expect("the runtime is only taken out when dropped")
            .handle()
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Streams bytes into one object: a plain `PUT` when they fit in one part, else a
/// multipart upload with one part in flight while the next one fills.
struct S3ChunkWriter {
    store: Arc<AmazonS3>,
    runtime: Handle,
    path: Path,
    key: String,
    operation: &'static str,
    part_size: usize,
    buffer: Vec<Bytes>,
    buffered: usize,
    upload: Option<Box<dyn MultipartUpload>>,
    in_flight: Option<JoinHandle<object_store::Result<()>>>,
}

impl S3ChunkWriter {
    fn failed(&self, source: object_store::Error) -> StorageError {
        StorageError::ObjectStore {
            operation: self.operation,
            key: self.key.clone(),
            source,
        }
    }

    /// Sends what is buffered as the next part, after the part before it has arrived.
    fn send_part(&mut self) -> Result<(), StorageError> {
        self.wait_for_part()?;
        if self.upload.is_none() {
            let started = self.runtime.block_on(self.store.put_multipart(&self.path));
            self.upload = Some(started.map_err(|e| self.failed(e))?);
        }
        let payload: PutPayload = std::mem::take(&mut self.buffer).into_iter().collect();
        self.buffered = 0;
        let upload = self.upload.as_mut().expect("started above");
        let part = upload.put_part(payload);
        self.in_flight = Some(self.runtime.spawn(part));
        Ok(())
    }

    fn wait_for_part(&mut self) -> Result<(), StorageError> {
        let Some(part) = self.in_flight.take() else {
            return Ok(());
        };
        match self.runtime.block_on(part) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.failed(error)),
            Err(join) => Err(self.failed(object_store::Error::Generic {
                store: "S3",
                source: Box::new(join),
            })),
        }
    }

    fn finish_upload(&mut self) -> Result<(), StorageError> {
        if self.upload.is_none() {
            if self.buffered == 0 {
                return Ok(()); // An empty chunk adds nothing to the session.
            }
            let payload: PutPayload = std::mem::take(&mut self.buffer).into_iter().collect();
            let put = self.runtime.block_on(self.store.put(&self.path, payload));
            return put.map(drop).map_err(|e| self.failed(e));
        }
        if self.buffered > 0 {
            self.send_part()?;
        }
        self.wait_for_part()?;
        let mut upload = self.upload.take().expect("checked above");
        match self.runtime.block_on(upload.complete()) {
            Ok(_) => Ok(()),
            Err(error) => {
                self.upload = Some(upload);
                Err(self.failed(error))
            }
        }
    }
}

impl ChunkWriter for S3ChunkWriter {
    fn write(&mut self, bytes: Bytes) -> Result<(), StorageError> {
        self.buffered += bytes.len();
        self.buffer.push(bytes);
        if self.buffered >= self.part_size {
            self.send_part()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), StorageError> {
        self.finish_upload()
    }
}

impl Drop for S3ChunkWriter {
    /// An unfinished multipart upload is aborted in the background, so the store frees its
    /// parts; the chunk object never appears.
    fn drop(&mut self) {
        if let Some(part) = self.in_flight.take() {
            part.abort();
        }
        if let Some(mut upload) = self.upload.take() {
            self.runtime.spawn(async move {
                let _ = upload.abort().await;
            });
        }
    }
}

/// A ranged `GET`'s body, chunk by chunk.
struct BodyChunks {
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    runtime: Handle,
    key: String,
}

impl Iterator for BodyChunks {
    type Item = Result<Bytes, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let stream = self.stream.as_mut()?;
        match self.runtime.block_on(stream.next()) {
            Some(Ok(bytes)) => Some(Ok(bytes)),
            Some(Err(source)) => {
                self.stream = None;
                Some(Err(StorageError::ObjectStore {
                    operation: "read",
                    key: self.key.clone(),
                    source,
                }))
            }
            None => {
                self.stream = None;
                None
            }
        }
    }
}

/// The chunk objects of an upload, one after the other.
struct ChunkObjects {
    store: Arc<AmazonS3>,
    runtime: Handle,
    pending: std::collections::VecDeque<Path>,
    current: Option<BodyChunks>,
    key: String,
}

impl Iterator for ChunkObjects {
    type Item = Result<Bytes, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(current) = &mut self.current {
                match current.next() {
                    Some(item) => return Some(item),
                    None => self.current = None,
                }
            }
            let path = self.pending.pop_front()?;
            let got = self.runtime.block_on(async {
                let got = self.store.get(&path).await?;
                Ok::<_, object_store::Error>(got.into_stream())
            });
            match got {
                Ok(stream) => {
                    self.current = Some(BodyChunks {
                        stream: Some(stream),
                        runtime: self.runtime.clone(),
                        key: self.key.clone(),
                    })
                }
                Err(source) => {
                    self.pending.clear();
                    return Some(Err(StorageError::ObjectStore {
                        operation: "upload_read",
                        key: self.key.clone(),
                        source,
                    }));
                }
            }
        }
    }
}

/// The endpoint URL the client is given: the configured one, with the bucket as the first
/// label of the host for virtual-hosted addressing.
fn endpoint_for(endpoint: &str, bucket: &str, path_style: bool) -> Result<String, S3SetupError> {
    let invalid = || S3SetupError::Endpoint {
        endpoint: endpoint.to_string(),
    };
    let mut url = url::Url::parse(endpoint).map_err(|_| invalid())?;
    if !path_style {
        let host = url.host_str().ok_or_else(invalid)?.to_string();
        url.set_host(Some(&format!("{bucket}.{host}")))
            .map_err(|_| invalid())?;
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// S3's smallest part but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's largest `CopyObject`.
const MAX_COPY_SIZE: u64 = 5 * 1024 * 1024 * 1024;

fn default_region() -> String {
    "us-east-1".to_string()
}

fn default_part_size() -> u64 {
    8 * 1024 * 1024
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_redirect_expiry() -> Duration {
    Duration::from_secs(20 * 60)
}

fn default_max_retries() -> usize {
    10
}

fn default_retry_timeout() -> Duration {
    Duration::from_secs(180)
}

impl Default for RedirectConfig {
    fn default() -> Self {
        RedirectConfig {
            enabled: false,
            expiry: default_redirect_expiry(),
        }
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_retries: default_max_retries(),
            timeout: default_retry_timeout(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosted_endpoints_carry_the_bucket() {
        let virtual_hosted = endpoint_for("https://s3.example.com", "b", false).unwrap();
        assert_eq!(virtual_hosted, "https://b.s3.example.com");
        let path_style = endpoint_for("http://127.0.0.1:3900/", "b", true).unwrap();
        assert_eq!(path_style, "http://127.0.0.1:3900");
    }
}
