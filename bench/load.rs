//! `berth-load`: the benchmark's load client. It speaks the registry API the way docker does
//! (blob pushes as POST, one streamed PATCH, then PUT `?digest=`; pulls as streamed GETs) over
//! HTTPS with basic auth, against Berth or the peer stack alike, and prints one JSON line of
//! results for `bench/bench.py` to read.
//!
//! Blob contents come from files prepared before timing starts (`prepare`), so the client
//! spends no CPU making or hashing data while it measures; on a two-core machine every cycle
//! it used would be taken from the server under test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use sha2::{Digest as _, Sha256};
use tokio_util::io::ReaderStream;

/// Bytes read from a blob file per body chunk: big enough that the client is never what
/// limits an upload.
const READ_SIZE: usize = 1 << 20;

#[derive(Parser)]
#[command(about = "Load client for Berth's side-by-side benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes COUNT files of SIZE pseudo-random bytes into DIR, with their digests in
    /// DIR/digests.
    Prepare {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        size: u64,
        #[arg(long)]
        count: usize,
    },
    /// Pushes every prepared blob of DIR into REPO, CONCURRENCY at a time.
    Push {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
    /// Pulls every prepared blob of DIR from REPO, once per client, CLIENTS clients at once.
    Pull {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        clients: usize,
    },
    /// Sends METHOD requests for PATH over CONNECTIONS keep-alive connections for SECONDS,
    /// and reports the rate and latency percentiles.
    Requests {
        #[command(flatten)]
        target: Target,
        /// Path after the base URL, e.g. /v2/bench/small/manifests/latest
        #[arg(long)]
        path: String,
        #[arg(long, default_value = "GET")]
        method: String,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Accept header to send.
        #[arg(long)]
        accept: Option<String>,
    },
    /// Pushes a small image (config + one layer + manifest) and tags it, for the
    /// small-request benchmark.
    Manifest {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        tag: String,
    },
}

/// Where to send requests and as whom.
#[derive(clap::Args, Clone)]
struct Target {
    /// Base URL, e.g. https://127.0.0.1:5443
    #[arg(long)]
    url: String,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    /// PEM CA certificate the server's certificate chains to.
    #[arg(long)]
    ca: PathBuf,
    #[arg(long)]
    repo: String,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    match Cli::parse().command {
        Command::Prepare { dir, size, count } => prepare(&dir, size, count),
        Command::Push {
            target,
            dir,
            concurrency,
        } => {
            let blobs = read_digests(&dir)?;
            let started = Instant::now();
            let bytes = push_all(&target, &dir, blobs, concurrency).await?;
            report(bytes, started);
            Ok(())
        }
        Command::Pull {
            target,
            dir,
            clients,
        } => {
            let blobs = read_digests(&dir)?;
            let started = Instant::now();
            let bytes = pull_all(&target, blobs, clients).await?;
            report(bytes, started);
            Ok(())
        }
        Command::Manifest { target, tag } => push_small_image(&target, &tag).await,
        Command::Requests {
            target,
            path,
            method,
            connections,
            seconds,
            accept,
        } => {
            let method = reqwest::Method::from_bytes(method.as_bytes())?;
            let settings = RequestLoad {
                url: format!("{}{path}", target.url),
                method,
                accept,
                duration: std::time::Duration::from_secs_f64(seconds),
            };
            request_load(&target, settings, connections).await
        }
    }
}

fn report(bytes: u64, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    let mb_per_s = bytes as f64 / seconds / 1e6;
    println!("{{\"bytes\":{bytes},\"seconds\":{seconds:.4},\"mb_per_s\":{mb_per_s:.1}}}");
}

// --- data ---

fn prepare(dir: &Path, size: u64, count: usize) -> Result<(), Error> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let mut digests = String::new();
    for index in 0..count {
        // xorshift: fast, and different per blob so no two blobs share a digest.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xD6E8_FEB8);
        let mut hasher = Sha256::new();
        let path = dir.join(format!("blob-{index}"));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut buffer = vec![0u8; 1 << 20];
        let mut remaining = size;
        while remaining > 0 {
            for word in buffer.chunks_exact_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            let take = remaining.min(buffer.len() as u64) as usize;
            hasher.update(&buffer[..take]);
            file.write_all(&buffer[..take])?;
            remaining -= take as u64;
        }
        file.flush()?;
        digests.push_str(&format!("sha256:{:x} {index}\n", hasher.finalize()));
    }
    std::fs::write(dir.join("digests"), digests)?;
    Ok(())
}

/// (digest, file index) of each prepared blob.
fn read_digests(dir: &Path) -> Result<Vec<(String, usize)>, Error> {
    let text = std::fs::read_to_string(dir.join("digests"))?;
    let mut blobs = Vec::new();
    for line in text.lines() {
        let (digest, index) = line.split_once(' ').ok_or("malformed digests file")?;
        blobs.push((digest.to_string(), index.parse()?));
    }
    Ok(blobs)
}

// --- requests ---

fn client(target: &Target) -> Result<reqwest::Client, Error> {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&target.ca)?)?;
    Ok(reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .http1_only()
        .pool_max_idle_per_host(64)
        .build()?)
}

fn absolute(target: &Target, location: &str) -> String {
    if location.starts_with("http") {
        location.to_string()
    } else {
        format!("{}{location}", target.url)
    }
}

