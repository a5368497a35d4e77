//! The Docker Registry token protocol, step by step over HTTP, as docker, containerd and
//! podman speak it: challenges, the token endpoint's GET and POST forms, refresh tokens,
//! trusted outside issuers, and every kind of forged or misused token refused.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::{users_block, Berth, RegistryClient, OCI_MANIFEST, PASSWORD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};

const SERVICE: &str = "berth-test";

/// alice may push and pull `team/**`; bob may only pull it; anyone may pull `public/**`.
/// A trusted outside issuer `ci` signs with `ci.pem`.
fn config(extra_token_settings: &str) -> String {
    format!(
        "{users}\
         auth:\n  token:\n    service: {SERVICE}\n{extra_token_settings}\
         acl:\n  \
           - {{users: [alice], repos: [\"team/**\"], actions: [pull, push]}}\n  \
           - {{users: [bob], repos: [\"team/**\"], actions: [pull]}}\n  \
           - {{anonymous: true, repos: [\"public/**\"], actions: [pull]}}\n",
        users = users_block(&["alice", "bob"])
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims like Berth's own, for `sub` with `access`, valid now.
fn claims(iss: &str, aud: &str, sub: &str, access: Value) -> Value {
    json!({
        "iss": iss, "sub": sub, "aud": aud,
        "exp": now() + 300, "nbf": now() - 1, "iat": now(),
        "jti": "test", "access": access,
    })
}

fn repository_access(name: &str, actions: &[&str]) -> Value {
    json!([{ "type": "repository", "name": name, "actions": actions }])
}

/// Signs `claims` with Berth's own ES256 key, as only Berth should be able to.
fn sign_as_berth(berth: &Berth, claims: &Value) -> String {
    let pem = std::fs::read(berth.dir.path().join("certs/token.key")).unwrap();
    let key = EncodingKey::from_ec_pem(&pem).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &key).unwrap()
}

fn token_from(response: Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().unwrap();
    body["token"]
        .as_str()
        .expect("token in response")
        .to_string()
}

fn get_token(berth: &Berth, client: &Client, user: Option<&str>, scopes: &[&str]) -> Value {
    let mut query = vec![("service", SERVICE.to_string())];
    query.extend(scopes.iter().map(|s| ("scope", s.to_string())));
    let mut request = client.get(format!("{}/token", berth.url())).query(&query);
    if let Some(user) = user {
        request = request.basic_auth(user, Some(PASSWORD));
    }
    let response = request.send().unwrap();
    assert_eq!(response.status(), StatusCode::OK, "token request refused");
    response.json().unwrap()
}

/// The claims of a token, read without checking it (the test only looks).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn with_bearer(client: &Client, url: String, token: &str) -> Response {
    client.get(url).bearer_auth(token).send().unwrap()
}

