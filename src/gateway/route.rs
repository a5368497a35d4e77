//! Turns a request path into a [`Route`]: which registry operation on which repository. The
//! path is read raw, never percent-decoded, so an encoded `/` or `..` fails name validation
//! instead of changing which files are touched.

use http::Method;

use crate::acl::Action;
use crate::registry::{Digest, Reference, RegistryError, RepositoryName, UploadId};

/// A parsed `/v2/...` path.
#[derive(Debug, Clone)]
pub enum Route {
    /// `/v2/`: the API version check docker uses to probe and to log in.
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags { repository: RepositoryName },
    /// `/v2/<name>/manifests/<reference>`
    Manifest {
        repository: RepositoryName,
        reference: Reference,
    },
    /// `/v2/<name>/blobs/<digest>`
    Blob {
        repository: RepositoryName,
        digest: Digest,
    },
    /// `/v2/<name>/referrers/<digest>`: manifests whose `subject` is `digest`.
    Referrers {
        repository: RepositoryName,
        digest: Digest,
    },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart { repository: RepositoryName },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload {
        repository: RepositoryName,
        id: UploadId,
    },
    /// Anything else.
    Unknown,
}

impl Route {
    /// Parses the path part of a request URI.
    ///
    /// # Errors
    /// The registry error for an invalid repository name, digest, tag or upload id.
    pub fn parse(path: &str) -> Result<Route, RegistryError> {
        let Some(rest) = path.strip_prefix("/v2/") else {
            return Ok(if path == "/v2" {
                Route::Base
            } else {
                Route::Unknown
            });
        };
        if rest.is_empty() {
            return Ok(Route::Base);
        }
        if rest == "_catalog" {
            return Ok(Route::Catalog);
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Ok(Route::Tags {
                repository: RepositoryName::parse(name)?,
            });
        }
        if let Some((name, reference)) = split_last(rest, "/manifests/") {
            let repository = RepositoryName::parse(name)?;
            return Ok(Route::Manifest {
                repository,
                reference: Reference::parse(reference)?,
            });
        }
        if let Some((name, digest)) = split_last(rest, "/referrers/") {
            let repository = RepositoryName::parse(name)?;
            return Ok(Route::Referrers {
                repository,
                digest: Digest::parse(digest)?,
            });
        }
        if let Some(name) = rest
            .strip_suffix("/blobs/uploads/")
            .or_else(|| rest.strip_suffix("/blobs/uploads"))
        {
            return Ok(Route::UploadStart {
                repository: RepositoryName::parse(name)?,
            });
        }
        if let Some((name, id)) = split_last(rest, "/blobs/uploads/") {
            let repository = RepositoryName::parse(name)?;
            return Ok(Route::Upload {
                repository,
                id: UploadId::parse(id)?,
            });
        }
        if let Some((name, digest)) = split_last(rest, "/blobs/") {
            let repository = RepositoryName::parse(name)?;
            return Ok(Route::Blob {
                repository,
                digest: Digest::parse(digest)?,
            });
        }
        Ok(Route::Unknown)
    }

    /// A bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Route::Base => "base",
            Route::Catalog => "catalog",
            Route::Tags { .. } => "tags",
            Route::Manifest { .. } => "manifest",
            Route::Blob { .. } => "blob",
            Route::Referrers { .. } => "referrers",
            Route::UploadStart { .. } | Route::Upload { .. } => "upload",
            Route::Unknown => "unknown",
        }
    }

    /// The repository the route is about, if any.
    pub fn repository(&self) -> Option<&RepositoryName> {
        match self {
            Route::Tags { repository }
            | Route::Manifest { repository, .. }
            | Route::Blob { repository, .. }
            | Route::Referrers { repository, .. }
            | Route::UploadStart { repository }
            | Route::Upload { repository, .. } => Some(repository),
            Route::Base | Route::Catalog | Route::Unknown => None,
        }
    }

    /// The ACL action `method` needs on this route's repository; `None` when the route has
    /// no repository or the method is not one the route supports.
    pub fn action(&self, method: &Method) -> Option<Action> {
        let read = method == Method::GET || method == Method::HEAD;
        match self {
            Route::Tags { .. } if read => Some(Action::Pull),
            Route::Manifest { .. } | Route::Blob { .. } if read => Some(Action::Pull),
            Route::Referrers { .. } if read => Some(Action::Pull),
            Route::Manifest { .. } if method == Method::PUT => Some(Action::Push),
            Route::Manifest { .. } | Route::Blob { .. } if method == Method::DELETE => {
                Some(Action::Delete)
            }
            Route::UploadStart { .. } if method == Method::POST => Some(Action::Push),
            Route::Upload { .. } => {
                let upload_methods = [Method::GET, Method::PATCH, Method::PUT, Method::DELETE];
                upload_methods.contains(method).then_some(Action::Push)
            }
            _ => None,
        }
    }
}

