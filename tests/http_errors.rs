//! Bad input over HTTP, one test per case: each gets the distribution spec's status and error
//! code, and leaves nothing behind in the data root (or anywhere else) beyond what earlier,
//! successful steps of the same test legitimately stored. Broken config files stop
//! `berth serve` with a message that names the file, the line and the problem.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    blob_data_path, digest_of, files_below, hash_password, image_manifest, index_manifest,
    raw_request, sample_bytes, upload_entries, users_block, with_query, Berth, RegistryClient,
    OCI_INDEX, OCI_MANIFEST,
};

/// alice may do anything anywhere, so every rejection below is about the input, not the ACL.
const ACL: &str = r#"acl:
  - {users: [alice], repos: ["**"], actions: [pull, push, delete]}
"#;

const FOUR_MIB: usize = 4 * 1024 * 1024;

// --- Repository names and path tricks ---

/// Each name is refused with NAME_INVALID on every route, and nothing lands on disk.
fn assert_names_invalid(names: &[&str]) {
    let berth = start();
    let before = files_below(berth.dir.path());
    for name in names {
        assert_name_invalid_everywhere(&berth, name);
    }
    assert_tempdir_unchanged(&berth, &before);
}

#[test]
fn dot_dot_segments_are_name_invalid() {
    assert_names_invalid(&[
        "a/../b",
        "../a",
        "a/b/..",
        "..",
        "a/./b",
        "team/../../../../../../etc",
    ]);
}

#[test]
fn percent_encoded_dot_dot_is_name_invalid() {
    assert_names_invalid(&[
        "a/%2e%2e/b",
        "%2e%2e/a",
        "a/%2E%2E/b",
        "a/.%2e/b",
        "%2e%2e/%2e%2e/%2e%2e/etc",
    ]);
}

#[test]
fn encoded_slash_in_name_is_name_invalid() {
    assert_names_invalid(&[
        "a%2Fb",
        "a%2fb",
        "team/a%2F..%2F..%2Fb",
        "%2Fetc/x",
        "a%5Cb",
    ]);
}

#[test]
fn empty_segment_is_name_invalid() {
    // `/v2//a/...`, `/v2/a//b/...` and `/v2/a/b//manifests/...`.
    assert_names_invalid(&["/a", "a//b", "a/b/"]);
}

#[test]
fn uppercase_name_is_name_invalid() {
    assert_names_invalid(&["Team/app", "team/App", "TEAM"]);
}

#[test]
fn name_over_255_chars_is_name_invalid() {
    let berth = start();
    let before = files_below(berth.dir.path());

    // 256 characters in two segments, and 300 in one.
    let two_segments = format!("{}/{}", "a".repeat(128), "b".repeat(127));
    assert_eq!(two_segments.len(), 256);
    assert_name_invalid_everywhere(&berth, &two_segments);
    assert_name_invalid_everywhere(&berth, &"c".repeat(300));
    assert_tempdir_unchanged(&berth, &before);

    // Boundary: 255 characters is a valid name, so the answer is about the manifest.
    let longest = format!("{}/{}", "a".repeat(127), "b".repeat(127));
    assert_eq!(longest.len(), 255);
    let reply = raw_request(&berth, Some("alice"), "GET", &manifest_path(&longest), None);
    reply.assert_error(404, "MANIFEST_UNKNOWN");
}

/// Writes through `..` (literal and percent-encoded) that would land outside the data root if
/// the name reached the filesystem: every one is refused, and no file appears in the temp dir
/// or in any directory above the repositories folder.
#[test]
fn path_traversal_writes_nothing_outside_data_root() {
    let berth = start();
    let marker = format!("berthescape{}", berth.port);
    let repositories = berth
        .data_root()
        .join("docker/registry/v2/repositories/x/y");
    let etc_x_before = existing_etc_x(&repositories);
    let before = files_below(berth.dir.path());

    // The brief's example, verbatim.
    let (manifest, _) = manifest_naming_unpushed_blobs();
    let reply = raw_request(
        &berth,
        Some("alice"),
        "PUT",
        "/v2/../../etc/x/manifests/latest",
        Some((OCI_MANIFEST, &manifest)),
    );
    reply.assert_error(400, "NAME_INVALID");

    // Enough `..` to climb from the repositories folder to `/` and beyond.
    for ups in 1..=12 {
        for up in ["..", "%2e%2e", "%2E%2E"] {
            let name = format!("{}{marker}", format!("{up}/").repeat(ups));
            assert_writes_refused(&berth, &name, &manifest);
        }
    }

    assert_tempdir_unchanged(&berth, &before);
    for ancestor in repositories.ancestors() {
        let escaped = ancestor.join(&marker);
        assert!(!escaped.exists(), "{} was created", escaped.display());
    }
    assert_eq!(
        existing_etc_x(&repositories),
        etc_x_before,
        "an etc/x appeared"
    );
}

