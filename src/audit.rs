//! The audit log: one JSON object per line for every manifest push, tag move and refusal
//! (and every delete, once deletes are served), written to a file or standard output as
//! proxy.yaml's `audit` says. The gateway records an event after it decided; this module only
//! formats and writes.
//!
//! # Security
//! Events hold who, from where, what and why; never a password, token or header value.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Where audit lines go: `audit: {file: PATH}` or `audit: {stdout: true}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Append audit lines to this file, created when missing; relative to the config file.
    /// Default: none.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Write audit lines to standard output. Default: false. Without `file` or `stdout`
    /// there is no audit log.
    #[serde(default)]
    pub stdout: bool,
}

/// The audit file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit log {path}: {source}")]
pub struct AuditError {
    /// The configured file.
    pub path: PathBuf,
    /// Why it could not be opened for appending.
    pub source: std::io::Error,
}

/// An open audit log.
pub struct AuditLog {
    sink: Sink,
}

enum Sink {
    Off,
    Stdout,
    File { path: PathBuf, file: Mutex<File> },
}

/// One audited event; serialised as one JSON line.
#[derive(Debug, Serialize)]
pub struct AuditEvent<'a> {
    /// RFC 3339 UTC, to the millisecond; filled in by [`AuditLog::record`].
    pub time: String,
    /// `push`, `tag_move`, `delete` or `denied`.
    pub event: &'static str,
    /// The signed-in user; `null` for anonymous callers.
    pub user: Option<&'a str>,
    /// The caller's groups.
    pub groups: &'a [String],
    /// How the caller authenticated: `basic` or `anonymous`.
    pub auth: &'static str,
    /// The client's IP address.
    pub client: &'a str,
    pub repository: &'a str,
    /// The tag or digest in the request, when it names one.
    pub reference: Option<String>,
    /// The manifest digest stored by a push.
    pub digest: Option<String>,
    /// For `tag_move`: the digest the tag pointed at before.
    pub previous: Option<String>,
    /// `pull`, `push` or `delete`.
    pub action: &'static str,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// What decided: `acl rule 2`, `public pattern 1`, `immutable_tags rule 1`, or
    /// `no rule matched`.
    pub rule: String,
    /// That rule as written, on one line; `null` when no rule matched.
    pub rule_text: Option<String>,
    /// The generation of the configuration that decided (1 at start, +1 per reload).
    pub config_generation: u64,
}

impl AuditLog {
    /// Opens the log `config` names; relative paths were resolved by the config loader.
    ///
    /// # Errors
    /// [`AuditError`] when the file cannot be opened for appending.
    pub fn open(config: &AuditConfig) -> Result<AuditLog, AuditError> {
        let sink = match (&config.file, config.stdout) {
            (Some(path), _) => Sink::File {
                path: path.clone(),
                file: Mutex::new(open_append(path)?),
            },
            (None, true) => Sink::Stdout,
            (None, false) => Sink::Off,
        };
        Ok(AuditLog { sink })
    }

    /// A log that records nothing.
    pub fn off() -> AuditLog {
        AuditLog { sink: Sink::Off }
    }

    /// Writes `event` as one line, stamping the time. A failed write is logged at error level
    /// and does not fail the request it describes.
    ///
    /// The write is one short `write` call under a lock, done on the calling thread: moving
    /// it to the blocking pool would cost more than the write.
    pub fn record(&self, mut event: AuditEvent<'_>) {
        if matches!(self.sink, Sink::Off) {
            return;
        }
        event.time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let mut line = serde_json::to_vec(&event).expect("audit events serialise");
        line.push(b'\n');
        let written = match &self.sink {
            Sink::Off => Ok(()),
            Sink::Stdout => std::io::stdout().lock().write_all(&line),
            Sink::File { file, .. } => file.lock().expect("audit lock poisoned").write_all(&line),
        };
        if let Err(error) = written {
            let path = match &self.sink {
                Sink::File { path, .. } => path.display().to_string(),
                _ => "stdout".to_string(),
            };
            tracing::error!(%error, path, "failed to write the audit log");
        }
    }
}

/// Checks that the audit file could be opened for appending, without creating it (for
/// `berth check`).
///
/// # Errors
/// [`AuditError`] naming the file when its folder is missing or it cannot be written.
pub fn check(config: &AuditConfig) -> Result<(), AuditError> {
    let Some(path) = &config.file else {
        return Ok(());
    };
    if path.exists() {
        return OpenOptions::new()
            .append(true)
            .open(path)
            .map(|_| ())
            .map_err(|source| AuditError {
                path: path.to_path_buf(),
                source,
            });
    }
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if folder.is_dir() {
        return Ok(());
    }
    Err(AuditError {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "its folder does not exist"),
    })
}

fn open_append(path: &Path) -> Result<File, AuditError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| AuditError {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_json_line_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let config = AuditConfig {
            file: Some(path.clone()),
            stdout: false,
        };
        let log = AuditLog::open(&config).unwrap();
        for event in ["push", "denied"] {
            log.record(AuditEvent {
                time: String::new(),
                event,
                user: Some("alice"),
                groups: &[],
                auth: "basic",
                client: "127.0.0.1",
                repository: "team/app",
                reference: Some("v1".into()),
                digest: None,
                previous: None,
                action: "push",
                decision: "allow",
                rule: "acl rule 1".into(),
                rule_text: None,
                config_generation: 1,
            });
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["event"], "denied");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
