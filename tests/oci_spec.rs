//! The OCI Distribution Spec v1.1 endpoint table (end-1 to end-13), one test per endpoint
//! and per error the spec names for it, written from the spec's text: status, headers and
//! body. Everything goes through TLS and basic auth, as clients do.

mod common;

use common::*;
use serde_json::json;

/// alice may do anything anywhere; bob owns `bob/**` and may only pull `public/**`.
fn acl() -> String {
    format!(
        "{}acl:\n  \
         - {{users: [alice], repos: [\"**\"], actions: [pull, push, delete]}}\n  \
         - {{users: [bob], repos: [\"bob/**\"], actions: [pull, push, delete]}}\n  \
         - {{users: [bob], repos: [\"public/**\"], actions: [pull]}}\n",
        users_block(&["alice", "bob"])
    )
}

fn berth() -> Berth {
    Berth::start_with_delete(false, &acl())
}

const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";

fn sha512_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha512:{}", hex::encode(sha2::Sha512::digest(bytes)))
}

fn assert_api_version(reply: &Reply) {
    assert_eq!(
        reply.header("Docker-Distribution-API-Version").as_deref(),
        Some("registry/2.0"),
        "{}",
        reply.describe()
    );
}

/// An artifact manifest with the empty config, an `artifactType` and a `subject`.
fn artifact(artifact_type: &str, subject: Option<(&str, usize)>, note: &str) -> Vec<u8> {
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_TYPE, "digest": EMPTY_DIGEST, "size": 2},
        "layers": [{"mediaType": EMPTY_TYPE, "digest": EMPTY_DIGEST, "size": 2}],
        "annotations": {"org.example.note": note},
    });
    if let Some((digest, size)) = subject {
        manifest["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size});
    }
    serde_json::to_vec_pretty(&manifest).unwrap()
}

// --- end-1 --------------------------------------------------------------------------------

#[test]
fn end_1_base_answers_200_signed_in_and_401_with_a_challenge_otherwise() {
    let berth = berth();
    let reply = RegistryClient::new(&berth, Some("alice")).get("/v2/");
    reply.assert_status(200);
    assert_api_version(&reply);

    let reply = RegistryClient::new(&berth, None).get("/v2/");
    reply.assert_error(401, "UNAUTHORIZED");
    assert!(reply
        .header("WWW-Authenticate")
        .unwrap()
        .starts_with("Basic "));
    assert_api_version(&reply);
}

// --- end-2: blobs -------------------------------------------------------------------------

#[test]
fn end_2_blob_get_and_head_with_ranges() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bytes = sample_bytes("end-2", 1000);
    let digest = alice.push_blob("app", &bytes);
    let path = format!("/v2/app/blobs/{digest}");

    let reply = alice.get(&path);
    reply.assert_status(200);
    assert_eq!(reply.body, bytes);
    assert_eq!(reply.header("Docker-Content-Digest"), Some(digest.clone()));
    assert_eq!(reply.header("Accept-Ranges").as_deref(), Some("bytes"));
    assert_api_version(&reply);

    let reply = alice.head(&path);
    reply.assert_status(200);
    assert_eq!(reply.header("Content-Length").as_deref(), Some("1000"));
    assert!(reply.body.is_empty());

    let reply = alice.send("GET", &path, &[("Range", "bytes=10-19")], None);
    reply.assert_status(206);
    assert_eq!(reply.body, &bytes[10..20]);
    assert_eq!(
        reply.header("Content-Range").as_deref(),
        Some("bytes 10-19/1000")
    );
    assert_eq!(reply.header("Content-Length").as_deref(), Some("10"));

    let reply = alice.send("GET", &path, &[("Range", "bytes=990-")], None);
    reply.assert_status(206);
    assert_eq!(reply.body, &bytes[990..]);

    let reply = alice.send("GET", &path, &[("Range", "bytes=-5")], None);
    reply.assert_status(206);
    assert_eq!(reply.body, &bytes[995..]);
    assert_eq!(
        reply.header("Content-Range").as_deref(),
        Some("bytes 995-999/1000")
    );

    let reply = alice.send("HEAD", &path, &[("Range", "bytes=0-99")], None);
    reply.assert_status(206);
    assert_eq!(reply.header("Content-Length").as_deref(), Some("100"));

    let reply = alice.send("GET", &path, &[("Range", "bytes=1000-")], None);
    reply.assert_status(416);
    assert_eq!(
        reply.header("Content-Range").as_deref(),
        Some("bytes */1000")
    );
}

