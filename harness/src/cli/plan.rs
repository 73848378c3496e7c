//! `egress plan`

use std::process::ExitCode;

use crate::plan;
use crate::run_args::RunArgs;
use crate::suite::{Suite, Workspace};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only these names or tags (comma-separated).
    #[arg(long = "scenario", value_delimiter = ',', env = "EGRESS_SCENARIO")]
    scenarios: Vec<String>,
    #[command(flatten)]
    run: RunArgs,
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let ws = Workspace::discover()?;
    let suite = Suite::load(&ws)?;
    let mut selected = suite.select(&args.scenarios)?;
    if let Some(shard) = args.run.shard {
        selected = shard.take(selected, crate::scenario::Scenario::name);
    }
    let options = args.run.plan_options()?;
    let plan = plan::build(&selected, &ws, &options)?;
    print!("{}", plan.render());
    Ok(ExitCode::SUCCESS)
}
