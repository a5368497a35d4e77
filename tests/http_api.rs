//! The registry protocol as docker speaks it, over HTTPS against a real `berth serve`: the
//! base endpoint and its Basic challenge, blob uploads (chunked, monolithic, single PUT),
//! blob reads, cross-repository mounts, manifests of all four media types, tags, the
//! ACL-filtered catalog, the ACL itself, the API version header and the metrics counters.

mod common;

use std::time::{Duration, Instant};

use common::{
    blob_data_path, digest_of, files_below, image_manifest, index_manifest, raw_request,
    sample_bytes, upload_entries, users_block, with_query, Berth, RegistryClient, Reply,
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MANIFEST_ACCEPT, OCI_INDEX, OCI_MANIFEST,
};

/// The ACL most tests run under. Rule 1 before rule 2 makes "first match wins" observable:
/// bob may push to team/** but only pull team/locked. Rules grant only, so if a rule matched
/// on (identity, repository, action) instead of (identity, repository), order could never
/// change an outcome and "first match wins" would mean nothing.
const ACL: &str = r#"groups:
  devs: [carol]
acl:
  - {users: [bob], repos: ["team/locked"], actions: [pull]}
  - {users: [alice, bob], repos: ["team/**"], actions: [pull, push]}
  - {groups: [devs], repos: ["team/*"], actions: [pull]}
  - {users: ["*"], repos: ["${user}/**"], actions: [pull, push, delete]}
  - {users: [alice], repos: ["public/**"], actions: [pull, push]}
  - {anonymous: true, repos: ["public/**"], actions: [pull]}
"#;

const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];

// --- Base endpoint and authentication ---

#[test]
fn base_endpoint_challenges_anonymous_and_bad_credentials() {
    let berth = start();

    let anonymous = RegistryClient::new(&berth, None).get("/v2/");
    anonymous.assert_error(401, "UNAUTHORIZED");
    assert_basic_challenge(&anonymous);

    let wrong_password = RegistryClient::with_password(&berth, "alice", "not it").get("/v2/");
    wrong_password.assert_error(401, "UNAUTHORIZED");
    assert_basic_challenge(&wrong_password);

    // An unknown user is told exactly what a known user with a wrong password is told.
    let unknown_user = RegistryClient::new(&berth, Some("mallory")).get("/v2/");
    unknown_user.assert_status(401);
    assert_eq!(unknown_user.body, wrong_password.body, "bodies differ");
    assert_eq!(
        unknown_user.header("WWW-Authenticate"),
        wrong_password.header("WWW-Authenticate")
    );

    // Authorization headers that are not usable Basic credentials.
    let anonymous = RegistryClient::new(&berth, None);
    for header in [
        "Basic !!!not-base64",
        "Basic YWxpY2U=",
        "Bearer abc.def.ghi",
        "Basic",
    ] {
        let reply = anonymous.send("GET", "/v2/", &[("Authorization", header)], None);
        reply.assert_error(401, "UNAUTHORIZED");
        assert_basic_challenge(&reply);
    }

    let alice = RegistryClient::new(&berth, Some("alice")).get("/v2/");
    alice.assert_status(200);
    assert_eq!(alice.json(), serde_json::json!({}));
}

// --- Blob uploads and reads ---

