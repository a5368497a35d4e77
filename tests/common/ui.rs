//! Driving the web UI over HTTP the way a browser would, without one: a cookie carried by
//! hand, the CSRF token read from the page, form posts with an `Origin` header.

use super::{sample_bytes, Berth, RegistryClient, Reply, PASSWORD};

/// A visitor of the UI: anonymous, or signed in with a session cookie.
pub struct UiVisitor {
    client: RegistryClient,
    origin: String,
    /// `__Host-berth-session=...`, once signed in.
    pub cookie: Option<String>,
}

impl UiVisitor {
    /// A visitor without a session.
    pub fn anonymous(berth: &Berth) -> UiVisitor {
        UiVisitor {
            client: RegistryClient::new(berth, None),
            origin: berth.url(),
            cookie: None,
        }
    }

    /// Signs in through the form as `user` with [`PASSWORD`]; asserts it worked.
    pub fn signed_in(berth: &Berth, user: &str) -> UiVisitor {
        let mut visitor = UiVisitor::anonymous(berth);
        let reply = visitor.sign_in(user, PASSWORD);
        reply.assert_status(303);
        let set_cookie = reply.header("Set-Cookie").expect("Set-Cookie on sign-in");
        let pair = set_cookie.split(';').next().unwrap().trim().to_string();
        visitor.cookie = Some(pair);
        visitor
    }

    /// Posts the sign-in form.
    pub fn sign_in(&self, user: &str, password: &str) -> Reply {
        self.post("/ui/login", &[("username", user), ("password", password)])
    }

    pub fn get(&self, path: &str) -> Reply {
        let mut headers = Vec::new();
        if let Some(cookie) = &self.cookie {
            headers.push(("Cookie", cookie.as_str()));
        }
        self.client.send("GET", path, &headers, None)
    }

    /// Posts a form from this origin.
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.post_from(path, fields, Some(&self.origin))
    }

    /// Posts a form with the given `Origin` header (or none).
    pub fn post_from(&self, path: &str, fields: &[(&str, &str)], origin: Option<&str>) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(cookie) = &self.cookie {
            headers.push(("Cookie", cookie.as_str()));
        }
        if let Some(origin) = origin {
            headers.push(("Origin", origin));
        }
        self.client
            .send("POST", path, &headers, Some(body.into_bytes()))
    }

    /// The CSRF token on the page at `path` (every page of a signed-in visitor has one).
    pub fn csrf(&self, path: &str) -> String {
        let page = self.get(path);
        page.assert_status(200);
        hidden_field(&page.text(), "csrf").expect("a csrf field on the page")
    }
}

/// The value of the first hidden input called `name` in `html`.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// Pushes an OCI image whose config carries `labels` and `env`, and whose manifest carries
/// `annotations`, tagged `tag`; returns (manifest digest, layer digests).
pub fn push_described_image(
    client: &RegistryClient,
    repository: &str,
    tag: &str,
    labels: serde_json::Value,
    env: &[&str],
    annotations: serde_json::Value,
) -> (String, Vec<String>) {
    let layer = sample_bytes(&format!("ui layer {repository}:{tag}"), 5000);
    let layer_digest = client.push_blob(repository, &layer);
    let config = serde_json::json!({
        "architecture": "arm64",
        "os": "linux",
        "created": "2024-05-01T12:00:00Z",
        "config": {"Env": env, "Labels": labels, "Entrypoint": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "2024-05-01T12:00:00Z", "created_by": "COPY hello /hello"}],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = client.push_blob(repository, &config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest, "size": layer.len()}],
        "annotations": annotations,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    let reply = client.put_manifest(repository, tag, media_type, &manifest);
    reply.assert_status(201);
    (super::digest_of(&manifest), vec![layer_digest])
}

/// Pushes an artifact (an empty config, one blob) whose `subject` is `subject`, by digest;
/// returns its digest.
pub fn push_referrer(client: &RegistryClient, repository: &str, subject: &str) -> String {
    let blob = b"signature bytes".to_vec();
    let blob_digest = client.push_blob(repository, &blob);
    let empty = b"{}".to_vec();
    let empty_digest = client.push_blob(repository, &empty);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
            "digest": empty_digest, "size": 2},
        "layers": [{"mediaType": "application/octet-stream",
            "digest": blob_digest, "size": blob.len()}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": subject, "size": 1},
        "annotations": {"org.example.signer": "<b>ci</b>"},
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let digest = super::digest_of(&manifest);
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    client
        .put_manifest(repository, &digest, media_type, &manifest)
        .assert_status(201);
    digest
}
