//! Every Prometheus metric Berth exports, registered in one place on a registry the caller
//! owns (not the global one, so tests do not share state). Handles have verb methods.
//!
//! Label values are bounded: methods, route kinds, status codes, actions and outcomes. User
//! names, repositories and digests never become labels.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Handles to all metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    received_bytes: IntCounter,
    sent_bytes: IntCounter,
    auth_attempts: IntCounterVec,
    acl_denials: IntCounterVec,
    tokens_issued: IntCounterVec,
    token_verifications: IntCounterVec,
    blobs_stored: IntCounter,
    manifests_stored: IntCounter,
    ldap_unavailable: IntCounter,
}

impl Metrics {
    /// Creates and registers every metric.
    ///
    /// # Panics
    /// Only if two metrics here share a name, which is a programming error.
    pub fn register() -> Self {
        let registry = Registry::new_custom(Some("berth".into()), None).expect("valid prefix");
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("metric names are unique");
            metric
        };
        let counter = |name: &str, help: &str| {
            let metric = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("metric names are unique");
            metric
        };

        let requests = counter_vec(
            "http_requests_total",
            "HTTP requests served",
            &["method", "route", "status"],
        );
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request head to last byte sent",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(request_duration.clone()))
            .expect("metric names are unique");

        Metrics {
            requests,
            request_duration,
            received_bytes: counter("http_received_bytes_total", "Request body bytes received"),
            sent_bytes: counter("http_sent_bytes_total", "Response body bytes sent"),
            auth_attempts: counter_vec(
                "auth_attempts_total",
                "Authentication attempts",
                &["method", "outcome"],
            ),
            acl_denials: counter_vec(
                "acl_denials_total",
                "Requests refused by the ACL",
                &["action"],
            ),
            tokens_issued: counter_vec(
                "tokens_issued_total",
                "Tokens issued by the token endpoint",
                &["grant_type"],
            ),
            token_verifications: counter_vec(
                "token_verifications_total",
                "Bearer tokens checked, by result",
                &["result"],
            ),
            blobs_stored: counter("registry_blobs_stored_total", "Blob uploads completed"),
            manifests_stored: counter("registry_manifests_stored_total", "Manifests stored"),
            ldap_unavailable: counter(
                "ldap_unavailable_total",
                "Sign-ins that failed because the LDAP directory could not be reached",
            ),
            registry,
        }
    }

    /// One finished request.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.request_duration
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    pub fn received(&self, bytes: u64) {
        self.received_bytes.inc_by(bytes);
    }

    pub fn sent(&self, bytes: u64) {
        self.sent_bytes.inc_by(bytes);
    }

    /// An authentication attempt; `outcome` is `success`, `cached`, `failure` or
    /// `unavailable` (the directory could not answer).
    pub fn auth_attempt(&self, method: &str, outcome: &str) {
        self.auth_attempts
            .with_label_values(&[method, outcome])
            .inc();
    }

    pub fn acl_denied(&self, action: &str) {
        self.acl_denials.with_label_values(&[action]).inc();
    }

    /// A token issued; `grant_type` is `password`, `refresh_token` or `anonymous`.
    pub fn token_issued(&self, grant_type: &str) {
        self.tokens_issued.with_label_values(&[grant_type]).inc();
    }

    /// A bearer token checked; `result` is `valid` or why it was refused.
    pub fn token_verified(&self, result: &str) {
        self.token_verifications.with_label_values(&[result]).inc();
    }

    pub fn blob_stored(&self) {
        self.blobs_stored.inc();
    }

    pub fn manifest_stored(&self) {
        self.manifests_stored.inc();
    }

    /// A sign-in the directory could not answer.
    pub fn directory_unavailable(&self) {
        self.ldap_unavailable.inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let families = self.registry.gather();
        TextEncoder::new()
            .encode(&families, &mut out)
            .expect("encoding to a Vec cannot fail");
        out
    }
}
