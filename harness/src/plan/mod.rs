//! The plan of a live run: clusters, one per (Istio version, install profile), shared by
//! the scenarios that need them, and the typed steps that set them up, run every
//! scenario and clean up. The engine executes these step values and nothing else.

pub mod conflicts;
pub mod gateway_api;
mod step;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use semver::Version;
use serde::Serialize;

pub use step::{Condition, PlannedStep, Proxies, Step, Workload, shell_words};

use crate::mesh_config::MeshConfig;
use crate::model::{ATTEMPT_ID, Timeouts, mesh};
pub use crate::model::{CLUSTER_PREFIX, CONSISTENT_PASSES, ClusterMode, Keep, UpstreamMode};
use crate::scenario::Scenario;
use crate::suite::Workspace;
use crate::versions;

/// The install profile every cluster gets unless `--mesh-wide-profiles`.
pub const BASE_PROFILE: &str = "registry-only";

/// How an install profile is had inside one namespace of a [`BASE_PROFILE`] mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceProfile {
    pub profile: &'static str,
    /// Applied in the scenario's namespace before the client (manifests/…).
    pub manifests: &'static [&'static str],
    /// The client manifest is `client/<client>-<suffix>.yaml` instead.
    pub client_suffix: Option<&'static str>,
}

/// Profiles Istio lets a namespace or a workload have on their own: outbound policy
/// through a namespace Sidecar, metadata-exchange headers through the pod's
/// proxy.istio.io/config (the manifests cite the Istio source of each).
pub const NAMESPACE_PROFILES: &[NamespaceProfile] = &[
    NamespaceProfile {
        profile: BASE_PROFILE,
        manifests: &[],
        client_suffix: None,
    },
    NamespaceProfile {
        profile: "allow-any",
        manifests: &["namespace-profiles/allow-any.yaml"],
        client_suffix: None,
    },
    NamespaceProfile {
        profile: "in-mesh-headers",
        manifests: &[],
        client_suffix: Some("in-mesh-headers"),
    },
];

/// The profile the cluster of `install` is installed with.
pub fn cluster_profile(install: &str, mesh_wide: bool) -> &str {
    if !mesh_wide && NAMESPACE_PROFILES.iter().any(|p| p.profile == install) {
        BASE_PROFILE
    } else {
        install
    }
}

/// The install profile of ambient mode (manifests/install/ambient.yaml): no sidecars
/// and no egress gateway; ztunnel on every node, waypoints as the scenarios declare.
pub const AMBIENT_PROFILE: &str = "ambient";

/// Whether ambient scenarios run beside the sidecar ones on the version's one install
/// (the base profile, its egress gateway, plus overlays/ambient.yaml). Checked from
/// 1.25, the first release the ambient scenarios run on: istio/istio
/// manifests/profiles/ambient.yaml is the same file at 1.25.0 through 1.31.0-rc.0 (the
/// newest tag read), and
/// Istio's own ambient tests install it over the egress gateway of their defaults
/// (tests/integration/iop-ambient-test-defaults.yaml on
/// iop-integration-test-defaults.yaml) and run sidecar pods beside ambient ones
/// (tests/integration/ambient/main_test.go). Earlier releases keep a cluster of their own.
fn ambient_beside_sidecars(istio: &IstioRelease) -> bool {
    match istio {
        IstioRelease::Exact(v) => (v.major, v.minor) >= (1, 25) && (v.major, v.minor) <= (1, 31),
        // Resolved before a run; a printed plan shows the newest, which is checked.
        IstioRelease::Latest => true,
        IstioRelease::Installed => false,
    }
}

/// Ambient's data plane over the base profile (see [`ambient_beside_sidecars`]).
pub const AMBIENT_OVERLAY: &str = "overlays/ambient.yaml";

/// Images the Istio install uses, under `docker.io/istio` for releases.
const ISTIO_IMAGES: &[&str] = &["pilot", "proxyv2"];
/// What ambient adds: the CNI node agent and ztunnel (istio/istio
/// manifests/charts/istio-cni, manifests/charts/ztunnel).
const AMBIENT_IMAGES: &[&str] = &["install-cni", "ztunnel"];
/// The ambient profile sets `global.variant: distroless` (istio/istio
/// manifests/helm-profiles/ambient.yaml, 1.24.0 through 1.31.0-rc.0), so every image
/// of that install is `<tag>-distroless`: istiod's, the sidecars' and gateways'
/// (`{{with (.Values.variant | default .Values.global.variant)}}-{{.}}{{end}}` in
/// istio-discovery's deployment.yaml and istio-egress's), install-cni's ("istio-tag"
/// in its _helpers.tpl) and ztunnel's (globals flattened in its zzz_profile.yaml).
const AMBIENT_IMAGE_VARIANT: &str = "-distroless";
/// Attempts of `kind create cluster` before it is an error.
const CREATE_ATTEMPTS: u32 = 3;
/// Secrets with the run's certificates (see `upstream::secrets`).
const SECRET_NAMES: [&str; 3] = [
    crate::upstream::CLIENT_SECRET,
    crate::upstream::CA_SECRET,
    crate::upstream::FOREIGN_CA_SECRET,
];

/// `--istio`: an exact release, the newest stable one, or (`--cluster existing`) the
/// one the current cluster runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IstioRelease {
    Exact(Version),
    Latest,
    Installed,
}

impl IstioRelease {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "latest" => Ok(Self::Latest),
            "installed" => Ok(Self::Installed),
            other => match versions::newest_patch_of(other) {
                // A minor alone (`1.22`) is its newest patch the harness knows; said
                // once on the terminal, so a report's version is never a surprise.
                Some(newest) => {
                    eprintln!(
                        "egress: --istio {other} is Istio {newest}, the newest {other} patch this harness knows"
                    );
                    Ok(Self::Exact(newest))
                }
                None => versions::parse_version(other).map(Self::Exact),
            },
        }
    }

    /// Parses a comma-separated list, keeping order and dropping repeats.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let release = Self::parse(part)?;
            if !out.contains(&release) {
                out.push(release);
            }
        }
        if out.is_empty() {
            return Err("no Istio version given".into());
        }
        Ok(out)
    }
}

impl Serialize for IstioRelease {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for IstioRelease {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Exact(v) => v.fmt(f),
            Self::Latest => f.write_str("latest"),
            Self::Installed => f.write_str("installed"),
        }
    }
}

/// The operating system and CPU as Istio's and kind's release assets name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub arch: &'static str,
}

impl Platform {
    pub fn current() -> Self {
        let os = if cfg!(target_os = "macos") {
            "osx"
        } else {
            "linux"
        };
        let arch = if cfg!(target_arch = "aarch64") {
            "arm64"
        } else {
            "amd64"
        };
        Self { os, arch }
    }
}

/// Everything that shapes the plan besides the scenarios.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub istio: Vec<IstioRelease>,
    pub istioctl: Option<PathBuf>,
    pub cluster: ClusterMode,
    pub keep: Keep,
    pub node_image: Option<String>,
    /// kind on PATH, or `None` to download the pinned release.
    pub kind: Option<PathBuf>,
    pub cache_dir: PathBuf,
    pub platform: Platform,
    pub upstream: UpstreamMode,
    /// Leave each scenario's namespace and objects in place (bug reproduction).
    pub keep_objects: bool,
    /// Every deadline of the run (`--deadline` sets `timeouts.request`).
    pub timeouts: Timeouts,
    /// Clusters set up or alive at once.
    pub parallel_clusters: usize,
    /// Scenarios run at once on one cluster, where their claims do not meet
    /// (`conflicts`).
    pub parallel_scenarios: usize,
    /// The run's id, where known: it names the report folder and the upstream container.
    pub run_id: Option<String>,
    /// `reports/` of the workspace.
    pub reports_dir: PathBuf,
    /// Another image for the upstream (`image:tag` or `image@sha256:…`), e.g. a mirror.
    pub upstream_image: Option<String>,
    /// `--cluster existing`: the mesh config read from the cluster; scenarios whose
    /// install profile it does not match are skipped.
    pub installed_mesh: Option<MeshConfig>,
    /// One cluster per install profile, each installed mesh-wide as the article does,
    /// instead of one per Istio version with profiles set up per namespace.
    pub mesh_wide_profiles: bool,
}

impl PlanOptions {
    /// Defaults for this machine: the default Istio, kind from PATH, the user's cache.
    pub fn for_this_host() -> Self {
        Self {
            istio: vec![
                IstioRelease::parse(versions::DEFAULT_ISTIO).unwrap_or(IstioRelease::Latest),
            ],
            istioctl: None,
            cluster: ClusterMode::Kind,
            keep: Keep::Never,
            node_image: None,
            kind: find_on_path("kind"),
            cache_dir: cache_dir(),
            platform: Platform::current(),
            upstream: UpstreamMode::Local,
            keep_objects: false,
            timeouts: Timeouts::default(),
            parallel_clusters: 2,
            parallel_scenarios: 1,
            run_id: None,
            reports_dir: PathBuf::from("reports"),
            upstream_image: None,
            installed_mesh: None,
            mesh_wide_profiles: false,
        }
    }

    fn run_id(&self) -> &str {
        self.run_id.as_deref().unwrap_or("<run-id>")
    }

    /// `reports/<run-id>`.
    pub fn run_dir(&self) -> PathBuf {
        self.reports_dir.join(self.run_id())
    }
}

/// `$XDG_CACHE_HOME/egress-conformance`, else `~/.cache/egress-conformance`.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("egress-conformance")
}

/// The first executable called `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// One cluster and the scenarios it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slot {
    pub istio: IstioRelease,
    pub install: String,
    /// kind cluster name; `None` in existing-cluster mode.
    pub cluster: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    pub node_image: Option<String>,
    /// Ambient's data plane installed beside the sidecars, for the ambient scenarios
    /// among them (manifests/install/overlays/ambient.yaml).
    pub ambient: bool,
    pub scenarios: Vec<String>,
}

impl Slot {
    /// The install as reports name it: the profile, `+ambient` where ambient's data
    /// plane runs beside the sidecars.
    pub fn install_label(&self) -> String {
        if self.ambient {
            format!("{}+{AMBIENT_PROFILE}", self.install)
        } else {
            self.install.clone()
        }
    }

    /// Whether ztunnel and the CNI agent run on the cluster.
    pub fn runs_ambient(&self) -> bool {
        self.ambient || self.install == AMBIENT_PROFILE
    }
}

/// A scenario that does not run on a version, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    pub scenario: String,
    pub istio: IstioRelease,
    pub reason: String,
}

/// One scenario's steps inside its cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioPlan {
    pub scenario: String,
    /// Scenarios of one group run at once (`--parallel-scenarios`); groups run in order.
    pub group: usize,
    pub steps: Vec<PlannedStep>,
}

