//! Per-request state the gateway fills in as a request moves through its steps, and reads
//! back for the access log and metrics.

use std::time::Instant;

use http::Method;
use pingora::protocols::http::ServerSession;

use crate::auth::Identity;

/// What is known about one request.
pub struct RequestCtx {
    pub started: Instant,
    pub method: Method,
    pub client_ip: String,
    pub identity: Identity,
    pub route_kind: &'static str,
    pub repository: Option<String>,
    pub error_code: Option<&'static str>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

impl RequestCtx {
    pub fn new(session: &ServerSession) -> Self {
        let client_ip = session
            .client_addr()
            .and_then(|address| address.as_inet().map(|inet| inet.ip().to_string()))
            .unwrap_or_else(|| "-".into());
        RequestCtx {
            started: Instant::now(),
            method: session.req_header().method.clone(),
            client_ip,
            identity: Identity::anonymous(),
            route_kind: "unknown",
            repository: None,
            error_code: None,
            bytes_received: 0,
            bytes_sent: 0,
        }
    }
}
