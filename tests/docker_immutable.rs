//! Immutable tags with the real Docker client: a `v*` tag can be pushed, pushed again
//! unchanged, but not overwritten with another image; docker shows the refusal and the rule.
//! Other tags still move freely.
//!
//! Needs the private dockerd that `tests/run-all.sh` starts (`DOCKER_HOST`); without it the
//! test fails and says so.

mod common;

use std::path::Path;

use common::docker::{log_tail, Docker, DockerTrust};
use common::{users_block, Berth, PASSWORD};

/// A build context for a `FROM scratch` image holding one small file with `content`.
fn image_context(dir: &Path, content: &str) {
    std::fs::write(dir.join("greeting.txt"), content).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY greeting.txt /greeting.txt\n",
    )
    .unwrap();
}

#[test]
fn docker_cannot_overwrite_an_immutable_tag() {
    let docker = Docker::new();
    let berth = Berth::start(&format!(
        "{}acl:\n  \
           - {{users: [alice], repos: [\"team/**\"], actions: [pull, push]}}\n\
         immutable_tags:\n  \
           - {{repos: [\"team/**\"], tags: [\"v*\"]}}\n\
         audit: {{file: audit.log}}\n",
        users_block(&["alice"])
    ));
    let _trust = DockerTrust::install(&berth);
    let login = docker.login(&berth.host(), "alice", PASSWORD);
    assert!(login.success, "{}{}", login.describe(), log_tail(&berth));

    let release = format!("{}/team/app:v1", berth.host());
    let latest = format!("{}/team/app:latest", berth.host());
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    image_context(first.path(), "first release\n");
    image_context(second.path(), "second build\n");

    // v1 is pushed once, and pushing the same image again is fine.
    docker.build(first.path(), &release);
    let pushed = docker.ok(&["push", &release], Some(&berth)).digest();
    docker.ok(&["push", &release], Some(&berth));

    // Another image under v1 is refused, and docker says why.
    docker.build(second.path(), &release);
    let refused = docker.run(&["push", &release]);
    assert!(
        !refused.success,
        "overwrote an immutable tag:\n{}",
        refused.describe()
    );
    let said = refused.combined();
    assert!(
        said.contains("denied") && said.contains("tag v1 is immutable"),
        "docker did not show the refusal:\n{}{}",
        refused.describe(),
        log_tail(&berth)
    );
    assert!(said.contains("immutable_tags rule 1"), "{said}");

    // v1 still names the first image.
    docker.ok(&["rmi", &release], None);
    let pulled = docker.ok(&["pull", &release], Some(&berth)).digest();
    assert_eq!(pulled, pushed, "v1 changed");

    // A tag no rule protects moves freely.
    docker.build(first.path(), &latest);
    docker.ok(&["push", &latest], Some(&berth));
    docker.build(second.path(), &latest);
    docker.ok(&["push", &latest], Some(&berth));

    let audit = std::fs::read_to_string(berth.dir.path().join("audit.log")).unwrap();
    let events: Vec<String> = audit
        .lines()
        .map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            format!("{} {}", line["event"], line["reference"])
        })
        .collect();
    assert_eq!(
        events,
        [
            r#""push" "v1""#,
            r#""push" "v1""#,
            r#""denied" "v1""#,
            r#""push" "latest""#,
            r#""tag_move" "latest""#,
        ],
        "audit log:\n{audit}"
    );

    for image in [&release, &latest] {
        docker.run(&["rmi", image]);
    }
}
