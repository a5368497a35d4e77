//! Logging: one `tracing` subscriber on stderr for our events and Pingora's `log` records,
//! filtered by `RUST_LOG` (default `info`).

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;

/// Installs the subscriber; call once at startup.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));

    // Pingora's `log` calls build their arguments before any filter sees them; some do real
    // work (its chunked-body parser formats the whole buffer for a trace line). Telling
    // `log` the most verbose level we will keep makes those calls return at once.
    let most_verbose = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    let _ = tracing_log::LogTracer::init_with_filter(as_log_level(most_verbose));

    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn as_log_level(level: LevelFilter) -> log::LevelFilter {
    match level {
        LevelFilter::OFF => log::LevelFilter::Off,
        LevelFilter::ERROR => log::LevelFilter::Error,
        LevelFilter::WARN => log::LevelFilter::Warn,
        LevelFilter::INFO => log::LevelFilter::Info,
        LevelFilter::DEBUG => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}
