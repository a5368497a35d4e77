//! The UI's stylesheet and script, embedded in the binary and served under names that carry
//! a hash of their content, so browsers may cache them for a year: a new build has new names.

use sha2::{Digest as _, Sha256};

const STYLE: &str = include_str!("static/berth.css");
const SCRIPT: &str = include_str!("static/berth.js");

/// One embedded file and the fingerprinted path it is served at.
pub struct Asset {
    /// `/ui/static/<stem>.<hash>.<extension>`
    pub path: String,
    /// The `Content-Type` it is sent with.
    pub content_type: &'static str,
    /// The file's content.
    pub body: &'static str,
}

/// Every embedded asset.
pub struct Assets {
    /// The stylesheet.
    pub style: Asset,
    /// The progressive-enhancement script.
    pub script: Asset,
}

impl Default for Assets {
    fn default() -> Self {
        Assets {
            style: Asset::new("berth", "css", "text/css; charset=utf-8", STYLE),
            script: Asset::new("berth", "js", "text/javascript; charset=utf-8", SCRIPT),
        }
    }
}

impl Assets {
    /// The asset served at `path`, if any.
    pub fn find(&self, path: &str) -> Option<&Asset> {
        [&self.style, &self.script]
            .into_iter()
            .find(|asset| asset.path == path)
    }
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, body: &'static str) -> Self {
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        Asset {
            path: format!("/ui/static/{stem}.{}.{extension}", &hash[..12]),
            content_type,
            body,
        }
    }
}
