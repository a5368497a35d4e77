//! The Pingora application that owns each HTTPS session: it reads the request, routes it,
//! authenticates the caller, asks the ACL, and calls the registry engine, streaming bodies
//! between the connection and storage. Nothing reaches the engine before the ACL allowed it.
//!
//! Blocking filesystem work runs on tokio's blocking pool. Upload bodies flow through a
//! bounded channel into a blocking writer that hashes and writes each chunk, so memory stays
//! flat whatever the blob size; downloads flow the other way the same way.

pub mod ctx;
pub mod respond;
pub mod route;
mod token_endpoint;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use tokio::sync::mpsc;

use crate::acl::{Action, Decision, Policy};
use crate::auth::token::{ResourceActions, TokenService};
use crate::auth::{AuthError, AuthMethod, Authenticator, Identity, Outcome};
use crate::metrics::Metrics;
use crate::registry::manifest::{self, MAX_MANIFEST_BYTES};
use crate::registry::{Digest, Reference, Registry, RegistryError, RepositoryName, UploadId};
pub use ctx::RequestCtx;
use respond::{set, Refusal};
use route::Route;

/// Chunks in flight between the connection and the blocking writer or reader.
const BODY_CHANNEL_DEPTH: usize = 8;
/// Size of each read from a blob file when sending it.
const READ_CHUNK: usize = 256 * 1024;

/// Shared state of the HTTPS service: the engine, who is who, and who may do what.
pub struct Gateway {
    registry: Arc<Registry>,
    auth: Authenticator,
    policy: Policy,
    metrics: Metrics,
    realm: String,
    tokens: Option<Arc<TokenService>>,
}

type Handled = Result<StatusCode, Refusal>;

impl Gateway {
    pub fn new(
        registry: Arc<Registry>,
        auth: Authenticator,
        policy: Policy,
        metrics: Metrics,
        realm: String,
        tokens: Option<Arc<TokenService>>,
    ) -> Self {
        Gateway {
            registry,
            auth,
            policy,
            metrics,
            realm,
            tokens,
        }
    }

    /// How refused callers are told to authenticate: a bearer challenge naming the token
    /// endpoint when token authentication is on, basic otherwise.
    fn challenge(&self, session: &ServerSession) -> respond::Challenge {
        let Some(tokens) = self.tokens.as_ref().filter(|t| t.config().enabled) else {
            return respond::Challenge::Basic {
                realm: self.realm.clone(),
            };
        };
        let config = tokens.config();
        let realm = config.realm.clone().unwrap_or_else(|| {
            let host = header_str(session, http::header::HOST).unwrap_or("localhost");
            format!("https://{host}/token")
        });
        respond::Challenge::Bearer {
            realm,
            service: config.service.clone(),
        }
    }

    /// Serves one request from head to last byte; returns its status.
    async fn serve(&self, session: &mut ServerSession, ctx: &mut RequestCtx) -> StatusCode {
        let result = self.authenticate_and_dispatch(session, ctx).await;
        match result {
            Ok(status) => status,
            Err(refusal) => {
                ctx.error_code = Some(refusal.code());
                if refusal.is_server_fault() {
                    tracing::error!(error = ?refusal, "request failed");
                }
                let challenge = self.challenge(session);
                respond::refusal(session, &refusal, &challenge).await
            }
        }
    }

    async fn authenticate_and_dispatch(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
    ) -> Handled {
        // The route is parsed first so that even refusals are logged under it; a bad path
        // is answered only after authentication, so strangers learn nothing from it.
        let route = Route::parse(session.req_header().uri.path());
        if let Ok(route) = &route {
            ctx.route_kind = route.kind();
            ctx.repository = route.repository().map(|name| name.to_string());
        }

        // Who is calling: the Authorization header and the connection's client certificate.
        let authorization = session
            .get_header(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes().to_vec());
        let certificate = ctx.certificate.clone();
        let authenticated = self
            .auth
            .authenticate(authorization.as_deref(), certificate.as_deref())
            .await;
        ctx.identity = self.identity_or_refusal(authenticated)?;
        if ctx.identity.method == AuthMethod::Bearer {
            self.metrics.token_verified("valid");
        }

        // The token service and its public keys live beside the registry API.
        let path = session.req_header().uri.path();
        if self.tokens.is_some() && token_endpoint::handles(path) {
            ctx.route_kind = "token";
            return self.token_endpoint(session, ctx).await;
        }

        // What they ask for.
        let route = route?;

        // Whether they may.
        let no_credentials = ctx.identity.is_anonymous() && ctx.identity.granted.is_none();
        if matches!(route, Route::Base) && no_credentials {
            return Err(Refusal::Unauthenticated {
                scope: None,
                error: None,
            });
        }
        if matches!(route, Route::Catalog) {
            self.authorize_catalog(ctx)?;
        }
        if let Some(repository) = route.repository() {
            let action = route.action(&ctx.method).ok_or(Refusal::MethodNotAllowed)?;
            self.authorize(ctx, repository, action)?;
        }

        self.dispatch(session, ctx, route).await
    }