// --- Manifests ---

#[test]
fn malformed_manifest_json_is_manifest_invalid() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let before = files_below(&berth.data_root());

    let bodies: [&[u8]; 4] = [
        br#"{"schemaVersion": 2, "config": "#,
        b"this is not json",
        b"",
        // Well-formed JSON of the wrong shape: `layers` must be an array.
        br#"{"schemaVersion": 2, "config": {}, "layers": "nope"}"#,
    ];
    for body in bodies {
        let reply = alice.put_manifest("team/app", "latest", OCI_MANIFEST, body);
        reply.assert_error(400, "MANIFEST_INVALID");
    }

    assert_eq!(
        files_below(&berth.data_root()),
        before,
        "a rejected manifest left files"
    );
    let reply = alice.get("/v2/team/app/manifests/latest");
    assert_eq!(reply.status, 404, "{}", reply.describe());
}

#[test]
fn manifest_over_4_mib_is_manifest_invalid() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let config = alice.push_blob("team/app", b"{}");
    let layer = sample_bytes("layer", 1000);
    let layer = (alice.push_blob("team/app", &layer), layer.len());
    let before = files_below(&berth.data_root());

    let too_big = padded_manifest(&config, &layer, FOUR_MIB + 1);
    let reply = alice.put_manifest("team/app", "big", OCI_MANIFEST, &too_big);
    reply.assert_error(400, "MANIFEST_INVALID");
    assert_eq!(
        files_below(&berth.data_root()),
        before,
        "the oversized manifest left files"
    );
    assert_eq!(alice.get("/v2/team/app/manifests/big").status, 404);

    // Boundary: exactly 4 MiB is within the limit.
    let at_limit = padded_manifest(&config, &layer, FOUR_MIB);
    let reply = alice.put_manifest("team/app", "big", OCI_MANIFEST, &at_limit);
    reply.assert_status(201);
}

#[test]
fn manifest_naming_missing_blobs_is_manifest_blob_unknown() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));

    // Blobs no repository has.
    let before = files_below(&berth.data_root());
    let (manifest, _) = manifest_naming_unpushed_blobs();
    let reply = alice.put_manifest("team/app", "latest", OCI_MANIFEST, &manifest);
    reply.assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(files_below(&berth.data_root()), before);

    // The config is here but the layer is not.
    let config = alice.push_blob("team/app", b"{}");
    let missing_layer = (digest_of(b"never pushed"), 12);
    let manifest = image_manifest(OCI_MANIFEST, (config.as_str(), 2), &[missing_layer]);
    let before = files_below(&berth.data_root());
    let reply = alice.put_manifest("team/app", "latest", OCI_MANIFEST, &manifest);
    reply.assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(files_below(&berth.data_root()), before);

    // Both blobs exist, but in another repository: this one must not borrow them.
    let layer = sample_bytes("other layer", 500);
    let layer = (alice.push_blob("team/other", &layer), layer.len());
    let config = alice.push_blob("team/other", b"{\"os\":\"linux\"}");
    let manifest = image_manifest(OCI_MANIFEST, (config.as_str(), 14), &[layer]);
    let before = files_below(&berth.data_root());
    let reply = alice.put_manifest("team/app", "latest", OCI_MANIFEST, &manifest);
    reply.assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(files_below(&berth.data_root()), before);

    assert_eq!(alice.get("/v2/team/app/manifests/latest").status, 404);
}

#[test]
fn index_naming_missing_manifest_is_manifest_blob_unknown() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let before = files_below(&berth.data_root());

    let child = (OCI_MANIFEST, digest_of(b"no such manifest"), 16);
    let index = index_manifest(OCI_INDEX, &[child]);
    let reply = alice.put_manifest("team/app", "latest", OCI_INDEX, &index);
    reply.assert_error(400, "MANIFEST_BLOB_UNKNOWN");

    assert_eq!(files_below(&berth.data_root()), before);
}

