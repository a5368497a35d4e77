//! What the pages and the JSON API show, built from what the registry stores: manifests and
//! image configs parsed leniently (anything unexpected is shown as missing, never an error),
//! sizes summed from descriptors, environment variables with secret-looking values hidden,
//! and the small formatting helpers the templates use (human sizes, relative times).

use std::collections::{BTreeMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::registry::manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::registry::{Digest, Reference, Registry, RegistryError, RepositoryName};

/// Largest image config read to show it; configs are a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;
/// What a hidden environment value is shown as.
pub const HIDDEN: &str = "(hidden)";

/// The fields of a manifest or index the UI shows.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManifestDoc {
    pub media_type: Option<String>,
    pub artifact_type: Option<String>,
    pub config: Option<DescriptorDoc>,
    pub layers: Vec<DescriptorDoc>,
    pub manifests: Option<Vec<DescriptorDoc>>,
    pub subject: Option<DescriptorDoc>,
    pub annotations: BTreeMap<String, String>,
}

/// A descriptor inside a manifest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DescriptorDoc {
    pub media_type: Option<String>,
    pub digest: String,
    pub size: u64,
    pub platform: Option<PlatformDoc>,
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PlatformDoc {
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
}

/// The fields of an image config the UI shows.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConfigDoc {
    architecture: Option<String>,
    os: Option<String>,
    created: Option<String>,
    config: Option<RunConfigDoc>,
    history: Vec<HistoryDoc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RunConfigDoc {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    labels: Option<BTreeMap<String, String>>,
    working_dir: Option<String>,
    user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HistoryDoc {
    created: Option<String>,
    created_by: Option<String>,
    empty_layer: Option<bool>,
    comment: Option<String>,
}

impl ManifestDoc {
    /// Parses a stored manifest; an unreadable one shows as empty.
    pub fn parse(bytes: &[u8]) -> ManifestDoc {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// Whether this is an index (a list of manifests, one per platform).
    pub fn is_index(&self) -> bool {
        self.manifests.is_some()
    }
}

/// A tag as the repository page and its API show it.
#[derive(Debug, Clone, Serialize)]
pub struct TagRow {
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    /// A short word for the media type: `image`, `index`, `artifact`.
    pub kind: &'static str,
    /// Manifest, config and layers (every platform's, for an index), each blob counted once.
    pub size: u64,
    /// `os/architecture[/variant]` of each entry, for an index; empty for an image.
    pub platforms: Vec<String>,
    /// When the tag was pushed, in seconds since the epoch.
    pub pushed: Option<i64>,
}

/// A layer (or config) as the manifest page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BlobRow {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// One entry of an index.
#[derive(Debug, Clone, Serialize)]
pub struct ChildRow {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub platform: String,
}

/// A manifest whose `subject` is the shown one: a signature, an SBOM, an attestation.
#[derive(Debug, Clone, Serialize)]
pub struct ReferrerRow {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: String,
    pub annotations: BTreeMap<String, String>,
}

/// One step of an image's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub created: Option<i64>,
    pub created_by: String,
    pub empty_layer: bool,
    pub comment: String,
}

/// An environment variable, with its value hidden when it looks secret.
#[derive(Debug, Clone, Serialize)]
pub struct EnvRow {
    pub name: String,
    pub value: String,
    pub hidden: bool,
}

/// An image config as the manifest page shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigView {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub architecture: String,
    pub os: String,
    /// `created` as seconds since the epoch, when it parses.
    pub created: Option<i64>,
    /// `created` as written in the config.
    pub created_text: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub env: Vec<EnvRow>,
    pub labels: BTreeMap<String, String>,
    pub history: Vec<HistoryRow>,
}

/// Everything the manifest page shows.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestView {
    pub repository: String,
    pub digest: String,
    pub media_type: String,
    pub kind: &'static str,
    pub artifact_type: Option<String>,
    pub manifest_size: u64,
    pub size: u64,
    /// Tags that point at this manifest.
    pub tags: Vec<String>,
    pub pushed: Option<i64>,
    pub children: Vec<ChildRow>,
    pub layers: Vec<BlobRow>,
    pub config: Option<ConfigView>,
    pub annotations: BTreeMap<String, String>,
    pub subject: Option<String>,
    pub referrers: Vec<ReferrerRow>,
}