    /// Records an authentication result in the metrics and turns a failure into the
    /// refusal the client sees.
    fn identity_or_refusal(
        &self,
        result: Result<(Identity, Outcome), AuthError>,
    ) -> Result<Identity, Refusal> {
        let error = match result {
            Ok((identity, outcome)) => {
                let label = match outcome {
                    Outcome::Anonymous => None,
                    Outcome::Verified => Some("success"),
                    Outcome::Cached => Some("cached"),
                };
                if let Some(label) = label {
                    self.metrics.auth_attempt(identity.method.as_str(), label);
                }
                return Ok(identity);
            }
            Err(error) => error,
        };

        let method = error.method().as_str();
        if let AuthError::DirectoryUnavailable { problem } = &error {
            self.metrics.auth_attempt(method, "unavailable");
            self.metrics.directory_unavailable();
            tracing::error!(%problem, "ldap directory unavailable; directory users cannot sign in");
            return Err(Refusal::DirectoryUnavailable);
        }
        self.metrics.auth_attempt(method, "failure");
        Err(match error {
            AuthError::Token(token_error) => {
                self.metrics.token_verified(token_error.metric_label());
                tracing::info!(reason = token_error.metric_label(), "bearer token refused");
                Refusal::Unauthenticated {
                    scope: None,
                    error: Some("invalid_token"),
                }
            }
            AuthError::IdentityMismatch {
                certificate,
                credential,
            } => {
                tracing::info!(
                    user = credential.as_deref().unwrap_or("-"), certificate.subject = %certificate,
                    "client certificate and credentials disagree"
                );
                Refusal::IdentityMismatch
            }
            AuthError::CertificateRequired => Refusal::CertificateRequired,
            AuthError::PasswordRequired => Refusal::Unauthenticated {
                scope: None,
                error: None,
            },
            _ => Refusal::BadCredentials,
        })
    }

    /// The one place an access decision turns into a refusal: the ACL first, then, for a
    /// bearer token, what the token grants.
    fn authorize(
        &self,
        ctx: &RequestCtx,
        repository: &RepositoryName,
        action: Action,
    ) -> Result<(), Refusal> {
        let identity = &ctx.identity;
        let decision = self.policy.evaluate(identity, repository.as_str(), action);
        if let Decision::Deny { rule } = decision {
            self.metrics.acl_denied(action.as_str());
            tracing::info!(
                user = identity.display_name(), repo = %repository, action = %action,
                acl.rule = ?rule, "access denied"
            );
            if !identity.is_anonymous() {
                return Err(Refusal::Denied);
            }
            return Err(Refusal::Unauthenticated {
                scope: Some(scope_for(repository, action)),
                error: None,
            });
        }

        if !token_grants(identity, repository, action) {
            self.metrics.token_verified("insufficient_scope");
            return Err(Refusal::Unauthenticated {
                scope: Some(scope_for(repository, action)),
                error: Some("invalid_token"),
            });
        }
        Ok(())
    }

    /// A bearer token must carry the catalog scope to list repositories.
    fn authorize_catalog(&self, ctx: &RequestCtx) -> Result<(), Refusal> {
        let Some(granted) = &ctx.identity.granted else {
            return Ok(());
        };
        if granted.iter().any(ResourceActions::allows_catalog) {
            return Ok(());
        }
        Err(Refusal::Unauthenticated {
            scope: Some("registry:catalog:*".into()),
            error: Some("invalid_token"),
        })
    }

