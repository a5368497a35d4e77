//! `berth check` and `berth acl explain` run as commands, with their exit codes and output.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{berth_binary, hash_password, users_block, Berth, PASSWORD};

const HEADER: &str =
    "listen: 127.0.0.1:5443\ntls: {cert: certs/server.crt, key: certs/server.key}\n\
                      storage: {filesystem: {root: data}}\n";

/// A config file in a fresh temp dir holding `body` after [`HEADER`] (3 lines).
fn config_file(body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.yaml");
    std::fs::write(&path, format!("{HEADER}{body}")).unwrap();
    (dir, path)
}

fn berth(args: &[&str], config: &Path) -> (bool, String, String) {
    let output: Output = Command::new(berth_binary())
        .args(args)
        .arg(config)
        .output()
        .expect("run berth");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const POLICY: &str = "\
groups:\n  \
  devs: [alice, bob]\n  \
  ops: [carol]\n  \
  qa: []\n\
acl:\n  \
  - {users: [bob], repos: [\"team/**\"], actions: [pull]}\n  \
  - {groups: [devs], repos: [\"team/**\"], actions: [pull, push]}\n  \
  - {users: [mallory], repos: [\"**\"], deny: [push, delete]}\n  \
  - {groups: [ops, qa], repos: [\"${group}/**\"], actions: [pull, push]}\n\
public: [\"public/**\"]\n\
immutable_tags:\n  \
  - {repos: [\"**\"], tags: [\"v*\"]}\n";

#[test]
fn check_says_ok_for_a_valid_file() {
    let (_dir, path) = config_file(&format!("{}{POLICY}groups_unused: 1\n", users_block(&[])));
    // An unknown key fails...
    let (ok, _, stderr) = berth(&["check"], &path);
    assert!(!ok);
    assert!(stderr.contains("unknown field `groups_unused`"), "{stderr}");

    // ...and the same file without it passes.
    let (_dir, path) = config_file(&format!(
        "users:\n  alice: \"{}\"\n{POLICY}",
        hash_password(PASSWORD)
    ));
    let (ok, stdout, stderr) = berth(&["check"], &path);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("proxy.yaml: OK (1 users, 3 groups, 4 acl rules"),
        "{stdout}"
    );
}

