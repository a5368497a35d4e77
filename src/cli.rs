//! The `berth` command line: subcommands and what each does with its arguments.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

/// One binary that is both a private container registry and its authenticating HTTPS gateway.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the registry over HTTPS, as configured in proxy.yaml.
    Serve {
        /// The configuration file [default: proxy.yaml, or the built-in sample when the
        /// working directory has none]
        #[arg(long, short)]
        config: Option<PathBuf>,
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

/// Runs the command; the error is what `main` prints before exiting non-zero.
pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { config } => {
            let use_embedded_default = config.is_none();
            let path = config.unwrap_or_else(|| PathBuf::from("proxy.yaml"));
            crate::app::serve(&path, use_embedded_default).map_err(|error| error.to_string())
        }
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

fn hash_password() -> Result<(), String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
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
