//! A simulated kind + Istio + Docker world behind the harness's three seams, for
//! the project's own tests (`cargo test -- --cluster simulated`). It is never
//! shipped and never evidence of Istio's behaviour.
//!
//! It simulates what the engine depends on — clusters, namespaces, objects, pods
//! with sidecars, Deployments becoming ready, curl by exec, access-log lines, config
//! dumps that hold a scenario's hosts until its objects are deleted — and the
//! per-version behaviour the engine must survive. Its data plane does not route:
//! exec answers from a recording (a shipped one, or a synthesized one under
//! `tests/sim/recordings/`), adapted to the run (namespace, attempt id).
//! `EGRESS_SIMULATED_FAULTS` makes it misbehave ([`Fault`]).

mod data;
mod faults;
mod gateway_api;
mod host;
mod identity;
mod kube;
#[cfg(test)]
mod shapes;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use egress_harness::conformance::Simulation;
use egress_harness::scenario::Scenario;
use egress_harness::seams::Seams;
use egress_harness::suite::Workspace;

pub use faults::{Fault, Faults};

/// One simulated kind cluster.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub node_image: Option<String>,
    /// Installed Istio: version and install profile.
    pub istio: Option<(semver::Version, String)>,
    /// Whether the install runs ztunnel (`profile: ambient`, or an overlay enabling
    /// components.ztunnel).
    pub ztunnel: bool,
    /// The mesh config istiod reads (ConfigMap istio-system/istio, key mesh).
    pub mesh_config: Option<String>,
    /// istiod's environment from the install (`values.pilot.env`).
    pub istiod_env: BTreeMap<String, String>,
    /// Made outside the run (`--cluster existing`): the run must leave it as found.
    pub existing: bool,
    pub namespaces: BTreeMap<String, Namespace>,
    /// CustomResourceDefinitions applied, by name.
    pub crds: BTreeMap<String, serde_json::Value>,
    /// The CRDs as istiod read them: at its start, and each one that first appeared
    /// while it ran; a CRD replaced later is not read again until it restarts (istio/istio
    /// pkg/kube/kclient/crdwatcher.go runs a kind's callbacks once, then deletes them).
    pub istiod_crds: BTreeMap<String, serde_json::Value>,
    /// Scenario hosts the proxies still hold after their ServiceEntry went, with the
    /// number of config-dump reads left before they are forgotten.
    pub lingering: BTreeMap<String, u32>,
    /// Access-log lines per (namespace, pod): when visible, when written, the line.
    pub logs: BTreeMap<(String, String), Vec<LogLine>>,
    /// Envoy counters per (namespace, pod): each line a proxy logs counts one
    /// upstream connection of its cluster (`cluster.<name>.upstream_cx_total`).
    pub stats: BTreeMap<(String, String), BTreeMap<String, i64>>,
}

/// One access-log line of a simulated proxy.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub visible: tokio::time::Instant,
    pub written: k8s_openapi::jiff::Timestamp,
    pub text: String,
}

#[derive(Debug, Clone, Default)]
pub struct Namespace {
    pub labels: BTreeMap<String, String>,
    /// (kind, name) → object body.
    pub objects: BTreeMap<(String, String), serde_json::Value>,
}

/// Everything the simulation holds.
#[derive(Debug, Default)]
pub struct World {
    pub clusters: BTreeMap<String, Cluster>,
    /// Rollout restarts, in order: (cluster, namespace/name); kept after the cluster.
    pub restarts: Vec<(String, String)>,
    /// Docker containers by name, with their network aliases.
    pub containers: BTreeMap<String, Vec<String>>,
    pub images: BTreeSet<String>,
    /// Binaries `cargo build` made on the simulated host.
    pub built: BTreeSet<String>,
    /// Downloads: destination → the version in the URL.
    pub downloads: BTreeMap<PathBuf, String>,
    /// Kube API calls so far (for `apiserver-503`).
    pub api_calls: u32,
    /// Watches started so far (for `watch-gone-410`).
    pub watches: u32,
    /// Requests answered so far (every 100th is trace-sampled).
    pub requests: u64,
    pub interrupted: bool,
}

/// Something a test runs when the simulation reaches a moment of the run.
type Hook = Box<dyn FnOnce() + Send>;

/// The simulation: a world, its faults, the recordings its data plane answers from.
#[derive(Clone)]
pub struct Sim {
    world: Arc<Mutex<World>>,
    faults: Faults,
    data: Arc<data::Answers>,
    /// Called at the first request a client sends (a test's interrupt in mid-scenario:
    /// on a virtual clock, no wall-clock moment falls inside a run).
    on_first_request: Arc<Mutex<Option<Hook>>>,
}

