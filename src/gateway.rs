//! The Pingora application that owns each HTTPS session: it reads the request, routes it,
//! authenticates the caller, asks the ACL, and calls the registry engine, streaming bodies
//! between the connection and storage. Nothing reaches the engine before the ACL allowed it.
//!
//! Each request takes the live configuration snapshot ([`crate::live`]) once, when its head
//! has been read, and keeps it to the end: a reload never changes the rules under a request
//! already running. Pushes, tag moves and refusals are written to the audit log.
//!
//! Blocking storage work runs on tokio's blocking pool. Upload bodies flow through a
//! bounded channel into a blocking writer that hashes and stores each chunk, so memory stays
//! flat whatever the blob size; downloads flow the other way the same way. With
//! `storage.s3.redirect` on, a blob `GET` that passed the ACL is answered with a `307` to a
//! short-lived presigned URL instead, and the bytes flow from the object store directly.

pub mod ctx;
pub mod respond;
pub mod route;
mod token_endpoint;
mod ui_endpoint;

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, StatusCode};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use tokio::sync::mpsc;

use crate::acl::{Action, Basis, Decision};
use crate::auth::basic;
use crate::auth::token::ResourceActions;
use crate::auth::{AuthError, AuthMethod, Identity, Outcome};
use crate::live::{Audited, Snapshot};
use crate::metrics::Metrics;
use crate::registry::manifest::{self, MAX_MANIFEST_BYTES};
use crate::registry::{
    ByteRange, Digest, Reference, Registry, RegistryError, RepositoryName, UploadId,
};
use crate::ui::{self, Ui};
pub use ctx::RequestCtx;
use respond::{set, upload_headers, Refusal};
use route::Route;

/// Chunks in flight between the connection and the blocking writer or reader.
const BODY_CHANNEL_DEPTH: usize = 8;

/// Shared state of the HTTPS service: the engine, the live configuration (who is who, who
/// may do what), and the metrics.
pub struct Gateway {
    registry: Arc<Registry>,
    live: Arc<ArcSwap<Snapshot>>,
    metrics: Metrics,
    ui: Arc<Ui>,
}

type Handled = Result<StatusCode, Refusal>;

impl Gateway {
    /// A gateway serving `registry` under whatever snapshot `live` holds per request, with
    /// the web UI beside the registry API.
    pub fn new(registry: Arc<Registry>, live: Arc<ArcSwap<Snapshot>>, metrics: Metrics) -> Self {
        let ui = Arc::new(Ui::new(registry.clone(), metrics.clone()));
        Gateway {
            ui,
            registry,
            live,
            metrics,
        }
    }

