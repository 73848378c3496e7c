//! `egress repro NAME --istio A,B` (kept clusters) or `--istio A..B` (bisect).

use std::process::ExitCode;

use crate::repro::{self, ReproRun, Versions};
use crate::run_args::RunArgs;
use crate::suite::{Suite, Workspace};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The scenario to reproduce.
    name: String,
    /// Print the plan of the run instead of running it.
    #[arg(long)]
    plan: bool,
    #[command(flatten)]
    run: RunArgs,
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let ws = Workspace::discover()?;
    let suite = Suite::load(&ws)?;
    let scenario = suite
        .select(std::slice::from_ref(&args.name))?
        .into_iter()
        .find(|s| s.name() == args.name)
        .ok_or_else(|| {
            format!(
                "`{}` is a tag, not a scenario; repro takes one scenario name",
                args.name
            )
        })?;
    let text = args
        .run
        .istio
        .clone()
        .unwrap_or_else(|| crate::versions::DEFAULT_ISTIO.into());
    let versions = Versions::parse(&text)?;
    // --istio is read above (it may be a range); the rest of the run options as usual.
    let mut rest = args.run.clone();
    rest.istio = None;
    let plan = rest.plan_options()?;
    if args.plan {
        let (istio, keep) = match &versions {
            Versions::List(list) => (list.clone(), true),
            Versions::Range(from, to) => {
                println!(
                    "# bisect {from}..{to}: the two ends first, then halves; each probe as below, its cluster removed after it"
                );
                (
                    vec![
                        crate::plan::IstioRelease::Exact(from.clone()),
                        crate::plan::IstioRelease::Exact(to.clone()),
                    ],
                    false,
                )
            }
        };
        let options = repro::plan_options(plan, istio, keep);
        print!(
            "{}",
            crate::plan::build(&[scenario], &ws, &options)?.render()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (archive, results) = repro::run(ReproRun {
        ws: &ws,
        scenario,
        versions,
        plan,
        reuse: args.run.reuse,
        verbose: args.run.verbose,
        releases: None,
    })?;
    println!("{}", archive.display());
    // Like a trial: errors, failures and unexpected passes make a non-zero exit.
    Ok(if results.cases.iter().any(|c| c.status.is_bad()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
