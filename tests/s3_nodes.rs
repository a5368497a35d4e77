//! Two Berth nodes on different ports sharing one bucket of a real Garage, as behind a load
//! balancer: what one node stores, the other serves; an upload started on one is finished
//! on the other; a delete on one is seen on the other; and the same layer pushed through
//! both at once is stored once.
//!
//! Needs the Garage that `tests/run-all.sh` installs, and its dockerd for the docker test.

mod common;

use common::docker::{log_tail, write_image_context, Docker, DockerTrust, HELLO_LINE};
use common::s3::{Bucket, Garage};
use common::{digest_of, sample_bytes, users_block, Berth, RegistryClient};

/// alice may do everything in `team/**`.
fn config() -> String {
    format!(
        "{}acl:\n  - {{users: [alice], repos: [\"team/**\"], actions: [pull, push, delete]}}\n",
        users_block(&["alice"])
    )
}

/// Two nodes on one fresh bucket, with deletion on.
fn two_nodes() -> (Bucket, Berth, Berth) {
    let bucket = Garage::shared().bucket();
    let delete = ", delete: {enabled: true}";
    let a = Berth::start_on_bucket(&bucket, "/shared", "", delete, &config());
    let b = Berth::start_on_bucket(&bucket, "/shared", "", delete, &config());
    (bucket, a, b)
}

/// The path and query of an absolute URL, to send to the other node.
fn path_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme[after_scheme.find('/').unwrap_or(after_scheme.len())..].to_string()
}

#[test]
fn docker_pushes_through_one_node_and_pulls_through_the_other() {
    let docker = Docker::new();
    let (_bucket, a, b) = two_nodes();
    let _trust_a = DockerTrust::install(&a);
    let _trust_b = DockerTrust::install(&b);

    let context = tempfile::tempdir().unwrap();
    write_image_context(context.path(), 8 * 1024 * 1024);
    let pushed_image = format!("{}/team/app:v1", a.host());
    docker.build(context.path(), &pushed_image);
    assert!(docker.login(&a.host(), "alice", common::PASSWORD).success);
    let pushed = docker.ok(&["push", &pushed_image], Some(&a)).digest();
    docker.ok(&["rmi", &pushed_image], None);

    let pulled_image = format!("{}/team/app:v1", b.host());
    assert!(
        docker.login(&b.host(), "alice", common::PASSWORD).success,
        "{}",
        log_tail(&b)
    );
    let pull = docker.ok(&["pull", &pulled_image], Some(&b));
    assert_eq!(pull.digest(), pushed, "node B served another manifest");
    let run = docker.ok(
        &["run", "--rm", "--network", "none", &pulled_image],
        Some(&b),
    );
    assert_eq!(run.stdout.trim(), HELLO_LINE);
    docker.run(&["rmi", &pulled_image]);
}

#[test]
fn an_upload_started_on_one_node_finishes_on_the_other() {
    let (_bucket, a, b) = two_nodes();
    let (on_a, on_b) = (
        RegistryClient::new(&a, Some("alice")),
        RegistryClient::new(&b, Some("alice")),
    );
    // Chunks of uneven sizes, alternating between the nodes; the middle one is smaller
    // than an S3 part, the last larger.
    let content = sample_bytes("cross-node", 12 * 1024 * 1024 + 77);
    let cuts = [0, 3 * 1024 * 1024, 3 * 1024 * 1024 + 100, content.len()];
    let mut location = path_of(&on_a.start_upload("team/chunked"));
    for (index, window) in cuts.windows(2).enumerate() {
        let node = if index % 2 == 0 { &on_b } else { &on_a };
        let range = format!("{}-{}", window[0], window[1] - 1);
        let reply = node.send(
            "PATCH",
            &location,
            &[
                ("Content-Range", range.as_str()),
                ("Content-Type", "application/octet-stream"),
            ],
            Some(content[window[0]..window[1]].to_vec()),
        );
        reply.assert_status(202);
        assert_eq!(
            reply.header("Range").unwrap(),
            format!("0-{}", window[1] - 1)
        );
        location = path_of(&reply.header("Location").unwrap());
    }

    // Either node reports the session's size.
    let status = on_a.get(&location);
    status.assert_status(204);
    assert_eq!(
        status.header("Range").unwrap(),
        format!("0-{}", content.len() - 1)
    );

    let digest = digest_of(&content);
    let finish = format!("{location}?digest={digest}");
    on_b.send("PUT", &finish, &[], None).assert_status(201);
    let fetched = on_a.get(&format!("/v2/team/chunked/blobs/{digest}"));
    fetched.assert_status(200);
    assert!(fetched.body == content, "node A served other bytes");
}

