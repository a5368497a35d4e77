//! The `berth` command line: subcommands and what each does with its arguments.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::acl::{Action, Decision, Policy};
use crate::auth::{AuthMethod, Identity};
use crate::config::Config;

/// One binary that is both a private container registry and its authenticating HTTPS gateway.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the registry over HTTPS, as configured in proxy.yaml.
    Serve {
        /// The configuration file [default: proxy.yaml, or the built-in sample when the
        /// working directory has none]
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file exactly as a live reload would, without serving.
    /// Prints OK, or every problem as FILE:LINE:COLUMN: message, and then exits non-zero.
    Check {
        /// The configuration file.
        #[arg(default_value = "proxy.yaml")]
        file: PathBuf,
    },
    /// Access rules: see how they decide.
    Acl {
        #[command(subcommand)]
        command: AclCommand,
    },
    /// Read a password from standard input and print its argon2id hash for proxy.yaml.
    HashPassword,
    /// Development certificates signed by the dev CA that `serve` creates.
    #[command(subcommand)]
    Certs(CertsCommand),
}

/// `berth certs ...`
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Issue a client certificate and key for NAME (its CN), signed by the development CA
    /// beside `tls.cert` (`ca.crt`, `ca.key`), for mutual TLS in tests and first steps.
    Client {
        /// The user name the certificate proves (its common name).
        name: String,
        /// The configuration file that locates the CA [default: proxy.yaml, or the
        /// built-in sample when the working directory has none]
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Groups, written as OU values (for `groups_from: ou`); repeat for several.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// Where NAME.crt and NAME.key are written [default: the CA's directory].
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `berth acl ...`
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Print whether a caller may do something to a repository, and the rule that decides.
    Explain(ExplainArgs),
}

/// Who asks for what, for `berth acl explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The signed-in user asking; their groups come from the configuration.
    #[arg(
        long,
        required_unless_present = "anonymous",
        conflicts_with = "anonymous"
    )]
    pub user: Option<String>,
    /// Ask as a caller that sent no credentials.
    #[arg(long)]
    pub anonymous: bool,
    /// A further group the user is in (repeatable), as a directory would report it.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// The repository, as in `team/app`; a name the registry would refuse is refused here.
    #[arg(long, value_parser = parse_repository)]
    pub repo: String,
    /// pull, push or delete.
    #[arg(long, value_parser = parse_action)]
    pub action: Action,
    /// Also say whether pushing over or deleting this tag is refused by `immutable_tags`.
    #[arg(long)]
    pub tag: Option<String>,
    /// The configuration file.
    #[arg(long, short, default_value = "proxy.yaml")]
    pub config: PathBuf,
}

/// Runs the command; the error is what `main` prints before exiting non-zero.
///
/// # Errors
/// The message to print: a config that does not load, a server that cannot start.
pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { config } => {
            let use_embedded_default = config.is_none();
            let path = config.unwrap_or_else(|| PathBuf::from("proxy.yaml"));
            crate::app::serve(&path, use_embedded_default).map_err(|error| error.to_string())
        }
        Command::Check { file } => check(&file),
        Command::Acl {
            command: AclCommand::Explain(args),
        } => explain(&args),
        Command::HashPassword => hash_password(),
        Command::Certs(CertsCommand::Client {
            name,
            config,
            groups,
            days,
            out,
        }) => client_certificate(&name, config, &groups, days, out),
    }
}

fn check(file: &std::path::Path) -> Result<(), String> {
    let config = match crate::live::check(file) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return Err(format!(
                "{} has problems: a reload would keep the running configuration",
                file.display()
            ));
        }
    };
    println!(
        "{}: OK ({} users, {} groups, {} acl rules, {} public patterns, {} immutable_tags rules)",
        file.display(),
        config.users.len(),
        config.groups.len(),
        config.acl.len(),
        config.public.len(),
        config.immutable_tags.len()
    );
    Ok(())
}