fn challenge(response: &Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The refusal every bad token gets: 401 and an `invalid_token` bearer challenge.
fn assert_invalid_token(response: Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = challenge(&response);
    assert!(challenge.starts_with("Bearer realm=\""), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[test]
fn challenges_name_the_realm_service_and_scope() {
    let berth = Berth::start(&config(""));
    let client = berth.client();

    let base = client.get(format!("{}/v2/", berth.url())).send().unwrap();
    assert_eq!(base.status(), StatusCode::UNAUTHORIZED);
    let expected = format!(
        "Bearer realm=\"{}/token\",service=\"{SERVICE}\"",
        berth.url()
    );
    assert_eq!(challenge(&base), expected);

    let manifest = client
        .get(format!("{}/v2/team/app/manifests/v1", berth.url()))
        .send()
        .unwrap();
    assert_eq!(
        challenge(&manifest),
        format!("{expected},scope=\"repository:team/app:pull\"")
    );
}

#[test]
fn granted_access_is_what_was_asked_intersected_with_the_acl() {
    let berth = Berth::start(&config(""));
    let client = berth.client();

    let scopes = [
        "repository:team/app:pull,push,delete",
        "repository:other/x:pull",
        "registry:catalog:*",
    ];
    let body = get_token(&berth, &client, Some("alice"), &scopes);
    assert!(body["access_token"].is_string() && body["expires_in"].is_number());
    assert!(body["issued_at"].is_string());
    let claims = claims_of(body["token"].as_str().unwrap());
    assert_eq!(claims["aud"], SERVICE);
    assert_eq!(claims["sub"], "alice");
    for claim in ["iss", "exp", "nbf", "iat", "jti"] {
        assert!(!claims[claim].is_null(), "missing {claim}");
    }
    let access = claims["access"].as_array().unwrap();
    assert_eq!(
        access[0],
        json!({"type": "repository", "name": "team/app", "actions": ["pull", "push"]})
    );
    assert_eq!(access[1]["actions"], json!([]));
    assert_eq!(access[2]["name"], "catalog");

    // bob asked for push and got pull only; the registry then answers 403, not 401.
    let bob = get_token(
        &berth,
        &client,
        Some("bob"),
        &["repository:team/app:pull,push"],
    );
    let bob_token = bob["token"].as_str().unwrap();
    assert_eq!(
        claims_of(bob_token)["access"][0]["actions"],
        json!(["pull"])
    );
    let push = client
        .post(format!("{}/v2/team/app/blobs/uploads/", berth.url()))
        .bearer_auth(bob_token)
        .send()
        .unwrap();
    assert_eq!(push.status(), StatusCode::FORBIDDEN);

    // An anonymous token grants what anonymous callers may do, nothing more.
    let anonymous = get_token(&berth, &client, None, &["repository:public/x:pull,push"]);
    let anonymous_claims = claims_of(anonymous["token"].as_str().unwrap());
    assert_eq!(anonymous_claims["access"][0]["actions"], json!(["pull"]));
    assert!(anonymous.get("refresh_token").is_none());
}

#[test]
fn a_token_works_for_its_scope_and_the_catalog_needs_its_own() {
    let berth = Berth::start(&config(""));
    let client = berth.client();
    let body = get_token(
        &berth,
        &client,
        Some("alice"),
        &["repository:team/app:pull,push"],
    );
    let token = body["token"].as_str().unwrap();

    assert_eq!(
        with_bearer(&client, format!("{}/v2/", berth.url()), token).status(),
        200
    );
    let upload = client
        .post(format!("{}/v2/team/app/blobs/uploads/", berth.url()))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(upload.status(), StatusCode::ACCEPTED);

    let catalog = with_bearer(&client, format!("{}/v2/_catalog", berth.url()), token);
    assert_eq!(catalog.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&catalog).contains("scope=\"registry:catalog:*\""));
    let catalog_token = get_token(&berth, &client, Some("alice"), &["registry:catalog:*"]);
    let catalog_token = catalog_token["token"].as_str().unwrap();
    let listed = with_bearer(
        &client,
        format!("{}/v2/_catalog", berth.url()),
        catalog_token,
    );
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: Value = listed.json().unwrap();
    assert_eq!(listed["repositories"], json!([]), "nothing is pushed yet");

    // The catalog scope names no repository: the ACL alone says which ones it lists.
    RegistryClient::with_password(&berth, "alice", PASSWORD).push_image(
        "team/app",
        "v1",
        OCI_MANIFEST,
    );
    let listed = with_bearer(
        &client,
        format!("{}/v2/_catalog", berth.url()),
        catalog_token,
    );
    let listed: Value = listed.json().unwrap();
    assert_eq!(listed["repositories"], json!(["team/app"]));
}

#[test]
fn refresh_tokens_follow_the_post_flow_containerd_uses() {
    let berth = Berth::start(&config(""));
    let client = berth.client();
    let token_url = format!("{}/token", berth.url());

    // grant_type=password with access_type=offline gives a refresh token.
    let first: Value = client
        .post(&token_url)
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("service", SERVICE),
            ("scope", "repository:team/app:pull"),
            ("access_type", "offline"),
            ("client_id", "containerd"),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let refresh = first["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    assert!(first["access_token"].is_string());

    // grant_type=refresh_token trades it for access tokens, several scopes at once.
    let second = client
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("service", SERVICE),
            (
                "scope",
                "repository:team/app:pull,push repository:team/lib:pull",
            ),
            ("client_id", "containerd"),
        ])
        .send()
        .unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    let second: Value = second.json().unwrap();
    let access = claims_of(second["access_token"].as_str().unwrap())["access"].clone();
    assert_eq!(access.as_array().unwrap().len(), 2);
    assert_eq!(access[0]["actions"], json!(["pull", "push"]));

    // A wrong password on the POST form is a 401.
    let wrong = client
        .post(&token_url)
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "nope"),
        ])
        .send()
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // A refresh token is not an access token.
    let misuse = with_bearer(
        &client,
        format!("{}/v2/team/app/tags/list", berth.url()),
        &refresh,
    );
    assert_invalid_token(misuse);
    // And an access token is not a refresh token.
    let access_token = second["access_token"].as_str().unwrap();
    let swapped = client
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", access_token),
        ])
        .send()
        .unwrap();
    assert_eq!(swapped.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn forged_and_misused_tokens_are_refused() {
    let berth = Berth::start(&config(""));
    let client = berth.client();
    let url = format!("{}/v2/team/app/tags/list", berth.url());
    let access = repository_access("team/app", &["pull"]);
    let issuer = "berth";

    // Expired, though signed with the right key.
    let mut expired = claims(issuer, SERVICE, "alice", access.clone());
    expired["exp"] = json!(now() - 600);
    expired["nbf"] = json!(now() - 900);
    assert_invalid_token(with_bearer(
        &client,
        url.clone(),
        &sign_as_berth(&berth, &expired),
    ));

    // Not yet valid.
    let mut early = claims(issuer, SERVICE, "alice", access.clone());
    early["nbf"] = json!(now() + 600);
    assert_invalid_token(with_bearer(
        &client,
        url.clone(),
        &sign_as_berth(&berth, &early),
    ));

    // Signed by a key Berth does not know.
    let stranger = rcgen::KeyPair::generate().unwrap();
    let stranger_key = EncodingKey::from_ec_pem(stranger.serialize_pem().as_bytes()).unwrap();
    let good_claims = claims(issuer, SERVICE, "alice", access.clone());
    let unknown_key =
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &good_claims, &stranger_key).unwrap();
    assert_invalid_token(with_bearer(&client, url.clone(), &unknown_key));

    // alg: none.
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(good_claims.to_string().as_bytes())
    );
    assert_invalid_token(with_bearer(&client, url.clone(), &none));

    // HMAC signed with Berth's public key: the algorithm-confusion attack.
    let jwks: Value = client
        .get(format!("{}/.well-known/jwks.json", berth.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let public = jwks["keys"][0].to_string();
    let hmac_key = EncodingKey::from_secret(public.as_bytes()).unwrap();
    let confused =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &good_claims, &hmac_key).unwrap();
    assert_invalid_token(with_bearer(&client, url.clone(), &confused));

    // Right key, wrong audience.
    let wrong_audience = claims(issuer, "someone-else", "alice", access.clone());
    assert_invalid_token(with_bearer(
        &client,
        url.clone(),
        &sign_as_berth(&berth, &wrong_audience),
    ));

    // A genuine token for repository A used on repository B.
    let for_a = get_token(&berth, &client, Some("alice"), &["repository:team/a:pull"]);
    let on_b = with_bearer(&client, url.clone(), for_a["token"].as_str().unwrap());
    assert_invalid_token(on_b);

    // Each refusal was counted.
    let refused: f64 = [
        "expired",
        "not_yet_valid",
        "signature",
        "algorithm",
        "audience",
    ]
    .iter()
    .map(|result| {
        berth.metric(&format!(
            "berth_token_verifications_total{{result=\"{result}\"}}"
        ))
    })
    .sum();
    assert!(
        refused >= 5.0,
        "token refusals counted: {refused}\n{}",
        berth.metrics()
    );
    assert!(berth.metric("berth_token_verifications_total{result=\"insufficient_scope\"}") >= 1.0);
}