// --- Uploads ---

#[test]
fn upload_digest_mismatch_is_digest_invalid_and_leaves_nothing() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let before = files_below(&berth.data_root());
    let sent = sample_bytes("sent", 5000);
    let claimed = digest_of(b"something else");

    // POST, PATCH, then a PUT that claims another digest.
    let location = alice.start_upload("team/app");
    let headers = [("Content-Type", "application/octet-stream")];
    let reply = alice.send("PATCH", &location, &headers, Some(sent.clone()));
    reply.assert_status(202);
    let location = alice.absolute(&reply.header("Location").expect("PATCH Location"));
    let reply = alice.send(
        "PUT",
        &with_query(&location, &format!("digest={claimed}")),
        &[],
        None,
    );
    reply.assert_error(400, "DIGEST_INVALID");
    assert_nothing_stored(&berth, &alice, &before, &[&claimed, &digest_of(&sent)]);

    // The session is gone: completing it with the right digest now finds nothing.
    let right = with_query(&location, &format!("digest={}", digest_of(&sent)));
    alice
        .send("PUT", &right, &[], None)
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");

    // The same with the bytes in the PUT itself.
    let location = alice.start_upload("team/app");
    let target = with_query(&location, &format!("digest={claimed}"));
    let reply = alice.send("PUT", &target, &headers, Some(sent.clone()));
    reply.assert_error(400, "DIGEST_INVALID");
    assert_nothing_stored(&berth, &alice, &before, &[&claimed, &digest_of(&sent)]);
}

#[test]
fn monolithic_upload_digest_mismatch_is_digest_invalid() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let before = files_below(&berth.data_root());
    let sent = sample_bytes("sent", 5000);
    let claimed = digest_of(b"something else");
    let headers = [("Content-Type", "application/octet-stream")];

    let target = format!("/v2/team/app/blobs/uploads/?digest={claimed}");
    let reply = alice.send("POST", &target, &headers, Some(sent.clone()));
    reply.assert_error(400, "DIGEST_INVALID");
    assert_nothing_stored(&berth, &alice, &before, &[&claimed, &digest_of(&sent)]);

    // A digest that is not a digest at all.
    let target = "/v2/team/app/blobs/uploads/?digest=sha256:not-hex";
    let reply = alice.send("POST", target, &headers, Some(sent.clone()));
    reply.assert_error(400, "DIGEST_INVALID");
    assert_nothing_stored(&berth, &alice, &before, &[&digest_of(&sent)]);
}

#[test]
fn unknown_upload_uuid_is_blob_upload_unknown() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let before = files_below(berth.dir.path());
    let bytes = b"some bytes".to_vec();
    let digest = digest_of(&bytes);
    let headers = [("Content-Type", "application/octet-stream")];

    let unknown = "/v2/team/app/blobs/uploads/3f1e8a52-5b0c-4d8e-9a57-0c2b7c9d1e64";
    let reply = alice.send("PATCH", unknown, &headers, Some(bytes.clone()));
    reply.assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    let reply = alice.send(
        "PUT",
        &with_query(unknown, &format!("digest={digest}")),
        &[],
        None,
    );
    reply.assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    let target = with_query(unknown, &format!("digest={digest}"));
    let reply = alice.send("PUT", &target, &headers, Some(bytes.clone()));
    reply.assert_error(404, "BLOB_UPLOAD_UNKNOWN");

    // Upload ids that try to leave the _uploads folder are unknown too (or rejected as
    // malformed), and write nothing.
    let tricks = [
        "..%2F..%2F..%2Fescape",
        "%2e%2e",
        "..",
        "a%2F..%2F..%2F..%2F..%2Fescape",
    ];
    for uuid in tricks {
        let path = format!("/v2/team/app/blobs/uploads/{uuid}");
        let reply = raw_request(
            &berth,
            Some("alice"),
            "PATCH",
            &path,
            Some(("application/octet-stream", &bytes)),
        );
        assert!(
            [400, 404].contains(&reply.status),
            "PATCH {path}: {}",
            reply.describe()
        );
        let reply = raw_request(
            &berth,
            Some("alice"),
            "PUT",
            &format!("{path}?digest={digest}"),
            None,
        );
        assert!(
            [400, 404].contains(&reply.status),
            "PUT {path}: {}",
            reply.describe()
        );
    }

    assert_tempdir_unchanged(&berth, &before);
}