/// The repository page's tags, newest push first.
///
/// # Errors
/// [`RegistryError::NameUnknown`] when the repository does not exist; storage failures.
pub fn tag_rows(
    registry: &Registry,
    repository: &RepositoryName,
) -> Result<Vec<TagRow>, RegistryError> {
    let mut rows = Vec::new();
    for link in registry.tag_links(repository)? {
        let Ok(manifest) = registry.manifest_get(repository, &Reference::Digest(link.digest))
        else {
            continue;
        };
        let doc = ManifestDoc::parse(&manifest.bytes);
        let platforms = doc
            .manifests
            .iter()
            .flatten()
            .filter_map(|child| child.platform.as_ref().map(platform_text))
            .collect();
        rows.push(TagRow {
            tag: link.tag,
            digest: manifest.digest.to_string(),
            kind: kind_of(&manifest.media_type, &doc),
            size: total_size(registry, repository, &manifest.digest),
            media_type: manifest.media_type,
            platforms,
            pushed: link.pushed.map(epoch_seconds),
        });
    }
    rows.sort_by(|a, b| b.pushed.cmp(&a.pushed).then_with(|| a.tag.cmp(&b.tag)));
    Ok(rows)
}

/// Everything about one manifest of `repository`.
///
/// # Errors
/// [`RegistryError::ManifestUnknown`] when the repository does not hold it.
pub fn manifest_view(
    registry: &Registry,
    repository: &RepositoryName,
    digest: &Digest,
) -> Result<ManifestView, RegistryError> {
    let manifest = registry.manifest_get(repository, &Reference::Digest(digest.clone()))?;
    let doc = ManifestDoc::parse(&manifest.bytes);
    let tags = registry
        .tag_links(repository)?
        .into_iter()
        .filter(|link| &link.digest == digest)
        .map(|link| link.tag)
        .collect();
    let children = doc
        .manifests
        .iter()
        .flatten()
        .map(|child| ChildRow {
            digest: child.digest.clone(),
            size: child.size,
            media_type: child.media_type.clone().unwrap_or_default(),
            platform: child
                .platform
                .as_ref()
                .map(platform_text)
                .unwrap_or_default(),
        })
        .collect();
    let layers = doc.layers.iter().map(blob_row).collect();
    let config = doc
        .config
        .as_ref()
        .filter(|_| !doc.is_index())
        .map(|descriptor| config_view(registry, repository, descriptor));

    Ok(ManifestView {
        repository: repository.to_string(),
        digest: digest.to_string(),
        kind: kind_of(&manifest.media_type, &doc),
        media_type: manifest.media_type,
        artifact_type: doc.artifact_type.clone(),
        manifest_size: manifest.bytes.len() as u64,
        size: total_size(registry, repository, digest),
        tags,
        pushed: registry
            .revision_time(repository, digest)
            .map(epoch_seconds),
        children,
        layers,
        config,
        annotations: doc.annotations.clone(),
        subject: doc.subject.as_ref().map(|subject| subject.digest.clone()),
        referrers: referrers(registry, repository, digest)?,
    })
}

/// Manifest, config and layer sizes of `digest` (and of every child, for an index), each
/// blob counted once. Sizes come from descriptors; no blob is opened but manifests.
pub fn total_size(registry: &Registry, repository: &RepositoryName, digest: &Digest) -> u64 {
    let mut seen = HashSet::new();
    size_into(registry, repository, digest, &mut seen, 0)
}

/// Adds the not yet `seen` blobs of `digest` to a size; used across tags by the index.
pub fn size_into(
    registry: &Registry,
    repository: &RepositoryName,
    digest: &Digest,
    seen: &mut HashSet<String>,
    depth: u8,
) -> u64 {
    if !seen.insert(digest.to_string()) {
        return 0;
    }
    let Ok(manifest) = registry.manifest_get(repository, &Reference::Digest(digest.clone())) else {
        return 0;
    };
    let doc = ManifestDoc::parse(&manifest.bytes);
    let mut size = manifest.bytes.len() as u64;
    for child in doc.manifests.iter().flatten() {
        match Digest::parse(&child.digest) {
            // An index of indexes is legal but rare; one level is followed.
            Ok(child_digest) if depth == 0 => {
                size += size_into(registry, repository, &child_digest, seen, depth + 1);
            }
            _ => {}
        }
    }
    for blob in doc.config.iter().chain(&doc.layers) {
        if seen.insert(blob.digest.clone()) {
            size += blob.size;
        }
    }
    size
}

