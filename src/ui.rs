//! The built-in web UI under `/ui/` on the HTTPS listener: browse and search repositories,
//! their tags and manifests, and delete what the ACL lets the visitor delete. The gateway
//! hands every `/ui` request here after authenticating its `Authorization` header, if any;
//! browsers instead sign in with a form and carry a session cookie ([`session`]).
//!
//! Pages are rendered on the server from templates embedded in the binary (minijinja, with
//! HTML autoescaping: repository names, tags, labels and annotations are user input), with
//! a small script that only enhances them ([`assets`]). `/ui/api/...` serves the same data
//! as JSON for scripts and the CLI. Visitors see only repositories they may pull; one they
//! may not pull is answered as if it did not exist.
//!
//! Everything here is independent of Pingora: the gateway turns the HTTP request into a
//! [`UiRequest`] and writes the [`UiResponse`] back.
//!
//! # Security
//! Every POST must come from a signed-in session and carry that session's CSRF token, and
//! must not come from another origin; the cookie is `SameSite=Strict` besides. Pages with
//! user data are `Cache-Control: no-store`; a Content-Security-Policy allows only this
//! origin's own script and style.

mod api;
pub mod assets;
pub mod index;
mod pages;
pub mod session;
pub mod view;

use std::collections::HashMap;
use std::sync::Arc;

use http::{Method, StatusCode};

use crate::acl::Action;
use crate::auth::{AuthMethod, Identity};
use crate::live::Snapshot;
use crate::metrics::Metrics;
use crate::registry::{Digest, Registry, RegistryError, RepositoryName};
use crate::tls::client_cert::PeerCertificate;
use assets::Assets;
use index::RepositoryIndex;
use session::{Session, Sessions};

/// `Cache-Control` of every response that depends on who asks.
pub const NO_STORE: &str = "no-store";
/// `Cache-Control` of fingerprinted static files.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Content-Security-Policy` of every UI response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";
/// Largest form body a UI POST may carry.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Whether `path` belongs to the UI (the site root redirects to it).
pub fn handles(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

/// The parts of an HTTP request the UI reads.
#[derive(Debug, Clone, Default)]
pub struct UiRequest {
    pub method: Method,
    /// The raw path, not percent-decoded.
    pub path: String,
    /// Query parameters (first value of each).
    pub query: HashMap<String, String>,
    /// The `Cookie` header.
    pub cookie: Option<String>,
    /// The `Host` header, for the `docker pull` line and the same-origin check.
    pub host: Option<String>,
    /// The `Origin` header, which browsers send with every POST.
    pub origin: Option<String>,
    /// An `application/x-www-form-urlencoded` body (first value of each field).
    pub form: HashMap<String, String>,
    /// The client's IP address, for the audit log.
    pub client: String,
    /// The connection's verified client certificate, for the listener's certificate policy.
    pub certificate: Option<Arc<PeerCertificate>>,
}

/// A complete response for the gateway to send.
#[derive(Debug)]
pub struct UiResponse {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub cache_control: &'static str,
    /// `Location`, for redirects.
    pub location: Option<String>,
    /// `Set-Cookie`, when signing in or out.
    pub set_cookie: Option<String>,
    pub body: Vec<u8>,
}

/// Why a UI request was not served. The gateway picks the status (in `respond.rs`) and
/// asks [`Ui::error_response`] for the page.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// No such page, or a repository the visitor may not see.
    #[error("page not found")]
    NotFound,
    /// The action needs a signed-in visitor.
    #[error("sign in to do this")]
    SignInRequired,
    /// Signed in, but the ACL does not allow it.
    #[error("you are not allowed to do this")]
    Denied,
    /// A delete that would remove a tag an `immutable_tags` rule protects.
    #[error(
        "tag {tag} is immutable (immutable_tags rule {rule}: {rule_text}); \
         it cannot be deleted"
    )]
    ImmutableTag {
        tag: String,
        /// The rule's position in the file, counting from 1.
        rule: usize,
        rule_text: String,
    },
    /// A POST without this session's CSRF token, or from another origin.
    #[error("the form expired or came from another site; reload the page and try again")]
    Forged,
    /// A malformed parameter.
    #[error("{0}")]
    BadRequest(String),
    /// The page exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The sign-in form's user name and password did not check out.
    #[error("wrong user name or password")]
    BadCredentials,
    /// The password checked out, but the listener's client-certificate policy refuses the
    /// sign-in: no certificate, or one that names someone else.
    #[error("{0}; sign in from a browser that presents your client certificate")]
    CertificatePolicy(String),
    /// The registry engine refused or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A template failed to render: a bug in a template.
    #[error("failed to render a page: {0}")]
    Template(#[from] minijinja::Error),
}

