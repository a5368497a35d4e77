//! Access control: ordered rules from proxy.yaml saying who may pull, push or delete in which
//! repositories, the `public` shorthand for anonymous pulls, and the tags that may not be
//! overwritten or deleted. [`Policy::evaluate`] is the single place a decision is made, and
//! every decision names what made it ([`Basis`]), for `berth acl explain` and the audit log.
//!
//! Semantics, in the order an admin reads them:
//! - Rules are tried top to bottom; a rule *matches* when its subjects include the caller and
//!   its patterns cover the repository.
//! - A matching rule that lists the action under `deny` refuses it. One that lists it under
//!   `actions` allows it. One that has `actions` but not this one refuses it: an allow rule
//!   is final for its subjects and repositories. A rule with only `deny` says nothing about
//!   the actions it does not list, so evaluation goes on to the next rule.
//! - When no rule decides, a pull from a repository matching `public` is allowed, for
//!   anonymous and signed-in callers alike. Anything else is refused.
//! - Subjects: `users` (names, or `"*"` for any signed-in user), `groups` (a user may be in
//!   several), and `anonymous: true` for callers without credentials. Anonymous callers
//!   match only rules that say `anonymous: true`.
//! - `immutable_tags` is checked by the gateway apart from the rules: a tag it covers can be
//!   pushed once, then never moved to another manifest or deleted, whoever asks.

pub mod pattern;

use std::fmt;

use serde::Deserialize;

use crate::auth::Identity;
pub use pattern::{RepositoryPattern, Subject, TagPattern};

/// What a caller wants to do to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    /// The action's name in proxy.yaml, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One access rule as written in proxy.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// User names this rule is about; `"*"` is every signed-in user. Default: none.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups this rule is about. Default: none.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Whether the rule is about callers who sent no credentials. Default: false.
    #[serde(default)]
    pub anonymous: bool,
    /// Repository patterns (`team/*`, `team/**`, `${user}/**`, `${group}/**`).
    pub repos: Vec<RepositoryPattern>,
    /// What the rule allows; when not empty, every other action is refused to its subjects
    /// in its repositories. Default: none.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// What the rule refuses outright. Default: none.
    #[serde(default)]
    pub deny: Vec<Action>,
}

impl Rule {
    fn is_about(&self, identity: &Identity) -> bool {
        match &identity.user {
            None => self.anonymous,
            Some(user) => {
                self.users.iter().any(|name| name == "*" || name == user)
                    || self
                        .groups
                        .iter()
                        .any(|group| identity.groups.contains(group))
            }
        }
    }

    fn covers(&self, identity: &Identity, repository: &str) -> bool {
        let subject = subject_of(identity);
        self.repos
            .iter()
            .any(|pattern| pattern.matches(repository, subject))
    }

    /// What this rule says about `action` once it matches; `None` lets later rules decide.
    fn verdict(&self, action: Action) -> Option<bool> {
        if self.deny.contains(&action) {
            return Some(false);
        }
        if self.actions.contains(&action) {
            return Some(true);
        }
        (!self.actions.is_empty()).then_some(false)
    }
}

/// The rule as a one-line YAML flow mapping, the way `acl explain` and the audit log show it.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fields = Vec::new();
        if !self.users.is_empty() {
            fields.push(format!("users: {}", flow_list(&self.users)));
        }
        if !self.groups.is_empty() {
            fields.push(format!("groups: {}", flow_list(&self.groups)));
        }
        if self.anonymous {
            fields.push("anonymous: true".to_string());
        }
        fields.push(format!("repos: {}", flow_list(&self.repos)));
        if !self.actions.is_empty() {
            fields.push(format!("actions: {}", flow_list(&self.actions)));
        }
        if !self.deny.is_empty() {
            fields.push(format!("deny: {}", flow_list(&self.deny)));
        }
        write!(f, "{{{}}}", fields.join(", "))
    }
}

/// Tags that, once pushed, may not be moved to another manifest or deleted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagRule {
    /// Repositories the rule protects tags in.
    pub repos: Vec<RepositoryPattern>,
    /// Tag patterns (`v*`, `release-*`).
    pub tags: Vec<TagPattern>,
}

impl TagRule {
    fn protects(&self, repository: &str, tag: &str) -> bool {
        let in_repository = self
            .repos
            .iter()
            .any(|pattern| pattern.matches(repository, Subject::default()));
        in_repository && self.tags.iter().any(|pattern| pattern.matches(tag))
    }
}

impl fmt::Display for TagRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (repos, tags) = (flow_list(&self.repos), flow_list(&self.tags));
        write!(f, "{{repos: {repos}, tags: {tags}}}")
    }
}

/// The outcome of an access check, with what made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow(Basis),
    Deny(Basis),
}