#[test]
fn upload_uuid_of_another_repository_is_blob_upload_unknown() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bytes = sample_bytes("mine", 2000);
    let digest = digest_of(&bytes);
    let headers = [("Content-Type", "application/octet-stream")];

    let location = alice.start_upload("team/app");
    assert!(
        location.contains("/v2/team/app/blobs/uploads/"),
        "Location {location}"
    );
    let elsewhere = location.replace("/v2/team/app/", "/v2/team/other/");
    let reply = alice.send("PATCH", &elsewhere, &headers, Some(bytes.clone()));
    reply.assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    let target = with_query(&elsewhere, &format!("digest={digest}"));
    let reply = alice.send("PUT", &target, &headers, Some(bytes.clone()));
    reply.assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    assert!(!berth.data_root().join(blob_data_path(&digest)).exists());
    assert_eq!(
        alice.head(&format!("/v2/team/other/blobs/{digest}")).status,
        404
    );

    // The session still belongs to team/app and completes there.
    let target = with_query(&location, &format!("digest={digest}"));
    alice
        .send("PUT", &target, &headers, Some(bytes))
        .assert_status(201);
    assert!(upload_entries(&berth.data_root(), "team/app").is_empty());
}

// --- Unknown things ---

#[test]
fn unknown_blob_is_blob_unknown() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let here = alice.push_blob("team/app", b"present in team/app");
    let before = files_below(&berth.data_root());

    let nowhere = digest_of(b"never pushed");
    alice
        .get(&format!("/v2/team/app/blobs/{nowhere}"))
        .assert_error(404, "BLOB_UNKNOWN");
    alice
        .head(&format!("/v2/team/app/blobs/{nowhere}"))
        .assert_status(404);

    // Stored, but not linked into this repository.
    alice
        .get(&format!("/v2/team/other/blobs/{here}"))
        .assert_error(404, "BLOB_UNKNOWN");
    alice
        .head(&format!("/v2/team/other/blobs/{here}"))
        .assert_status(404);

    assert_eq!(files_below(&berth.data_root()), before);
}

#[test]
fn unknown_manifest_is_manifest_unknown() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = alice.push_image("team/app", "v1", OCI_MANIFEST);
    alice.push_image("team/other", "v0", OCI_MANIFEST);
    let before = files_below(&berth.data_root());

    let nowhere = digest_of(b"no such manifest");
    for reference in ["v2", nowhere.as_str()] {
        let path = format!("/v2/team/app/manifests/{reference}");
        alice.get(&path).assert_error(404, "MANIFEST_UNKNOWN");
        alice.head(&path).assert_status(404);
    }

    // Stored in team/app, so unknown in team/other, by digest as well as by tag.
    for reference in ["v1", digest_of(&manifest).as_str()] {
        let path = format!("/v2/team/other/manifests/{reference}");
        alice.get(&path).assert_error(404, "MANIFEST_UNKNOWN");
        alice.head(&path).assert_status(404);
    }

    // A repository that does not exist at all may also be reported as NAME_UNKNOWN.
    let reply = alice.get("/v2/team/nothing/manifests/v1");
    assert_eq!(reply.status, 404, "{}", reply.describe());
    let code = reply.error_code();
    assert!(
        matches!(code.as_deref(), Some("MANIFEST_UNKNOWN" | "NAME_UNKNOWN")),
        "{}",
        reply.describe()
    );

    assert_eq!(files_below(&berth.data_root()), before);
}

/// A manifest PUT whose digest reference is not the digest of the body is refused, and stores
/// nothing under either digest.
#[test]
fn manifest_put_by_wrong_digest_is_rejected() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = alice.push_image("team/app", "v1", OCI_MANIFEST);
    let other = [&manifest[..], b"\n"].concat();
    let before = files_below(&berth.data_root());

    let claimed = digest_of(b"not this manifest");
    let reply = alice.put_manifest("team/app", &claimed, OCI_MANIFEST, &other);
    assert_eq!(reply.status, 400, "{}", reply.describe());
    let code = reply.error_code();
    assert!(
        matches!(code.as_deref(), Some("DIGEST_INVALID" | "MANIFEST_INVALID")),
        "{}",
        reply.describe()
    );

    assert_eq!(
        files_below(&berth.data_root()),
        before,
        "the refused manifest left files"
    );
    alice
        .get(&format!("/v2/team/app/manifests/{claimed}"))
        .assert_status(404);
    let actual = digest_of(&other);
    alice
        .get(&format!("/v2/team/app/manifests/{actual}"))
        .assert_status(404);
}