#[test]
fn blob_push_in_two_patches_then_put() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bytes = sample_bytes("two patches", 300_000);
    let (first, second) = bytes.split_at(120_000);
    let digest = digest_of(&bytes);

    let reply = alice.send("POST", "/v2/team/app/blobs/uploads/", &[], None);
    reply.assert_status(202);
    let uuid = reply
        .header("Docker-Upload-UUID")
        .expect("Docker-Upload-UUID");
    assert!(!uuid.is_empty());
    assert_eq!(reply.header("Range").as_deref(), Some("0-0"));
    let location = reply.header("Location").expect("Location");
    assert!(
        location.contains("/v2/team/app/blobs/uploads/"),
        "Location {location}"
    );
    assert_eq!(
        upload_entries(&berth.data_root(), "team/app").len(),
        1,
        "session not stored"
    );

    // First part with a Content-Length, second streamed (chunked), as docker streams layers.
    let headers = [("Content-Type", "application/octet-stream")];
    let reply = alice.send(
        "PATCH",
        &alice.absolute(&location),
        &headers,
        Some(first.to_vec()),
    );
    reply.assert_status(202);
    assert_eq!(
        reply.header("Range"),
        Some(format!("0-{}", first.len() - 1))
    );
    assert_eq!(
        reply.header("Docker-Upload-UUID").as_deref(),
        Some(uuid.as_str())
    );
    let location = reply.header("Location").expect("Location after PATCH");

    let reply = alice.send_chunked("PATCH", &alice.absolute(&location), second.to_vec());
    reply.assert_status(202);
    assert_eq!(
        reply.header("Range"),
        Some(format!("0-{}", bytes.len() - 1))
    );
    let location = reply.header("Location").expect("Location after PATCH");

    let target = with_query(&alice.absolute(&location), &format!("digest={digest}"));
    let reply = alice.send("PUT", &target, &[], None);
    assert_blob_created(&reply, "team/app", &digest);

    assert_blob_served(&alice, "team/app", &digest, &bytes);
    let stored = std::fs::read(berth.data_root().join(blob_data_path(&digest))).unwrap();
    assert!(
        stored == bytes,
        "the blob's data file differs from what was pushed"
    );
    assert!(
        upload_entries(&berth.data_root(), "team/app").is_empty(),
        "upload left behind"
    );
}

#[test]
fn monolithic_post_with_digest_stores_blob() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bytes = sample_bytes("monolithic", 70_000);
    let digest = digest_of(&bytes);

    let target = format!("/v2/team/app/blobs/uploads/?digest={digest}");
    let headers = [("Content-Type", "application/octet-stream")];
    let reply = alice.send("POST", &target, &headers, Some(bytes.clone()));
    assert_blob_created(&reply, "team/app", &digest);

    assert_blob_served(&alice, "team/app", &digest, &bytes);
    assert!(
        upload_entries(&berth.data_root(), "team/app").is_empty(),
        "upload left behind"
    );
}

#[test]
fn put_with_whole_body_stores_blob() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bytes = sample_bytes("single put", 200_000);
    let digest = digest_of(&bytes);

    let location = alice.start_upload("team/app");
    let target = with_query(&location, &format!("digest={digest}"));
    let headers = [("Content-Type", "application/octet-stream")];
    let reply = alice.send("PUT", &target, &headers, Some(bytes.clone()));
    assert_blob_created(&reply, "team/app", &digest);

    assert_blob_served(&alice, "team/app", &digest, &bytes);
    assert!(
        upload_entries(&berth.data_root(), "team/app").is_empty(),
        "upload left behind"
    );
}

#[test]
fn empty_blob_round_trips() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));

    let digest = alice.push_blob("team/app", b"");

    assert_blob_served(&alice, "team/app", &digest, b"");
}

#[test]
fn mount_links_blob_when_caller_may_pull_source() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bytes = sample_bytes("mounted", 10_000);
    let digest = alice.push_blob("team/app", &bytes);

    let target = format!("/v2/alice/copy/blobs/uploads/?mount={digest}&from=team/app");
    let reply = alice.send("POST", &target, &[], None);
    assert_blob_created(&reply, "alice/copy", &digest);

    assert_blob_served(&alice, "alice/copy", &digest, &bytes);
    assert!(
        upload_entries(&berth.data_root(), "alice/copy").is_empty(),
        "upload left behind"
    );

    // A source that lacks the blob gives a plain upload session instead.
    let target = format!("/v2/alice/other/blobs/uploads/?mount={digest}&from=team/empty");
    let reply = alice.send("POST", &target, &[], None);
    assert_upload_started(&reply, "alice/other");
}