#[test]
fn end_2_errors_blob_unknown_and_digest_invalid() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    alice.push_blob("app", b"something");

    let missing = digest_of(b"never pushed");
    alice
        .get(&format!("/v2/app/blobs/{missing}"))
        .assert_error(404, "BLOB_UNKNOWN");
    let reply = alice.head(&format!("/v2/app/blobs/{missing}"));
    reply.assert_status(404);

    for bad in [
        "sha256:abc",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "nodigest",
    ] {
        alice
            .get(&format!("/v2/app/blobs/{bad}"))
            .assert_error(400, "DIGEST_INVALID");
    }
}

#[test]
fn sha512_blobs_and_manifests_are_accepted() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bytes = sample_bytes("sha512", 5000);
    let digest = sha512_of(&bytes);
    let location = alice.start_upload("app");
    alice
        .send(
            "PUT",
            &with_query(&location, &format!("digest={digest}")),
            &[],
            Some(bytes.clone()),
        )
        .assert_status(201);
    let reply = alice.get(&format!("/v2/app/blobs/{digest}"));
    reply.assert_status(200);
    assert_eq!(reply.body, bytes);
    assert_eq!(reply.header("Docker-Content-Digest"), Some(digest));

    let manifest = artifact("application/vnd.example.thing", None, "sha512");
    let digest = sha512_of(&manifest);
    let reply = alice.put_manifest("app", &digest, OCI_MANIFEST, &manifest);
    reply.assert_status(201);
    assert_eq!(reply.header("Docker-Content-Digest"), Some(digest.clone()));
    let reply = alice.get(&format!("/v2/app/manifests/{digest}"));
    reply.assert_status(200);
    assert_eq!(reply.body, manifest);
}

// --- end-3: manifests ---------------------------------------------------------------------

#[test]
fn end_3_manifest_get_by_tag_and_digest_with_accept_negotiation() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = alice.push_image("app", "v1", OCI_MANIFEST);
    let digest = digest_of(&manifest);

    for reference in ["v1", digest.as_str()] {
        let path = format!("/v2/app/manifests/{reference}");
        let reply = alice.send("GET", &path, &[("Accept", MANIFEST_ACCEPT)], None);
        reply.assert_status(200);
        assert_eq!(reply.body, manifest);
        assert_eq!(reply.header("Content-Type").as_deref(), Some(OCI_MANIFEST));
        assert_eq!(reply.header("Docker-Content-Digest"), Some(digest.clone()));
        assert_api_version(&reply);

        let reply = alice.send("HEAD", &path, &[("Accept", OCI_MANIFEST)], None);
        reply.assert_status(200);
        let length = manifest.len().to_string();
        assert_eq!(reply.header("Content-Length"), Some(length));
        assert!(reply.body.is_empty());
    }

    // Only a type the registry does not hold it as: not found, as the spec says.
    let path = "/v2/app/manifests/v1";
    alice
        .send("GET", path, &[("Accept", DOCKER_MANIFEST)], None)
        .assert_error(404, "MANIFEST_UNKNOWN");
    alice
        .send("GET", path, &[("Accept", "*/*")], None)
        .assert_status(200);
    let docker = alice.push_image("app", "docker", DOCKER_MANIFEST);
    let reply = alice.send(
        "GET",
        "/v2/app/manifests/docker",
        &[("Accept", DOCKER_MANIFEST)],
        None,
    );
    reply.assert_status(200);
    assert_eq!(reply.body, docker);
    assert_eq!(
        reply.header("Content-Type").as_deref(),
        Some(DOCKER_MANIFEST)
    );
}

#[test]
fn end_3_errors_manifest_unknown_and_name_invalid() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    alice.push_image("app", "v1", OCI_MANIFEST);
    alice
        .get("/v2/app/manifests/nope")
        .assert_error(404, "MANIFEST_UNKNOWN");
    let missing = digest_of(b"no manifest");
    alice
        .get(&format!("/v2/app/manifests/{missing}"))
        .assert_error(404, "MANIFEST_UNKNOWN");
    alice
        .get("/v2/App/manifests/v1")
        .assert_error(400, "NAME_INVALID");
}