#[test]
fn a_delete_on_one_node_is_seen_on_the_other() {
    let (_bucket, a, b) = two_nodes();
    let (on_a, on_b) = (
        RegistryClient::new(&a, Some("alice")),
        RegistryClient::new(&b, Some("alice")),
    );
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    let manifest = on_a.push_image("team/gone", "v1", media_type);
    let digest = digest_of(&manifest);
    on_b.get("/v2/team/gone/manifests/v1").assert_status(200);

    on_a.send(
        "DELETE",
        &format!("/v2/team/gone/manifests/{digest}"),
        &[],
        None,
    )
    .assert_status(202);
    on_b.get("/v2/team/gone/manifests/v1")
        .assert_error(404, "MANIFEST_UNKNOWN");
    on_b.get(&format!("/v2/team/gone/manifests/{digest}"))
        .assert_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn the_same_layer_pushed_through_both_nodes_at_once_is_stored_once() {
    let (bucket, a, b) = two_nodes();
    let layer = sample_bytes("raced layer", 20 * 1024 * 1024);
    let digest = digest_of(&layer);

    std::thread::scope(|scope| {
        let pushes: Vec<_> = [&a, &b]
            .into_iter()
            .map(|node| {
                let layer = &layer;
                let digest = &digest;
                scope.spawn(move || {
                    let client = RegistryClient::new(node, Some("alice"));
                    let location = client.start_upload("team/raced");
                    let reply = client.send_chunked("PATCH", &location, layer.clone());
                    reply.assert_status(202);
                    let location = reply.header("Location").unwrap();
                    let finish = format!("{location}?digest={digest}");
                    client.send("PUT", &finish, &[], None).assert_status(201);
                })
            })
            .collect();
        for push in pushes {
            push.join().expect("push thread");
        }
    });

    // One blob object, no session left behind, and both nodes serve it.
    let storage = bucket.storage("/shared");
    let hex = digest.strip_prefix("sha256:").unwrap();
    let blob_folder = format!("docker/registry/v2/blobs/sha256/{}/{hex}", &hex[..2]);
    use berth::storage::Storage;
    assert_eq!(
        storage.size(&format!("{blob_folder}/data")).unwrap(),
        Some(layer.len() as u64)
    );
    let uploads = "docker/registry/v2/repositories/team/raced/_uploads";
    assert!(
        storage.list(uploads).unwrap().is_empty(),
        "upload sessions left: {:?}",
        storage.list(uploads).unwrap()
    );
    for node in [&a, &b] {
        let client = RegistryClient::new(node, Some("alice"));
        let reply = client.head(&format!("/v2/team/raced/blobs/{digest}"));
        reply.assert_status(200);
    }
}

#[test]
fn blob_pulls_redirect_to_a_presigned_url_when_asked() {
    let bucket = Garage::shared().bucket();
    let redirect = ", redirect: {enabled: true, expiry: 5m}";
    let berth = Berth::start_on_bucket(&bucket, "/redirect", redirect, "", &config());
    let alice = RegistryClient::new(&berth, Some("alice"));
    let blob = sample_bytes("redirected", 100_000);
    let digest = alice.push_blob("team/app", &blob);
    let path = format!("/v2/team/app/blobs/{digest}");

    // After the access check, a GET is sent to the store, whose URL works on its own.
    let reply = alice.get(&path);
    reply.assert_status(307);
    let url = reply.header("Location").expect("Location");
    assert!(url.starts_with(&bucket.endpoint), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let fetched = reqwest::blocking::get(&url).expect("GET presigned URL");
    assert_eq!(fetched.status(), 200);
    assert!(
        fetched.bytes().unwrap() == blob,
        "the store served other bytes"
    );

    // HEAD is answered by Berth; strangers get no URL.
    alice.head(&path).assert_status(200);
    RegistryClient::new(&berth, None)
        .get(&path)
        .assert_status(401);
}
