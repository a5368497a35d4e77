//! `berth`: parse the command line, run it, turn the result into an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    berth::telemetry::init();
    let cli = berth::cli::Cli::parse();
    match berth::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("berth: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
