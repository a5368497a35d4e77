//! Live reload on a running server: an edit to proxy.yaml applies within a second, whether
//! written in place, saved by renaming a temp file over it, or followed by `SIGHUP`; a broken
//! edit keeps the running rules (and the server); a request in flight during a reload
//! finishes under the configuration it started with.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{users_block, Berth, RegistryClient, MANIFEST_ACCEPT, OCI_MANIFEST, PASSWORD};

const GENERATION: &str = "berth_config_generation";
const RELOADS_OK: &str = r#"berth_config_reloads_total{result="success"}"#;
const RELOADS_FAILED: &str = r#"berth_config_reloads_total{result="failure"}"#;
const LAST_SUCCESS: &str = "berth_config_last_reload_success_timestamp_seconds";

/// alice may pull and push `team/**`.
const ALLOW: &str = "  - {users: [alice, bob], repos: [\"team/**\"], actions: [pull, push]}\n";
/// alice may do nothing in `team/**`.
const DENY: &str = "  - {users: [alice], repos: [\"team/**\"], deny: [pull, push, delete]}\n";
/// alice may pull `team/**` but no longer push.
const PULL_ONLY: &str = "  - {users: [alice], repos: [\"team/**\"], actions: [pull]}\n";

/// Users alice and bob, then `rules` under `acl:`. The users block takes lines 5-7, `acl:`
/// line 8, so the first rule is on line 9.
fn body(users: &[&str], rules: &str) -> String {
    format!("{}acl:\n{rules}", users_block(users))
}

fn manifest_status(client: &RegistryClient) -> u16 {
    let accept = [("Accept", MANIFEST_ACCEPT)];
    client
        .send("GET", "/v2/team/app/manifests/v1", &accept, None)
        .status
}

