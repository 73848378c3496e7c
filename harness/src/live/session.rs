//! A live session: one per `cargo test` process, shared by its live trials. It
//! executes the plan's host steps once, sets each cluster up once (the first trial
//! that needs it pays), runs the scenarios of a cluster one at a time, and removes
//! clusters at the end, on failure and on Ctrl-C as `--keep` says.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::cluster::{self, Kind};
use super::command::{self, Command};
use super::download::{self, Payload};
use super::evidence::EvidenceMode;
use super::k8s;
use super::scenario_run::{self, Mesh, RunSettings, ScenarioRun};
use crate::plan::{self, IstioRelease, Keep, Plan, PlanOptions, Slot, Step};
use crate::report::results::Environment;
use crate::scenario::Scenario;
use crate::suite::Workspace;
use crate::upstream::{self, Certs, UpstreamMode};

/// Everything a live run needs besides the scenarios.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub plan: PlanOptions,
    /// Take an existing harness cluster of the same name instead of creating one.
    pub reuse: bool,
    pub evidence: EvidenceMode,
    pub run_id: String,
    pub run_dir: PathBuf,
}

struct SlotState {
    slot: Slot,
    /// The slot's setup steps, from the plan: what `egress plan` prints is what runs.
    setup: Vec<Step>,
    teardown: Option<Step>,
    mesh: tokio::sync::OnceCell<Result<Mesh, String>>,
    /// Scenarios of one cluster run one after another.
    serial: tokio::sync::Mutex<()>,
    failed: AtomicBool,
    created: AtomicBool,
}

pub struct Session {
    runtime: tokio::runtime::Runtime,
    ws: Workspace,
    scenarios: Vec<Scenario>,
    options: LiveOptions,
    plan: Plan,
    host_steps: Vec<Step>,
    host: tokio::sync::OnceCell<Result<(), String>>,
    slots: Vec<Arc<SlotState>>,
    /// The run's certificates (local upstream only).
    certs: Option<Certs>,
    /// Started with the first cluster (kind's network exists from then on).
    upstream: tokio::sync::OnceCell<Result<(), String>>,
    running_upstream: tokio::sync::Mutex<Option<upstream::Running>>,
}

static KIND: OnceLock<Kind> = OnceLock::new();
/// Clusters this process created (or started creating): what Ctrl-C removes.
static CREATED: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// A session exists: its own Ctrl-C handler writes the report and removes clusters.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Whether this process started a live session.
pub fn started() -> bool {
    STARTED.load(Ordering::SeqCst)
}

/// The kind binary of this session, once the host steps found or fetched it.
pub fn kind_binary() -> Option<&'static Kind> {
    KIND.get()
}