    /// Whether the caller may do `action` on `repository`, without refusing: ACL and token.
    fn may(&self, ctx: &RequestCtx, repository: &RepositoryName, action: Action) -> bool {
        let allowed = self
            .policy
            .evaluate(&ctx.identity, repository.as_str(), action)
            .is_allowed();
        allowed && token_grants(&ctx.identity, repository, action)
    }

    async fn dispatch(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
        route: Route,
    ) -> Handled {
        let method = ctx.method.clone();
        match (route, method) {
            (Route::Base, Method::GET | Method::HEAD) => {
                let status = StatusCode::OK;
                respond::json(session, respond::header(status), b"{}".to_vec())
                    .await
                    .map_err(io)?;
                Ok(status)
            }
            (Route::Catalog, Method::GET) => self.catalog(session, ctx).await,
            (Route::Tags { repository }, _) => self.tags(session, &repository).await,
            (
                Route::Manifest {
                    repository,
                    reference,
                },
                Method::GET | Method::HEAD,
            ) => self.manifest_get(session, &repository, reference).await,
            (
                Route::Manifest {
                    repository,
                    reference,
                },
                Method::PUT,
            ) => self.manifest_put(session, ctx, repository, reference).await,
            (Route::Blob { repository, digest }, Method::GET | Method::HEAD) => {
                self.blob_get(session, repository, digest).await
            }
            (Route::UploadStart { repository }, Method::POST) => {
                self.upload_start(session, ctx, repository).await
            }
            (Route::Upload { repository, id }, Method::PATCH) => {
                self.upload_patch(session, repository, id).await
            }
            (Route::Upload { repository, id }, Method::PUT) => {
                self.upload_put(session, ctx, repository, id).await
            }
            (Route::Upload { repository, id }, Method::GET) => {
                self.upload_status(session, repository, id).await
            }
            (Route::Upload { repository, id }, Method::DELETE) => {
                let registry = self.registry.clone();
                blocking(move || registry.upload_cancel(&repository, &id)).await?;
                send_empty(session, respond::header(StatusCode::NO_CONTENT)).await
            }
            (Route::Unknown, _) => Err(Refusal::NotFound),
            _ => Err(Refusal::MethodNotAllowed),
        }
    }

    // --- discovery ---

    async fn catalog(&self, session: &mut ServerSession, ctx: &RequestCtx) -> Handled {
        let registry = self.registry.clone();
        let all = blocking(move || registry.catalog()).await?;
        let visible: Vec<String> = all
            .into_iter()
            .filter(|repository| self.may(ctx, repository, Action::Pull))
            .map(|repository| repository.to_string())
            .collect();
        let (page, next) = paginate(visible, &query(session))?;
        let mut head = respond::header(StatusCode::OK);
        if let Some(last) = next {
            set(
                &mut head,
                "Link",
                format!("</v2/_catalog?last={last}&n={}>; rel=\"next\"", page.len()),
            );
        }
        let body = serde_json::to_vec(&serde_json::json!({ "repositories": page })).expect("JSON");
        respond::json(session, head, body).await.map_err(io)?;
        Ok(StatusCode::OK)
    }

    async fn tags(&self, session: &mut ServerSession, repository: &RepositoryName) -> Handled {
        let registry = self.registry.clone();
        let name = repository.clone();
        let tags = blocking(move || registry.tags(&name)).await?;
        let (page, next) = paginate(tags, &query(session))?;
        let mut head = respond::header(StatusCode::OK);
        if let Some(last) = next {
            let link = format!(
                "</v2/{repository}/tags/list?last={last}&n={}>; rel=\"next\"",
                page.len()
            );
            set(&mut head, "Link", link);
        }
        let body = serde_json::json!({ "name": repository.as_str(), "tags": page });
        respond::json(session, head, serde_json::to_vec(&body).expect("JSON"))
            .await
            .map_err(io)?;
        Ok(StatusCode::OK)
    }

    // --- manifests ---

