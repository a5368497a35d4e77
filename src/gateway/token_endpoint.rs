//! The Docker Registry token endpoint at the challenge's realm (`/token`), and Berth's
//! public keys at `/.well-known/jwks.json`.
//!
//! - `GET /token?service=..&scope=..&scope=..[&offline_token=true]` with basic credentials,
//!   or none for an anonymous token, as docker and podman ask.
//! - `POST /token` with a form body, `grant_type=password` (username, password) or
//!   `grant_type=refresh_token` (refresh_token), as containerd and buildkit ask.
//!
//! What is granted is what was asked intersected with what the ACL allows; actions the ACL
//! refuses are dropped silently, as the protocol expects, and the registry answers 403 later.

use std::collections::HashMap;

use http::{Method, StatusCode};
use pingora::protocols::http::ServerSession;

use super::respond::{self, Refusal};
use super::{io, read_small_body, Gateway, Handled, RequestCtx};
use crate::acl::{Action, Policy};
use crate::auth::token::ResourceActions;
use crate::auth::{AuthMethod, Identity, Outcome};
use crate::registry::RepositoryName;

const TOKEN_PATH: &str = "/token";
const JWKS_PATHS: [&str; 2] = ["/.well-known/jwks.json", "/token/jwks.json"];
/// A token request is a handful of parameters; anything larger is not one.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Whether `path` belongs to the token service.
pub(super) fn handles(path: &str) -> bool {
    path == TOKEN_PATH || JWKS_PATHS.contains(&path)
}

/// The parameters of one token request, whichever way it came.
struct TokenRequest {
    grant_type: String,
    service: Option<String>,
    scopes: Vec<String>,
    offline: bool,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
}

impl Gateway {
    pub(super) async fn token_endpoint(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
    ) -> Handled {
        let tokens = ctx.live.tokens.clone().ok_or(Refusal::NotFound)?;
        let path = session.req_header().uri.path().to_string();
        if JWKS_PATHS.contains(&path.as_str()) {
            let body = serde_json::to_vec(tokens.jwks()).expect("JWKS serialises");
            let head = respond::header(StatusCode::OK);
            respond::json(session, head, body).await.map_err(io)?;
            return Ok(StatusCode::OK);
        }

        let request = match ctx.method {
            Method::GET => self.token_request_from_query(session, ctx),
            Method::POST => {
                let body = read_small_body(session, MAX_FORM_BYTES).await?;
                token_request_from_form(&body)
            }
            _ => return Err(Refusal::MethodNotAllowed),
        };
        let service = &tokens.config().service;
        if request
            .service
            .as_ref()
            .is_some_and(|asked| asked != service)
        {
            return Err(Refusal::BadRequest(format!(
                "this token service is {service:?}"
            )));
        }

        // Who the token is for.
        let (identity, refresh_token) = self.token_subject(ctx, &request).await?;
        ctx.identity = identity.clone();

        // What it grants.
        let asked = request
            .scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty());
        let access: Vec<ResourceActions> = asked
            .filter_map(ResourceActions::parse_scope)
            .filter_map(|scope| grant(&ctx.live.policy, &identity, scope))
            .collect();

        let groups = ctx.live.auth.proven_groups(&identity);
        let (token, issued_at) = tokens.issue_access(identity.user.as_deref(), groups, access);
        let grant_label = match request.grant_type.as_str() {
            _ if identity.is_anonymous() => "anonymous",
            "refresh_token" => "refresh_token",
            _ => "password",
        };
        self.metrics.token_issued(grant_label);
        tracing::info!(
            user = identity.display_name(),
            grant = grant_label,
            "token issued"
        );

