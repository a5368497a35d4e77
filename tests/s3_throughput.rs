//! A measurement, not a check: push and pull one 1 GiB blob through Berth on the filesystem
//! and on S3 (a Garage on loopback), and report throughput and each node's peak RSS
//! (`VmHWM`). Run by hand, on a quiet machine:
//!
//! ```sh
//! cargo test --test s3_throughput -- --ignored --nocapture          # debug build
//! cargo test --release --test s3_throughput -- --ignored --nocapture
//! ```
//!
//! `BERTH_THROUGHPUT_MIB` changes the size (default 1024).

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::s3::Garage;
use common::{users_block, Berth, StorageKind, PASSWORD};

#[test]
#[ignore = "a measurement of a 1 GiB push and pull; run with --ignored --nocapture"]
fn push_and_pull_a_large_blob_on_each_backend() {
    let mib: u64 = std::env::var("BERTH_THROUGHPUT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let config = format!(
        "{}acl:\n  - {{users: [alice], repos: [\"**\"], actions: [pull, push]}}\n",
        users_block(&["alice"])
    );
    let digest = {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        let mut body = Pattern::new(mib);
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let read = body.read(&mut buffer).unwrap();
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    };

    let garage = Garage::start();
    for kind in [StorageKind::Filesystem, StorageKind::S3] {
        let berth = match kind {
            StorageKind::Filesystem => Berth::start_on(kind, false, &config),
            StorageKind::S3 => Berth::start_on_bucket(&garage.bucket(), "/bench", "", "", &config),
        };
        let ca = berth.ca_path();
        let base = berth.url();

        // curl is the client: the debug build of the tests' own HTTP client is slower than
        // the server it measures.
        let started = Instant::now();
        let location = curl(
            &ca,
            &["-X", "POST", "-D", "-", "-o", "/dev/null"],
            &base,
            "/v2/bench/blob/blobs/uploads/",
        )
        .lines()
        .find_map(|line| {
            line.strip_prefix("location: ")
                .or(line.strip_prefix("Location: "))
        })
        .expect("upload Location")
        .trim()
        .to_string();
        let mut push = Command::new("curl")
            .args(["-sS", "--fail", "--cacert"])
            .arg(&ca)
            .args([
                "-u",
                &format!("alice:{PASSWORD}"),
                "-T",
                "-",
                "-o",
                "/dev/null",
            ])
            .args(["-H", "Content-Type: application/octet-stream"])
            .arg(format!("{base}{location}?digest={digest}"))
            .stdin(Stdio::piped())
            .spawn()
            .expect("curl");
        std::io::copy(&mut Pattern::new(mib), push.stdin.as_mut().unwrap()).unwrap();
        drop(push.stdin.take());
        assert!(
            push.wait().unwrap().success(),
            "push failed:\n{}",
            berth.log()
        );
        let push = started.elapsed().as_secs_f64();
        let peak_after_push = peak_rss_kib(berth.pid());

        let started = Instant::now();
        let path = format!("/v2/bench/blob/blobs/{digest}");
        let received = curl(
            &ca,
            &["-o", "/dev/null", "-w", "%{size_download}"],
            &base,
            &path,
        );
        assert_eq!(received.trim(), (mib << 20).to_string());
        let pull = started.elapsed().as_secs_f64();
        let peak = peak_rss_kib(berth.pid());

        println!(
            "{kind:?}: {mib} MiB push {push:.1} s ({:.0} MiB/s), pull {pull:.1} s \
             ({:.0} MiB/s); node peak RSS {:.0} MiB after push, {:.0} MiB after pull",
            mib as f64 / push,
            mib as f64 / pull,
            peak_after_push as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
}

/// Runs curl as alice against `base` + `path` with `args`; returns its standard output.
fn curl(ca: &std::path::Path, args: &[&str], base: &str, path: &str) -> String {
    let output = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(ca)
        .args(["-u", &format!("alice:{PASSWORD}")])
        .args(args)
        .arg(format!("{base}{path}"))
        .output()
        .expect("curl");
    assert!(
        output.status.success(),
        "curl {path}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `VmHWM` of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// `mib` MiB of incompressible-looking bytes, cheap to make: one random MiB, with the MiB's
/// number written into its first bytes so that no two MiB are equal.
struct Pattern {
    block: Vec<u8>,
    total: u64,
    at: u64,
}

impl Pattern {
    fn new(mib: u64) -> Pattern {
        let block = common::sample_bytes("throughput", 1 << 20);
        Pattern {
            block,
            total: mib << 20,
            at: 0,
        }
    }
}

impl Read for Pattern {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let left = self.total - self.at;
        if left == 0 {
            return Ok(0);
        }
        let offset = (self.at % (1 << 20)) as usize;
        let count = buffer
            .len()
            .min(self.block.len() - offset)
            .min(left as usize);
        buffer[..count].copy_from_slice(&self.block[offset..offset + count]);
        if offset < 8 {
            let stamp = (self.at >> 20).to_le_bytes();
            let end = (8 - offset).min(count);
            buffer[..end].copy_from_slice(&stamp[offset..offset + end]);
        }
        self.at += count as u64;
        Ok(count)
    }
}