fn created() -> std::sync::MutexGuard<'static, Vec<(String, PathBuf)>> {
    CREATED.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    /// Resolves `latest`, builds the plan and starts the runtime. Nothing is created yet.
    pub fn new(
        ws: Workspace,
        scenarios: Vec<Scenario>,
        mut options: LiveOptions,
    ) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        STARTED.store(true, Ordering::SeqCst);
        if options.plan.istio.contains(&IstioRelease::Latest) {
            let latest = runtime.block_on(download::latest_istio())?;
            eprintln!("egress: `latest` is Istio {latest}");
            let mut resolved = Vec::new();
            for r in options.plan.istio.drain(..) {
                let r = if r == IstioRelease::Latest {
                    IstioRelease::Exact(latest.clone())
                } else {
                    r
                };
                if !resolved.contains(&r) {
                    resolved.push(r);
                }
            }
            options.plan.istio = resolved;
        }
        let refs: Vec<&Scenario> = scenarios.iter().collect();
        let plan = plan::build(&refs, &ws, &options.plan)?;
        let host_steps = plan
            .steps
            .iter()
            .filter(|p| {
                p.cluster.is_none()
                    && !matches!(
                        p.step,
                        Step::ResolveLatestIstio
                            | Step::StopUpstream { .. }
                            | Step::StartUpstream { .. }
                            | Step::CreateSecrets { .. }
                    )
            })
            .map(|p| p.step.clone())
            .collect();
        let slots = plan
            .slots
            .iter()
            .map(|slot| {
                let (setup, teardown) = slot_steps(&plan, slot);
                Arc::new(SlotState {
                    slot: slot.clone(),
                    setup,
                    teardown,
                    mesh: tokio::sync::OnceCell::new(),
                    serial: tokio::sync::Mutex::new(()),
                    failed: AtomicBool::new(false),
                    created: AtomicBool::new(false),
                })
            })
            .collect();
        let certs = match options.plan.upstream {
            UpstreamMode::Local => {
                let certs = Certs::generate(upstream::UPSTREAM_HOST)?;
                certs.write(&options.run_dir.join("upstream"))?;
                Some(certs)
            }
            UpstreamMode::Internet => None,
        };
        let upstream_name = upstream::definition(&options.run_id).container_name;
        let keep = options.plan.keep;
        runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                INTERRUPTED.store(true, Ordering::SeqCst);
                eprintln!("egress: interrupted; stopping commands and removing clusters");
                command::kill_all();
                crate::report::collect::interrupted();
                remove_container(&upstream_name).await;
                if keep != Keep::Always {
                    remove_created().await;
                }
                std::process::exit(130);
            }
        });
        Ok(Self {
            runtime,
            ws,
            scenarios,
            options,
            plan,
            host_steps,
            host: tokio::sync::OnceCell::new(),
            slots,
            certs,
            upstream: tokio::sync::OnceCell::new(),
            running_upstream: tokio::sync::Mutex::new(None),
        })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The exact Istio version a trial's `--istio` entry stands for.
    pub fn resolve(&self, istio: &IstioRelease) -> Option<IstioRelease> {
        match istio {
            IstioRelease::Latest => self.plan.slots.iter().map(|s| s.istio.clone()).max(),
            exact => Some(exact.clone()),
        }
    }

    /// Where `scenario` runs on `istio`, as far as the plan knows before a cluster answers.
    pub fn environment(&self, scenario: &str, istio: &IstioRelease) -> Environment {
        let istio = self.resolve(istio);
        let slot = self.slots.iter().map(|st| &st.slot).find(|slot| {
            Some(&slot.istio) == istio.as_ref() && slot.scenarios.iter().any(|n| n == scenario)
        });
        Environment {
            install: slot.map(|s| s.install.clone()).unwrap_or_default(),
            upstream: Some(self.options.plan.upstream.as_str().to_owned()),
            kubernetes: None,
            node_image: slot.and_then(|s| s.node_image.clone()),
            cluster: slot.and_then(|s| s.cluster.clone()),
            recording: None,
        }
    }

    /// Runs one scenario on one version: host steps and cluster setup first if no
    /// earlier trial did them. `Err` is trouble that kept the scenario from running.
    pub fn run(&self, scenario: &str, istio: &IstioRelease) -> Result<ScenarioRun, String> {
        let istio = self
            .resolve(istio)
            .ok_or_else(|| format!("no Istio version resolved for {istio}"))?;
        let s = self
            .scenarios
            .iter()
            .find(|s| s.name() == scenario)
            .ok_or_else(|| format!("scenario {scenario} is not part of this session"))?;
        let state = self
            .slots
            .iter()
            .find(|st| st.slot.istio == istio && st.slot.scenarios.iter().any(|n| n == scenario))
            .cloned()
            .ok_or_else(|| format!("the plan runs {scenario} on no cluster for Istio {istio}"))?;
        self.runtime.block_on(async {
            self.host
                .get_or_init(|| run_host_steps(&self.host_steps))
                .await
                .clone()?;
            let mesh = state
                .mesh
                .get_or_init(|| set_up(&state, &self.options))
                .await
                .clone()
                .inspect_err(|_| state.failed.store(true, Ordering::SeqCst))?;
            if let Some(certs) = &self.certs {
                self.upstream
                    .get_or_init(|| self.start_upstream(certs))
                    .await
                    .clone()?;
                k8s::apply_json(
                    &mesh.client,
                    &upstream::secrets(certs, "istio-system"),
                    "istio-system",
                )
                .await?;
            }
            let _turn = state.serial.lock().await;
            let settings = RunSettings {
                deadline: Duration::from_secs(self.options.plan.deadline_secs),
                evidence: self.options.evidence,
                run_dir: self.options.run_dir.clone(),
                run_id: self.options.run_id.clone(),
                upstream: self.options.plan.upstream,
                certs: self.certs.clone(),
                keep_objects: self.options.plan.keep_objects,
            };
            let run = scenario_run::run(&mesh, s, &self.ws, &settings).await;
            if !run.passed() || run.cleanup_error.is_some() {
                state.failed.store(true, Ordering::SeqCst);
            }
            Ok(run)
        })
    }

    async fn start_upstream(&self, certs: &Certs) -> Result<(), String> {
        let definition = upstream::definition(&self.options.run_id);
        eprintln!("egress: start upstream {definition}");
        let running = upstream::start(&definition, certs).await?;
        *self.running_upstream.lock().await = Some(running);
        Ok(())
    }

    /// Removes or keeps each cluster this session created, as `--keep` says, and
    /// says how to reach the kept ones. The upstream container is always removed.
    pub fn finish(&self) {
        self.runtime.block_on(async {
            if let Some(running) = self.running_upstream.lock().await.take()
                && let Err(e) = running.stop().await
            {
                eprintln!("egress: {e}");
            }
        });
        for state in &self.slots {
            if !state.created.load(Ordering::SeqCst) {
                continue;
            }
            let (Some(name), Some(kubeconfig)) = (&state.slot.cluster, &state.slot.kubeconfig)
            else {
                continue;
            };
            let failed = state.failed.load(Ordering::SeqCst);
            let keep = match self.options.plan.keep {
                Keep::Always => true,
                Keep::OnFailure => failed,
                Keep::Never => false,
            };
            if keep {
                eprintln!(
                    "egress: kept cluster {name} (Istio {}): kubectl --kubeconfig {} get pods -A; remove it with `egress prune`",
                    state.slot.istio,
                    kubeconfig.display()
                );
                continue;
            }
            if let Some(step) = &state.teardown {
                let result = self.runtime.block_on(execute(step, None));
                match result {
                    Ok(()) => {
                        created().retain(|(n, _)| n != name);
                        let _ = kubeconfig.parent().map(std::fs::remove_dir_all);
                    }
                    Err(e) => eprintln!("egress: could not remove cluster {name}: {e}"),
                }
            }
        }
    }
}

