//! The live engine: kind clusters, istioctl, and the kube API, driven by the plan.
//!
//! - `command`: the one runner for external programs (timeouts, process groups).
//! - `download`: kind and istioctl release assets, checksums, the cache.
//! - `cluster`: kind clusters and images.
//! - `k8s`: apply, wait, exec, logs and config dumps through kube.
//! - `converge`: judging a request until it is consistently right.
//! - `config_dump`: what a scenario leaves in the proxies.
//! - `scenario_run`: one scenario on one mesh.
//! - `evidence`: what is kept when a scenario fails.
//! - `session`: clusters shared by the trials of one process.

pub mod cluster;
pub mod command;
pub mod config_dump;
pub mod converge;
pub mod download;
pub mod evidence;
pub mod k8s;
pub mod scenario_run;
pub mod session;

use crate::scenario::{KnownIssueMode, Scenario};
use scenario_run::ScenarioRun;

/// The verdict of a live run as the runner reports it, known issues applied: `Ok`
/// with a summary when the trial passes, `Err` with the reasons when it fails.
pub fn verdict(scenario: &Scenario, run: &ScenarioRun) -> Result<String, String> {
    let mut where_ = Vec::new();
    if let Some(bundle) = &run.evidence {
        where_.push(format!("evidence: {}", bundle.dir.display()));
    }
    if let Some(recording) = &run.recording {
        where_.push(format!("recording: {}", recording.display()));
    }
    let where_ = if where_.is_empty() {
        String::new()
    } else {
        format!("\n{}", where_.join("\n"))
    };
    if let Some(error) = &run.error {
        return Err(format!("error (not a verdict on Istio): {error}{where_}"));
    }
    let known = semver::Version::parse(&run.istio)
        .ok()
        .and_then(|v| scenario.known_issue_for(&v).cloned())
        .filter(|k| k.mode != KnownIssueMode::Skip);
    let timing: Vec<String> = run
        .requests
        .iter()
        .map(|r| match r.converged.consistent_after {
            Some(after) => format!(
                "{} consistent after {:.1}s ({} attempts)",
                r.name,
                after.as_secs_f64(),
                r.converged.attempts.len()
            ),
            None => format!("{} not consistent", r.name),
        })
        .collect();
    let cleanup = run
        .cleanup_error
        .as_ref()
        .map(|e| format!("\ncleanup: {e}"))
        .unwrap_or_default();
    match (run.passed(), known) {
        (true, None) if run.cleanup_error.is_none() => {
            Ok(format!("{} on Istio {}", timing.join("; "), run.istio))
        }
        (true, None) => Err(format!(
            "passed, but the cluster could not be cleaned for the next scenario{cleanup}{where_}"
        )),
        (false, None) => Err(format!("{}{cleanup}{where_}", run.failures().join("\n"))),
        (false, Some(k)) => Ok(format!(
            "fails as known ({}): {}",
            k.url.value,
            run.failures().join("; ")
        )),
        (true, Some(k)) => Err(format!(
            "unexpectedly passing: the known issue {} may be fixed on Istio {}{where_}",
            k.url.value, run.istio
        )),
    }
}
