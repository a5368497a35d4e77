//! The Python `oras` client (ORAS's SDK from PyPI) against Berth, through TLS and basic auth:
//! it pushes an artifact, attaches a referrer with an `artifactType` and the empty config,
//! lists the referrers and pulls the artifact back.
//!
//! `tests/run-all.sh` makes a virtualenv with `oras` and names its interpreter in
//! `BERTH_ORAS_PYTHON`; without it this test fails rather than skip.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// What the script does with the client; prints one JSON line of findings at the end.
const SCRIPT: &str = r#"
import hashlib, json, os, sys
import oras.client, oras.defaults, oras.oci

EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
host, user, password, ca, work = sys.argv[1:6]
client = oras.client.OrasClient(hostname=host, tls_verify=ca, auth_backend="basic")
client.auth.set_basic_auth(user, password)
os.chdir(work)
repo = f"{host}/{user}/artifact"
base = f"https://{host}/v2/{user}/artifact"

# An artifact with one file, the way `oras push` makes it.
with open("hello.txt", "w") as f:
    f.write("hello from oras\n")
pushed = client.push(target=f"{repo}:v1", files=["hello.txt:text/plain"],
                     manifest_annotations={"org.example.kind": "greeting"}, quiet=True)
assert pushed.status_code == 201, pushed.text
accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
subject = client.do_request(f"{base}/manifests/v1", headers=accept)
assert subject.status_code == 200, subject.text
subject_digest = "sha256:" + hashlib.sha256(subject.content).hexdigest()

# A referrer: an artifactType, the empty config (never uploaded), one layer, a subject.
with open("signature.txt", "w") as f:
    f.write("signed by the test\n")
layer = oras.oci.NewLayer("signature.txt", media_type="application/vnd.example.signature.v1")
uploaded = client.upload_blob("signature.txt", client.get_container(repo), layer)
assert uploaded.status_code == 201, uploaded.text
referrer = oras.oci.NewManifest()
referrer["artifactType"] = "application/vnd.example.signature"
referrer["config"] = {"mediaType": "application/vnd.oci.empty.v1+json",
                      "digest": EMPTY_DIGEST, "size": 2}
referrer["layers"] = [layer]
referrer["subject"] = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": subject_digest, "size": len(subject.content)}
referrer["annotations"] = {"org.example.signer": "test"}
attached = client.upload_manifest(referrer, client.get_container(f"{repo}:signature"))
assert attached.status_code == 201, attached.text

listed = client.do_request(f"{base}/referrers/{subject_digest}")
filtered = client.do_request(
    f"{base}/referrers/{subject_digest}?artifactType=application/vnd.example.signature")
other = client.do_request(f"{base}/referrers/{subject_digest}?artifactType=text/plain")

files = client.pull(target=f"{repo}:v1", outdir="pulled")
tags = client.get_tags(f"{repo}")
print(json.dumps({
    "subject": subject_digest,
    "oci_subject": attached.headers.get("OCI-Subject"),
    "referrer": attached.headers.get("Docker-Content-Digest"),
    "listed": listed.json(),
    "listed_type": listed.headers.get("Content-Type"),
    "filtered": filtered.json(),
    "filters_applied": filtered.headers.get("OCI-Filters-Applied"),
    "other": other.json(),
    "pulled": [open(p).read() for p in files],
    "tags": tags,
}))
"#;

/// The interpreter of a virtualenv that has `oras`.
fn oras_python() -> PathBuf {
    if let Ok(python) = std::env::var("BERTH_ORAS_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/oras-venv/bin/python3");
    assert!(
        venv.exists(),
        "no Python with oras: run the suite with `bash tests/run-all.sh`, which makes \
         target/oras-venv (or set BERTH_ORAS_PYTHON)"
    );
    venv
}

#[test]
fn oras_pushes_an_artifact_attaches_a_referrer_and_lists_it() {
    let berth = Berth::start(&format!(
        "{}acl:\n  - {{users: [\"*\"], repos: [\"${{user}}/**\"], actions: [pull, push]}}\n",
        users_block(&["alice"])
    ));
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("oras_flow.py");
    std::fs::write(&script, SCRIPT).unwrap();

    // REQUESTS_CA_BUNDLE would override the CA the client is given; the test sets trust.
    let output = Command::new(oras_python())
        .arg(&script)
        .arg(berth.host())
        .arg("alice")
        .arg(PASSWORD)
        .arg(berth.ca_path())
        .arg(work.path())
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .expect("run the oras script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "oras script failed:\n{stdout}\n{}\nberth log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        berth.log()
    );
    let line = stdout.lines().last().expect("the script's findings");
    let found: serde_json::Value = serde_json::from_str(line).expect("findings are JSON");

    let subject = found["subject"].as_str().unwrap();
    assert_eq!(found["oci_subject"].as_str(), Some(subject));
    assert_eq!(found["listed_type"].as_str(), Some(OCI_INDEX));
    let manifests = found["listed"]["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{found}");
    assert_eq!(manifests[0]["digest"], found["referrer"]);
    assert_eq!(
        manifests[0]["artifactType"].as_str(),
        Some("application/vnd.example.signature")
    );
    assert_eq!(manifests[0]["annotations"]["org.example.signer"], "test");
    assert_eq!(found["filtered"]["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(found["filters_applied"].as_str(), Some("artifactType"));
    assert_eq!(found["other"]["manifests"], serde_json::json!([]));
    assert_eq!(found["pulled"], serde_json::json!(["hello from oras\n"]));
    assert_eq!(found["tags"], serde_json::json!(["signature", "v1"]));
}