#[test]
fn check_reports_every_problem_with_line_and_column() {
    let body = "groups: {devs: [alice]}\n\
                acl:\n  \
                  - {groups: [devs, nope], repos: [\"a/**\"], actions: []}\n  \
                  - repos: [\"b\"]\n    \
                    actions: [pull]\n  \
                  - {users: [x], repos: [c], actions: [push], deny: [push]}\n\
                audit: {file: a.log, stdout: true}\n";
    let (_dir, path) = config_file(body);
    let (ok, stdout, stderr) = berth(&["check"], &path);
    assert!(!ok, "{stdout}");
    let file = path.display().to_string();
    let expected = [
        format!("{file}:6:45: acl rule 1 has no actions"),
        format!("{file}:6:21: acl rule 1 names unknown group \"nope\""),
        format!("{file}:7:5: acl rule 2 applies to nobody"),
        format!("{file}:9:47: acl rule 3 both allows and denies push"),
        format!("{file}:10:1: audit takes either file or stdout, not both"),
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    for (line, want) in lines.iter().zip(&expected) {
        assert!(line.starts_with(want.as_str()), "{line:?} is not {want:?}");
    }
    assert_eq!(lines.len(), expected.len() + 1, "{stderr}");
    assert!(lines[expected.len()].contains("a reload would keep the running configuration"));
}

#[test]
fn check_reports_syntax_errors_and_bad_hashes_with_line_and_column() {
    let cases = [
        (
            "acl:\n  - {users: [a], repos: [x], actions: [pull]\n",
            ":6:1: did not find",
        ),
        (
            "users:\n  alice: \"$2b$12$abc\"\n",
            ":5:3: users: not an argon2 PHC string",
        ),
        (
            "acl:\n  - {users: [a], repos: [\"x/**y\"], actions: [pull]}\n",
            ":5:25: acl[0].repos: invalid repository pattern \"x/**y\"",
        ),
        (
            "acl:\n  - {users: [a], repos: [x], actions: [pull, fly]}\n",
            ":5:",
        ),
    ];
    for (body, want) in cases {
        let (_dir, path) = config_file(body);
        let (ok, _, stderr) = berth(&["check"], &path);
        assert!(!ok, "{body}");
        assert!(stderr.contains(want), "{want:?} not in:\n{stderr}");
    }
}

#[test]
fn check_prints_what_a_reload_would_log() {
    let server = Berth::start(&users_block(&["alice"]));
    let broken = "acl:\n  - {groups: [nope], repos: [x], actions: [pull]}\n";
    server.write_config(broken);
    let failed = r#"berth_config_reloads_total{result="failure"}"#;
    assert_eq!(common::wait_for_metric(&server, failed, 1.0), 1.0);

    let (ok, _, stderr) = berth(&["check"], &server.config_path());
    assert!(!ok);
    let problem = stderr.lines().next().unwrap();
    assert!(problem.contains("unknown group \"nope\""), "{stderr}");
    assert!(
        server.log().contains(problem),
        "{problem:?} not in the server's log:\n{}",
        server.log()
    );
}

/// `berth acl explain ARGS --config FILE`.
fn explain(args: &[&str], config: &Path) -> String {
    let mut all = vec!["acl", "explain"];
    all.extend_from_slice(args);
    all.push("--config");
    let (ok, stdout, stderr) = berth(&all, config);
    assert!(ok, "{stderr}");
    stdout
}

#[test]
fn explain_prints_the_decision_and_the_rule_behind_it() {
    let (_dir, path) = config_file(&format!("{}{POLICY}", users_block(&["alice", "bob"])));
    let rows: &[(&[&str], &str)] = &[
        (
            &["--user", "alice", "--repo", "team/app", "--action", "push"],
            "ALLOW: user alice (groups: devs) may push team/app\n  \
             by acl rule 2: {groups: [devs], repos: [\"team/**\"], actions: [pull, push]}\n",
        ),
        (
            &["--user", "bob", "--repo", "team/app", "--action", "push"],
            "DENY: user bob (groups: devs) may not push team/app\n  \
             by acl rule 1: {users: [bob], repos: [\"team/**\"], actions: [pull]}\n",
        ),
        (
            &["--user", "alice", "--repo", "other/app", "--action", "pull"],
            "DENY: user alice (groups: devs) may not pull other/app\n  \
             no rule matched: what no rule allows is refused\n",
        ),
        (
            &["--anonymous", "--repo", "public/base", "--action", "pull"],
            "ALLOW: an anonymous caller may pull public/base\n  \
             by public pattern 1: \"public/**\"\n",
        ),
        (
            // --group adds to the groups the config gives.
            &[
                "--user", "alice", "--group", "qa", "--repo", "qa/suite", "--action", "push",
            ],
            "ALLOW: user alice (groups: devs, qa) may push qa/suite\n  \
             by acl rule 4: {groups: [ops, qa], repos: [\"${group}/**\"], \
             actions: [pull, push]}\n",
        ),
        (
            &[
                "--user", "alice", "--repo", "team/app", "--action", "push", "--tag", "v2",
            ],
            "ALLOW: user alice (groups: devs) may push team/app\n  \
             by acl rule 2: {groups: [devs], repos: [\"team/**\"], actions: [pull, push]}\n  \
             tag v2 is immutable: once pushed it cannot be moved or deleted\n  \
             by immutable_tags rule 1: {repos: [\"**\"], tags: [\"v*\"]}\n",
        ),
    ];
    for (args, expected) in rows {
        assert_eq!(explain(args, &path), *expected, "{args:?}");
    }

    // A name not under users: is explained, with a note that it cannot sign in.
    let mallory = explain(
        &["--user", "mallory", "--repo", "x", "--action", "delete"],
        &path,
    );
    assert!(
        mallory.starts_with("note: mallory is not under users:"),
        "{mallory}"
    );
    assert!(mallory
        .contains("by acl rule 3: {users: [mallory], repos: [\"**\"], deny: [push, delete]}"));
}

#[test]
fn explain_refuses_a_broken_config_and_bad_arguments() {
    let (_dir, path) = config_file("acl:\n  - {groups: [nope], repos: [x], actions: [pull]}\n");
    let args = [
        "acl", "explain", "--user", "a", "--repo", "x", "--action", "pull", "--config",
    ];
    let (ok, _, stderr) = berth(&args, &path);
    assert!(!ok);
    assert!(
        stderr.contains(":5:15: acl rule 1 names unknown group"),
        "{stderr}"
    );

    let args = [
        "acl", "explain", "--user", "a", "--repo", "x", "--action", "fly", "--config",
    ];
    let (ok, _, stderr) = berth(&args, &path);
    assert!(!ok);
    assert!(stderr.contains("use pull, push or delete"), "{stderr}");

    // A name the registry would refuse gets no answer that could mislead.
    for repo in ["team/../x", "Team/app", "team//app"] {
        let args = [
            "acl", "explain", "--user", "a", "--repo", repo, "--action", "pull", "--config",
        ];
        let (ok, _, stderr) = berth(&args, &path);
        assert!(!ok, "{repo}");
        assert!(stderr.contains("not a repository name"), "{repo}: {stderr}");
    }
}

#[test]
fn check_refuses_what_a_reload_would_refuse_without_creating_files() {
    // An audit file in a folder that does not exist.
    let (dir, path) = config_file("audit: {file: no/such/folder/audit.log}\n");
    let (ok, _, stderr) = berth(&["check"], &path);
    assert!(!ok, "check accepted an audit file it cannot open");
    assert!(stderr.contains("audit.log"), "{stderr}");

    // A realm that cannot go into a header.
    let (_dir2, path2) = config_file("realm: \"my \\\"realm\\\"\"\n");
    let (ok, _, stderr) = berth(&["check"], &path2);
    assert!(!ok, "check accepted a realm with quotes");
    assert!(stderr.contains("realm"), "{stderr}");

    // Token settings with no key yet pass (serve makes one), and check makes none.
    std::fs::write(
        &path,
        format!("{HEADER}auth: {{token: {{service: reg}}}}\naudit: {{file: audit.log}}\n"),
    )
    .unwrap();
    let (ok, stdout, stderr) = berth(&["check"], &path);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        !dir.path().join("certs/token.key").exists(),
        "check made a key"
    );
    assert!(
        !dir.path().join("audit.log").exists(),
        "check made the audit file"
    );
}
