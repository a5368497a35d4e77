//! The distribution spec's error codes, one variant per failure, each knowing its HTTP status.
//! The gateway turns these into `{"errors":[{"code","message","detail"}]}` bodies.

use http::StatusCode;

use super::{RepositoryName, UploadId};
use crate::storage::StorageError;

/// Everything the registry engine can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The repository name is outside the spec's grammar.
    #[error("invalid repository name")]
    NameInvalid { name: String },

    /// The tag is outside the spec's grammar.
    #[error("invalid tag")]
    TagInvalid { tag: String },

    /// A digest is malformed, uses an unsupported algorithm, or does not match the content.
    #[error("provided digest did not match uploaded content")]
    DigestInvalid { detail: String },

    /// The blob is not linked into this repository.
    #[error("blob unknown to registry")]
    BlobUnknown,

    /// No upload session with that id exists in this repository.
    #[error("blob upload unknown to registry")]
    BlobUploadUnknown,

    /// The upload request is malformed (for example a chunk at the wrong offset).
    #[error("blob upload invalid")]
    BlobUploadInvalid { detail: String },

    /// A chunk starts somewhere other than the end of what was received by session `id`
    /// of `repository`, which holds `current_size` bytes.
    #[error("requested range not satisfiable")]
    RangeInvalid {
        repository: RepositoryName,
        id: UploadId,
        current_size: u64,
    },

    /// The manifest does not exist in this repository.
    #[error("manifest unknown")]
    ManifestUnknown,

    /// The manifest is not valid JSON of a supported kind, or is too large.
    #[error("manifest invalid")]
    ManifestInvalid { detail: String },

    /// The manifest references a blob or manifest the repository does not have.
    #[error("blob unknown to registry")]
    ManifestBlobUnknown { digest: String },

    /// The repository does not exist.
    #[error("repository name not known to registry")]
    NameUnknown,

    /// The manifest `digest` cannot be deleted: the index `index` in the same repository
    /// still lists it (and `storage.delete.referenced_manifests` is off).
    #[error("the manifest is listed by an index in this repository; delete the index first")]
    ManifestReferenced { digest: String, index: String },

    /// The operation is switched off in this registry.
    #[error("the operation is unsupported")]
    Unsupported,

    /// The requested byte range cannot be served.
    #[error("requested range not satisfiable")]
    RangeNotSatisfiable { size: u64 },

    /// Storage failed underneath us; details are logged, not sent.
    #[error("storage failure")]
    Storage(#[from] StorageError),

    /// Something on our side failed outside storage (a worker thread died, the connection
    /// broke while answering): `detail` says what, for the log.
    #[error("internal failure")]
    Internal { detail: String },
}

impl RegistryError {
    /// The spec's error code.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::NameInvalid { .. } => "NAME_INVALID",
            RegistryError::TagInvalid { .. } => "MANIFEST_INVALID",
            RegistryError::DigestInvalid { .. } => "DIGEST_INVALID",
            RegistryError::BlobUnknown => "BLOB_UNKNOWN",
            RegistryError::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            RegistryError::BlobUploadInvalid { .. } => "BLOB_UPLOAD_INVALID",
            RegistryError::RangeInvalid { .. } => "BLOB_UPLOAD_INVALID",
            RegistryError::ManifestUnknown => "MANIFEST_UNKNOWN",
            RegistryError::ManifestInvalid { .. } => "MANIFEST_INVALID",
            RegistryError::ManifestBlobUnknown { .. } => "MANIFEST_BLOB_UNKNOWN",
            RegistryError::NameUnknown => "NAME_UNKNOWN",
            RegistryError::Unsupported | RegistryError::ManifestReferenced { .. } => "UNSUPPORTED",
            RegistryError::RangeNotSatisfiable { .. } => "BLOB_UNKNOWN",
            RegistryError::Storage(error) if error.is_unavailable() => "UNAVAILABLE",
            RegistryError::Storage(_) | RegistryError::Internal { .. } => "UNKNOWN",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(&self) -> StatusCode {
        match self {
            RegistryError::NameInvalid { .. }
            | RegistryError::TagInvalid { .. }
            | RegistryError::DigestInvalid { .. }
            | RegistryError::BlobUploadInvalid { .. }
            | RegistryError::ManifestInvalid { .. }
            | RegistryError::ManifestBlobUnknown { .. } => StatusCode::BAD_REQUEST,
            RegistryError::BlobUnknown
            | RegistryError::BlobUploadUnknown
            | RegistryError::ManifestUnknown
            | RegistryError::NameUnknown => StatusCode::NOT_FOUND,
            RegistryError::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            RegistryError::ManifestReferenced { .. } => StatusCode::CONFLICT,
            RegistryError::RangeInvalid { .. } | RegistryError::RangeNotSatisfiable { .. } => {
                StatusCode::RANGE_NOT_SATISFIABLE
            }
            RegistryError::Storage(error) if error.is_unavailable() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            RegistryError::Storage(_) | RegistryError::Internal { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Machine-readable detail for the error body; `null` when there is nothing to add.
    pub fn detail(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            RegistryError::NameInvalid { name } => json!({ "name": name }),
            RegistryError::TagInvalid { tag } => json!({ "tag": tag }),
            RegistryError::DigestInvalid { detail }
            | RegistryError::BlobUploadInvalid { detail }
            | RegistryError::ManifestInvalid { detail } => json!(detail),
            RegistryError::ManifestBlobUnknown { digest } => json!({ "digest": digest }),
            RegistryError::RangeInvalid { current_size, .. } => json!({ "size": current_size }),
            RegistryError::ManifestReferenced { digest, index } => {
                json!({ "digest": digest, "index": index })
            }
            RegistryError::RangeNotSatisfiable { size } => json!({ "size": size }),
            _ => serde_json::Value::Null,
        }
    }

    /// Whether the failure is ours rather than the client's (logged at error level).
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            RegistryError::Storage(_) | RegistryError::Internal { .. }
        )
    }

    /// The message sent to the client: the variant's text, except that an unreachable
    /// store says so, and that the client should retry.
    pub fn message(&self) -> String {
        match self {
            RegistryError::Storage(error) if error.is_unavailable() => {
                "storage backend unavailable; nothing was stored, retry later".to_string()
            }
            other => other.to_string(),
        }
    }
}
