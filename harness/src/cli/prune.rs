//! `egress prune`: removes the kind clusters and upstream containers that runs of
//! this harness made and left behind (after `--keep` or a killed run), and only
//! those: a cluster needs the owner file its run wrote, a container the harness's
//! label, and neither goes while the process that made it still runs.

use std::process::ExitCode;

use crate::live::prune::{self as session, Verdict};
use crate::plan::PlanOptions;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Say what would be removed and what is kept, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn say(what: &str, name: &str, verdict: &Verdict, dry_run: bool) {
    match verdict {
        Verdict::Remove if dry_run => println!("would remove {what} {name}"),
        Verdict::Remove => println!("removed {what} {name}"),
        Verdict::Keep(why) => println!("kept {what} {name}: {why}"),
    }
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let options = PlanOptions::for_this_host();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let mut exit = ExitCode::SUCCESS;
    match crate::prereq::check_docker(&crate::prereq::DockerEndpoint::from_env()) {
        Ok(_) => {
            for (name, verdict) in runtime.block_on(session::prune_upstreams(args.dry_run))? {
                say("upstream container", &name, &verdict, args.dry_run);
            }
        }
        Err(missing) => {
            // Nothing can be said about containers or kind clusters without Docker.
            eprintln!(
                "egress: Docker does not answer, so nothing was pruned: {}",
                crate::prereq::describe(&[missing])
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    for (path, verdict) in session::prune_key_dirs(args.dry_run) {
        say("key folder", &path, &verdict, args.dry_run);
    }
    let Some(kind) = session::kind_for_prune(&options) else {
        println!(
            "kind is neither on PATH nor in {}: the harness cannot have created clusters here",
            options.cache_dir.display()
        );
        return Ok(exit);
    };
    let clusters = match runtime.block_on(session::prune(&kind, &options.cache_dir, args.dry_run)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("egress: {e}");
            exit = ExitCode::FAILURE;
            Vec::new()
        }
    };
    if clusters.is_empty() {
        println!("no harness clusters (egc-*) found");
    }
    for (name, verdict) in &clusters {
        say("cluster", name, verdict, args.dry_run);
    }
    Ok(exit)
}