    async fn manifest_get(
        &self,
        session: &mut ServerSession,
        repository: &RepositoryName,
        reference: Reference,
    ) -> Handled {
        let registry = self.registry.clone();
        let name = repository.clone();
        let found = blocking(move || registry.manifest_get(&name, &reference)).await?;

        let accept: Vec<&str> = session
            .req_header()
            .headers
            .get_all(http::header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        if !manifest::accepts(&accept, &found.media_type) {
            return Err(RegistryError::ManifestUnknown.into());
        }

        let mut head = respond::header(StatusCode::OK);
        set(&mut head, "Content-Type", &found.media_type);
        set(&mut head, "Content-Length", found.bytes.len());
        set(&mut head, "Docker-Content-Digest", &found.digest);
        set(&mut head, "ETag", format!("\"{}\"", found.digest));
        session
            .write_response_header(Box::new(head))
            .await
            .map_err(io)?;
        if session.req_header().method != Method::HEAD {
            session
                .write_response_body(Bytes::from(found.bytes), true)
                .await
                .map_err(io)?;
        }
        Ok(StatusCode::OK)
    }

    async fn manifest_put(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
        repository: RepositoryName,
        reference: Reference,
    ) -> Handled {
        let content_type = header_str(session, http::header::CONTENT_TYPE).map(str::to_string);
        let body = read_small_body(session, MAX_MANIFEST_BYTES).await?;

        let registry = self.registry.clone();
        let name = repository.clone();
        let stored_reference = reference.clone();
        let digest = blocking(move || {
            registry.manifest_put(&name, &stored_reference, content_type.as_deref(), &body)
        })
        .await?;
        self.metrics.manifest_stored();
        let user = ctx.identity.display_name();
        tracing::info!(user, repo = %repository, reference = %reference,
            digest = %digest, "manifest pushed");

        let mut head = respond::header(StatusCode::CREATED);
        set(
            &mut head,
            "Location",
            format!("/v2/{repository}/manifests/{digest}"),
        );
        set(&mut head, "Docker-Content-Digest", &digest);
        send_empty(session, head).await
    }

    // --- blobs ---

    async fn blob_get(
        &self,
        session: &mut ServerSession,
        repository: RepositoryName,
        digest: Digest,
    ) -> Handled {
        let range = header_str(session, http::header::RANGE)
            .map(parse_range)
            .transpose()?
            .flatten();
        let registry = self.registry.clone();
        let wanted = digest.clone();
        let reader = blocking(move || registry.blob_open(&repository, &wanted, range)).await?;

        let (first, last) = reader.range;
        let length = if reader.size == 0 {
            0
        } else {
            last - first + 1
        };
        let status = if range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        let mut head = respond::header(status);
        set(&mut head, "Content-Type", "application/octet-stream");
        set(&mut head, "Content-Length", length);
        set(&mut head, "Docker-Content-Digest", &digest);
        set(&mut head, "Accept-Ranges", "bytes");
        set(&mut head, "ETag", format!("\"{digest}\""));
        set(&mut head, "Cache-Control", "max-age=31536000");
        if range.is_some() {
            set(
                &mut head,
                "Content-Range",
                format!("bytes {first}-{last}/{}", reader.size),
            );
        }
        session
            .write_response_header(Box::new(head))
            .await
            .map_err(io)?;
        if session.req_header().method == Method::HEAD || length == 0 {
            session.finish_body().await.map_err(io)?;
            return Ok(status);
        }

        // A blocking reader fills a bounded channel; this task drains it into the socket.
        let (sender, mut receiver) = mpsc::channel::<std::io::Result<Bytes>>(BODY_CHANNEL_DEPTH);
        let mut file = reader.file;
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut remaining = length;
            while remaining > 0 {
                let mut buffer = BytesMut::zeroed(READ_CHUNK.min(remaining as usize));
                let result = file.read(&mut buffer).and_then(|read| match read {
                    0 => Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob shorter than its size",
                    )),
                    read => Ok(read),
                });
                let chunk = result.map(|read| {
                    buffer.truncate(read);
                    remaining -= read as u64;
                    buffer.freeze()
                });
                let failed = chunk.is_err();
                if sender.blocking_send(chunk).is_err() || failed {
                    return;
                }
            }
        });
        while let Some(chunk) = receiver.recv().await {
            let chunk = chunk.map_err(RegistryError::Storage)?;
            session
                .write_response_body(chunk, false)
                .await
                .map_err(io)?;
        }
        session.finish_body().await.map_err(io)?;
        Ok(status)
    }

    // --- uploads ---

    async fn upload_start(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
        repository: RepositoryName,
    ) -> Handled {
        let query = query(session);
        let digest = query
            .get("digest")
            .map(|raw| Digest::parse(raw))
            .transpose()?;

        // Cross-repository mount: only from a repository the caller may pull; otherwise an
        // ordinary upload starts, so the answer tells nothing about other repositories.
        if let (Some(mount), Some(from)) = (query.get("mount"), query.get("from")) {
            let digest = Digest::parse(mount)?;
            if let Ok(from) = RepositoryName::parse(from) {
                if self.may(ctx, &from, Action::Pull)
                    && self.mount(&repository, &from, &digest).await?
                {
                    return blob_created(session, &repository, &digest).await;
                }
            }
        }

        let registry = self.registry.clone();
        let name = repository.clone();
        let id = blocking(move || registry.upload_start(&name)).await?;

        // Monolithic upload: the whole blob in this request.
        if let Some(digest) = digest {
            self.receive_chunk(session, &repository, &id, None).await?;
            return self.complete(session, ctx, repository, id, digest).await;
        }
        upload_accepted(session, &repository, &id, 0).await
    }

    async fn mount(
        &self,
        repository: &RepositoryName,
        from: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, Refusal> {
        let registry = self.registry.clone();
        let (to, from, digest) = (repository.clone(), from.clone(), digest.clone());
        Ok(blocking(move || registry.blob_mount(&to, &from, &digest)).await?)
    }

    async fn upload_patch(
        &self,
        session: &mut ServerSession,
        repository: RepositoryName,
        id: UploadId,
    ) -> Handled {
        let start = header_str(session, http::header::CONTENT_RANGE)
            .map(parse_content_range)
            .transpose()?;
        let size = self.receive_chunk(session, &repository, &id, start).await?;
        upload_accepted(session, &repository, &id, size).await
    }

    async fn upload_put(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
        repository: RepositoryName,
        id: UploadId,
    ) -> Handled {
        let Some(raw) = query(session).get("digest").cloned() else {
            return Err(RegistryError::DigestInvalid {
                detail: "PUT needs ?digest=".into(),
            }
            .into());
        };
        let digest = Digest::parse(&raw)?;
        let start = header_str(session, http::header::CONTENT_RANGE)
            .map(parse_content_range)
            .transpose()?;
        self.receive_chunk(session, &repository, &id, start).await?;
        self.complete(session, ctx, repository, id, digest).await
    }

    async fn upload_status(
        &self,
        session: &mut ServerSession,
        repository: RepositoryName,
        id: UploadId,
    ) -> Handled {
        let registry = self.registry.clone();
        let (name, upload) = (repository.clone(), id.clone());
        let size = blocking(move || registry.upload_size(&name, &upload)).await?;
        let mut head = upload_headers(StatusCode::NO_CONTENT, &repository, &id, size);
        set(&mut head, "Content-Length", 0);
        send_empty(session, head).await
    }

    async fn complete(
        &self,
        session: &mut ServerSession,
        ctx: &RequestCtx,
        repository: RepositoryName,
        id: UploadId,
        digest: Digest,
    ) -> Handled {
        let registry = self.registry.clone();
        let (name, wanted) = (repository.clone(), digest.clone());
        let size = blocking(move || registry.upload_complete(&name, &id, &wanted)).await?;
        self.metrics.blob_stored();
        let user = ctx.identity.display_name();
        tracing::debug!(user, repo = %repository, digest = %digest, size, "blob stored");
        blob_created(session, &repository, &digest).await
    }

    /// Streams the request body into the upload session; returns the session's new size.
    /// The body is hashed and written on a blocking thread fed by a bounded channel.
    async fn receive_chunk(
        &self,
        session: &mut ServerSession,
        repository: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
    ) -> Result<u64, Refusal> {
        let registry = self.registry.clone();
        let (name, upload) = (repository.clone(), id.clone());
        let mut writer = blocking(move || registry.upload_append(&name, &upload, start)).await?;
        continue_if_expected(session).await?;

        let (sender, mut receiver) = mpsc::channel::<Bytes>(BODY_CHANNEL_DEPTH);
        let write_task = tokio::task::spawn_blocking(move || {
            while let Some(chunk) = receiver.blocking_recv() {
                writer.write(&chunk)?;
            }
            Ok::<_, std::io::Error>(writer)
        });

        let mut read_error = None;
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    if sender.send(chunk).await.is_err() {
                        break; // The writer failed; its error is reported below.
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    read_error = Some(error);
                    break;
                }
            }
        }
        drop(sender);

        let writer = write_task
            .await
            .map_err(|join| RegistryError::Storage(std::io::Error::other(join)))?
            .map_err(RegistryError::Storage)?;
        let size = self.registry.upload_chunk_done(writer);
        if let Some(error) = read_error {
            // The client went away mid-chunk; what arrived is kept and the session stays
            // resumable from `size`.
            session.set_keepalive(None);
            return Err(Refusal::BadRequest(format!(
                "request body was cut short: {error}"
            )));
        }
        Ok(size)
    }
}

