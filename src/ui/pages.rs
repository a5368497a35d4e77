//! The HTML pages: the repository list with search, a repository, a manifest, the delete
//! confirmation, and signing in and out. Each gathers its data, checks the ACL, and renders
//! one template; `base.html` supplies the frame and the visitor's name and CSRF token.

use std::collections::HashMap;
use std::time::SystemTime;

use minijinja::{context, Environment, Value};
use serde::Serialize;

use super::index::RepositorySummary;
use super::view::{self, epoch_seconds};
use super::{html_response, redirect, safe_next, Ui, UiError, UiRequest, UiResponse, Visitor};
use crate::acl::{Action, Basis, Decision};
use crate::auth::AuthError;
use crate::live::Audited;
use crate::registry::{Digest, Reference, RegistryError, RepositoryName, Tag};

/// Repositories per page unless the request asks otherwise.
pub const PAGE_SIZE: usize = 50;
/// Most repositories one page or API answer may hold.
pub const MAX_PAGE_SIZE: usize = 500;

/// The templates, embedded in the binary.
const TEMPLATES: [(&str, &str); 7] = [
    ("base.html", include_str!("templates/base.html")),
    ("list.html", include_str!("templates/list.html")),
    ("repository.html", include_str!("templates/repository.html")),
    ("manifest.html", include_str!("templates/manifest.html")),
    ("delete.html", include_str!("templates/delete.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error.html", include_str!("templates/error.html")),
];

/// The template environment: HTML autoescaping (from the `.html` names), the embedded
/// templates, and filters for sizes and times.
pub(super) fn environment(assets: &super::Assets) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_formatter(escape_formatter);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .expect("embedded templates parse (a unit test renders each)");
    }
    env.add_filter("size", view::human_size);
    env.add_filter("ago", |seconds: Option<i64>| match seconds {
        Some(seconds) => view::relative_time(seconds, epoch_seconds(SystemTime::now())),
        None => "unknown".to_string(),
    });
    env.add_filter("iso", |seconds: Option<i64>| {
        seconds.map(view::iso_time).unwrap_or_default()
    });
    env.add_filter("short", |digest: String| {
        let hex = digest
            .split_once(':')
            .map_or(digest.as_str(), |(_, hex)| hex);
        hex.chars().take(12).collect::<String>()
    });
    env.add_global("css", assets.style.path.clone());
    env.add_global("js", assets.script.path.clone());
    env
}

/// Like minijinja's own, but leaves `/` alone in HTML: it is not special there, and paths
/// and repository names stay readable in the page source.
fn escape_formatter(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let html = matches!(state.auto_escape(), minijinja::AutoEscape::Html);
    if !html || value.is_safe() || value.is_none() || value.is_undefined() {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = value.to_string();
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }
    out.write_str(&escaped).map_err(minijinja::Error::from)
}

/// How the repository list is narrowed, ordered and cut into pages.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ListQuery {
    pub q: String,
    /// `contains` or `prefix`.
    pub r#match: String,
    /// `name`, `pushed`, `size` or `tags`.
    pub sort: String,
    pub page: usize,
    pub per_page: usize,
}

/// One page of the repository list.
#[derive(Debug, Serialize)]
pub(super) struct Selection {
    /// Repositories that match and are visible, on every page.
    pub total: usize,
    pub pages: usize,
    pub rows: Vec<RepositoryRow>,
}

/// A repository as the list shows it.
#[derive(Debug, Serialize)]
pub(super) struct RepositoryRow {
    pub name: String,
    pub tag_count: usize,
    pub size: u64,
    pub last_push: Option<i64>,
}

impl ListQuery {
    pub(super) fn from_request(request: &UiRequest) -> Result<ListQuery, UiError> {
        let get = |key: &str| request.query.get(key).map(|v| v.trim().to_string());
        let number = |key: &str, default: usize| -> Result<usize, UiError> {
            match get(key).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(raw) => raw
                    .parse()
                    .map_err(|_| UiError::BadRequest(format!("{key}={raw} is not a number"))),
            }
        };
        let r#match = get("match").unwrap_or_default();
        let sort = get("sort").unwrap_or_default();
        Ok(ListQuery {
            q: get("q").unwrap_or_default(),
            r#match: if r#match == "prefix" {
                r#match
            } else {
                "contains".into()
            },
            sort: match sort.as_str() {
                "pushed" | "size" | "tags" => sort,
                _ => "name".into(),
            },
            page: number("page", 1)?.max(1),
            per_page: number("per_page", PAGE_SIZE)?.clamp(1, MAX_PAGE_SIZE),
        })
    }

    /// Whether `text` matches the search.
    pub(super) fn matches(&self, text: &str) -> bool {
        let needle = self.q.to_ascii_lowercase();
        if self.r#match == "prefix" {
            text.starts_with(&needle)
        } else {
            text.contains(&needle)
        }
    }
}