// --- end-4a, end-4b, end-5, end-6, end-13: uploads -----------------------------------------

#[test]
fn end_4a_post_opens_a_session_with_location_uuid_and_range() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let reply = alice.send("POST", "/v2/app/blobs/uploads/", &[], None);
    reply.assert_status(202);
    let location = reply.header("Location").unwrap();
    let id = reply.header("Docker-Upload-UUID").unwrap();
    assert_eq!(location, format!("/v2/app/blobs/uploads/{id}"));
    assert_eq!(reply.header("Range").as_deref(), Some("0-0"));
    assert_api_version(&reply);
}

#[test]
fn end_4b_monolithic_post_with_digest() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bytes = sample_bytes("monolithic", 2048);
    let digest = digest_of(&bytes);
    let reply = alice.send(
        "POST",
        &format!("/v2/app/blobs/uploads/?digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        Some(bytes.clone()),
    );
    reply.assert_status(201);
    assert_eq!(
        reply.header("Location"),
        Some(format!("/v2/app/blobs/{digest}"))
    );
    assert_eq!(reply.header("Docker-Content-Digest"), Some(digest.clone()));
    assert_eq!(alice.get(&format!("/v2/app/blobs/{digest}")).body, bytes);

    let wrong = digest_of(b"other");
    alice
        .send(
            "POST",
            &format!("/v2/app/blobs/uploads/?digest={wrong}"),
            &[],
            Some(bytes),
        )
        .assert_error(400, "DIGEST_INVALID");
}

#[test]
fn end_5_chunked_patch_with_content_range_and_416_out_of_order() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bytes = sample_bytes("chunks", 3000);
    let location = alice.start_upload("app");

    let reply = alice.send(
        "PATCH",
        &location,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Content-Range", "0-999"),
        ],
        Some(bytes[..1000].to_vec()),
    );
    reply.assert_status(202);
    assert_eq!(reply.header("Range").as_deref(), Some("0-999"));
    let location = alice.absolute(&reply.header("Location").unwrap());
    assert!(reply.header("Docker-Upload-UUID").is_some());

    // A chunk that overlaps what arrived, and one that leaves a gap: 416 with the Range.
    for range in ["500-1499", "1500-2499"] {
        let reply = alice.send(
            "PATCH",
            &location,
            &[("Content-Range", range)],
            Some(bytes[..1000].to_vec()),
        );
        reply.assert_status(416);
        assert_eq!(reply.header("Range").as_deref(), Some("0-999"));
        assert!(reply.header("Location").is_some(), "{}", reply.describe());
        assert!(reply.header("Docker-Upload-UUID").is_some());
    }

    // A range that disagrees with the body's length is refused, and nothing is written;
    // so is one whose length does not fit in 64 bits.
    for range in ["1000-1099", "0-18446744073709551615"] {
        let reply = alice.send(
            "PATCH",
            &location,
            &[("Content-Range", range)],
            Some(bytes[1000..1003].to_vec()),
        );
        reply.assert_error(400, "BLOB_UPLOAD_INVALID");
        assert_eq!(
            alice.get(&location).header("Range").as_deref(),
            Some("0-999"),
            "{range}"
        );
    }

    // A chunk without Content-Range is streamed on at the end.
    let reply = alice.send_chunked("PATCH", &location, bytes[1000..2000].to_vec());
    reply.assert_status(202);
    assert_eq!(reply.header("Range").as_deref(), Some("0-1999"));

    // end-13: the session's status.
    let reply = alice.get(&location);
    reply.assert_status(204);
    assert_eq!(reply.header("Range").as_deref(), Some("0-1999"));
    assert!(reply.header("Location").is_some());
    assert!(reply.header("Docker-Upload-UUID").is_some());

    // end-6: the PUT carries the last chunk.
    let digest = digest_of(&bytes);
    let reply = alice.send(
        "PUT",
        &with_query(&location, &format!("digest={digest}")),
        &[("Content-Range", "2000-2999")],
        Some(bytes[2000..].to_vec()),
    );
    reply.assert_status(201);
    assert_eq!(reply.header("Docker-Content-Digest"), Some(digest.clone()));
    assert_eq!(alice.get(&format!("/v2/app/blobs/{digest}")).body, bytes);
}