#[test]
fn tokens_from_a_trusted_outside_issuer_are_honoured_within_the_acl() {
    let ci_key = rcgen::KeyPair::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ci.pem"), ci_key.public_key_pem()).unwrap();
    let trusted =
        "    trusted_issuers:\n      - {issuer: ci, audience: berth-ci, public_key: ci.pem}\n";
    let berth = Berth::start_in(dir, &config(trusted));
    let client = berth.client();
    let sign = |claims: &Value| {
        let key = EncodingKey::from_ec_pem(ci_key.serialize_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &key).unwrap()
    };
    let base = format!("{}/v2/team/app/blobs/uploads/", berth.url());

    // bob's CI token claims push; the ACL still gives bob pull only.
    let bob = sign(&claims(
        "ci",
        "berth-ci",
        "bob",
        repository_access("team/app", &["pull", "push"]),
    ));
    let pushed = client.post(&base).bearer_auth(&bob).send().unwrap();
    assert_eq!(pushed.status(), StatusCode::FORBIDDEN);
    let pulled = with_bearer(
        &client,
        format!("{}/v2/team/app/tags/list", berth.url()),
        &bob,
    );
    assert_ne!(pulled.status(), StatusCode::UNAUTHORIZED);
    assert_ne!(pulled.status(), StatusCode::FORBIDDEN);

    // alice's CI token may push.
    let alice = sign(&claims(
        "ci",
        "berth-ci",
        "alice",
        repository_access("team/app", &["push"]),
    ));
    let started = client.post(&base).bearer_auth(&alice).send().unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);

    // The issuer's tokens must name its audience.
    let wrong = sign(&claims(
        "ci",
        SERVICE,
        "alice",
        repository_access("team/app", &["push"]),
    ));
    assert_invalid_token(client.post(&base).bearer_auth(&wrong).send().unwrap());
}

