//! The web UI end to end in a real browser: Debian's chromium, driven by playwright-core
//! from `tests/ui/browser.mjs`, against `berth serve` holding images that the real Docker
//! client pushed. The script signs in, searches, opens a repository and a manifest, deletes
//! a tag as an allowed user and fails to as a refused one, and reports what it saw; this
//! test checks that against what docker pushed. Screenshots of every page land in
//! `target/ui-screenshots/`.
//!
//! Needs the private dockerd of `tests/run-all.sh` (`DOCKER_HOST`), node, `/usr/bin/chromium`
//! and `npm ci` done in `tests/ui/` (run-all does all of this); without any of them the test
//! fails and says which.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::docker::{write_image_context, Docker, DockerTrust};
use common::ui::push_described_image;
use common::{users_block, Berth, RegistryClient, MANIFEST_ACCEPT, PASSWORD};

/// alice may do anything in `shop/**` and `vault/**`; bob may only pull `shop/**`.
fn config() -> String {
    format!(
        "{}\
         acl:\n  \
           - {{users: [alice], repos: [\"shop/**\", \"vault/**\"], \
                actions: [pull, push, delete]}}\n  \
           - {{users: [bob], repos: [\"shop/**\"], actions: [pull]}}\n",
        users_block(&["alice", "bob"])
    )
}

const SCRIPT: &str = "<script>window.pwned = true; alert('pwned')</script>";

#[test]
fn browse_search_and_delete_in_chromium() {
    let browser = BrowserTools::find();
    let docker = Docker::new();
    let berth = Berth::start_with_delete(false, &config());
    let _trust = DockerTrust::install(&berth);
    let login = docker.login(&berth.host(), "alice", PASSWORD);
    assert!(login.success, "{}", login.describe());

    // An image with two layers and a label holding a script, pushed as :v1 and :old, and
    // one bob must never see.
    let context = tempfile::tempdir().unwrap();
    write_image_context(context.path(), 256 * 1024);
    let dockerfile = context.path().join("Dockerfile");
    let mut text = std::fs::read_to_string(&dockerfile).unwrap();
    text.push_str(&format!("LABEL org.example.note=\"{SCRIPT}\"\n"));
    std::fs::write(&dockerfile, text).unwrap();
    let image = format!("{}/shop/web", berth.host());
    docker.build(context.path(), &format!("{image}:v1"));
    docker.ok(
        &["tag", &format!("{image}:v1"), &format!("{image}:old")],
        None,
    );
    let pushed = docker
        .ok(&["push", &format!("{image}:v1")], Some(&berth))
        .digest();
    docker.ok(&["push", &format!("{image}:old")], Some(&berth));
    let hidden = format!("{}/vault/keys:v1", berth.host());
    docker.ok(&["tag", &format!("{image}:v1"), &hidden], None);
    docker.ok(&["push", &hidden], Some(&berth));

    // What docker pushed, as the registry serves it to docker.
    let alice = RegistryClient::new(&berth, Some("alice"));
    let manifest = alice
        .send(
            "GET",
            "/v2/shop/web/manifests/v1",
            &[("Accept", MANIFEST_ACCEPT)],
            None,
        )
        .json();
    let pushed_layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap().to_string())
        .collect();
    let inspect = docker.ok(
        &[
            "image",
            "inspect",
            "--format",
            "{{len .RootFS.Layers}}",
            &format!("{image}:v1"),
        ],
        None,
    );
    assert_eq!(inspect.stdout.trim(), pushed_layers.len().to_string());

    // An annotation can't come from `docker build`; this one is pushed over HTTP.
    let (notes_digest, _) = push_described_image(
        &alice,
        "shop/notes",
        "v1",
        serde_json::json!({ "org.example.note": SCRIPT }),
        &["PATH=/bin"],
        serde_json::json!({ "org.opencontainers.image.description": SCRIPT }),
    );

    let shots = screenshot_dir();
    let seen = browser.run(&[
        ("BERTH_URL", berth.url()),
        ("BERTH_PASSWORD", PASSWORD.to_string()),
        ("BERTH_REPOSITORY", "shop/web".to_string()),
        ("BERTH_NOTES_REPOSITORY", "shop/notes".to_string()),
        ("BERTH_NOTES_DIGEST", notes_digest),
        ("BERTH_HIDDEN_REPOSITORY", "vault/keys".to_string()),
        ("BERTH_SCREENSHOTS", shots.display().to_string()),
    ]);
    let report = |what: &str| format!("{what}; the browser saw: {seen:#}");
    let strings = |key: &str| -> Vec<String> {
        seen[key]
            .as_array()
            .unwrap_or_else(|| panic!("{}", report(&format!("no {key}"))))
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect()
    };

    // Anonymous visitors see nothing; alice sees all three; search narrows.
    assert!(
        strings("anonymousRepositories").is_empty(),
        "{}",
        report("anonymous")
    );
    assert_eq!(
        strings("aliceRepositories"),
        ["shop/notes", "shop/web", "vault/keys"]
    );
    assert!(seen["wrongPasswordAlert"]
        .as_str()
        .unwrap_or("")
        .contains("wrong user name or password"));
    assert_eq!(
        strings("searchContains"),
        ["shop/web"],
        "{}",
        report("search")
    );
    assert!(
        strings("searchPrefix").is_empty(),
        "{}",
        report("prefix search")
    );

    // The repository page and the manifest page show what docker pushed.
    let mut tags = strings("tags");
    tags.sort();
    assert_eq!(tags, ["old", "v1"]);
    assert_eq!(
        seen["pullLine"].as_str().unwrap().trim(),
        format!("docker pull {}/shop/web:v1", berth.host())
    );
    assert_eq!(seen["manifestDigest"].as_str().unwrap().trim(), pushed);
    assert_eq!(strings("layers"), pushed_layers, "{}", report("layers"));
    assert!(seen["platform"].as_str().unwrap().contains("linux/"));

    // Scripts in labels and annotations are text.
    let injection = &seen["injection"];
    for place in ["labels", "annotations"] {
        let text = injection[place].as_str().unwrap_or("");
        assert!(
            text.contains(SCRIPT),
            "{}",
            report(&format!("{place} text"))
        );
    }
    assert_eq!(injection["pwned"], false, "{}", report("script ran"));
    assert_eq!(injection["scripts"].as_array().unwrap().len(), 1);
    assert!(
        strings("dialogs").is_empty(),
        "{}",
        report("an alert opened")
    );

    // alice deleted :old through the confirmation.
    assert!(seen["deletedNotice"].as_str().unwrap_or("").contains("old"));
    assert_eq!(strings("tagsAfterDelete"), ["v1"]);
    let registry_tags = alice.get("/v2/shop/web/tags/list").json();
    assert_eq!(registry_tags["tags"], serde_json::json!(["v1"]));
    assert_eq!(
        seen["phoneOverflow"],
        false,
        "{}",
        report("page wider than a phone")
    );

    // bob: no hidden repository, no delete button, refused confirmation and post.
    assert_eq!(strings("bobRepositories"), ["shop/notes", "shop/web"]);
    assert_eq!(seen["bobDeleteLinks"], 0);
    assert_eq!(seen["bobConfirmStatus"], 403);
    assert_eq!(seen["bobPostStatus"], 403);
    assert_eq!(seen["bobHiddenStatus"], 404);
    assert_eq!(strings("bobTags"), ["v1"]);
    assert_eq!(seen["signedOut"], true);
    assert!(
        strings("consoleErrors").is_empty(),
        "{}",
        report("console errors (a CSP violation?)")
    );

    for name in [
        "01-anonymous",
        "05-repository",
        "06-manifest",
        "12-bob-refused",
    ] {
        let file = shots.join(format!("{name}.png"));
        assert!(file.is_file(), "no screenshot {}", file.display());
    }
}