impl UiError {
    /// A short code for the access log.
    pub fn code(&self) -> &'static str {
        match self {
            UiError::NotFound => "NOT_FOUND",
            UiError::SignInRequired => "UNAUTHORIZED",
            UiError::Denied | UiError::ImmutableTag { .. } => "DENIED",
            UiError::Forged => "FORGED",
            UiError::BadRequest(_) => "BAD_REQUEST",
            UiError::MethodNotAllowed => "UNSUPPORTED",
            UiError::BadCredentials | UiError::CertificatePolicy(_) => "UNAUTHORIZED",
            UiError::Registry(error) => error.code(),
            UiError::Template(_) => "UNKNOWN",
        }
    }

    /// Whether the fault is ours (logged in full; the visitor sees a generic message).
    pub fn is_server_fault(&self) -> bool {
        match self {
            UiError::Registry(error) => error.is_server_fault(),
            UiError::Template(_) => true,
            _ => false,
        }
    }
}

/// Who is looking: an identity, and the session it came from when it came from a cookie.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub identity: Identity,
    pub session: Option<Session>,
    session_id: Option<String>,
    /// The configuration snapshot the request runs under: whose rules decide.
    live: Arc<Snapshot>,
}

/// Which page or API call a path names.
#[derive(Debug, Clone)]
enum Page {
    Root,
    List,
    SignIn,
    SignOut,
    Repository(RepositoryName),
    Manifest(RepositoryName, Digest),
    Delete(RepositoryName),
    Static(String),
    ApiRepositories,
    ApiRepository(RepositoryName),
    ApiManifest(RepositoryName, Digest),
    ApiSearch,
}

/// The UI's state: what it reads, who may see what, sessions, and rendered templates.
pub struct Ui {
    registry: Arc<Registry>,
    metrics: Metrics,
    sessions: Sessions,
    index: Arc<RepositoryIndex>,
    assets: Assets,
    templates: minijinja::Environment<'static>,
}

impl Ui {
    /// The UI over `registry`. Who may see what is decided per request, by the access rules
    /// of the configuration snapshot the request runs under.
    pub fn new(registry: Arc<Registry>, metrics: Metrics) -> Self {
        let assets = Assets::default();
        let templates = pages::environment(&assets);
        Ui {
            index: Arc::new(RepositoryIndex::new(registry.clone())),
            registry,
            metrics,
            sessions: Sessions::default(),
            assets,
            templates,
        }
    }

    /// Tells the repository list that `repository` changed (a push or a delete).
    pub fn repository_changed(&self, repository: &RepositoryName) {
        self.index.invalidate(repository);
    }

    /// Serves one UI request. `identity` is what the `Authorization` header proved;
    /// anonymous callers are looked up by their session cookie.
    ///
    /// # Errors
    /// [`UiError`] for anything not served; the gateway turns it into a status and asks
    /// [`Ui::error_response`] for the body.
    pub async fn handle(
        self: &Arc<Self>,
        request: UiRequest,
        identity: Identity,
        live: Arc<Snapshot>,
    ) -> Result<UiResponse, UiError> {
        let page = Page::parse(&request.path)?;
        let auth = &live.auth;
        let visitor = self.visitor(&request, identity, live.clone());
        let post = request.method == Method::POST;
        if !post && !matches!(request.method, Method::GET | Method::HEAD) {
            return Err(UiError::MethodNotAllowed);
        }
        if post {
            check_same_origin(&request)?;
        }

        match (page, post) {
            (Page::Root, false) => Ok(redirect("/ui/")),
            (Page::Static(path), false) => self.static_file(&path),
            (Page::SignIn, true) => self.sign_in(&request, auth).await,
            (Page::SignIn, false) => {
                Ok(html_response(self.sign_in_html(&request, &visitor, None)?))
            }
            (Page::SignOut, true) => self.sign_out(&request, &visitor),
            (page, post) => {
                // Everything else reads storage: on the blocking pool.
                let ui = self.clone();
                let work = move || ui.serve_blocking(page, post, request, visitor);
                tokio::task::spawn_blocking(work)
                    .await
                    .unwrap_or_else(|join| {
                        Err(RegistryError::Internal {
                            detail: join.to_string(),
                        }
                        .into())
                    })
            }
        }
    }

