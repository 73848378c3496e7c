//! The options of a live run, shared by `cargo test` (the conformance runner) and
//! `egress plan`, so that the plan printed is the plan run. Each has an `EGRESS_*`
//! variable for cargo-nextest, which passes no custom flags.

use std::path::PathBuf;

use crate::live::evidence::EvidenceMode;
use crate::live::session::LiveOptions;
use crate::plan::{ClusterMode, IstioRelease, Keep, PlanOptions};
use crate::suite::Workspace;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Istio versions, comma-separated (`latest` = the newest stable release).
    #[arg(long, env = "EGRESS_ISTIO")]
    pub istio: Option<String>,
    /// A local istioctl instead of downloading one per version.
    #[arg(long, env = "EGRESS_ISTIOCTL")]
    pub istioctl: Option<PathBuf>,
    /// `kind` (clusters of the harness's own) or `existing` (the current kube context).
    #[arg(long, env = "EGRESS_CLUSTER", default_value = "kind", value_parser = ["kind", "existing"])]
    pub cluster: String,
    /// Keep the clusters after the run.
    #[arg(long, env = "EGRESS_KEEP")]
    pub keep: bool,
    /// Keep the clusters where a scenario failed.
    #[arg(long, env = "EGRESS_KEEP_ON_FAILURE", conflicts_with = "keep")]
    pub keep_on_failure: bool,
    /// Use an existing harness cluster of the same name instead of creating it.
    #[arg(long, env = "EGRESS_REUSE")]
    pub reuse: bool,
    /// Node image for every cluster, instead of the one chosen per Istio version.
    #[arg(long, env = "EGRESS_NODE_IMAGE")]
    pub node_image: Option<String>,
    /// Seconds a request may take to become consistent.
    #[arg(long, env = "EGRESS_DEADLINE", default_value_t = 60)]
    pub deadline: u64,
    /// The upstream: `local` (the harness's echo server, answering as httpbin.org) or
    /// `internet` (the real httpbin.org, as the article ran it).
    #[arg(long, env = "EGRESS_UPSTREAM", default_value = "local", value_parser = ["local", "internet"])]
    pub upstream: String,
    /// When to collect evidence: `on-failure` or `always`.
    #[arg(long, env = "EGRESS_EVIDENCE", default_value = "on-failure", value_parser = ["on-failure", "always"])]
    pub evidence: String,
}

impl RunArgs {
    pub fn plan_options(&self) -> Result<PlanOptions, String> {
        let mut options = PlanOptions::for_this_host();
        // An empty EGRESS_ISTIO (e.g. from `just e2e`) means the default version.
        if let Some(list) = self.istio.as_deref().filter(|l| !l.trim().is_empty()) {
            options.istio = IstioRelease::parse_list(list)?;
        }
        options.cluster = if self.cluster == "existing" {
            ClusterMode::Existing
        } else {
            ClusterMode::Kind
        };
        options.keep = if self.keep {
            Keep::Always
        } else if self.keep_on_failure {
            Keep::OnFailure
        } else {
            Keep::Never
        };
        options.node_image.clone_from(&self.node_image);
        options.istioctl.clone_from(&self.istioctl);
        options.deadline_secs = self.deadline;
        options.upstream = crate::upstream::UpstreamMode::parse(&self.upstream)?;
        Ok(options)
    }

    pub fn live_options(&self, ws: &Workspace) -> Result<LiveOptions, String> {
        let run_id = run_id();
        Ok(LiveOptions {
            plan: self.plan_options()?,
            reuse: self.reuse,
            evidence: EvidenceMode::parse(&self.evidence)?,
            run_dir: ws.reports_dir().join(&run_id),
            run_id,
        })
    }
}

/// `EGRESS_RUN_ID`, or the UTC time the run started (sorts by time).
pub fn run_id() -> String {
    std::env::var("EGRESS_RUN_ID")
        .ok()
        .filter(|id| {
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        .unwrap_or_else(|| {
            k8s_openapi::jiff::Timestamp::now()
                .strftime("%Y%m%dT%H%M%SZ")
                .to_string()
        })
}
