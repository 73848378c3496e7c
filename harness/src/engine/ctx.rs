//! What every step of a run shares — its options, workspace, cancellation, step log
//! and certificates — and the bookkeeping each step gets (print, time, record,
//! skip). The engine and a scenario's execution both take it, so neither reaches
//! into the other.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::EngineOptions;
use super::outcome::StepError;
use super::steplog::{StepLog, StepOutcome};
use super::wait::{retry, secs};
use crate::model::{Backoff, RunMode};
use crate::plan::PlannedStep;
use crate::plan::Workload;
use crate::seams::{InfraError, KubeApi, Seams};
use crate::suite::Workspace;
use crate::upstream::Certs;

/// A cluster ready for scenarios.
#[derive(Clone)]
pub(crate) struct Mesh {
    pub kube: Arc<dyn KubeApi>,
    pub istio: semver::Version,
    pub install: String,
    pub cluster: Option<String>,
    pub node_image: Option<String>,
    pub kubernetes: Option<String>,
    pub export_logs: Option<Vec<String>>,
}

/// How often a step that is still running says so (kind create, istioctl install
/// and image pulls take minutes).
const HEARTBEAT: Duration = Duration::from_secs(20);

/// `work`, calling `beat` with the time waited so far every `every` until it ends.
async fn with_heartbeat<T>(
    work: impl std::future::Future<Output = T>,
    every: Duration,
    beat: impl Fn(Duration),
) -> T {
    let clock = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval_at(clock + every, every);
    // A runtime blocked for a while (kube running a credential plugin) beats once
    // when it wakes, not once per missed tick.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = ticker.tick() => beat(clock.elapsed()),
        }
    }
}

/// The heartbeat of a step still running.
fn still_running(step: &PlannedStep, waited: Duration) -> String {
    format!(
        "… still on step {} ({}{}): {}s so far",
        step.index,
        step.step.kind(),
        step.cluster
            .as_deref()
            .map_or_else(String::new, |c| format!(" on {c}")),
        waited.as_secs()
    )
}

/// The line a finished step ends with: a failure always, a success when it took a
/// second or more (the many quick steps are the log's, not the terminal's).
fn finished(step: &PlannedStep, elapsed: Duration, ok: bool) -> Option<String> {
    if ok && elapsed < Duration::from_secs(1) {
        return None;
    }
    Some(format!(
        "{} step {} ({}) after {:.1}s",
        if ok { "done:" } else { "FAILED:" },
        step.index,
        step.step.kind(),
        elapsed.as_secs_f64()
    ))
}

/// What `-v` prints for a command: its argv as a shell would take it, and why it runs.
/// Arguments are the plan's and the scenario's, so they are made terminal-safe.
pub(super) fn command_line(argv: &[String], what: &str) -> String {
    crate::model::terminal_safe(&format!("$ {}  # {what}", crate::plan::shell_words(argv)))
        .into_owned()
}

/// The run's shared state.
pub(crate) struct RunCtx {
    pub seams: Seams,
    pub options: EngineOptions,
    pub ws: Workspace,
    pub cancel: CancellationToken,
    pub log: StepLog,
    /// The local upstream's certificates, when the run has one.
    pub certs: Option<Certs>,
}

