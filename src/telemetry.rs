//! Logging: one `tracing` subscriber on stderr for our events and Pingora's `log` records,
//! filtered by `RUST_LOG` (default `info`).

use std::io::IsTerminal;

/// Installs the subscriber; call once at startup.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_log::LogTracer::init();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
