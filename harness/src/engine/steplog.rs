//! `reports/<run-id>/steps.jsonl`: one line per planned step, executed or not, with
//! its start, duration and outcome. Sorted by `index`, its step kinds and command
//! lines are those of `egress plan --format json` for the same arguments.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::plan::PlannedStep;

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "kebab-case")]
pub enum StepOutcome {
    Ok,
    /// Trouble: the step's error.
    Error(String),
    /// Not executed, and why (its condition, an earlier failure, an interrupt).
    Skipped(String),
}

#[derive(Serialize)]
struct Line<'a> {
    index: usize,
    step: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scenario: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    argv: Option<&'a [String]>,
    started: String,
    duration_seconds: f64,
    #[serde(flatten)]
    outcome: &'a StepOutcome,
}

/// Appends step lines; writing trouble is kept, never fatal to the run.
pub struct StepLog {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    file: Option<std::fs::File>,
    problem: Option<String>,
    lines: usize,
    timing: crate::model::RunTiming,
}

/// Which part of a run's time a step is.
fn add_to(timing: &mut crate::model::RunTiming, planned: &PlannedStep, secs: f64) {
    use crate::plan::Step;
    let slot = match &planned.step {
        _ if planned.scenario.is_some() => &mut timing.scenario_seconds,
        Step::InstallIstio { .. } | Step::CheckExistingIstio { .. } => {
            &mut timing.istio_install_seconds
        }
        Step::WaitReady { namespace, .. } if namespace == crate::model::mesh::ISTIO_NAMESPACE => {
            &mut timing.istio_install_seconds
        }
        Step::CreateCluster { .. }
        | Step::LoadImages { .. }
        | Step::InstallGatewayApiCrds { .. }
        | Step::WaitReady { .. }
        | Step::StartUpstream { .. }
        | Step::ApplySecrets { .. } => &mut timing.cluster_setup_seconds,
        Step::DeleteCluster { .. } | Step::DeleteSecrets { .. } | Step::StopUpstream { .. } => {
            &mut timing.teardown_seconds
        }
        Step::CreateNamespace { .. }
        | Step::ApplyManifest { .. }
        | Step::PatchObject { .. }
        | Step::AwaitCleanConfig { .. }
        | Step::AwaitStatus { .. }
        | Step::SendRequest { .. }
        | Step::CollectEvidence { .. }
        | Step::DeleteObjects { .. }
        | Step::DeleteNamespace { .. }
        | Step::SwapGatewayApiCrds { .. }
        | Step::RestartDeployment { .. } => &mut timing.scenario_seconds,
        // Named, not `_`: a new kind of step must say which part of the time it is.
        Step::CheckDocker
        | Step::UseKind { .. }
        | Step::DownloadKind { .. }
        | Step::ResolveLatestIstio
        | Step::ReadInstalledMesh
        | Step::UseIstioctl { .. }
        | Step::DownloadIstioctl { .. }
        | Step::PullImage { .. }
        | Step::BuildImage { .. } => &mut timing.host_seconds,
    };
    *slot += secs;
}

impl StepLog {
    /// A log at `dir/steps.jsonl` (created now), or none.
    pub fn new(dir: Option<&Path>) -> Self {
        let mut state = State::default();
        let path = dir.map(|d| d.join("steps.jsonl"));
        if let Some(path) = &path {
            let opened = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                // The run's folder is its own (made atomically by the reporter), so
                // this process is the one writer; appending keeps a bisect's engines'
                // steps one after another instead of each truncating the last's.
                .and_then(|()| {
                    std::fs::OpenOptions::new()
                        .append(true)
                        .create(true)
                        .open(path)
                });
            match opened {
                Ok(f) => state.file = Some(f),
                Err(e) => state.problem = Some(format!("{}: {e}", path.display())),
            }
        }
        Self {
            path,
            state: Mutex::new(state),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn record(
        &self,
        planned: &PlannedStep,
        started: k8s_openapi::jiff::Timestamp,
        took: Duration,
        outcome: &StepOutcome,
    ) {
        let line = Line {
            index: planned.index,
            step: planned.step.kind(),
            cluster: planned.cluster.as_deref(),
            scenario: planned.scenario.as_deref(),
            argv: planned.step.argv(),
            started: started.to_string(),
            duration_seconds: took.as_secs_f64(),
            outcome,
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.lines += 1;
        add_to(&mut state.timing, planned, took.as_secs_f64());
        let Some(file) = state.file.as_mut() else {
            return;
        };
        let written = serde_json::to_string(&line)
            .map_err(std::io::Error::other)
            .and_then(|text| writeln!(file, "{text}"));
        if let Err(e) = written {
            state.problem = Some(format!("steps.jsonl: {e}"));
        }
    }

    /// The time of the steps recorded so far, by phase.
    pub fn timing(&self) -> crate::model::RunTiming {
        self.state
            .lock()
            .map(|s| s.timing.clone())
            .unwrap_or_default()
    }

    /// Lines recorded so far.
    pub fn lines(&self) -> usize {
        self.state.lock().map(|s| s.lines).unwrap_or_default()
    }

    /// A write that failed, to be reported as a run problem.
    pub fn problem(&self) -> Option<String> {
        self.state.lock().ok().and_then(|s| s.problem.clone())
    }
}
