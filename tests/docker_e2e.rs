//! End-to-end with the real Docker CLI: build, log in, push, remove, pull and run an image
//! through Berth, and check that access control holds for what docker actually sends. Every
//! test runs twice: on the filesystem backend, and (`_s3`) on a bucket of a real Garage.
//!
//! Needs the private dockerd that `tests/run-all.sh` starts (`DOCKER_HOST`) and the Garage
//! it installs; without them the tests fail and say so.

mod common;

use common::docker::{log_tail, write_image_context, Docker, DockerTrust, HELLO_LINE};
use common::{metric_sum, metric_value, users_block, Berth, StorageKind, PASSWORD};

/// alice may push `team/**` and `public/**`; bob may only pull `team/**`; mallory is a valid
/// user with no rule at all; anyone may pull `public/**`.
fn config() -> String {
    format!(
        "{}\
         acl:\n  \
           - {{users: [alice], repos: [\"team/**\", \"public/**\"], actions: [pull, push]}}\n  \
           - {{users: [bob], repos: [\"team/**\"], actions: [pull]}}\n  \
           - {{anonymous: true, repos: [\"public/**\"], actions: [pull]}}\n",
        users_block(&["alice", "bob", "mallory"])
    )
}

const MANIFESTS_STORED: &str = "berth_registry_manifests_stored_total";
const BLOBS_STORED: &str = "berth_registry_blobs_stored_total";
const AUTH_FAILURES: &str = r#"berth_auth_attempts_total{method="basic",outcome="failure"}"#;
const PUSH_DENIALS: &str = r#"berth_acl_denials_total{action="push"}"#;
const PULL_DENIALS: &str = r#"berth_acl_denials_total{action="pull"}"#;

const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
                              application/vnd.oci.image.manifest.v1+json";

#[test]
fn docker_push_pull_and_run_a_large_image() {
    push_pull_and_run_a_large_image(StorageKind::Filesystem);
}

#[test]
fn docker_push_pull_and_run_a_large_image_s3() {
    push_pull_and_run_a_large_image(StorageKind::S3);
}

#[test]
fn docker_respects_the_access_control_list() {
    respects_the_access_control_list(StorageKind::Filesystem);
}

#[test]
fn docker_respects_the_access_control_list_s3() {
    respects_the_access_control_list(StorageKind::S3);
}

fn push_pull_and_run_a_large_image(storage: StorageKind) {
    let docker = Docker::new();
    let berth = Berth::start_on(storage, false, &config());
    let _trust = DockerTrust::install(&berth);
    let before = berth.metrics();

    // Two layers: 64 MiB of random data (so nothing compresses it away) and a static binary.
    let context = tempfile::tempdir().unwrap();
    write_image_context(context.path(), 64 * 1024 * 1024);
    let image = format!("{}/team/app:v1", berth.host());
    docker.build(context.path(), &image);

    // A wrong password is refused, the right one accepted.
    let wrong = docker.login(&berth.host(), "alice", "not the password");
    assert!(
        !wrong.success,
        "login with a wrong password succeeded:\n{}",
        wrong.describe()
    );
    assert!(
        wrong.combined().to_lowercase().contains("unauthorized"),
        "unexpected login failure:\n{}",
        wrong.describe()
    );
    let right = docker.login(&berth.host(), "alice", PASSWORD);
    assert!(right.success, "{}{}", right.describe(), log_tail(&berth));

    let pushed = docker.ok(&["push", &image], Some(&berth)).digest();
    let tag_link = "docker/registry/v2/repositories/team/app/_manifests/tags/v1/current/link";
    assert!(
        berth.has_object(tag_link),
        "push left no tag link at {tag_link}"
    );

    // Remove every local trace so the pull must fetch all layers again.
    docker.ok(&["rmi", &image], None);
    assert!(!docker.has_image(&image), "image still present after rmi");
    let pull = docker.ok(&["pull", &image], Some(&berth));
    assert_eq!(
        pull.digest(),
        pushed,
        "pulled a different manifest than was pushed"
    );

    let run = docker.ok(&["run", "--rm", "--network", "none", &image], Some(&berth));
    assert_eq!(run.stdout.trim(), HELLO_LINE);

    // One manifest and three blobs (config + two layers) were stored; the wrong password
    // was counted; both directions moved at least the 64 MiB layer.
    let after = berth.metrics();
    let delta = |name: &str| metric_sum(&after, name) - metric_sum(&before, name);
    assert_eq!(delta(MANIFESTS_STORED), 1.0, "manifests stored");
    assert_eq!(delta(BLOBS_STORED), 3.0, "blobs stored");
    let failures = metric_value(&after, AUTH_FAILURES) - metric_value(&before, AUTH_FAILURES);
    assert!(failures >= 1.0, "auth failures counted: {failures}");
    assert!(delta("berth_http_received_bytes_total") >= 64.0 * 1024.0 * 1024.0);
    assert!(delta("berth_http_sent_bytes_total") >= 64.0 * 1024.0 * 1024.0);
    let manifest_gets = metric_value(
        &after,
        r#"berth_http_requests_total{method="GET",route="manifest",status="200"}"#,
    );
    assert!(
        manifest_gets >= 1.0,
        "manifest GETs counted: {manifest_gets}"
    );

    docker.run(&["rmi", &image]);
}