#[async_trait]
impl HttpServerApp for Gateway {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        _shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match session.read_request().await {
            Ok(true) => {}
            _ => return None,
        }

        let mut ctx = RequestCtx::new(&session);
        let status = self.serve(&mut session, &mut ctx).await;
        ctx.bytes_received = session.body_bytes_read() as u64;
        ctx.bytes_sent = session.body_bytes_sent() as u64;
        self.record(&ctx, status);

        let settings = HttpPersistentSettings::for_session(&session);
        match session.finish().await {
            Ok(Some(stream)) => Some(ReusedHttpStream::from_reusable_stream(stream, settings)),
            _ => None,
        }
    }
}

impl Gateway {
    /// The access log line and the request metrics.
    fn record(&self, ctx: &RequestCtx, status: StatusCode) {
        let seconds = ctx.started.elapsed().as_secs_f64();
        self.metrics.request(
            ctx.method.as_str(),
            ctx.route_kind,
            status.as_u16(),
            seconds,
        );
        self.metrics.received(ctx.bytes_received);
        self.metrics.sent(ctx.bytes_sent);
        tracing::info!(
            client.ip = %ctx.client_ip, user = ctx.identity.display_name(), method = %ctx.method,
            route = ctx.route_kind, repo = ctx.repository.as_deref().unwrap_or("-"),
            status = status.as_u16(), error = ctx.error_code.unwrap_or("-"),
            bytes.received = ctx.bytes_received, bytes.sent = ctx.bytes_sent,
            duration_ms = (seconds * 1000.0) as u64, "request"
        );
    }
}