/// Polls `condition` every 20 ms for up to `limit`; returns how long it took to hold.
fn within(limit: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if condition() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server where alice has pushed `team/app:v1` under [`ALLOW`].
fn started() -> (Berth, RegistryClient) {
    let berth = Berth::start(&body(&["alice", "bob"], ALLOW));
    let alice = RegistryClient::new(&berth, Some("alice"));
    alice.push_image("team/app", "v1", OCI_MANIFEST);
    assert_eq!(manifest_status(&alice), 200);
    assert_eq!(berth.metric(GENERATION), 1.0);
    (berth, alice)
}

#[test]
fn an_edit_to_deny_refuses_the_next_request_within_a_second() {
    let (berth, alice) = started();
    let bob = RegistryClient::new(&berth, Some("bob"));
    // bob's password is now in the verifier's cache of recent successes.
    assert_eq!(manifest_status(&bob), 200);

    // The edit denies alice and removes bob altogether.
    berth.write_config(&body(&["alice"], DENY));
    let saved = Instant::now();
    let refused = within(Duration::from_secs(3), || manifest_status(&alice) == 403);
    let elapsed = saved.elapsed();
    assert!(refused.is_some(), "never refused; log:\n{}", berth.log());
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");

    // A removed user stops working at once, cached password or not.
    assert_eq!(manifest_status(&bob), 401);
    assert_eq!(berth.metric(GENERATION), 2.0);
    assert_eq!(berth.metric(RELOADS_OK), 1.0);
    assert_eq!(berth.metric(RELOADS_FAILED), 0.0);
    assert!(berth.log().contains("configuration reloaded"));
}

#[test]
fn a_broken_edit_keeps_the_running_rules_and_says_where() {
    let (berth, alice) = started();
    let loaded_at = berth.metric(LAST_SUCCESS);
    assert!(loaded_at > 1.0e9, "last success time: {loaded_at}");

    // One user: the users block takes lines 5-6, `acl:` line 7, the first rule line 8.
    let users = users_block(&["alice"]);
    let cases: &[(String, &str)] = &[
        // YAML syntax: an unclosed flow mapping.
        (
            format!("{users}acl:\n  - {{users: [alice], repos: [x], actions: [pull]\n"),
            "proxy.yaml:10:1: did not find expected ',' or '}'",
        ),
        (
            format!("{users}acl:\n  - {{users: [alice], repos: [x], actoins: [pull]}}\n"),
            "proxy.yaml:8:34: acl[0]: unknown field `actoins`",
        ),
        (
            format!("{users}acl:\n  - {{groups: [nope], repos: [x], actions: [pull]}}\n"),
            "proxy.yaml:8:15: acl rule 1 names unknown group \"nope\"",
        ),
        (
            format!("{users}acl:\n  - {{users: [alice], repos: [x]}}\n"),
            "proxy.yaml:8:5: acl rule 1 has no actions",
        ),
        (
            format!(
                "{users}acl:\n  - {{users: [alice], repos: [\"team/**x\"], actions: [pull]}}\n"
            ),
            "proxy.yaml:8:29: acl[0].repos: invalid repository pattern \"team/**x\"",
        ),
        (
            "users:\n  alice: plaintext\nacl: []\n".to_string(),
            "proxy.yaml:6:3: users: not an argon2 PHC string",
        ),
    ];
    for (failures, (text, expected)) in cases.iter().enumerate() {
        let logged_before = berth.log().len();
        berth.write_config(text);
        let counted = within(Duration::from_secs(3), || {
            berth.metric(RELOADS_FAILED) >= (failures + 1) as f64
        });
        assert!(counted.is_some(), "no failed reload for:\n{text}");
        let log = berth.log()[logged_before..].to_string();
        assert!(
            log.contains(expected),
            "{expected:?} not in log for:\n{text}\n--- log\n{log}"
        );

        // The old rules still hold, and the server still serves.
        assert_eq!(manifest_status(&alice), 200, "after:\n{text}");
        assert_eq!(berth.metric(GENERATION), 1.0);
        assert_eq!(berth.metric(LAST_SUCCESS), loaded_at);
    }
    assert!(berth.log().contains("the running configuration stays"));

    // A good edit applies again.
    berth.write_config(&body(&["alice"], DENY));
    let applied = within(Duration::from_secs(3), || manifest_status(&alice) == 403);
    assert!(
        applied.is_some(),
        "fixed config not applied:\n{}",
        berth.log()
    );
    assert_eq!(berth.metric(GENERATION), 2.0);
    assert!(berth.metric(LAST_SUCCESS) >= loaded_at);
}

#[test]
fn an_editor_style_rename_save_is_picked_up() {
    let (berth, alice) = started();
    let save = |rules: &str| {
        // Write a temp file beside the config, then rename it over the original.
        let temp = berth.dir.path().join(".proxy.yaml.swp");
        std::fs::write(&temp, berth.config_text(&body(&["alice"], rules))).unwrap();
        std::fs::rename(&temp, berth.config_path()).unwrap();
        Instant::now()
    };

    let saved = save(DENY);
    assert!(within(Duration::from_secs(3), || manifest_status(&alice) == 403).is_some());
    assert!(
        saved.elapsed() < Duration::from_secs(1),
        "{:?}",
        saved.elapsed()
    );

    // The watch survives the replaced file: a second rename save applies too.
    let saved = save(ALLOW);
    assert!(within(Duration::from_secs(3), || manifest_status(&alice) == 200).is_some());
    assert!(
        saved.elapsed() < Duration::from_secs(1),
        "{:?}",
        saved.elapsed()
    );
    assert_eq!(berth.metric(GENERATION), 3.0);
}

#[test]
fn sighup_reloads_and_does_not_stop_the_server() {
    let (mut berth, alice) = started();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &berth.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());

    let reloaded = within(Duration::from_secs(3), || berth.metric(GENERATION) == 2.0);
    assert!(reloaded.is_some(), "no reload on SIGHUP:\n{}", berth.log());
    assert!(berth.is_running(), "SIGHUP stopped the server");
    assert_eq!(manifest_status(&alice), 200);
    assert_eq!(berth.metric(RELOADS_OK), 1.0);
}

