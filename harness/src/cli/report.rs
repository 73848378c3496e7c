//! `egress report merge`: one report from the results of several runs.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::report::{merge, results::Results, write};
use crate::suite::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Combine shards and per-version runs (report folders or their results.json).
    Merge {
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Where the merged report goes (default: reports/merged-<time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// An earlier results.json: the summary lists the verdicts that changed.
        #[arg(long, env = "EGRESS_BASELINE")]
        baseline: Option<PathBuf>,
    },
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    match &args.command {
        Command::Merge {
            inputs,
            out,
            baseline,
        } => {
            let inputs = inputs
                .iter()
                .map(|p| merge::read_input(p))
                .collect::<Result<Vec<_>, _>>()?;
            let out = match out {
                Some(out) => out.clone(),
                None => Workspace::discover()?
                    .reports_dir()
                    .join(format!("merged-{}", crate::run_args::run_id())),
            };
            let baseline = baseline.as_deref().map(Results::read).transpose()?;
            let merged = merge::merge(&inputs, &out)?;
            let page = write::write(&out, &merged, baseline.as_ref())?;
            println!("{}", page.display());
            for problem in &merged.problems {
                eprintln!("egress: {problem}");
            }
            eprintln!(
                "egress: {} case(s) from {} run(s): {}",
                merged.cases.len(),
                merged.merged_from.len(),
                crate::report::markdown::totals(&merged)
            );
            // The runs' own exit codes carry their verdicts; merging succeeded.
            Ok(ExitCode::SUCCESS)
        }
    }
}