#[test]
fn end_6_put_without_body_closes_a_session() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bytes = sample_bytes("no body", 700);
    let location = alice.start_upload("app");
    let reply = alice.send_chunked("PATCH", &location, bytes.clone());
    reply.assert_status(202);
    let location = alice.absolute(&reply.header("Location").unwrap());

    let digest = digest_of(&bytes);
    let reply = alice.send(
        "PUT",
        &with_query(&location, &format!("digest={digest}")),
        &[],
        None,
    );
    reply.assert_status(201);
    assert_eq!(
        reply.header("Location"),
        Some(format!("/v2/app/blobs/{digest}"))
    );
    // The session is gone once the blob exists.
    alice
        .get(&location)
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn end_6_errors_digest_invalid_and_upload_unknown() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let location = alice.start_upload("app");
    let wrong = digest_of(b"not these bytes");
    alice
        .send(
            "PUT",
            &with_query(&location, &format!("digest={wrong}")),
            &[],
            Some(b"these bytes".to_vec()),
        )
        .assert_error(400, "DIGEST_INVALID");

    let location = alice.start_upload("app");
    alice
        .send("PUT", &location, &[], Some(b"x".to_vec()))
        .assert_error(400, "DIGEST_INVALID");

    let unknown = format!(
        "/v2/app/blobs/uploads/{}",
        "0".repeat(8) + "-0000-4000-8000-000000000000"
    );
    alice
        .send(
            "PUT",
            &with_query(&unknown, &format!("digest={wrong}")),
            &[],
            None,
        )
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    alice.get(&unknown).assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn upload_delete_cancels_the_session() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let location = alice.start_upload("app");
    let reply = alice.send("DELETE", &location, &[], None);
    reply.assert_status(204);
    assert_api_version(&reply);
    alice
        .get(&location)
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    alice
        .send("DELETE", &location, &[], None)
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    assert!(upload_entries(&berth.data_root(), "app").is_empty());
}

// --- end-7: manifest PUT ------------------------------------------------------------------

#[test]
fn end_7_manifest_put_and_its_errors() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = alice.push_image("app", "v1", OCI_MANIFEST);
    let digest = digest_of(&manifest);
    let reply = alice.put_manifest("app", "v2", OCI_MANIFEST, &manifest);
    reply.assert_status(201);
    assert_eq!(
        reply.header("Location"),
        Some(format!("/v2/app/manifests/{digest}"))
    );
    assert_eq!(reply.header("Docker-Content-Digest"), Some(digest.clone()));
    assert!(reply.header("OCI-Subject").is_none());

    let missing = digest_of(b"no such layer");
    let broken = image_manifest(OCI_MANIFEST, (&missing, 13), &[]);
    alice
        .put_manifest("app", "broken", OCI_MANIFEST, &broken)
        .assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    alice
        .put_manifest("app", "broken", OCI_MANIFEST, b"{not json")
        .assert_error(400, "MANIFEST_INVALID");
    let wrong = digest_of(b"other bytes");
    alice
        .put_manifest("app", &wrong, OCI_MANIFEST, &manifest)
        .assert_error(400, "DIGEST_INVALID");
    alice
        .put_manifest("app", "-bad-tag", OCI_MANIFEST, &manifest)
        .assert_error(400, "MANIFEST_INVALID");
}

