//! The `egress` command line.

mod doctor;
mod explain;
mod list;
mod new_scenario;
mod plan;
mod prune;
mod releases;
mod report;
mod repro;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "egress",
    version,
    about = "Istio egress conformance: list, validate, plan and explain scenarios; reproduce bugs; merge reports; prune clusters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the suite live, as `cargo test -- …` does: `egress run --scenario mtls --istio
    /// 1.22.1,latest`; every flag of `cargo test -- --help` (see `egress run --help`).
    #[command(disable_help_flag = true)]
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check everything a live run needs from this host, each with its fix.
    Doctor(doctor::Args),
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
    /// Scaffold a scenario from a bug report's YAML.
    NewScenario(new_scenario::Args),
    /// Run one scenario on versions (`A,B`: clusters kept) or bisect a range (`A..B`).
    Repro(repro::Args),
    /// The Istio versions a nightly covers: the newest patch of the last minors.
    Releases(releases::Args),
    /// Combine reports: `egress report merge reports/a reports/b --out reports/nightly`.
    Report(report::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { args } => return crate::conformance::egress_run(args),
        Command::Doctor(args) => doctor::run(&args),
        Command::List(args) => list::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Prune(args) => prune::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Releases(args) => releases::run(&args),
        Command::NewScenario(args) => new_scenario::run(&args),
        Command::Repro(args) => repro::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            // Some messages (suite selection) carry their own `error:` for the runner.
            // Messages quote files and logs: shown, never obeyed by the terminal.
            eprintln!(
                "error: {}",
                crate::model::terminal_safe(message.strip_prefix("error: ").unwrap_or(&message))
            );
            ExitCode::from(2)
        }
    }
}