#[test]
fn mount_without_pull_on_source_is_plain_upload_and_leaks_nothing() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let dave = RegistryClient::new(&berth, Some("dave"));
    let bytes = sample_bytes("secret layer", 10_000);
    let digest = alice.push_blob("team/app", &bytes);

    let target = format!("/v2/dave/copy/blobs/uploads/?mount={digest}&from=team/app");
    let reply = dave.send("POST", &target, &[], None);
    assert_upload_started(&reply, "dave/copy");
    let location = reply.header("Location").unwrap();

    // Nothing was linked: dave cannot read the blob, and no link exists on disk.
    let reply = dave.get(&format!("/v2/dave/copy/blobs/{digest}"));
    reply.assert_error(404, "BLOB_UNKNOWN");
    let hex = digest.strip_prefix("sha256:").unwrap();
    let link = format!("docker/registry/v2/repositories/dave/copy/_layers/sha256/{hex}/link");
    assert!(
        !berth.data_root().join(link).exists(),
        "the mount linked the blob anyway"
    );

    // Answering the same for a digest team/app lacks: no oracle for what exists there.
    let absent = digest_of(b"not in team/app");
    let target = format!("/v2/dave/probe/blobs/uploads/?mount={absent}&from=team/app");
    assert_upload_started(&dave.send("POST", &target, &[], None), "dave/probe");

    // The session is an ordinary upload: dave can complete it with bytes he has.
    let target = with_query(&dave.absolute(&location), &format!("digest={digest}"));
    let headers = [("Content-Type", "application/octet-stream")];
    let reply = dave.send("PUT", &target, &headers, Some(bytes.clone()));
    assert_blob_created(&reply, "dave/copy", &digest);
}

// --- Manifests ---

#[test]
fn docker_v2_manifest_by_tag_and_digest() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = image_with_blobs(&alice, "team/app", DOCKER_MANIFEST);

    assert_manifest_round_trip(&alice, "team/app", "v1", DOCKER_MANIFEST, &manifest);
}

#[test]
fn oci_manifest_by_tag_and_digest() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = image_with_blobs(&alice, "team/app", OCI_MANIFEST);

    assert_manifest_round_trip(&alice, "team/app", "v1", OCI_MANIFEST, &manifest);
}

#[test]
fn docker_manifest_list_by_tag_and_digest() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let list = index_with_child(&alice, "team/app", DOCKER_MANIFEST_LIST, DOCKER_MANIFEST);

    assert_manifest_round_trip(&alice, "team/app", "v1", DOCKER_MANIFEST_LIST, &list);
}

#[test]
fn oci_index_by_tag_and_digest() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let index = index_with_child(&alice, "team/app", OCI_INDEX, OCI_MANIFEST);

    assert_manifest_round_trip(&alice, "team/app", "v1", OCI_INDEX, &index);
}

#[test]
fn tags_list_names_every_tag_and_no_digest() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = alice.push_image("team/app", "v1", OCI_MANIFEST);
    for tag in ["latest", "v2"] {
        alice
            .put_manifest("team/app", tag, OCI_MANIFEST, &manifest)
            .assert_status(201);
    }
    // Pushed by digest only: a manifest, not a tag.
    let untagged = image_with_blobs(&alice, "team/app", DOCKER_MANIFEST);
    let reply = alice.put_manifest(
        "team/app",
        &digest_of(&untagged),
        DOCKER_MANIFEST,
        &untagged,
    );
    reply.assert_status(201);

    let reply = alice.get("/v2/team/app/tags/list");
    reply.assert_status(200);
    let body = reply.json();
    assert_eq!(body["name"], "team/app", "{body}");
    let mut tags: Vec<String> = serde_json::from_value(body["tags"].clone()).expect("tags array");
    tags.sort();
    assert_eq!(tags, ["latest", "v1", "v2"]);
}

// --- Catalog ---