impl RunCtx {
    /// How the engine's lines begin: a simulated run says so on each, since its
    /// downloads, clusters and requests are the test support's, not real ones.
    pub(crate) fn voice(&self) -> &'static str {
        match self.options.mode {
            RunMode::Simulated => "egress [simulated]",
            _ => "egress",
        }
    }

    /// Starts an external command, printed in full first with `-v`.
    pub(super) fn run_command(
        &self,
        command: crate::seams::Command,
    ) -> impl std::future::Future<Output = Result<crate::seams::Ran, InfraError>> + '_ {
        if self.options.verbose {
            eprintln!(
                "{}: {}",
                self.voice(),
                command_line(&command.argv, &command.what)
            );
        }
        self.seams.host.run(command)
    }

    /// Now, on the clock the run is on: the simulated cluster's virtual clock, or the
    /// wall clock (log lines and their `since` are compared in it).
    pub(crate) fn now(&self) -> Timestamp {
        match self.options.mode {
            RunMode::Simulated => crate::model::virtual_now(),
            _ => Timestamp::now(),
        }
    }

    pub(super) fn error_of(&self, step: &PlannedStep, message: String) -> StepError {
        StepError {
            index: step.index,
            kind: step.step.kind().to_owned(),
            cluster: step.cluster.clone(),
            message,
        }
    }

    /// The error of a run interrupted before `step`.
    pub(super) fn interrupted_at(&self, step: &PlannedStep) -> StepError {
        self.error_of(step, "interrupted (SIGINT/SIGTERM) before this step".into())
    }

    pub(super) fn skip(&self, step: &PlannedStep, why: &str) {
        self.log.record(
            step,
            self.now(),
            Duration::ZERO,
            &StepOutcome::Skipped(why.to_owned()),
        );
    }

    /// Runs a step's future: prints it, times it and logs its outcome; the result
    /// and how long it took. The one place a step's bookkeeping is written.
    pub(super) async fn run_step<T>(
        &self,
        step: &PlannedStep,
        work: impl std::future::Future<Output = Result<T, InfraError>>,
    ) -> (Result<T, InfraError>, Duration) {
        self.run_step_as(step, work, |_| None).await
    }

    /// [`RunCtx::run_step`] for a step whose work may end in a fallback instead of
    /// its purpose: `skipped_because` names it, and the step is logged skipped.
    pub(super) async fn run_step_as<T>(
        &self,
        step: &PlannedStep,
        work: impl std::future::Future<Output = Result<T, InfraError>>,
        skipped_because: impl FnOnce(&T) -> Option<String>,
    ) -> (Result<T, InfraError>, Duration) {
        let started = self.now();
        let clock = tokio::time::Instant::now();
        let voice = self.voice();
        eprintln!("{voice}: {step}");
        let simulated = self.options.mode == RunMode::Simulated;
        // On the virtual clock nobody waits: no heartbeat, and durations say whose.
        let result = if simulated {
            work.await
        } else {
            with_heartbeat(work, HEARTBEAT, |waited| {
                eprintln!("{voice}: {}", still_running(step, waited));
            })
            .await
        };
        let outcome = match &result {
            Ok(done) => match skipped_because(done) {
                Some(why) => {
                    eprintln!("{voice}: {why}");
                    StepOutcome::Skipped(why)
                }
                None => StepOutcome::Ok,
            },
            Err(e) => StepOutcome::Error(e.message.clone()),
        };
        let elapsed = clock.elapsed();
        if let Some(line) = finished(step, elapsed, result.is_ok()) {
            let clock = if simulated { " (virtual clock)" } else { "" };
            eprintln!("{voice}: {line}{clock}");
        }
        self.log.record(step, started, elapsed, &outcome);
        (result, elapsed)
    }

    /// [`RunCtx::run_step`], its result alone.
    pub(super) async fn timed<T>(
        &self,
        step: &PlannedStep,
        work: impl std::future::Future<Output = Result<T, InfraError>>,
    ) -> Result<T, InfraError> {
        self.run_step(step, work).await.0
    }

    pub(super) async fn apply_secrets(
        &self,
        kube: &dyn KubeApi,
        namespace: &str,
    ) -> Result<(), InfraError> {
        let Some(certs) = &self.certs else {
            return Err(InfraError::new(
                "no certificates: the run has no local upstream",
            ));
        };
        let objects: Vec<crate::manifest::Object> = crate::upstream::secrets(certs, namespace)
            .into_iter()
            .filter_map(crate::manifest::Object::from_json)
            .collect();
        let timeout = self.options.plan.timeouts.kube_call;
        retry(&self.backoff(), timeout, &self.cancel, || {
            kube.apply(&objects, namespace)
        })
        .await
        .map(|_| ())
    }

    pub(crate) fn backoff(&self) -> Backoff {
        self.options.plan.timeouts.backoff
    }

    pub(super) async fn wait(
        &self,
        kube: &dyn KubeApi,
        namespace: &str,
        workload: Workload,
        name: &str,
        timeout_secs: u64,
    ) -> Result<(), InfraError> {
        let timeout = secs(timeout_secs);
        let took = retry(&self.backoff(), timeout, &self.cancel, || async {
            match workload {
                Workload::Deployment => kube.wait_deployment(namespace, name, timeout).await,
                Workload::Pod { sidecar } => kube.wait_pod(namespace, name, sidecar, timeout).await,
            }
        })
        .await?;
        eprintln!(
            "egress: {namespace}/{name} ready after {:.1}s",
            took.as_secs_f64()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Step;

    #[test]
    fn a_verbose_command_line_is_a_shell_line_and_safe_on_a_terminal() {
        let argv = ["curl", "-H", "x-a: b c", "http://h/\u{1b}[2J"].map(str::to_owned);
        let line = command_line(&argv, "request r");
        assert!(line.starts_with("$ curl -H 'x-a: b c' "), "{line}");
        assert!(line.ends_with("  # request r"), "{line}");
        assert!(!line.contains('\u{1b}'), "{line}");
    }

    fn step() -> PlannedStep {
        PlannedStep {
            index: 7,
            cluster: Some("egc-1-30-3-registry-only".into()),
            scenario: None,
            condition: None,
            step: Step::CheckDocker,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_step_beats_while_it_runs_and_a_short_one_stays_quiet() {
        let beats = std::sync::Mutex::new(Vec::new());
        let out = with_heartbeat(
            async {
                tokio::time::sleep(Duration::from_secs(65)).await;
                "done"
            },
            HEARTBEAT,
            |waited| beats.lock().unwrap().push(waited.as_secs()),
        )
        .await;
        assert_eq!(out, "done");
        assert_eq!(*beats.lock().unwrap(), vec![20, 40, 60]);
        let quiet = std::sync::Mutex::new(0);
        with_heartbeat(
            tokio::time::sleep(Duration::from_secs(3)),
            HEARTBEAT,
            |_| *quiet.lock().unwrap() += 1,
        )
        .await;
        assert_eq!(*quiet.lock().unwrap(), 0);
        assert_eq!(
            still_running(&step(), Duration::from_secs(40)),
            "… still on step 7 (check_docker on egc-1-30-3-registry-only): 40s so far"
        );
        assert_eq!(finished(&step(), Duration::from_millis(200), true), None);
        assert_eq!(
            finished(&step(), Duration::from_millis(200), false).as_deref(),
            Some("FAILED: step 7 (check_docker) after 0.2s")
        );
        assert_eq!(
            finished(&step(), Duration::from_secs(95), true).as_deref(),
            Some("done: step 7 (check_docker) after 95.0s")
        );
    }
}
