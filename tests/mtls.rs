//! Client certificates (mutual TLS): the handshake refuses certificates that are missing
//! (when required), untrusted, expired or revoked; a verified certificate is an identity the
//! ACL judges like any user; the listener's policy combines it with passwords; the client CA
//! bundle is reloaded while serving; and the Docker CLI pushes and pulls with a certificate
//! from `/etc/docker/certs.d` and no password.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::docker::{log_tail, write_image_context, Docker, DockerTrust};
use common::netns::TestHost;
use common::pki::{ClientCa, ClientCert};
use common::ui::UiVisitor;
use common::{berth_binary, users_block, Berth, RegistryClient, OCI_MANIFEST, PASSWORD};

const REVOKED_SERIAL: u64 = 666;

/// A Berth whose listener trusts the dev CA and a test client CA (with a CRL revoking
/// [`REVOKED_SERIAL`]), in `mode` with `policy`; groups come from OU values.
fn start(ca: &ClientCa, mode: &str, policy: &str, body: &str) -> Berth {
    let dir = tempfile::tempdir().unwrap();
    let tls = prepare(&dir, ca, mode, policy);
    Berth::start_with_tls(dir, &tls, body)
}

/// Writes the client CA and CRL into `dir`; returns the `tls:` section's value.
fn prepare(dir: &tempfile::TempDir, ca: &ClientCa, mode: &str, policy: &str) -> String {
    std::fs::write(dir.path().join("clients-ca.crt"), ca.cert_pem()).unwrap();
    let crl = ca.crl_pem(&[REVOKED_SERIAL]);
    std::fs::write(dir.path().join("clients.crl"), crl).unwrap();
    format!(
        "{{cert: certs/server.crt, key: certs/server.key, client_auth: {{mode: {mode}, \
         ca: [certs/ca.crt, clients-ca.crt], crl: [clients.crl], groups_from: ou, \
         policy: {policy}}}}}"
    )
}

/// Rules keyed on certificate subjects and OU groups, and a local user `alice`.
fn acl_body() -> String {
    format!(
        "{users}acl:\n\
         \x20 - {{users: [ci], repos: [\"release/**\"], actions: [pull]}}\n\
         \x20 - {{groups: [builders], repos: [\"team/**\"], actions: [pull, push]}}\n\
         \x20 - {{users: [\"*\"], repos: [\"${{user}}/**\"], actions: [pull, push, delete]}}\n",
        users = users_block(&["alice", "ci"])
    )
}

fn with_cert(berth: &Berth, cert: &ClientCert, credential: Option<(&str, &str)>) -> RegistryClient {
    let client = berth.client_with_identity(&cert.cert_pem, &cert.key_pem);
    RegistryClient::over(berth, client, credential)
}

