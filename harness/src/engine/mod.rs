//! The interpreter of a plan: it executes exactly the plan's step values, through
//! the seams, in order — host steps once, then each cluster (at most
//! `parallel_clusters` set up or alive at once) with its scenarios one after
//! another, each cluster deleted after its last scenario — and logs every step to
//! `steps.jsonl`. One cancellation token (SIGINT/SIGTERM) stops it; cleanup still
//! runs and deletes only what this run created.

mod cluster_changes;
pub mod converge;
mod ctx;
pub mod evidence;
pub mod existing;
pub mod outcome;
mod scenario;
pub mod shutdown;
mod steplog;
mod wait;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use ctx::{Mesh, RunCtx};
use wait::{retry, secs};

pub use evidence::EvidenceMode;
pub use outcome::{RequestRun, ScenarioRun, StepError, Timing};
pub use steplog::{StepLog, StepOutcome};

use crate::model::Environment;
use crate::model::{Keep, RunMode};
use crate::plan::{Condition, Plan, PlanOptions, PlannedStep, SlotPlan, Step, Workload};
use crate::scenario::Scenario;
use crate::seams::{Command, InfraError, KubeApi, Seams};
use crate::suite::Workspace;
use crate::upstream::Certs;

/// Everything a run needs besides the scenarios.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// With `run_id` set and every `latest` resolved.
    pub plan: PlanOptions,
    /// Take an existing harness cluster of the same name instead of creating one.
    pub reuse: bool,
    pub evidence: EvidenceMode,
    pub mode: RunMode,
    /// `-v`: every command printed in full as it starts.
    pub verbose: bool,
}

impl EngineOptions {
    pub fn run_dir(&self) -> PathBuf {
        self.plan.run_dir()
    }

    pub fn run_id(&self) -> String {
        self.plan
            .run_id
            .clone()
            .unwrap_or_else(|| "<run-id>".into())
    }
}

pub struct Engine {
    scenarios: Vec<Scenario>,
    plan: Plan,
    ctx: RunCtx,
    upstream: tokio::sync::OnceCell<Result<(), StepError>>,
    upstream_started: AtomicBool,
}

/// What the whole run left besides its scenario runs.
#[derive(Debug, Default)]
pub struct RunEnd {
    /// Trouble outside any scenario (a cluster that could not be removed, …).
    pub problems: Vec<String>,
    pub interrupted: bool,
    /// Clusters kept (name, kubeconfig), for the user to reach.
    pub kept: Vec<(String, PathBuf)>,
    /// Where the time went (the scenarios' consistency time is the report's to add).
    pub timing: crate::model::RunTiming,
}