impl Ui {
    /// The visible repositories matching `query`, sorted, one page of them.
    pub(super) fn select(
        &self,
        visitor: &Visitor,
        query: &ListQuery,
    ) -> Result<Selection, UiError> {
        let snapshot = self.index.snapshot()?;
        let mut found: Vec<&RepositorySummary> = snapshot
            .iter()
            .map(|summary| summary.as_ref())
            .filter(|summary| query.matches(&summary.name))
            .filter(|summary| self.may(visitor, &summary.name, Action::Pull))
            .collect();
        match query.sort.as_str() {
            "pushed" => found.sort_by(|a, b| b.last_push.cmp(&a.last_push)),
            "size" => found.sort_by(|a, b| b.size.cmp(&a.size)),
            "tags" => found.sort_by(|a, b| b.tags.len().cmp(&a.tags.len())),
            _ => {} // The snapshot is sorted by name.
        }
        let total = found.len();
        let rows = found
            .into_iter()
            .skip((query.page - 1).saturating_mul(query.per_page))
            .take(query.per_page)
            .map(|summary| RepositoryRow {
                name: summary.name.clone(),
                tag_count: summary.tags.len(),
                size: summary.size,
                last_push: summary.last_push,
            })
            .collect();
        Ok(Selection {
            total,
            pages: total.div_ceil(query.per_page).max(1),
            rows,
        })
    }

    pub(super) fn list_page(
        &self,
        request: &UiRequest,
        visitor: &Visitor,
    ) -> Result<UiResponse, UiError> {
        let query = ListQuery::from_request(request)?;
        let selection = self.select(visitor, &query)?;
        let context = context! { query, selection, title => "Repositories" };
        Ok(html_response(self.render(
            "list.html",
            visitor,
            request,
            context,
        )?))
    }

    pub(super) fn repository_page(
        &self,
        request: &UiRequest,
        visitor: &Visitor,
        repository: &RepositoryName,
    ) -> Result<UiResponse, UiError> {
        let (tags, can_delete) = self.repository_data(visitor, repository)?;
        let context = context! {
            title => repository.as_str(),
            repository => repository.as_str(),
            tags,
            can_delete,
            deleted => request.query.get("deleted"),
            pull_host => pull_host(request),
        };
        Ok(html_response(self.render(
            "repository.html",
            visitor,
            request,
            context,
        )?))
    }

