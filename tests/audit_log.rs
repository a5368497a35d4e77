//! The audit log after an end-to-end HTTP run, checked line by line: pushes, a re-push, a tag
//! move, an immutable tag refused on overwrite and on delete, and ACL refusals, each with who,
//! from where, what, the decision and the rule behind it, and never a secret.

mod common;

use common::{
    digest_of, image_manifest, users_block, Berth, RegistryClient, MANIFEST_ACCEPT, OCI_MANIFEST,
    PASSWORD,
};

/// alice may pull, push and delete `team/**`; bob may only pull it; `v*` tags are immutable.
fn config() -> String {
    format!(
        "{}\
         acl:\n  \
           - {{users: [alice], repos: [\"team/**\"], actions: [pull, push, delete]}}\n  \
           - {{users: [bob], repos: [\"team/**\"], actions: [pull]}}\n\
         immutable_tags:\n  \
           - {{repos: [\"**\"], tags: [\"v*\"]}}\n\
         audit: {{file: audit.log}}\n",
        users_block(&["alice", "bob"])
    )
}

/// A second image manifest in `repository`, different from the one `push_image` made.
fn another_manifest(alice: &RegistryClient, repository: &str, seed: &str) -> Vec<u8> {
    let config = alice.push_blob(repository, seed.as_bytes());
    let layer = format!("layer of {seed}").into_bytes();
    let layer = (alice.push_blob(repository, &layer), layer.len());
    image_manifest(OCI_MANIFEST, (&config, seed.len()), &[layer])
}

