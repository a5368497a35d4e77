//! The web UI over HTTPS against a real `berth serve`, without a browser: sign-in and the
//! session cookie's flags, CSRF and same-origin checks on deletes, cache headers, HTML
//! escaping of user input, the ACL filtering of pages and of the JSON API, search, secret
//! environment values, referrers, metrics, and the repository list over ten thousand
//! repositories.

mod common;

use std::time::Instant;

use common::ui::{hidden_field, push_described_image, push_referrer, UiVisitor};
use common::{hash_password, users_block, Berth, RegistryClient, OCI_MANIFEST};

const ACL: &str = r#"acl:
  - {users: [bob], repos: ["team/**"], actions: [pull]}
  - {users: [alice], repos: ["team/**"], actions: [pull, push, delete]}
  - {users: ["*"], repos: ["${user}/**"], actions: [pull, push, delete]}
  - {users: [alice], repos: ["secret/**", "public/**"], actions: [pull, push]}
  - {anonymous: true, repos: ["public/**"], actions: [pull]}
"#;

/// A server that serves deletes (`storage.delete.enabled`), as the delete tests need.
fn start() -> Berth {
    let body = format!("{}{ACL}", users_block(&["alice", "bob", "carol"]));
    Berth::start_with_delete(false, &body)
}

/// alice pushes team/app:v1 and :v2, secret/vault:v1, public/base:v1 and alice/tools:v1;
/// carol pushes carol/own:v1.
fn push_sample_images(berth: &Berth) {
    let alice = RegistryClient::new(berth, Some("alice"));
    for (repository, tag) in [
        ("team/app", "v1"),
        ("team/app", "v2"),
        ("secret/vault", "v1"),
        ("alice/tools", "v1"),
        ("public/base", "v1"),
    ] {
        alice.push_image(repository, tag, OCI_MANIFEST);
    }
    let carol = RegistryClient::new(berth, Some("carol"));
    carol.push_image("carol/own", "v1", OCI_MANIFEST);
}