// --- helpers ---

/// Whether the caller's bearer token (if they used one) covers `action` on `repository`.
fn token_grants(identity: &Identity, repository: &RepositoryName, action: Action) -> bool {
    match &identity.granted {
        None => true,
        Some(granted) => granted
            .iter()
            .any(|grant| grant.allows_repository(repository.as_str(), action)),
    }
}

/// The scope a client should ask the token endpoint for to do `action` on `repository`.
/// Pushing needs pull too, as docker asks for both.
fn scope_for(repository: &RepositoryName, action: Action) -> String {
    let actions = match action {
        Action::Push => "pull,push",
        other => other.as_str(),
    };
    format!("repository:{repository}:{actions}")
}

/// Runs blocking registry work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| Err(RegistryError::Storage(std::io::Error::other(join))))
}

fn io(error: Box<pingora::Error>) -> Refusal {
    Refusal::Registry(RegistryError::Storage(std::io::Error::other(
        error.to_string(),
    )))
}

fn header_str(session: &ServerSession, name: http::header::HeaderName) -> Option<&str> {
    session
        .get_header(name)
        .and_then(|value| value.to_str().ok())
}

/// Answers `Expect: 100-continue` so the client starts sending the body.
async fn continue_if_expected(session: &mut ServerSession) -> Result<(), Refusal> {
    let expects = header_str(session, http::header::EXPECT)
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects {
        session.write_continue_response().await.map_err(io)?;
    }
    Ok(())
}