/// A request body that arrives slowly: `chunks` pieces of `size` bytes, `delay` apart.
struct SlowBody {
    chunks: usize,
    size: usize,
    delay: Duration,
}

impl Read for SlowBody {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.chunks == 0 {
            return Ok(0);
        }
        std::thread::sleep(self.delay);
        self.chunks -= 1;
        let n = self.size.min(buffer.len());
        buffer[..n].fill(b'x');
        Ok(n)
    }
}

#[test]
fn a_request_in_flight_during_a_reload_completes() {
    let (berth, alice) = started();
    let location = alice.start_upload("team/app");

    // A chunk that takes about two seconds to send.
    let client = berth.client();
    let target = location.clone();
    let upload = std::thread::spawn(move || {
        let body = SlowBody {
            chunks: 10,
            size: 16 * 1024,
            delay: Duration::from_millis(200),
        };
        let response = client
            .patch(&target)
            .basic_auth("alice", Some(PASSWORD))
            .header("Content-Type", "application/octet-stream")
            .body(reqwest::blocking::Body::new(body))
            .send()
            .expect("slow PATCH");
        (response.status().as_u16(), Instant::now())
    });

    // While it streams, alice loses push.
    std::thread::sleep(Duration::from_millis(400));
    berth.write_config(&body(&["alice"], PULL_ONLY));
    let reloaded = within(Duration::from_secs(3), || berth.metric(GENERATION) == 2.0);
    assert!(reloaded.is_some(), "no reload:\n{}", berth.log());
    let reloaded_at = Instant::now();

    // The upload started under the old rules and finishes under them.
    let (status, finished_at) = upload.join().expect("upload thread");
    assert!(
        finished_at > reloaded_at,
        "the upload finished before the reload; the test proves nothing"
    );
    assert_eq!(status, 202, "log:\n{}", berth.log());

    // The next request runs under the new rules.
    let next = alice.send("PATCH", &location, &[], Some(b"more".to_vec()));
    next.assert_error(403, "DENIED");
    assert_eq!(manifest_status(&alice), 200);
}

#[test]
fn a_new_certificate_is_served_after_its_files_change() {
    let (berth, _alice) = started();
    // Another server makes another development CA and certificate; copy them over ours.
    let other = Berth::start(&body(&["alice"], ALLOW));
    let certs = |server: &Berth| server.dir.path().join("certs");
    for name in ["server.key", "server.crt"] {
        let temp = certs(&berth).join(format!(".{name}.new"));
        std::fs::copy(certs(&other).join(name), &temp).unwrap();
        std::fs::rename(&temp, certs(&berth).join(name)).unwrap();
    }

    // A client trusting only the other CA now gets through to our server.
    let pem = std::fs::read(other.ca_path()).unwrap();
    let client = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let url = format!("{}/v2/", berth.url());
    let served = within(Duration::from_secs(3), || {
        client
            .get(&url)
            .basic_auth("alice", Some(PASSWORD))
            .send()
            .is_ok_and(|response| response.status() == 200)
    });
    assert!(
        served.is_some(),
        "new certificate not served:\n{}",
        berth.log()
    );
    // And one trusting only the old CA no longer does.
    assert!(berth.client().get(&url).send().is_err());
}

#[test]
fn a_changed_listen_address_needs_a_restart_and_the_rest_applies() {
    let (berth, alice) = started();
    let old_listen = format!("listen: 127.0.0.1:{}\n", berth.port);
    let new_listen = format!("listen: 127.0.0.1:{}\n", common::free_port());
    let text = berth
        .config_text(&body(&["alice"], DENY))
        .replace(&old_listen, &new_listen);
    std::fs::write(berth.config_path(), text).unwrap();

    // The rules apply, on the address the server already listens on.
    assert!(within(Duration::from_secs(3), || manifest_status(&alice) == 403).is_some());
    let log = berth.log();
    assert!(
        log.contains("needs a restart") && log.contains("setting=\"listen\""),
        "{log}"
    );
    assert_eq!(berth.metric(GENERATION), 2.0);
}