/// Splits at the last `separator`, when what follows holds no further `/`.
fn split_last<'a>(text: &'a str, separator: &str) -> Option<(&'a str, &'a str)> {
    let index = text.rfind(separator)?;
    let tail = &text[index + separator.len()..];
    (!tail.is_empty() && !tail.contains('/')).then(|| (&text[..index], tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_from_paths() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(Route::parse("/v2/").unwrap(), Route::Base));
        assert!(matches!(
            Route::parse("/v2/_catalog").unwrap(),
            Route::Catalog
        ));
        assert!(matches!(
            Route::parse("/v2/a/b/tags/list").unwrap(),
            Route::Tags { .. }
        ));
        assert!(matches!(
            Route::parse("/v2/a/manifests/latest").unwrap(),
            Route::Manifest { .. }
        ));
        let blob = Route::parse(&format!("/v2/team/app/blobs/{digest}")).unwrap();
        assert_eq!(blob.repository().unwrap().as_str(), "team/app");
        assert!(matches!(
            Route::parse("/v2/a/blobs/uploads/").unwrap(),
            Route::UploadStart { .. }
        ));
        let id = UploadId::generate();
        assert!(matches!(
            Route::parse(&format!("/v2/a/blobs/uploads/{id}")).unwrap(),
            Route::Upload { .. }
        ));
        let referrers = Route::parse(&format!("/v2/a/b/referrers/{digest}")).unwrap();
        assert!(matches!(referrers, Route::Referrers { .. }));
        assert_eq!(referrers.action(&Method::GET), Some(Action::Pull));
        assert_eq!(referrers.action(&Method::PUT), None);
        assert!(matches!(
            Route::parse("/v2/a/referrers/md5:abc"),
            Err(RegistryError::DigestInvalid { .. })
        ));
        assert!(matches!(Route::parse("/metrics").unwrap(), Route::Unknown));
    }

    #[test]
    fn each_operation_needs_its_action() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let id = UploadId::generate();
        let table = [
            (
                "/v2/a/tags/list".to_string(),
                Method::GET,
                Some(Action::Pull),
            ),
            ("/v2/a/manifests/t".into(), Method::HEAD, Some(Action::Pull)),
            ("/v2/a/manifests/t".into(), Method::PUT, Some(Action::Push)),
            (
                "/v2/a/manifests/t".into(),
                Method::DELETE,
                Some(Action::Delete),
            ),
            (
                format!("/v2/a/blobs/{digest}"),
                Method::GET,
                Some(Action::Pull),
            ),
            (
                format!("/v2/a/blobs/{digest}"),
                Method::DELETE,
                Some(Action::Delete),
            ),
            (
                format!("/v2/a/referrers/{digest}"),
                Method::GET,
                Some(Action::Pull),
            ),
            (format!("/v2/a/referrers/{digest}"), Method::DELETE, None),
            (
                "/v2/a/blobs/uploads/".into(),
                Method::POST,
                Some(Action::Push),
            ),
            (
                format!("/v2/a/blobs/uploads/{id}"),
                Method::DELETE,
                Some(Action::Push),
            ),
            (
                format!("/v2/a/blobs/uploads/{id}"),
                Method::GET,
                Some(Action::Push),
            ),
        ];
        for (path, method, expected) in table {
            let route = Route::parse(&path).unwrap();
            assert_eq!(route.action(&method), expected, "{method} {path}");
        }
    }

    #[test]
    fn path_tricks_are_invalid_names() {
        for path in [
            "/v2/a/../b/manifests/x",
            "/v2/%2e%2e/manifests/x",
            "/v2/a%2Fb/manifests/x",
            "/v2/a//b/manifests/x",
            "/v2/A/manifests/x",
            "/v2//manifests/x",
        ] {
            assert!(
                matches!(Route::parse(path), Err(RegistryError::NameInvalid { .. })),
                "{path}"
            );
        }
        assert!(matches!(
            Route::parse("/v2/a/blobs/uploads/../../x"),
            Ok(Route::Unknown) | Err(_)
        ));
        assert!(matches!(
            Route::parse("/v2/a/blobs/uploads/nope"),
            Err(RegistryError::BlobUploadUnknown)
        ));
    }
}