/// Tags and digests carry path tricks too: none may read a file outside the blob store or
/// write one outside the repository.
#[test]
fn reference_and_digest_path_tricks_read_and_write_nothing() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = alice.push_image("team/app", "v1", OCI_MANIFEST);
    let secret = "berth-test-secret-bytes";
    std::fs::write(berth.dir.path().join("secret.txt"), secret).unwrap();
    let marker = format!("berthescape{}", berth.port);
    let before = files_below(berth.dir.path());

    let climb = |up: &str, sep: &str| format!("{up}{sep}").repeat(12);
    let reads = [
        format!("sha256:{}secret.txt", climb("..", "/")),
        format!("sha256:{}secret.txt", climb("..", "%2F")),
        format!("sha256:{}secret.txt", climb("%2e%2e", "%2F")),
        format!("{}secret.txt", climb("..", "%2F")),
        format!("sha256:{}etc%2Fpasswd", climb("..", "%2F")),
    ];
    for reference in &reads {
        for kind in ["blobs", "manifests"] {
            let path = format!("/v2/team/app/{kind}/{reference}");
            let reply = raw_request(&berth, Some("alice"), "GET", &path, None);
            assert!(
                [400, 404].contains(&reply.status),
                "GET {path}: {}",
                reply.describe()
            );
            let body = reply.text();
            assert!(
                !body.contains(secret) && !body.contains("root:"),
                "GET {path} read a file"
            );
        }
    }

    let writes = [
        format!("{}{marker}", climb("..", "%2F")),
        format!("{}{marker}", climb("%2e%2e", "%2F")),
        "..".to_string(),
        "%2e%2e".to_string(),
        format!("a%2F{marker}"),
        format!("sha256:{}{marker}", climb("..", "%2F")),
    ];
    for reference in &writes {
        let path = format!("/v2/team/app/manifests/{reference}");
        let body = Some((OCI_MANIFEST, manifest.as_slice()));
        let reply = raw_request(&berth, Some("alice"), "PUT", &path, body);
        assert!(
            [400, 404].contains(&reply.status),
            "PUT {path}: {}",
            reply.describe()
        );
    }

    assert_tempdir_unchanged(&berth, &before);
    let repository = berth
        .data_root()
        .join("docker/registry/v2/repositories/team/app/_manifests/tags/x");
    for ancestor in repository.ancestors() {
        let escaped = ancestor.join(&marker);
        assert!(!escaped.exists(), "{} was created", escaped.display());
    }
    let reply = alice.get("/v2/team/app/tags/list");
    assert_eq!(
        reply.json()["tags"],
        serde_json::json!(["v1"]),
        "{}",
        reply.describe()
    );
}

/// A mount whose `from` is not a valid repository name links nothing, even when the name
/// would resolve to a repository that has the blob.
#[test]
fn mount_from_invalid_name_links_nothing() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let digest = alice.push_blob("team/app", b"mount me");

    // (`from=team%2Fapp` is not among them: in a query string that is just `team/app`, and
    // it is how docker encodes every `from`.)
    for from in [
        "team/../team/app",
        "team/%2e%2e/team/app",
        "Team/App",
        "team/./app",
    ] {
        let path = format!("/v2/alice/copy/blobs/uploads/?mount={digest}&from={from}");
        let reply = raw_request(&berth, Some("alice"), "POST", &path, None);
        assert!(
            [202, 400].contains(&reply.status),
            "POST {path}: {}",
            reply.describe()
        );
        if reply.status == 400 {
            assert_eq!(
                reply.error_code().as_deref(),
                Some("NAME_INVALID"),
                "POST {path}"
            );
        }
    }

    alice
        .head(&format!("/v2/alice/copy/blobs/{digest}"))
        .assert_status(404);
}

// --- Broken config files ---