/// Manifests of the repository whose `subject` is `digest`, found by reading every
/// manifest the repository holds.
///
/// Limitation: that read is proportional to the repository's manifests, so the manifest
/// page of a repository with many thousands of them is slow.
fn referrers(
    registry: &Registry,
    repository: &RepositoryName,
    digest: &Digest,
) -> Result<Vec<ReferrerRow>, RegistryError> {
    let wanted = digest.to_string();
    let mut found = Vec::new();
    for candidate in registry.revisions(repository)? {
        let Ok(manifest) = registry.manifest_get(repository, &Reference::Digest(candidate)) else {
            continue;
        };
        let doc = ManifestDoc::parse(&manifest.bytes);
        if doc.subject.as_ref().map(|s| s.digest.as_str()) != Some(wanted.as_str()) {
            continue;
        }
        let artifact_type = doc
            .artifact_type
            .clone()
            .or_else(|| doc.config.as_ref().and_then(|c| c.media_type.clone()))
            .unwrap_or_default();
        found.push(ReferrerRow {
            digest: manifest.digest.to_string(),
            media_type: manifest.media_type,
            artifact_type,
            annotations: doc.annotations,
        });
    }
    Ok(found)
}

fn config_view(
    registry: &Registry,
    repository: &RepositoryName,
    descriptor: &DescriptorDoc,
) -> ConfigView {
    let mut view = ConfigView {
        digest: descriptor.digest.clone(),
        size: descriptor.size,
        media_type: descriptor.media_type.clone().unwrap_or_default(),
        ..ConfigView::default()
    };
    let bytes = Digest::parse(&descriptor.digest)
        .ok()
        .and_then(|digest| {
            registry
                .blob_read_small(repository, &digest, MAX_CONFIG_BYTES)
                .ok()
        })
        .flatten();
    let Some(doc) = bytes.and_then(|b| serde_json::from_slice::<ConfigDoc>(&b).ok()) else {
        return view;
    };
    let run = doc.config.unwrap_or_default();
    view.architecture = doc.architecture.unwrap_or_default();
    view.os = doc.os.unwrap_or_default();
    view.created = doc.created.as_deref().and_then(parse_time);
    view.created_text = doc.created.unwrap_or_default();
    view.entrypoint = run.entrypoint.unwrap_or_default();
    view.cmd = run.cmd.unwrap_or_default();
    view.working_dir = run.working_dir.unwrap_or_default();
    view.user = run.user.unwrap_or_default();
    view.env = run
        .env
        .unwrap_or_default()
        .iter()
        .map(|e| env_row(e))
        .collect();
    view.labels = run.labels.unwrap_or_default();
    view.history = doc
        .history
        .into_iter()
        .map(|step| HistoryRow {
            created: step.created.as_deref().and_then(parse_time),
            created_by: step.created_by.unwrap_or_default(),
            empty_layer: step.empty_layer.unwrap_or(false),
            comment: step.comment.unwrap_or_default(),
        })
        .collect();
    view
}

/// `NAME=value`, with the value hidden when the name or the value looks like a secret.
pub fn env_row(entry: &str) -> EnvRow {
    let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
    let hidden = looks_secret(name, value);
    EnvRow {
        name: name.to_string(),
        value: if hidden { HIDDEN.into() } else { value.into() },
        hidden,
    }
}

/// Whether an environment variable probably holds a credential: by its name (`*_TOKEN`,
/// `PASSWORD`, `API_KEY`…) or by its value (a URL with a password, well-known key prefixes,
/// a JWT). Errs on the side of hiding.
pub fn looks_secret(name: &str, value: &str) -> bool {
    const NAME_WORDS: [&str; 11] = [
        "PASS",
        "SECRET",
        "TOKEN",
        "CREDENTIAL",
        "PRIVATE",
        "AUTH",
        "COOKIE",
        "SESSION",
        "SALT",
        "APIKEY",
        "ACCESS_KEY",
    ];
    const VALUE_PREFIXES: [&str; 9] = [
        "ghp_",
        "gho_",
        "github_pat_",
        "glpat-",
        "xox",
        "sk-",
        "AKIA",
        "eyJ",
        "-----BEGIN",
    ];
    let upper = name.to_ascii_uppercase();
    let named = NAME_WORDS.iter().any(|word| upper.contains(word))
        || upper
            .split(['_', '-', '.'])
            .any(|part| part == "KEY" || part == "PW");
    let url_password = value
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .is_some_and(|authority| authority.contains('@') && authority.contains(':'));
    named || url_password || VALUE_PREFIXES.iter().any(|p| value.starts_with(p))
}