fn respects_the_access_control_list(storage: StorageKind) {
    let alice = Docker::new();
    let berth = Berth::start_on(storage, false, &config());
    let _trust = DockerTrust::install(&berth);
    let client = berth.client();
    let team_image = format!("{}/team/app:v1", berth.host());
    let public_image = format!("{}/public/hello:v1", berth.host());

    // alice publishes one image to a team repository and one to a public one.
    let context = tempfile::tempdir().unwrap();
    write_image_context(context.path(), 0);
    alice.build(context.path(), &team_image);
    alice.ok(&["tag", &team_image, &public_image], None);
    assert!(
        alice.login(&berth.host(), "alice", PASSWORD).success,
        "{}",
        log_tail(&berth)
    );
    alice.ok(&["push", &team_image], Some(&berth));
    let public_digest = alice.ok(&["push", &public_image], Some(&berth)).digest();
    let before = berth.metrics();

    // bob may pull the team image but not push to it: docker says "denied", and no
    // manifest reaches storage.
    let bob = Docker::new();
    assert!(
        bob.login(&berth.host(), "bob", PASSWORD).success,
        "{}",
        log_tail(&berth)
    );
    bob.ok(&["pull", &team_image], Some(&berth));
    let bobs_tag = format!("{}/team/app:bob", berth.host());
    bob.ok(&["tag", &team_image, &bobs_tag], None);
    let push = bob.run(&["push", &bobs_tag]);
    assert!(!push.success, "pull-only user pushed:\n{}", push.describe());
    assert!(
        push.combined().contains("denied"),
        "no denial reported:\n{}",
        push.describe()
    );
    let bobs_new_repository = format!("{}/team/bobs:v1", berth.host());
    bob.ok(&["tag", &team_image, &bobs_new_repository], None);
    let push = bob.run(&["push", &bobs_new_repository]);
    assert!(
        !push.success,
        "pull-only user created a repository:\n{}",
        push.describe()
    );
    assert!(
        push.combined().contains("denied"),
        "no denial reported:\n{}",
        push.describe()
    );

    // mallory is signed in but no rule names her: no pull, and no sight of the repository.
    let mallory = Docker::new();
    assert!(
        mallory.login(&berth.host(), "mallory", PASSWORD).success,
        "{}",
        log_tail(&berth)
    );
    mallory.run(&["rmi", &team_image]);
    let pull = mallory.run(&["pull", &team_image]);
    assert!(
        !pull.success,
        "user outside the ACL pulled:\n{}",
        pull.describe()
    );
    let catalog = |user: &str| -> Vec<String> {
        let response = client
            .get(format!("{}/v2/_catalog", berth.url()))
            .basic_auth(user, Some(PASSWORD))
            .send()
            .expect("GET /v2/_catalog");
        assert_eq!(response.status(), 200, "catalog for {user}");
        let body: serde_json::Value = response.json().expect("catalog JSON");
        body["repositories"]
            .as_array()
            .expect("repositories array")
            .iter()
            .map(|name| name.as_str().expect("repository name").to_string())
            .collect()
    };
    let alices = catalog("alice");
    assert!(
        alices.contains(&"team/app".to_string()),
        "alice's catalog: {alices:?}"
    );
    assert!(
        alices.contains(&"public/hello".to_string()),
        "alice's catalog: {alices:?}"
    );
    let mallorys = catalog("mallory");
    assert!(
        !mallorys.contains(&"team/app".to_string()),
        "mallory's catalog: {mallorys:?}"
    );

    // Anonymous: the public manifest is readable over plain HTTP requests; docker itself
    // will not even try without credentials, and the team image stays closed.
    let response = client
        .get(format!("{}/v2/public/hello/manifests/v1", berth.url()))
        .header("Accept", MANIFEST_TYPES)
        .send()
        .expect("anonymous manifest GET");
    assert_eq!(
        response.status(),
        200,
        "anonymous pull of a public manifest"
    );
    let digest = response.headers()["Docker-Content-Digest"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(digest, public_digest);
    let manifest: serde_json::Value = response.json().expect("manifest JSON");
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let blob = client
        .get(format!(
            "{}/v2/public/hello/blobs/{config_digest}",
            berth.url()
        ))
        .send()
        .expect("anonymous blob GET");
    assert_eq!(blob.status(), 200, "anonymous pull of a public blob");
    let response = client
        .get(format!("{}/v2/team/app/manifests/v1", berth.url()))
        .header("Accept", MANIFEST_TYPES)
        .send()
        .expect("anonymous manifest GET");
    assert_eq!(response.status(), 401, "anonymous pull of a team manifest");
    let anonymous = Docker::new();
    let pull = anonymous.run(&["pull", &team_image]);
    assert!(
        !pull.success,
        "anonymous docker pull succeeded:\n{}",
        pull.describe()
    );

    // bob's refused pushes and mallory's refused pull were counted, and stored nothing.
    let after = berth.metrics();
    let delta = |selector: &str| metric_value(&after, selector) - metric_value(&before, selector);
    assert!(
        delta(PUSH_DENIALS) >= 2.0,
        "push denials: {}",
        delta(PUSH_DENIALS)
    );
    assert!(
        delta(PULL_DENIALS) >= 1.0,
        "pull denials: {}",
        delta(PULL_DENIALS)
    );
    assert_eq!(
        metric_sum(&after, MANIFESTS_STORED),
        metric_sum(&before, MANIFESTS_STORED)
    );
    assert_eq!(
        metric_sum(&after, BLOBS_STORED),
        metric_sum(&before, BLOBS_STORED)
    );

    let tags = client
        .get(format!("{}/v2/team/app/tags/list", berth.url()))
        .basic_auth("alice", Some(PASSWORD))
        .send()
        .expect("GET tags/list")
        .text()
        .unwrap();
    assert!(!tags.contains("\"bob\""), "bob's tag was stored: {tags}");

    for image in [&team_image, &public_image, &bobs_tag, &bobs_new_repository] {
        alice.run(&["rmi", image]);
    }
}
