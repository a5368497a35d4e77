//! Every response the gateway sends is built here: the spec's JSON error bodies with their
//! status codes, the basic-auth challenge, and the headers every registry response carries.
//! No handler picks an error status itself.

use bytes::Bytes;
use http::StatusCode;
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;

use crate::registry::RegistryError;

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The registry engine refused or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// No credentials, or credentials that did not check out: challenge the client.
    #[error("authentication required")]
    Unauthenticated,
    /// Authenticated, but the ACL does not allow it.
    #[error("requested access to the resource is denied")]
    Denied,
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
}

impl Refusal {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Refusal::Registry(error) => (error.status(), error.code()),
            Refusal::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Refusal::Denied | Refusal::ImmutableTag { .. } => (StatusCode::FORBIDDEN, "DENIED"),
            Refusal::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
            Refusal::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Refusal::BadRequest(_) => (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
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
pub fn set(header: &mut ResponseHeader, name: &'static str, value: impl ToString) {
    header
        .insert_header(name, value.to_string())
        .expect("header values built here are valid");
}

/// Sends a complete response with a JSON body.
pub async fn json(
    session: &mut ServerSession,
    mut head: ResponseHeader,
    body: Vec<u8>,
) -> pingora::Result<()> {
    set(&mut head, "Content-Type", "application/json");
    set(&mut head, "Content-Length", body.len());
    session.write_response_header(Box::new(head)).await?;
    session.write_response_body(Bytes::from(body), true).await
}

/// Sends the error response for `refusal` and returns its status.
pub async fn refusal(session: &mut ServerSession, refusal: &Refusal, realm: &str) -> StatusCode {
    let (status, code) = refusal.status_and_code();
    let message = if refusal.is_server_fault() {
        "internal error; the registry logged the details".to_string()
    } else {
        refusal.to_string()
    };
    let detail = match refusal {
        Refusal::Registry(error) => error.detail(),
        _ => serde_json::Value::Null,
    };
    let body =
        serde_json::json!({ "errors": [{ "code": code, "message": message, "detail": detail }] });

    let mut head = header(status);
    if status == StatusCode::UNAUTHORIZED {
        set(
            &mut head,
            "WWW-Authenticate",
            format!("Basic realm=\"{realm}\", charset=\"UTF-8\""),
        );
    }
    if let Refusal::Registry(RegistryError::RangeInvalid { current_size }) = refusal {
        set(
            &mut head,
            "Range",
            format!("0-{}", current_size.saturating_sub(1)),
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
