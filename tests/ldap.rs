//! Passwords checked against a real OpenLDAP server started by the suite: directory users sign
//! in (HTTP and `docker login`), groups from the directory decide ACL rules, injection
//! attempts and empty passwords are refused, and a directory that goes down gives 503 to
//! directory users while the users in proxy.yaml keep working.

mod common;

use common::docker::{write_image_context, Docker, DockerTrust};
use common::slapd::{Slapd, BASE_DN, SERVICE_DN, USER_PASSWORD};
use common::{users_block, wait_for_metric, Berth, RegistryClient, OCI_MANIFEST, PASSWORD};

/// alice and carol are in `devs`, bob is in no group; `ops` is a local user.
fn directory() -> Slapd {
    Slapd::start(&["alice", "bob", "carol"], &[("devs", &["alice", "carol"])])
}

fn start_berth(slapd: &Slapd) -> Berth {
    start_berth_with(slapd, "")
}

/// Like [`start_berth`], with `auth_extra` (YAML indented under `auth:`) beside `ldap`.
fn start_berth_with(slapd: &Slapd, auth_extra: &str) -> Berth {
    let body = format!(
        "{users}auth:\n{auth_extra}\
         \x20 ldap:\n\
         \x20   url: {url}\n\
         \x20   bind_dn: \"{SERVICE_DN}\"\n\
         \x20   bind_password_file: {password_file}\n\
         \x20   user_base: \"ou=people,{BASE_DN}\"\n\
         \x20   user_filter: \"(&(objectClass=inetOrgPerson)(uid={{user}}))\"\n\
         \x20   group_search: {{base: \"ou=groups,{BASE_DN}\", filter: \"(member={{dn}})\"}}\n\
         \x20   connect_timeout: 2s\n\
         \x20   operation_timeout: 2s\n\
         \x20   pool_size: 2\n\
         acl:\n\
         \x20 - {{groups: [devs], repos: [\"team/**\"], actions: [pull, push]}}\n\
         \x20 - {{users: [ops], repos: [\"team/**\"], actions: [pull, push]}}\n\
         \x20 - {{users: [\"*\"], repos: [\"${{user}}/**\"], actions: [pull, push]}}\n",
        users = users_block(&["ops"]),
        url = slapd.url(),
        password_file = slapd.service_password_file().display(),
    );
    Berth::start(&body)
}

#[test]
fn directory_users_sign_in_and_directory_groups_decide() {
    let mut slapd = directory();
    let berth = start_berth(&slapd);

    let alice = RegistryClient::with_password(&berth, "alice", USER_PASSWORD);
    alice.get("/v2/").assert_status(200);
    alice.push_image("team/app", "v1", OCI_MANIFEST);
    alice.get("/v2/team/app/manifests/v1").assert_status(200);
    // The second request is answered from the cache of recent successes.
    assert!(
        wait_for_metric(
            &berth,
            r#"berth_auth_attempts_total{method="ldap",outcome="cached"}"#,
            1.0
        ) >= 1.0
    );

    // bob signs in but is not in devs.
    let bob = RegistryClient::with_password(&berth, "bob", USER_PASSWORD);
    bob.get("/v2/").assert_status(200);
    bob.get("/v2/team/app/tags/list")
        .assert_error(403, "DENIED");
    bob.push_image("bob/tool", "v1", OCI_MANIFEST);

    // Wrong, empty and injected credentials are all plain 401s.
    let refused = [
        ("alice", "wrong password"),
        ("alice", ""),
        ("*)(uid=*", USER_PASSWORD),
        ("*", USER_PASSWORD),
        ("alice)(|(uid=*", USER_PASSWORD),
        ("nobody", USER_PASSWORD),
        ("svc", "service account secret"),
        // The directory finds alice for these; they are still not her spelling, so no rule
        // written for `alice` can be stepped around with them.
        ("Alice", USER_PASSWORD),
        ("ALICE", USER_PASSWORD),
        ("alice ", USER_PASSWORD),
    ];
    for (user, password) in refused {
        let client = RegistryClient::with_password(&berth, user, password);
        let reply = client.get("/v2/");
        assert_eq!(
            reply.status,
            401,
            "{user:?}/{password:?}: {}",
            reply.describe()
        );
    }
    assert!(
        !slapd.log().contains("uid=*)"),
        "an unescaped filter reached slapd"
    );

    // The directory goes down: a directory user not in the cache gets 503 …
    slapd.stop();
    let carol = RegistryClient::with_password(&berth, "carol", USER_PASSWORD);
    carol.get("/v2/").assert_error(503, "UNAVAILABLE");
    assert!(
        berth.metric("berth_ldap_unavailable_total") >= 1.0,
        "{}",
        berth.metrics()
    );
    assert!(
        berth.log().contains("ldap directory unavailable"),
        "{}",
        berth.log()
    );

    // … while the users of proxy.yaml are not locked out.
    let ops = RegistryClient::new(&berth, Some("ops"));
    ops.get("/v2/team/app/manifests/v1").assert_status(200);
    ops.push_image("team/app", "v2", OCI_MANIFEST);

    // The bind password never reaches the log.
    assert!(!berth.log().contains("service account secret"));
}

