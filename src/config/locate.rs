//! Where each value of a YAML document sits, so that problems found after parsing (an unknown
//! group, a rule that grants nothing) are reported at a line and column like syntax errors.
//!
//! Paths are written the way serde_yaml_ng names them in its own errors: `acl[2].groups[0]`.
//! A mapping entry is located at its key; a sequence item at its first character.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};

/// A 1-based line and column in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// The position of every node in one YAML document, by path.
#[derive(Debug, Default)]
pub struct Positions(HashMap<String, Position>);

enum Frame {
    Mapping {
        path: String,
        key: Option<String>,
        /// Set until the first key is seen: a block mapping's own mark points past its
        /// first key, so the mapping is located at that key instead.
        unplaced: bool,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

impl Positions {
    /// Indexes `text`; text that does not parse yields no positions (the parser that read
    /// the config has already reported why).
    pub fn of(text: &str) -> Positions {
        let mut positions = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(text);
        while let Ok((event, mark)) = parser.next_token() {
            let position = Position {
                line: mark.line(),
                column: mark.col() + 1,
            };
            let starts_node = matches!(
                event,
                Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
            ) || matches!(event, Event::Alias(_));
            match event {
                Event::StreamEnd => break,
                Event::SequenceEnd | Event::MappingEnd => {
                    stack.pop();
                    continue;
                }
                _ if !starts_node => continue,
                _ => {}
            }

            let path = match stack.last_mut() {
                Some(Frame::Mapping {
                    path,
                    key,
                    unplaced,
                }) => match key.take() {
                    Some(key) => join(path, &key),
                    None => {
                        // This node is a key: record the entry at it.
                        let name = match &event {
                            Event::Scalar(value, ..) => value.clone(),
                            _ => "?".to_string(),
                        };
                        if std::mem::take(unplaced) {
                            positions.entry(path.clone()).or_insert(position);
                        }
                        positions.entry(join(path, &name)).or_insert(position);
                        *key = Some(name);
                        if !matches!(event, Event::Scalar(..) | Event::Alias(_)) {
                            // A complex key: skip its contents under a throwaway path.
                            push(&mut stack, &event, "?".to_string());
                        }
                        continue;
                    }
                },
                Some(Frame::Sequence { path, next }) => {
                    let item = format!("{path}[{next}]");
                    *next += 1;
                    let block_mapping = matches!(event, Event::MappingStart(..))
                        && !text
                            .get(mark.index()..)
                            .is_some_and(|rest| rest.starts_with('{'));
                    if !block_mapping {
                        positions.entry(item.clone()).or_insert(position);
                    }
                    item
                }
                None => String::new(),
            };
            push(&mut stack, &event, path);
        }
        Positions(positions)
    }

    /// The position of the first of `paths` that exists.
    pub fn find<'a>(&self, paths: impl IntoIterator<Item = &'a str>) -> Option<Position> {
        paths.into_iter().find_map(|path| self.0.get(path).copied())
    }
}

fn push(stack: &mut Vec<Frame>, event: &Event, path: String) {
    match event {
        Event::SequenceStart(..) => stack.push(Frame::Sequence { path, next: 0 }),
        Event::MappingStart(..) => stack.push(Frame::Mapping {
            path,
            key: None,
            unplaced: true,
        }),
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_items_in_block_and_flow_style() {
        let text = "listen: x\nacl:\n  - users: [a, b]\n    repos: [r]\n  \
                    - {groups: [devs], repos: [\"t/**\"]}\n";
        let positions = Positions::of(text);
        let at = |path: &str| positions.find([path]).map(|p| (p.line, p.column));
        assert_eq!(at("listen"), Some((1, 1)));
        assert_eq!(at("acl"), Some((2, 1)));
        assert_eq!(at("acl[0]"), Some((3, 5)));
        assert_eq!(at("acl[0].users[1]"), Some((3, 16)));
        assert_eq!(at("acl[0].repos"), Some((4, 5)));
        assert_eq!(at("acl[1]"), Some((5, 5)));
        assert_eq!(at("acl[1].groups[0]"), Some((5, 15)));
        assert_eq!(at("acl[2]"), None);
    }
}