async fn push_all(
    target: &Target,
    dir: &Path,
    blobs: Vec<(String, usize)>,
    concurrency: usize,
) -> Result<u64, Error> {
    let client = client(target)?;
    let queue = Arc::new(tokio::sync::Mutex::new(blobs));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, target, queue, dir) = (
            client.clone(),
            target.clone(),
            queue.clone(),
            dir.to_path_buf(),
        );
        workers.push(tokio::spawn(async move {
            let mut bytes = 0;
            loop {
                let Some((digest, index)) = queue.lock().await.pop() else {
                    return Ok::<u64, Error>(bytes);
                };
                let path = dir.join(format!("blob-{index}"));
                bytes += push_blob(&client, &target, &path, &digest).await?;
            }
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await??;
    }
    Ok(total)
}

/// POST, one streamed PATCH, PUT `?digest=`: what docker sends for a layer.
async fn push_blob(
    client: &reqwest::Client,
    target: &Target,
    path: &Path,
    digest: &str,
) -> Result<u64, Error> {
    let auth =
        |request: reqwest::RequestBuilder| request.basic_auth(&target.user, Some(&target.password));
    let start = format!("{}/v2/{}/blobs/uploads/", target.url, target.repo);
    let response = auth(client.post(start)).send().await?;
    let location = location_of(&response, 202)?;

    let file = tokio::fs::File::open(path).await?;
    let size = file.metadata().await?.len();
    let response = auth(client.patch(absolute(target, &location)))
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(ReaderStream::with_capacity(
            file, READ_SIZE,
        )))
        .send()
        .await?;
    let location = location_of(&response, 202)?;

    let separator = if location.contains('?') { '&' } else { '?' };
    let url = format!("{}{separator}digest={digest}", absolute(target, &location));
    let response = auth(client.put(url)).send().await?;
    if response.status().as_u16() != 201 {
        return Err(format!("PUT answered {}", response.status()).into());
    }
    Ok(size)
}

fn location_of(response: &reqwest::Response, expected: u16) -> Result<String, Error> {
    if response.status().as_u16() != expected {
        return Err(format!("expected {expected}, got {}", response.status()).into());
    }
    let location = response
        .headers()
        .get("location")
        .ok_or("no Location header")?;
    Ok(location.to_str()?.to_string())
}

async fn pull_all(
    target: &Target,
    blobs: Vec<(String, usize)>,
    clients: usize,
) -> Result<u64, Error> {
    let mut workers = Vec::new();
    for _ in 0..clients.max(1) {
        let client = client(target)?;
        let (target, blobs) = (target.clone(), blobs.clone());
        workers.push(tokio::spawn(async move {
            let mut bytes = 0;
            for (digest, _) in &blobs {
                let url = format!("{}/v2/{}/blobs/{digest}", target.url, target.repo);
                let mut response = client
                    .get(url)
                    .basic_auth(&target.user, Some(&target.password))
                    .send()
                    .await?;
                if response.status().as_u16() != 200 {
                    return Err::<u64, Error>(format!("GET answered {}", response.status()).into());
                }
                while let Some(chunk) = response.chunk().await? {
                    bytes += chunk.len() as u64;
                }
            }
            Ok(bytes)
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await??;
    }
    Ok(total)
}

/// What the small-request load sends.
#[derive(Clone)]
struct RequestLoad {
    url: String,
    method: reqwest::Method,
    accept: Option<String>,
    duration: std::time::Duration,
}

/// Each connection sends one request after another until the time is up; latencies are
/// recorded per request, as wrk does.
async fn request_load(target: &Target, load: RequestLoad, connections: usize) -> Result<(), Error> {
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections.max(1) {
        // One client per connection: each keeps its own keep-alive connection.
        let client = client(target)?;
        let (target, load) = (target.clone(), load.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while started.elapsed() < load.duration {
                let sent = Instant::now();
                let mut request = client
                    .request(load.method.clone(), &load.url)
                    .basic_auth(&target.user, Some(&target.password));
                if let Some(accept) = &load.accept {
                    request = request.header("Accept", accept);
                }
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        response.bytes().await?;
                        latencies.push(sent.elapsed().as_micros() as u64);
                    }
                    _ => failures += 1,
                }
            }
            Ok::<_, Error>((latencies, failures))
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (mut some, failed) = worker.await??;
        latencies.append(&mut some);
        failures += failed;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len());
        latencies[index - 1] as f64 / 1000.0
    };
    let summary = serde_json::json!({
        "requests": latencies.len(),
        "failures": failures,
        "per_second": latencies.len() as f64 / seconds,
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
    });
    println!("{summary}");
    Ok(())
}

/// A config blob, one layer and an OCI manifest naming them, tagged `tag`.
async fn push_small_image(target: &Target, tag: &str) -> Result<(), Error> {
    let client = client(target)?;
    let dir = tempfile::tempdir()?;
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"a small layer for the manifest benchmark".to_vec();
    let mut descriptors = Vec::new();
    for (name, bytes) in [("config", config.to_vec()), ("layer", layer)] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes)?;
        let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
        push_blob(&client, target, &path, &digest).await?;
        descriptors.push((digest, bytes.len()));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": descriptors[0].0, "size": descriptors[0].1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": descriptors[1].0, "size": descriptors[1].1}],
    });
    let url = format!("{}/v2/{}/manifests/{tag}", target.url, target.repo);
    let response = client
        .put(url)
        .basic_auth(&target.user, Some(&target.password))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .await?;
    if response.status().as_u16() != 201 {
        return Err(format!("manifest PUT answered {}", response.status()).into());
    }
    println!("{{\"pushed\":\"{tag}\"}}");
    Ok(())
}