#[test]
fn end_7_artifacts_with_the_empty_config_and_a_subject_get_oci_subject() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let image = alice.push_image("app", "v1", OCI_MANIFEST);
    let subject = digest_of(&image);

    // The empty blob was never pushed: the empty descriptor is known without it.
    let signature = artifact(
        "application/vnd.example.signature",
        Some((&subject, image.len())),
        "a",
    );
    let reply = alice.put_manifest("app", &digest_of(&signature), OCI_MANIFEST, &signature);
    reply.assert_status(201);
    assert_eq!(reply.header("OCI-Subject"), Some(subject.clone()));
    let reply = alice.get(&format!("/v2/app/blobs/{EMPTY_DIGEST}"));
    reply.assert_status(200);
    assert_eq!(reply.body, b"{}");

    // A subject that is not (yet) in the repository is accepted too.
    let absent = digest_of(b"not pushed yet");
    let orphan = artifact("application/vnd.example.sbom", Some((&absent, 10)), "b");
    let reply = alice.put_manifest("app", &digest_of(&orphan), OCI_MANIFEST, &orphan);
    reply.assert_status(201);
    assert_eq!(reply.header("OCI-Subject"), Some(absent));
}

// --- end-8: tags --------------------------------------------------------------------------

#[test]
fn end_8_tags_list_with_pagination() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = alice.push_image("app", "c", OCI_MANIFEST);
    for tag in ["a", "B", "b", "d"] {
        alice
            .put_manifest("app", tag, OCI_MANIFEST, &manifest)
            .assert_status(201);
    }

    let reply = alice.get("/v2/app/tags/list");
    reply.assert_status(200);
    assert_eq!(
        reply.json(),
        json!({"name": "app", "tags": ["B", "a", "b", "c", "d"]})
    );
    assert!(reply.header("Link").is_none());

    let reply = alice.get("/v2/app/tags/list?n=2");
    assert_eq!(reply.json()["tags"], json!(["B", "a"]));
    assert_eq!(
        reply.header("Link").as_deref(),
        Some("</v2/app/tags/list?last=a&n=2>; rel=\"next\"")
    );
    let reply = alice.get("/v2/app/tags/list?last=a&n=2");
    assert_eq!(reply.json()["tags"], json!(["b", "c"]));
    let reply = alice.get("/v2/app/tags/list?last=c&n=2");
    assert_eq!(reply.json()["tags"], json!(["d"]));
    assert!(reply.header("Link").is_none());
    let reply = alice.get("/v2/app/tags/list?last=b");
    assert_eq!(reply.json()["tags"], json!(["c", "d"]));

    let reply = alice.get("/v2/app/tags/list?n=0");
    reply.assert_status(200);
    assert_eq!(reply.json()["tags"], json!([]));
    assert!(reply.header("Link").is_none());

    alice
        .get("/v2/nothing/tags/list")
        .assert_error(404, "NAME_UNKNOWN");
}

#[test]
fn catalog_pagination_in_lexical_order() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    for repository in ["zeta", "alpha", "bob/x", "mid/one"] {
        alice.push_image(repository, "v1", OCI_MANIFEST);
    }
    let reply = alice.get("/v2/_catalog");
    assert_eq!(
        reply.json()["repositories"],
        json!(["alpha", "bob/x", "mid/one", "zeta"])
    );
    let reply = alice.get("/v2/_catalog?n=3");
    assert_eq!(
        reply.json()["repositories"],
        json!(["alpha", "bob/x", "mid/one"])
    );
    assert_eq!(
        reply.header("Link").as_deref(),
        Some("</v2/_catalog?last=mid/one&n=3>; rel=\"next\"")
    );
    let reply = alice.get("/v2/_catalog?last=mid/one&n=3");
    assert_eq!(reply.json()["repositories"], json!(["zeta"]));
    assert!(reply.header("Link").is_none());
    let reply = alice.get("/v2/_catalog?n=0");
    assert_eq!(reply.json()["repositories"], json!([]));

    // bob sees only what he may pull.
    let bob = RegistryClient::new(&berth, Some("bob"));
    assert_eq!(
        bob.get("/v2/_catalog").json()["repositories"],
        json!(["bob/x"])
    );
}

// --- end-9, end-10: deletion --------------------------------------------------------------