/// A short word for what a manifest is.
pub fn kind_of(media_type: &str, doc: &ManifestDoc) -> &'static str {
    if doc.artifact_type.is_some() {
        return "artifact";
    }
    match media_type {
        OCI_INDEX | DOCKER_MANIFEST_LIST => "index",
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config_type = doc.config.as_ref().and_then(|c| c.media_type.as_deref());
            match config_type {
                None
                | Some("application/vnd.oci.image.config.v1+json")
                | Some("application/vnd.docker.container.image.v1+json") => "image",
                Some(_) => "artifact",
            }
        }
        _ => "manifest",
    }
}

fn blob_row(descriptor: &DescriptorDoc) -> BlobRow {
    BlobRow {
        digest: descriptor.digest.clone(),
        size: descriptor.size,
        media_type: descriptor.media_type.clone().unwrap_or_default(),
    }
}

fn platform_text(platform: &PlatformDoc) -> String {
    match &platform.variant {
        Some(variant) => format!("{}/{}/{variant}", platform.os, platform.architecture),
        None => format!("{}/{}", platform.os, platform.architecture),
    }
}

// --- formatting ---

/// Seconds since the epoch; times before it count as the epoch.
pub fn epoch_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// Seconds since the epoch of an RFC 3339 time as image configs write it.
pub fn parse_time(text: &str) -> Option<i64> {
    humantime::parse_rfc3339_weak(text.trim())
        .ok()
        .map(epoch_seconds)
}

/// `1.5 MiB`: a byte count in binary units with one decimal from KiB up.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `3 minutes ago`: how long before `now` the time `then` was (both in epoch seconds).
pub fn relative_time(then: i64, now: i64) -> String {
    let seconds = now - then;
    if seconds < 0 {
        return "in the future".into();
    }
    if seconds < 45 {
        return "just now".into();
    }
    let steps: [(i64, &str); 6] = [
        (60, "minute"),
        (3600, "hour"),
        (86_400, "day"),
        (7 * 86_400, "week"),
        (30 * 86_400, "month"),
        (365 * 86_400, "year"),
    ];
    let (unit_seconds, unit) = steps
        .iter()
        .rev()
        .find(|(unit_seconds, _)| seconds >= *unit_seconds)
        .copied()
        .unwrap_or(steps[0]);
    let count = (seconds + unit_seconds / 2) / unit_seconds;
    let count = count.max(1);
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural} ago")
}

/// RFC 3339 in UTC, to the second.
pub fn iso_time(seconds: i64) -> String {
    let time = UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn times_read_relative_to_now() {
        let now = 1_700_000_000;
        let rows = [
            (now, "just now"),
            (now - 60, "1 minute ago"),
            (now - 150, "3 minutes ago"),
            (now - 7200, "2 hours ago"),
            (now - 86_400, "1 day ago"),
            (now - 40 * 86_400, "1 month ago"),
            (now - 800 * 86_400, "2 years ago"),
            (now + 100, "in the future"),
        ];
        for (then, text) in rows {
            assert_eq!(relative_time(then, now), text, "{then}");
        }
        assert_eq!(parse_time("2023-11-14T22:13:20.5Z"), Some(1_700_000_000));
        assert_eq!(iso_time(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn secret_looking_environment_values_are_hidden() {
        let rows: &[(&str, bool)] = &[
            ("PATH=/usr/bin", false),
            ("LANG=C.UTF-8", false),
            ("DB_PASSWORD=hunter2", true),
            ("GITHUB_TOKEN=x", true),
            ("AWS_SECRET_ACCESS_KEY=x", true),
            ("API_KEY=x", true),
            ("KEYBOARD=us", false),
            ("DATABASE_URL=postgres://app:pw@db/app", true),
            ("HOMEPAGE=https://example.com/a@b", false),
            ("SOMETHING=ghp_abcdef", true),
        ];
        for (entry, hidden) in rows {
            let row = env_row(entry);
            assert_eq!(row.hidden, *hidden, "{entry}");
            if *hidden {
                assert_eq!(row.value, HIDDEN);
            }
        }
    }
}