impl Engine {
    /// Plans the run; nothing is executed yet.
    pub fn new(
        ws: Workspace,
        scenarios: Vec<Scenario>,
        options: EngineOptions,
        seams: Seams,
        cancel: CancellationToken,
    ) -> Result<Self, String> {
        let refs: Vec<&Scenario> = scenarios.iter().collect();
        let plan = crate::plan::build(&refs, &ws, &options.plan)?;
        let run_dir = options.run_dir();
        let certs = match &plan.upstream {
            Some(PlannedStep {
                step: Step::StartUpstream { server, .. },
                ..
            }) => {
                let names: Vec<&str> = server.aliases.iter().map(String::as_str).collect();
                let certs = Certs::generate_for(&names)?;
                // No private key in the report folder: the nightly uploads it.
                certs.write_public(&run_dir.join("upstream"))?;
                Some(certs)
            }
            _ => None,
        };
        let log = StepLog::new(Some(&run_dir));
        Ok(Self {
            scenarios,
            plan,
            ctx: RunCtx {
                seams,
                options,
                ws,
                cancel,
                log,
                certs,
            },
            upstream: tokio::sync::OnceCell::new(),
            upstream_started: AtomicBool::new(false),
        })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn options(&self) -> &EngineOptions {
        &self.ctx.options
    }

    pub fn steps_log(&self) -> &StepLog {
        &self.ctx.log
    }

    /// Where `scenario` runs on `istio`, as far as the plan knows.
    pub fn environment(&self, scenario: &str, istio: &str) -> Environment {
        let slot = self.plan.slot_list().into_iter().find(|slot| {
            slot.istio.to_string() == istio && slot.scenarios.iter().any(|n| n == scenario)
        });
        Environment {
            install: match (slot, self.scenarios.iter().find(|s| s.name() == scenario)) {
                (Some(slot), Some(s)) => {
                    scenario::install_text(&s.install.value, &slot.install_label())
                }
                (Some(slot), None) => slot.install_label(),
                (None, _) => String::new(),
            },
            upstream: Some(self.ctx.options.plan.upstream.as_str().to_owned()),
            kubernetes: None,
            node_image: slot.and_then(|s| s.node_image.clone()),
            cluster: slot.and_then(|s| s.cluster.clone()),
            recording: None,
        }
    }

    /// Runs the whole plan; `done` receives each scenario run as it ends.
    pub async fn run(&self, done: &(dyn Fn(ScenarioRun) + Sync)) -> RunEnd {
        let (wall, cpu) = (
            // The run's own clock: a simulated run's is virtual, as are its steps'.
            tokio::time::Instant::now(),
            crate::model::process_cpu_seconds(),
        );
        let mut end = self.run_plan(done).await;
        end.timing = crate::model::RunTiming {
            wall_seconds: wall.elapsed().as_secs_f64(),
            harness_cpu_seconds: crate::model::process_cpu_seconds() - cpu,
            virtual_clock: self.ctx.options.mode == RunMode::Simulated,
            ..self.ctx.log.timing()
        };
        end
    }

    async fn run_plan(&self, done: &(dyn Fn(ScenarioRun) + Sync)) -> RunEnd {
        let mut end = RunEnd::default();
        // What the plan left out is a result too: a trial waiting for it learns why.
        for skip in &self.plan.skipped {
            done(ScenarioRun::skipped(
                &skip.scenario,
                &skip.istio.to_string(),
                self.ctx.options.mode,
                &skip.reason,
            ));
        }
        let mut host_error = None;
        for step in &self.plan.host {
            if !self.may_run(step, &mut host_error) {
                continue;
            }
            if let Err(e) = self.ctx.timed(step, self.host_step(&step.step)).await {
                host_error = Some(self.ctx.error_of(step, e.message));
            }
        }
        let permits = tokio::sync::Semaphore::new(self.plan.parallel_clusters);
        let slots = self
            .plan
            .slots
            .iter()
            .map(|slot| self.run_slot(slot, &permits, host_error.as_ref(), done));
        for problems in futures::future::join_all(slots).await {
            match problems {
                SlotEnd::Kept(name, kubeconfig) => end.kept.push((name, kubeconfig)),
                SlotEnd::Problem(p) => end.problems.push(p),
                SlotEnd::Done => {}
            }
        }
        if let Some(step) = &self.plan.upstream
            && self.upstream.get().is_none()
        {
            self.ctx.skip(step, "no cluster became ready");
        }
        for step in &self.plan.end {
            match &step.step {
                Step::StopUpstream {
                    container,
                    timeout_secs,
                } if self.upstream_started.load(Ordering::SeqCst) => {
                    let remove = self
                        .ctx
                        .seams
                        .docker
                        .remove_container(container, secs(*timeout_secs));
                    let removed = self.ctx.timed(step, remove).await;
                    if removed.is_ok() {
                        shutdown::release(&shutdown::Held::Container(container.clone()));
                    }
                    if let Err(e) = removed {
                        end.problems.push(format!(
                            "could not remove the upstream container {container}: {e}; run `egress prune`"
                        ));
                    }
                }
                Step::StopUpstream { .. } => self.ctx.skip(step, "the upstream was not started"),
                // Named, not `_`: a new kind of step must be placed by every interpreter.
                Step::CheckDocker
                | Step::UseKind { .. }
                | Step::DownloadKind { .. }
                | Step::ResolveLatestIstio
                | Step::ReadInstalledMesh
                | Step::UseIstioctl { .. }
                | Step::DownloadIstioctl { .. }
                | Step::PullImage { .. }
                | Step::BuildImage { .. }
                | Step::CreateCluster { .. }
                | Step::LoadImages { .. }
                | Step::InstallIstio { .. }
                | Step::InstallGatewayApiCrds { .. }
                | Step::SwapGatewayApiCrds { .. }
                | Step::RestartDeployment { .. }
                | Step::CheckExistingIstio { .. }
                | Step::WaitReady { .. }
                | Step::StartUpstream { .. }
                | Step::ApplySecrets { .. }
                | Step::DeleteSecrets { .. }
                | Step::CreateNamespace { .. }
                | Step::ApplyManifest { .. }
                | Step::PatchObject { .. }
                | Step::AwaitCleanConfig { .. }
                | Step::AwaitStatus { .. }
                | Step::SendRequest { .. }
                | Step::CollectEvidence { .. }
                | Step::DeleteObjects { .. }
                | Step::DeleteNamespace { .. }
                | Step::DeleteCluster { .. } => self.ctx.skip(step, "not an end step"),
            }
        }
        if let Some(p) = self.ctx.log.problem() {
            end.problems.push(p);
        }
        end.interrupted = self.ctx.cancel.is_cancelled();
        end
    }

    /// Whether `step` may run: not after a failed step, not once interrupted; a step
    /// that may not is logged as skipped, and an interrupt becomes the failure.
    fn may_run(&self, step: &PlannedStep, failure: &mut Option<StepError>) -> bool {
        if let Some(e) = failure {
            self.ctx.skip(step, &format!("an earlier step failed: {e}"));
            return false;
        }
        if self.ctx.cancel.is_cancelled() {
            self.ctx.skip(step, "interrupted");
            *failure = Some(self.ctx.interrupted_at(step));
            return false;
        }
        true
    }

    async fn host_step(&self, step: &Step) -> Result<(), InfraError> {
        let host = &self.ctx.seams.host;
        match step {
            Step::CheckDocker => self.ctx.seams.docker.ping().await,
            Step::UseKind { argv, timeout_secs } => self
                .command(argv, *timeout_secs, "checking kind's version")
                .await
                .map(|_| ()),
            Step::UseIstioctl {
                version,
                argv,
                timeout_secs,
            } => {
                let ran = self
                    .command(argv, *timeout_secs, "checking istioctl's version")
                    .await?;
                match istioctl_version(&ran.stdout) {
                    Some(found) if found != *version => Err(InfraError::new(format!(
                        "--istioctl {} is istioctl {found}, but this run installs Istio {version}: pass the istioctl of that release, or leave --istioctl out to download it",
                        argv.first().map(String::as_str).unwrap_or_default()
                    ))),
                    _ => Ok(()),
                }
            }
            Step::DownloadKind {
                url,
                checksum_url,
                dest,
                timeout_secs,
            }
            | Step::DownloadIstioctl {
                url,
                checksum_url,
                dest,
                timeout_secs,
                ..
            } => {
                let payload = match step {
                    Step::DownloadIstioctl { .. } => crate::seams::Payload::TarGz("istioctl"),
                    _ => crate::seams::Payload::Binary,
                };
                host.download(url, checksum_url, payload, dest, secs(*timeout_secs))
                    .await
                    .map(|_| ())
            }
            Step::PullImage {
                image,
                argv,
                timeout_secs,
            } => {
                // An image already on the host is not pulled again (offline reruns).
                if self.image_present(image).await {
                    return Ok(());
                }
                self.command(argv, *timeout_secs, &format!("pulling {image}"))
                    .await
                    .map(|_| ())
            }
            Step::BuildImage {
                image,
                argvs,
                timeout_secs,
            } => {
                if self.image_present(image).await {
                    return Ok(());
                }
                for argv in argvs {
                    self.command(argv, *timeout_secs, &format!("building {image}"))
                        .await?;
                }
                Ok(())
            }
            Step::ResolveLatestIstio => Err(InfraError::new(
                "`latest` must be resolved before the run is planned",
            )),
            Step::ReadInstalledMesh => Err(InfraError::new(
                "`installed` must be read from the cluster before the run is planned",
            )),
            // Named, not `_`: a new kind of step must be placed by every interpreter.
            other @ (Step::CreateCluster { .. }
            | Step::LoadImages { .. }
            | Step::InstallIstio { .. }
            | Step::InstallGatewayApiCrds { .. }
            | Step::SwapGatewayApiCrds { .. }
            | Step::RestartDeployment { .. }
            | Step::CheckExistingIstio { .. }
            | Step::WaitReady { .. }
            | Step::StartUpstream { .. }
            | Step::ApplySecrets { .. }
            | Step::DeleteSecrets { .. }
            | Step::CreateNamespace { .. }
            | Step::ApplyManifest { .. }
            | Step::PatchObject { .. }
            | Step::AwaitCleanConfig { .. }
            | Step::AwaitStatus { .. }
            | Step::SendRequest { .. }
            | Step::CollectEvidence { .. }
            | Step::DeleteObjects { .. }
            | Step::DeleteNamespace { .. }
            | Step::DeleteCluster { .. }
            | Step::StopUpstream { .. }) => Err(InfraError::new(format!(
                "not a host step: {}",
                other.kind()
            ))),
        }
    }

    /// Whether the host's Docker has `image`.
    async fn image_present(&self, image: &str) -> bool {
        self.ctx
            .run_command(Command {
                argv: ["docker", "image", "inspect", image]
                    .map(str::to_owned)
                    .to_vec(),
                timeout: self.ctx.options.plan.timeouts.docker_call,
                what: format!("looking for {image}"),
            })
            .await
            .is_ok_and(|r| r.success())
    }

    /// Runs a planned argv; a non-zero exit is an error with stderr's tail.
    async fn command(
        &self,
        argv: &[String],
        timeout_secs: u64,
        what: &str,
    ) -> Result<crate::seams::Ran, InfraError> {
        let run = self.ctx.run_command(Command {
            argv: argv.to_vec(),
            timeout: secs(timeout_secs),
            what: what.to_owned(),
        });
        tokio::select! {
            ran = run => ran?.checked(),
            () = self.ctx.cancel.cancelled() => {
                self.ctx.seams.host.kill_all();
                Err(InfraError::new("interrupted"))
            }
        }
    }

    async fn run_slot(
        &self,
        slot: &SlotPlan,
        permits: &tokio::sync::Semaphore,
        host_error: Option<&StepError>,
        done: &(dyn Fn(ScenarioRun) + Sync),
    ) -> SlotEnd {
        let mode = self.ctx.options.mode;
        let istio = slot.slot.istio.to_string();
        let fail_all = |error: &StepError| {
            for s in &slot.scenarios {
                for step in &s.steps {
                    self.ctx.skip(step, "the cluster was not set up");
                }
                done(ScenarioRun::not_run(
                    &s.scenario,
                    &istio,
                    mode,
                    self.environment(&s.scenario, &istio),
                    error.clone(),
                ));
            }
        };
        if let Some(e) = host_error {
            for step in &slot.setup {
                self.ctx.skip(step, "a host step failed");
            }
            for step in &slot.teardown {
                self.ctx.skip(step, "nothing was created");
            }
            fail_all(e);
            return SlotEnd::Done;
        }
        let Ok(_permit) = permits.acquire().await else {
            fail_all(&StepError {
                index: 0,
                kind: "schedule".into(),
                cluster: slot.slot.cluster.clone(),
                message: "the run's cluster limiter closed".into(),
            });
            return SlotEnd::Done;
        };
        let mut state = SlotState::default();
        let set_up = self.set_up(slot, &mut state).await;
        let mut failed = false;
        match set_up {
            Err(error) => {
                failed = true;
                fail_all(&error);
            }
            Ok(mesh) => {
                // The plan's groups in order; a group's scenarios at once (their claims
                // do not meet: plan::conflicts).
                for group in slot.scenarios.chunk_by(|a, b| a.group == b.group) {
                    let runs = group.iter().filter_map(|s| {
                        let scenario = self.scenarios.iter().find(|x| x.name() == s.scenario)?;
                        let mesh = &mesh;
                        Some(async move {
                            scenario::ScenarioExec::new(&self.ctx, mesh, scenario)
                                .run(&s.steps)
                                .await
                        })
                    });
                    for run in futures::future::join_all(runs).await {
                        if !run.passed() || run.cleanup_error.is_some() {
                            failed = true;
                        }
                        done(run);
                    }
                }
            }
        }
        self.tear_down(slot, &state, failed).await
    }

    /// The slot's setup steps; the upstream once per run; a client on its kubeconfig.
    async fn set_up(&self, slot: &SlotPlan, state: &mut SlotState) -> Result<Mesh, StepError> {
        let istio = match &slot.slot.istio {
            crate::plan::IstioRelease::Exact(v) => v.clone(),
            unresolved @ (crate::plan::IstioRelease::Latest
            | crate::plan::IstioRelease::Installed) => {
                return Err(StepError {
                    index: 0,
                    kind: "plan".into(),
                    cluster: slot.slot.cluster.clone(),
                    message: format!("`{unresolved}` was not resolved"),
                });
            }
        };
        let mut kube: Option<Arc<dyn KubeApi>> = None;
        let mut export_logs = None;
        let mut failure: Option<StepError> = None;
        for step in &slot.setup {
            if !self.may_run(step, &mut failure) {
                continue;
            }
            if step.condition == Some(Condition::UnlessReused) && state.reused {
                self.ctx.skip(step, "--reuse found the cluster");
                continue;
            }
            let result = match &step.step {
                Step::CreateCluster {
                    name,
                    kubeconfig,
                    argv,
                    timeout_secs,
                    attempts,
                    ..
                } => {
                    let created = self
                        .ctx
                        .timed(
                            step,
                            self.create_cluster(
                                name,
                                kubeconfig,
                                argv,
                                *timeout_secs,
                                *attempts,
                                state,
                            ),
                        )
                        .await;
                    if created.is_ok() {
                        export_logs = Some(vec![
                            argv.first().cloned().unwrap_or_default(),
                            "export".into(),
                            "logs".into(),
                            "--name".into(),
                            name.clone(),
                        ]);
                    }
                    created
                }
                Step::LoadImages {
                    argv, timeout_secs, ..
                } => {
                    let work = async {
                        match self.command(argv, *timeout_secs, "loading images").await {
                            Ok(_) => Ok(None),
                            // kind load breaks on Docker's containerd image store
                            // (kubernetes-sigs/kind#3795, #4224): the nodes pull instead.
                            Err(e)
                                if e.message.contains("content digest")
                                    && e.message.contains("not found") =>
                            {
                                Ok(Some("kind load failed on Docker's containerd image store (kubernetes-sigs/kind#3795); the nodes pull the images themselves".to_owned()))
                            }
                            Err(e) => Err(e),
                        }
                    };
                    let (loaded, _) = self
                        .ctx
                        .run_step_as(step, work, |fallback: &Option<String>| fallback.clone())
                        .await;
                    loaded.map(|_| ())
                }
                Step::InstallIstio {
                    argv, timeout_secs, ..
                } => {
                    let what = step.step.kind();
                    self.ctx
                        .timed(step, async {
                            self.command(argv, *timeout_secs, what).await.map(|_| ())
                        })
                        .await
                }
                Step::WaitReady {
                    namespace,
                    workload,
                    name,
                    timeout_secs,
                } => match self.cluster_api(slot, &mut kube).await {
                    Ok(api) => {
                        self.ctx
                            .timed(
                                step,
                                self.ctx
                                    .wait(&*api, namespace, *workload, name, *timeout_secs),
                            )
                            .await
                    }
                    Err(e) => Err(self.unreachable(step, e)),
                },
                Step::InstallGatewayApiCrds {
                    files,
                    crds,
                    timeout_secs,
                    ..
                } => match self.cluster_api(slot, &mut kube).await {
                    Ok(api) => {
                        self.ctx
                            .timed(
                                step,
                                cluster_changes::install_gateway_api_crds(
                                    &self.ctx,
                                    &*api,
                                    files,
                                    crds,
                                    *timeout_secs,
                                ),
                            )
                            .await
                    }
                    Err(e) => Err(self.unreachable(step, e)),
                },
                Step::CheckExistingIstio { timeout_secs, .. } => {
                    let work = async {
                        let api = self.connect(slot).await?;
                        kube = Some(Arc::clone(&api));
                        for name in [
                            crate::model::mesh::ISTIOD_DEPLOYMENT,
                            crate::model::mesh::GATEWAY_DEPLOYMENT,
                        ] {
                            self.ctx.wait(
                                &*api,
                                crate::model::mesh::ISTIO_NAMESPACE,
                                Workload::Deployment,
                                name,
                                *timeout_secs,
                            )
                            .await
                            .map_err(|e| {
                                e.context(&format!(
                                    "the current cluster has no ready {name}; install Istio with an egress gateway first"
                                ))
                            })?;
                        }
                        Ok(())
                    };
                    self.ctx.timed(step, work).await
                }
                Step::ApplySecrets { namespace, .. } => {
                    // The upstream first: kind's network exists now that a cluster does.
                    match self.start_upstream_once().await {
                        Err(e) => {
                            self.ctx.skip(step, "the upstream did not start");
                            Err(InfraError::new(e.to_string()))
                        }
                        Ok(()) => match self.cluster_api(slot, &mut kube).await {
                            Ok(api) => {
                                self.ctx
                                    .timed(step, self.ctx.apply_secrets(&*api, namespace))
                                    .await
                            }
                            Err(e) => Err(e),
                        },
                    }
                }
                other @ (Step::CheckDocker
                | Step::UseKind { .. }
                | Step::DownloadKind { .. }
                | Step::ResolveLatestIstio
                | Step::ReadInstalledMesh
                | Step::UseIstioctl { .. }
                | Step::DownloadIstioctl { .. }
                | Step::PullImage { .. }
                | Step::BuildImage { .. }
                | Step::StartUpstream { .. }
                | Step::DeleteSecrets { .. }
                | Step::CreateNamespace { .. }
                | Step::ApplyManifest { .. }
                | Step::PatchObject { .. }
                | Step::AwaitCleanConfig { .. }
                | Step::AwaitStatus { .. }
                | Step::SendRequest { .. }
                | Step::CollectEvidence { .. }
                | Step::DeleteObjects { .. }
                | Step::DeleteNamespace { .. }
                | Step::DeleteCluster { .. }
                | Step::SwapGatewayApiCrds { .. }
                | Step::RestartDeployment { .. }
                | Step::StopUpstream { .. }) => Err(InfraError::new(format!(
                    "not a cluster setup step: {}",
                    other.kind()
                ))),
            };
            if let Err(e) = result {
                failure = Some(self.ctx.error_of(step, e.message));
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if self.plan.upstream.is_some() {
            self.start_upstream_once().await?;
        }
        let kube = match kube {
            Some(k) => k,
            None => self.connect(slot).await.map_err(|e| StepError {
                index: 0,
                kind: "connect".into(),
                cluster: slot.slot.cluster.clone(),
                message: e.message,
            })?,
        };
        let kubernetes = kube.server_version().await;
        Ok(Mesh {
            kube,
            istio,
            install: slot.slot.install_label(),
            cluster: slot.slot.cluster.clone(),
            node_image: slot.slot.node_image.clone(),
            kubernetes,
            export_logs,
        })
    }

    async fn connect(&self, slot: &SlotPlan) -> Result<Arc<dyn KubeApi>, InfraError> {
        self.ctx
            .seams
            .kube
            .connect(slot.slot.kubeconfig.as_deref())
            .await
            .map_err(|e| e.context("opening a Kubernetes client"))
    }

    /// `kind create cluster`, unless `--reuse` finds it; an existing cluster this run
    /// did not create is refused (and never deleted).
    async fn create_cluster(
        &self,
        name: &str,
        kubeconfig: &std::path::Path,
        argv: &[String],
        timeout_secs: u64,
        attempts: u32,
        state: &mut SlotState,
    ) -> Result<(), InfraError> {
        let kind = argv.first().cloned().unwrap_or_else(|| "kind".into());
        let listed = self
            .command(
                &[kind.clone(), "get".into(), "clusters".into()],
                self.ctx.options.plan.timeouts.tool_version.as_secs(),
                "listing kind clusters",
            )
            .await?;
        let exists = listed.stdout.lines().any(|l| l.trim() == name);
        if exists && self.ctx.options.reuse {
            state.reused = true;
            // In use by this run now: prune leaves it while this process lives.
            crate::plan::mark_cluster(
                &self.ctx.options.plan.cache_dir,
                name,
                &self.ctx.options.run_id(),
            )
            .map_err(InfraError::new)?;
            eprintln!("{}: reusing cluster {name}", self.ctx.voice());
            self.command(
                &[
                    kind,
                    "export".into(),
                    "kubeconfig".into(),
                    "--name".into(),
                    name.into(),
                    "--kubeconfig".into(),
                    kubeconfig.display().to_string(),
                ],
                self.ctx.options.plan.timeouts.tool_version.as_secs(),
                "writing the cluster's kubeconfig",
            )
            .await?;
            return Ok(());
        }
        if exists {
            return Err(InfraError::new(format!(
                "a kind cluster named {name} exists already and this run did not create it: pass --reuse to run on it, or remove it with `egress prune`"
            )));
        }
        if let Some(dir) = kubeconfig.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| InfraError::new(format!("{}: {e}", dir.display())))?;
        }
        // Marked before kind starts: a run killed while creating (minutes) leaves a
        // cluster `egress prune` can still call this harness's.
        crate::plan::mark_cluster(
            &self.ctx.options.plan.cache_dir,
            name,
            &self.ctx.options.run_id(),
        )
        .map_err(InfraError::new)?;
        let mut last = None;
        for attempt in 1..=attempts.max(1) {
            state.created = true;
            shutdown::hold(shutdown::Held::Cluster(name.to_owned()));
            match self
                .command(argv, timeout_secs, &format!("creating cluster {name}"))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if self.ctx.cancel.is_cancelled() => return Err(e),
                // kind refused because the name is taken (kind's
                // pkg/cluster/internal/create/create.go): another run made it after
                // `kind get clusters`. Not ours: never deleted, not retried.
                Err(e)
                    if e.message
                        .contains("already exist for a cluster with the name") =>
                {
                    state.created = false;
                    shutdown::release(&shutdown::Held::Cluster(name.to_owned()));
                    crate::plan::unmark_cluster_if_ours(&self.ctx.options.plan.cache_dir, name);
                    return Err(InfraError::permanent(format!(
                        "a kind cluster named {name} was created by someone else while this run was about to: it is left alone; run again, or pass --reuse to run on it ({})",
                        e.message
                    )));
                }
                Err(e) => {
                    eprintln!(
                        "{}: creating {name} failed (attempt {attempt}/{attempts}): {e}",
                        self.ctx.voice()
                    );
                    // kind leaves a half-made cluster behind; remove it before trying again.
                    let _ = self
                        .command(
                            &[
                                kind.clone(),
                                "delete".into(),
                                "cluster".into(),
                                "--name".into(),
                                name.into(),
                                "--kubeconfig".into(),
                                kubeconfig.display().to_string(),
                            ],
                            self.ctx.options.plan.timeouts.cluster_delete.as_secs(),
                            "removing a half-made cluster",
                        )
                        .await;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| InfraError::new("kind create cluster never ran")))
    }

    /// The slot's cluster API, connected on first use and kept.
    async fn cluster_api(
        &self,
        slot: &SlotPlan,
        kube: &mut Option<Arc<dyn KubeApi>>,
    ) -> Result<Arc<dyn KubeApi>, InfraError> {
        if let Some(k) = kube {
            return Ok(Arc::clone(k));
        }
        let api = self.connect(slot).await?;
        *kube = Some(Arc::clone(&api));
        Ok(api)
    }

    /// A step that could not start because the cluster did not answer, logged as such.
    fn unreachable(&self, step: &PlannedStep, e: InfraError) -> InfraError {
        self.ctx.log.record(
            step,
            self.ctx.now(),
            Duration::ZERO,
            &StepOutcome::Error(e.message.clone()),
        );
        e
    }

    async fn start_upstream_once(&self) -> Result<(), StepError> {
        let Some(step) = &self.plan.upstream else {
            return Ok(());
        };
        self.upstream
            .get_or_init(|| async {
                let (
                    Step::StartUpstream {
                        server,
                        timeout_secs,
                    },
                    Some(certs),
                ) = (&step.step, &self.ctx.certs)
                else {
                    return Err(self.ctx.error_of(step, "no upstream to start".into()));
                };
                let started = self
                    .ctx
                    .timed(
                        step,
                        self.ctx
                            .seams
                            .docker
                            .start_upstream(server, certs, secs(*timeout_secs)),
                    )
                    .await;
                // A failed start may still leave a container of ours (the end removes
                // it), unless it failed because the name is held: that one is not ours.
                let ours = started.as_ref().map_or_else(|e| !e.permanent, |()| true);
                self.upstream_started.store(ours, Ordering::SeqCst);
                if ours {
                    shutdown::hold(shutdown::Held::Container(server.container_name.clone()));
                }
                started.map_err(|e| self.ctx.error_of(step, e.message))
            })
            .await
            .clone()
    }

    async fn tear_down(&self, slot: &SlotPlan, state: &SlotState, failed: bool) -> SlotEnd {
        let mut end = SlotEnd::Done;
        for step in &slot.teardown {
            let (name, kubeconfig, argv, timeout_secs) = match &step.step {
                Step::DeleteSecrets { namespace, names } => {
                    // Also after an interrupt: the user's cluster keeps nothing of the run.
                    let secrets: Vec<crate::seams::Applied> = names
                        .iter()
                        .map(|name| crate::seams::Applied {
                            api_version: "v1".into(),
                            kind: "Secret".into(),
                            name: name.clone(),
                            namespace: Some(namespace.clone()),
                        })
                        .collect();
                    let work = async {
                        let api = self.connect(slot).await?;
                        retry(
                            &self.ctx.backoff(),
                            self.ctx.options.plan.timeouts.kube_call,
                            &CancellationToken::new(),
                            || api.delete(&secrets),
                        )
                        .await
                    };
                    if let Err(e) = self.ctx.timed(step, work).await {
                        end = SlotEnd::Problem(format!(
                            "could not delete the run's Secrets in {namespace}: {e}; remove them with `kubectl delete secret -n {namespace} {}`",
                            names.join(" ")
                        ));
                    }
                    continue;
                }
                Step::DeleteCluster {
                    name,
                    kubeconfig,
                    argv,
                    timeout_secs,
                } => (name, kubeconfig, argv, timeout_secs),
                // Named, not `_`: a new kind of step must be placed by every interpreter.
                Step::CheckDocker
                | Step::UseKind { .. }
                | Step::DownloadKind { .. }
                | Step::ResolveLatestIstio
                | Step::ReadInstalledMesh
                | Step::UseIstioctl { .. }
                | Step::DownloadIstioctl { .. }
                | Step::PullImage { .. }
                | Step::BuildImage { .. }
                | Step::CreateCluster { .. }
                | Step::LoadImages { .. }
                | Step::InstallIstio { .. }
                | Step::InstallGatewayApiCrds { .. }
                | Step::SwapGatewayApiCrds { .. }
                | Step::RestartDeployment { .. }
                | Step::CheckExistingIstio { .. }
                | Step::WaitReady { .. }
                | Step::StartUpstream { .. }
                | Step::ApplySecrets { .. }
                | Step::CreateNamespace { .. }
                | Step::ApplyManifest { .. }
                | Step::PatchObject { .. }
                | Step::AwaitCleanConfig { .. }
                | Step::AwaitStatus { .. }
                | Step::SendRequest { .. }
                | Step::CollectEvidence { .. }
                | Step::DeleteObjects { .. }
                | Step::DeleteNamespace { .. }
                | Step::StopUpstream { .. } => {
                    self.ctx.skip(step, "not a teardown step");
                    continue;
                }
            };
            if !state.created {
                self.ctx.skip(step, "this run did not create the cluster");
                if state.reused {
                    end = SlotEnd::Kept(name.clone(), kubeconfig.clone());
                }
                continue;
            }
            let keep = match self.ctx.options.plan.keep {
                Keep::Always => true,
                Keep::OnFailure => failed,
                Keep::Never => false,
            };
            if keep {
                self.ctx.skip(step, "kept (--keep / --keep-on-failure)");
                eprintln!(
                    "egress: kept cluster {name}: kubectl --kubeconfig {} get pods -A; remove it with `egress prune`",
                    kubeconfig.display()
                );
                end = SlotEnd::Kept(name.clone(), kubeconfig.clone());
                continue;
            }
            // Deleting is the one thing an interrupt must not skip: a fresh runner call.
            let delete = self.ctx.run_command(Command {
                argv: argv.clone(),
                timeout: secs(*timeout_secs),
                what: format!("deleting cluster {name}"),
            });
            let result = self
                .ctx
                .timed(step, async { delete.await?.checked().map(|_| ()) })
                .await;
            match result {
                Ok(()) => {
                    shutdown::release(&shutdown::Held::Cluster(name.clone()));
                    if let Some(dir) = kubeconfig.parent() {
                        let _ = std::fs::remove_dir_all(dir);
                    }
                }
                Err(e) => {
                    end = SlotEnd::Problem(format!(
                        "could not remove cluster {name}: {e}; run `egress prune`"
                    ));
                }
            }
        }
        end
    }
}

/// Runs the engine to its end and collects its runs (`egress repro`).
pub fn run_blocking(engine: &Engine) -> Result<(Vec<ScenarioRun>, RunEnd), String> {
    let runs = std::sync::Mutex::new(Vec::new());
    let end = run_on_own_runtime(engine, &|run| {
        runs.lock().unwrap_or_else(|e| e.into_inner()).push(run);
    })?;
    Ok((runs.into_inner().unwrap_or_else(|e| e.into_inner()), end))
}

/// The runtime a live run's engine runs on.
pub fn own_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Runs the engine to its end on a runtime of its own, handing each run to `done`.
pub fn run_on_own_runtime(
    engine: &Engine,
    done: &(dyn Fn(ScenarioRun) + Sync),
) -> Result<RunEnd, String> {
    let runtime = own_runtime().map_err(|e| format!("tokio runtime: {e}"))?;
    Ok(runtime.block_on(engine.run(done)))
}

#[derive(Default)]
struct SlotState {
    created: bool,
    reused: bool,
}

enum SlotEnd {
    Done,
    Kept(String, PathBuf),
    Problem(String),
}

/// The client version `istioctl version --remote=false` prints ("client version:
/// 1.22.1", or the bare version in older releases).
fn istioctl_version(stdout: &str) -> Option<String> {
    stdout
        .split_whitespace()
        .find(|w| semver::Version::parse(w.trim_start_matches('v')).is_ok())
        .map(|w| w.trim_start_matches('v').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_istioctl_version_is_read_from_its_output() {
        assert_eq!(
            istioctl_version("client version: 1.22.1\n").as_deref(),
            Some("1.22.1")
        );
        assert_eq!(istioctl_version("1.30.3\n").as_deref(), Some("1.30.3"));
        assert_eq!(istioctl_version("client version: (simulated)"), None);
    }
}
