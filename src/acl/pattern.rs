//! Repository patterns in ACL rules. A pattern is `/`-separated like a repository name; each
//! segment is literal text with `*` (any run of characters within the segment) and `?` (one
//! character), or `**` alone (any number of segments, including none). `${user}` stands for
//! the caller's user name and matches it literally; an anonymous caller never matches it.

use std::fmt;

use serde::Deserialize;

/// A parsed repository pattern.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RepositoryPattern {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    AnyDepth,
    Parts(Vec<Part>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(char),
    Star,
    Question,
    User,
}

/// Why a pattern was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid repository pattern {pattern:?}: {problem}")]
pub struct PatternError {
    pattern: String,
    problem: &'static str,
}

impl TryFrom<String> for RepositoryPattern {
    type Error = PatternError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let fail = |problem| PatternError {
            pattern: text.clone(),
            problem,
        };
        if text.is_empty() {
            return Err(fail("a pattern cannot be empty"));
        }
        let mut segments = Vec::new();
        for raw in text.split('/') {
            if raw == "**" {
                segments.push(Segment::AnyDepth);
                continue;
            }
            if raw.is_empty() {
                return Err(fail("empty segment (a leading, trailing or double '/')"));
            }
            segments.push(Segment::Parts(parse_segment(raw).map_err(fail)?));
        }
        Ok(RepositoryPattern { text, segments })
    }
}

fn parse_segment(raw: &str) -> Result<Vec<Part>, &'static str> {
    let mut parts = Vec::new();
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("${user}") {
            parts.push(Part::User);
            rest = after;
            continue;
        }
        match c {
            '*' if rest.starts_with("**") => return Err("'**' must be a whole segment"),
            '*' => parts.push(Part::Star),
            '?' => parts.push(Part::Question),
            'a'..='z' | '0'..='9' | '.' | '_' | '-' => parts.push(Part::Literal(c)),
            '$' => return Err("the only placeholder is ${user}"),
            _ => return Err("repository names hold only a-z, 0-9, '.', '_', '-' and '/'"),
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(parts)
}

impl RepositoryPattern {
    /// Whether `repository` matches, with `${user}` standing for `user`.
    pub fn matches(&self, repository: &str, user: Option<&str>) -> bool {
        let names: Vec<&str> = repository.split('/').collect();
        match_segments(&self.segments, &names, user)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for RepositoryPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn match_segments(pattern: &[Segment], names: &[&str], user: Option<&str>) -> bool {
    match pattern.split_first() {
        None => names.is_empty(),
        Some((Segment::AnyDepth, rest)) => {
            (0..=names.len()).any(|skip| match_segments(rest, &names[skip..], user))
        }
        Some((Segment::Parts(parts), rest)) => match names.split_first() {
            Some((name, names_rest)) => {
                let chars: Vec<char> = name.chars().collect();
                match_parts(parts, &chars, user) && match_segments(rest, names_rest, user)
            }
            None => false,
        },
    }
}

fn match_parts(parts: &[Part], name: &[char], user: Option<&str>) -> bool {
    match parts.split_first() {
        None => name.is_empty(),
        Some((Part::Literal(c), rest)) => {
            name.first() == Some(c) && match_parts(rest, &name[1..], user)
        }
        Some((Part::Question, rest)) => !name.is_empty() && match_parts(rest, &name[1..], user),
        Some((Part::Star, rest)) => {
            (0..=name.len()).any(|skip| match_parts(rest, &name[skip..], user))
        }
        Some((Part::User, rest)) => {
            let Some(user) = user else { return false };
            let user_chars: Vec<char> = user.chars().collect();
            name.starts_with(&user_chars)
                && match_parts(rest, &name[user_chars.len()..], Some(user))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> RepositoryPattern {
        RepositoryPattern::try_from(text.to_string()).unwrap()
    }

    #[test]
    fn matching_table() {
        let rows: &[(&str, &str, Option<&str>, bool)] = &[
            ("team/*", "team/app", None, true),
            ("team/*", "team/app/sub", None, false),
            ("team/*", "team", None, false),
            ("team/**", "team/app/sub", None, true),
            ("team/**", "team", None, true),
            ("team/**", "teams/app", None, false),
            ("**", "anything/at/all", None, true),
            ("app-?", "app-1", None, true),
            ("app-*-dev", "app-x-dev", None, true),
            ("${user}/**", "alice/tools", Some("alice"), true),
            ("${user}/**", "alice/tools", Some("bob"), false),
            ("${user}/**", "alice/tools", None, false),
            ("home-${user}", "home-bob", Some("bob"), true),
            ("*", "a/b", None, false),
        ];
        for (text, repository, user, expected) in rows {
            assert_eq!(
                pattern(text).matches(repository, *user),
                *expected,
                "{text} {repository}"
            );
        }
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in [
            "",
            "team/",
            "/team",
            "a//b",
            "Team/*",
            "a/**b",
            "${group}/x",
            "a b",
        ] {
            assert!(
                RepositoryPattern::try_from(bad.to_string()).is_err(),
                "{bad}"
            );
        }
    }
}