    /// Serves one request from head to last byte; returns its status.
    async fn serve(&self, session: &mut ServerSession, ctx: &mut RequestCtx) -> StatusCode {
        let result = self.authenticate_and_dispatch(session, ctx).await;
        match result {
            Ok(status) => status,
            Err(Refusal::Downstream(error)) => {
                tracing::debug!(%error, "client connection failed");
                session.set_keepalive(None);
                respond::CLIENT_CLOSED_REQUEST
            }
            Err(refusal) => {
                ctx.error_code = Some(refusal.code());
                if let Refusal::Registry(RegistryError::Storage(error)) = &refusal {
                    self.metrics
                        .storage_error(error.backend(), error.operation());
                    tracing::error!(backend = error.backend(), error = ?refusal,
                        "storage failed");
                } else if refusal.is_server_fault() {
                    tracing::error!(error = ?refusal, "request failed");
                }
                let challenge = challenge(&ctx.live, session);
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
        // Two headers would leave it to chance which one counts.
        let mut authorizations = session
            .req_header()
            .headers
            .get_all(http::header::AUTHORIZATION)
            .iter();
        let authorization = authorizations.next().map(|v| v.as_bytes().to_vec());
        if authorizations.next().is_some() {
            return Err(Refusal::BadRequest(
                "send one Authorization header, not several".into(),
            ));
        }
        let certificate = ctx.certificate.clone();
        let live = ctx.live.clone();
        let authenticated = live
            .auth
            .authenticate(authorization.as_deref(), certificate.as_deref())
            .await;
        if matches!(authenticated, Err(AuthError::InvalidCredentials)) {
            let claimed = authorization.as_deref().and_then(basic::parse);
            let user = claimed
                .as_ref()
                .map_or("-", |credential| credential.user.as_str());
            tracing::info!(user, client.ip = %ctx.client_ip, "sign-in refused");
        }
        ctx.identity = self.identity_or_refusal(authenticated)?;
        if ctx.identity.method == AuthMethod::Bearer {
            self.metrics.token_verified("valid");
        }

        // The token service and its public keys live beside the registry API.
        let path = session.req_header().uri.path();
        if live.tokens.is_some() && token_endpoint::handles(path) {
            ctx.route_kind = "token";
            return self.token_endpoint(session, ctx).await;
        }

        // The web UI has its own pages, sign-in and access checks.
        if ui::handles(path) {
            ctx.route_kind = "ui";
            return self.ui_endpoint(session, ctx).await;
        }

        // What they ask for.
        let route = route?;
        ctx.reference = match &route {
            Route::Manifest { reference, .. } => Some(reference.to_string()),
            Route::Blob { digest, .. } => Some(digest.to_string()),
            _ => None,
        };

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
        if ctx.method == Method::DELETE {
            self.refuse_deletes_breaking_protected_tags(ctx, &route)
                .await?;
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
        ctx: &mut RequestCtx,
        repository: &RepositoryName,
        action: Action,
    ) -> Result<(), Refusal> {
        let decision = ctx
            .live
            .policy
            .evaluate(&ctx.identity, repository.as_str(), action);
        ctx.action = Some(action);
        ctx.decision = Some(decision);
        self.metrics
            .acl_decision(action.as_str(), decision.is_allowed());

        if !decision.is_allowed() {
            tracing::info!(
                user = ctx.identity.display_name(), repo = %repository, action = %action,
                acl.rule = %decision.basis(), "access denied"
            );
            self.audit(ctx, "denied", None, None);
            if !ctx.identity.is_anonymous() {
                return Err(Refusal::Denied {
                    repository: repository.to_string(),
                    action,
                });
            }
            return Err(Refusal::Unauthenticated {
                scope: Some(scope_for(repository, action)),
                error: None,
            });
        }
        tracing::debug!(
            user = ctx.identity.display_name(), repo = %repository, action = %action,
            acl.rule = %decision.basis(), "access allowed"
        );

        if !token_grants(&ctx.identity, repository, action) {
            self.metrics.token_verified("insufficient_scope");
            return Err(Refusal::Unauthenticated {
                scope: Some(scope_for(repository, action)),
                error: Some("invalid_token"),
            });
        }
        Ok(())
    }

    /// A delete must not take away what a protected tag names: deleting a manifest by
    /// digest removes every tag naming it, and deleting a blob breaks every tag whose
    /// manifest uses it.
    async fn refuse_deletes_breaking_protected_tags(
        &self,
        ctx: &mut RequestCtx,
        route: &Route,
    ) -> Result<(), Refusal> {
        let registry = self.registry.clone();
        let tags = match route.clone() {
            Route::Manifest {
                repository,
                reference,
            } => blocking(move || registry.tags_removed_by(&repository, &reference)).await?,
            Route::Blob { repository, digest } => {
                let live = ctx.live.clone();
                blocking(move || {
                    let tags = registry.tags(&repository).unwrap_or_default();
                    let mut using = Vec::new();
                    for tag in tags {
                        let Ok(parsed) = crate::registry::Tag::parse(&tag) else {
                            continue;
                        };
                        if live
                            .policy
                            .protected_tag(repository.as_str(), &tag)
                            .is_none()
                        {
                            continue;
                        }
                        let digests = registry.digests_under_tag(&repository, &parsed);
                        if digests.is_ok_and(|digests| digests.contains(&digest)) {
                            using.push(tag);
                        }
                    }
                    Ok(using)
                })
                .await?
            }
            _ => Vec::new(),
        };
        let Some(repository) = route.repository() else {
            return Ok(());
        };
        for tag in tags {
            self.refuse_if_protected(ctx, repository, &tag)?;
        }
        Ok(())
    }

    /// Refuses to move or delete `tag` when an `immutable_tags` rule protects it.
    fn refuse_if_protected(
        &self,
        ctx: &mut RequestCtx,
        repository: &RepositoryName,
        tag: &str,
    ) -> Result<(), Refusal> {
        let Some(basis) = ctx.live.policy.protected_tag(repository.as_str(), tag) else {
            return Ok(());
        };
        let Basis::ImmutableTag(rule) = basis else {
            return Ok(());
        };
        ctx.decision = Some(Decision::Deny(basis));
        tracing::info!(
            user = ctx.identity.display_name(), repo = %repository, reference = tag,
            acl.rule = %basis, "immutable tag refused"
        );
        self.audit(ctx, "denied", None, None);
        Err(Refusal::ImmutableTag {
            tag: tag.to_string(),
            rule,
            rule_text: ctx.live.policy.text_of(basis).unwrap_or_default(),
        })
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
        let allowed = ctx
            .live
            .policy
            .evaluate(&ctx.identity, repository.as_str(), action)
            .is_allowed();
        allowed && token_grants(&ctx.identity, repository, action)
    }

    /// Writes one audit event about this request, under the decision it carries.
    fn audit(
        &self,
        ctx: &RequestCtx,
        event: &'static str,
        digest: Option<&Digest>,
        previous: Option<&Digest>,
    ) {
        let (Some(repository), Some(action), Some(decision)) =
            (ctx.repository.as_deref(), ctx.action, ctx.decision)
        else {
            return;
        };
        ctx.live.audit(Audited {
            event,
            identity: &ctx.identity,
            client: &ctx.client_ip,
            repository,
            reference: ctx.reference.clone(),
            digest,
            previous,
            action,
            decision,
        });
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
            (
                Route::Manifest {
                    repository,
                    reference,
                },
                Method::DELETE,
            ) => {
                self.manifest_delete(session, ctx, repository, reference)
                    .await
            }
            (Route::Blob { repository, digest }, Method::GET | Method::HEAD) => {
                self.blob_get(session, repository, digest).await
            }
            (Route::Blob { repository, digest }, Method::DELETE) => {
                self.blob_delete(session, ctx, repository, digest).await
            }
            (Route::Referrers { repository, digest }, Method::GET | Method::HEAD) => {
                self.referrers(session, repository, digest).await
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
                let (name, upload) = (repository.clone(), id.clone());
                blocking(move || registry.upload_cancel(&name, &upload)).await?;
                let mut head = respond::header(StatusCode::NO_CONTENT);
                set(&mut head, "Docker-Upload-UUID", id);
                send_empty(session, head).await
            }
            (Route::Unknown, _) => Err(Refusal::NotFound),
            _ => Err(Refusal::MethodNotAllowed),
        }
    }

    // --- discovery ---

    async fn catalog(&self, session: &mut ServerSession, ctx: &RequestCtx) -> Handled {
        let registry = self.registry.clone();
        let all = blocking(move || registry.catalog()).await?;

        // A token reached here holding the catalog scope (authorize_catalog), which lists
        // repositories without naming them; which ones it lists is the ACL's to say.
        let policy = &ctx.live.policy;
        let visible: Vec<String> = all
            .into_iter()
            .filter(|repository| {
                policy
                    .evaluate(&ctx.identity, repository.as_str(), Action::Pull)
                    .is_allowed()
            })
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

    /// `GET /v2/<name>/referrers/<digest>`: an OCI index of the manifests whose `subject` is
    /// `digest`, optionally only those of one `artifactType`.
    async fn referrers(
        &self,
        session: &mut ServerSession,
        repository: RepositoryName,
        digest: Digest,
    ) -> Handled {
        let artifact_type = query(session).get("artifactType").cloned();
        let registry = self.registry.clone();
        let wanted = artifact_type.clone();
        let found =
            blocking(move || registry.referrers(&repository, &digest, wanted.as_deref())).await?;

        let mut head = respond::header(StatusCode::OK);
        if artifact_type.is_some() {
            set(&mut head, "OCI-Filters-Applied", "artifactType");
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_INDEX,
            "manifests": found,
        });
        let body = serde_json::to_vec(&index).expect("JSON values serialise");
        respond::json_typed(session, head, manifest::OCI_INDEX, body)
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

        // Where the tag pointed before: a protected tag may only be pushed again unchanged.
        // Limitation: two pushes racing to create the same protected tag can both pass here.
        let previous = match &reference {
            Reference::Tag(tag) => {
                let (registry, name, tag) =
                    (self.registry.clone(), repository.clone(), tag.clone());
                blocking(move || registry.tag_digest(&name, &tag)).await?
            }
            Reference::Digest(_) => None,
        };
        if let (Reference::Tag(tag), Some(previous)) = (&reference, &previous) {
            if *previous != Digest::sha256_of(&body) {
                self.refuse_if_protected(ctx, &repository, tag.as_str())?;
            }
        }

        let registry = self.registry.clone();
        let name = repository.clone();
        let stored_reference = reference.clone();
        let pushed = blocking(move || {
            registry.manifest_put(&name, &stored_reference, content_type.as_deref(), &body)
        })
        .await?;
        let digest = pushed.digest;
        self.metrics.manifest_stored();
        self.ui.repository_changed(&repository);
        let user = ctx.identity.display_name();
        tracing::info!(user, repo = %repository, reference = %reference,
            digest = %digest, "manifest pushed");
        let moved = previous.as_ref().filter(|previous| **previous != digest);
        let event = if moved.is_some() { "tag_move" } else { "push" };
        self.audit(ctx, event, Some(&digest), moved);

        let mut head = respond::header(StatusCode::CREATED);
        set(
            &mut head,
            "Location",
            format!("/v2/{repository}/manifests/{digest}"),
        );
        set(&mut head, "Docker-Content-Digest", &digest);
        if let Some(subject) = pushed.subject {
            set(&mut head, "OCI-Subject", subject);
        }
        send_empty(session, head).await
    }

    async fn manifest_delete(
        &self,
        session: &mut ServerSession,
        ctx: &RequestCtx,
        repository: RepositoryName,
        reference: Reference,
    ) -> Handled {
        let registry = self.registry.clone();
        let (name, target) = (repository.clone(), reference.clone());
        blocking(move || registry.manifest_delete(&name, &target)).await?;
        let user = ctx.identity.display_name();
        tracing::info!(user, repo = %repository, reference = %reference, "manifest deleted");
        self.ui.repository_changed(&repository);
        let digest = match &reference {
            Reference::Digest(digest) => Some(digest),
            Reference::Tag(_) => None,
        };
        self.audit(ctx, "delete", digest, None);
        send_empty(session, respond::header(StatusCode::ACCEPTED)).await
    }

    // --- blobs ---

    async fn blob_delete(
        &self,
        session: &mut ServerSession,
        ctx: &RequestCtx,
        repository: RepositoryName,
        digest: Digest,
    ) -> Handled {
        let registry = self.registry.clone();
        let (name, target) = (repository.clone(), digest.clone());
        blocking(move || registry.blob_delete(&name, &target)).await?;
        let user = ctx.identity.display_name();
        tracing::info!(user, repo = %repository, digest = %digest, "blob deleted");
        self.ui.repository_changed(&repository);
        self.audit(ctx, "delete", Some(&digest), None);
        send_empty(session, respond::header(StatusCode::ACCEPTED)).await
    }

    async fn blob_get(
        &self,
        session: &mut ServerSession,
        repository: RepositoryName,
        digest: Digest,
    ) -> Handled {
        let range = header_str(session, http::header::RANGE).and_then(parse_range);
        if session.req_header().method == Method::GET {
            let (registry, name, wanted) =
                (self.registry.clone(), repository.clone(), digest.clone());
            let url = blocking(move || registry.blob_redirect(&name, &wanted)).await?;
            if let Some(url) = url {
                let mut head = respond::header(StatusCode::TEMPORARY_REDIRECT);
                set(&mut head, "Location", url);
                set(&mut head, "Docker-Content-Digest", &digest);
                return send_empty(session, head).await;
            }
        }
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
        let (sender, mut receiver) =
            mpsc::channel::<Result<Bytes, crate::storage::StorageError>>(BODY_CHANNEL_DEPTH);
        let chunks = reader.chunks;
        tokio::task::spawn_blocking(move || {
            for chunk in chunks {
                let failed = chunk.is_err();
                if sender.blocking_send(chunk).is_err() || failed {
                    return;
                }
            }
        });
        let mut sent = 0;
        while let Some(chunk) = receiver.recv().await {
            let chunk = chunk.map_err(RegistryError::Storage)?;
            sent += chunk.len() as u64;
            session
                .write_response_body(chunk, false)
                .await
                .map_err(io)?;
        }
        if sent != length {
            // The headers are out: all we can do is cut the connection short.
            session.set_keepalive(None);
            return Err(RegistryError::Internal {
                detail: format!("blob {digest} ended after {sent} of {length} bytes"),
            }
            .into());
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
        if let Some(mount) = query.get("mount") {
            let digest = Digest::parse(mount)?;
            let from = query.get("from").map(|from| RepositoryName::parse(from));
            if self.mount(ctx, &repository, from, &digest).await? {
                return blob_created(session, &repository, &digest, None).await;
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

    /// Mounts `digest` from `from` or, without `from`, from any repository the caller may
    /// pull that holds it. Returns whether it did; a bad `from` name just means no mount.
    async fn mount(
        &self,
        ctx: &RequestCtx,
        repository: &RepositoryName,
        from: Option<Result<RepositoryName, RegistryError>>,
        digest: &Digest,
    ) -> Result<bool, Refusal> {
        let registry = self.registry.clone();
        let (to, digest) = (repository.clone(), digest.clone());
        let from = match from {
            Some(Ok(from)) => from,
            Some(Err(_)) => return Ok(false),
            None => {
                let all = blocking({
                    let registry = registry.clone();
                    move || registry.blob_repositories()
                })
                .await?;
                let readable: Vec<RepositoryName> = all
                    .into_iter()
                    .filter(|candidate| self.may(ctx, candidate, Action::Pull))
                    .collect();
                let found = blocking(move || registry.blob_mount_from_any(&to, &readable, &digest));
                return Ok(found.await?);
            }
        };
        if !self.may(ctx, &from, Action::Pull) {
            return Ok(false);
        }
        Ok(blocking(move || registry.blob_mount(&to, &from, &digest)).await?)
    }

    async fn upload_patch(
        &self,
        session: &mut ServerSession,
        repository: RepositoryName,
        id: UploadId,
    ) -> Handled {
        let start = chunk_start(session)?;
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
        let start = chunk_start(session)?;
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
        let (name, wanted, upload) = (repository.clone(), digest.clone(), id.clone());
        let size = blocking(move || registry.upload_complete(&name, &upload, &wanted)).await?;
        self.metrics.blob_stored();
        let user = ctx.identity.display_name();
        tracing::debug!(user, repo = %repository, digest = %digest, size, "blob stored");
        blob_created(session, &repository, &digest, Some(&id)).await
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
                writer.write(chunk)?;
            }
            Ok::<_, crate::storage::StorageError>(writer)
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
            .map_err(|join| RegistryError::Internal {
                detail: join.to_string(),
            })?
            .map_err(RegistryError::Storage)?;
        let registry = self.registry.clone();
        let size = blocking(move || registry.upload_chunk_done(writer)).await?;
        if let Some(error) = read_error {
            // The client went away mid-chunk; what arrived is kept and the session stays
            // resumable from `size`.
            return Err(Refusal::Downstream(format!(
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

        let mut ctx = RequestCtx::new(&session, self.live.load_full());
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
            method_label(&ctx.method),
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

/// The method as a metric label: the ones the registry serves, and `other` for anything a
/// client makes up, so that no caller can add label values without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// How refused callers are told to authenticate: a bearer challenge naming the token
/// endpoint when token authentication is on, basic otherwise.
fn challenge(live: &Snapshot, session: &ServerSession) -> respond::Challenge {
    let Some(tokens) = live.tokens.as_ref() else {
        return respond::Challenge::Basic {
            realm: live.realm.clone(),
        };
    };
    let config = tokens.config();
    let realm = config.realm.clone().unwrap_or_else(|| {
        // The Host header is the client's word: only a plain host[:port] goes in the realm.
        let host = header_str(session, http::header::HOST)
            .filter(|host| http::uri::Authority::try_from(*host).is_ok())
            .filter(|host| !host.contains(['"', '@', '\\']))
            .unwrap_or("localhost");
        format!("https://{host}/token")
    });
    respond::Challenge::Bearer {
        realm,
        service: config.service.clone(),
    }
}

/// Whether the caller's bearer token (if they used one) covers `action` on `repository`.
fn token_grants(identity: &Identity, repository: &RepositoryName, action: Action) -> bool {
    identity.token_allows(repository.as_str(), action)
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
        .unwrap_or_else(|join| {
            Err(RegistryError::Internal {
                detail: join.to_string(),
            })
        })
}

/// A failed read from or write to the client's connection.
fn io(error: Box<pingora::Error>) -> Refusal {
    Refusal::Downstream(error.to_string())
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

/// 201 for a blob now in `repository`; `upload` names the session that delivered it.
async fn blob_created(
    session: &mut ServerSession,
    repository: &RepositoryName,
    digest: &Digest,
    upload: Option<&UploadId>,
) -> Handled {
    let mut head = respond::header(StatusCode::CREATED);
    set(
        &mut head,
        "Location",
        format!("/v2/{repository}/blobs/{digest}"),
    );
    set(&mut head, "Docker-Content-Digest", digest);
    if let Some(id) = upload {
        set(&mut head, "Docker-Upload-UUID", id);
    }
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

/// `Range: bytes=first-[last]` or `bytes=-count` for a blob read; `None` when the header is
/// not a single range we understand, and then the whole blob is sent with 200, as HTTP
/// (RFC 9110, section 14.2) lets a server ignore a Range it cannot parse.
fn parse_range(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return last.parse().ok().map(ByteRange::Suffix);
    }
    let first: u64 = first.parse().ok()?;
    let last: Option<u64> = match last {
        "" => None,
        text => Some(text.parse().ok()?),
    };
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(ByteRange::From { first, last })
}

/// Where a chunk says it starts, from `Content-Range: first-last` (or `bytes first-last/*`),
/// checked against its `Content-Length` when both are given; `None` without a range.
fn chunk_start(session: &ServerSession) -> Result<Option<u64>, Refusal> {
    let Some(value) = header_str(session, http::header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let invalid = |why: &str| -> Refusal {
        RegistryError::BlobUploadInvalid {
            detail: format!("Content-Range {value}: {why}"),
        }
        .into()
    };
    let text = value.trim().trim_start_matches("bytes").trim();
    let range = text.split('/').next().unwrap_or("");
    let (first, last) = range.split_once('-').unwrap_or((range, ""));
    let first: u64 = first.trim().parse().map_err(|_| invalid("malformed"))?;
    if last.trim().is_empty() {
        return Ok(Some(first));
    }
    let last: u64 = last.trim().parse().map_err(|_| invalid("malformed"))?;
    if last < first {
        return Err(invalid("ends before it starts"));
    }
    let length = header_str(session, http::header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    // `last - first` cannot underflow (checked above); `+ 1` overflows for 0-u64::MAX.
    let covered = (last - first).checked_add(1);
    if length.is_some_and(|length: u64| Some(length) != covered) {
        return Err(invalid("does not match Content-Length"));
    }
    Ok(Some(first))
}