#[test]
fn directory_groups_hold_for_bearer_tokens() {
    let slapd = directory();
    let berth = start_berth_with(&slapd, "  token: {service: berth-ldap}\n");
    let client = berth.client();

    // alice may push to team/ only through the directory's devs group; the token she gets
    // must keep that group, or the registry would refuse what the token grants.
    let token: serde_json::Value = client
        .get(format!("{}/token", berth.url()))
        .query(&[
            ("service", "berth-ldap"),
            ("scope", "repository:team/app:pull,push"),
        ])
        .basic_auth("alice", Some(USER_PASSWORD))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = token["token"].as_str().expect("a token");
    let upload = client
        .post(format!("{}/v2/team/app/blobs/uploads/", berth.url()))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(upload.status(), 202, "{:?}", upload.text());
}

#[test]
fn docker_login_with_a_directory_user() {
    let docker = Docker::new();
    let mut slapd = directory();
    let berth = start_berth(&slapd);
    let _trust = DockerTrust::install(&berth);

    let context = tempfile::tempdir().unwrap();
    write_image_context(context.path(), 0);
    let image = format!("{}/team/hello:v1", berth.host());
    docker.build(context.path(), &image);

    // alice is in devs: login, push, pull.
    let login = docker.login(&berth.host(), "alice", USER_PASSWORD);
    assert!(login.success, "{}", login.describe());
    docker.ok(&["push", &image], Some(&berth));
    docker.ok(&["rmi", &image], None);
    docker.ok(&["pull", &image], Some(&berth));

    // bob signs in but the group rule does not cover him.
    let bob = Docker::new();
    let login = bob.login(&berth.host(), "bob", USER_PASSWORD);
    assert!(login.success, "{}", login.describe());
    let pulled = bob.run(&["pull", &image]);
    assert!(!pulled.success, "{}", pulled.describe());
    assert!(
        pulled.combined().contains("denied"),
        "{}",
        pulled.describe()
    );

    // Injection and empty passwords do not log in.
    let mallory = Docker::new();
    for (user, password) in [("*)(uid=*", USER_PASSWORD), ("alice", " ")] {
        let login = mallory.login(&berth.host(), user, password);
        assert!(!login.success, "{}", login.describe());
    }

    // Directory down: carol cannot log in; the local user still pushes.
    slapd.stop();
    let carol = Docker::new();
    let login = carol.login(&berth.host(), "carol", USER_PASSWORD);
    assert!(!login.success, "{}", login.describe());
    assert!(
        login.combined().contains("503") || login.combined().contains("unavailable"),
        "{}",
        login.describe()
    );

    let ops = Docker::new();
    let login = ops.login(&berth.host(), "ops", PASSWORD);
    assert!(login.success, "{}", login.describe());
    let second = format!("{}/team/hello:v2", berth.host());
    ops.ok(&["tag", &image, &second], None);
    ops.ok(&["push", &second], Some(&berth));
}