#[test]
fn end_9_manifest_delete_by_digest_and_tag() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = alice.push_image("app", "v1", OCI_MANIFEST);
    let digest = digest_of(&manifest);
    alice
        .put_manifest("app", "v2", OCI_MANIFEST, &manifest)
        .assert_status(201);
    let other = alice.push_image("app", "other", OCI_MANIFEST);

    // By tag: only the tag goes.
    let reply = alice.send("DELETE", "/v2/app/manifests/v2", &[], None);
    reply.assert_status(202);
    assert_api_version(&reply);
    alice
        .get("/v2/app/manifests/v2")
        .assert_error(404, "MANIFEST_UNKNOWN");
    alice
        .get(&format!("/v2/app/manifests/{digest}"))
        .assert_status(200);
    alice.get("/v2/app/manifests/v1").assert_status(200);

    // By digest: the manifest and every tag still naming it.
    alice
        .send("DELETE", &format!("/v2/app/manifests/{digest}"), &[], None)
        .assert_status(202);
    alice
        .get(&format!("/v2/app/manifests/{digest}"))
        .assert_error(404, "MANIFEST_UNKNOWN");
    alice
        .get("/v2/app/manifests/v1")
        .assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(
        alice.get("/v2/app/tags/list").json()["tags"],
        json!(["other"])
    );
    assert_eq!(alice.get("/v2/app/manifests/other").body, other);

    alice
        .send("DELETE", &format!("/v2/app/manifests/{digest}"), &[], None)
        .assert_error(404, "MANIFEST_UNKNOWN");
    alice
        .send("DELETE", "/v2/app/manifests/v2", &[], None)
        .assert_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn end_9_a_manifest_an_index_lists_is_kept_unless_config_allows() {
    for allowed in [false, true] {
        let berth = Berth::start_with_delete(allowed, &acl());
        let alice = RegistryClient::new(&berth, Some("alice"));
        let child = alice.push_image("app", "amd64", OCI_MANIFEST);
        let child_digest = digest_of(&child);
        let index = index_manifest(
            OCI_INDEX,
            &[(OCI_MANIFEST, child_digest.clone(), child.len())],
        );
        alice
            .put_manifest("app", "multi", OCI_INDEX, &index)
            .assert_status(201);

        let reply = alice.send(
            "DELETE",
            &format!("/v2/app/manifests/{child_digest}"),
            &[],
            None,
        );
        if allowed {
            reply.assert_status(202);
            continue;
        }
        reply.assert_error(409, "UNSUPPORTED");
        assert_eq!(
            reply.json()["errors"][0]["detail"]["index"],
            json!(digest_of(&index))
        );

        // Once the index is gone, so is the objection.
        alice
            .send(
                "DELETE",
                &format!("/v2/app/manifests/{}", digest_of(&index)),
                &[],
                None,
            )
            .assert_status(202);
        alice
            .send(
                "DELETE",
                &format!("/v2/app/manifests/{child_digest}"),
                &[],
                None,
            )
            .assert_status(202);
    }
}

#[test]
fn end_10_blob_delete_unlinks_it_from_the_repository_only() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bytes = sample_bytes("delete me", 100);
    let digest = alice.push_blob("app", &bytes);
    alice.push_blob("other", &bytes);

    let reply = alice.send("DELETE", &format!("/v2/app/blobs/{digest}"), &[], None);
    reply.assert_status(202);
    alice
        .get(&format!("/v2/app/blobs/{digest}"))
        .assert_error(404, "BLOB_UNKNOWN");
    assert_eq!(alice.get(&format!("/v2/other/blobs/{digest}")).body, bytes);
    alice
        .send("DELETE", &format!("/v2/app/blobs/{digest}"), &[], None)
        .assert_error(404, "BLOB_UNKNOWN");
}

#[test]
fn deletes_are_405_unsupported_when_deletion_is_off() {
    let berth = Berth::start(&acl());
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = alice.push_image("app", "v1", OCI_MANIFEST);
    let digest = digest_of(&manifest);
    let blob = alice.push_blob("app", b"kept");
    for path in [
        "/v2/app/manifests/v1".to_string(),
        format!("/v2/app/manifests/{digest}"),
        format!("/v2/app/blobs/{blob}"),
    ] {
        let reply = alice.send("DELETE", &path, &[], None);
        reply.assert_error(405, "UNSUPPORTED");
        assert_api_version(&reply);
    }
    alice.get("/v2/app/manifests/v1").assert_status(200);
    alice
        .get(&format!("/v2/app/blobs/{blob}"))
        .assert_status(200);
}