/// The steps that set a slot up (everything before its first scenario) and the one
/// that tears it down.
fn slot_steps(plan: &Plan, slot: &Slot) -> (Vec<Step>, Option<Step>) {
    let mine: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|p| {
            p.cluster.is_some() && p.cluster == slot.cluster
                || slot.cluster.is_none() && p.cluster.is_none()
        })
        .map(|p| &p.step)
        .collect();
    let setup = mine
        .iter()
        .take_while(|s| !matches!(s, Step::CreateNamespace { .. }))
        .filter(|s| slot.cluster.is_some() || matches!(s, Step::CheckExistingIstio { .. }))
        .map(|s| (*s).clone())
        .collect();
    let teardown = slot.cluster.as_ref().and_then(|_| {
        mine.iter()
            .rev()
            .find(|s| matches!(s, Step::Command { argv, .. } if argv.get(1).map(String::as_str) == Some("delete")))
            .map(|s| (*s).clone())
    });
    (setup, teardown)
}

async fn run_host_steps(steps: &[Step]) -> Result<(), String> {
    for step in steps {
        execute(step, None).await?;
    }
    Ok(())
}

/// Creates (or reuses) the slot's cluster and installs Istio by running its planned
/// steps, then opens a client on the harness's kubeconfig.
async fn set_up(state: &SlotState, options: &LiveOptions) -> Result<Mesh, String> {
    let slot = &state.slot;
    let istio = match &slot.istio {
        IstioRelease::Exact(v) => v.clone(),
        IstioRelease::Latest => return Err("`latest` was not resolved".into()),
    };
    let mut reusing = false;
    if let (Some(name), Some(kubeconfig)) = (&slot.cluster, &slot.kubeconfig) {
        let kind = kind_binary().ok_or("kind was not prepared")?;
        if options.reuse && kind.harness_clusters().await?.contains(name) {
            reusing = true;
            eprintln!("egress: reusing cluster {name}");
            let ran = command::run_async(Command {
                argv: vec![
                    kind.path.display().to_string(),
                    "export".into(),
                    "kubeconfig".into(),
                    "--name".into(),
                    name.clone(),
                    "--kubeconfig".into(),
                    kubeconfig.display().to_string(),
                ],
                timeout: Duration::from_secs(60),
                what: format!("writing the kubeconfig of {name}"),
            })
            .await?;
            ran.checked()?;
        } else {
            created().push((name.clone(), kubeconfig.clone()));
            state.created.store(true, Ordering::SeqCst);
        }
    }
    let mut client = None;
    for step in &state.setup {
        // The session starts the upstream and applies its Secrets itself, once clusters exist.
        if matches!(
            step,
            Step::StartUpstream { .. } | Step::CreateSecrets { .. }
        ) {
            continue;
        }
        let skip_on_reuse = matches!(step, Step::Command { argv, .. }
            if argv.get(1).is_some_and(|a| a == "create" || a == "load"));
        if reusing && skip_on_reuse {
            continue;
        }
        if let Step::Command { argv, .. } = step
            && argv.get(1).is_some_and(|a| a == "install")
            && reusing
            && let Some(c) = &client
            && k8s::wait_deployment(c, "istio-system", "istiod", Duration::from_secs(5))
                .await
                .is_ok()
        {
            continue;
        }
        if client.is_none()
            && matches!(
                step,
                Step::WaitReady { .. } | Step::CheckExistingIstio { .. }
            )
        {
            client = Some(k8s::client(slot.kubeconfig.as_deref()).await?);
        }
        execute(step, client.as_ref()).await?;
    }
    let client = match client {
        Some(c) => c,
        None => k8s::client(slot.kubeconfig.as_deref()).await?,
    };
    let kubernetes = k8s::server_version(&client).await;
    Ok(Mesh {
        client,
        istio,
        install: slot.install.clone(),
        cluster: slot.cluster.clone(),
        kubeconfig: slot.kubeconfig.clone(),
        node_image: slot.node_image.clone(),
        kubernetes,
    })
}