    /// The body for an error the gateway has given `status`: a page, or JSON for the API.
    pub fn error_response(
        &self,
        request: &UiRequest,
        status: StatusCode,
        error: &UiError,
        live: Arc<Snapshot>,
    ) -> UiResponse {
        let message = if error.is_server_fault() {
            "internal error; the registry logged the details".to_string()
        } else {
            error.to_string()
        };
        if request.path.starts_with("/ui/api/") {
            let error = serde_json::json!({ "code": error.code(), "message": message });
            let body = serde_json::json!({ "error": error });
            return json_response(status, &body);
        }
        if matches!(error, UiError::SignInRequired) && request.method != Method::POST {
            let next = format!(
                "/ui/login?next={}",
                form_urlencoded::byte_serialize(request_target(request).as_bytes())
                    .collect::<String>()
            );
            return redirect(&next);
        }
        let visitor = Visitor {
            identity: Identity::anonymous(),
            session: None,
            session_id: None,
            live,
        };
        let sign_in_failed = matches!(
            error,
            UiError::BadCredentials | UiError::CertificatePolicy(_)
        );
        let rendered = if sign_in_failed {
            self.sign_in_html(request, &visitor, Some(&message))
        } else {
            let context = minijinja::context! {
                title => status.to_string(), status => status.as_u16(), message => message,
            };
            self.render("error.html", &visitor, request, context)
        };
        match rendered {
            Ok(body) => UiResponse {
                status,
                ..html_response(body)
            },
            Err(_) => UiResponse {
                status,
                content_type: "text/plain; charset=utf-8",
                cache_control: NO_STORE,
                location: None,
                set_cookie: None,
                body: message.into_bytes(),
            },
        }
    }

    fn serve_blocking(
        &self,
        page: Page,
        post: bool,
        request: UiRequest,
        visitor: Visitor,
    ) -> Result<UiResponse, UiError> {
        // The delete form is the only POST below; everything else only reads.
        match (page, post) {
            (Page::Delete(name), true) => self.delete(&request, &visitor, &name),
            (_, true) => Err(UiError::MethodNotAllowed),
            (Page::List, _) => self.list_page(&request, &visitor),
            (Page::Repository(name), _) => self.repository_page(&request, &visitor, &name),
            (Page::Manifest(name, digest), _) => {
                self.manifest_page(&request, &visitor, &name, &digest)
            }
            (Page::Delete(name), _) => self.delete_confirm(&request, &visitor, &name),
            (Page::ApiRepositories, _) => self.api_repositories(&request, &visitor),
            (Page::ApiRepository(name), _) => self.api_repository(&visitor, &name),
            (Page::ApiManifest(name, digest), _) => self.api_manifest(&visitor, &name, &digest),
            (Page::ApiSearch, _) => self.api_search(&request, &visitor),
            _ => Err(UiError::MethodNotAllowed),
        }
    }

    /// Who is asking: the `Authorization` header's identity, else the session cookie's.
    fn visitor(&self, request: &UiRequest, identity: Identity, live: Arc<Snapshot>) -> Visitor {
        let anonymous = Visitor {
            identity,
            session: None,
            session_id: None,
            live: live.clone(),
        };
        if !anonymous.identity.is_anonymous() {
            return anonymous;
        }
        let Some(id) = request
            .cookie
            .as_deref()
            .and_then(|cookie| session::cookie_value(cookie, session::COOKIE))
        else {
            return anonymous;
        };
        let Some(session) = self.sessions.find(id) else {
            return anonymous;
        };
        // A session is worth what its sign-in would be worth under the running config: a
        // local user removed from it or given a new password, or a directory dropped from
        // it, ends the session.
        let auth = &live.auth;
        let still_there = match session.method {
            AuthMethod::Ldap => auth.has_directory() && !auth.knows_user(&session.user),
            _ => auth
                .credential_stamp(&session.user)
                .is_some_and(|stamp| session.credential_matches(&stamp)),
        };
        if !still_there {
            self.sessions.remove(id);
            return anonymous;
        }

        // Groups from proxy.yaml come from the running config, not from sign-in time; the
        // session keeps only what the directory said.
        let mut identity = auth.identity_of(session.user.clone(), AuthMethod::Session);
        for group in &session.directory_groups {
            if !identity.groups.contains(group) {
                identity.groups.push(group.clone());
            }
        }

        // The certificate policy applies to every request, not only to the sign-in.
        let presented = Some((identity, crate::auth::Outcome::Verified));
        let identity = match auth.with_certificate(presented, request.certificate.as_deref()) {
            Ok((identity, _)) => identity,
            Err(_) => return anonymous,
        };
        Visitor {
            identity,
            session: Some(session),
            session_id: Some(id.to_string()),
            live,
        }
    }