/// What a decision rests on. Positions count from 1, as an admin counts rules in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The `acl` rule at this position.
    Rule(usize),
    /// The `public` pattern at this position.
    Public(usize),
    /// The `immutable_tags` rule at this position.
    ImmutableTag(usize),
    /// Nothing matched, so the default (refuse) applied.
    NoRule,
}

impl Decision {
    /// Whether the action may go ahead.
    pub fn is_allowed(self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// What made the decision.
    pub fn basis(self) -> Basis {
        match self {
            Decision::Allow(basis) | Decision::Deny(basis) => basis,
        }
    }

    /// `allow` or `deny`, for logs, metrics and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow(_) => "allow",
            Decision::Deny(_) => "deny",
        }
    }
}

/// Names the basis the way proxy.yaml's reader would look for it.
impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Basis::Rule(position) => write!(f, "acl rule {position}"),
            Basis::Public(position) => write!(f, "public pattern {position}"),
            Basis::ImmutableTag(position) => write!(f, "immutable_tags rule {position}"),
            Basis::NoRule => f.write_str("no rule matched"),
        }
    }
}

/// Everything that decides access: the ordered rules, public repositories, protected tags.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
    public: Vec<RepositoryPattern>,
    immutable_tags: Vec<TagRule>,
}

impl Policy {
    /// A policy from the config's `acl`, `public` and `immutable_tags`.
    pub fn new(
        rules: Vec<Rule>,
        public: Vec<RepositoryPattern>,
        immutable_tags: Vec<TagRule>,
    ) -> Self {
        Policy {
            rules,
            public,
            immutable_tags,
        }
    }

    /// Decides whether `identity` may perform `action` on `repository`.
    pub fn evaluate(&self, identity: &Identity, repository: &str, action: Action) -> Decision {
        let matching = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.is_about(identity) && rule.covers(identity, repository));
        for (index, rule) in matching {
            match rule.verdict(action) {
                Some(true) => return Decision::Allow(Basis::Rule(index + 1)),
                Some(false) => return Decision::Deny(Basis::Rule(index + 1)),
                None => {}
            }
        }

        if action == Action::Pull {
            let public = self
                .public
                .iter()
                .position(|pattern| pattern.matches(repository, Subject::default()));
            if let Some(index) = public {
                return Decision::Allow(Basis::Public(index + 1));
            }
        }
        Decision::Deny(Basis::NoRule)
    }

    /// The `immutable_tags` rule protecting `tag` in `repository`, if any.
    pub fn protected_tag(&self, repository: &str, tag: &str) -> Option<Basis> {
        self.immutable_tags
            .iter()
            .position(|rule| rule.protects(repository, tag))
            .map(|index| Basis::ImmutableTag(index + 1))
    }

    /// The text of what `basis` points at, as a one-line YAML value; `None` for
    /// [`Basis::NoRule`].
    pub fn text_of(&self, basis: Basis) -> Option<String> {
        match basis {
            Basis::Rule(position) => self.rules.get(position - 1).map(Rule::to_string),
            Basis::Public(position) => self
                .public
                .get(position - 1)
                .map(|pattern| yaml_scalar(pattern.as_str())),
            Basis::ImmutableTag(position) => self
                .immutable_tags
                .get(position - 1)
                .map(TagRule::to_string),
            Basis::NoRule => None,
        }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// The placeholders' values for `identity`.
fn subject_of(identity: &Identity) -> Subject<'_> {
    Subject {
        user: identity.user.as_deref(),
        groups: &identity.groups,
    }
}

/// `[a, "b/**"]`: a YAML flow sequence, quoting only what YAML would misread.
fn flow_list<T: fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|item| yaml_scalar(&item.to_string()))
        .collect();
    format!("[{}]", items.join(", "))
}