#[test]
fn yaml_syntax_error_stops_serve_with_file_and_line() {
    let hash = hash_password(common::PASSWORD);
    // Line 7 is indented deeper than its sibling: a YAML syntax error.
    let body = format!("users:\n  alice: \"{hash}\"\n   bob: \"{hash}\"\n");
    let stderr = serve_must_fail(&body);
    assert!(mentions_line(&stderr, 7), "no line 7 in stderr:\n{stderr}");
}

#[test]
fn unknown_key_stops_serve_with_file_line_and_key() {
    let users = users_block(&["alice"]);
    // users block: lines 5-6; acl: line 7; the misspelt key is on line 8.
    let body =
        format!("{users}acl:\n  - {{users: [alice], repos: [\"team/**\"], actoins: [pull]}}\n");
    let stderr = serve_must_fail(&body);
    assert!(
        stderr.contains("actoins"),
        "the unknown key is not named:\n{stderr}"
    );
    assert!(mentions_line(&stderr, 8), "no line 8 in stderr:\n{stderr}");
}

#[test]
fn unknown_action_stops_serve_with_file_line_and_action() {
    let users = users_block(&["alice"]);
    let body = format!(
        "{users}acl:\n  - {{users: [alice], repos: [\"team/**\"], actions: [pull, pish]}}\n"
    );
    let stderr = serve_must_fail(&body);
    assert!(
        stderr.contains("pish"),
        "the unknown action is not named:\n{stderr}"
    );
    assert!(mentions_line(&stderr, 8), "no line 8 in stderr:\n{stderr}");
}

#[test]
fn two_authorization_headers_are_refused() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    alice.get("/v2/").assert_status(200);

    // The first header is alice's good one; a second must not be silently ignored.
    let second = [("Authorization", "Basic bWFsbG9yeTp4")];
    alice.send("GET", "/v2/", &second, None).assert_status(400);
}

#[test]
fn a_failed_sign_in_is_logged_with_the_user_name_and_no_password() {
    let berth = start();
    let wrong = RegistryClient::with_password(&berth, "alice", "not her password");
    wrong.get("/v2/").assert_status(401);

    let log = berth.log();
    let refused = log
        .lines()
        .find(|line| line.contains("sign-in refused"))
        .unwrap_or_else(|| panic!("no sign-in refused line:\n{log}"));
    assert!(refused.contains("alice"), "{refused}");
    assert!(
        !log.contains("not her password"),
        "the password reached the log"
    );
}

// --- Helpers ---

fn start() -> Berth {
    Berth::start(&format!("{}{ACL}", users_block(&["alice"])))
}

fn manifest_path(name: &str) -> String {
    format!("/v2/{name}/manifests/latest")
}

/// Sends every kind of request that carries a repository name, with `name` written into the
/// path as is, and expects 400 NAME_INVALID from each.
fn assert_name_invalid_everywhere(berth: &Berth, name: &str) {
    let blob = b"blob bytes".to_vec();
    let digest = digest_of(&blob);
    let (manifest, _) = manifest_naming_unpushed_blobs();
    let octets = "application/octet-stream";

    let requests: Vec<(&str, String, Option<(&str, &[u8])>)> = vec![
        ("GET", format!("/v2/{name}/manifests/latest"), None),
        (
            "PUT",
            format!("/v2/{name}/manifests/latest"),
            Some((OCI_MANIFEST, &manifest)),
        ),
        ("GET", format!("/v2/{name}/blobs/{digest}"), None),
        ("POST", format!("/v2/{name}/blobs/uploads/"), None),
        (
            "POST",
            format!("/v2/{name}/blobs/uploads/?digest={digest}"),
            Some((octets, &blob)),
        ),
        ("GET", format!("/v2/{name}/tags/list"), None),
    ];
    for (method, path, body) in requests {
        let reply = raw_request(berth, Some("alice"), method, &path, body);
        assert_eq!(reply.status, 400, "{method} {path}: {}", reply.describe());
        assert_eq!(
            reply.error_code().as_deref(),
            Some("NAME_INVALID"),
            "{method} {path}: {}",
            reply.describe()
        );
    }
}