#[test]
fn delete_needs_the_delete_action() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = alice.push_image("public/app", "v1", OCI_MANIFEST);
    let bob = RegistryClient::new(&berth, Some("bob"));
    bob.get("/v2/public/app/manifests/v1").assert_status(200);
    bob.send("DELETE", "/v2/public/app/manifests/v1", &[], None)
        .assert_error(403, "DENIED");
    let path = format!("/v2/public/app/manifests/{}", digest_of(&manifest));
    bob.send("DELETE", &path, &[], None)
        .assert_error(403, "DENIED");
    RegistryClient::new(&berth, None)
        .send("DELETE", &path, &[], None)
        .assert_error(401, "UNAUTHORIZED");
    alice.get("/v2/public/app/manifests/v1").assert_status(200);
}

// --- end-11: mount ------------------------------------------------------------------------

#[test]
fn end_11_mount_needs_pull_on_from_else_an_ordinary_upload_starts() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bytes = sample_bytes("mountable", 500);
    let digest = alice.push_blob("secret/app", &bytes);
    let public = alice.push_blob("public/app", &sample_bytes("public", 300));
    let bob = RegistryClient::new(&berth, Some("bob"));

    // bob may not pull secret/app: a plain 202 upload, nothing mounted.
    let path = format!("/v2/bob/app/blobs/uploads/?mount={digest}&from=secret/app");
    let reply = bob.send("POST", &path, &[], None);
    reply.assert_status(202);
    assert!(reply.header("Docker-Upload-UUID").is_some());
    assert!(reply
        .header("Location")
        .unwrap()
        .starts_with("/v2/bob/app/blobs/uploads/"));
    bob.get(&format!("/v2/bob/app/blobs/{digest}"))
        .assert_error(404, "BLOB_UNKNOWN");

    // Nor without from: secret/app is not his to read.
    let path = format!("/v2/bob/app/blobs/uploads/?mount={digest}");
    bob.send("POST", &path, &[], None).assert_status(202);
    bob.get(&format!("/v2/bob/app/blobs/{digest}"))
        .assert_error(404, "BLOB_UNKNOWN");

    // Unknown blob in a readable repository: 202 as well.
    let missing = digest_of(b"nowhere");
    let path = format!("/v2/bob/app/blobs/uploads/?mount={missing}&from=public/app");
    bob.send("POST", &path, &[], None).assert_status(202);

    // From a repository he may pull: 201 with the blob's Location.
    let path = format!("/v2/bob/app/blobs/uploads/?mount={public}&from=public/app");
    let reply = bob.send("POST", &path, &[], None);
    reply.assert_status(201);
    assert_eq!(
        reply.header("Location"),
        Some(format!("/v2/bob/app/blobs/{public}"))
    );
    assert_eq!(reply.header("Docker-Content-Digest"), Some(public.clone()));
    bob.get(&format!("/v2/bob/app/blobs/{public}"))
        .assert_status(200);

    // Without from, alice (who reads everything) gets it from wherever it is.
    let path = format!("/v2/elsewhere/blobs/uploads/?mount={digest}");
    alice.send("POST", &path, &[], None).assert_status(201);
    assert_eq!(
        alice.get(&format!("/v2/elsewhere/blobs/{digest}")).body,
        bytes
    );
}

// --- end-12: referrers --------------------------------------------------------------------