impl SlotPlan {
    /// The scenarios' names in their groups, in the order the groups run.
    pub fn scenario_groups(&self) -> Vec<Vec<&str>> {
        self.scenarios
            .chunk_by(|a, b| a.group == b.group)
            .map(|g| g.iter().map(|s| s.scenario.as_str()).collect())
            .collect()
    }
}

/// One cluster's steps: set up, its scenarios one after another, torn down.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlotPlan {
    pub slot: Slot,
    pub setup: Vec<PlannedStep>,
    pub scenarios: Vec<ScenarioPlan>,
    pub teardown: Vec<PlannedStep>,
}

/// The whole live run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub skipped: Vec<Skip>,
    pub host: Vec<PlannedStep>,
    /// Once per run, by the first cluster ready (kind's network exists then).
    pub upstream: Option<PlannedStep>,
    pub slots: Vec<SlotPlan>,
    pub end: Vec<PlannedStep>,
    pub timeouts: Timeouts,
    pub parallel_clusters: usize,
    pub parallel_scenarios: usize,
}

/// The kind cluster name for a version and install profile.
pub fn cluster_name(istio: &IstioRelease, install: &str) -> String {
    let version = istio.to_string().replace(['.', '+'], "-");
    format!("{CLUSTER_PREFIX}{version}-{install}")
}

/// Which clusters the scenarios need on each version, and what is skipped.
fn slots(
    scenarios: &[&Scenario],
    ws: &Workspace,
    options: &PlanOptions,
) -> Result<(Vec<Slot>, Vec<Skip>), String> {
    let mut slots: Vec<Slot> = Vec::new();
    let mut skipped = Vec::new();
    // The current cluster's mesh against each install profile: one that differs
    // would judge the scenario on a mesh it was not written for.
    let mut profile_mismatch = BTreeMap::new();
    if let Some(mesh) = &options.installed_mesh {
        for s in scenarios {
            let install = &cluster_profile(&s.install.value, options.mesh_wide_profiles).to_owned();
            if !profile_mismatch.contains_key(install) {
                let file = ws
                    .manifests_dir()
                    .join("install")
                    .join(format!("{install}.yaml"));
                let wanted = MeshConfig::of_profile(&file)?;
                profile_mismatch.insert(install.clone(), mesh.mismatch(&wanted));
            }
        }
    }
    for istio in &options.istio {
        for s in scenarios {
            if let IstioRelease::Exact(v) = istio {
                if !s.applies_to(v) {
                    skipped.push(Skip {
                        scenario: s.name().into(),
                        istio: istio.clone(),
                        reason: format!("applies to Istio {}", s.istio),
                    });
                    continue;
                }
                if let Some(k) = s
                    .known_issue_for(v)
                    .filter(|k| k.mode == crate::scenario::KnownIssueMode::Skip)
                {
                    skipped.push(Skip {
                        scenario: s.name().into(),
                        istio: istio.clone(),
                        reason: format!("known issue {}", k.url.value),
                    });
                    continue;
                }
            }
            if let (UpstreamMode::Local, Some(why)) = (options.upstream, &s.upstream.internet_only)
            {
                skipped.push(Skip {
                    scenario: s.name().into(),
                    istio: istio.clone(),
                    reason: format!("runs only with --upstream internet: {why}"),
                });
                continue;
            }
            let install = cluster_profile(&s.install.value, options.mesh_wide_profiles).to_owned();
            if let Some(Some(why)) = profile_mismatch.get(&install) {
                skipped.push(Skip {
                    scenario: s.name().into(),
                    istio: istio.clone(),
                    reason: format!(
                        "the current cluster's mesh is not install profile {install}: {why}"
                    ),
                });
                continue;
            }
            if install == AMBIENT_PROFILE && !options.cluster.makes_clusters() {
                // Its mesh config reads like the sidecar profile's; what tells ambient
                // apart (ztunnel running) is not read from a current cluster yet.
                skipped.push(Skip {
                    scenario: s.name().into(),
                    istio: istio.clone(),
                    reason: "ambient scenarios run on a cluster the run makes; the current cluster's data plane mode is not checked".into(),
                });
                continue;
            }
            if let Some(c) = s.gateway_api_crds.as_ref().map(|c| &c.value) {
                gateway_api::release(c)
                    .map_err(|e| format!("{}: gateway_api_crds: {e}", s.name()))?;
                if !options.cluster.makes_clusters() {
                    skipped.push(Skip {
                        scenario: s.name().into(),
                        istio: istio.clone(),
                        reason: format!(
                            "needs Gateway API CRDs {c} installed by the run; a cluster the run did not make keeps its own"
                        ),
                    });
                    continue;
                }
                // Swapping CRDs deletes every object of their kinds, the kept ones too.
                if options.keep_objects && swapped_crds(s, istio)?.is_some() {
                    skipped.push(Skip {
                        scenario: s.name().into(),
                        istio: istio.clone(),
                        reason: format!(
                            "swaps in Gateway API CRDs {c}, which would delete the Gateway API objects --keep-objects keeps for the scenarios before it"
                        ),
                    });
                    continue;
                }
            }
            // Ambient beside sidecars on the version's one install, where that is checked.
            let ambient_beside = install == AMBIENT_PROFILE
                && !options.mesh_wide_profiles
                && ambient_beside_sidecars(istio);
            let install = if ambient_beside {
                BASE_PROFILE.to_owned()
            } else {
                install
            };
            if let Some(slot) = slots
                .iter_mut()
                .find(|slot| slot.istio == *istio && slot.install == install)
            {
                slot.scenarios.push(s.name().into());
                slot.ambient |= ambient_beside;
                continue;
            }
            slots.push(Slot {
                istio: istio.clone(),
                install,
                ambient: ambient_beside,
                cluster: None,
                kubeconfig: None,
                node_image: None,
                scenarios: vec![s.name().into()],
            });
        }
    }
    // Scenarios with Gateway API CRDs of their own run last on their cluster, each
    // swapping them in and back (`crd_swap`), so no other scenario sees them.
    for slot in &mut slots {
        slot.scenarios.sort_by_key(|name| {
            scenarios
                .iter()
                .find(|s| s.name() == name)
                .is_some_and(|s| s.gateway_api_crds.is_some())
        });
    }
    if options.cluster.makes_clusters() {
        for slot in &mut slots {
            let name = cluster_name(&slot.istio, &slot.install_label().replace('+', "-"));
            slot.kubeconfig = Some(kubeconfig_path(&options.cache_dir, &name));
            slot.cluster = Some(name);
            slot.node_image = match (&options.node_image, &slot.istio) {
                (Some(image), _) => Some(image.clone()),
                (None, IstioRelease::Exact(v)) => Some(versions::node_image(v)?.to_owned()),
                (None, IstioRelease::Latest | IstioRelease::Installed) => None,
            };
        }
    }
    Ok((slots, skipped))
}

/// Numbers steps as they are added, in plan order.
struct Numbered(usize);

impl Numbered {
    fn at(
        &mut self,
        cluster: Option<&str>,
        scenario: Option<&str>,
        condition: Option<Condition>,
        step: Step,
    ) -> PlannedStep {
        self.0 += 1;
        PlannedStep {
            index: self.0,
            cluster: cluster.map(str::to_owned),
            scenario: scenario.map(str::to_owned),
            condition,
            step,
        }
    }
}