/// Executes one infrastructure step of the plan.
async fn execute(step: &Step, client: Option<&kube::Client>) -> Result<(), String> {
    match step {
        Step::CheckDocker => {
            crate::prereq::check_docker(&crate::prereq::DockerEndpoint::from_env())
                .map_err(|m| crate::prereq::describe(&[m]))
        }
        Step::UseKind { path } => {
            let kind = Kind { path: path.clone() };
            let version = kind.version().await?;
            eprintln!("egress: {version}");
            let _ = KIND.set(kind);
            Ok(())
        }
        Step::DownloadKind {
            url,
            checksum_url,
            dest,
        } => {
            let path = download::fetch_verified(url, checksum_url, Payload::Binary, dest).await?;
            let _ = KIND.set(Kind { path });
            Ok(())
        }
        Step::ResolveLatestIstio => Ok(()),
        Step::UseIstioctl { path } => command::run_async(Command {
            argv: vec![
                path.display().to_string(),
                "version".into(),
                "--remote=false".into(),
            ],
            timeout: Duration::from_secs(30),
            what: "istioctl version".into(),
        })
        .await?
        .checked()
        .map(|_| ()),
        Step::DownloadIstioctl {
            url,
            checksum_url,
            dest,
            ..
        } => download::fetch_verified(url, checksum_url, Payload::TarGz("istioctl"), dest)
            .await
            .map(|_| ()),
        Step::PullImage { image } => cluster::ensure_image(image).await,
        Step::Command { argv, timeout_secs } => {
            let what = argv
                .iter()
                .skip(1)
                .take(2)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            if argv.get(1).is_some_and(|a| a == "create")
                && let (Some(kind), Some(name), Some(kc)) = (
                    kind_binary(),
                    flag(argv, "--name"),
                    flag(argv, "--kubeconfig"),
                )
            {
                kind.create(
                    &name,
                    std::path::Path::new(&kc),
                    flag(argv, "--image").as_deref(),
                )
                .await?;
                return Ok(());
            }
            command::run_async(Command {
                argv: argv.clone(),
                timeout: Duration::from_secs(*timeout_secs),
                what,
            })
            .await?
            .checked()
            .map(|_| ())
        }
        Step::CheckExistingIstio { .. } => {
            let client = client.ok_or("no kube client")?;
            for name in ["istiod", "istio-egressgateway"] {
                k8s::wait_deployment(client, "istio-system", name, Duration::from_secs(30))
                    .await
                    .map_err(|e| format!("the current cluster has no ready {name}: {e}; install Istio with an egress gateway first"))?;
            }
            Ok(())
        }
        Step::WaitReady {
            namespace,
            kind,
            name,
            timeout_secs,
        } => {
            let client = client.ok_or("no kube client")?;
            let timeout = Duration::from_secs(*timeout_secs);
            let took = match *kind {
                "Deployment" => k8s::wait_deployment(client, namespace, name, timeout).await?,
                _ => k8s::wait_pod(client, namespace, name, false, timeout).await?,
            };
            eprintln!(
                "egress: {kind} {namespace}/{name} ready after {:.1}s",
                took.as_secs_f64()
            );
            Ok(())
        }
        other => Err(format!("not an infrastructure step: {other}")),
    }
}

/// The value after `name` in an argv.
fn flag(argv: &[String], name: &str) -> Option<String> {
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1))
        .cloned()
}

/// `docker rm -f` of a container this run started (Ctrl-C: the runtime is going away).
async fn remove_container(name: &str) {
    let _ = command::run_async(Command {
        argv: vec!["docker".into(), "rm".into(), "-f".into(), name.into()],
        timeout: Duration::from_secs(60),
        what: format!("removing container {name}"),
    })
    .await;
}