/// Runs `berth certs client NAME` against `berth`'s config; returns the certificate.
fn dev_client_cert(berth: &Berth, name: &str) -> ClientCert {
    let output = Command::new(berth_binary())
        .args(["certs", "client", name, "--config"])
        .arg(berth.dir.path().join("proxy.yaml"))
        .output()
        .expect("run berth certs client");
    assert!(
        output.status.success(),
        "berth certs client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let certs = berth.dir.path().join("certs");
    ClientCert {
        cert_pem: std::fs::read_to_string(certs.join(format!("{name}.crt"))).unwrap(),
        key_pem: std::fs::read_to_string(certs.join(format!("{name}.key"))).unwrap(),
        serial: 0,
    }
}

#[test]
fn handshake_refuses_missing_untrusted_expired_and_revoked_certificates() {
    let ca = ClientCa::new("Berth test client CA");
    let berth = start(&ca, "required", "either", &acl_body());

    let good = with_cert(&berth, &ca.issue("ci", &["builders"], 1), None);
    good.get("/v2/").assert_status(200);

    let none = RegistryClient::new(&berth, Some("alice"));
    assert!(
        none.try_get("/v2/").is_err(),
        "no certificate must fail the handshake"
    );

    let stranger = ClientCa::new("Someone else's CA");
    let refused = [
        ("untrusted", stranger.issue("ci", &["builders"], 2)),
        ("expired", ca.issue_expired("ci", 3)),
        ("revoked", ca.issue("ci", &["builders"], REVOKED_SERIAL)),
    ];
    for (what, cert) in refused {
        let client = with_cert(&berth, &cert, None);
        match client.try_get("/v2/") {
            Err(_) => {}
            Ok(reply) => panic!("{what} certificate was accepted: {}", reply.describe()),
        }
    }

    // The development CA's client certificates, made by `berth certs client`, are trusted.
    let robot = dev_client_cert(&berth, "robot");
    with_cert(&berth, &robot, None)
        .get("/v2/")
        .assert_status(200);
}

#[test]
fn acl_rules_match_certificate_subjects_and_groups() {
    let ca = ClientCa::new("Berth test client CA");
    let berth = start(&ca, "required", "either", &acl_body());
    let ci = with_cert(&berth, &ca.issue("ci", &["builders"], 10), None);
    let outsider = with_cert(&berth, &ca.issue("dana", &[], 11), None);

    // Subject rule: ci may pull from release/ but not push.
    ci.get("/v2/release/app/tags/list")
        .assert_error(404, "NAME_UNKNOWN");
    ci.send("POST", "/v2/release/app/blobs/uploads/", &[], None)
        .assert_error(403, "DENIED");

    // Group rule (OU=builders): ci pushes to team/, dana (no OU) may not even look.
    ci.push_image("team/app", "v1", OCI_MANIFEST);
    ci.get("/v2/team/app/manifests/v1").assert_status(200);
    outsider
        .get("/v2/team/app/tags/list")
        .assert_error(403, "DENIED");

    // Everyone owns their own namespace, certificate users included.
    outsider.push_image("dana/tool", "v1", OCI_MANIFEST);
    ci.get("/v2/dana/tool/tags/list")
        .assert_error(403, "DENIED");

    let metrics = berth.metrics();
    let successes = common::metric_value(
        &metrics,
        r#"berth_auth_attempts_total{method="certificate",outcome="success"}"#,
    );
    assert!(successes > 0.0, "{metrics}");
}

#[test]
fn policies_combine_certificates_and_passwords() {
    let ca = ClientCa::new("Berth test client CA");
    let ci_cert = ca.issue("ci", &[], 20);
    // (policy, certificate only, password only, certificate + same user's password, the
    // web UI's sign-in form with a password and no certificate)
    let rows = [
        ("either", 200, 200, 200, 303),
        ("certificate", 200, 401, 200, 401),
        ("certificate_and_password", 401, 401, 200, 401),
    ];
    for (policy, cert_only, password_only, both, form_sign_in) in rows {
        let berth = start(&ca, "optional", policy, &acl_body());
        let status = |client: RegistryClient| client.get("/v2/").status;

        assert_eq!(
            status(with_cert(&berth, &ci_cert, None)),
            cert_only,
            "{policy}"
        );
        let password = RegistryClient::new(&berth, Some("ci"));
        assert_eq!(status(password), password_only, "{policy}");
        let combined = with_cert(&berth, &ci_cert, Some(("ci", PASSWORD)));
        assert_eq!(status(combined), both, "{policy}");
        let form = UiVisitor::anonymous(&berth).sign_in("ci", PASSWORD);
        assert_eq!(form.status, form_sign_in, "{policy}: {}", form.text());

        // A certificate and a password for someone else are refused, never merged.
        let mismatch = with_cert(&berth, &ci_cert, Some(("alice", PASSWORD)));
        mismatch.get("/v2/").assert_error(401, "UNAUTHORIZED");
        // A wrong password next to a good certificate is not ignored.
        let wrong = with_cert(&berth, &ci_cert, Some(("ci", "wrong")));
        wrong.get("/v2/").assert_status(401);
        // Optional mode: no certificate and no password is anonymous.
        RegistryClient::new(&berth, None)
            .get("/v2/")
            .assert_status(401);
    }
}

#[test]
fn client_ca_bundle_reloads_without_restart() {
    let old_ca = ClientCa::new("Old client CA");
    let berth = start(&old_ca, "required", "either", &acl_body());
    let old_cert = old_ca.issue("ci", &[], 30);
    let old_client = with_cert(&berth, &old_cert, None);
    old_client.get("/v2/").assert_status(200);

    let new_ca = ClientCa::new("New client CA");
    let new_client = with_cert(&berth, &new_ca.issue("ci", &[], 31), None);
    assert!(new_client.try_get("/v2/").is_err());

    // Replace the bundle the way deploy tools do: write aside, then rename over.
    let bundle = berth.dir.path().join("clients-ca.crt");
    let staged = berth.dir.path().join("clients-ca.crt.new");
    std::fs::write(&staged, new_ca.cert_pem()).unwrap();
    std::fs::rename(&staged, &bundle).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while new_client.try_get("/v2/").is_err() {
        assert!(
            Instant::now() < deadline,
            "new client CA not picked up; log:\n{}",
            berth.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(berth.log().contains("client CA bundle and CRLs reloaded"));

    // A connection verified before the reload stays usable; new handshakes with the old
    // CA's certificate are refused.
    old_client.get("/v2/").assert_status(200);
    let fresh_old = with_cert(&berth, &old_cert, None);
    assert!(fresh_old.try_get("/v2/").is_err());

    // A broken bundle is logged and the working one kept.
    std::fs::write(&bundle, "not a certificate").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !berth.log().contains("failed to reload client CA bundle") {
        assert!(Instant::now() < deadline, "log:\n{}", berth.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    with_cert(&berth, &new_ca.issue("ci", &[], 32), None)
        .get("/v2/")
        .assert_status(200);
}

#[test]
fn server_certificate_reloads_without_restart() {
    let ca = ClientCa::new("Berth test client CA");
    let body = format!(
        "{}acl:\n  - {{users: [\"*\"], repos: [\"x\"], actions: [pull]}}\n",
        users_block(&["alice"])
    );
    let berth = start(&ca, "off", "either", &body);
    let client = RegistryClient::new(&berth, Some("alice"));
    client.get("/v2/").assert_status(200);

    // A certificate from another CA: clients trusting only the dev CA must now refuse it.
    let other = ClientCa::new("Unrelated server CA");
    let server = other.issue("localhost", &[], 40);
    let certs = berth.dir.path().join("certs");
    std::fs::write(certs.join("server.key"), &server.key_pem).unwrap();
    std::fs::write(certs.join("server.crt"), &server.cert_pem).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while !berth.log().contains("server certificate reloaded") {
        assert!(Instant::now() < deadline, "log:\n{}", berth.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let fresh = RegistryClient::new(&berth, Some("alice"));
    assert!(
        fresh.try_get("/v2/").is_err(),
        "old trust must not accept the new cert"
    );
}

#[test]
fn docker_with_a_client_certificate_pushes_and_pulls_without_a_password() {
    let docker = Docker::new();
    let ca = ClientCa::new("Berth test client CA");

    // dockerd treats registries on 127.0.0.0/8 as insecure and then never presents the
    // certs.d client certificate, so this Berth runs in a network namespace of its own and
    // listens on that test host's address, with a server certificate for it from a stand-in
    // development CA. dockerd reaches it over the test host's veth link.
    let host = TestHost::new();
    let dir = tempfile::tempdir().unwrap();
    let dev_ca = ClientCa::new("Stand-in development CA");
    let server = dev_ca.issue_server(host.ip());
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), dev_ca.cert_pem()).unwrap();
    std::fs::write(certs.join("ca.key"), dev_ca.key_pem()).unwrap();
    std::fs::write(certs.join("server.crt"), &server.cert_pem).unwrap();
    std::fs::write(certs.join("server.key"), &server.key_pem).unwrap();
    let tls = prepare(&dir, &ca, "required", "either");
    let berth = Berth::start_in_host(dir, host, &tls, &acl_body());
    let ci = dev_client_cert(&berth, "ci");
    let trust = DockerTrust::install_with_client(&berth, &ci.cert_pem, &ci.key_pem);

    let context = tempfile::tempdir().unwrap();
    write_image_context(context.path(), 0);
    let image = format!("{}/ci/hello:v1", berth.host());
    docker.build(context.path(), &image);

    // No `docker login`: the certificate is the identity.
    docker.ok(&["push", &image], Some(&berth));
    docker.ok(&["rmi", &image], None);
    docker.ok(&["pull", &image], Some(&berth));

    // The subject rule allows pulling from release/ and nothing more.
    let release = format!("{}/release/hello:v1", berth.host());
    docker.ok(&["tag", &image, &release], None);
    let denied = docker.run(&["push", &release]);
    let why = || format!("{}{}", denied.describe(), log_tail(&berth));
    assert!(!denied.success, "{}", why());
    assert!(denied.combined().contains("denied"), "{}", why());

    // Without a certificate, or with a bad one, docker cannot even connect.
    let stranger = ClientCa::new("Someone else's CA").issue("ci", &[], 50);
    let expired = ca.issue_expired("ci", 51);
    let revoked = ca.issue("ci", &[], REVOKED_SERIAL);
    let cases = [
        ("no certificate", None),
        ("untrusted", Some(&stranger)),
        ("expired", Some(&expired)),
        ("revoked", Some(&revoked)),
    ];
    for (what, cert) in cases {
        trust.set_client(cert.map(|c| (c.cert_pem.as_str(), c.key_pem.as_str())));
        let _ = docker.run(&["rmi", &image]);
        let pulled = docker.run(&["pull", &image]);
        assert!(
            !pulled.success,
            "{what}: {}{}",
            pulled.describe(),
            log_tail(&berth)
        );
    }
}
