//! What triggers a reload: a change to a watched file, seen by `notify`, and `SIGHUP`.
//!
//! Files are watched through their parent directories, so a save by an editor that writes a
//! temp file and renames it over the original is seen like an in-place write. Events arrive
//! in bursts (a rename save is several), so a reload waits until the directory has been quiet
//! for [`QUIET`], and at most [`MAX_DELAY`], before it reads the file.
//!
//! Pingora handles `SIGTERM`, `SIGINT` and `SIGQUIT` itself and nothing else; without the
//! handler installed here, `SIGHUP` would end the process.
//!
//! Limitation: the directories watched are those of the files named at startup; after a
//! reload points `tls` at files in another directory, changes there are seen on `SIGHUP`
//! or after a restart.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};
use signal_hook::consts::SIGHUP;
use signal_hook::iterator::Signals;

use super::Reloader;

/// How long the watched files must stay untouched before a reload reads them. Picked, not
/// measured: long enough to cover an editor's write-then-rename, short against the 1 s goal.
const QUIET: Duration = Duration::from_millis(100);
/// The longest a reload waits for quiet while events keep coming.
const MAX_DELAY: Duration = Duration::from_millis(500);

/// Why reload triggers could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The file watcher could not be created or could not watch a directory.
    #[error("cannot watch {path} for changes: {source}")]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
    /// The `SIGHUP` handler or a reload thread could not be set up.
    #[error("cannot set up reloading: {0}")]
    Setup(std::io::Error),
}

/// Why a reload was asked for, for the log.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    FileChanged,
    Hangup,
}

/// Starts the threads that watch the files, catch `SIGHUP` and run reloads. They live as
/// long as the process.
///
/// # Errors
/// [`WatchError`] when a directory cannot be watched or the signal handler not installed.
pub fn spawn(reloader: Arc<Reloader>) -> Result<(), WatchError> {
    let (sender, receiver) = mpsc::channel::<Trigger>();

    let mut signals = Signals::new([SIGHUP]).map_err(WatchError::Setup)?;
    let hangups = sender.clone();
    std::thread::Builder::new()
        .name("berth-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                if hangups.send(Trigger::Hangup).is_err() {
                    return;
                }
            }
        })
        .map_err(WatchError::Setup)?;

    let watched: HashSet<PathBuf> = reloader
        .watched_files()
        .iter()
        .map(|path| absolute(path))
        .collect();
    let directories: HashSet<PathBuf> = watched
        .iter()
        .filter_map(|path| path.parent().map(Path::to_path_buf))
        .collect();
    let relevant = watched.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if changes_content(&event.kind) && event.paths.iter().any(|p| relevant.contains(p)) {
            let _ = sender.send(Trigger::FileChanged);
        }
    })
    .map_err(|source| WatchError::Watch {
        path: PathBuf::new(),
        source,
    })?;
    for directory in &directories {
        watcher
            .watch(directory, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Watch {
                path: directory.clone(),
                source,
            })?;
    }
    tracing::info!(files = ?watched, "watching the configuration for changes; SIGHUP reloads too");

    std::thread::Builder::new()
        .name("berth-reload".into())
        .spawn(move || {
            // The watcher stops when dropped: this thread keeps it for the process's life.
            let _watcher = watcher;
            while let Ok(trigger) = receiver.recv() {
                settle(&receiver);
                match reloader.reload() {
                    Ok(generation) => tracing::debug!(?trigger, generation, "reload applied"),
                    Err(error) => tracing::error!(
                        ?trigger,
                        "configuration reload failed; the running configuration stays:\n{error}"
                    ),
                }
            }
        })
        .map_err(WatchError::Setup)?;
    Ok(())
}

/// Drains triggers until none came for [`QUIET`] or [`MAX_DELAY`] has passed.
fn settle(receiver: &mpsc::Receiver<Trigger>) {
    let deadline = Instant::now() + MAX_DELAY;
    while receiver.recv_timeout(QUIET).is_ok() {
        if Instant::now() >= deadline {
            return;
        }
    }
}

/// Whether an event can mean new content: anything but opening, reading, or closing a file
/// that was only read.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// `path` made absolute with its directory resolved through symlinks, as the watcher reports
/// it; the path itself when its directory cannot be resolved.
fn absolute(path: &Path) -> PathBuf {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match (directory.canonicalize(), path.file_name()) {
        (Ok(directory), Some(name)) => directory.join(name),
        _ => path.to_path_buf(),
    }
}
