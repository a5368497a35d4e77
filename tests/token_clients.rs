//! Real clients in token mode: the Docker CLI, podman and skopeo log in through Berth's token
//! endpoint, push and pull with bearer tokens, and a pull-only user is refused on push.
//!
//! Needs the private dockerd that `tests/run-all.sh` starts (`DOCKER_HOST`), and podman and
//! skopeo, which it installs.

mod common;

use std::process::{Command, Output};

use common::docker::{log_tail, write_image_context, Docker, DockerTrust};
use common::{users_block, Berth, PASSWORD};

/// alice may push `team/**`; bob may only pull it; anyone may pull `public/**`.
fn config() -> String {
    format!(
        "{}\
         auth: {{token: {{service: berth-test}}}}\n\
         acl:\n  \
           - {{users: [alice], repos: [\"team/**\", \"public/**\"], actions: [pull, push]}}\n  \
           - {{users: [bob], repos: [\"team/**\"], actions: [pull]}}\n  \
           - {{anonymous: true, repos: [\"public/**\"], actions: [pull]}}\n",
        users_block(&["alice", "bob"])
    )
}

#[test]
fn docker_logs_in_pushes_and_pulls_with_tokens() {
    let berth = Berth::start(&config());
    let _trust = DockerTrust::install(&berth);
    let alice = Docker::new();
    let image = format!("{}/team/app:v1", berth.host());
    let public = format!("{}/public/app:v1", berth.host());
    let context = tempfile::tempdir().unwrap();
    write_image_context(context.path(), 1024 * 1024);
    alice.build(context.path(), &image);
    alice.ok(&["tag", &image, &public], None);

    let wrong = alice.login(&berth.host(), "alice", "wrong password");
    assert!(
        !wrong.success,
        "login with a wrong password:\n{}",
        wrong.describe()
    );
    let login = alice.login(&berth.host(), "alice", PASSWORD);
    assert!(login.success, "{}{}", login.describe(), log_tail(&berth));

    // docker keeps the identity token from login, not the password.
    let config = std::fs::read_to_string(alice.config_dir().join("config.json")).unwrap();
    assert!(
        config.contains("identitytoken"),
        "no identity token stored:\n{config}"
    );

    let pushed = alice.ok(&["push", &image], Some(&berth)).digest();
    alice.ok(&["push", &public], Some(&berth));
    alice.ok(&["rmi", &image], None);
    let pulled = alice.ok(&["pull", &image], Some(&berth)).digest();
    assert_eq!(pulled, pushed);

    // bob's token grants pull only: his push is denied.
    let bob = Docker::new();
    assert!(bob.login(&berth.host(), "bob", PASSWORD).success);
    bob.ok(&["pull", &image], Some(&berth));
    let bobs = format!("{}/team/app:bob", berth.host());
    bob.ok(&["tag", &image, &bobs], None);
    let push = bob.run(&["push", &bobs]);
    assert!(!push.success, "pull-only user pushed:\n{}", push.describe());
    assert!(push.combined().contains("denied"), "{}", push.describe());

    // In token mode docker pulls public repositories without logging in.
    let anonymous = Docker::new();
    anonymous.run(&["rmi", &public]);
    anonymous.ok(&["pull", &public], Some(&berth));
    let closed = anonymous.run(&["pull", &image]);
    assert!(
        !closed.success,
        "anonymous pull of a team image:\n{}",
        closed.describe()
    );

    assert!(berth.metric("berth_tokens_issued_total{grant_type=\"refresh_token\"}") >= 1.0);
    for reference in [&image, &public, &bobs] {
        alice.run(&["rmi", reference]);
    }
}

/// Runs a client and returns its output; panics if it cannot be started at all.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("SSL_CERT_FILE")
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program} (run tests/run-all.sh): {error}"))
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn skopeo_and_podman_push_and_pull_with_tokens() {
    let berth = Berth::start(&config());
    let work = tempfile::tempdir().unwrap();
    let cert_dir = common::oci_layout::cert_dir(&berth.ca_path());
    let certs = cert_dir.path().display().to_string();
    let alice = format!("alice:{PASSWORD}");
    let bob = format!("bob:{PASSWORD}");

    // An OCI layout with one small image, made by hand: skopeo copies it in.
    let layout = work.path().join("layout");
    common::oci_layout::write_layout(&layout, "v1", false);
    let source = format!("oci:{}:v1", layout.display());
    let target = format!("docker://{}/team/skopeo:v1", berth.host());
    let copy = run(
        "skopeo",
        &[
            "copy",
            "--dest-cert-dir",
            &certs,
            "--dest-creds",
            &alice,
            &source,
            &target,
        ],
    );
    assert!(
        copy.status.success(),
        "{}{}",
        describe(&copy),
        log_tail(&berth)
    );
    let inspect = run(
        "skopeo",
        &["inspect", "--cert-dir", &certs, "--creds", &bob, &target],
    );
    assert!(inspect.status.success(), "{}", describe(&inspect));

    // bob may read but not write.
    let bobs_target = format!("docker://{}/team/skopeo:bob", berth.host());
    let refused = run(
        "skopeo",
        &[
            "copy",
            "--dest-cert-dir",
            &certs,
            "--dest-creds",
            &bob,
            &source,
            &bobs_target,
        ],
    );
    assert!(
        !refused.status.success(),
        "bob pushed:\n{}",
        describe(&refused)
    );
    let refusal = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(refusal.contains("denied"), "{}", describe(&refused));

    // podman logs in through the token endpoint, pulls what skopeo pushed and pushes a copy.
    let root = work.path().join("podman-root");
    let runroot = work.path().join("podman-runroot");
    let auth_file = work.path().join("podman-auth.json");
    let podman = |args: &[&str]| {
        let mut full = vec![
            "--root",
            root.to_str().unwrap(),
            "--runroot",
            runroot.to_str().unwrap(),
            "--storage-driver",
            "vfs",
        ];
        full.extend_from_slice(args);
        run("podman", &full)
    };
    let auth = auth_file.to_str().unwrap();
    let host = berth.host();
    let login = podman(&[
        "login",
        "--authfile",
        auth,
        "--cert-dir",
        &certs,
        "-u",
        "alice",
        "-p",
        PASSWORD,
        &host,
    ]);
    assert!(
        login.status.success(),
        "{}{}",
        describe(&login),
        log_tail(&berth)
    );
    let pulled_name = format!("{host}/team/skopeo:v1");
    let pull = podman(&[
        "pull",
        "--authfile",
        auth,
        "--cert-dir",
        &certs,
        &pulled_name,
    ]);
    assert!(
        pull.status.success(),
        "{}{}",
        describe(&pull),
        log_tail(&berth)
    );
    let pushed_name = format!("{host}/team/podman:v1");
    assert!(podman(&["tag", &pulled_name, &pushed_name])
        .status
        .success());
    let push = podman(&[
        "push",
        "--authfile",
        auth,
        "--cert-dir",
        &certs,
        &pushed_name,
    ]);
    assert!(
        push.status.success(),
        "{}{}",
        describe(&push),
        log_tail(&berth)
    );

    let tags = run(
        "skopeo",
        &[
            "list-tags",
            "--cert-dir",
            &certs,
            "--creds",
            &bob,
            &format!("docker://{host}/team/podman"),
        ],
    );
    assert!(
        String::from_utf8_lossy(&tags.stdout).contains("\"v1\""),
        "{}",
        describe(&tags)
    );
    assert!(berth.metric("berth_token_verifications_total{result=\"valid\"}") >= 3.0);
}