/// Reads a body that must fit in memory (a manifest), refusing it past `limit`.
async fn read_small_body(session: &mut ServerSession, limit: usize) -> Result<Vec<u8>, Refusal> {
    let too_large = || RegistryError::ManifestInvalid {
        detail: format!("manifest exceeds {limit} bytes"),
    };
    let declared =
        header_str(session, http::header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit.saturating_mul(DRAIN_FACTOR)) {
        return Err(too_large().into());
    }
    continue_if_expected(session).await?;

    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = session.read_request_body().await.map_err(io)? {
        if body.len() + chunk.len() > limit {
            drain(session, limit.saturating_mul(DRAIN_FACTOR)).await;
            return Err(too_large().into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How far past its limit a too-large small body is still read, so that the client, which
/// is usually still sending, gets the error response rather than a reset connection.
const DRAIN_FACTOR: usize = 4;

/// Reads and discards the rest of the request body, up to `cap` bytes; beyond that the
/// connection is closed after the response.
async fn drain(session: &mut ServerSession, cap: usize) {
    let mut drained = 0;
    while drained <= cap {
        match session.read_request_body().await {
            Ok(Some(chunk)) => drained += chunk.len(),
            _ => return,
        }
    }
    session.set_keepalive(None);
}

async fn send_empty(
    session: &mut ServerSession,
    mut head: pingora::http::ResponseHeader,
) -> Handled {
    let status = head.status;
    if head.headers.get(http::header::CONTENT_LENGTH).is_none() {
        set(&mut head, "Content-Length", 0);
    }
    session
        .write_response_header(Box::new(head))
        .await
        .map_err(io)?;
    session.finish_body().await.map_err(io)?;
    Ok(status)
}

fn upload_headers(
    status: StatusCode,
    repository: &RepositoryName,
    id: &UploadId,
    size: u64,
) -> pingora::http::ResponseHeader {
    let mut head = respond::header(status);
    set(
        &mut head,
        "Location",
        format!("/v2/{repository}/blobs/uploads/{id}"),
    );
    set(&mut head, "Docker-Upload-UUID", id);
    set(&mut head, "Range", format!("0-{}", size.saturating_sub(1)));
    head
}

async fn upload_accepted(
    session: &mut ServerSession,
    repository: &RepositoryName,
    id: &UploadId,
    size: u64,
) -> Handled {
    send_empty(
        session,
        upload_headers(StatusCode::ACCEPTED, repository, id, size),
    )
    .await
}

async fn blob_created(
    session: &mut ServerSession,
    repository: &RepositoryName,
    digest: &Digest,
) -> Handled {
    let mut head = respond::header(StatusCode::CREATED);
    set(
        &mut head,
        "Location",
        format!("/v2/{repository}/blobs/{digest}"),
    );
    set(&mut head, "Docker-Content-Digest", digest);
    send_empty(session, head).await
}

/// The request's query parameters (first value of each).
fn query(session: &ServerSession) -> std::collections::HashMap<String, String> {
    let query = session.req_header().uri.query().unwrap_or("");
    let mut map = std::collections::HashMap::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        map.entry(key.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    map
}

/// Applies `n` and `last` to a sorted list; returns the page and, when more follow, the last
/// item of the page for the `Link` header.
fn paginate(
    items: Vec<String>,
    query: &std::collections::HashMap<String, String>,
) -> Result<(Vec<String>, Option<String>), Refusal> {
    let after: Vec<String> = match query.get("last") {
        Some(last) => items.into_iter().filter(|item| item > last).collect(),
        None => items,
    };
    let Some(raw) = query.get("n") else {
        return Ok((after, None));
    };
    let n: usize = raw
        .parse()
        .map_err(|_| Refusal::BadRequest(format!("n={raw} is not a count")))?;
    if after.len() <= n {
        return Ok((after, None));
    }
    let page: Vec<String> = after.into_iter().take(n).collect();
    let next = page.last().cloned();
    Ok((page, next))
}

/// `Range: bytes=first-[last]` for a blob read; `None` when the header is not a single range
/// we understand (then the whole blob is sent, as HTTP allows).
fn parse_range(value: &str) -> Result<Option<(u64, Option<u64>)>, Refusal> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    if spec.contains(',') || first.is_empty() {
        return Ok(None);
    }
    let first: u64 = first
        .trim()
        .parse()
        .map_err(|_| Refusal::BadRequest("malformed Range".into()))?;
    let last = match last.trim() {
        "" => None,
        text => Some(
            text.parse::<u64>()
                .map_err(|_| Refusal::BadRequest("malformed Range".into()))?,
        ),
    };
    if last.is_some_and(|last| last < first) {
        return Ok(None);
    }
    Ok(Some((first, last)))
}

/// `Content-Range: first-last` (or `bytes first-last/*`) on a chunk: where it starts.
fn parse_content_range(value: &str) -> Result<u64, Refusal> {
    let text = value.trim().trim_start_matches("bytes").trim();
    let first = text.split(['-', '/']).next().unwrap_or("");
    first.trim().parse().map_err(|_| {
        RegistryError::BlobUploadInvalid {
            detail: format!("malformed Content-Range {value}"),
        }
        .into()
    })
}
