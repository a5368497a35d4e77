//! The registry's identifiers, parsed once at the edge: a [`RepositoryName`], a [`Reference`]
//! (a tag or a [`Digest`]) and an upload session id. Anything that reaches storage has passed
//! through here, so no path built from these can leave the data root.

use std::fmt;

use sha2::{Digest as _, Sha256, Sha512};

use super::error::RegistryError;

/// Longest repository name the spec lets registries refuse beyond.
const MAX_NAME_LEN: usize = 255;
/// Longest tag the spec allows.
const MAX_TAG_LEN: usize = 128;

/// A repository name such as `team/app`: lowercase path components separated by `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

impl RepositoryName {
    /// Parses a name with the distribution spec's grammar; the raw text is not decoded, so
    /// `%2F`, `%2e%2e`, `..` and empty components are all refused.
    ///
    /// # Errors
    /// [`RegistryError::NameInvalid`] for anything outside the grammar.
    pub fn parse(raw: &str) -> Result<Self, RegistryError> {
        let invalid = || RegistryError::NameInvalid {
            name: truncate(raw),
        };
        if raw.is_empty() || raw.len() > MAX_NAME_LEN {
            return Err(invalid());
        }
        if !raw.split('/').all(is_path_component) {
            return Err(invalid());
        }
        Ok(RepositoryName(raw.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }

    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let allowed = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !allowed {
            return false;
        }
    }
    true
}

/// A content digest: `sha256:<64 hex>` or `sha512:<128 hex>`, lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// The hash functions the registry accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name used in digests and in the storage layout.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl Digest {
    /// Parses `algorithm:hex`.
    ///
    /// # Errors
    /// [`RegistryError::DigestInvalid`] for unknown algorithms and malformed hex.
    pub fn parse(raw: &str) -> Result<Self, RegistryError> {
        let invalid = || RegistryError::DigestInvalid {
            detail: format!("malformed digest {}", truncate(raw)),
        };
        let (algorithm, hex) = raw.split_once(':').ok_or_else(invalid)?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(invalid()),
        };
        let is_lower_hex = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex.len() != algorithm.hex_len() || !is_lower_hex {
            return Err(invalid());
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(bytes).into())
    }

    /// The digest of `bytes` with the given algorithm.
    pub fn compute(algorithm: Algorithm, bytes: &[u8]) -> Self {
        match algorithm {
            Algorithm::Sha256 => Self::sha256_of(bytes),
            Algorithm::Sha512 => Digest {
                algorithm,
                hex: hex::encode(Sha512::digest(bytes)),
            },
        }
    }

    /// Wraps a finished sha256 hash.
    pub fn from_sha256(hash: [u8; 32]) -> Self {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(hash),
        }
    }

    /// Wraps a finished sha512 hash.
    pub fn from_sha512(hash: [u8; 64]) -> Self {
        Digest {
            algorithm: Algorithm::Sha512,
            hex: hex::encode(hash),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, which names the blob's directory in storage.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

/// What a manifest request names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    /// A reference with a `:` is a digest, anything else must be a valid tag.
    ///
    /// # Errors
    /// [`RegistryError::DigestInvalid`] or [`RegistryError::TagInvalid`].
    pub fn parse(raw: &str) -> Result<Self, RegistryError> {
        if raw.contains(':') {
            return Digest::parse(raw).map(Reference::Digest);
        }
        Tag::parse(raw).map(Reference::Tag)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(tag) => tag.fmt(f),
            Reference::Digest(digest) => digest.fmt(f),
        }
    }
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// # Errors
    /// [`RegistryError::TagInvalid`] outside the grammar.
    pub fn parse(raw: &str) -> Result<Self, RegistryError> {
        let bytes = raw.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b));
        if !first_ok || !rest_ok || bytes.len() > MAX_TAG_LEN {
            return Err(RegistryError::TagInvalid { tag: truncate(raw) });
        }
        Ok(Tag(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An upload session id: a UUID in its hyphenated lowercase form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// A fresh random id.
    pub fn generate() -> Self {
        UploadId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// # Errors
    /// [`RegistryError::BlobUploadUnknown`] for anything that is not a UUID: such an upload
    /// cannot exist.
    pub fn parse(raw: &str) -> Result<Self, RegistryError> {
        match uuid::Uuid::try_parse(raw) {
            Ok(id) if id.hyphenated().to_string() == raw => Ok(UploadId(raw.to_string())),
            _ => Err(RegistryError::BlobUploadUnknown),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Keeps error messages short when the input is huge.
fn truncate(raw: &str) -> String {
    raw.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_spec_grammar() {
        for good in ["a", "team/app", "a.b/c_d/e__f/g-h", "x--y", "0/1"] {
            assert!(RepositoryName::parse(good).is_ok(), "{good}");
        }
        let long = "a".repeat(256);
        for bad in [
            "", "A", "a//b", "a/../b", "..", "a/", "/a", "a%2Fb", "%2e%2e", "a._b", &long,
        ] {
            assert!(RepositoryName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digests_accept_sha256_and_sha512_only() {
        let sha256 = format!("sha256:{}", "a".repeat(64));
        let sha512 = format!("sha512:{}", "b".repeat(128));
        assert!(Digest::parse(&sha256).is_ok());
        assert!(Digest::parse(&sha512).is_ok());
        assert!(Digest::parse(&format!("md5:{}", "a".repeat(32))).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse("sha256:abc").is_err());
    }

    #[test]
    fn references_split_into_tags_and_digests() {
        assert!(matches!(Reference::parse("latest"), Ok(Reference::Tag(_))));
        assert!(matches!(
            Reference::parse("_v1.0-rc"),
            Ok(Reference::Tag(_))
        ));
        assert!(Reference::parse(".hidden").is_err());
        assert!(Reference::parse(&"t".repeat(129)).is_err());
    }

    #[test]
    fn upload_ids_must_be_canonical_uuids() {
        let id = UploadId::generate();
        assert_eq!(UploadId::parse(id.as_str()).unwrap(), id);
        assert!(UploadId::parse("../../etc").is_err());
        assert!(UploadId::parse(&id.as_str().to_uppercase()).is_err());
    }
}