fn yaml_scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if plain {
        text.to_string()
    } else {
        format!("{text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;

    const POLICY: &str = r#"
acl:
  - {users: [bob], repos: ["team/**"], actions: [pull]}
  - {groups: [devs], repos: ["team/**"], actions: [pull, push]}
  - {users: [mallory], repos: ["**"], deny: [push, delete]}
  - {users: ["*"], repos: ["${user}/**"], actions: [pull, push, delete]}
  - {groups: [qa, ops], repos: ["${group}/**"], actions: [pull, push]}
  - {anonymous: true, repos: ["public/*"], actions: [pull]}
  - {users: ["*"], repos: ["frozen/**"], deny: [delete]}
public: ["open/**", "frozen/**"]
immutable_tags:
  - {repos: ["**"], tags: ["v*"]}
  - {repos: ["release/**"], tags: ["*"]}
"#;

    #[derive(Deserialize)]
    struct Sections {
        acl: Vec<Rule>,
        public: Vec<RepositoryPattern>,
        immutable_tags: Vec<TagRule>,
    }

    fn policy() -> Policy {
        let sections: Sections = serde_yaml_ng::from_str(POLICY).unwrap();
        Policy::new(sections.acl, sections.public, sections.immutable_tags)
    }

    fn user(name: &str, groups: &[&str]) -> Identity {
        Identity {
            user: Some(name.into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            method: AuthMethod::Basic,
            granted: None,
        }
    }

    #[test]
    fn decisions_table() {
        use Action::{Delete, Pull, Push};
        use Basis::{NoRule, Public, Rule};
        use Decision::{Allow, Deny};
        let anonymous = Identity::anonymous();
        let alice = user("alice", &["devs"]);
        let bob = user("bob", &["devs"]);
        let carol = user("carol", &[]);
        let mallory = user("mallory", &[]);
        let dana = user("dana", &["qa", "ops"]);
        let rows: &[(&Identity, &str, Action, Decision)] = &[
            (&alice, "team/app", Push, Allow(Rule(2))),
            (&alice, "team/a/b/c", Pull, Allow(Rule(2))),
            (&alice, "team/app", Delete, Deny(Rule(2))),
            // bob is in devs too, but his own rule comes first and grants pull only.
            (&bob, "team/app", Push, Deny(Rule(1))),
            (&bob, "team/app", Pull, Allow(Rule(1))),
            (&carol, "carol/tools", Delete, Allow(Rule(4))),
            (&carol, "carol", Push, Allow(Rule(4))),
            (&carol, "alice/tools", Pull, Deny(NoRule)),
            (&carol, "team/app", Pull, Deny(NoRule)),
            // A deny-only rule refuses what it lists and lets later rules decide the rest.
            (&mallory, "mallory/x", Push, Deny(Rule(3))),
            (&mallory, "mallory/x", Delete, Deny(Rule(3))),
            (&mallory, "mallory/x", Pull, Allow(Rule(4))),
            // ${group} stands for each of the caller's groups.
            (&dana, "qa/suite", Push, Allow(Rule(5))),
            (&dana, "ops/deploy", Pull, Allow(Rule(5))),
            (&dana, "devs/app", Pull, Deny(NoRule)),
            (&alice, "devs/app", Pull, Deny(NoRule)),
            (&anonymous, "public/base", Pull, Allow(Rule(6))),
            (&anonymous, "public/base/deeper", Pull, Deny(NoRule)),
            (&anonymous, "public/base", Push, Deny(Rule(6))),
            (&carol, "public/base", Pull, Deny(NoRule)),
            // `public` allows pulls by anyone once no rule decided.
            (&anonymous, "open/thing", Pull, Allow(Public(1))),
            (&carol, "open/thing", Pull, Allow(Public(1))),
            (&anonymous, "open/thing", Push, Deny(NoRule)),
            (&carol, "frozen/old", Pull, Allow(Public(2))),
            (&carol, "frozen/old", Delete, Deny(Rule(7))),
            (&anonymous, "carol", Pull, Deny(NoRule)),
        ];
        let policy = policy();
        for (identity, repository, action, expected) in rows {
            let decision = policy.evaluate(identity, repository, *action);
            assert_eq!(decision, *expected, "{identity:?} {repository} {action}");
        }
    }

    #[test]
    fn protected_tags_table() {
        let rows: &[(&str, &str, Option<Basis>)] = &[
            ("team/app", "v1.0", Some(Basis::ImmutableTag(1))),
            ("team/app", "latest", None),
            ("release/app", "latest", Some(Basis::ImmutableTag(2))),
            ("release/app", "v2", Some(Basis::ImmutableTag(1))),
        ];
        let policy = policy();
        for (repository, tag, expected) in rows {
            assert_eq!(
                policy.protected_tag(repository, tag),
                *expected,
                "{repository}:{tag}"
            );
        }
    }

    #[test]
    fn rules_print_as_one_line_yaml() {
        let policy = policy();
        let rows: &[(Basis, Option<&str>)] = &[
            (
                Basis::Rule(2),
                Some(r#"{groups: [devs], repos: ["team/**"], actions: [pull, push]}"#),
            ),
            (
                Basis::Rule(3),
                Some(r#"{users: [mallory], repos: ["**"], deny: [push, delete]}"#),
            ),
            (
                Basis::Rule(6),
                Some(r#"{anonymous: true, repos: ["public/*"], actions: [pull]}"#),
            ),
            (Basis::Public(1), Some(r#""open/**""#)),
            (
                Basis::ImmutableTag(1),
                Some(r#"{repos: ["**"], tags: ["v*"]}"#),
            ),
            (Basis::NoRule, None),
        ];
        for (basis, text) in rows {
            assert_eq!(policy.text_of(*basis).as_deref(), *text, "{basis}");
        }
        // What is printed reads back as the same rule.
        let printed = policy.text_of(Basis::Rule(4)).unwrap();
        let reread: Rule = serde_yaml_ng::from_str(&printed).unwrap();
        assert_eq!(reread.to_string(), printed);
    }
}