    /// Whether `visitor` may do `action` on `repository`: the ACL, and a bearer token's
    /// grants when one was used.
    fn may(&self, visitor: &Visitor, repository: &str, action: Action) -> bool {
        let identity = &visitor.identity;
        visitor
            .live
            .policy
            .evaluate(identity, repository, action)
            .is_allowed()
            && identity.token_allows(repository, action)
    }

    /// Whether `visitor` may delete in `repository` and this registry serves deletes at all:
    /// the UI offers delete only then.
    fn may_delete(&self, visitor: &Visitor, repository: &str) -> bool {
        self.registry.deletes_enabled() && self.may(visitor, repository, Action::Delete)
    }

    /// Refuses a repository the visitor may not pull as if it did not exist.
    fn require_pull(&self, visitor: &Visitor, repository: &RepositoryName) -> Result<(), UiError> {
        if self.may(visitor, repository.as_str(), Action::Pull) {
            Ok(())
        } else {
            Err(UiError::NotFound)
        }
    }

    /// Checks a POST's CSRF token against the visitor's session; returns the session.
    fn require_csrf<'a>(
        &self,
        request: &UiRequest,
        visitor: &'a Visitor,
    ) -> Result<&'a Session, UiError> {
        let Some(session) = &visitor.session else {
            return Err(if visitor.identity.is_anonymous() {
                UiError::SignInRequired
            } else {
                UiError::Forged
            });
        };
        let token = request.form.get("csrf").map(String::as_str).unwrap_or("");
        if !session.csrf_matches(token) {
            return Err(UiError::Forged);
        }
        Ok(session)
    }

    fn static_file(&self, path: &str) -> Result<UiResponse, UiError> {
        let asset = self.assets.find(path).ok_or(UiError::NotFound)?;
        Ok(UiResponse {
            status: StatusCode::OK,
            content_type: asset.content_type,
            cache_control: IMMUTABLE,
            location: None,
            set_cookie: None,
            body: asset.body.as_bytes().to_vec(),
        })
    }
}

impl Page {
    fn parse(path: &str) -> Result<Page, UiError> {
        if path == "/" || path == "/ui" {
            return Ok(Page::Root);
        }
        let rest = path.strip_prefix("/ui/").ok_or(UiError::NotFound)?;
        match rest {
            "" => return Ok(Page::List),
            "login" => return Ok(Page::SignIn),
            "logout" => return Ok(Page::SignOut),
            "api/repositories" => return Ok(Page::ApiRepositories),
            "api/search" => return Ok(Page::ApiSearch),
            _ => {}
        }
        if rest.starts_with("static/") {
            return Ok(Page::Static(path.to_string()));
        }
        if let Some(tail) = rest.strip_prefix("api/repo/") {
            return Ok(match split_repository(tail)? {
                (name, None) => Page::ApiRepository(name),
                (name, Some(("manifest", digest))) => {
                    Page::ApiManifest(name, parse_digest(digest)?)
                }
                _ => return Err(UiError::NotFound),
            });
        }
        let tail = rest.strip_prefix("repo/").ok_or(UiError::NotFound)?;
        Ok(match split_repository(tail)? {
            (name, None) => Page::Repository(name),
            (name, Some(("manifest", digest))) => Page::Manifest(name, parse_digest(digest)?),
            (name, Some(("delete", ""))) => Page::Delete(name),
            _ => return Err(UiError::NotFound),
        })
    }
}

/// `name[/-/action[/argument]]`: `-` is never a path component of a repository name.
fn split_repository(tail: &str) -> Result<(RepositoryName, Option<(&str, &str)>), UiError> {
    let (name, action) = match tail.split_once("/-/") {
        Some((name, action)) => {
            let (verb, argument) = action.split_once('/').unwrap_or((action, ""));
            (name, Some((verb, argument)))
        }
        None => (tail, None),
    };
    let name = RepositoryName::parse(name).map_err(|_| UiError::NotFound)?;
    Ok((name, action))
}

