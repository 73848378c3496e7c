//! `egress prune`: removes every kind cluster the harness left behind (names starting
//! with `egc-`) and its upstream containers (label egress-conformance=upstream), e.g.
//! after `--keep` or a killed run. Other clusters and containers are not touched.

use std::process::ExitCode;

use crate::live::prune as session;
use crate::plan::PlanOptions;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: &Args) -> Result<ExitCode, String> {
    let options = PlanOptions::for_this_host();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    if crate::prereq::check_docker(&crate::prereq::DockerEndpoint::from_env()).is_ok() {
        for id in runtime.block_on(session::prune_upstreams())? {
            println!("removed upstream container {id}");
        }
    }
    let Some(kind) = session::kind_for_prune(&options) else {
        println!(
            "kind is neither on PATH nor in {}: the harness cannot have created clusters here",
            options.cache_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let removed = runtime.block_on(session::prune(&kind, &options.cache_dir))?;
    if removed.is_empty() {
        println!("no harness clusters (egc-*) found");
    }
    for name in removed {
        println!("removed {name}");
    }
    Ok(ExitCode::SUCCESS)
}
