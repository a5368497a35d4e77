//! Every response the gateway sends is built here: the spec's JSON error bodies with their
//! status codes, the basic-auth challenge, and the headers every registry response carries.
//! No handler picks an error status itself.

use bytes::Bytes;
use http::StatusCode;
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;

use crate::acl::Action;
use crate::registry::{RegistryError, RepositoryName, UploadId};
use crate::ui::{self, UiError, UiResponse};

/// The status logged for a request whose client went away (nginx's 499); never sent.
pub const CLIENT_CLOSED_REQUEST: StatusCode = match StatusCode::from_u16(499) {
    Ok(status) => status,
    Err(_) => StatusCode::BAD_REQUEST,
};

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The registry engine refused or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// No credentials, or a token that does not do: challenge the client. `scope` is what
    /// to ask the token endpoint for, `error` the RFC 6750 error code for a bad token.
    #[error("authentication required")]
    Unauthenticated {
        scope: Option<String>,
        error: Option<&'static str>,
    },
    /// A user name and password that did not check out (unknown user or wrong password).
    #[error("authentication required")]
    BadCredentials,
    /// The listener wants a client certificate for this and the connection has none.
    #[error("a client certificate is required")]
    CertificateRequired,
    /// The client certificate and the credentials name different users.
    #[error("the client certificate and the credentials name different users")]
    IdentityMismatch,
    /// The user directory could not check the password; retry later.
    #[error("the user directory is unavailable; try again later")]
    DirectoryUnavailable,
    /// Authenticated, but the ACL does not allow it.
    #[error("requested access to the resource is denied")]
    Denied { repository: String, action: Action },
    /// The tag is protected by an `immutable_tags` rule: it may not be moved or deleted.
    #[error(
        "tag {tag} is immutable (immutable_tags rule {rule}: {rule_text}); push a new tag instead"
    )]
    ImmutableTag {
        tag: String,
        rule: usize,
        rule_text: String,
    },
    /// The route exists but not with this method.
    #[error("the operation is unsupported")]
    MethodNotAllowed,
    /// No such endpoint.
    #[error("page not found")]
    NotFound,
    /// The request itself is malformed (a bad header, a bad query parameter).
    #[error("{0}")]
    BadRequest(String),
    /// The connection to the client failed (it went away mid-request): no answer can reach
    /// it. Not a fault of ours, and nothing is sent.
    #[error("client connection failed: {0}")]
    Downstream(String),
}

impl Refusal {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Refusal::Registry(error) => (error.status(), error.code()),
            Refusal::Unauthenticated { .. }
            | Refusal::BadCredentials
            | Refusal::CertificateRequired
            | Refusal::IdentityMismatch => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Refusal::DirectoryUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            Refusal::Denied { .. } | Refusal::ImmutableTag { .. } => {
                (StatusCode::FORBIDDEN, "DENIED")
            }
            Refusal::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
            Refusal::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Refusal::BadRequest(_) => (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
            Refusal::Downstream(_) => (CLIENT_CLOSED_REQUEST, "UNKNOWN"),
        }
    }

    /// The spec code, for logs.
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    /// Whether the fault is ours: then the client gets a generic message and we log in full.
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Refusal::Registry(error) if error.is_server_fault())
    }
}

/// A response header with the headers every registry response carries.
pub fn header(status: StatusCode) -> ResponseHeader {
    let mut header = ResponseHeader::build(status, Some(6)).expect("status codes are valid");
    set(
        &mut header,
        "Docker-Distribution-API-Version",
        "registry/2.0",
    );
    header
}

/// Sets a header whose value we built ourselves.
///
/// A value that is not a valid header value (it would need a control character) is left
/// out with a log line rather than sent: everything set here is built by Berth from checked
/// parts, so this is a bug to report, never a reason to fail the request.
pub fn set(header: &mut ResponseHeader, name: &'static str, value: impl ToString) {
    if let Err(error) = header.insert_header(name, value.to_string()) {
        tracing::error!(header = name, %error, "left out an invalid response header");
    }
}

/// The headers of every answer about an upload session: where to send the next request,
/// the session's id, and the bytes it holds as `Range: 0-<last>` (`0-0` when empty, as the
/// CNCF registry answers).
pub fn upload_headers(
    status: StatusCode,
    repository: &RepositoryName,
    id: &UploadId,
    size: u64,
) -> ResponseHeader {
    let mut head = header(status);
    set(
        &mut head,
        "Location",
        format!("/v2/{repository}/blobs/uploads/{id}"),
    );
    set(&mut head, "Docker-Upload-UUID", id);
    set(&mut head, "Range", format!("0-{}", size.saturating_sub(1)));
    head
}

/// Sends a complete response with a JSON body.
pub async fn json(
    session: &mut ServerSession,
    head: ResponseHeader,
    body: Vec<u8>,
) -> pingora::Result<()> {
    json_typed(session, head, "application/json", body).await
}

/// Sends a complete response with a JSON body of the given media type.
pub async fn json_typed(
    session: &mut ServerSession,
    mut head: ResponseHeader,
    media_type: &str,
    body: Vec<u8>,
) -> pingora::Result<()> {
    set(&mut head, "Content-Type", media_type);
    set(&mut head, "Content-Length", body.len());
    session.write_response_header(Box::new(head)).await?;
    session.write_response_body(Bytes::from(body), true).await
}