impl Sim {
    pub fn new(ws: &Workspace, scenarios: &[Scenario], faults: Faults) -> Result<Self, String> {
        Ok(Self {
            world: Arc::new(Mutex::new(World::default())),
            faults,
            data: Arc::new(data::Answers::load(ws, scenarios)?),
            on_first_request: Arc::default(),
        })
    }

    /// Runs `hook` when the first request is sent.
    pub fn on_first_request(&self, hook: impl FnOnce() + Send + 'static) {
        *self
            .on_first_request
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Box::new(hook));
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn seams(&self) -> Seams {
        Seams {
            kube: Arc::new(kube::Connector(self.clone())),
            host: Arc::new(host::Programs(self.clone())),
            docker: Arc::new(host::Docker(self.clone())),
        }
    }

    /// Every cluster, namespace, object and container still held.
    pub fn snapshot(&self) -> serde_json::Value {
        let world = self.world();
        let clusters: serde_json::Map<String, serde_json::Value> = world
            .clusters
            .iter()
            .map(|(name, c)| {
                let namespaces: serde_json::Map<String, serde_json::Value> = c
                    .namespaces
                    .iter()
                    .map(|(ns, n)| {
                        let objects: Vec<String> =
                            n.objects.keys().map(|(k, o)| format!("{k}/{o}")).collect();
                        (ns.clone(), serde_json::json!(objects))
                    })
                    .collect();
                (
                    name.clone(),
                    serde_json::json!({
                        "istio": c.istio.as_ref().map(|(v, p)| format!("{v} ({p})")),
                        "namespaces": namespaces,
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "note": "what the SIMULATED cluster still held at the end of the run",
            "clusters": clusters,
            "containers": world.containers.keys().collect::<Vec<_>>(),
        })
    }

    /// Whether nothing is left: no cluster of the run's, no container.
    pub fn is_empty(&self) -> bool {
        let world = self.world();
        world.clusters.values().all(|c| c.existing) && world.containers.is_empty()
    }

    /// A cluster made outside the run, as `--cluster existing` finds the current kube
    /// context: Istio `version` with the mesh config `mesh` (YAML), and istio-system
    /// holding a Secret of the user's called `client-credential`.
    pub fn add_existing_cluster(&self, version: semver::Version, profile: &str, mesh: &str) {
        let mut cluster = Cluster {
            istio: Some((version, profile.to_owned())),
            ztunnel: profile == "ambient",
            mesh_config: Some(mesh.to_owned()),
            existing: true,
            ..Cluster::default()
        };
        let system = cluster.namespaces.entry("istio-system".into()).or_default();
        system.objects.insert(
            ("Secret".into(), USERS_SECRET.into()),
            serde_json::json!({"kind": "Secret", "metadata": {"name": USERS_SECRET}}),
        );
        self.world()
            .clusters
            .insert(EXISTING_CLUSTER.into(), cluster);
    }
}

/// A runtime on a virtual clock: tokio's paused time, which jumps to the next timer
/// whenever every task waits. Every seam of the simulation answers from memory, so a
/// run's deadlines, backoffs and propagation waits cost no wall time; the step log's
/// durations are in this clock. Not for runs with a real seam (Docker, a process): a
/// wait on one would let the clock jump past its deadline.
pub fn virtual_clock_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
}

/// The simulated current kube context of `--cluster existing`.
pub const EXISTING_CLUSTER: &str = "existing (current context)";
/// A Secret the user owns in the existing cluster; the run must not touch it.
pub const USERS_SECRET: &str = "client-credential";

/// The [`Simulation`] the conformance binary is given; faults from the environment.
#[derive(Default)]
pub struct FromEnv {
    sim: Mutex<Option<Sim>>,
}

impl Simulation for FromEnv {
    fn seams(&self, ws: &Workspace, scenarios: &[Scenario]) -> Result<Seams, String> {
        let faults = Faults::from_env()?;
        let sim = Sim::new(ws, scenarios, faults)?;
        let seams = sim.seams();
        *self.sim.lock().unwrap_or_else(|e| e.into_inner()) = Some(sim);
        Ok(seams)
    }

    fn snapshot(&self) -> serde_json::Value {
        match &*self.sim.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(sim) => sim.snapshot(),
            None => serde_json::json!({"clusters": {}, "containers": []}),
        }
    }

    fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        virtual_clock_runtime()
    }
}
