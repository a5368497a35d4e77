//! The `berth` command line: subcommands and what each does with its arguments.

use std::io::BufRead;
use std::path::PathBuf;

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
    }
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