/// The status of a web UI error.
pub fn ui_status(error: &UiError) -> StatusCode {
    match error {
        UiError::NotFound => StatusCode::NOT_FOUND,
        UiError::SignInRequired | UiError::BadCredentials | UiError::CertificatePolicy(_) => {
            StatusCode::UNAUTHORIZED
        }
        UiError::Denied | UiError::ImmutableTag { .. } | UiError::Forged => StatusCode::FORBIDDEN,
        UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
        UiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        UiError::Registry(error) => error.status(),
        UiError::Template(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Sends a web UI response, with the headers every UI response carries: the content
/// security policy, no framing, no MIME sniffing, and no referrer to other sites.
pub async fn ui(session: &mut ServerSession, response: UiResponse) -> pingora::Result<StatusCode> {
    let mut head = ResponseHeader::build(response.status, Some(10)).expect("valid status");
    set(&mut head, "Content-Type", response.content_type);
    set(&mut head, "Content-Length", response.body.len());
    set(&mut head, "Cache-Control", response.cache_control);
    set(
        &mut head,
        "Content-Security-Policy",
        ui::CONTENT_SECURITY_POLICY,
    );
    set(&mut head, "X-Content-Type-Options", "nosniff");
    set(&mut head, "X-Frame-Options", "DENY");
    set(&mut head, "Referrer-Policy", "same-origin");
    if let Some(location) = response.location {
        set(&mut head, "Location", location);
    }
    if let Some(cookie) = response.set_cookie {
        set(&mut head, "Set-Cookie", cookie);
    }
    session.write_response_header(Box::new(head)).await?;
    let head_only = session.req_header().method == http::Method::HEAD;
    if head_only || response.body.is_empty() {
        session.finish_body().await?;
    } else {
        session
            .write_response_body(Bytes::from(response.body), true)
            .await?;
    }
    Ok(response.status)
}

/// How a refused client is told to authenticate.
#[derive(Debug, Clone)]
pub enum Challenge {
    /// `WWW-Authenticate: Basic realm=".."`
    Basic { realm: String },
    /// `WWW-Authenticate: Bearer realm="..",service=".."[,scope=".."][,error=".."]`
    Bearer { realm: String, service: String },
}

impl Challenge {
    /// The header value for a refusal.
    fn header_value(&self, refusal: &Refusal) -> String {
        let (realm, service) = match self {
            Challenge::Bearer { realm, service } => (realm, service),
            Challenge::Basic { realm } => {
                return format!("Basic realm=\"{realm}\", charset=\"UTF-8\"");
            }
        };
        let mut value = format!("Bearer realm=\"{realm}\",service=\"{service}\"");
        if let Refusal::Unauthenticated { scope, error } = refusal {
            if let Some(scope) = scope {
                value.push_str(&format!(",scope=\"{scope}\""));
            }
            if let Some(error) = error {
                value.push_str(&format!(",error=\"{error}\""));
            }
        }
        value
    }
}

/// Sends the error response for `refusal` and returns its status.
pub async fn refusal(
    session: &mut ServerSession,
    refusal: &Refusal,
    challenge: &Challenge,
) -> StatusCode {
    let (status, code) = refusal.status_and_code();
    let message = if let Refusal::Registry(error @ RegistryError::Storage(storage)) = refusal {
        if storage.is_unavailable() {
            error.message()
        } else {
            "internal error; the registry logged the details".to_string()
        }
    } else if refusal.is_server_fault() {
        "internal error; the registry logged the details".to_string()
    } else {
        refusal.to_string()
    };
    // The detail names what was refused, as the CNCF registry does; docker also needs a
    // detail to recognise DENIED as final instead of retrying the push for a minute.
    let detail = match refusal {
        Refusal::Registry(error) => error.detail(),
        Refusal::Denied { repository, action } => {
            let action = action.as_str();
            serde_json::json!({ "Type": "repository", "Name": repository, "Action": action })
        }
        _ => serde_json::Value::Null,
    };
    let body =
        serde_json::json!({ "errors": [{ "code": code, "message": message, "detail": detail }] });

    let mut head = match refusal {
        Refusal::Registry(RegistryError::RangeInvalid {
            repository,
            id,
            current_size,
        }) => upload_headers(status, repository, id, *current_size),
        _ => header(status),
    };
    if status == StatusCode::UNAUTHORIZED {
        set(
            &mut head,
            "WWW-Authenticate",
            challenge.header_value(refusal),
        );
    }
    if let Refusal::Registry(RegistryError::RangeNotSatisfiable { size }) = refusal {
        set(&mut head, "Content-Range", format!("bytes */{size}"));
    }

    // A refused upload may still have gigabytes on the wire: close rather than drain.
    if !session.is_body_done() {
        session.set_keepalive(None);
    }
    let body = serde_json::to_vec(&body).expect("JSON values serialise");
    if let Err(error) = json(session, head, body).await {
        tracing::debug!(%error, "failed to send error response");
    }
    status
}