#[test]
fn end_12_referrers_list_with_artifact_type_filter() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let image = alice.push_image("app", "v1", OCI_MANIFEST);
    let subject = digest_of(&image);

    let path = format!("/v2/app/referrers/{subject}");
    let reply = alice.get(&path);
    reply.assert_status(200);
    assert_eq!(reply.header("Content-Type").as_deref(), Some(OCI_INDEX));
    assert_eq!(
        reply.json(),
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    );

    let mut pushed = Vec::new();
    for (kind, note) in [
        ("application/vnd.example.sbom", "s"),
        ("application/vnd.example.sig", "t"),
    ] {
        let manifest = artifact(kind, Some((&subject, image.len())), note);
        let digest = digest_of(&manifest);
        alice
            .put_manifest("app", &digest, OCI_MANIFEST, &manifest)
            .assert_status(201);
        pushed.push((kind, digest, manifest.len(), note));
    }
    // An unrelated artifact without a subject does not show up.
    let loose = artifact("application/vnd.example.sbom", None, "loose");
    alice
        .put_manifest("app", "loose", OCI_MANIFEST, &loose)
        .assert_status(201);

    let reply = alice.get(&path);
    reply.assert_status(200);
    assert!(reply.header("OCI-Filters-Applied").is_none());
    let mut expected: Vec<_> = pushed
        .iter()
        .map(|(kind, digest, size, note)| {
            json!({
                "mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                "artifactType": kind, "annotations": {"org.example.note": note},
            })
        })
        .collect();
    expected.sort_by_key(|d| d["digest"].as_str().unwrap().to_string());
    assert_eq!(reply.json()["manifests"], json!(expected));

    let reply = alice.get(&format!("{path}?artifactType=application/vnd.example.sig"));
    reply.assert_status(200);
    assert_eq!(
        reply.header("OCI-Filters-Applied").as_deref(),
        Some("artifactType")
    );
    let manifests = reply.json()["manifests"].clone();
    assert_eq!(manifests.as_array().unwrap().len(), 1);
    assert_eq!(manifests[0]["digest"], json!(pushed[1].1));

    alice
        .get("/v2/app/referrers/sha256:abc")
        .assert_error(400, "DIGEST_INVALID");
    // Unknown repository or subject: still 200 with an empty index, never 404.
    let reply = alice.get(&format!("/v2/nothing/referrers/{subject}"));
    reply.assert_status(200);
    assert_eq!(reply.json()["manifests"], json!([]));
}

#[test]
fn end_12_deleting_a_referrer_removes_it_and_referrers_need_pull() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let image = alice.push_image("app", "v1", OCI_MANIFEST);
    let subject = digest_of(&image);
    let manifest = artifact(
        "application/vnd.example.sig",
        Some((&subject, image.len())),
        "x",
    );
    let digest = digest_of(&manifest);
    alice
        .put_manifest("app", &digest, OCI_MANIFEST, &manifest)
        .assert_status(201);
    let path = format!("/v2/app/referrers/{subject}");
    assert_eq!(
        alice.get(&path).json()["manifests"][0]["digest"],
        json!(digest)
    );

    alice
        .send("DELETE", &format!("/v2/app/manifests/{digest}"), &[], None)
        .assert_status(202);
    assert_eq!(alice.get(&path).json()["manifests"], json!([]));

    let bob = RegistryClient::new(&berth, Some("bob"));
    bob.get(&path).assert_error(403, "DENIED");
    RegistryClient::new(&berth, None)
        .get(&path)
        .assert_error(401, "UNAUTHORIZED");
}

// --- a multi-architecture image -----------------------------------------------------------

#[test]
fn multi_arch_index_pushed_and_pulled_by_tag_and_digest() {
    let berth = berth();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let amd64 = alice.push_image("multi", "amd64", OCI_MANIFEST);
    let arm64 = alice.push_image("multi", "arm64", OCI_MANIFEST);
    let index = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": digest_of(&amd64), "size": amd64.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": digest_of(&arm64), "size": arm64.len(),
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        ],
    }))
    .unwrap();
    let digest = digest_of(&index);
    alice
        .put_manifest("multi", "latest", OCI_INDEX, &index)
        .assert_status(201);

    for reference in ["latest", digest.as_str()] {
        let reply = alice.send(
            "GET",
            &format!("/v2/multi/manifests/{reference}"),
            &[("Accept", OCI_INDEX)],
            None,
        );
        reply.assert_status(200);
        assert_eq!(reply.body, index);
        assert_eq!(reply.header("Content-Type").as_deref(), Some(OCI_INDEX));
        assert_eq!(reply.header("Docker-Content-Digest"), Some(digest.clone()));
        for child in reply.json()["manifests"].as_array().unwrap() {
            let child = child["digest"].as_str().unwrap();
            alice
                .get(&format!("/v2/multi/manifests/{child}"))
                .assert_status(200);
        }
    }
    // A client that takes only image manifests cannot have the index.
    alice
        .send(
            "GET",
            "/v2/multi/manifests/latest",
            &[("Accept", OCI_MANIFEST)],
            None,
        )
        .assert_error(404, "MANIFEST_UNKNOWN");
}
