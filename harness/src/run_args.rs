//! The options of a live run, shared by `cargo test` (the conformance runner) and
//! `egress plan`, so that the plan printed is the plan run. Each has an `EGRESS_*`
//! variable for cargo-nextest, which passes no custom flags.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;

use crate::engine::{EngineOptions, EvidenceMode};
use crate::model::{ClusterMode, Keep, RunMode, UpstreamMode};
use crate::plan::{IstioRelease, PlanOptions};
use crate::suite::Workspace;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Istio versions, comma-separated (`latest` = the newest stable release). With
    /// `--cluster existing` the default is `installed`: the release istiod runs.
    #[arg(long, env = "EGRESS_ISTIO")]
    pub istio: Option<String>,
    /// A local istioctl instead of downloading one per version.
    #[arg(long, env = "EGRESS_ISTIOCTL")]
    pub istioctl: Option<PathBuf>,
    /// `kind` (clusters of the harness's own), `existing` (the current kube context),
    /// or `simulated` (the project's own tests: the real engine, no cluster).
    #[arg(long, env = "EGRESS_CLUSTER", default_value = "kind", value_parser = ["kind", "existing", "simulated"])]
    pub cluster: String,
    /// Keep the clusters after the run.
    #[arg(long, env = "EGRESS_KEEP", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    pub keep: bool,
    /// Keep the clusters where a scenario failed.
    #[arg(long, env = "EGRESS_KEEP_ON_FAILURE", conflicts_with = "keep", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    pub keep_on_failure: bool,
    /// Use an existing harness cluster of the same name instead of creating it.
    #[arg(long, env = "EGRESS_REUSE", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    pub reuse: bool,
    /// Clusters set up or alive at once (each is deleted after its last scenario).
    #[arg(long, env = "EGRESS_PARALLEL_CLUSTERS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel_clusters: u16,
    /// Scenarios run at once on one cluster, where their claims do not meet: hosts,
    /// ports taken by address, gateway ports and TCP lines, mesh-wide objects, CRD
    /// swaps (`egress plan` shows the groups)
    #[arg(long, env = "EGRESS_PARALLEL_SCENARIOS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel_scenarios: u16,
    /// One cluster per install profile, each installed mesh-wide as the article does
    /// (default: one cluster per Istio version, profiles set up per namespace).
    #[arg(long, env = "EGRESS_MESH_WIDE_PROFILES", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    pub mesh_wide_profiles: bool,
    /// Node image for every cluster, instead of the one chosen per Istio version.
    #[arg(long, env = "EGRESS_NODE_IMAGE")]
    pub node_image: Option<String>,
    /// Seconds a request may take to become consistent.
    #[arg(long, env = "EGRESS_DEADLINE", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub deadline: u64,
    /// The upstream: `local` (the harness's echo server, answering as httpbin.org) or
    /// `internet` (the real httpbin.org, as the article ran it).
    #[arg(long, env = "EGRESS_UPSTREAM", default_value = "local", value_parser = ["local", "internet"])]
    pub upstream: String,
    /// Another image for the local upstream (a mirror of echo-basic), `name:tag` or
    /// `name@sha256:…`.
    #[arg(long, env = "EGRESS_UPSTREAM_IMAGE", value_parser = pinned_image)]
    pub upstream_image: Option<String>,
    /// When to collect evidence: `on-failure` or `always`.
    #[arg(long, env = "EGRESS_EVIDENCE", default_value = "on-failure", value_parser = ["on-failure", "always"])]
    pub evidence: String,
    /// Run only shard K of N (`2/4`): scenarios sorted by name, every Nth from the Kth.
    #[arg(long, env = "EGRESS_SHARD", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Print every command the run starts, in full, as it starts it (also those no
    /// plan step shows: kind's cluster list and kubeconfig export, image checks, each
    /// attempt's curl in the client pod)
    #[arg(short = 'v', long, env = "EGRESS_VERBOSE", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    pub verbose: bool,
    /// An earlier run's results.json: the summary lists the verdicts that changed.
    #[arg(long, env = "EGRESS_BASELINE")]
    pub baseline: Option<PathBuf>,
}

