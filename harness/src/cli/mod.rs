//! The `egress` command line.

mod explain;
mod list;
mod plan;
mod prune;
mod releases;
mod report;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "egress",
    version,
    about = "Istio egress conformance: list, validate, plan and explain scenarios; merge reports; prune clusters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List scenarios with their tags, Istio versions and install profiles.
    List(list::Args),
    /// Check scenario files strictly: YAML, keys, manifests, hosts and ports.
    Validate(validate::Args),
    /// Print the steps a live run would take, each external command with its argv.
    Plan(plan::Args),
    /// Read access-log lines or an echoed-headers body pasted from a bug report.
    Explain(explain::Args),
    /// Remove the kind clusters the harness left behind (egc-*).
    Prune(prune::Args),
    /// The Istio versions a nightly covers: the newest patch of the last minors.
    Releases(releases::Args),
    /// Combine reports: `egress report merge reports/a reports/b --out reports/nightly`.
    Report(report::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List(args) => list::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Prune(args) => prune::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Releases(args) => releases::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