        let lifetime = tokens.config().lifetime.as_secs();
        let issued_at = crate::auth::token::rfc3339(issued_at);
        let mut body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": lifetime,
            "issued_at": issued_at,
        });
        if let Some(refresh) = refresh_token {
            body["refresh_token"] = serde_json::Value::String(refresh);
        }
        let mut head = respond::header(StatusCode::OK);
        respond::set(&mut head, "Cache-Control", "no-store");
        let body = serde_json::to_vec(&body).expect("JSON");
        respond::json(session, head, body).await.map_err(io)?;
        Ok(StatusCode::OK)
    }

    fn token_request_from_query(&self, session: &ServerSession, ctx: &RequestCtx) -> TokenRequest {
        let query = session.req_header().uri.query().unwrap_or("");
        let mut request = parse_params(query.as_bytes());
        // Basic credentials on a GET were already checked by authentication.
        request.grant_type = "password".into();
        request.username = ctx.identity.user.clone();
        request
    }

    /// Authenticates the token request; returns the identity and, for offline requests by
    /// a user, a refresh token.
    async fn token_subject(
        &self,
        ctx: &RequestCtx,
        request: &TokenRequest,
    ) -> Result<(Identity, Option<String>), Refusal> {
        let live = ctx.live.clone();
        let tokens = live.tokens.as_ref().ok_or(Refusal::NotFound)?;
        let identity = match request.grant_type.as_str() {
            // GET: whatever authentication made of the Authorization header.
            "password" if ctx.method == Method::GET => {
                if ctx.identity.method == AuthMethod::Bearer {
                    return Err(Refusal::BadRequest("ask for tokens with a password".into()));
                }
                ctx.identity.clone()
            }
            "password" => {
                let (Some(user), Some(password)) = (&request.username, &request.password) else {
                    return Err(Refusal::BadRequest(
                        "username and password are required".into(),
                    ));
                };
                let checked = live.auth.authenticate_password(user, password).await;
                let certificate = ctx.certificate.as_deref();
                let combined =
                    checked.and_then(|c| live.auth.with_certificate(Some(c), certificate));
                self.identity_or_refusal(combined)?
            }
            "refresh_token" => {
                let token = request.refresh_token.as_deref().unwrap_or("");
                let subject = match tokens.verify_refresh(token) {
                    // The user must still exist, with the credential the token was issued
                    // under: a changed password retires every older refresh token.
                    Ok(grant) if live.auth.credential_still_valid(&grant) => grant.subject,
                    Ok(_) => return Err(Refusal::BadCredentials),
                    Err(error) => {
                        self.metrics.token_verified(error.metric_label());
                        return Err(Refusal::BadCredentials);
                    }
                };
                let certificate = ctx.certificate.as_deref();
                let identity = live.auth.refresh_identity(subject, certificate).await;
                let outcome = identity.map(|identity| (identity, Outcome::Verified));
                let combined =
                    outcome.and_then(|o| live.auth.with_certificate(Some(o), certificate));
                self.identity_or_refusal(combined)?
            }
            other => {
                return Err(Refusal::BadRequest(format!(
                    "unsupported grant_type {other:?}"
                )));
            }
        };

        let refresh = match (&identity.user, request.offline) {
            (Some(user), true) => {
                Some(tokens.issue_refresh(user, live.auth.credential_stamp(user)))
            }
            _ => None,
        };
        Ok((identity, refresh))
    }
}

/// What of `scope` the ACL allows `identity`; `None` when nothing.
fn grant(policy: &Policy, identity: &Identity, scope: ResourceActions) -> Option<ResourceActions> {
    if scope.resource_type == "registry" {
        // The catalog is filtered by the ACL when listed.
        return scope.allows_catalog().then_some(scope);
    }
    if scope.resource_type != "repository" {
        return None;
    }
    let repository = RepositoryName::parse(&scope.name).ok()?;
    let wanted: Vec<Action> = scope
        .actions
        .iter()
        .flat_map(|action| match action.as_str() {
            "*" => vec![Action::Pull, Action::Push, Action::Delete],
            "pull" => vec![Action::Pull],
            "push" => vec![Action::Push],
            "delete" => vec![Action::Delete],
            _ => Vec::new(),
        })
        .collect();
    let mut allowed: Vec<String> = Vec::new();
    for action in wanted {
        let decision = policy.evaluate(identity, repository.as_str(), action);
        if decision.is_allowed() && !allowed.iter().any(|a| a == action.as_str()) {
            allowed.push(action.as_str().to_string());
        }
    }
    Some(ResourceActions {
        resource_type: scope.resource_type,
        name: scope.name,
        actions: allowed,
    })
}

fn token_request_from_form(body: &[u8]) -> TokenRequest {
    let mut request = parse_params(body);
    if request.grant_type.is_empty() {
        request.grant_type = "password".into();
    }
    request
}

/// Reads the parameters both forms share; `scope` may repeat.
fn parse_params(encoded: &[u8]) -> TokenRequest {
    let mut single: HashMap<String, String> = HashMap::new();
    let mut scopes = Vec::new();
    for (key, value) in form_urlencoded::parse(encoded) {
        if key == "scope" {
            scopes.push(value.into_owned());
        } else {
            single
                .entry(key.into_owned())
                .or_insert_with(|| value.into_owned());
        }
    }
    let offline = single.get("offline_token").is_some_and(|v| v == "true")
        || single.get("access_type").is_some_and(|v| v == "offline");
    TokenRequest {
        grant_type: single.remove("grant_type").unwrap_or_default(),
        service: single.remove("service"),
        scopes,
        offline,
        username: single.remove("username"),
        password: single.remove("password"),
        refresh_token: single.remove("refresh_token"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_parameters_like_containerd_sends_them() {
        let body = b"grant_type=refresh_token&refresh_token=abc&service=berth\
            &scope=repository%3Aa%2Fb%3Apull%2Cpush+repository%3Ac%3Apull&client_id=ctr";
        let request = token_request_from_form(body);
        assert_eq!(request.grant_type, "refresh_token");
        assert_eq!(request.refresh_token.as_deref(), Some("abc"));
        assert_eq!(
            request.scopes,
            ["repository:a/b:pull,push repository:c:pull"]
        );
        assert!(!request.offline);
    }

    #[test]
    fn get_parameters_like_docker_sends_them() {
        let query = b"account=alice&client_id=docker&offline_token=true&service=berth\
            &scope=repository:a:pull&scope=registry:catalog:*";
        let request = parse_params(query);
        assert!(request.offline);
        assert_eq!(request.scopes.len(), 2);
    }
}