    pub(super) fn manifest_page(
        &self,
        request: &UiRequest,
        visitor: &Visitor,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<UiResponse, UiError> {
        self.require_pull(visitor, repository)?;
        let manifest =
            view::manifest_view(&self.registry, repository, digest).map_err(not_found)?;
        let context = context! {
            title => format!("{repository}@{}", &digest.hex()[..12]),
            repository => repository.as_str(),
            manifest,
            can_delete => self.may_delete(visitor, repository.as_str()),
            pull_host => pull_host(request),
        };
        Ok(html_response(self.render(
            "manifest.html",
            visitor,
            request,
            context,
        )?))
    }

    /// A repository's tags, and whether the visitor may delete in it.
    pub(super) fn repository_data(
        &self,
        visitor: &Visitor,
        repository: &RepositoryName,
    ) -> Result<(Vec<view::TagRow>, bool), UiError> {
        self.require_pull(visitor, repository)?;
        let tags = view::tag_rows(&self.registry, repository).map_err(not_found)?;
        Ok((tags, self.may_delete(visitor, repository.as_str())))
    }

    /// A manifest's details, and whether the visitor may delete it.
    pub(super) fn manifest_data(
        &self,
        visitor: &Visitor,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<(view::ManifestView, bool), UiError> {
        self.require_pull(visitor, repository)?;
        let manifest =
            view::manifest_view(&self.registry, repository, digest).map_err(not_found)?;
        Ok((manifest, self.may_delete(visitor, repository.as_str())))
    }

    /// The confirmation step before a delete: what goes, and a form to confirm.
    pub(super) fn delete_confirm(
        &self,
        request: &UiRequest,
        visitor: &Visitor,
        repository: &RepositoryName,
    ) -> Result<UiResponse, UiError> {
        self.require_pull(visitor, repository)?;
        self.require_delete(visitor, repository)?;
        let reference = delete_target(&request.query)?;
        let digest = self
            .registry
            .resolve_reference(repository, &reference)
            .map_err(not_found)?;
        let tags: Vec<String> = self
            .registry
            .tag_links(repository)?
            .into_iter()
            .filter(|link| link.digest == digest)
            .map(|link| link.tag)
            .collect();
        let context = context! {
            title => format!("Delete from {repository}"),
            repository => repository.as_str(),
            tag => matches!(reference, Reference::Tag(_)).then(|| reference.to_string()),
            digest => digest.to_string(),
            tags,
        };
        Ok(html_response(self.render(
            "delete.html",
            visitor,
            request,
            context,
        )?))
    }

    /// Deletes a tag or a manifest, after the CSRF and ACL checks.
    pub(super) fn delete(
        &self,
        request: &UiRequest,
        visitor: &Visitor,
        repository: &RepositoryName,
    ) -> Result<UiResponse, UiError> {
        self.require_csrf(request, visitor)?;
        self.require_pull(visitor, repository)?;
        self.require_delete(visitor, repository)?;
        let reference = delete_target(&request.form)?;

        // The same protection as a DELETE through the registry API: deleting a manifest
        // by digest takes every tag naming it along.
        let policy = &visitor.live.policy;
        for tag in self.registry.tags_removed_by(repository, &reference)? {
            let Some(basis @ Basis::ImmutableTag(rule)) =
                policy.protected_tag(repository.as_str(), &tag)
            else {
                continue;
            };
            self.audit(
                visitor,
                request,
                repository,
                &reference,
                Decision::Deny(basis),
            );
            return Err(UiError::ImmutableTag {
                tag,
                rule,
                rule_text: policy.text_of(basis).unwrap_or_default(),
            });
        }

        self.registry
            .manifest_delete(repository, &reference)
            .map_err(not_found)?;
        self.index.invalidate(repository);
        let decision = policy.evaluate(&visitor.identity, repository.as_str(), Action::Delete);
        self.audit(visitor, request, repository, &reference, decision);
        tracing::info!(
            user = visitor.identity.display_name(), repo = %repository,
            reference = %reference, "deleted through the web ui"
        );
        let deleted: String =
            form_urlencoded::byte_serialize(reference.to_string().as_bytes()).collect();
        Ok(redirect(&format!(
            "/ui/repo/{repository}?deleted={deleted}"
        )))
    }

    /// Writes the audit event of a delete through the UI: `delete` when `decision` allowed
    /// it, `denied` when it refused.
    fn audit(
        &self,
        visitor: &Visitor,
        request: &UiRequest,
        repository: &RepositoryName,
        reference: &Reference,
        decision: Decision,
    ) {
        let digest = match reference {
            Reference::Digest(digest) => Some(digest),
            Reference::Tag(_) => None,
        };
        visitor.live.audit(Audited {
            event: if decision.is_allowed() {
                "delete"
            } else {
                "denied"
            },
            identity: &visitor.identity,
            client: &request.client,
            repository: repository.as_str(),
            reference: Some(reference.to_string()),
            digest,
            previous: None,
            action: Action::Delete,
            decision,
        });
    }

    /// The sign-in form, with `message` when the last attempt failed.
    pub(super) fn sign_in_html(
        &self,
        request: &UiRequest,
        visitor: &Visitor,
        message: Option<&str>,
    ) -> Result<String, UiError> {
        let next = request.query.get("next").or(request.form.get("next"));
        let context = context! {
            title => "Sign in",
            next => safe_next(next),
            username => request.form.get("username"),
            message,
        };
        self.render("login.html", visitor, request, context)
    }

    /// Checks the form's user name and password and starts a session.
    pub(super) async fn sign_in(
        &self,
        request: &UiRequest,
        auth: &crate::auth::Authenticator,
    ) -> Result<UiResponse, UiError> {
        let user = request.form.get("username").map(|u| u.trim()).unwrap_or("");
        let password = request
            .form
            .get("password")
            .map(String::as_str)
            .unwrap_or("");
        if user.is_empty() || password.is_empty() {
            return Err(UiError::BadCredentials);
        }
        let (identity, outcome) = match auth.authenticate_password(user, password).await {
            Ok(checked) => checked,
            Err(AuthError::DirectoryUnavailable { problem }) => {
                self.metrics.auth_attempt("form", "unavailable");
                tracing::error!(%problem, "ldap directory unavailable; web ui sign-in refused");
                return Err(UiError::BadCredentials);
            }
            Err(_) => {
                self.metrics.auth_attempt("form", "failure");
                tracing::info!(user, "web ui sign-in refused");
                return Err(UiError::BadCredentials);
            }
        };

        // Only the groups the directory gave are kept: the rest come from the running
        // config on each request. The listener's certificate policy applies here as it
        // does to a password sent to the registry API.
        let method = identity.method;
        let directory_groups = auth.proven_groups(&identity);
        if let Err(refusal) =
            auth.with_certificate(Some((identity, outcome)), request.certificate.as_deref())
        {
            self.metrics.auth_attempt("form", "failure");
            tracing::info!(user, reason = %refusal, "web ui sign-in refused");
            return Err(UiError::CertificatePolicy(refusal.to_string()));
        }
        self.metrics.auth_attempt("form", "success");

        // A fresh id on every sign-in, so an id planted before it is worth nothing.
        if let Some(old) = request
            .cookie
            .as_deref()
            .and_then(|c| super::session::cookie_value(c, super::session::COOKIE))
        {
            self.sessions.remove(old);
        }
        let (id, _) = self.sessions.create(
            user.to_string(),
            method,
            directory_groups,
            auth.credential_stamp(user),
        );
        tracing::info!(user, "web ui sign-in");
        let mut response = redirect(&safe_next(request.form.get("next")));
        response.set_cookie = Some(self.sessions.set_cookie(&id));
        Ok(response)
    }

    /// Ends the session and clears the cookie.
    pub(super) fn sign_out(
        &self,
        request: &UiRequest,
        visitor: &Visitor,
    ) -> Result<UiResponse, UiError> {
        self.require_csrf(request, visitor)?;
        if let Some(id) = &visitor.session_id {
            self.sessions.remove(id);
        }
        let mut response = redirect("/ui/");
        response.set_cookie = Some(super::session::clear_cookie());
        Ok(response)
    }

    /// Renders `template` with `context` plus what every page needs.
    pub(super) fn render(
        &self,
        template: &str,
        visitor: &Visitor,
        request: &UiRequest,
        context: Value,
    ) -> Result<String, UiError> {
        let base = context! {
            user => visitor.identity.user.as_deref(),
            csrf => visitor.session.as_ref().map(|s| s.csrf.as_str()),
            search => request.query.get("q"),
            path => request.path.as_str(),
        };
        let merged = context! { ..context, ..base };
        Ok(self.templates.get_template(template)?.render(merged)?)
    }

    fn require_delete(
        &self,
        visitor: &Visitor,
        repository: &RepositoryName,
    ) -> Result<(), UiError> {
        if self.may_delete(visitor, repository.as_str()) {
            return Ok(());
        }
        if visitor.identity.is_anonymous() {
            return Err(UiError::SignInRequired);
        }
        Err(UiError::Denied)
    }
}

/// `tag=` or `digest=` of a delete request.
fn delete_target(fields: &HashMap<String, String>) -> Result<Reference, UiError> {
    if let Some(tag) = fields.get("tag").filter(|t| !t.is_empty()) {
        let tag = Tag::parse(tag).map_err(|_| UiError::BadRequest("invalid tag".into()))?;
        return Ok(Reference::Tag(tag));
    }
    if let Some(digest) = fields.get("digest").filter(|d| !d.is_empty()) {
        let digest =
            Digest::parse(digest).map_err(|_| UiError::BadRequest("invalid digest".into()))?;
        return Ok(Reference::Digest(digest));
    }
    Err(UiError::BadRequest(
        "name a tag or a digest to delete".into(),
    ))
}

/// The registry host for the `docker pull` line: the `Host` the browser used, when it is
/// a plain host name or address.
fn pull_host(request: &UiRequest) -> String {
    let host = request.host.as_deref().unwrap_or("");
    let plain = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    if plain {
        host.to_string()
    } else {
        "localhost".to_string()
    }
}

/// A missing repository or manifest is a missing page.
pub(super) fn not_found(error: RegistryError) -> UiError {
    match error {
        RegistryError::NameUnknown | RegistryError::ManifestUnknown => UiError::NotFound,
        other => UiError::Registry(other),
    }
}