/// The three requests that write: manifest PUT, monolithic upload, upload start.
fn assert_writes_refused(berth: &Berth, name: &str, manifest: &[u8]) {
    let blob = b"escaping blob".to_vec();
    let digest = digest_of(&blob);
    let requests: Vec<(&str, String, Option<(&str, &[u8])>)> = vec![
        (
            "PUT",
            format!("/v2/{name}/manifests/latest"),
            Some((OCI_MANIFEST, manifest)),
        ),
        (
            "POST",
            format!("/v2/{name}/blobs/uploads/?digest={digest}"),
            Some(("application/octet-stream", &blob)),
        ),
        ("POST", format!("/v2/{name}/blobs/uploads/"), None),
    ];
    for (method, path, body) in requests {
        let reply = raw_request(berth, Some("alice"), method, &path, body);
        assert_eq!(reply.status, 400, "{method} {path}: {}", reply.describe());
        assert_eq!(
            reply.error_code().as_deref(),
            Some("NAME_INVALID"),
            "{method} {path}"
        );
    }
}

/// An OCI manifest naming a config and a layer that were never pushed, and its digest.
fn manifest_naming_unpushed_blobs() -> (Vec<u8>, String) {
    let config = digest_of(b"unpushed config");
    let layer = (digest_of(b"unpushed layer"), 14);
    let manifest = image_manifest(OCI_MANIFEST, (config.as_str(), 15), &[layer]);
    let digest = digest_of(&manifest);
    (manifest, digest)
}

/// A valid OCI manifest of exactly `size` bytes: an annotation pads it out.
fn padded_manifest(config: &str, layer: &(String, usize), size: usize) -> Vec<u8> {
    let manifest = |padding: &str| {
        let value = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "size": 2, "digest": config},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "size": layer.1, "digest": layer.0}],
            "annotations": {"padding": padding},
        });
        serde_json::to_vec(&value).unwrap()
    };
    let base = manifest("").len();
    let bytes = manifest(&"x".repeat(size - base));
    assert_eq!(bytes.len(), size);
    bytes
}

/// No blob data for any of `digests`, no link to them in team/app, no upload session left,
/// and the data root holds exactly the files it held `before`.
fn assert_nothing_stored(
    berth: &Berth,
    alice: &RegistryClient,
    before: &[String],
    digests: &[&str],
) {
    let root = berth.data_root();
    for digest in digests {
        assert!(
            !root.join(blob_data_path(digest)).exists(),
            "blob data for {digest}"
        );
        let reply = alice.head(&format!("/v2/team/app/blobs/{digest}"));
        assert_eq!(
            reply.status,
            404,
            "{digest} is visible: {}",
            reply.describe()
        );
    }
    assert_eq!(
        upload_entries(&root, "team/app"),
        Vec::<String>::new(),
        "upload left"
    );
    assert_eq!(files_below(&root), before, "files left in the data root");
}

/// Every file in the test's temp dir (config, certs, log, data) is one that was there before.
fn assert_tempdir_unchanged(berth: &Berth, before: &[String]) {
    let after = files_below(berth.dir.path());
    let new: Vec<_> = after.iter().filter(|f| !before.contains(f)).collect();
    assert!(new.is_empty(), "new files in the temp dir: {new:?}");
}

/// Which ancestors of `dir` hold an `etc/x`.
fn existing_etc_x(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .map(|a| a.join("etc/x"))
        .filter(|p| p.exists())
        .collect()
}

/// Writes a config whose first four lines are valid and whose remaining lines are `body`, runs
/// `berth serve --config` on it, and expects a non-zero exit within 15 seconds with the file's
/// name on stderr. Returns stderr.
fn serve_must_fail(body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken-proxy.yaml");
    let text = format!(
        "listen: 127.0.0.1:{}\n\
         metrics_listen: 127.0.0.1:{}\n\
         tls: {{cert: certs/server.crt, key: certs/server.key}}\n\
         storage: {{filesystem: {{root: data}}}}\n\
         {body}",
        common::free_port(),
        common::free_port(),
    );
    std::fs::write(&config, text).unwrap();

    let mut child = Command::new(common::berth_binary())
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start berth serve");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "berth serve kept running on a broken config; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();

    assert!(!status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("broken-proxy.yaml"),
        "the file is not named:\n{stderr}"
    );
    stderr
}

/// Whether `text` names line `line` in one of the usual ways.
fn mentions_line(text: &str, line: usize) -> bool {
    [
        format!("line {line}"),
        format!(":{line}:"),
        format!("line: {line}"),
        format!("line={line}"),
    ]
    .iter()
    .any(|form| text.contains(form.as_str()))
}