fn client_certificate(
    name: &str,
    config: Option<PathBuf>,
    groups: &[String],
    days: u32,
    out: Option<PathBuf>,
) -> Result<(), String> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._@-".contains(c);
    if name.is_empty() || name.starts_with('.') || !name.chars().all(safe) {
        return Err(format!(
            "{name:?} is not a usable name (letters, digits, . _ @ -)"
        ));
    }
    let use_embedded_default = config.is_none();
    let path = config.unwrap_or_else(|| PathBuf::from("proxy.yaml"));
    let config = if use_embedded_default && !path.exists() {
        crate::config::Config::parse(&path, crate::config::EMBEDDED_DEFAULT)
    } else {
        crate::config::Config::load(&path)
    }
    .map_err(|error| error.to_string())?;

    let ca_dir = config
        .tls
        .cert
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let out = out.unwrap_or_else(|| ca_dir.clone());
    let files = crate::tls::issue_client_certificate(&ca_dir, name, groups, days, &out)
        .map_err(|error| format!("{error} (run `berth serve` once to create the dev CA)"))?;
    println!(
        "Wrote {cert} and {key}.\n\
         Trust the CA for clients in proxy.yaml:  tls.client_auth.ca: [{ca}]\n\
         For docker: copy them to /etc/docker/certs.d/HOST:PORT/client.cert and client.key",
        cert = files.cert.display(),
        key = files.key.display(),
        ca = ca_dir.join("ca.crt").display(),
    );
    Ok(())
}

fn explain(args: &ExplainArgs) -> Result<(), String> {
    let config = Config::load(&args.config).map_err(|error| error.to_string())?;
    let policy = Policy::new(
        config.acl.clone(),
        config.public.clone(),
        config.immutable_tags.clone(),
    );
    let identity = identity_for(args, &config);
    print!("{}", explanation(args, &config, &policy, &identity));
    Ok(())
}

/// The caller `args` describes: the user's groups from the config, plus `--group`.
fn identity_for(args: &ExplainArgs, config: &Config) -> Identity {
    let Some(user) = &args.user else {
        return Identity::anonymous();
    };
    let mut groups: Vec<String> = config
        .groups
        .iter()
        .filter(|(_, members)| members.contains(user))
        .map(|(group, _)| group.clone())
        .collect();
    for group in &args.groups {
        if !groups.contains(group) {
            groups.push(group.clone());
        }
    }
    Identity {
        user: Some(user.clone()),
        groups,
        method: AuthMethod::Basic,
        granted: None,
    }
}

/// The text `acl explain` prints.
fn explanation(
    args: &ExplainArgs,
    config: &Config,
    policy: &Policy,
    identity: &Identity,
) -> String {
    let who = match &identity.user {
        Some(user) if identity.groups.is_empty() => format!("user {user} (no groups)"),
        Some(user) => format!("user {user} (groups: {})", identity.groups.join(", ")),
        None => "an anonymous caller".to_string(),
    };
    let mut out = String::new();
    if let Some(user) = &identity.user {
        if !config.users.contains_key(user) {
            out.push_str(&format!(
                "note: {user} is not under users: in this file, so cannot sign in with a \
                 password\n"
            ));
        }
    }

    let decision = policy.evaluate(identity, &args.repo, args.action);
    let verdict = match decision {
        Decision::Allow(_) => "ALLOW",
        Decision::Deny(_) => "DENY",
    };
    out.push_str(&format!(
        "{verdict}: {who} {} {} {}\n",
        if decision.is_allowed() {
            "may"
        } else {
            "may not"
        },
        args.action,
        args.repo
    ));
    match policy.text_of(decision.basis()) {
        Some(text) => out.push_str(&format!("  by {}: {text}\n", decision.basis())),
        None => out.push_str("  no rule matched: what no rule allows is refused\n"),
    }

    if let Some(tag) = &args.tag {
        match policy.protected_tag(&args.repo, tag) {
            Some(basis) => out.push_str(&format!(
                "  tag {tag} is immutable: once pushed it cannot be moved or deleted\n  \
                 by {basis}: {}\n",
                policy.text_of(basis).unwrap_or_default()
            )),
            None => out.push_str(&format!("  tag {tag} is not protected by immutable_tags\n")),
        }
    }
    out
}

fn parse_repository(text: &str) -> Result<String, String> {
    crate::registry::RepositoryName::parse(text)
        .map(|name| name.to_string())
        .map_err(|_| {
            format!(
                "{text:?} is not a repository name the registry accepts: lowercase \
                 letters, digits and . _ - between slashes, as in team/app"
            )
        })
}

fn parse_action(text: &str) -> Result<Action, String> {
    match text {
        "pull" => Ok(Action::Pull),
        "push" => Ok(Action::Push),
        "delete" => Ok(Action::Delete),
        _ => Err(format!(
            "{text:?} is not an action: use pull, push or delete"
        )),
    }
}

fn hash_password() -> Result<(), String> {
    use std::io::IsTerminal;

    // At a terminal, ask without echoing; from a pipe, read one line.
    let line = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ")
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    }
    .map_err(|error| format!("cannot read the password from standard input: {error}"))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err("refusing to hash an empty password".to_string());
    }
    let hash =
        crate::auth::password::hash(password).map_err(|error| format!("argon2 failed: {error}"))?;
    println!("{hash}");
    Ok(())
}
