//! Patterns in ACL rules. A repository pattern is `/`-separated like a repository name;
//! each segment is literal text with `*` (any run of characters within the segment) and `?`
//! (one character), or `**` alone (any number of segments, including none). `${user}` stands
//! for the caller's user name and `${group}` for any one of the caller's groups; both match
//! literally, and an anonymous caller (no name, no groups) never matches either.
//!
//! A [`TagPattern`] is the same idea for one tag: `*` and `?` over the tag's characters.

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
    Group,
}

/// Who a pattern's placeholders stand for: the caller's user name and groups.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// The user name; `None` for an anonymous caller.
    pub user: Option<&'a str>,
    /// The caller's groups.
    pub groups: &'a [String],
}

/// Why a pattern was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid {kind} pattern {pattern:?}: {problem}")]
pub struct PatternError {
    /// `repository` or `tag`.
    kind: &'static str,
    pattern: String,
    problem: &'static str,
}

impl TryFrom<String> for RepositoryPattern {
    type Error = PatternError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let segments = checked(&text, "repository", parse_segments)?;
        Ok(RepositoryPattern { text, segments })
    }
}

/// Parses `text` with `parse`, refusing the empty pattern; errors name the pattern's kind.
fn checked<T>(
    text: &str,
    kind: &'static str,
    parse: fn(&str) -> Result<T, &'static str>,
) -> Result<T, PatternError> {
    let parsed = if text.is_empty() {
        Err("a pattern cannot be empty")
    } else {
        parse(text)
    };
    parsed.map_err(|problem| PatternError {
        kind,
        pattern: text.to_string(),
        problem,
    })
}

fn parse_segments(text: &str) -> Result<Vec<Segment>, &'static str> {
    let mut segments = Vec::new();
    for raw in text.split('/') {
        if raw == "**" {
            segments.push(Segment::AnyDepth);
            continue;
        }
        if raw.is_empty() {
            return Err("empty segment (a leading, trailing or double '/')");
        }
        segments.push(Segment::Parts(parse_segment(raw)?));
    }
    Ok(segments)
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
        if let Some(after) = rest.strip_prefix("${group}") {
            parts.push(Part::Group);
            rest = after;
            continue;
        }
        match c {
            '*' if rest.starts_with("**") => return Err("'**' must be a whole segment"),
            '*' => parts.push(Part::Star),
            '?' => parts.push(Part::Question),
            'a'..='z' | '0'..='9' | '.' | '_' | '-' => parts.push(Part::Literal(c)),
            '$' => return Err("the only placeholders are ${user} and ${group}"),
            _ => return Err("repository names hold only a-z, 0-9, '.', '_', '-' and '/'"),
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(parts)
}

impl RepositoryPattern {
    /// Whether `repository` matches, with the placeholders standing for `subject`.
    pub fn matches(&self, repository: &str, subject: Subject<'_>) -> bool {
        let names: Vec<&str> = repository.split('/').collect();
        match_segments(&self.segments, &names, subject)
    }

    /// The pattern as written in proxy.yaml.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for RepositoryPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn match_segments(pattern: &[Segment], names: &[&str], subject: Subject<'_>) -> bool {
    match pattern.split_first() {
        None => names.is_empty(),
        Some((Segment::AnyDepth, rest)) => {
            (0..=names.len()).any(|skip| match_segments(rest, &names[skip..], subject))
        }
        Some((Segment::Parts(parts), rest)) => match names.split_first() {
            Some((name, names_rest)) => {
                let chars: Vec<char> = name.chars().collect();
                match_parts(parts, &chars, subject) && match_segments(rest, names_rest, subject)
            }
            None => false,
        },
    }
}

fn match_parts(parts: &[Part], name: &[char], subject: Subject<'_>) -> bool {
    match parts.split_first() {
        None => name.is_empty(),
        Some((Part::Literal(c), rest)) => {
            name.first() == Some(c) && match_parts(rest, &name[1..], subject)
        }
        Some((Part::Question, rest)) => !name.is_empty() && match_parts(rest, &name[1..], subject),
        Some((Part::Star, rest)) => {
            (0..=name.len()).any(|skip| match_parts(rest, &name[skip..], subject))
        }
        Some((Part::User, rest)) => subject
            .user
            .is_some_and(|user| match_literal(user, rest, name, subject)),
        Some((Part::Group, rest)) => {
            subject.user.is_some()
                && subject
                    .groups
                    .iter()
                    .any(|group| match_literal(group, rest, name, subject))
        }
    }
}

/// Whether `name` starts with `text` and the rest of it matches `rest`.
fn match_literal(text: &str, rest: &[Part], name: &[char], subject: Subject<'_>) -> bool {
    let chars: Vec<char> = text.chars().collect();
    name.starts_with(&chars) && match_parts(rest, &name[chars.len()..], subject)
}

/// A tag pattern from an `immutable_tags` rule: `*` is any run of characters, `?` one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TagPattern {
    text: String,
    parts: Vec<Part>,
}

impl TryFrom<String> for TagPattern {
    type Error = PatternError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let parts = checked(&text, "tag", parse_tag)?;
        Ok(TagPattern { text, parts })
    }
}

fn parse_tag(text: &str) -> Result<Vec<Part>, &'static str> {
    text.chars()
        .map(|c| match c {
            '*' => Ok(Part::Star),
            '?' => Ok(Part::Question),
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') => Ok(Part::Literal(c)),
            _ => Err("tags hold only A-Z, a-z, 0-9, '.', '_' and '-'"),
        })
        .collect()
}

impl TagPattern {
    /// Whether `tag` matches.
    pub fn matches(&self, tag: &str) -> bool {
        let chars: Vec<char> = tag.chars().collect();
        match_parts(&self.parts, &chars, Subject::default())
    }

    /// The pattern as written in proxy.yaml.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
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
        let devs = ["devs".to_string(), "ops".to_string()];
        let alice = Some("alice");
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
            ("${group}/**", "devs/app", alice, true),
            ("${group}/**", "ops/app", alice, true),
            ("${group}/**", "qa/app", alice, false),
            ("${group}/**", "devs/app", None, false),
            ("teams/${group}-*", "teams/ops-tools", alice, true),
        ];
        for (text, repository, user, expected) in rows {
            let groups: &[String] = if user.is_some() { &devs } else { &[] };
            let subject = Subject {
                user: *user,
                groups,
            };
            assert_eq!(
                pattern(text).matches(repository, subject),
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
            "${team}/x",
            "a b",
        ] {
            assert!(
                RepositoryPattern::try_from(bad.to_string()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn tag_patterns() {
        let rows: &[(&str, &str, bool)] = &[
            ("v*", "v1.2.3", true),
            ("v*", "latest", false),
            ("release-?", "release-1", true),
            ("release-?", "release-12", false),
            ("Stable", "Stable", true),
        ];
        for (text, tag, expected) in rows {
            let pattern = TagPattern::try_from(text.to_string()).unwrap();
            assert_eq!(pattern.matches(tag), *expected, "{text} {tag}");
        }
        for bad in ["", "v/1", "a b", "${user}"] {
            assert!(TagPattern::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }
}