/// Removes every cluster this process created (Ctrl-C).
async fn remove_created() {
    let Some(kind) = kind_binary() else { return };
    let clusters: Vec<(String, PathBuf)> = created().clone();
    for (name, kubeconfig) in clusters {
        if let Err(e) = kind.delete(&name, &kubeconfig).await {
            eprintln!("egress: could not remove {name}: {e}; run `egress prune`");
        }
    }
}

/// Whether Ctrl-C arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Upstream containers a killed run left (labelled by the harness), removed.
pub async fn prune_upstreams() -> Result<Vec<String>, String> {
    let label = format!("label={}={}", upstream::LABEL.0, upstream::LABEL.1);
    let listed = command::run_async(Command {
        argv: ["docker", "ps", "-aq", "--filter", &label]
            .map(String::from)
            .to_vec(),
        timeout: Duration::from_secs(60),
        what: "listing upstream containers".into(),
    })
    .await?
    .checked()?;
    let ids: Vec<String> = listed
        .stdout
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    for id in &ids {
        remove_container(id).await;
    }
    Ok(ids)
}

/// `egress prune`: every harness cluster kind knows, removed, with a throwaway
/// kubeconfig under the cache so the user's is not touched.
pub async fn prune(kind: &Kind, cache_dir: &std::path::Path) -> Result<Vec<String>, String> {
    let names = kind.harness_clusters().await?;
    for name in &names {
        let kubeconfig = plan::kubeconfig_path(cache_dir, name);
        kind.delete(name, &kubeconfig).await?;
        let _ = kubeconfig.parent().map(std::fs::remove_dir_all);
    }
    Ok(names)
}

/// The kind to prune with: on PATH, or the one the harness downloaded.
pub fn kind_for_prune(options: &PlanOptions) -> Option<Kind> {
    options.kind.clone().map(|path| Kind { path }).or_else(|| {
        let cached = plan::cached_kind_path(&options.cache_dir);
        cached.is_file().then_some(Kind { path: cached })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ClusterMode;
    use crate::suite::Suite;

    fn options(cluster: ClusterMode) -> PlanOptions {
        PlanOptions {
            istio: IstioRelease::parse_list("1.22.1,1.30.3").unwrap(),
            istioctl: None,
            cluster,
            keep: Keep::Never,
            node_image: None,
            kind: Some("/usr/bin/kind".into()),
            cache_dir: "/cache".into(),
            platform: crate::plan::Platform {
                os: "linux",
                arch: "amd64",
            },
            deadline_secs: 60,
            upstream: UpstreamMode::Local,
            keep_objects: false,
        }
    }

    #[test]
    fn each_slot_runs_its_own_planned_setup_and_teardown() {
        let ws = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let plan = plan::build(&all, &ws, &options(ClusterMode::Kind)).unwrap();
        for slot in &plan.slots {
            let (setup, teardown) = slot_steps(&plan, slot);
            let name = slot.cluster.clone().unwrap();
            let commands: Vec<String> = setup
                .iter()
                .filter_map(|s| match s {
                    Step::Command { argv, .. } => Some(argv[1..3].join(" ")),
                    _ => None,
                })
                .collect();
            assert_eq!(
                commands,
                vec!["create cluster", "load docker-image", "install -y"],
                "{name}"
            );
            assert!(
                setup
                    .iter()
                    .all(|s| !matches!(s, Step::Request { .. } | Step::CreateNamespace { .. }))
            );
            match teardown {
                Some(Step::Command { argv, .. }) => {
                    assert_eq!(
                        argv[1..5],
                        [
                            "delete".to_owned(),
                            "cluster".into(),
                            "--name".into(),
                            name.clone()
                        ]
                    );
                }
                other => panic!("{name}: teardown {other:?}"),
            }
        }
    }

    #[test]
    fn an_existing_cluster_is_only_checked() {
        let ws = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&["gateway-http".into()]).unwrap();
        let plan = plan::build(
            &all,
            &ws,
            &PlanOptions {
                istio: IstioRelease::parse_list("1.30.3").unwrap(),
                ..options(ClusterMode::Existing)
            },
        )
        .unwrap();
        let (setup, teardown) = slot_steps(&plan, &plan.slots[0]);
        assert!(
            matches!(setup.as_slice(), [Step::CheckExistingIstio { .. }]),
            "{setup:?}"
        );
        assert!(teardown.is_none());
    }

    #[test]
    fn flags_are_read_from_argv() {
        let argv: Vec<String> = [
            "kind",
            "create",
            "cluster",
            "--name",
            "egc-x",
            "--kubeconfig",
            "/k",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(flag(&argv, "--name").as_deref(), Some("egc-x"));
        assert_eq!(flag(&argv, "--image"), None);
    }
}
