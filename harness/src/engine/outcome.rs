//! What the engine hands to the report: plain data about each scenario run.

use std::path::PathBuf;
use std::time::Duration;

use super::converge::Converged;
use super::evidence::Bundle;
use crate::judge::{self, Verdict};
use crate::model::Environment;
use crate::model::RunMode;
use crate::recording::Observation;

/// A step and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub step: String,
    pub elapsed: Duration,
}

/// One request's result.
#[derive(Debug, Clone)]
pub struct RequestRun {
    pub name: String,
    /// The verdicts of the last judged attempt.
    pub verdicts: Vec<Verdict>,
    pub converged: Converged<Observation>,
    /// The verdicts of the first failure after a pass (see `Converged::relapses`).
    pub first_relapse: Vec<Verdict>,
}

impl RequestRun {
    pub fn passed(&self) -> bool {
        self.converged.consistent()
    }

    /// Every attempt was inconclusive: nothing was judged, which is trouble with the
    /// cluster or the harness, not a verdict on Istio.
    pub fn never_judged(&self) -> bool {
        self.converged.attempts.len() == self.converged.inconclusive()
    }
}

/// The Gateway API objects' status, judged before any request.
#[derive(Debug, Clone)]
pub struct StatusRun {
    pub verdicts: Vec<Verdict>,
    /// How long the status took to hold, or the whole wait when it never did.
    pub elapsed: Duration,
    /// Polls of the status made.
    pub reads: u32,
    /// `Kind/name` → the object as last read (`None`: it did not exist).
    pub objects: std::collections::BTreeMap<String, Option<serde_json::Value>>,
}

impl StatusRun {
    pub fn passed(&self) -> bool {
        judge::passed(&self.verdicts)
    }
}

/// Why a scenario did not get a verdict: the step that failed and what it said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {index} ({kind}{}): {message}", cluster.as_ref().map(|c| format!(" on {c}")).unwrap_or_default())]
pub struct StepError {
    pub index: usize,
    pub kind: String,
    pub cluster: Option<String>,
    pub message: String,
}

/// What running a scenario on a mesh gave.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    pub scenario: String,
    pub istio: String,
    pub mode: RunMode,
    pub requests: Vec<RequestRun>,
    /// The scenario's `status:`, judged before its requests (Gateway API only).
    pub status: Option<StatusRun>,
    /// Trouble with the cluster or the harness (an error, not a failure of Istio).
    pub error: Option<StepError>,
    /// Trouble while cleaning up (reported, and the cluster is not trusted further).
    pub cleanup_error: Option<StepError>,
    pub timings: Vec<Timing>,
    pub evidence: Option<Bundle>,
    pub recording: Option<PathBuf>,
    pub environment: Environment,
    /// Whether the client pod has a sidecar; `None` if the run stopped before knowing.
    pub sidecar: Option<bool>,
    /// The run was interrupted (SIGINT/SIGTERM) before the scenario finished.
    pub interrupted: bool,
    /// Not run, and why (the plan skipped it: e.g. the existing mesh is not its
    /// install profile).
    pub skipped: Option<String>,
}

impl ScenarioRun {
    /// A run that never reached its scenario steps.
    pub fn not_run(
        scenario: &str,
        istio: &str,
        mode: RunMode,
        environment: Environment,
        error: StepError,
    ) -> Self {
        Self {
            scenario: scenario.to_owned(),
            istio: istio.to_owned(),
            mode,
            requests: Vec::new(),
            status: None,
            error: Some(error),
            cleanup_error: None,
            timings: Vec::new(),
            evidence: None,
            recording: None,
            environment,
            sidecar: None,
            interrupted: false,
            skipped: None,
        }
    }

    /// A scenario the plan left out, with the plan's reason.
    pub fn skipped(scenario: &str, istio: &str, mode: RunMode, reason: &str) -> Self {
        let mut run = Self::not_run(
            scenario,
            istio,
            mode,
            Environment::default(),
            StepError {
                index: 0,
                kind: "plan".into(),
                cluster: None,
                message: reason.to_owned(),
            },
        );
        run.error = None;
        run.skipped = Some(reason.to_owned());
        run
    }

    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self.status.as_ref().is_none_or(StatusRun::passed)
            && self.requests.iter().all(RequestRun::passed)
    }

    /// One paragraph for a status that never held, then one per request that did not
    /// become consistent, with its verdicts.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(status) = self.status.as_ref().filter(|s| !s.passed()) {
            let mut text = format!(
                "status: did not hold after {} read(s) in {:.1}s",
                status.reads,
                status.elapsed.as_secs_f64()
            );
            for v in status
                .verdicts
                .iter()
                .filter(|v| v.outcome != judge::Outcome::Pass)
            {
                text.push_str(&format!("\n  {v}"));
            }
            out.push(text);
        }
        for r in self.requests.iter().filter(|r| !r.passed()) {
            let c = &r.converged;
            let mut text = format!(
                "{}: not consistent after {} attempt(s) in {:.1}s ({} inconclusive)",
                r.name,
                c.attempts.len(),
                c.elapsed.as_secs_f64(),
                c.inconclusive()
            );
            for v in r
                .verdicts
                .iter()
                .filter(|v| v.outcome != judge::Outcome::Pass)
            {
                text.push_str(&format!("\n  {v}"));
            }
            if r.verdicts.is_empty() {
                text.push_str("\n  no attempt could be judged");
            }
            out.push(text);
        }
        out
    }
}