fn parse_digest(raw: &str) -> Result<Digest, UiError> {
    Digest::parse(raw).map_err(|_| UiError::NotFound)
}

/// A POST must come from a page of this origin: browsers send `Origin` with every POST, so
/// one naming another site is a forgery (a missing one comes from a non-browser client).
fn check_same_origin(request: &UiRequest) -> Result<(), UiError> {
    let Some(origin) = request.origin.as_deref() else {
        return Ok(());
    };
    let expected = request
        .host
        .as_deref()
        .map(|host| format!("https://{host}"));
    if expected.as_deref() == Some(origin) {
        Ok(())
    } else {
        Err(UiError::Forged)
    }
}

/// The path and query the request named, for coming back after signing in.
fn request_target(request: &UiRequest) -> String {
    if request.query.is_empty() {
        return request.path.clone();
    }
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(request.query.iter())
        .finish();
    format!("{}?{query}", request.path)
}

/// A local UI path to go to after signing in; anything else goes to the list.
fn safe_next(next: Option<&String>) -> String {
    match next {
        Some(next)
            if next.starts_with("/ui/")
                && !next.contains("//")
                && !next.contains('\\')
                && !next.chars().any(char::is_control) =>
        {
            next.clone()
        }
        _ => "/ui/".to_string(),
    }
}

fn redirect(location: &str) -> UiResponse {
    UiResponse {
        status: StatusCode::SEE_OTHER,
        content_type: "text/plain; charset=utf-8",
        cache_control: NO_STORE,
        location: Some(location.to_string()),
        set_cookie: None,
        body: Vec::new(),
    }
}

fn html_response(body: String) -> UiResponse {
    UiResponse {
        status: StatusCode::OK,
        content_type: "text/html; charset=utf-8",
        cache_control: NO_STORE,
        location: None,
        set_cookie: None,
        body: body.into_bytes(),
    }
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> UiResponse {
    UiResponse {
        status,
        content_type: "application/json",
        cache_control: NO_STORE,
        location: None,
        set_cookie: None,
        body: serde_json::to_vec(value).expect("JSON values serialise"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_pages() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let rows: &[(&str, &str)] = &[
            ("/", "Root"),
            ("/ui/", "List"),
            ("/ui/repo/team/app", "Repository"),
            (
                &format!("/ui/repo/team/app/-/manifest/{digest}"),
                "Manifest",
            ),
            ("/ui/repo/team/app/-/delete", "Delete"),
            ("/ui/api/repo/team/app", "ApiRepository"),
            (
                &format!("/ui/api/repo/a/-/manifest/{digest}"),
                "ApiManifest",
            ),
            ("/ui/api/search", "ApiSearch"),
            ("/ui/static/berth.0.css", "Static"),
        ];
        for (path, page) in rows {
            let parsed = format!("{:?}", Page::parse(path).unwrap());
            assert!(parsed.starts_with(page), "{path} parsed as {parsed}");
        }
        for bad in [
            "/ui/repo/../x",
            "/ui/repo/A",
            "/ui/repo/a/-/manifest/x",
            "/uix",
        ] {
            assert!(Page::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_local_ui_paths_are_followed_after_sign_in() {
        let next = |s: &str| safe_next(Some(&s.to_string()));
        assert_eq!(next("/ui/repo/a"), "/ui/repo/a");
        assert_eq!(next("https://evil.example/"), "/ui/");
        assert_eq!(next("/ui//evil.example"), "/ui/");
        assert_eq!(next("/v2/"), "/ui/");
        assert_eq!(next("/ui/\r\nSet-Cookie: x=y"), "/ui/");
        assert_eq!(safe_next(None), "/ui/");
    }

    #[test]
    fn posts_from_other_origins_are_forged() {
        let mut request = UiRequest {
            host: Some("reg.example:5443".into()),
            ..UiRequest::default()
        };
        assert!(check_same_origin(&request).is_ok());
        request.origin = Some("https://reg.example:5443".into());
        assert!(check_same_origin(&request).is_ok());
        request.origin = Some("https://evil.example".into());
        assert!(matches!(check_same_origin(&request), Err(UiError::Forged)));
        request.origin = Some("null".into());
        assert!(matches!(check_same_origin(&request), Err(UiError::Forged)));
    }
}
