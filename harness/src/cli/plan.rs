//! `egress plan`

use std::path::PathBuf;
use std::process::ExitCode;

use crate::plan::{self, ClusterMode, IstioRelease, Keep, PlanOptions};
use crate::suite::{Suite, Workspace};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only these names or tags (comma-separated).
    #[arg(long = "scenario", value_delimiter = ',', env = "EGRESS_SCENARIO")]
    scenarios: Vec<String>,
    /// Istio versions, comma-separated (`latest` allowed).
    #[arg(long, env = "EGRESS_ISTIO")]
    istio: Option<String>,
    /// `kind` (clusters of the harness's own) or `existing` (the current kube context).
    #[arg(long, default_value = "kind", value_parser = ["kind", "existing"])]
    cluster: String,
    /// Keep the clusters after the run.
    #[arg(long)]
    keep: bool,
    /// Keep the clusters when a scenario failed.
    #[arg(long, conflicts_with = "keep")]
    keep_on_failure: bool,
    /// Node image for every cluster, instead of the one chosen per Istio version.
    #[arg(long)]
    node_image: Option<String>,
    /// A local istioctl instead of downloading one per version.
    #[arg(long)]
    istioctl: Option<PathBuf>,
    /// Seconds a request may take to become consistent.
    #[arg(long, default_value_t = 60)]
    deadline: u64,
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let ws = Workspace::discover()?;
    let suite = Suite::load(&ws)?;
    let selected = suite.select(&args.scenarios)?;
    let mut options = PlanOptions::for_this_host();
    if let Some(list) = &args.istio {
        options.istio = IstioRelease::parse_list(list)?;
    }
    options.cluster = if args.cluster == "existing" {
        ClusterMode::Existing
    } else {
        ClusterMode::Kind
    };
    options.keep = if args.keep {
        Keep::Always
    } else if args.keep_on_failure {
        Keep::OnFailure
    } else {
        Keep::Never
    };
    options.node_image.clone_from(&args.node_image);
    options.istioctl.clone_from(&args.istioctl);
    options.deadline_secs = args.deadline;
    let plan = plan::build(&selected, &ws, &options)?;
    print!("{}", plan.render());
    Ok(ExitCode::SUCCESS)
}