#[test]
fn catalog_lists_only_repositories_the_caller_may_pull() {
    let acl = r#"groups:
  devs: [bob]
acl:
  - {users: [alice], repos: ["**"], actions: [pull, push]}
  - {groups: [devs], repos: ["team/*"], actions: [pull]}
  - {users: ["*"], repos: ["${user}/**"], actions: [pull, push]}
"#;
    let berth = Berth::start(&format!("{}{acl}", users_block(&USERS)));
    let alice = RegistryClient::new(&berth, Some("alice"));
    let everything = [
        "bob/stuff",
        "dave/app",
        "other/thing",
        "team/app",
        "team/deep/x",
    ];
    for repository in everything {
        alice.push_image(repository, "v1", OCI_MANIFEST);
    }

    assert_eq!(catalog(&berth, "alice"), everything);
    assert_eq!(catalog(&berth, "bob"), ["bob/stuff", "team/app"]);
    assert_eq!(catalog(&berth, "dave"), ["dave/app"]);
    assert_eq!(catalog(&berth, "carol"), Vec::<String>::new());
}

// --- Access control ---

/// One row per (caller, action, repository), probing pull with a manifest GET and push with an
/// upload POST. Allowed pulls find nothing (404); allowed pushes open a session (202).
#[test]
fn acl_first_match_default_deny_namespaces_groups_anonymous() {
    use Expect::*;
    let rows: &[(Option<&str>, &str, &str, Expect)] = &[
        (Some("alice"), "push", "team/app", Allow),
        (Some("alice"), "pull", "team/deep/x", Allow),
        (Some("bob"), "push", "team/app", Allow),
        // First match wins: rule 1 (pull only) shadows rule 2 for team/locked.
        (Some("bob"), "push", "team/locked", Denied),
        (Some("bob"), "pull", "team/locked", Allow),
        // Group rule: `*` is exactly one segment, and it grants pull only.
        (Some("carol"), "pull", "team/app", Allow),
        (Some("carol"), "push", "team/app", Denied),
        (Some("carol"), "pull", "team/a/b", Denied),
        // Personal namespace: `${user}/**` for every signed-in user, nobody else's.
        (Some("dave"), "push", "dave/app", Allow),
        (Some("dave"), "push", "dave/a/b", Allow),
        (Some("carol"), "push", "carol/x", Allow),
        (Some("dave"), "pull", "alice/app", Denied),
        (Some("alice"), "pull", "dave/app", Denied),
        // Default deny.
        (Some("dave"), "pull", "team/app", Denied),
        (Some("dave"), "push", "public/x", Denied),
        (Some("dave"), "pull", "elsewhere/x", Denied),
        (Some("alice"), "push", "public/x", Allow),
        // Anonymous: pull of public/** only; everything else is a challenge.
        (None, "pull", "public/x", Allow),
        (None, "pull", "public/a/b", Allow),
        (None, "push", "public/x", Challenged),
        (None, "pull", "team/app", Challenged),
        (None, "pull", "dave/app", Challenged),
    ];

    let berth = start();
    let mut failures = Vec::new();
    for (user, action, repository, expect) in rows {
        let client = RegistryClient::new(&berth, *user);
        let reply = match *action {
            "pull" => client.get(&format!("/v2/{repository}/manifests/latest")),
            _ => client.send(
                "POST",
                &format!("/v2/{repository}/blobs/uploads/"),
                &[],
                None,
            ),
        };
        let (status, code) = match (expect, *action) {
            (Allow, "pull") => (404, None),
            (Allow, _) => (202, None),
            (Denied, _) => (403, Some("DENIED")),
            (Challenged, _) => (401, Some("UNAUTHORIZED")),
        };
        let challenged = reply
            .header("WWW-Authenticate")
            .is_some_and(|c| c.starts_with("Basic realm="));
        let ok = reply.status == status
            && (code.is_none() || reply.error_code().as_deref() == code)
            && (*expect != Challenged || challenged);
        if !ok {
            failures.push(format!(
                "{user:?} {action} {repository}: want {expect:?}, got {}",
                reply.describe()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "ACL rows failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn anonymous_pull_of_public_works_and_anonymous_push_is_challenged() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let anonymous = RegistryClient::new(&berth, None);
    let manifest = alice.push_image("public/base", "v1", OCI_MANIFEST);
    let layer = serde_json::from_slice::<serde_json::Value>(&manifest).unwrap()["layers"][0]
        ["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // Pull as docker does without credentials: manifest, then blobs, with no Authorization.
    let reply = anonymous.send(
        "GET",
        "/v2/public/base/manifests/v1",
        &[("Accept", MANIFEST_ACCEPT)],
        None,
    );
    reply.assert_status(200);
    assert!(reply.body == manifest, "anonymous pull got other bytes");
    anonymous
        .get(&format!("/v2/public/base/blobs/{layer}"))
        .assert_status(200);
    anonymous
        .get("/v2/public/base/tags/list")
        .assert_status(200);

    // Pushes are challenged, whatever the route, and change nothing.
    let before = files_below(&berth.data_root());
    let replies = [
        anonymous.send("POST", "/v2/public/base/blobs/uploads/", &[], None),
        anonymous.send(
            "POST",
            &format!("/v2/public/base/blobs/uploads/?digest={}", digest_of(b"x")),
            &[("Content-Type", "application/octet-stream")],
            Some(b"x".to_vec()),
        ),
        anonymous.put_manifest("public/base", "v2", OCI_MANIFEST, &manifest),
    ];
    for reply in replies {
        reply.assert_error(401, "UNAUTHORIZED");
        assert_basic_challenge(&reply);
    }
    assert_eq!(
        files_below(&berth.data_root()),
        before,
        "a refused push wrote files"
    );
    anonymous
        .get("/v2/public/base/manifests/v2")
        .assert_status(404);
}

#[test]
fn denied_caller_gets_403_and_reaches_nothing() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let dave = RegistryClient::new(&berth, Some("dave"));
    let manifest = alice.push_image("team/app", "v1", OCI_MANIFEST);
    let digest = digest_of(&manifest);
    let blob = alice.push_blob("team/app", b"a blob");
    let before = files_below(&berth.data_root());

    let octets = [("Content-Type", "application/octet-stream")];
    let replies = [
        dave.send("POST", "/v2/team/app/blobs/uploads/", &[], None),
        dave.send(
            "POST",
            &format!("/v2/team/app/blobs/uploads/?digest={}", digest_of(b"x")),
            &octets,
            Some(b"x".to_vec()),
        ),
        dave.put_manifest("team/app", "v2", OCI_MANIFEST, &manifest),
        dave.get("/v2/team/app/manifests/v1"),
        dave.get(&format!("/v2/team/app/manifests/{digest}")),
        dave.get(&format!("/v2/team/app/blobs/{blob}")),
        dave.get("/v2/team/app/tags/list"),
        // Same answer whether or not the thing exists.
        dave.get("/v2/team/app/manifests/nothing"),
        dave.get("/v2/team/nothing/manifests/v1"),
    ];
    for reply in replies {
        reply.assert_error(403, "DENIED");
    }
    assert_eq!(
        files_below(&berth.data_root()),
        before,
        "a denied request wrote files"
    );
}

// --- Headers and metrics ---

#[test]
fn every_response_carries_api_version_header() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let anonymous = RegistryClient::new(&berth, None);
    let dave = RegistryClient::new(&berth, Some("dave"));
    let manifest = alice.push_image("team/app", "v1", OCI_MANIFEST);
    let blob = alice.push_blob("team/app", b"blob");
    let location = alice.start_upload("team/app");

    let replies: Vec<(&str, Reply)> = vec![
        ("base 200", alice.get("/v2/")),
        ("base 401", anonymous.get("/v2/")),
        (
            "base bad password",
            RegistryClient::with_password(&berth, "alice", "x").get("/v2/"),
        ),
        ("manifest GET", alice.get("/v2/team/app/manifests/v1")),
        ("manifest HEAD", alice.head("/v2/team/app/manifests/v1")),
        (
            "manifest PUT",
            alice.put_manifest("team/app", "v2", OCI_MANIFEST, &manifest),
        ),
        ("manifest 404", alice.get("/v2/team/app/manifests/nope")),
        (
            "manifest invalid",
            alice.put_manifest("team/app", "x", OCI_MANIFEST, b"{"),
        ),
        ("blob GET", alice.get(&format!("/v2/team/app/blobs/{blob}"))),
        (
            "blob HEAD",
            alice.head(&format!("/v2/team/app/blobs/{blob}")),
        ),
        (
            "blob 404",
            alice.get(&format!("/v2/team/app/blobs/{}", digest_of(b"?"))),
        ),
        (
            "upload POST",
            alice.send("POST", "/v2/team/app/blobs/uploads/", &[], None),
        ),
        (
            "upload PATCH",
            alice.send("PATCH", &location, &[], Some(b"abc".to_vec())),
        ),
        (
            "upload 404",
            alice.send("PATCH", "/v2/team/app/blobs/uploads/nope", &[], None),
        ),
        ("tags", alice.get("/v2/team/app/tags/list")),
        ("catalog", alice.get("/v2/_catalog")),
        ("denied", dave.get("/v2/team/app/manifests/v1")),
        (
            "anonymous push",
            anonymous.send("POST", "/v2/public/x/blobs/uploads/", &[], None),
        ),
        (
            "name invalid",
            raw_request(&berth, Some("alice"), "GET", "/v2/a/../b/tags/list", None),
        ),
        ("unknown route", alice.get("/v2/team/app/nonsense")),
    ];
    let missing: Vec<String> = replies
        .iter()
        .filter(|(_, r)| {
            r.header("Docker-Distribution-API-Version").as_deref() != Some("registry/2.0")
        })
        .map(|(what, r)| format!("{what}: {}", r.describe()))
        .collect();
    assert!(
        missing.is_empty(),
        "responses without the header:\n{}",
        missing.join("\n")
    );
}

#[test]
fn metrics_counters_move() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let dave = RegistryClient::new(&berth, Some("dave"));
    let base_ok = r#"berth_http_requests_total{method="GET",route="base",status="200"}"#;
    let base_401 = r#"berth_http_requests_total{method="GET",route="base",status="401"}"#;
    let upload_put = r#"berth_http_requests_total{method="PUT",route="upload",status="201"}"#;
    let auth_ok = [
        r#"berth_auth_attempts_total{method="basic",outcome="success"}"#,
        r#"berth_auth_attempts_total{method="basic",outcome="cached"}"#,
    ];
    let auth_failed = r#"berth_auth_attempts_total{method="basic",outcome="failure"}"#;
    let push_denied = r#"berth_acl_denials_total{action="push"}"#;
    let pull_denied = r#"berth_acl_denials_total{action="pull"}"#;
    let blobs = "berth_registry_blobs_stored_total";
    let manifests = "berth_registry_manifests_stored_total";
    let received = "berth_http_received_bytes_total";
    let sent = "berth_http_sent_bytes_total";

    let sum = |selectors: &[&str]| selectors.iter().map(|s| berth.metric(s)).sum::<f64>();
    let value = |selector: &str| berth.metric(selector);
    let (base_ok_0, base_401_0, upload_put_0) =
        (value(base_ok), value(base_401), value(upload_put));
    let (auth_ok_0, auth_failed_0) = (sum(&auth_ok), value(auth_failed));
    let (push_denied_0, pull_denied_0) = (value(push_denied), value(pull_denied));
    let (blobs_0, manifests_0) = (value(blobs), value(manifests));
    let (received_0, sent_0) = (value(received), value(sent));

    alice.get("/v2/").assert_status(200);
    RegistryClient::with_password(&berth, "alice", "wrong")
        .get("/v2/")
        .assert_status(401);
    dave.send("POST", "/v2/team/app/blobs/uploads/", &[], None)
        .assert_status(403);
    dave.get("/v2/team/app/manifests/v1").assert_status(403);
    let manifest = alice.push_image("team/app", "v1", OCI_MANIFEST);
    let layer = sample_bytes("metrics layer", 50_000);
    let digest = alice.push_blob("team/app", &layer);
    alice
        .get(&format!("/v2/team/app/blobs/{digest}"))
        .assert_status(200);
    alice.get("/v2/team/app/manifests/v1").assert_status(200);
    let pushed = (layer.len() + manifest.len()) as f64;

    let stuck = std::cell::RefCell::new(Vec::new());
    let moved = |what: &str, current: &dyn Fn() -> f64, at_least: f64| {
        let value = wait_until(current, at_least) + 0.0; // an empty sum is -0.0
        if value < at_least {
            stuck
                .borrow_mut()
                .push(format!("{what} is {value}, want >= {at_least}"));
        }
    };
    moved(base_ok, &|| value(base_ok), base_ok_0 + 1.0);
    moved(base_401, &|| value(base_401), base_401_0 + 1.0);
    moved(upload_put, &|| value(upload_put), upload_put_0 + 3.0);
    moved("auth success + cached", &|| sum(&auth_ok), auth_ok_0 + 1.0);
    moved(auth_failed, &|| value(auth_failed), auth_failed_0 + 1.0);
    moved(push_denied, &|| value(push_denied), push_denied_0 + 1.0);
    moved(pull_denied, &|| value(pull_denied), pull_denied_0 + 1.0);
    moved(blobs, &|| value(blobs), blobs_0 + 3.0);
    moved(manifests, &|| value(manifests), manifests_0 + 1.0);
    moved(received, &|| value(received), received_0 + pushed);
    moved(sent, &|| value(sent), sent_0 + pushed);

    let stuck = stuck.into_inner();
    assert!(
        stuck.is_empty(),
        "{}\n\n{}",
        stuck.join("\n"),
        berth.metrics()
    );
}

// --- Helpers ---

#[derive(Debug, PartialEq)]
enum Expect {
    Allow,
    /// Signed in but not allowed: 403 DENIED.
    Denied,
    /// Anonymous and not allowed: 401 with a Basic challenge.
    Challenged,
}

fn start() -> Berth {
    Berth::start(&format!("{}{ACL}", users_block(&USERS)))
}

fn assert_basic_challenge(reply: &Reply) {
    let challenge = reply.header("WWW-Authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Basic realm="),
        "challenge {challenge:?}: {}",
        reply.describe()
    );
}

/// 201 with `Location: .../v2/<repository>/blobs/<digest>` and `Docker-Content-Digest`.
fn assert_blob_created(reply: &Reply, repository: &str, digest: &str) {
    reply.assert_status(201);
    let location = reply.header("Location").expect("Location");
    let path = format!("/v2/{repository}/blobs/{digest}");
    assert!(
        location.ends_with(&path),
        "Location {location}, want {path}"
    );
    assert_eq!(
        reply.header("Docker-Content-Digest").as_deref(),
        Some(digest)
    );
}

/// 202 with an upload `Location` in `repository`, `Docker-Upload-UUID` and `Range: 0-0`.
fn assert_upload_started(reply: &Reply, repository: &str) {
    reply.assert_status(202);
    let location = reply.header("Location").expect("Location");
    let prefix = format!("/v2/{repository}/blobs/uploads/");
    assert!(
        location.contains(&prefix),
        "Location {location}, want {prefix}<uuid>"
    );
    assert!(
        reply.header("Docker-Upload-UUID").is_some(),
        "{}",
        reply.describe()
    );
    assert_eq!(reply.header("Range").as_deref(), Some("0-0"));
}

/// HEAD and GET both answer with the length and digest; GET returns exactly `bytes`.
fn assert_blob_served(client: &RegistryClient, repository: &str, digest: &str, bytes: &[u8]) {
    let path = format!("/v2/{repository}/blobs/{digest}");
    let length = bytes.len().to_string();

    let head = client.head(&path);
    head.assert_status(200);
    assert_eq!(
        head.header("Content-Length").as_deref(),
        Some(length.as_str()),
        "HEAD {path}"
    );
    assert_eq!(
        head.header("Docker-Content-Digest").as_deref(),
        Some(digest),
        "HEAD {path}"
    );
    assert!(head.body.is_empty(), "HEAD {path} has a body");

    let get = client.get(&path);
    get.assert_status(200);
    assert_eq!(
        get.header("Content-Length").as_deref(),
        Some(length.as_str()),
        "GET {path}"
    );
    assert_eq!(
        get.header("Docker-Content-Digest").as_deref(),
        Some(digest),
        "GET {path}"
    );
    assert!(
        get.body == bytes,
        "GET {path}: {} bytes differ from the pushed ones",
        get.body.len()
    );
}

/// PUT by tag answers 201 with the digest; GET and HEAD by tag and by digest answer with the
/// exact bytes, their media type, digest and length; PUT by digest is accepted as well.
fn assert_manifest_round_trip(
    client: &RegistryClient,
    repository: &str,
    tag: &str,
    media_type: &str,
    bytes: &[u8],
) {
    let digest = digest_of(bytes);
    let reply = client.put_manifest(repository, tag, media_type, bytes);
    reply.assert_status(201);
    assert_eq!(
        reply.header("Docker-Content-Digest").as_deref(),
        Some(digest.as_str())
    );
    let location = reply.header("Location").expect("manifest Location");
    let path = format!("/v2/{repository}/manifests/{digest}");
    assert!(
        location.ends_with(&path),
        "Location {location}, want {path}"
    );

    let length = bytes.len().to_string();
    for reference in [tag, digest.as_str()] {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let accept = [("Accept", MANIFEST_ACCEPT)];
        for method in ["GET", "HEAD"] {
            let reply = client.send(method, &path, &accept, None);
            let what = format!("{method} {path}");
            reply.assert_status(200);
            assert_eq!(
                reply.header("Content-Type").as_deref(),
                Some(media_type),
                "{what}"
            );
            assert_eq!(
                reply.header("Docker-Content-Digest"),
                Some(digest.clone()),
                "{what}"
            );
            assert_eq!(
                reply.header("Content-Length"),
                Some(length.clone()),
                "{what}"
            );
            if method == "GET" {
                assert!(
                    reply.body == bytes,
                    "{what}: the bytes differ from the pushed ones"
                );
            } else {
                assert!(reply.body.is_empty(), "{what} has a body");
            }
        }
    }

    let reply = client.put_manifest(repository, &digest, media_type, bytes);
    reply.assert_status(201);
    assert_eq!(reply.header("Docker-Content-Digest"), Some(digest));
}

/// Pushes a config and a layer to `repository` and returns a manifest naming them, unpushed.
fn image_with_blobs(client: &RegistryClient, repository: &str, media_type: &str) -> Vec<u8> {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}"#;
    let layer = sample_bytes(&format!("{repository} {media_type}"), 4096);
    let config_digest = client.push_blob(repository, config);
    let layer = (client.push_blob(repository, &layer), layer.len());
    image_manifest(media_type, (config_digest.as_str(), config.len()), &[layer])
}