/// Plans a run of `scenarios` (in suite order) on every version in `options`.
pub fn build(
    scenarios: &[&Scenario],
    ws: &Workspace,
    options: &PlanOptions,
) -> Result<Plan, String> {
    let (slots, skipped) = slots(scenarios, ws, options)?;
    let upstream_hosts = crate::upstream::hosts_for(scenarios.iter().copied());
    let upstream_ports = crate::upstream::ports_for(scenarios.iter().copied())?;
    // Ports of kinds echo-basic lacks need the project's echo program, built here,
    // unless the user names an image.
    let echo_build = match (&options.upstream_image, options.upstream) {
        (None, UpstreamMode::Local) if !upstream_ports.is_empty() && !slots.is_empty() => Some(
            crate::upstream::image::project_echo(&crate::upstream::image::source_root()).map_err(
                |e| {
                    format!(
                        "{}: their upstream ports need the project's echo program, but {e}",
                        scenarios
                            .iter()
                            .filter(|s| !s.upstream.ports.is_empty())
                            .map(|s| s.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            )?,
        ),
        _ => None,
    };
    let upstream_image = options
        .upstream_image
        .clone()
        .or_else(|| echo_build.as_ref().map(|e| e.image.clone()));
    let t = &options.timeouts;
    let mut n = Numbered(0);
    let mut host = Vec::new();
    // Docker serves kind and the local upstream; an existing cluster checked against
    // the internet needs neither.
    if options.cluster.makes_clusters() || options.upstream == UpstreamMode::Local {
        host.push(n.at(None, None, None, Step::CheckDocker));
    }
    let kind_bin = match (options.cluster.makes_clusters(), &options.kind) {
        (false, _) => None,
        (true, Some(path)) => {
            host.push(n.at(
                None,
                None,
                None,
                Step::UseKind {
                    argv: vec![path.display().to_string(), "version".into()],
                    timeout_secs: t.tool_version.as_secs(),
                },
            ));
            Some(path.clone())
        }
        (true, None) => {
            let (url, checksum_url, dest) = kind_download(options);
            host.push(n.at(
                None,
                None,
                None,
                Step::DownloadKind {
                    url,
                    checksum_url,
                    dest: dest.clone(),
                    timeout_secs: t.download.as_secs(),
                },
            ));
            Some(dest)
        }
    };
    if options.istio.contains(&IstioRelease::Latest) {
        host.push(n.at(None, None, None, Step::ResolveLatestIstio));
    }
    if options.istio.contains(&IstioRelease::Installed) {
        host.push(n.at(None, None, None, Step::ReadInstalledMesh));
    }
    let mut istioctl_for = Vec::new();
    // istioctl installs Istio: an existing cluster has it already.
    let installs = slots
        .iter()
        .filter(|_| options.cluster.makes_clusters())
        .map(|s| &s.istio)
        .collect::<BTreeSet<_>>();
    for istio in installs {
        let path = match &options.istioctl {
            Some(path) => {
                host.push(n.at(
                    None,
                    None,
                    None,
                    Step::UseIstioctl {
                        version: istio.to_string(),
                        argv: vec![
                            path.display().to_string(),
                            "version".into(),
                            "--remote=false".into(),
                        ],
                        timeout_secs: t.tool_version.as_secs(),
                    },
                ));
                path.clone()
            }
            None => {
                let (url, checksum_url, dest) = istioctl_download(istio, options);
                host.push(n.at(
                    None,
                    None,
                    None,
                    Step::DownloadIstioctl {
                        version: istio.to_string(),
                        url,
                        checksum_url,
                        dest: dest.clone(),
                        timeout_secs: t.download.as_secs(),
                    },
                ));
                dest
            }
        };
        istioctl_for.push((istio.clone(), path));
    }
    let client_images = workload_images(scenarios, ws, options)?;
    if options.cluster.makes_clusters() {
        let mut pulled = BTreeSet::new();
        for slot in &slots {
            for image in slot_images(slot, &client_images, scenarios) {
                if pulled.insert(image.clone()) {
                    host.push(n.at(None, None, None, pull_step(image, t)));
                }
            }
        }
    }

    if options.upstream == UpstreamMode::Local && !slots.is_empty() {
        // Pulled (or built) up front, so a missing image fails before any cluster is made.
        match &echo_build {
            Some(echo) => host.push(n.at(
                None,
                None,
                None,
                Step::BuildImage {
                    image: echo.image.clone(),
                    argvs: vec![echo.build.clone(), echo.import.clone()],
                    timeout_secs: t.image_pull.as_secs(),
                },
            )),
            None => {
                let image = crate::upstream::definition(
                    options.run_id(),
                    upstream_image.as_deref(),
                    &upstream_hosts,
                    &upstream_ports,
                )
                .image_ref();
                host.push(n.at(None, None, None, pull_step(image, t)));
            }
        }
    }
    let mut upstream = None;
    let mut slot_plans = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        let cluster = slot.cluster.as_deref();
        let istioctl = istioctl_for
            .iter()
            .find(|(v, _)| *v == slot.istio)
            .map(|(_, p)| p.display().to_string())
            .unwrap_or_default();
        let mut setup = Vec::new();
        let mut teardown = Vec::new();
        match (&slot.cluster, &kind_bin, &slot.kubeconfig) {
            (Some(name), Some(kind), Some(kubeconfig)) => {
                let kind = kind.display().to_string();
                let kube = kubeconfig.display().to_string();
                let mut create = vec![
                    kind.clone(),
                    "create".into(),
                    "cluster".into(),
                    "--name".into(),
                    name.clone(),
                    "--kubeconfig".into(),
                    kube.clone(),
                ];
                if let Some(image) = &slot.node_image {
                    create.extend(["--image".into(), image.clone()]);
                }
                setup.push(n.at(
                    cluster,
                    None,
                    Some(Condition::UnlessReused),
                    Step::CreateCluster {
                        name: name.clone(),
                        kubeconfig: kubeconfig.clone(),
                        node_image: slot.node_image.clone(),
                        argv: create,
                        timeout_secs: t.cluster_create.as_secs(),
                        attempts: CREATE_ATTEMPTS,
                    },
                ));
                setup.push(n.at(
                    cluster,
                    None,
                    None,
                    Step::WaitReady {
                        namespace: "kube-system".into(),
                        workload: Workload::Deployment,
                        name: "coredns".into(),
                        timeout_secs: t.coredns_ready.as_secs(),
                    },
                ));
                let images = slot_images(slot, &client_images, scenarios);
                let mut load = vec![
                    kind.clone(),
                    "load".into(),
                    "docker-image".into(),
                    "--name".into(),
                    name.clone(),
                ];
                load.extend(images.iter().cloned());
                setup.push(n.at(
                    cluster,
                    None,
                    Some(Condition::UnlessReused),
                    Step::LoadImages {
                        cluster: name.clone(),
                        images,
                        argv: load,
                        timeout_secs: t.image_load.as_secs(),
                    },
                ));
                let objects = slot_objects(slot, scenarios, ws, options)?;
                if gateway_api::uses_gateway_api(&objects) {
                    let release = release_crds(&slot.istio)?;
                    setup.push(n.at(
                        cluster,
                        None,
                        None,
                        Step::InstallGatewayApiCrds {
                            version: release.version.into(),
                            files: gateway_api::crd_files(release, &options.cache_dir),
                            crds: gateway_api::crd_names(release),
                            timeout_secs: t.gateway_api_crds.as_secs(),
                        },
                    ));
                }
                let install_dir = ws.manifests_dir().join("install");
                let install_file = install_dir.join(format!("{}.yaml", slot.install));
                let mut install = vec![
                    istioctl,
                    "install".into(),
                    "-y".into(),
                    "-f".into(),
                    install_file.display().to_string(),
                ];
                // istioctl overlays its `-f` files left to right.
                if slot.ambient {
                    install.extend([
                        "-f".into(),
                        install_dir.join(AMBIENT_OVERLAY).display().to_string(),
                    ]);
                }
                if let IstioRelease::Exact(v) = &slot.istio
                    && gateway_api::needs_alpha_flag(v, &objects)
                {
                    install.extend([
                        "-f".into(),
                        install_dir
                            .join(gateway_api::ALPHA_FLAG_OVERLAY)
                            .display()
                            .to_string(),
                    ]);
                }
                install.extend([
                    "--kubeconfig".into(),
                    kube.clone(),
                    "--readiness-timeout".into(),
                    format!("{}s", t.istio_readiness.as_secs()),
                ]);
                setup.push(n.at(
                    cluster,
                    None,
                    None,
                    Step::InstallIstio {
                        version: slot.istio.to_string(),
                        profile: slot.install.clone(),
                        argv: install,
                        timeout_secs: t.istio_install.as_secs(),
                    },
                ));
                // Ambient has no egress gateway; istioctl install has waited for the
                // ztunnel and CNI DaemonSets (istio/istio operator/pkg/install/wait.go).
                let deployments: &[&str] = if slot.install == AMBIENT_PROFILE {
                    &[mesh::ISTIOD_DEPLOYMENT]
                } else {
                    &[mesh::ISTIOD_DEPLOYMENT, mesh::GATEWAY_DEPLOYMENT]
                };
                for deployment in deployments {
                    setup.push(n.at(
                        cluster,
                        None,
                        None,
                        Step::WaitReady {
                            namespace: mesh::ISTIO_NAMESPACE.into(),
                            workload: Workload::Deployment,
                            name: (*deployment).into(),
                            timeout_secs: t.istio_ready.as_secs(),
                        },
                    ));
                }
                teardown.push(PlannedStep {
                    index: 0,
                    cluster: slot.cluster.clone(),
                    scenario: None,
                    condition: Some(Condition::UnlessKept(options.keep)),
                    step: Step::DeleteCluster {
                        name: name.clone(),
                        kubeconfig: kubeconfig.clone(),
                        argv: vec![
                            kind,
                            "delete".into(),
                            "cluster".into(),
                            "--name".into(),
                            name.clone(),
                            "--kubeconfig".into(),
                            kube,
                        ],
                        timeout_secs: t.cluster_delete.as_secs(),
                    },
                });
            }
            _ => setup.push(n.at(
                cluster,
                None,
                None,
                Step::CheckExistingIstio {
                    install: slot.install.clone(),
                    timeout_secs: t.existing_istio_ready.as_secs(),
                },
            )),
        }
        if options.upstream == UpstreamMode::Local {
            if i == 0 {
                upstream = Some(n.at(
                    None,
                    None,
                    Some(Condition::OncePerRun),
                    Step::StartUpstream {
                        server: crate::upstream::definition(
                            options.run_id(),
                            upstream_image.as_deref(),
                            &upstream_hosts,
                            &upstream_ports,
                        ),
                        timeout_secs: t.upstream_start.as_secs(),
                    },
                ));
            }
            setup.push(n.at(cluster, None, None, secrets_step(mesh::ISTIO_NAMESPACE)));
            if !options.cluster.makes_clusters() {
                // A cluster the run did not make is left as it was found.
                teardown.push(PlannedStep {
                    index: 0,
                    cluster: slot.cluster.clone(),
                    scenario: None,
                    condition: Some(Condition::Always),
                    step: Step::DeleteSecrets {
                        namespace: mesh::ISTIO_NAMESPACE.into(),
                        names: SECRET_NAMES.map(String::from).to_vec(),
                    },
                });
            }
        }
        let mut scenario_plans = Vec::new();
        let in_slot: Vec<&Scenario> = slot
            .scenarios
            .iter()
            .filter_map(|name| scenarios.iter().find(|s| s.name() == name).copied())
            .collect();
        let claimed = in_slot
            .iter()
            .map(|s| scenario_objects(s, ws, options).map(|o| conflicts::claims(s, &o)))
            .collect::<Result<Vec<_>, String>>()?;
        for (group, members) in conflicts::groups(&claimed, options.parallel_scenarios)
            .into_iter()
            .enumerate()
        {
            for s in members.into_iter().map(|i| in_slot[i]) {
                let name = s.name();
                let steps = scenario_steps(s, &slot.istio, &slot.install, ws, options)?
                    .into_iter()
                    .map(|(condition, step)| n.at(cluster, Some(name), condition, step))
                    .collect();
                scenario_plans.push(ScenarioPlan {
                    scenario: name.to_owned(),
                    group,
                    steps,
                });
            }
        }
        for step in &mut teardown {
            n.0 += 1;
            step.index = n.0;
        }
        slot_plans.push(SlotPlan {
            slot: slot.clone(),
            setup,
            scenarios: scenario_plans,
            teardown,
        });
    }
    let mut end = Vec::new();
    if let Some(PlannedStep {
        step: Step::StartUpstream { server, .. },
        ..
    }) = &upstream
    {
        end.push(n.at(
            None,
            None,
            Some(Condition::Always),
            Step::StopUpstream {
                container: server.container_name.clone(),
                timeout_secs: t.docker_call.as_secs(),
            },
        ));
    }
    Ok(Plan {
        skipped,
        host,
        upstream,
        slots: slot_plans,
        end,
        timeouts: options.timeouts.clone(),
        parallel_clusters: options.parallel_clusters.max(1),
        parallel_scenarios: options.parallel_scenarios.max(1),
    })
}

/// Every object a scenario applies, at once or before a later request.
fn scenario_objects(
    s: &Scenario,
    ws: &Workspace,
    options: &PlanOptions,
) -> Result<Vec<crate::manifest::Object>, String> {
    let mut objects = Vec::new();
    for m in s
        .manifests_for(options.upstream)
        .into_iter()
        .chain(s.applied_later(options.upstream))
    {
        objects.extend(
            crate::manifest::parse_file_in(&ws.manifests_dir().join(&m.value), s.name())
                .map_err(|p| p.to_string())?,
        );
    }
    Ok(objects)
}

/// Every object the slot's scenarios apply.
fn slot_objects(
    slot: &Slot,
    scenarios: &[&Scenario],
    ws: &Workspace,
    options: &PlanOptions,
) -> Result<Vec<crate::manifest::Object>, String> {
    let mut objects = Vec::new();
    for s in scenarios
        .iter()
        .filter(|s| slot.scenarios.iter().any(|n| n == s.name()))
    {
        objects.extend(scenario_objects(s, ws, options)?);
    }
    Ok(objects)
}

/// The Gateway API CRDs a release's cluster gets (gateway_api.rs BY_ISTIO_RELEASE).
fn release_crds(istio: &IstioRelease) -> Result<&'static gateway_api::CrdRelease, String> {
    match istio {
        IstioRelease::Exact(v) => gateway_api::crds_for(v),
        // A run resolves these first; a printed plan shows the newest.
        IstioRelease::Latest | IstioRelease::Installed => gateway_api::RELEASES
            .last()
            .ok_or_else(|| "no Gateway API release is pinned".to_owned()),
    }
}

/// The scenario's own Gateway API CRDs and its release's, where they differ.
fn swapped_crds(
    s: &Scenario,
    istio: &IstioRelease,
) -> Result<
    Option<(
        &'static gateway_api::CrdRelease,
        &'static gateway_api::CrdRelease,
    )>,
    String,
> {
    let Some(wanted) = &s.gateway_api_crds else {
        return Ok(None);
    };
    let own = gateway_api::release(&wanted.value)
        .map_err(|e| format!("{}: gateway_api_crds: {e}", s.name()))?;
    let release = release_crds(istio)?;
    Ok((own.version != release.version).then_some((own, release)))
}

/// Steps before a scenario and steps after it.
type CrdSwap = (Vec<Step>, Vec<Step>);

/// For a scenario whose `gateway_api_crds` differ from its release's: the steps that
/// swap them in before it (and restart istiod, which reads CRDs once) and those that
/// put the release's back after it. The scenario runs last and alone on its cluster
/// (its claim meets every other), so no other scenario sees the swap.
fn crd_swap(
    s: &Scenario,
    istio: &IstioRelease,
    options: &PlanOptions,
) -> Result<Option<CrdSwap>, String> {
    let Some((own, release)) = swapped_crds(s, istio)? else {
        return Ok(None);
    };
    let t = &options.timeouts;
    let swap =
        |from: &gateway_api::CrdRelease, to: &gateway_api::CrdRelease| Step::SwapGatewayApiCrds {
            from: from.version.into(),
            to: to.version.into(),
            remove: gateway_api::crd_names(from),
            files: gateway_api::crd_files(to, &options.cache_dir),
            crds: gateway_api::crd_names(to),
            timeout_secs: t.gateway_api_crds.as_secs(),
        };
    let restart = Step::RestartDeployment {
        namespace: mesh::ISTIO_NAMESPACE.into(),
        name: mesh::ISTIOD_DEPLOYMENT.into(),
        timeout_secs: t.istio_ready.as_secs(),
    };
    Ok(Some((
        vec![swap(release, own), restart.clone()],
        vec![swap(own, release), restart],
    )))
}

/// `docker pull`, kept when the image is already on the host.
fn pull_step(image: String, t: &Timeouts) -> Step {
    Step::PullImage {
        argv: vec!["docker".into(), "pull".into(), image.clone()],
        image,
        timeout_secs: t.image_pull.as_secs(),
    }
}

fn secrets_step(namespace: &str) -> Step {
    Step::ApplySecrets {
        namespace: namespace.into(),
        names: SECRET_NAMES.map(String::from).to_vec(),
    }
}

/// The client manifest of a scenario, relative to `manifests/`.
pub fn client_manifest(s: &Scenario) -> String {
    format!("client/{}.yaml", s.client.value)
}

/// The steps of one scenario inside its cluster. A manifest that does not parse is
/// an error here, so the plan never omits what it would apply.
pub fn scenario_steps(
    s: &Scenario,
    istio: &IstioRelease,
    cluster_install: &str,
    ws: &Workspace,
    options: &PlanOptions,
) -> Result<Vec<(Option<Condition>, Step)>, String> {
    let t = &options.timeouts;
    let ns = s.name().to_owned();
    let manifests = ws.manifests_dir();
    // The scenario's profile inside its namespace, where the cluster has another.
    let overlay = NAMESPACE_PROFILES
        .iter()
        .find(|p| p.profile == s.install.value && s.install.value != cluster_install);
    let profile_files: Vec<PathBuf> = overlay
        .map(|p| p.manifests.iter().map(|m| manifests.join(m)).collect())
        .unwrap_or_default();
    let swap = crd_swap(s, istio, options)?;
    let (swap_in, swap_back) = swap.unwrap_or_default();
    let mut steps: Vec<(Option<Condition>, Step)> =
        swap_in.into_iter().map(|step| (None, step)).collect();
    steps.push((
        None,
        Step::CreateNamespace {
            name: ns.clone(),
            labels: vec![
                // Never both labels: "sidecar injection takes precedence" (istio.io
                // content/en/docs/ambient/usage/add-workloads/index.md).
                if s.install.value == AMBIENT_PROFILE {
                    ("istio.io/dataplane-mode".into(), "ambient".into())
                } else {
                    ("istio-injection".into(), "enabled".into())
                },
                ("egress-conformance/scenario".into(), ns.clone()),
            ],
        },
    ));
    if options.upstream == UpstreamMode::Local {
        steps.push((None, secrets_step(&ns)));
    }
    for file in &profile_files {
        steps.push((
            None,
            Step::ApplyManifest {
                file: file.clone(),
                namespace: ns.clone(),
            },
        ));
    }
    let client_file = match overlay.and_then(|p| p.client_suffix) {
        Some(suffix) => {
            let file = manifests
                .join("client")
                .join(format!("{}-{suffix}.yaml", s.client.value));
            if !file.is_file() {
                return Err(format!(
                    "{}: install profile {} on a {cluster_install} cluster needs the client variant {}; add it, or run with --mesh-wide-profiles",
                    s.name(),
                    s.install.value,
                    ws.display(&file)
                ));
            }
            file
        }
        None => manifests.join(client_manifest(s)),
    };
    // Each client pod is applied and awaited; ambient injects no sidecar (ztunnel
    // carries the pod's traffic).
    // Client namespaces of their own, made after the scenario's, labelled for their
    // data plane (none: no label) and as the scenario's.
    let mut client_namespaces: Vec<String> = Vec::new();
    for c in s.clients.iter().filter(|c| c.namespace.is_some()) {
        let name = c.namespace_in(&ns);
        if client_namespaces.contains(&name) {
            continue;
        }
        let mut labels = match c.mode.unwrap_or(crate::scenario::DataPlane::Sidecar) {
            crate::scenario::DataPlane::Sidecar => {
                vec![("istio-injection".to_owned(), "enabled".to_owned())]
            }
            crate::scenario::DataPlane::Ambient => {
                vec![("istio.io/dataplane-mode".to_owned(), "ambient".to_owned())]
            }
            crate::scenario::DataPlane::None => Vec::new(),
        };
        labels.push(("egress-conformance/scenario".into(), ns.clone()));
        steps.push((
            None,
            Step::CreateNamespace {
                name: name.clone(),
                labels,
            },
        ));
        client_namespaces.push(name);
    }
    let mut client_step =
        |file: &Path, pod: &str, namespace: &str, injected: bool| -> Result<bool, String> {
            let objects = crate::manifest::parse_file_in(file, &ns).map_err(|p| p.to_string())?;
            let sidecar = crate::manifest::wants_sidecar(&objects)
                && s.install.value != AMBIENT_PROFILE
                && injected;
            steps.push((
                None,
                Step::ApplyManifest {
                    file: file.to_owned(),
                    namespace: namespace.to_owned(),
                },
            ));
            steps.push((
                None,
                Step::WaitReady {
                    namespace: namespace.to_owned(),
                    workload: Workload::Pod { sidecar },
                    name: pod.to_owned(),
                    timeout_secs: t.client_ready.as_secs(),
                },
            ));
            Ok(sidecar)
        };
    let sidecar = client_step(&client_file, mesh::CLIENT_POD, &ns, true)?;
    // The scenario's other clients, each its own pod and identity.
    let mut client_files = vec![(client_file, ns.clone())];
    let mut sidecar_clients = vec![(mesh::CLIENT_POD.to_owned(), ns.clone())];
    for c in &s.clients {
        let file = manifests
            .join("client")
            .join(format!("{}.yaml", c.manifest.value));
        let namespace = c.namespace_in(&ns);
        let injected = c.namespace.is_none()
            || c.mode.unwrap_or(crate::scenario::DataPlane::Sidecar)
                == crate::scenario::DataPlane::Sidecar;
        if client_step(&file, &c.name.value, &namespace, injected)? {
            sidecar_clients.push((c.name.value.clone(), namespace.clone()));
        }
        client_files.push((file, namespace));
    }
    let manifest_list = s.manifests_for(options.upstream);
    let later = s.applied_later(options.upstream);
    let mut objects = Vec::new();
    for m in &manifest_list {
        objects.extend(
            crate::manifest::parse_file_in(&manifests.join(&m.value), &ns)
                .map_err(|p| p.to_string())?,
        );
    }
    let mut later_objects = Vec::new();
    for m in &later {
        later_objects.extend(
            crate::manifest::parse_file_in(&manifests.join(&m.value), &ns)
                .map_err(|p| p.to_string())?,
        );
    }
    // A host a later step brings must be gone before and after the scenario too.
    let hosts = crate::evidence::config_dump::scenario_hosts(
        &objects
            .iter()
            .chain(&later_objects)
            .cloned()
            .collect::<Vec<_>>(),
    );
    let classic_gateway = Proxies::Selector {
        namespace: mesh::ISTIO_NAMESPACE.into(),
        selector: mesh::GATEWAY_SELECTOR.into(),
    };
    let deployed = gateway_api::deployed_gateways(&objects, &ns);
    // A Gateway API gateway is the scenario's own; istio-system's serves the rest.
    let gateway = deployed.first().map_or_else(
        || classic_gateway.clone(),
        gateway_api::DeployedGateway::proxies,
    );
    let mut clean_slate = vec![classic_gateway.clone()];
    if sidecar {
        clean_slate.extend(sidecar_clients.iter().map(|(pod, namespace)| Proxies::Pod {
            namespace: namespace.clone(),
            name: pod.clone(),
        }));
    }
    steps.push((
        None,
        Step::AwaitCleanConfig {
            hosts: hosts.clone(),
            proxies: clean_slate,
            timeout_secs: t.clean_config.as_secs(),
        },
    ));
    for m in &manifest_list {
        steps.push((
            None,
            Step::ApplyManifest {
                file: manifests.join(&m.value),
                namespace: ns.clone(),
            },
        ));
    }
    for g in &deployed {
        steps.push((
            None,
            Step::WaitReady {
                namespace: g.namespace.clone(),
                workload: Workload::Deployment,
                name: g.deployment.clone(),
                timeout_secs: t.gateway_deployment.as_secs(),
            },
        ));
    }
    // A scenario's own workloads (an in-mesh server, a proxy) serve before traffic.
    for d in objects.iter().filter(|o| o.kind == "Deployment") {
        steps.push((
            None,
            Step::WaitReady {
                namespace: d.namespace.clone().unwrap_or_else(|| ns.clone()),
                workload: Workload::Deployment,
                name: d.name.clone(),
                timeout_secs: t.client_ready.as_secs(),
            },
        ));
    }
    let status_targets = gateway_api::status_targets(&objects, &ns);
    if !status_targets.is_empty() {
        steps.push((
            None,
            Step::AwaitStatus {
                namespace: ns.clone(),
                objects: status_targets,
                timeout_secs: t.route_status.as_secs(),
            },
        ));
    }
    let context = crate::recording::Context {
        namespace: ns.clone(),
        client_pod: mesh::CLIENT_POD.into(),
        service_account: mesh::CLIENT_SERVICE_ACCOUNT.into(),
        upstream: Some(options.upstream.as_str().into()),
    };
    for r in &s.requests {
        for action in &r.before {
            let file = manifests.join(&s.replaced(action.file(), options.upstream).value);
            steps.push((
                None,
                match action {
                    crate::scenario::Action::Apply(_) => Step::ApplyManifest {
                        file,
                        namespace: ns.clone(),
                    },
                    crate::scenario::Action::Delete(_) => Step::DeleteObjects {
                        file,
                        namespace: ns.clone(),
                    },
                    crate::scenario::Action::Patch(p) => Step::PatchObject {
                        file,
                        namespace: ns.clone(),
                        object: p.object.value.clone(),
                        merge: p.merge.clone(),
                    },
                },
            ));
        }
        let context = crate::judge::context_for(s, r, &context);
        let url = crate::scenario::Template::parse(&r.url.value)
            .map_err(|e| format!("{}: request {} url: {e}", s.name(), r.name.value))?
            .render(&|name: &str| context.var(name));
        steps.push((
            None,
            Step::SendRequest {
                scenario: s.name().into(),
                request: r.name.value.clone(),
                namespace: context.namespace.clone(),
                pod: context.client_pod.clone(),
                container: mesh::CLIENT_CONTAINER.into(),
                argv: crate::curl::argv(r, &url, ATTEMPT_ID, &s.curl_args_for(options.upstream)),
                deadline_secs: t.request.as_secs(),
                gateway: gateway.clone(),
                ztunnel: r.expect.ztunnel_log.as_ref().map(|_| Proxies::Selector {
                    namespace: mesh::ISTIO_NAMESPACE.into(),
                    selector: mesh::ZTUNNEL_SELECTOR.into(),
                }),
            },
        ));
    }
    steps.push((
        Some(Condition::OnFailureOrAlways),
        Step::CollectEvidence {
            scenario: s.name().into(),
            namespace: ns.clone(),
            dir: options
                .run_dir()
                .join("evidence")
                .join(format!("{}@{istio}", s.name())),
            gateway,
        },
    ));
    if options.keep_objects {
        return Ok(steps);
    }
    // Deleting what is gone already is a no-op: every file is listed once.
    for (file, namespace) in later
        .iter()
        .rev()
        .chain(manifest_list.iter().rev())
        .map(|m| (manifests.join(&m.value), ns.clone()))
        .chain(client_files.into_iter().rev())
        .chain(profile_files.into_iter().rev().map(|f| (f, ns.clone())))
    {
        steps.push((
            Some(Condition::Always),
            Step::DeleteObjects { file, namespace },
        ));
    }
    for name in client_namespaces.into_iter().rev() {
        steps.push((
            Some(Condition::Always),
            Step::DeleteNamespace {
                name,
                timeout_secs: t.namespace_delete.as_secs(),
            },
        ));
    }
    steps.push((
        Some(Condition::Always),
        Step::DeleteNamespace {
            name: ns.clone(),
            timeout_secs: t.namespace_delete.as_secs(),
        },
    ));
    steps.push((
        Some(Condition::Always),
        Step::AwaitCleanConfig {
            hosts,
            proxies: vec![classic_gateway],
            timeout_secs: t.clean_config.as_secs(),
        },
    ));
    steps.extend(
        swap_back
            .into_iter()
            .map(|step| (Some(Condition::Always), step)),
    );
    Ok(steps)
}

fn kind_download(options: &PlanOptions) -> (String, String, PathBuf) {
    let asset = format!(
        "kind-{}-{}",
        if options.platform.os == "osx" {
            "darwin"
        } else {
            "linux"
        },
        options.platform.arch
    );
    let url = format!(
        "https://github.com/kubernetes-sigs/kind/releases/download/{}/{asset}",
        versions::KIND_VERSION
    );
    (
        url.clone(),
        format!("{url}.sha256sum"),
        cached_kind_path(&options.cache_dir),
    )
}

/// The harness's own kubeconfig of a kind cluster it made.
pub fn kubeconfig_path(cache_dir: &std::path::Path, cluster: &str) -> PathBuf {
    cache_dir.join("clusters").join(cluster).join("kubeconfig")
}

/// The file beside a cluster's kubeconfig that says a run of this harness made it.
pub const OWNER_FILE: &str = "owner";

/// Writes the owner file of a cluster this run just created: `run=<id> pid=<pid>`.
pub fn mark_cluster(cache_dir: &Path, name: &str, run_id: &str) -> Result<(), String> {
    let kubeconfig = kubeconfig_path(cache_dir, name);
    let dir = kubeconfig
        .parent()
        .ok_or_else(|| format!("{}: no folder", kubeconfig.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join(OWNER_FILE);
    std::fs::write(&file, format!("run={run_id} pid={}\n", std::process::id()))
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// Removes the owner file of `name` if this process wrote it (a create that kind
/// refused because someone else's cluster has the name).
pub fn unmark_cluster_if_ours(cache_dir: &Path, name: &str) {
    if owner_pid(cache_dir, name) == Some(std::process::id())
        && let Some(dir) = kubeconfig_path(cache_dir, name).parent()
    {
        let _ = std::fs::remove_file(dir.join(OWNER_FILE));
    }
}

/// The process an owner file names, or `None` when the file is not there or not ours.
pub fn owner_pid(cache_dir: &Path, name: &str) -> Option<u32> {
    let kubeconfig = kubeconfig_path(cache_dir, name);
    let text = std::fs::read_to_string(kubeconfig.parent()?.join(OWNER_FILE)).ok()?;
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
}

/// Where the pinned kind release is kept once downloaded.
pub fn cached_kind_path(cache_dir: &std::path::Path) -> PathBuf {
    cache_dir
        .join("kind")
        .join(versions::KIND_VERSION)
        .join("kind")
}

/// The istioctl archive Istio publishes for a platform, as istio/istio
/// release/downloadIstioCtl.sh asks for it: `istioctl-${VERSION}-${OSEXT}-${ARCH}.tar.gz`
/// on Linux and Apple silicon, the arch-less `istioctl-${VERSION}-osx.tar.gz` on Intel
/// macOS (istio/release-builder pkg/build/archive.go publishes that legacy name beside
/// `osx-amd64`).
pub fn istioctl_asset(version: &str, platform: &Platform) -> String {
    match (platform.os, platform.arch) {
        ("osx", "amd64") => format!("istioctl-{version}-osx.tar.gz"),
        (os, arch) => format!("istioctl-{version}-{os}-{arch}.tar.gz"),
    }
}

/// The istioctl release asset and its `.sha256` (release-builder's `util.CreateSha`).
fn istioctl_download(istio: &IstioRelease, options: &PlanOptions) -> (String, String, PathBuf) {
    let version = istio.to_string();
    let asset = istioctl_asset(&version, &options.platform);
    let url = format!("https://github.com/istio/istio/releases/download/{version}/{asset}");
    let dest = options
        .cache_dir
        .join("istioctl")
        .join(&version)
        .join("istioctl");
    (url.clone(), format!("{url}.sha256"), dest)
}

/// Images of the client pods the scenarios use (read from their manifests).
/// The images clients and scenario workloads run, keyed by the client manifest or
/// `scenario/<name>`: loaded into the node like Istio's, so no pull waits in a test.
fn workload_images(
    scenarios: &[&Scenario],
    ws: &Workspace,
    options: &PlanOptions,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for s in scenarios {
        for m in s
            .manifests_for(options.upstream)
            .into_iter()
            .chain(s.applied_later(options.upstream))
        {
            let objects =
                crate::manifest::parse_file_in(&ws.manifests_dir().join(&m.value), s.name())
                    .map_err(|p| p.to_string())?;
            for o in &objects {
                for c in crate::manifest::containers(o) {
                    if let Some(image) = c["image"].as_str() {
                        out.push((format!("scenario/{}", s.name()), image.to_owned()));
                    }
                }
            }
        }
    }
    for client in scenarios
        .iter()
        .flat_map(|s| s.client_manifest_names().map(str::to_owned))
        .collect::<BTreeSet<_>>()
    {
        let path = ws
            .manifests_dir()
            .join("client")
            .join(format!("{client}.yaml"));
        let objects = crate::manifest::parse_file(&path).map_err(|p| p.to_string())?;
        for o in objects {
            for c in crate::manifest::containers(&o) {
                if let Some(image) = c["image"].as_str() {
                    out.push((client.clone(), image.to_owned()));
                }
            }
        }
    }
    Ok(out)
}

fn slot_images(
    slot: &Slot,
    client_images: &[(String, String)],
    scenarios: &[&Scenario],
) -> Vec<String> {
    let (ambient, variant) = if slot.runs_ambient() {
        (AMBIENT_IMAGES, AMBIENT_IMAGE_VARIANT)
    } else {
        (&[][..], "")
    };
    let mut images: Vec<String> = ISTIO_IMAGES
        .iter()
        .chain(ambient)
        .map(|i| format!("docker.io/istio/{i}:{}{variant}", slot.istio))
        .collect();
    let in_slot: Vec<&&Scenario> = scenarios
        .iter()
        .filter(|s| slot.scenarios.iter().any(|n| n == s.name()))
        .collect();
    let clients: BTreeSet<String> = in_slot
        .iter()
        .flat_map(|s| s.client_manifest_names().map(str::to_owned))
        .chain(in_slot.iter().map(|s| format!("scenario/{}", s.name())))
        .collect();
    for (client, image) in client_images {
        if clients.contains(client) && !images.contains(image) {
            images.push(image.clone());
        }
    }
    images
}

impl Plan {
    /// Every step in plan order.
    pub fn steps(&self) -> Vec<&PlannedStep> {
        let mut out: Vec<&PlannedStep> = self.host.iter().collect();
        for (i, slot) in self.slots.iter().enumerate() {
            out.extend(slot.setup.iter());
            if i == 0 {
                out.extend(self.upstream.iter());
            }
            for s in &slot.scenarios {
                out.extend(s.steps.iter());
            }
            out.extend(slot.teardown.iter());
        }
        out.extend(self.end.iter());
        out.sort_by_key(|p| p.index);
        out
    }

    /// Why a cluster is not shared with the others of its Istio version, if it is not.
    pub fn why_a_cluster_of_its_own(&self, slot: &Slot) -> Option<String> {
        // The version's main cluster: the one most of its scenarios run on.
        let main = self
            .slots
            .iter()
            .map(|s| &s.slot)
            .filter(|s| s.istio == slot.istio)
            .max_by_key(|s| s.scenarios.len())?;
        if slot.install == AMBIENT_PROFILE && !ambient_beside_sidecars(&slot.istio) {
            return Some(
                "ambient beside sidecars on one install is checked from Istio 1.25 through 1.31 (manifests/install/overlays/ambient.yaml); on this release ambient gets its own istioctl install".into(),
            );
        }
        (main.install != slot.install).then(|| {
            format!(
                "install profile {} is another istioctl install than {} (manifests/install/); one Istio install per cluster",
                slot.install, main.install
            )
        })
    }

    /// One line per step, as `egress plan` prints it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for slot in self.slots.iter().map(|s| &s.slot) {
            let target = slot.cluster.as_deref().unwrap_or("current kube context");
            out.push_str(&format!(
                "# cluster {target}: Istio {}, install {}, node image {}, {} scenario(s)\n",
                slot.istio,
                slot.install_label(),
                slot.node_image.as_deref().unwrap_or("-"),
                slot.scenarios.len()
            ));
            if let Some(why) = self.why_a_cluster_of_its_own(slot) {
                out.push_str(&format!("#   a cluster of its own: {why}\n"));
            }
        }
        if self.parallel_scenarios > 1 {
            for slot in &self.slots {
                let target = slot
                    .slot
                    .cluster
                    .as_deref()
                    .unwrap_or("current kube context");
                let groups: Vec<String> = slot
                    .scenario_groups()
                    .iter()
                    .map(|names| format!("[{}]", names.join(", ")))
                    .collect();
                out.push_str(&format!(
                    "# on {target}, at most {} scenario(s) at once, in {} group(s) one after another (scenarios whose claims meet run apart: a host, a port taken by address, a gateway port, the gateway's TCP lines, a mesh-wide object, a CRD swap): {}\n",
                    self.parallel_scenarios,
                    groups.len(),
                    groups.join(" then ")
                ));
            }
        }
        for skip in &self.skipped {
            out.push_str(&format!(
                "# skipped {} on Istio {}: {}\n",
                skip.scenario, skip.istio, skip.reason
            ));
        }
        out.push_str(&format!(
            "# at most {} cluster(s) set up or alive at once; each deleted after its last scenario\n",
            self.parallel_clusters
        ));
        out.push_str(&format!("# timeouts: {}\n", self.timeouts));
        for step in self.steps() {
            out.push_str(&format!("{:>3}. {step}\n", step.index));
        }
        out
    }

    /// The JSON form of the plan (`egress plan --format json`): the steps in order.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "slots": self.slots.iter().map(|s| &s.slot).collect::<Vec<_>>(),
            "skipped": self.skipped,
            "timeouts": self.timeouts,
            "parallel_clusters": self.parallel_clusters,
            "parallel_scenarios": self.parallel_scenarios,
            // Per cluster, its scenarios in groups run one after another; a group's at once.
            "scenario_groups": self.slots.iter().map(|s| serde_json::json!({
                "cluster": s.slot.cluster,
                "groups": s.scenario_groups(),
            })).collect::<Vec<_>>(),
            "steps": self.steps(),
        })
    }

    /// The slots alone.
    pub fn slot_list(&self) -> Vec<&Slot> {
        self.slots.iter().map(|s| &s.slot).collect()
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Suite;

    fn ws() -> Workspace {
        Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
    }

    #[test]
    fn kept_objects_skip_a_crd_swap_that_would_delete_them() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let mut o = options("1.30.3");
        o.keep_objects = true;
        let plan = build(&all, &ws, &o).unwrap();
        let skip = plan
            .skipped
            .iter()
            .find(|s| s.scenario == "istio-io-17394-tlsroute-crds-before-v1-5")
            .expect("skipped");
        assert!(skip.reason.contains("--keep-objects"), "{}", skip.reason);
        assert!(
            !plan
                .steps()
                .iter()
                .any(|p| p.step.kind() == "swap_gateway_api_crds")
        );
    }

    #[test]
    fn service_entries_taking_ports_by_address_run_apart_from_what_they_catch() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let o = options("1.30.3");
        let claims_of = |name: &str| {
            let s = suite
                .scenarios
                .iter()
                .find(|s| s.name() == name)
                .unwrap_or_else(|| panic!("{name} in the suite"));
            conflicts::claims(s, &scenario_objects(s, &ws, &o).unwrap())
        };
        // 172.16.0.0/12:443 takes every request to a local upstream's port 443.
        let cidr_443 = claims_of("istio-51747-second-address-ignored");
        let why = conflicts::why_apart(&cidr_443, &claims_of("sidecar-wildcard-host"));
        assert!(
            why.as_deref().is_some_and(|w| w.contains("172.16.0.0/12")),
            "{why:?}"
        );
        // httpbin.org:80 as TCP without addresses: a TCP proxy on port 80 of every address.
        assert!(
            claims_of("sidecar-tcp-service-entry")
                .contains(&conflicts::Claim::PortByAddress(80, None))
        );
        assert!(claims_of("external-name-service").contains(&conflicts::Claim::RequestPort(80)));
        let overlapping = claims_of("istio-54990-overlapping-addresses");
        assert!(
            conflicts::why_apart(&overlapping, &claims_of("istio-52944-single-ip-and-cidr"))
                .is_some()
        );
    }

    #[test]
    fn istioctl_assets_are_named_as_istio_publishes_them() {
        // release-builder's archive names; Intel macOS has no arch suffix.
        let table = [
            ("linux", "amd64", "istioctl-1.30.5-linux-amd64.tar.gz"),
            ("linux", "arm64", "istioctl-1.30.5-linux-arm64.tar.gz"),
            ("osx", "amd64", "istioctl-1.30.5-osx.tar.gz"),
            ("osx", "arm64", "istioctl-1.30.5-osx-arm64.tar.gz"),
        ];
        for (os, arch, asset) in table {
            assert_eq!(istioctl_asset("1.30.5", &Platform { os, arch }), asset);
            let mut o = options("1.30.5");
            o.platform = Platform { os, arch };
            let (url, sha, _) = istioctl_download(&IstioRelease::parse("1.30.5").unwrap(), &o);
            assert_eq!(
                url,
                format!("https://github.com/istio/istio/releases/download/1.30.5/{asset}")
            );
            assert_eq!(sha, format!("{url}.sha256"));
        }
    }

    fn options(istio: &str) -> PlanOptions {
        PlanOptions {
            istio: IstioRelease::parse_list(istio).unwrap(),
            istioctl: None,
            cluster: ClusterMode::Kind,
            keep: Keep::Never,
            node_image: None,
            kind: Some("/usr/bin/kind".into()),
            cache_dir: "/cache".into(),
            platform: Platform {
                os: "linux",
                arch: "amd64",
            },
            upstream: UpstreamMode::Local,
            keep_objects: false,
            timeouts: Timeouts::default(),
            parallel_clusters: 2,
            parallel_scenarios: 1,
            run_id: None,
            reports_dir: "reports".into(),
            upstream_image: None,
            installed_mesh: None,
            mesh_wide_profiles: false,
        }
    }

    fn commands(plan: &Plan) -> Vec<String> {
        plan.steps()
            .iter()
            .filter(|p| !matches!(p.step, Step::SendRequest { .. }))
            .filter_map(|p| p.step.argv().map(|a| a.join(" ")))
            .filter(|c| {
                !c.ends_with(" version")
                    && !c.contains("--remote=false")
                    && !c.starts_with("docker pull")
            })
            .collect()
    }

    #[test]
    fn egress_plan_says_why_a_cluster_is_not_shared_with_its_version_s_main_one() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let plan = build(&all, &ws, &options("1.30.3")).unwrap();
        let why: Vec<(String, Option<String>)> = plan
            .slots
            .iter()
            .map(|s| {
                (
                    s.slot.install_label(),
                    plan.why_a_cluster_of_its_own(&s.slot),
                )
            })
            .collect();
        let main = why
            .iter()
            .filter(|(install, reason)| install == "registry-only+ambient" && reason.is_none())
            .count();
        assert_eq!(main, 1, "{why:?}");
        assert_eq!(why.len(), 1, "one cluster for 1.30.3: {why:?}");
        // Before 1.25 ambient beside sidecars is not checked: a cluster of its own.
        let mut ambient = all
            .iter()
            .find(|s| s.install.value == AMBIENT_PROFILE)
            .map(|s| (*s).clone())
            .unwrap();
        ambient.istio = crate::scenario::Range::parse(">=1.24").unwrap();
        let sidecar = all.iter().find(|s| s.name() == "gateway-http").unwrap();
        let plan = build(&[&ambient, sidecar], &ws, &options("1.24.6")).unwrap();
        let own: Vec<String> = plan
            .slots
            .iter()
            .filter_map(|s| plan.why_a_cluster_of_its_own(&s.slot))
            .collect();
        assert_eq!(own.len(), 1, "{own:?}");
        assert!(own[0].contains("checked from Istio 1.25"), "{own:?}");
        assert!(plan.render().contains("#   a cluster of its own: "));
    }

    #[test]
    fn scenarios_that_share_a_host_are_grouped_apart_and_the_plan_shows_the_groups() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let mut opts = options("1.30.3");
        opts.parallel_scenarios = 4;
        let plan = build(&all, &ws, &opts).unwrap();
        let main = plan.slots.iter().max_by_key(|s| s.scenarios.len()).unwrap();
        let groups = main.scenario_groups();
        let group_of = |name: &str| groups.iter().position(|g| g.contains(&name)).unwrap();
        // Both route httpbin.org through the egress gateway.
        assert_ne!(
            group_of("gateway-http"),
            group_of("gateway-tls-origination")
        );
        // db.example.com and mq.example.com meet nothing else in their group.
        assert_eq!(
            group_of("sidecar-tcp-echo-database"),
            group_of("sidecar-tls-over-tcp-echo")
        );
        assert!(groups.iter().all(|g| g.len() <= 4));
        assert!(groups.len() < main.scenarios.len(), "{groups:?}");
        // Step numbers follow the order the groups run in.
        let firsts: Vec<usize> = main.scenarios.iter().map(|s| s.steps[0].index).collect();
        assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{firsts:?}");
        assert!(plan.render().contains("scenario(s) at once, in "));
        // One at a time (the default): one group per scenario, and no such line.
        let serial = build(&all, &ws, &options("1.30.3")).unwrap();
        assert!(
            serial
                .slots
                .iter()
                .all(|s| s.scenario_groups().iter().all(|g| g.len() == 1))
        );
        assert!(!serial.render().contains("at once, in "));
    }

    #[test]
    fn argv_of_every_external_command_is_pinned() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let s = suite.select(&["gateway-http".into()]).unwrap();
        let plan = build(&s, &ws, &options("1.22.1")).unwrap();
        let root = ws.manifests_dir().display().to_string();
        let kc = "/cache/clusters/egc-1-22-1-registry-only/kubeconfig";
        assert_eq!(
            commands(&plan),
            vec![
                format!("/usr/bin/kind create cluster --name egc-1-22-1-registry-only --kubeconfig {kc} --image kindest/node:v1.30.13@sha256:397209b3d947d154f6641f2d0ce8d473732bd91c87d9575ade99049aa33cd648"),
                "/usr/bin/kind load docker-image --name egc-1-22-1-registry-only docker.io/istio/pilot:1.22.1 docker.io/istio/proxyv2:1.22.1 curlimages/curl:8.11.1".to_owned(),
                format!("/cache/istioctl/1.22.1/istioctl install -y -f {root}/install/registry-only.yaml --kubeconfig {kc} --readiness-timeout 300s"),
                format!("/usr/bin/kind delete cluster --name egc-1-22-1-registry-only --kubeconfig {kc}"),
            ]
        );
        let download = plan.steps().iter().find_map(|p| match &p.step {
            Step::DownloadIstioctl {
                url, checksum_url, ..
            } => Some((url.clone(), checksum_url.clone())),
            _ => None,
        });
        assert_eq!(
            download,
            Some((
                "https://github.com/istio/istio/releases/download/1.22.1/istioctl-1.22.1-linux-amd64.tar.gz".into(),
                "https://github.com/istio/istio/releases/download/1.22.1/istioctl-1.22.1-linux-amd64.tar.gz.sha256".into()
            ))
        );
    }

    #[test]
    fn an_existing_cluster_is_not_given_ambient_scenarios() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let ambient = suite.select(&["ambient".into()]).unwrap();
        let mesh = MeshConfig::parse(
            "accessLogFile: /dev/stdout\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}\n",
        )
        .unwrap();
        let plan = build(
            &ambient,
            &ws,
            &PlanOptions {
                cluster: ClusterMode::Existing,
                installed_mesh: Some(mesh),
                ..options("1.30.3")
            },
        )
        .unwrap();
        assert!(plan.slots.is_empty());
        assert_eq!(plan.skipped.len(), 2);
        assert!(
            plan.skipped
                .iter()
                .all(|s| s.reason.contains("a cluster the run makes"))
        );
    }

    #[test]
    fn one_cluster_per_version_with_profiles_in_the_namespaces() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let plan = build(&all, &ws, &options("1.22.1,1.30.3")).unwrap();
        // A scenario asking for other Gateway API CRDs runs last on its version's
        // cluster, alone, swapping them in and back (istiod restarted each time).
        let on_130 = plan.slots.iter().find(|s| s.slot.ambient).unwrap();
        let last = on_130.scenarios.last().unwrap();
        assert_eq!(last.scenario, "istio-io-17394-tlsroute-crds-before-v1-5");
        let groups = on_130.scenario_groups();
        assert_eq!(groups.last().map(Vec::len), Some(1));
        let kinds: Vec<&str> = last.steps.iter().map(|p| p.step.kind()).collect();
        assert_eq!(
            kinds[..3],
            [
                "swap_gateway_api_crds",
                "restart_deployment",
                "create_namespace"
            ]
        );
        assert_eq!(
            kinds[kinds.len() - 2..],
            ["swap_gateway_api_crds", "restart_deployment"]
        );
        let swaps: Vec<String> = last
            .steps
            .iter()
            .filter_map(|p| match &p.step {
                Step::SwapGatewayApiCrds {
                    from,
                    to,
                    remove,
                    crds,
                    ..
                } => {
                    assert!(
                        remove
                            .iter()
                            .all(|c| c.ends_with(".gateway.networking.k8s.io"))
                    );
                    assert!(!crds.is_empty());
                    Some(format!("{from}->{to} {:?}", p.condition))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            swaps,
            ["v1.5.1->v1.4.1 None", "v1.4.1->v1.5.1 Some(Always)"]
        );
        let other = on_130
            .scenarios
            .iter()
            .find(|p| p.scenario == "gateway-http")
            .unwrap();
        assert!(
            !other
                .steps
                .iter()
                .any(|p| p.step.kind() == "swap_gateway_api_crds")
        );
        // Ambient runs beside the sidecars from 1.25: its data plane is overlaid on the
        // version's one install, and its namespaces are labelled for ztunnel.
        let ambient: Vec<&str> = plan
            .slots
            .iter()
            .filter(|s| s.slot.ambient)
            .filter_map(|s| s.slot.cluster.as_deref())
            .collect();
        assert_eq!(ambient, ["egc-1-30-3-registry-only-ambient"]);
        assert_eq!(plan.slots.len(), 2, "one per version");
        assert!(plan.slots.iter().all(|s| s.slot.install == BASE_PROFILE));
        let shared = plan.slots.iter().find(|s| s.slot.ambient).unwrap();
        let install = shared
            .setup
            .iter()
            .find_map(|p| match &p.step {
                Step::InstallIstio { argv, .. } => Some(argv.join(" ")),
                _ => None,
            })
            .unwrap();
        assert!(
            install.contains("install/registry-only.yaml -f "),
            "{install}"
        );
        assert!(
            install.contains("install/overlays/ambient.yaml"),
            "{install}"
        );
        let loaded = shared
            .setup
            .iter()
            .find_map(|p| match &p.step {
                Step::LoadImages { images, .. } => Some(images.clone()),
                _ => None,
            })
            .unwrap();
        for image in ["pilot", "proxyv2", "install-cni", "ztunnel"] {
            let tag = format!("docker.io/istio/{image}:1.30.3-distroless");
            assert!(loaded.contains(&tag), "{loaded:?}");
        }
        let labels_of = |name: &str| {
            shared
                .scenarios
                .iter()
                .find(|p| p.scenario == name)
                .and_then(|p| {
                    p.steps.iter().find_map(|p| match &p.step {
                        Step::CreateNamespace { labels, .. } => Some(labels.clone()),
                        _ => None,
                    })
                })
                .unwrap()
        };
        let mode = |name: &str| labels_of(name)[0].clone();
        assert_eq!(
            mode("ambient-waypoint-authz"),
            ("istio.io/dataplane-mode".to_owned(), "ambient".to_owned())
        );
        assert_eq!(
            mode("gateway-http"),
            ("istio-injection".to_owned(), "enabled".to_owned())
        );
        assert!(
            !labels_of("ambient-waypoint-authz")
                .iter()
                .any(|(k, _)| k == "istio-injection")
        );
        let steps_of = |name: &str| {
            plan.slots[0]
                .scenarios
                .iter()
                .find(|p| p.scenario == name)
                .map(|p| p.steps.clone())
                .unwrap_or_default()
        };
        let applies = |name: &str, file: &str| {
            steps_of(name).iter().any(
                |p| matches!(&p.step, Step::ApplyManifest { file: f, .. } if f.ends_with(file)),
            )
        };
        // allow-any: a namespace Sidecar, applied before the client and deleted after it.
        assert!(applies(
            "external-name-service",
            "namespace-profiles/allow-any.yaml"
        ));
        let order: Vec<String> = steps_of("external-name-service")
            .iter()
            .filter_map(|p| match &p.step {
                Step::ApplyManifest { file, .. } | Step::DeleteObjects { file, .. } => {
                    Some(format!("{} {}", p.step.kind(), file.display()))
                }
                _ => None,
            })
            .filter(|l| l.contains("namespace-profiles") || l.contains("client/"))
            .collect();
        assert!(order[0].contains("apply_manifest") && order[0].contains("namespace-profiles"));
        assert!(order[1].contains("client/curl.yaml"));
        assert!(
            order.last().is_some_and(
                |l| l.starts_with("delete_objects") && l.contains("namespace-profiles")
            )
        );
        // in-mesh-headers: the client's own proxy config.
        assert!(applies(
            "metadata-headers-in-mesh",
            "client/curl-in-mesh-headers.yaml"
        ));
        assert!(!applies("metadata-headers-in-mesh", "client/curl.yaml"));
        // registry-only scenarios: nothing added.
        assert!(!applies(
            "gateway-http",
            "namespace-profiles/allow-any.yaml"
        ));
    }

    #[test]
    fn mesh_wide_profiles_share_a_cluster_per_version_and_profile() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let plan = build(
            &all,
            &ws,
            &PlanOptions {
                mesh_wide_profiles: true,
                ..options("1.22.1,1.30.3")
            },
        )
        .unwrap();
        let profiles: BTreeSet<&str> = all.iter().map(|s| s.install.value.as_str()).collect();
        let shared: Vec<_> = plan.slots.iter().collect();
        // Every profile on both versions, but ambient (from 1.25) on 1.30.3 only.
        assert_eq!(shared.len(), 2 * profiles.len() - 1);
        assert_eq!(shared.len(), 7);
        assert!(!plan.steps().iter().any(|p| matches!(
            &p.step,
            Step::ApplyManifest { file, .. } if file.to_string_lossy().contains("namespace-profiles")
        )));
        let creates = commands(&plan)
            .iter()
            .filter(|c| c.contains(" create cluster "))
            .count();
        assert_eq!(creates, plan.slots.len());
        let pulls = plan
            .steps()
            .iter()
            .filter(|p| matches!(p.step, Step::PullImage { .. }))
            .count();
        assert_eq!(
            pulls, 10,
            "two Istio images per version, ambient's four (its distroless variant of those two, and install-cni and ztunnel) on 1.30.3, the client image and the http-proxy scenario's squid, each pulled once"
        );
        let builds = plan
            .steps()
            .iter()
            .filter(|p| matches!(p.step, Step::BuildImage { .. }))
            .count();
        assert_eq!(
            builds, 1,
            "the upstream, built once: the suite declares TCP ports"
        );
    }

    #[test]
    fn every_cluster_command_uses_the_harness_kubeconfig_and_a_supported_node() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let plan = build(&all, &ws, &options("1.22.1,1.30.3")).unwrap();
        for p in plan.steps() {
            let (Some(cluster), Some(argv)) = (&p.cluster, p.step.argv()) else {
                continue;
            };
            if matches!(p.step, Step::SendRequest { .. }) {
                // curl runs inside the cluster, by exec.
                continue;
            }
            if argv[1] == "load" {
                // `kind load` reaches nodes through docker, not the API server.
                continue;
            }
            let at = argv
                .iter()
                .position(|a| a == "--kubeconfig")
                .expect("--kubeconfig");
            assert_eq!(
                argv[at + 1],
                format!("/cache/clusters/{cluster}/kubeconfig"),
                "{argv:?}"
            );
        }
        for slot in plan.slot_list() {
            let IstioRelease::Exact(v) = &slot.istio else {
                unreachable!()
            };
            let (low, high, _) = versions::kubernetes_range(v).unwrap();
            let image = slot.node_image.as_deref().unwrap();
            let minor: u64 = image
                .split("kindest/node:v1.")
                .nth(1)
                .unwrap()
                .split('.')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                (low..=high).contains(&minor),
                "Istio {v} on Kubernetes 1.{minor}"
            );
        }
    }

    #[test]
    fn declared_upstream_ports_get_the_project_s_echo_built_and_serving_them() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let picked = suite
            .select(&[
                "sidecar-tcp-echo-database".to_owned(),
                "gateway-mtls-origination-client-cert-required".to_owned(),
            ])
            .unwrap();
        let plan = build(&picked, &ws, &options("1.30.3")).unwrap();
        let built: Vec<&String> = plan
            .steps()
            .iter()
            .filter_map(|p| match &p.step {
                Step::BuildImage { image, argvs, .. } => {
                    assert_eq!(argvs.len(), 2, "cargo build, then docker import");
                    Some(image)
                }
                _ => None,
            })
            .collect();
        assert_eq!(built.len(), 1);
        assert!(built[0].starts_with("egc-echo:"));
        let Some(Step::StartUpstream { server, .. }) = plan.upstream.as_ref().map(|p| &p.step)
        else {
            panic!("no upstream");
        };
        assert_eq!(
            &server.image_ref(),
            built[0],
            "the upstream runs the image built"
        );
        assert_eq!(server.ports, vec![80, 443, 5432, 8443]);
        let env: std::collections::BTreeMap<&str, &str> = server
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(env.get("TCP_ECHO_PORTS"), Some(&"5432"));
        assert_eq!(env.get("CLIENT_CERT_PORTS"), Some(&"8443"));
        assert_eq!(env.get("TLS_ECHO_PORTS"), None);
        // A scenario of HTTP ports only keeps echo-basic, pulled.
        let http = suite.select(&["gateway-http".to_owned()]).unwrap();
        let plan = build(&http, &ws, &options("1.30.3")).unwrap();
        assert!(
            !plan
                .steps()
                .iter()
                .any(|p| matches!(p.step, Step::BuildImage { .. }))
        );
        // A user's image is taken as it is, not built.
        let mut named = options("1.30.3");
        named.upstream_image = Some("registry.example/echo:1".into());
        let plan = build(&picked, &ws, &named).unwrap();
        assert!(
            !plan
                .steps()
                .iter()
                .any(|p| matches!(p.step, Step::BuildImage { .. }))
        );
    }

    #[test]
    fn two_scenarios_serving_one_port_two_ways_are_refused_with_both_names() {
        let text = |name: &str, kind: &str| {
            format!(
                "name: {name}\ndescription: d\nupstream:\n  ports: [{{port: 9000, kind: {kind}}}]\nrequests:\n  - name: r\n    url: gopher://httpbin.org:9000/_x\n    expect: {{status: 0}}\n"
            )
        };
        let a = crate::scenario::load_str(&text("a", "tcp-echo"), std::path::Path::new("a.yaml"))
            .unwrap();
        let b = crate::scenario::load_str(&text("b", "tls-echo"), std::path::Path::new("b.yaml"))
            .unwrap();
        let err = crate::upstream::ports_for([&a, &b]).unwrap_err();
        assert!(err.contains("a and b") && err.contains("9000"), "{err}");
        assert_eq!(
            crate::upstream::ports_for([&a, &a]).unwrap(),
            vec![(9000, crate::upstream::UpstreamKind::TcpEcho)]
        );
    }

    #[test]
    fn the_local_upstream_joins_the_kind_network_as_httpbin_once_per_run() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let plan = build(&all, &ws, &options("1.22.1,1.30.3")).unwrap();
        let starts: Vec<&crate::upstream::EchoServer> = plan
            .steps()
            .iter()
            .filter_map(|p| match &p.step {
                Step::StartUpstream { server, .. } => Some(server),
                _ => None,
            })
            .collect();
        assert_eq!(starts.len(), 1, "one upstream for the whole run");
        // httpbin.org, and every host a selected scenario declares.
        let mut aliases = starts[0].aliases.clone();
        aliases.sort();
        assert_eq!(
            (starts[0].network.as_str(), aliases),
            (
                "kind",
                vec![
                    "db.example.com".to_owned(),
                    "de.wikipedia.org".to_owned(),
                    "en.wikipedia.org".to_owned(),
                    "httpbin.org".to_owned(),
                    "mq.example.com".to_owned(),
                    "www.wikipedia.org".to_owned()
                ]
            )
        );
        let one = suite.select(&["gateway-http".to_owned()]).unwrap();
        let plan_of_one = build(&one, &ws, &options("1.30.3")).unwrap();
        assert_eq!(
            plan_of_one.upstream.as_ref().map(|p| match &p.step {
                Step::StartUpstream { server, .. } => server.aliases.clone(),
                _ => Vec::new(),
            }),
            Some(vec!["httpbin.org".to_owned()])
        );
        let first_create = plan
            .steps()
            .iter()
            .position(|p| matches!(&p.step, Step::CreateCluster { .. }));
        let start = plan
            .steps()
            .iter()
            .position(|p| matches!(p.step, Step::StartUpstream { .. }));
        assert!(
            first_create < start,
            "kind's network exists only after the first cluster"
        );
        assert!(matches!(
            plan.steps().last().map(|p| &p.step),
            Some(Step::StopUpstream { .. })
        ));

        let internet = build(
            &all,
            &ws,
            &PlanOptions {
                upstream: crate::upstream::UpstreamMode::Internet,
                ..options("1.22.1")
            },
        )
        .unwrap();
        assert!(!internet.steps().iter().any(|p| matches!(
            p.step,
            Step::StartUpstream { .. } | Step::ApplySecrets { .. }
        )));
        // The explicit local variant: the private-CA DestinationRule only with the local upstream.
        let applies = |plan: &Plan, file: &str| {
            plan.steps().iter().any(
                |p| matches!(&p.step, Step::ApplyManifest { file: f, .. } if f.ends_with(file)),
            )
        };
        assert!(applies(&plan, "originate-tls-httpbin-private-ca.yaml"));
        assert!(!applies(&internet, "originate-tls-httpbin-private-ca.yaml"));
    }

    #[test]
    fn existing_cluster_mode_creates_and_deletes_nothing() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let plan = build(
            &all,
            &ws,
            &PlanOptions {
                cluster: ClusterMode::Existing,
                ..options("1.22.1")
            },
        )
        .unwrap();
        assert!(commands(&plan).is_empty(), "{:?}", commands(&plan));
        assert!(
            plan.steps()
                .iter()
                .any(|p| matches!(p.step, Step::CheckExistingIstio { .. }))
        );
    }

    #[test]
    fn an_existing_cluster_runs_only_the_profiles_its_mesh_matches_and_keeps_nothing() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let mesh = MeshConfig::parse(
            "accessLogFile: /dev/stdout\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}\n",
        )
        .unwrap();
        let existing = |upstream| PlanOptions {
            cluster: ClusterMode::Existing,
            upstream,
            installed_mesh: Some(mesh.clone()),
            mesh_wide_profiles: true,
            ..options("1.22.1")
        };
        // Per namespace (the default) every profile runs on the article's mesh.
        let shared = build(
            &all,
            &ws,
            &PlanOptions {
                mesh_wide_profiles: false,
                ..existing(UpstreamMode::Local)
            },
        )
        .unwrap();
        let not_ranges: Vec<&Skip> = shared
            .skipped
            .iter()
            .filter(|s| !s.reason.starts_with("applies to Istio"))
            .collect();
        // Only a scenario that brings its own Gateway API CRDs needs a cluster of the run's.
        assert!(
            not_ranges
                .iter()
                .all(|s| s.reason.contains("Gateway API CRDs")),
            "{not_ranges:?}"
        );
        let plan = build(&all, &ws, &existing(UpstreamMode::Local)).unwrap();
        assert_eq!(plan.slots.len(), 1, "one profile matches");
        assert_eq!(plan.slots[0].slot.install, "registry-only");
        let allow_any = plan
            .skipped
            .iter()
            .find(|s| s.scenario == "external-name-service")
            .expect("the allow-any scenario is skipped");
        assert_eq!(
            allow_any.reason,
            "the current cluster's mesh is not install profile allow-any: outboundTrafficPolicy is REGISTRY_ONLY, the profile sets ALLOW_ANY"
        );
        assert!(
            plan.skipped
                .iter()
                .any(|s| s.reason.contains("not install profile in-mesh-headers"))
        );
        // The run's Secrets go again; nothing is installed, so no istioctl.
        let teardown: Vec<&Step> = plan.slots[0].teardown.iter().map(|p| &p.step).collect();
        assert_eq!(
            teardown,
            vec![&Step::DeleteSecrets {
                namespace: "istio-system".into(),
                names: vec![
                    "egress-conformance-client".into(),
                    "egress-conformance-upstream-ca".into(),
                    "egress-conformance-foreign-ca".into()
                ],
            }]
        );
        assert!(!plan.steps().iter().any(|p| matches!(
            p.step,
            Step::DownloadIstioctl { .. } | Step::UseIstioctl { .. }
        )));
        // Against the internet, nothing of Docker either.
        let internet = build(&all, &ws, &existing(UpstreamMode::Internet)).unwrap();
        assert!(!internet.steps().iter().any(|p| matches!(
            p.step,
            Step::CheckDocker
                | Step::PullImage { .. }
                | Step::StartUpstream { .. }
                | Step::DeleteSecrets { .. }
        )));
        // What is printed before the cluster is read says it will be.
        let printed = build(
            &all,
            &ws,
            &PlanOptions {
                cluster: ClusterMode::Existing,
                ..options("installed")
            },
        )
        .unwrap();
        assert!(
            printed
                .render()
                .contains("read: the Istio version from istiod's image")
        );
    }

    #[test]
    fn versions_outside_a_scenario_range_are_skipped_with_a_reason() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let mut s = suite.select(&["gateway-http".into()]).unwrap()[0].clone();
        s.istio = crate::scenario::Range::parse(">=1.24").unwrap();
        let plan = build(&[&s], &ws, &options("1.22.1")).unwrap();
        assert!(plan.slots.is_empty());
        assert_eq!(plan.skipped[0].reason, "applies to Istio >=1.24");
    }

    #[test]
    fn the_install_overlays_name_the_hub_whose_images_are_loaded() {
        let ws = ws();
        for profile in ["registry-only", "allow-any", "in-mesh-headers"] {
            let file = ws
                .manifests_dir()
                .join("install")
                .join(format!("{profile}.yaml"));
            let objects = crate::manifest::parse_file(&file).unwrap();
            assert_eq!(objects[0].spec()["hub"], "docker.io/istio", "{profile}");
        }
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let plan = build(&all, &ws, &options("1.22.1,1.30.3,1.31.1")).unwrap();
        for p in plan.steps() {
            if let Step::LoadImages { images, .. } = &p.step {
                assert!(
                    images
                        .iter()
                        .any(|i| i.starts_with("docker.io/istio/pilot:"))
                );
            }
        }
        for slot in plan.slot_list() {
            let IstioRelease::Exact(v) = &slot.istio else {
                unreachable!()
            };
            let (low, high, _) = versions::kubernetes_range(v).unwrap();
            let image = slot.node_image.as_deref().unwrap();
            let minor: u64 = image["kindest/node:v1.".len()..]
                .split('.')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!((low..=high).contains(&minor), "Istio {v} on 1.{minor}");
        }
    }
}
