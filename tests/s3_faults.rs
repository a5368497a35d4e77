//! The object store goes away in the middle of a push: the client gets a clear error (503
//! `UNAVAILABLE`, "storage backend unavailable"), no blob becomes visible, the failure is
//! counted in `berth_storage_errors_total`; and once the store is back the same push
//! succeeds. This test owns its Garage, since it stops it.

mod common;

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use common::s3::Garage;
use common::{digest_of, metric_sum, sample_bytes, users_block, Berth, RegistryClient};

const LAYER_SIZE: usize = 24 * 1024 * 1024;
/// Bytes sent before the store is stopped: three 8 MiB parts have gone out by then.
const SENT_BEFORE_STOP: usize = 20 * 1024 * 1024;

#[test]
fn a_store_stopped_mid_push_fails_it_cleanly_and_the_push_succeeds_once_it_is_back() {
    let garage = Garage::start();
    let bucket = garage.bucket();
    let config = format!(
        "{}acl:\n  - {{users: [alice], repos: [\"team/**\"], actions: [pull, push]}}\n",
        users_block(&["alice"])
    );
    // Few, quick retries, so the failure shows within seconds.
    let retry = ", retry: {max_retries: 2, timeout: 3s}, request_timeout: 5s";
    let berth = Berth::start_on_bucket(&bucket, "/faults", retry, "", &config);
    let client = RegistryClient::new(&berth, Some("alice"));
    let layer = sample_bytes("fault layer", LAYER_SIZE);
    let digest = digest_of(&layer);

    // The body pauses after SENT_BEFORE_STOP bytes until the store is down.
    let location = client.start_upload("team/app");
    let (paused, resume) = (mpsc::channel(), mpsc::channel());
    let body = PausingBody {
        bytes: layer.clone(),
        at: 0,
        pause_at: SENT_BEFORE_STOP,
        paused: paused.0,
        resume: resume.1,
    };
    let sender = std::thread::spawn({
        let http = berth.client();
        let url = format!("{location}?digest={digest}");
        move || {
            http.put(url)
                .basic_auth("alice", Some(common::PASSWORD))
                .header("Content-Type", "application/octet-stream")
                .body(reqwest::blocking::Body::new(body))
                .send()
        }
    });
    paused
        .1
        .recv_timeout(Duration::from_secs(120))
        .expect("body reached the pause");
    garage.stop();
    resume.0.send(()).unwrap();

    let response = sender.join().expect("sender thread");
    let (status, text) = match response {
        Ok(response) => (
            response.status().as_u16(),
            response.text().unwrap_or_default(),
        ),
        Err(error) => panic!("no answer to the failed push: {error:?}\n{}", berth.log()),
    };
    assert_eq!(status, 503, "{text}\n{}", berth.log());
    assert!(text.contains("UNAVAILABLE"), "{text}");
    assert!(text.contains("storage backend unavailable"), "{text}");
    let errors = metric_sum(&berth.metrics(), "berth_storage_errors_total");
    assert!(errors >= 1.0, "storage errors counted: {errors}");
    assert!(berth.log().contains("storage failed"), "no log line");

    // Back up: nothing of the failed push is visible, and the same push succeeds.
    garage.restart();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let blob = format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]);
    assert!(
        !berth.has_object(&blob),
        "a blob appeared from a failed push"
    );
    client
        .head(&format!("/v2/team/app/blobs/{digest}"))
        .assert_status(404);

    let location = client.start_upload("team/app");
    let reply = client.send_chunked("PATCH", &location, layer.clone());
    reply.assert_status(202);
    let location = reply.header("Location").unwrap();
    client
        .send("PUT", &format!("{location}?digest={digest}"), &[], None)
        .assert_status(201);
    let fetched = client.get(&format!("/v2/team/app/blobs/{digest}"));
    fetched.assert_status(200);
    assert!(fetched.body == layer, "served other bytes after recovery");
}

/// A request body that stops after `pause_at` bytes, says so, and waits to be resumed.
struct PausingBody {
    bytes: Vec<u8>,
    at: usize,
    pause_at: usize,
    paused: mpsc::Sender<()>,
    resume: mpsc::Receiver<()>,
}

impl Read for PausingBody {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.pause_at {
            let _ = self.paused.send(());
            let _ = self.resume.recv_timeout(Duration::from_secs(120));
            // Give the node time to notice on its next part, not just at the end.
            std::thread::sleep(Duration::from_millis(200));
        }
        let end = if self.at < self.pause_at {
            self.pause_at
        } else {
            self.bytes.len()
        };
        let count = buffer.len().min(end - self.at);
        buffer[..count].copy_from_slice(&self.bytes[self.at..self.at + count]);
        self.at += count;
        Ok(count)
    }
}
