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
    /// `text` (one line per step) or `json` (the typed steps, as steps.jsonl names them).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let ws = Workspace::discover()?;
    let suite = Suite::load(&ws)?;
    let mut selected = suite.select(&args.scenarios)?;
    if let Some(shard) = args.run.shard {
        selected = shard.take(selected, crate::scenario::Scenario::name);
    }
    let mut options = args.run.plan_options()?;
    options.reports_dir = ws.reports_dir();
    let plan = plan::build(&selected, &ws, &options)?;
    if args.format == "json" {
        let text = serde_json::to_string_pretty(&plan.to_json())
            .map_err(|e| format!("the plan as JSON: {e}"))?;
        println!("{text}");
    } else {
        print!("{}", plan.render());
    }
    Ok(ExitCode::SUCCESS)
}
