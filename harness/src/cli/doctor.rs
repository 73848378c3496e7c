//! `egress doctor`: everything a live run needs from this host, checked at once.

use std::process::ExitCode;

use crate::doctor::{self, Verdict};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Clusters the run will keep alive at once (memory and inotify depend on it).
    #[arg(long, default_value_t = 2)]
    clusters: usize,
    /// Skip the reachability of GitHub, Docker Hub and registry.k8s.io.
    #[arg(long)]
    offline: bool,
    /// The run's `--cluster`: `existing` makes no kind cluster here.
    #[arg(long, default_value = "kind", value_parser = ["kind", "existing"])]
    cluster: String,
    /// The run's `--upstream`: `internet` starts no container here.
    #[arg(long, default_value = "local", value_parser = ["local", "internet"])]
    upstream: String,
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let needs = doctor::Needs::of(
        crate::model::ClusterMode::parse(&args.cluster)?,
        crate::model::UpstreamMode::parse(&args.upstream)?,
        args.clusters,
        !args.offline,
    );
    let checks = doctor::checks_for(&doctor::RealHost, needs);
    for c in &checks {
        println!("{c}");
    }
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    if failed > 0 {
        println!("\n{failed} check(s) failed: a live run cannot work here until they are fixed.");
        return Ok(ExitCode::from(1));
    }
    println!("\nready for a live run (warnings, if any, say what may hurt).");
    Ok(ExitCode::SUCCESS)
}