/// Pushes one image manifest by digest (as buildx pushes an index's children) and returns an
/// index of `index_type`, unpushed, that names it.
fn index_with_child(
    client: &RegistryClient,
    repository: &str,
    index_type: &str,
    child_type: &str,
) -> Vec<u8> {
    let child = image_with_blobs(client, repository, child_type);
    let child_digest = digest_of(&child);
    let reply = client.put_manifest(repository, &child_digest, child_type, &child);
    reply.assert_status(201);
    index_manifest(index_type, &[(child_type, child_digest, child.len())])
}

/// The catalog as `user` sees it, sorted.
fn catalog(berth: &Berth, user: &str) -> Vec<String> {
    let reply = RegistryClient::new(berth, Some(user)).get("/v2/_catalog");
    reply.assert_status(200);
    let body = reply.json();
    let mut names: Vec<String> =
        serde_json::from_value(body["repositories"].clone()).expect("repositories array");
    names.sort();
    names
}

/// Polls `current` for up to ten seconds until it reaches `at_least`: the server may record
/// a request's metrics just after the client has read the response.
fn wait_until(current: &dyn Fn() -> f64, at_least: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = current();
        if value >= at_least || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn made_up_methods_share_one_metric_label() {
    let berth = Berth::start(&format!("{}acl: []\n", users_block(&["alice"])));
    let client = berth.client();
    for method in ["FOOA", "FOOB", "FOOC"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let _ = client
            .request(method, format!("{}/v2/", berth.url()))
            .send();
    }
    let metrics = berth.metrics();
    assert!(!metrics.contains("FOO"), "a made-up method became a label");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
}
