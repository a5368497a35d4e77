//! Every Prometheus metric Berth exports, registered in one place on a registry the caller
//! owns (not the global one, so tests do not share state). Handles have verb methods.
//!
//! Label values are bounded: methods, route kinds, status codes, actions and outcomes. User
//! names, repositories and digests never become labels.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
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
    acl_decisions: IntCounterVec,
    config_reloads: IntCounterVec,
    config_generation: IntGauge,
    config_last_success: Gauge,
    blobs_stored: IntCounter,
    manifests_stored: IntCounter,
    ldap_unavailable: IntCounter,
    storage_errors: IntCounterVec,
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

        let config_generation = IntGauge::new(
            "config_generation",
            "Generation of the running configuration: 1 at start, +1 per applied reload",
        )
        .expect("valid metric");
        let config_last_success = Gauge::new(
            "config_last_reload_success_timestamp_seconds",
            "Unix time the running configuration was loaded or last reloaded",
        )
        .expect("valid metric");
        for gauge in [
            Box::new(config_generation.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(config_last_success.clone()),
        ] {
            registry.register(gauge).expect("metric names are unique");
        }

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
            acl_decisions: counter_vec(
                "acl_decisions_total",
                "ACL decisions, by action and result (allow or deny)",
                &["action", "result"],
            ),
            config_reloads: counter_vec(
                "config_reloads_total",
                "Configuration reloads, by result (success or failure)",
                &["result"],
            ),
            config_generation,
            config_last_success,
            blobs_stored: counter("registry_blobs_stored_total", "Blob uploads completed"),
            manifests_stored: counter("registry_manifests_stored_total", "Manifests stored"),
            ldap_unavailable: counter(
                "ldap_unavailable_total",
                "Sign-ins that failed because the LDAP directory could not be reached",
            ),
            storage_errors: counter_vec(
                "storage_errors_total",
                "Storage operations that failed after any retries, by backend and operation",
                &["backend", "operation"],
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

    /// Request body bytes received.
    pub fn received(&self, bytes: u64) {
        self.received_bytes.inc_by(bytes);
    }

    /// Response body bytes sent.
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

    /// One ACL decision; a refusal also counts in `acl_denials_total`.
    pub fn acl_decision(&self, action: &str, allowed: bool) {
        let result = if allowed { "allow" } else { "deny" };
        self.acl_decisions
            .with_label_values(&[action, result])
            .inc();
        if !allowed {
            self.acl_denials.with_label_values(&[action]).inc();
        }
    }

    /// A token issued; `grant_type` is `password`, `refresh_token` or `anonymous`.
    pub fn token_issued(&self, grant_type: &str) {
        self.tokens_issued.with_label_values(&[grant_type]).inc();
    }

    /// A bearer token checked; `result` is `valid` or why it was refused.
    pub fn token_verified(&self, result: &str) {
        self.token_verifications.with_label_values(&[result]).inc();
    }

    /// The configuration `serve` started with is in force.
    pub fn config_loaded(&self, generation: u64, at: SystemTime) {
        self.config_generation.set(generation as i64);
        self.config_last_success.set(unix_seconds(at));
    }

    /// A reload was applied.
    pub fn config_reloaded(&self, generation: u64, at: SystemTime) {
        self.config_reloads.with_label_values(&["success"]).inc();
        self.config_loaded(generation, at);
    }

    /// A reload was refused; the running configuration stays.
    pub fn config_reload_failed(&self) {
        self.config_reloads.with_label_values(&["failure"]).inc();
    }

    /// A blob upload completed.
    pub fn blob_stored(&self) {
        self.blobs_stored.inc();
    }

    /// A manifest was stored.
    pub fn manifest_stored(&self) {
        self.manifests_stored.inc();
    }

    /// A sign-in the directory could not answer.
    pub fn directory_unavailable(&self) {
        self.ldap_unavailable.inc();
    }

    /// A storage operation failed a request (`backend` and `operation` are fixed names).
    pub fn storage_error(&self, backend: &str, operation: &str) {
        self.storage_errors
            .with_label_values(&[backend, operation])
            .inc();
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

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}
