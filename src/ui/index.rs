//! A cache of what the repository list shows (tag names, total size, last push) for every
//! repository, so a list or search over ten thousand repositories filters and sorts memory
//! instead of walking the data directory.
//!
//! The gateway marks a repository dirty when a manifest is pushed or deleted through this
//! process; the next read recomputes only dirty repositories. Changes made behind Berth's
//! back (another node on the same directory, files copied in) show up once the cache is
//! older than [`MAX_AGE`]: then one read starts a rebuild in the background and keeps
//! answering from the old snapshot until it is done.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::view::{epoch_seconds, size_into};
use crate::registry::{Registry, RegistryError, RepositoryName};

/// How old the cache may get before a full rebuild picks up changes made by others. Picked,
/// not measured.
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// What the repository list shows of one repository.
#[derive(Debug, Clone, Serialize)]
pub struct RepositorySummary {
    pub name: String,
    /// Tag names, sorted.
    pub tags: Vec<String>,
    /// Every tagged manifest with its config and layers, each blob counted once.
    pub size: u64,
    /// The latest tag push, in seconds since the epoch.
    pub last_push: Option<i64>,
}

/// Every repository's summary, sorted by name.
pub type Snapshot = Arc<Vec<Arc<RepositorySummary>>>;

/// The cache.
pub struct RepositoryIndex {
    registry: Arc<Registry>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    by_name: BTreeMap<String, Arc<RepositorySummary>>,
    snapshot: Option<Snapshot>,
    built: Option<Instant>,
    dirty: BTreeSet<String>,
    rebuilding: bool,
    changed_during_rebuild: BTreeSet<String>,
}

impl RepositoryIndex {
    /// An empty cache over `registry`; the first read builds it.
    pub fn new(registry: Arc<Registry>) -> Self {
        RepositoryIndex {
            registry,
            state: Mutex::new(State::default()),
        }
    }

    /// Marks `repository` for recomputation on the next read.
    pub fn invalidate(&self, repository: &RepositoryName) {
        let mut state = self.state.lock().expect("index lock poisoned");
        state.dirty.insert(repository.to_string());
        if state.rebuilding {
            // The rebuild may have read this repository before the change.
            state.changed_during_rebuild.insert(repository.to_string());
        }
    }

    /// Every repository's summary. Blocking: call it on the blocking pool.
    ///
    /// # Errors
    /// Storage failures while building the cache for the first time.
    pub fn snapshot(self: &Arc<Self>) -> Result<Snapshot, RegistryError> {
        let built = self.lock().snapshot.is_some();
        if !built {
            self.rebuild()?;
        }
        let (dirty, start_rebuild) = {
            let mut state = self.lock();
            let stale = state.built.is_some_and(|built| built.elapsed() > MAX_AGE);
            let start_rebuild = stale && !state.rebuilding;
            if state.dirty.is_empty() && !start_rebuild {
                return Ok(state.snapshot.clone().expect("built above"));
            }
            state.rebuilding |= start_rebuild;
            (std::mem::take(&mut state.dirty), start_rebuild)
        };
        if start_rebuild {
            let index = self.clone();
            std::thread::spawn(move || {
                if let Err(error) = index.rebuild() {
                    tracing::error!(%error, "failed to rebuild the repository index");
                }
            });
        }

        let fresh: Vec<_> = dirty
            .into_iter()
            .map(|name| {
                let summary = RepositoryName::parse(&name)
                    .ok()
                    .and_then(|repository| summarize(&self.registry, &repository).ok())
                    .flatten();
                (name, summary)
            })
            .collect();
        let mut state = self.lock();
        for (name, summary) in fresh {
            match summary {
                Some(summary) => state.by_name.insert(name, Arc::new(summary)),
                None => state.by_name.remove(&name),
            };
        }
        let snapshot: Snapshot = Arc::new(state.by_name.values().cloned().collect());
        state.snapshot = Some(snapshot.clone());
        Ok(snapshot)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("index lock poisoned")
    }

    /// Recomputes every repository's summary and swaps the result in.
    fn rebuild(&self) -> Result<(), RegistryError> {
        self.lock().rebuilding = true;
        let started = Instant::now();
        let outcome = self.registry.catalog().map(|names| {
            names
                .iter()
                .filter_map(|repository| match summarize(&self.registry, repository) {
                    Ok(summary) => summary,
                    Err(error) => {
                        tracing::warn!(repo = %repository, %error, "cannot summarise repository");
                        None
                    }
                })
                .map(|summary| (summary.name.clone(), Arc::new(summary)))
                .collect::<BTreeMap<_, _>>()
        });
        let mut state = self.lock();
        state.rebuilding = false;
        let changed = std::mem::take(&mut state.changed_during_rebuild);
        state.dirty.extend(changed);
        let by_name = outcome?;
        tracing::info!(
            repositories = by_name.len(),
            duration_ms = started.elapsed().as_millis() as u64,
            "repository index built"
        );
        state.snapshot = Some(Arc::new(by_name.values().cloned().collect()));
        state.by_name = by_name;
        state.built = Some(started);
        Ok(())
    }
}

/// One repository's summary; `None` when it no longer exists.
fn summarize(
    registry: &Registry,
    repository: &RepositoryName,
) -> Result<Option<RepositorySummary>, RegistryError> {
    let links = match registry.tag_links(repository) {
        Ok(links) => links,
        Err(RegistryError::NameUnknown) => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut seen = HashSet::new();
    let size = links
        .iter()
        .map(|link| size_into(registry, repository, &link.digest, &mut seen, 0))
        .sum();
    Ok(Some(RepositorySummary {
        name: repository.to_string(),
        last_push: links
            .iter()
            .filter_map(|l| l.pushed)
            .max()
            .map(epoch_seconds),
        tags: links.into_iter().map(|link| link.tag).collect(),
        size,
    }))
}
