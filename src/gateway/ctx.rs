//! Per-request state the gateway fills in as a request moves through its steps, and reads
//! back for the access log and metrics.

use std::sync::Arc;
use std::time::Instant;

use http::Method;
use pingora::protocols::http::ServerSession;

use crate::auth::Identity;
use crate::tls::client_cert::PeerCertificate;

/// What is known about one request.
pub struct RequestCtx {
    pub started: Instant,
    pub method: Method,
    pub client_ip: String,
    pub identity: Identity,
    /// The connection's verified client certificate, when it presented one.
    pub certificate: Option<Arc<PeerCertificate>>,
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
        // Stored by the TLS handshake callback once rustls has verified the certificate.
        let certificate = session
            .digest()
            .and_then(|digest| digest.ssl_digest.as_ref())
            .and_then(|tls| tls.extension.get::<PeerCertificate>())
            .map(|peer| Arc::new(peer.clone()));
        RequestCtx {
            started: Instant::now(),
            method: session.req_header().method.clone(),
            client_ip,
            identity: Identity::anonymous(),
            certificate,
            route_kind: "unknown",
            repository: None,
            error_code: None,
            bytes_received: 0,
            bytes_sent: 0,
        }
    }
}