#[test]
fn docker_style_login_gets_an_identity_token() {
    let berth = Berth::start(&config(""));
    let client = berth.client();
    let login = client
        .get(format!("{}/token", berth.url()))
        .query(&[
            ("account", "alice"),
            ("client_id", "docker"),
            ("offline_token", "true"),
            ("service", SERVICE),
        ])
        .basic_auth("alice", Some(PASSWORD))
        .send()
        .unwrap();
    let body: Value = login.json().unwrap();
    let refresh = body["refresh_token"]
        .as_str()
        .expect("identity token")
        .to_string();
    let token = body["token"].as_str().unwrap();
    assert_eq!(
        with_bearer(&client, format!("{}/v2/", berth.url()), token).status(),
        200
    );

    let wrong = client
        .get(format!("{}/token?service={SERVICE}", berth.url()))
        .basic_auth("alice", Some("wrong"))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let unknown = client
        .get(format!("{}/token?service={SERVICE}", berth.url()))
        .basic_auth("nobody", Some("wrong"))
        .send()
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.text().unwrap(), unknown.text().unwrap());

    // The identity token alone later yields access tokens.
    let traded = client
        .post(format!("{}/token", berth.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("service", SERVICE),
            ("scope", "repository:team/app:pull,push"),
        ])
        .send()
        .unwrap();
    let token = token_from(traded);
    assert_eq!(
        claims_of(&token)["access"][0]["actions"],
        json!(["pull", "push"])
    );
    assert!(berth.metric("berth_tokens_issued_total{grant_type=\"refresh_token\"}") >= 1.0);
    assert!(berth.metric("berth_tokens_issued_total{grant_type=\"password\"}") >= 1.0);
}

#[test]
fn a_changed_password_retires_refresh_tokens() {
    let berth = Berth::start(&config(""));
    let client = berth.client();
    let token_url = format!("{}/token", berth.url());
    let refresh_with = |refresh: &str| {
        client
            .post(&token_url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("service", SERVICE),
                ("scope", "repository:team/app:pull"),
            ])
            .send()
            .unwrap()
            .status()
    };
    let offline: Value = client
        .get(format!("{token_url}?service={SERVICE}&offline_token=true"))
        .basic_auth("alice", Some(PASSWORD))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let refresh = offline["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(refresh_with(&refresh), StatusCode::OK);

    // alice's password changes; the reload applies within a second.
    let new_hash = common::hash_password("a brand new password");
    let body = config("").replacen(
        &format!("  alice: \"{}\"", common::hash_password(PASSWORD)),
        &format!("  alice: \"{new_hash}\""),
        1,
    );
    berth.write_config(&body);
    common::wait_for_metric(&berth, "berth_config_generation", 2.0);

    assert_eq!(refresh_with(&refresh), StatusCode::UNAUTHORIZED);
}

#[test]
fn a_prefixed_issuer_cannot_speak_for_local_users() {
    let ci_key = rcgen::KeyPair::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ci.pem"), ci_key.public_key_pem()).unwrap();
    let body = format!(
        "{}\
         auth:\n  token:\n    service: {SERVICE}\n    trusted_issuers:\n      \
         - {{issuer: ci, audience: berth-ci, public_key: ci.pem, subject_prefix: \"ci:\"}}\n\
         acl:\n  \
           - {{users: [alice], repos: [\"team/**\"], actions: [pull, push]}}\n  \
           - {{users: [\"ci:deploy\"], repos: [\"deploy/**\"], actions: [pull, push]}}\n",
        users_block(&["alice"])
    );
    let berth = Berth::start_in(dir, &body);
    let client = berth.client();
    let key = EncodingKey::from_ec_pem(ci_key.serialize_pem().as_bytes()).unwrap();
    let sign = |sub: &str, repository: &str| {
        // An audience list, as some issuers send, and no nbf, iat or jti.
        let claims = json!({
            "iss": "ci", "sub": sub, "aud": ["someone", "berth-ci"], "exp": now() + 300,
            "access": repository_access(repository, &["push"]),
        });
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap()
    };
    let start = |repository: &str, token: &str| {
        let url = format!("{}/v2/{repository}/blobs/uploads/", berth.url());
        client.post(url).bearer_auth(token).send().unwrap().status()
    };

    assert_eq!(
        start("deploy/app", &sign("deploy", "deploy/app")),
        StatusCode::ACCEPTED
    );
    // Its `alice` is `ci:alice`, whom no rule names.
    assert_eq!(
        start("team/app", &sign("alice", "team/app")),
        StatusCode::FORBIDDEN
    );
}

#[test]
fn a_forged_host_header_cannot_shape_the_challenge() {
    let berth = Berth::start(&config(""));
    let response = berth
        .client()
        .get(format!("{}/v2/", berth.url()))
        .header("Host", "evil.example\",error=\"x")
        .send()
        .unwrap();
    let challenge = challenge(&response);
    assert!(
        challenge.starts_with("Bearer realm=\"https://localhost/token\""),
        "{challenge}"
    );
    assert!(!challenge.contains("evil"), "{challenge}");
}
