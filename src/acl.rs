//! Access control: ordered rules from proxy.yaml saying who may pull, push or delete in which
//! repositories. [`Policy::evaluate`] is the single place a decision is made.
//!
//! Semantics, in the order an admin reads them:
//! - Rules are tried top to bottom. The first rule whose subjects include the caller and
//!   whose patterns include the repository decides: allow when it lists the action, deny
//!   when it does not. Later rules are not consulted.
//! - No matching rule means deny.
//! - Subjects: `users` (names, or `"*"` for any signed-in user), `groups`, and
//!   `anonymous: true` for callers without credentials. Anonymous callers match only rules
//!   that say `anonymous: true`.

pub mod pattern;

use std::fmt;

use serde::Deserialize;

use crate::auth::Identity;
pub use pattern::RepositoryPattern;

/// What a caller wants to do to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
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
    /// Repository patterns (`team/*`, `team/**`, `${user}/**`).
    pub repos: Vec<RepositoryPattern>,
    /// What the rule allows; anything else in its repositories is denied to its subjects.
    pub actions: Vec<Action>,
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
        let user = identity.user.as_deref();
        self.repos
            .iter()
            .any(|pattern| pattern.matches(repository, user))
    }
}

/// The outcome of an access check, with the rule behind it (its position, from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow { rule: usize },
    Deny { rule: Option<usize> },
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// The ordered rule list.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    pub fn new(rules: Vec<Rule>) -> Self {
        Policy { rules }
    }

    /// Decides whether `identity` may perform `action` on `repository`.
    pub fn evaluate(&self, identity: &Identity, repository: &str, action: Action) -> Decision {
        let first_match = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, rule)| rule.is_about(identity) && rule.covers(identity, repository));
        match first_match {
            Some((index, rule)) if rule.actions.contains(&action) => {
                Decision::Allow { rule: index + 1 }
            }
            Some((index, _)) => Decision::Deny {
                rule: Some(index + 1),
            },
            None => Decision::Deny { rule: None },
        }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;

    fn policy() -> Policy {
        let yaml = r#"
- {users: [bob], repos: ["team/**"], actions: [pull]}
- {groups: [devs], repos: ["team/**"], actions: [pull, push]}
- {users: ["*"], repos: ["${user}/**"], actions: [pull, push, delete]}
- {anonymous: true, repos: ["public/*"], actions: [pull]}
"#;
        Policy::new(serde_yaml_ng::from_str(yaml).unwrap())
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
        let anonymous = Identity::anonymous();
        let rows: &[(&Identity, &str, Action, bool)] = &[
            (&user("alice", &["devs"]), "team/app", Action::Push, true),
            (&user("alice", &["devs"]), "team/a/b/c", Action::Pull, true),
            (&user("alice", &["devs"]), "team/app", Action::Delete, false),
            // bob is in devs too, but his own rule comes first and grants pull only.
            (&user("bob", &["devs"]), "team/app", Action::Push, false),
            (&user("bob", &["devs"]), "team/app", Action::Pull, true),
            (&user("carol", &[]), "carol/tools", Action::Delete, true),
            (&user("carol", &[]), "carol", Action::Push, true),
            (&user("carol", &[]), "alice/tools", Action::Pull, false),
            (&user("carol", &[]), "team/app", Action::Pull, false),
            (&anonymous, "public/base", Action::Pull, true),
            (&anonymous, "public/base/deeper", Action::Pull, false),
            (&anonymous, "public/base", Action::Push, false),
            (&user("carol", &[]), "public/base", Action::Pull, false),
        ];
        let policy = policy();
        for (identity, repository, action, allowed) in rows {
            let decision = policy.evaluate(identity, repository, *action);
            assert_eq!(
                decision.is_allowed(),
                *allowed,
                "{identity:?} {repository} {action}"
            );
        }
    }

    #[test]
    fn decisions_name_their_rule() {
        let policy = policy();
        let bob = user("bob", &[]);
        assert_eq!(
            policy.evaluate(&bob, "team/x", Action::Pull),
            Decision::Allow { rule: 1 }
        );
        assert_eq!(
            policy.evaluate(&bob, "team/x", Action::Push),
            Decision::Deny { rule: Some(1) }
        );
        assert_eq!(
            policy.evaluate(&bob, "other", Action::Pull),
            Decision::Deny { rule: None }
        );
    }
}