#[test]
fn sign_in_sets_a_strict_session_cookie_and_sign_out_ends_it() {
    let berth = start();
    let visitor = UiVisitor::anonymous(&berth);

    let form = visitor.get("/ui/login");
    form.assert_status(200);
    assert_eq!(form.header("Cache-Control").as_deref(), Some("no-store"));
    let policy = form.header("Content-Security-Policy").expect("CSP");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert_eq!(form.header("X-Frame-Options").as_deref(), Some("DENY"));

    let refused = visitor.sign_in("alice", "not the password");
    refused.assert_status(401);
    assert!(refused.header("Set-Cookie").is_none());
    assert!(refused.text().contains("wrong user name or password"));
    let unknown = visitor.sign_in("mallory", "whatever");
    unknown.assert_status(401);

    let accepted = visitor.sign_in("alice", common::PASSWORD);
    accepted.assert_status(303);
    assert_eq!(accepted.header("Location").as_deref(), Some("/ui/"));
    let cookie = accepted.header("Set-Cookie").unwrap();
    for flag in [
        "__Host-berth-session=",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let id = cookie.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert_eq!(id.len(), 64, "a 256-bit id in hex");

    let alice = UiVisitor::signed_in(&berth, "alice");
    let page = alice.get("/ui/");
    assert!(page.text().contains("Signed in as <strong>alice</strong>"));
    let csrf = hidden_field(&page.text(), "csrf").unwrap();

    // Signing out needs the token too, then the cookie is worthless.
    alice
        .post("/ui/logout", &[("csrf", "wrong")])
        .assert_status(403);
    let out = alice.post("/ui/logout", &[("csrf", &csrf)]);
    out.assert_status(303);
    assert!(out.header("Set-Cookie").unwrap().contains("Max-Age=0"));
    assert!(!alice.get("/ui/").text().contains("Signed in as"));

    // The form's own counter.
    let metrics = berth.metrics();
    assert!(metrics.contains(r#"berth_auth_attempts_total{method="form",outcome="failure"} 2"#));
}

#[test]
fn a_new_password_or_a_removal_ends_open_sessions() {
    let berth = start();
    let alice = UiVisitor::signed_in(&berth, "alice");
    let bob = UiVisitor::signed_in(&berth, "bob");
    let carol = UiVisitor::signed_in(&berth, "carol");
    let signed_in = |visitor: &UiVisitor| visitor.get("/ui/").text().contains("Signed in as");
    assert!(signed_in(&alice) && signed_in(&bob) && signed_in(&carol));

    // alice gets a new password and carol leaves; bob's line stays as it was.
    let path = berth.dir.path().join("proxy.yaml");
    let config = std::fs::read_to_string(&path).unwrap();
    let new_hash = hash_password("a brand new password");
    let renewed: String = config
        .lines()
        .filter(|line| !line.starts_with("  carol: "))
        .map(|line| match line.starts_with("  alice: ") {
            true => format!("  alice: \"{new_hash}\"\n"),
            false => format!("{line}\n"),
        })
        .collect();
    std::fs::write(&path, renewed).unwrap();

    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while signed_in(&alice) || signed_in(&carol) {
        assert!(Instant::now() < deadline, "a session outlived its password");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(signed_in(&bob), "bob's unchanged password lost its session");
}

#[test]
fn static_assets_are_fingerprinted_and_cached_for_a_year() {
    let berth = start();
    let page = UiVisitor::anonymous(&berth).get("/ui/login").text();
    let start = page.find("/ui/static/berth.").unwrap();
    let end = page[start..].find('"').unwrap() + start;
    let css = &page[start..end];
    assert!(css.ends_with(".css"), "{css}");

    let reply = UiVisitor::anonymous(&berth).get(css);
    reply.assert_status(200);
    assert_eq!(
        reply.header("Cache-Control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert!(reply
        .header("Content-Type")
        .unwrap()
        .starts_with("text/css"));
    UiVisitor::anonymous(&berth)
        .get("/ui/static/berth.000000000000.css")
        .assert_status(404);

    // The site root leads to the UI.
    let root = UiVisitor::anonymous(&berth).get("/");
    root.assert_status(303);
    assert_eq!(root.header("Location").as_deref(), Some("/ui/"));
}

#[test]
fn deletes_need_the_session_token_same_origin_and_the_acl() {
    let berth = start();
    push_sample_images(&berth);
    let alice = UiVisitor::signed_in(&berth, "alice");
    let bob = UiVisitor::signed_in(&berth, "bob");
    let target = "/ui/repo/team/app/-/delete";

    // Anonymous: team/app does not exist for them; public/base does, and signing in might
    // allow deleting there, so they are sent to sign in.
    let anonymous = UiVisitor::anonymous(&berth);
    anonymous.post(target, &[("tag", "v1")]).assert_status(401);
    anonymous
        .get("/ui/repo/team/app/-/delete?tag=v1")
        .assert_status(404);
    let confirm = anonymous.get("/ui/repo/public/base/-/delete?tag=v1");
    confirm.assert_status(303);
    assert!(confirm
        .header("Location")
        .unwrap()
        .starts_with("/ui/login?next="));

    // alice: without the token, with a forged one, or from another origin: refused.
    let csrf = alice.csrf("/ui/repo/team/app/-/delete?tag=v1");
    alice.post(target, &[("tag", "v1")]).assert_status(403);
    alice
        .post(target, &[("tag", "v1"), ("csrf", "0".repeat(64).as_str())])
        .assert_status(403);
    let evil = Some("https://evil.example");
    alice
        .post_from(target, &[("tag", "v1"), ("csrf", &csrf)], evil)
        .assert_status(403);
    // Basic credentials alone never delete through the UI: browsers replay them unasked.
    let basic = RegistryClient::new(&berth, Some("alice"));
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    basic
        .send("POST", target, &form, Some(b"tag=v1".to_vec()))
        .assert_status(403);
    let tags = || RegistryClient::new(&berth, Some("alice")).get("/v2/team/app/tags/list");
    assert_eq!(tags().json()["tags"], serde_json::json!(["v1", "v2"]));

    // bob may pull team/app but not delete: no button, no confirmation, no delete.
    let page = bob.get("/ui/repo/team/app").text();
    assert!(!page.contains("/-/delete"), "bob sees a delete link");
    bob.get("/ui/repo/team/app/-/delete?tag=v1")
        .assert_status(403);
    let bob_csrf = bob.csrf("/ui/");
    bob.post(target, &[("tag", "v1"), ("csrf", &bob_csrf)])
        .assert_status(403);
    assert_eq!(tags().json()["tags"], serde_json::json!(["v1", "v2"]));

    // alice, properly.
    let done = alice.post(target, &[("tag", "v1"), ("csrf", &csrf)]);
    done.assert_status(303);
    assert_eq!(
        done.header("Location").as_deref(),
        Some("/ui/repo/team/app?deleted=v1")
    );
    assert_eq!(tags().json()["tags"], serde_json::json!(["v2"]));
    let page = alice.get("/ui/repo/team/app?deleted=v1").text();
    assert!(page.contains("Deleted <strong>v1</strong>"));

    // A whole manifest, by digest, takes its tags with it.
    let digest = RegistryClient::new(&berth, Some("alice"))
        .head("/v2/team/app/manifests/v2")
        .header("Docker-Content-Digest")
        .unwrap();
    let page = alice.get(&format!("/ui/repo/team/app/-/delete?digest={digest}"));
    page.assert_status(200);
    assert!(page.text().contains("together with its tags"));
    alice
        .post(target, &[("digest", &digest), ("csrf", &csrf)])
        .assert_status(303);
    assert_eq!(tags().json()["tags"], serde_json::json!([]));

    // The list reflects it at once (the index was told).
    let listed = alice.get("/ui/api/repositories?q=team/app").json();
    assert_eq!(listed["repositories"][0]["tag_count"], 0);
}

#[test]
fn ui_deletes_keep_immutable_tags_are_audited_and_sessions_follow_reloads() {
    let config = |devs: &str| {
        format!(
            "{users}groups: {{devs: [{devs}]}}\n\
             immutable_tags:\n  - {{repos: [\"**\"], tags: [\"v*\"]}}\n\
             audit: {{file: audit.log}}\n\
             acl:\n  - {{groups: [devs], repos: [\"team/**\"], actions: [pull, push, delete]}}\n",
            users = users_block(&["alice", "bob"])
        )
    };
    let berth = Berth::start_with_delete(false, &config("alice"));
    let pusher = RegistryClient::new(&berth, Some("alice"));
    pusher.push_image("team/app", "v1", OCI_MANIFEST);
    pusher.push_image("team/app", "latest", OCI_MANIFEST);
    let v1 = pusher
        .head("/v2/team/app/manifests/v1")
        .header("Docker-Content-Digest")
        .unwrap();
    let alice = UiVisitor::signed_in(&berth, "alice");
    let csrf = alice.csrf("/ui/repo/team/app");
    let target = "/ui/repo/team/app/-/delete";

    // The protected tag survives by name and by its manifest's digest, with the rule named.
    for field in [("tag", "v1"), ("digest", v1.as_str())] {
        let refused = alice.post(target, &[field, ("csrf", &csrf)]);
        refused.assert_status(403);
        assert!(
            refused.text().contains("immutable_tags rule 1"),
            "{}",
            refused.text()
        );
    }
    alice
        .post(target, &[("tag", "latest"), ("csrf", &csrf)])
        .assert_status(303);
    let tags = pusher.get("/v2/team/app/tags/list").json();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));

    // Each attempt is in the audit log, as through the registry API.
    let audit = std::fs::read_to_string(berth.dir.path().join("audit.log")).unwrap();
    let deletes: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|event: &serde_json::Value| event["action"] == "delete")
        .collect();
    let summary: Vec<(String, String, String)> = deletes
        .iter()
        .map(|event| {
            let text = |key: &str| event[key].as_str().unwrap_or_default().to_string();
            (text("event"), text("reference"), text("rule"))
        })
        .collect();
    let expected = [
        ("denied", "v1", "immutable_tags rule 1"),
        ("denied", v1.as_str(), "immutable_tags rule 1"),
        ("delete", "latest", "acl rule 1"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(summary, expected, "audit log:\n{audit}");
    assert!(deletes
        .iter()
        .all(|event| event["user"] == "alice" && event["client"] == "127.0.0.1"));

    // alice leaves devs: her open session loses team/ with the next reload, as her
    // password would.
    berth.write_config(&config("bob"));
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while alice.get("/ui/repo/team/app").status != 404 {
        assert!(Instant::now() < deadline, "the session kept its old groups");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn pages_and_the_json_api_show_only_what_the_acl_lets_each_visitor_pull() {
    let berth = start();
    push_sample_images(&berth);
    let names = |visitor: &UiVisitor| -> Vec<String> {
        let reply = visitor.get("/ui/api/repositories");
        reply.assert_status(200);
        assert_eq!(reply.header("Cache-Control").as_deref(), Some("no-store"));
        reply.json()["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["name"].as_str().unwrap().to_string())
            .collect()
    };

    let alice = UiVisitor::signed_in(&berth, "alice");
    let bob = UiVisitor::signed_in(&berth, "bob");
    let carol = UiVisitor::signed_in(&berth, "carol");
    let anonymous = UiVisitor::anonymous(&berth);
    let every = ["alice/tools", "public/base", "secret/vault", "team/app"];
    assert_eq!(names(&alice), every);
    assert_eq!(names(&bob), ["team/app"]);
    assert_eq!(names(&carol), ["carol/own"]);
    assert_eq!(names(&anonymous), ["public/base"]);

    // A hidden repository is missing, on pages and in the API alike.
    for path in ["/ui/repo/secret/vault", "/ui/api/repo/secret/vault"] {
        bob.get(path).assert_status(404);
        let text = bob.get(path).text();
        assert!(!text.contains("v1"), "{path} leaks: {text}");
    }
    alice.get("/ui/repo/secret/vault").assert_status(200);
    assert!(!bob.get("/ui/").text().contains("secret/vault"));

    // The API also takes the registry's own credentials.
    let basic = RegistryClient::new(&berth, Some("bob")).get("/ui/api/repositories");
    assert_eq!(basic.json()["total"], 1);

    // Search: repositories by substring or prefix, and tags.
    let search = alice.get("/ui/api/search?q=app").json();
    assert_eq!(search["repositories"], serde_json::json!(["team/app"]));
    let prefix = alice.get("/ui/api/search?q=app&match=prefix").json();
    assert_eq!(prefix["repositories"], serde_json::json!([]));
    let tags = bob.get("/ui/api/search?q=v2").json();
    assert_eq!(
        tags["tags"],
        serde_json::json!([{"repository": "team/app", "tag": "v2"}])
    );
    let page = alice.get("/ui/?q=te&match=prefix").text();
    assert!(page.contains("team/app") && !page.contains("alice/tools"));

    // Repository details in the API.
    let repo = alice.get("/ui/api/repo/team/app").json();
    assert_eq!(repo["can_delete"], true);
    let first = &repo["tags"][0];
    assert!(first["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(first["media_type"], OCI_MANIFEST);
    assert!(first["size"].as_u64().unwrap() > 3000);
    assert_eq!(bob.get("/ui/api/repo/team/app").json()["can_delete"], false);
}

#[test]
fn labels_annotations_and_environment_render_as_text() {
    let berth = start();
    let alice = RegistryClient::new(&berth, Some("alice"));
    let script = "<script>alert('pwned')</script>";
    let (digest, layers) = push_described_image(
        &alice,
        "alice/web",
        "v1",
        serde_json::json!({"org.example.note": script, "maintainer": "alice"}),
        &["PATH=/usr/bin", "DB_PASSWORD=hunter2", "API_TOKEN=abc123"],
        serde_json::json!({"org.opencontainers.image.description": script}),
    );
    let referrer = push_referrer(&alice, "alice/web", &digest);

    let visitor = UiVisitor::signed_in(&berth, "alice");
    let page = visitor.get(&format!("/ui/repo/alice/web/-/manifest/{digest}"));
    page.assert_status(200);
    let html = page.text();
    assert!(!html.contains("<script>alert"), "unescaped script in page");
    assert!(!html.contains("<b>ci</b>"), "unescaped annotation in page");
    let escaped = html.matches("&lt;script&gt;alert(").count();
    assert!(
        escaped >= 2,
        "label and annotation shown escaped ({escaped})"
    );
    assert!(html.contains("/usr/bin"));
    assert!(
        !html.contains("hunter2") && !html.contains("abc123"),
        "secret shown"
    );
    assert!(html.contains(&layers[0]), "layer digest listed");
    assert!(html.contains("linux/arm64"));
    assert!(html.contains("COPY hello /hello"), "history");
    assert!(html.contains(&referrer[7..19]), "referrer listed");

    let api = visitor
        .get(&format!("/ui/api/repo/alice/web/-/manifest/{digest}"))
        .json();
    assert_eq!(api["config"]["labels"]["org.example.note"], script);
    assert_eq!(api["referrers"][0]["digest"], referrer.as_str());
    assert_eq!(
        api["referrers"][0]["artifact_type"],
        "application/vnd.example.signature"
    );
    let env = api["config"]["env"].to_string();
    assert!(!env.contains("hunter2"), "{env}");
}

#[test]
fn ui_requests_are_counted_under_their_own_route() {
    let berth = start();
    let visitor = UiVisitor::anonymous(&berth);
    visitor.get("/ui/").assert_status(200);
    visitor.get("/ui/repo/nothing/here").assert_status(404);
    let ok = common::wait_for_metric(
        &berth,
        r#"berth_http_requests_total{method="GET",route="ui",status="200"}"#,
        1.0,
    );
    assert_eq!(ok, 1.0);
    let missing =
        berth.metric(r#"berth_http_requests_total{method="GET",route="ui",status="404"}"#);
    assert_eq!(missing, 1.0);
}

/// Ten thousand repositories written straight into the data directory (one tag each), then
/// the list, a search and the last page, timed. Prints the numbers; the bounds are loose
/// enough for a debug build on a busy two-core machine.
#[test]
fn ten_thousand_repositories_list_and_search_quickly() {
    const COUNT: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let generated = Instant::now();
    write_many_repositories(&dir.path().join("data"), COUNT);
    let generated = generated.elapsed();

    let body = format!(
        "{}acl:\n  - {{users: [\"*\"], repos: [\"**\"], actions: [pull]}}\n",
        users_block(&["alice"])
    );
    let berth = Berth::start_in(dir, &body);
    let alice = RegistryClient::new(&berth, Some("alice"));
    let time = |path: &str| {
        let started = Instant::now();
        let reply = alice.get(path);
        reply.assert_status(200);
        (started.elapsed(), reply)
    };

    let (first, reply) = time("/ui/api/repositories?per_page=50");
    assert_eq!(reply.json()["total"], COUNT);
    let (warm, _) = time("/ui/?sort=name");
    let (sorted, reply) = time("/ui/api/repositories?sort=pushed&page=200");
    assert_eq!(reply.json()["repositories"].as_array().unwrap().len(), 50);
    let (search, reply) = time("/ui/api/search?q=group-42/app-0042");
    assert_eq!(reply.json()["repositories"].as_array().unwrap().len(), 1);
    let (substring, reply) = time("/ui/api/repositories?q=app-00");
    assert!(reply.json()["total"].as_u64().unwrap() >= 100);
    eprintln!(
        "{COUNT} repositories: generated in {generated:?}; first list (builds the index) \
         {first:?}; list page {warm:?}; sorted by push, page 200 {sorted:?}; \
         search {search:?}; substring filter {substring:?}"
    );
    assert!(warm.as_secs_f64() < 2.0, "list page took {warm:?}");
    assert!(search.as_secs_f64() < 2.0, "search took {search:?}");
}

/// `count` repositories `group-NN/app-NNNN`, each with tag `latest` naming one shared image.
fn write_many_repositories(root: &std::path::Path, count: usize) {
    let v2 = root.join("docker/registry/v2");
    let blob = |bytes: &[u8]| -> String {
        let digest = common::digest_of(bytes);
        let path = v2.join(common::blob_data_path(&digest));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        digest
    };
    let config = blob(br#"{"architecture":"amd64","os":"linux"}"#);
    let layer = blob(&common::sample_bytes("many", 4096));
    let manifest = common::image_manifest(OCI_MANIFEST, (&config, 38), &[(layer.clone(), 4096)]);
    let manifest = blob(&manifest);
    let link = |path: std::path::PathBuf, digest: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, digest).unwrap();
    };
    for n in 0..count {
        let repo = v2.join(format!("repositories/group-{:02}/app-{n:04}", n % 100));
        for digest in [&config, &layer] {
            let hex = &digest[7..];
            link(repo.join(format!("_layers/sha256/{hex}/link")), digest);
        }
        let hex = &manifest[7..];
        let manifests = repo.join("_manifests");
        link(
            manifests.join(format!("revisions/sha256/{hex}/link")),
            &manifest,
        );
        link(manifests.join("tags/latest/current/link"), &manifest);
        link(
            manifests.join(format!("tags/latest/index/sha256/{hex}/link")),
            &manifest,
        );
    }
}