/// node, chromium and the npm packages of `tests/ui`, checked before anything starts.
struct BrowserTools {
    script_dir: PathBuf,
    chromium: PathBuf,
}

impl BrowserTools {
    /// # Panics
    /// When a tool is missing, naming it and how to get it.
    fn find() -> BrowserTools {
        let script_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
        let node = Command::new("node").arg("--version").output();
        assert!(
            node.is_ok_and(|out| out.status.success()),
            "node is missing: install Debian's nodejs and npm, or run `bash tests/run-all.sh`"
        );
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let chromium = PathBuf::from(chromium);
        assert!(
            chromium.is_file(),
            "{} is missing: `apt-get install chromium`, or run `bash tests/run-all.sh`",
            chromium.display()
        );
        let playwright = script_dir.join("node_modules/playwright-core/package.json");
        assert!(
            playwright.is_file(),
            "playwright-core is not installed: run `npm ci` in {} (tests/run-all.sh does)",
            script_dir.display()
        );
        BrowserTools {
            script_dir,
            chromium,
        }
    }

    /// Runs `browser.mjs` with `vars`; returns the JSON it printed.
    fn run(&self, vars: &[(&str, String)]) -> serde_json::Value {
        let output = Command::new("node")
            .arg("browser.mjs")
            .current_dir(&self.script_dir)
            .env("CHROMIUM", &self.chromium)
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("run node");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "browser.mjs failed\n--- stderr\n{stderr}\n--- stdout\n{stdout}"
        );
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("browser.mjs printed no JSON ({e}): {stdout}"))
    }
}

/// `target/ui-screenshots/`, emptied.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("ui-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the screenshot dir");
    dir
}
