//! Per-request state the gateway fills in as a request moves through its steps, and reads
//! back for the access log and metrics.

use std::sync::Arc;
use std::time::Instant;

use http::Method;
use pingora::protocols::http::ServerSession;

use crate::acl::{Action, Decision};
use crate::auth::Identity;
use crate::live::Snapshot;
use crate::tls::client_cert::PeerCertificate;

/// What is known about one request.
pub struct RequestCtx {
    /// The configuration this request runs under from start to end, whatever reloads
    /// happen meanwhile.
    pub live: Arc<Snapshot>,
    pub started: Instant,
    pub method: Method,
    pub client_ip: String,
    pub identity: Identity,
    /// The connection's verified client certificate, when it presented one.
    pub certificate: Option<Arc<PeerCertificate>>,
    pub route_kind: &'static str,
    pub repository: Option<String>,
    /// The tag or digest the route names, for the audit log.
    pub reference: Option<String>,
    /// The action the ACL was asked about, once it was.
    pub action: Option<Action>,
    /// The ACL's answer, once it gave one.
    pub decision: Option<Decision>,
    pub error_code: Option<&'static str>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

impl RequestCtx {
    /// A context for the request whose head `session` has just read.
    pub fn new(session: &ServerSession, live: Arc<Snapshot>) -> Self {
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
            live,
            started: Instant::now(),
            method: session.req_header().method.clone(),
            client_ip,
            identity: Identity::anonymous(),
            certificate,
            route_kind: "unknown",
            repository: None,
            reference: None,
            action: None,
            decision: None,
            error_code: None,
            bytes_received: 0,
            bytes_sent: 0,
        }
    }
}
