//! The HTTP basic scheme: reading `Authorization: Basic base64(user:password)`.

use base64::Engine as _;

/// A user name and password from a basic `Authorization` header.
pub struct BasicCredential {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for BasicCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password, not even in debug output.
        f.debug_struct("BasicCredential")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Parses the header's value; `None` when it is not a well-formed basic credential.
pub fn parse(header: &[u8]) -> Option<BasicCredential> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some(BasicCredential {
        user: user.to_string(),
        password: password.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_and_refuses_the_rest() {
        let credential = parse(b"Basic YWxpY2U6cGE6c3M=").unwrap();
        assert_eq!(
            (credential.user.as_str(), credential.password.as_str()),
            ("alice", "pa:ss")
        );
        assert!(parse(b"Bearer abc").is_none());
        assert!(parse(b"Basic !!!").is_none());
        assert!(parse(b"Basic YWxpY2U=").is_none());
    }
}
