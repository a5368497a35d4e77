//! The JSON API behind the pages, for scripts and the CLI, with the same ACL filtering:
//!
//! - `GET /ui/api/repositories?q=&match=&sort=&page=&per_page=`: `match` is `contains` or
//!   `prefix`, `sort` is `name`, `pushed`, `size` or `tags`
//! - `GET /ui/api/repo/<name>`: its tags with digest, media type, size, platforms, push time
//! - `GET /ui/api/repo/<name>/-/manifest/<digest>`: layers, config, referrers, history
//! - `GET /ui/api/search?q=&match=`: repositories and tags whose names match
//!
//! Callers authenticate as for the registry (basic or bearer), or with the UI's session.

use http::StatusCode;
use serde::Serialize;

use super::pages::ListQuery;
use super::{json_response, Ui, UiError, UiRequest, UiResponse, Visitor};
use crate::acl::Action;
use crate::registry::{Digest, RepositoryName};

/// Most repositories and most tags one search answers with.
pub const MAX_SEARCH_RESULTS: usize = 100;

/// A tag found by a search.
#[derive(Debug, Serialize)]
struct TagHit {
    repository: String,
    tag: String,
}

impl Ui {
    pub(super) fn api_repositories(
        &self,
        request: &UiRequest,
        visitor: &Visitor,
    ) -> Result<UiResponse, UiError> {
        let query = ListQuery::from_request(request)?;
        let selection = self.select(visitor, &query)?;
        let body = serde_json::json!({
            "total": selection.total,
            "page": query.page,
            "per_page": query.per_page,
            "pages": selection.pages,
            "repositories": selection.rows,
        });
        Ok(json_response(StatusCode::OK, &body))
    }

    pub(super) fn api_repository(
        &self,
        visitor: &Visitor,
        repository: &RepositoryName,
    ) -> Result<UiResponse, UiError> {
        let (tags, can_delete) = self.repository_data(visitor, repository)?;
        let body = serde_json::json!({
            "name": repository.as_str(),
            "can_delete": can_delete,
            "tags": tags,
        });
        Ok(json_response(StatusCode::OK, &body))
    }

    pub(super) fn api_manifest(
        &self,
        visitor: &Visitor,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<UiResponse, UiError> {
        let (manifest, can_delete) = self.manifest_data(visitor, repository, digest)?;
        let mut body = serde_json::to_value(manifest).expect("views serialise");
        body["can_delete"] = can_delete.into();
        Ok(json_response(StatusCode::OK, &body))
    }

    /// Repositories whose names match, and tags (of visible repositories) whose names match.
    pub(super) fn api_search(
        &self,
        request: &UiRequest,
        visitor: &Visitor,
    ) -> Result<UiResponse, UiError> {
        let query = ListQuery::from_request(request)?;
        if query.q.is_empty() {
            return Err(UiError::BadRequest("search needs q=".into()));
        }
        let snapshot = self.index.snapshot()?;
        let visible = snapshot
            .iter()
            .filter(|summary| self.may(visitor, &summary.name, Action::Pull));
        let mut repositories = Vec::new();
        let mut tags = Vec::new();
        for summary in visible {
            if repositories.len() < MAX_SEARCH_RESULTS && query.matches(&summary.name) {
                repositories.push(summary.name.clone());
            }
            for tag in summary.tags.iter().filter(|tag| query.matches(tag)) {
                if tags.len() < MAX_SEARCH_RESULTS {
                    tags.push(TagHit {
                        repository: summary.name.clone(),
                        tag: tag.clone(),
                    });
                }
            }
            if repositories.len() >= MAX_SEARCH_RESULTS && tags.len() >= MAX_SEARCH_RESULTS {
                break;
            }
        }
        let body = serde_json::json!({ "query": query.q, "match": query.r#match,
            "repositories": repositories, "tags": tags });
        Ok(json_response(StatusCode::OK, &body))
    }
}