#[test]
fn audit_log_records_pushes_tag_moves_and_refusals() {
    let berth = Berth::start(&config());
    let alice = RegistryClient::new(&berth, Some("alice"));
    let bob = RegistryClient::new(&berth, Some("bob"));
    let anonymous = RegistryClient::new(&berth, None);

    // 1-2: alice pushes v1, and pushes the same manifest to v1 again (allowed: unchanged).
    let first = alice.push_image("team/app", "v1", OCI_MANIFEST);
    alice
        .put_manifest("team/app", "v1", OCI_MANIFEST, &first)
        .assert_status(201);
    // 3-4: latest is created, then moved to another manifest.
    alice
        .put_manifest("team/app", "latest", OCI_MANIFEST, &first)
        .assert_status(201);
    let second = another_manifest(&alice, "team/app", "second image");
    alice
        .put_manifest("team/app", "latest", OCI_MANIFEST, &second)
        .assert_status(201);
    // 5: v1 may not move.
    let refused = alice.put_manifest("team/app", "v1", OCI_MANIFEST, &second);
    refused.assert_error(403, "DENIED");
    let message = refused.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("tag v1 is immutable") && message.contains("immutable_tags rule 1"),
        "{message}"
    );
    // 6: nor be deleted.
    let delete = alice.send("DELETE", "/v2/team/app/manifests/v1", &[], None);
    delete.assert_error(403, "DENIED");
    // 7: bob may not push at all.
    let start = bob.send("POST", "/v2/team/app/blobs/uploads/", &[], None);
    start.assert_error(403, "DENIED");
    // 8: nor may anyone without credentials pull.
    let accept = [("Accept", MANIFEST_ACCEPT)];
    let pull = anonymous.send("GET", "/v2/team/app/manifests/v1", &accept, None);
    pull.assert_status(401);

    // v1 still names the first manifest.
    let fetched = alice.send("GET", "/v2/team/app/manifests/v1", &accept, None);
    assert_eq!(fetched.body, first);

    let text = std::fs::read_to_string(berth.dir.path().join("audit.log")).expect("audit.log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let (first, second) = (digest_of(&first), digest_of(&second));
    let null = serde_json::Value::Null;
    // event, user, reference, action, decision, rule, digest, previous
    type Row<'a> = (&'a str, Option<&'a str>, &'a str, &'a str, &'a str, &'a str);
    let expected: &[(Row, Option<&str>, Option<&str>)] = &[
        (
            ("push", Some("alice"), "v1", "push", "allow", "acl rule 1"),
            Some(&first),
            None,
        ),
        (
            ("push", Some("alice"), "v1", "push", "allow", "acl rule 1"),
            Some(&first),
            None,
        ),
        (
            (
                "push",
                Some("alice"),
                "latest",
                "push",
                "allow",
                "acl rule 1",
            ),
            Some(&first),
            None,
        ),
        (
            (
                "tag_move",
                Some("alice"),
                "latest",
                "push",
                "allow",
                "acl rule 1",
            ),
            Some(&second),
            Some(&first),
        ),
        (
            (
                "denied",
                Some("alice"),
                "v1",
                "push",
                "deny",
                "immutable_tags rule 1",
            ),
            None,
            None,
        ),
        (
            (
                "denied",
                Some("alice"),
                "v1",
                "delete",
                "deny",
                "immutable_tags rule 1",
            ),
            None,
            None,
        ),
        (
            ("denied", Some("bob"), "", "push", "deny", "acl rule 2"),
            None,
            None,
        ),
        (
            ("denied", None, "v1", "pull", "deny", "no rule matched"),
            None,
            None,
        ),
    ];
    assert_eq!(lines.len(), expected.len(), "audit log:\n{text}");

    for (line, (row, digest, previous)) in lines.iter().zip(expected) {
        let (event, user, reference, action, decision, rule) = *row;
        let context = format!("line {line}");
        assert_eq!(line["event"], event, "{context}");
        assert_eq!(line["user"].as_str(), user, "{context}");
        assert_eq!(line["repository"], "team/app", "{context}");
        let want_reference = if reference.is_empty() {
            null.clone()
        } else {
            serde_json::json!(reference)
        };
        assert_eq!(line["reference"], want_reference, "{context}");
        assert_eq!(line["action"], action, "{context}");
        assert_eq!(line["decision"], decision, "{context}");
        assert_eq!(line["rule"], rule, "{context}");
        assert_eq!(line["digest"].as_str(), *digest, "{context}");
        assert_eq!(line["previous"].as_str(), *previous, "{context}");
        let auth = if user.is_some() { "basic" } else { "anonymous" };
        assert_eq!(line["auth"], auth, "{context}");
        assert_eq!(line["client"], "127.0.0.1", "{context}");
        assert_eq!(line["config_generation"], 1, "{context}");
        let time = line["time"].as_str().expect("time");
        assert!(time.ends_with('Z') && time.len() == 24, "{context}");
    }
    assert_eq!(
        lines[4]["rule_text"], r#"{repos: ["**"], tags: ["v*"]}"#,
        "the refusal shows the rule as written"
    );
    assert_eq!(
        lines[6]["rule_text"],
        r#"{users: [bob], repos: ["team/**"], actions: [pull]}"#
    );
    assert_eq!(lines[7]["rule_text"], null);

    // Never a secret.
    for secret in [PASSWORD, "argon2", "Basic ", "authorization"] {
        assert!(!text.contains(secret), "audit log holds {secret:?}");
    }

    // Decisions are counted by action and result; denials keep their own counter too.
    let metrics = berth.metrics();
    let count = |selector: &str| common::metric_value(&metrics, selector);
    assert!(count(r#"berth_acl_decisions_total{action="push",result="allow"}"#) >= 5.0);
    assert_eq!(
        count(r#"berth_acl_decisions_total{action="push",result="deny"}"#),
        1.0
    );
    assert_eq!(
        count(r#"berth_acl_decisions_total{action="pull",result="deny"}"#),
        1.0
    );
    assert_eq!(count(r#"berth_acl_denials_total{action="push"}"#), 1.0);
}

#[test]
fn deletes_are_audited_and_cannot_remove_a_protected_tag_by_digest() {
    let berth = Berth::start_with_delete(false, &config());
    let alice = RegistryClient::new(&berth, Some("alice"));

    // v1 is protected; deleting its manifest by digest would remove v1 too.
    let protected = alice.push_image("team/app", "v1", OCI_MANIFEST);
    let by_digest = format!("/v2/team/app/manifests/{}", digest_of(&protected));
    alice
        .send("DELETE", &by_digest, &[], None)
        .assert_error(403, "DENIED");

    // An unprotected tag and a blob may go.
    let scratch = another_manifest(&alice, "team/app", "scratch image");
    alice
        .put_manifest("team/app", "scratch", OCI_MANIFEST, &scratch)
        .assert_status(201);
    alice
        .send("DELETE", "/v2/team/app/manifests/scratch", &[], None)
        .assert_status(202);
    let blob = alice.push_blob("team/app", b"a blob to delete");
    alice
        .send("DELETE", &format!("/v2/team/app/blobs/{blob}"), &[], None)
        .assert_status(202);

    let text = std::fs::read_to_string(berth.dir.path().join("audit.log")).expect("audit.log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let denied = lines
        .iter()
        .find(|line| line["event"] == "denied")
        .expect("denied line");
    assert_eq!(denied["rule"], "immutable_tags rule 1");
    assert_eq!(denied["action"], "delete");
    let deletes: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["event"] == "delete")
        .collect();
    assert_eq!(deletes.len(), 2, "{text}");
    assert_eq!(deletes[0]["reference"], "scratch");
    assert_eq!(deletes[0]["decision"], "allow");
    assert_eq!(deletes[1]["digest"], blob);
    assert_eq!(deletes[1]["user"], "alice");
}

#[test]
fn blobs_a_protected_tag_uses_cannot_be_deleted() {
    let berth = Berth::start_with_delete(false, &config());
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = alice.push_image("team/app", "v1", OCI_MANIFEST);
    let parsed: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let config_digest = parsed["config"]["digest"].as_str().unwrap();

    let reply = alice.send(
        "DELETE",
        &format!("/v2/team/app/blobs/{config_digest}"),
        &[],
        None,
    );
    reply.assert_error(403, "DENIED");
    assert!(
        reply.text().contains("tag v1 is immutable"),
        "{}",
        reply.describe()
    );

    // A blob no protected tag uses may go.
    let loose = alice.push_blob("team/app", b"nobody uses this");
    alice
        .send("DELETE", &format!("/v2/team/app/blobs/{loose}"), &[], None)
        .assert_status(202);
}