/// `--upstream-image`: a tag or a digest is required, so the run says what it ran
/// (without one it would silently be the pinned image).
fn pinned_image(text: &str) -> Result<String, String> {
    let name_part = text.rsplit('/').next().unwrap_or(text);
    let digest = text.split_once("@sha256:").is_some_and(|(name, d)| {
        !name.is_empty() && d.len() == 64 && d.chars().all(|c| c.is_ascii_hexdigit())
    });
    let tagged = name_part
        .split_once(':')
        .is_some_and(|(name, tag)| !name.is_empty() && !tag.is_empty());
    if digest || (tagged && !text.contains('@')) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}`: give a tag (`name:tag`) or a digest (`name@sha256:<64 hex>`)"
        ))
    }
}

/// `--shard K/N`: the Kth of N disjoint, deterministic parts of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("--shard {text}: expected K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }

    /// This shard's part of `names`: sorted by name, every `count`th from the `index`th.
    pub fn take<'a, T>(&self, items: Vec<&'a T>, name: impl Fn(&T) -> &str) -> Vec<&'a T> {
        let mut sorted = items;
        sorted.sort_by(|a, b| name(a).cmp(name(b)));
        sorted
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index - 1)
            .map(|(_, item)| item)
            .collect()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl RunArgs {
    pub fn plan_options(&self) -> Result<PlanOptions, String> {
        let mut options = PlanOptions::for_this_host();
        options.cluster = ClusterMode::parse(&self.cluster)?;
        if options.cluster == ClusterMode::Existing {
            // Judged against what the cluster runs, read before planning.
            options.istio = vec![IstioRelease::Installed];
        }
        // An empty EGRESS_ISTIO (e.g. from `just e2e`) means the default version.
        if let Some(list) = self.istio.as_deref().filter(|l| !l.trim().is_empty()) {
            options.istio = IstioRelease::parse_list(list)?;
        }
        if options.cluster == ClusterMode::Simulated {
            // A simulated run leaves the user's cache alone.
            options.cache_dir = std::env::temp_dir().join("egress-conformance-simulated");
        }
        options.keep = if self.keep {
            Keep::Always
        } else if self.keep_on_failure {
            Keep::OnFailure
        } else {
            Keep::Never
        };
        options.node_image.clone_from(&self.node_image);
        options.mesh_wide_profiles = self.mesh_wide_profiles;
        options.istioctl.clone_from(&self.istioctl);
        options.timeouts.request = std::time::Duration::from_secs(self.deadline);
        options.upstream = UpstreamMode::parse(&self.upstream)?;
        options.upstream_image.clone_from(&self.upstream_image);
        options.parallel_clusters = usize::from(self.parallel_clusters);
        options.parallel_scenarios = usize::from(self.parallel_scenarios);
        options.run_id = explicit_run_id()?;
        Ok(options)
    }

    /// The options of a run whose report goes to `reports/<run_id>`.
    pub fn engine_options(&self, ws: &Workspace, run_id: &str) -> Result<EngineOptions, String> {
        let mut plan = self.plan_options()?;
        plan.run_id = Some(run_id.to_owned());
        plan.reports_dir = ws.reports_dir();
        Ok(EngineOptions {
            mode: if plan.cluster == ClusterMode::Simulated {
                RunMode::Simulated
            } else {
                RunMode::Live
            },
            plan,
            reuse: self.reuse,
            evidence: EvidenceMode::parse(&self.evidence)?,
            verbose: self.verbose,
        })
    }
}

/// `EGRESS_RUN_ID` if set (a folder name: letters, digits, `-_.`), else `None`.
pub fn explicit_run_id() -> Result<Option<String>, String> {
    match std::env::var("EGRESS_RUN_ID") {
        Ok(id) if id.is_empty() => Ok(None),
        Ok(id) if crate::model::valid_run_id(&id) => Ok(Some(id)),
        Ok(id) => Err(format!(
            "EGRESS_RUN_ID={id:?}: use letters, digits, `-`, `_` and `.` only, at most {} of them, not starting with `.` (it names a folder under reports/)",
            crate::model::RUN_ID_MAX
        )),
        Err(_) => Ok(None),
    }
}

pub use crate::model::run_id;

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn an_upstream_image_names_its_tag_or_digest() {
        for ok in [
            "registry.k8s.io/gateway-api/conformance/echo-basic:v0.1.0",
            "localhost:5000/echo:1",
            &format!("mirror.example/echo@sha256:{}", "a".repeat(64)),
        ] {
            assert_eq!(super::pinned_image(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "mirror.example/echo",
            "localhost:5000/echo",
            "echo:",
            "echo@sha256:abc",
            "",
        ] {
            assert!(super::pinned_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_split_the_suite_disjointly_and_completely() {
        let names = ["e", "a", "d", "c", "b"];
        let mut seen = Vec::new();
        for k in 1..=2 {
            let shard = Shard::parse(&format!("{k}/2")).expect("shard");
            let part = shard.take(names.iter().collect(), |n| n);
            seen.extend(part.iter().map(|n| **n));
            assert_eq!(
                part,
                shard.take(names.iter().rev().collect(), |n| n),
                "input order does not matter"
            );
        }
        seen.sort();
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);
        assert_eq!(
            Shard::parse("1/2")
                .expect("shard")
                .take(names.iter().collect(), |n| n),
            vec![&"a", &"c", &"e"]
        );
        for bad in ["0/2", "3/2", "2", "a/b", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }
}
