//! The plan of a live run: clusters, one per (Istio version, install profile), shared by
//! the scenarios that need them, and the ordered steps that set them up, run every
//! scenario and clean up.

mod step;

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use semver::Version;

pub use step::{PlannedStep, Step};

use crate::scenario::Scenario;
use crate::suite::Workspace;
use crate::versions;

/// Every kind cluster the harness creates carries this prefix; `egress prune` removes them.
pub const CLUSTER_PREFIX: &str = "egc-";
/// Images the Istio install uses, under `docker.io/istio` for releases.
const ISTIO_IMAGES: &[&str] = &["pilot", "proxyv2"];
/// Consecutive passes that make a request's verdict consistent.
pub const CONSISTENT_PASSES: u32 = 3;

/// `--istio`: an exact release or the newest stable one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum IstioRelease {
    Exact(Version),
    Latest,
}

impl IstioRelease {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "latest" => Ok(Self::Latest),
            other => versions::parse_version(other).map(Self::Exact),
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

impl fmt::Display for IstioRelease {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Exact(v) => v.fmt(f),
            Self::Latest => f.write_str("latest"),
        }
    }
}

/// Where scenarios run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterMode {
    /// kind clusters of the harness's own, with their own kubeconfig.
    #[default]
    Kind,
    /// The current kube context; nothing is created or deleted.
    Existing,
}

/// When harness clusters are kept after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    #[default]
    Never,
    OnFailure,
    Always,
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
    /// How long one request may take to become consistent.
    pub deadline_secs: u64,
    pub upstream: crate::upstream::UpstreamMode,
    /// Leave each scenario's namespace and objects in place (bug reproduction).
    pub keep_objects: bool,
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
            deadline_secs: 60,
            upstream: crate::upstream::UpstreamMode::Local,
            keep_objects: false,
        }
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
#[derive(Debug, Clone)]
pub struct Slot {
    pub istio: IstioRelease,
    pub install: String,
    /// kind cluster name; `None` in existing-cluster mode.
    pub cluster: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    pub node_image: Option<String>,
    pub scenarios: Vec<String>,
}

/// A scenario that does not run on a version, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub scenario: String,
    pub istio: IstioRelease,
    pub reason: String,
}

/// The whole live run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub slots: Vec<Slot>,
    pub skipped: Vec<Skip>,
    pub steps: Vec<PlannedStep>,
}

/// The kind cluster name for a version and install profile.
pub fn cluster_name(istio: &IstioRelease, install: &str) -> String {
    let version = istio.to_string().replace(['.', '+'], "-");
    format!("{CLUSTER_PREFIX}{version}-{install}")
}

/// Plans a run of `scenarios` (in suite order) on every version in `options`.
pub fn build(
    scenarios: &[&Scenario],
    ws: &Workspace,
    options: &PlanOptions,
) -> Result<Plan, String> {
    let mut slots: Vec<Slot> = Vec::new();
    let mut skipped = Vec::new();
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
            let install = s.install.value.clone();
            match slots
                .iter_mut()
                .find(|slot| slot.istio == *istio && slot.install == install)
            {
                Some(slot) => slot.scenarios.push(s.name().into()),
                None => {
                    let (cluster, kubeconfig, node_image) = match options.cluster {
                        ClusterMode::Existing => (None, None, None),
                        ClusterMode::Kind => {
                            let name = cluster_name(istio, &install);
                            let kubeconfig = kubeconfig_path(&options.cache_dir, &name);
                            let image = match (&options.node_image, istio) {
                                (Some(image), _) => Some(image.clone()),
                                (None, IstioRelease::Exact(v)) => {
                                    Some(versions::node_image(v)?.to_owned())
                                }
                                (None, IstioRelease::Latest) => None,
                            };
                            (Some(name), Some(kubeconfig), image)
                        }
                    };
                    slots.push(Slot {
                        istio: istio.clone(),
                        install,
                        cluster,
                        kubeconfig,
                        node_image,
                        scenarios: vec![s.name().into()],
                    });
                }
            }
        }
    }
    let steps = steps(&slots, scenarios, ws, options)?;
    Ok(Plan {
        slots,
        skipped,
        steps,
    })
}

fn host_step(step: Step) -> PlannedStep {
    PlannedStep {
        cluster: None,
        condition: None,
        step,
    }
}

fn steps(
    slots: &[Slot],
    scenarios: &[&Scenario],
    ws: &Workspace,
    options: &PlanOptions,
) -> Result<Vec<PlannedStep>, String> {
    let mut out = vec![host_step(Step::CheckDocker)];
    let kind_bin = match (&options.cluster, &options.kind) {
        (ClusterMode::Existing, _) => None,
        (ClusterMode::Kind, Some(path)) => {
            out.push(host_step(Step::UseKind { path: path.clone() }));
            Some(path.clone())
        }
        (ClusterMode::Kind, None) => {
            let (url, checksum_url, dest) = kind_download(options);
            out.push(host_step(Step::DownloadKind {
                url,
                checksum_url,
                dest: dest.clone(),
            }));
            Some(dest)
        }
    };
    if options.istio.contains(&IstioRelease::Latest) {
        out.push(host_step(Step::ResolveLatestIstio));
    }
    let mut istioctl_for = Vec::new();
    for istio in slots.iter().map(|s| &s.istio).collect::<BTreeSet<_>>() {
        let path = match &options.istioctl {
            Some(path) => {
                out.push(host_step(Step::UseIstioctl { path: path.clone() }));
                path.clone()
            }
            None => {
                let (url, checksum_url, dest) = istioctl_download(istio, options);
                out.push(host_step(Step::DownloadIstioctl {
                    version: istio.to_string(),
                    url,
                    checksum_url,
                    dest: dest.clone(),
                }));
                dest
            }
        };
        istioctl_for.push((istio.clone(), path));
    }
    let client_images = client_images(scenarios, ws)?;
    if options.cluster == ClusterMode::Kind {
        let mut pulled = BTreeSet::new();
        for slot in slots {
            for image in slot_images(slot, &client_images, scenarios) {
                if pulled.insert(image.clone()) {
                    out.push(host_step(Step::PullImage { image }));
                }
            }
        }
    }

    for slot in slots {
        let at = |step: Step| PlannedStep {
            cluster: slot.cluster.clone(),
            condition: None,
            step,
        };
        let kube = slot.kubeconfig.as_ref().map(|k| k.display().to_string());
        let istioctl = istioctl_for
            .iter()
            .find(|(v, _)| *v == slot.istio)
            .map(|(_, p)| p.display().to_string())
            .unwrap_or_default();
        let install_file = ws
            .manifests_dir()
            .join("install")
            .join(format!("{}.yaml", slot.install));
        match (&slot.cluster, &kind_bin, &kube) {
            (Some(name), Some(kind), Some(kube)) => {
                let kind = kind.display().to_string();
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
                out.push(PlannedStep {
                    cluster: slot.cluster.clone(),
                    condition: Some("unless --reuse finds it"),
                    step: Step::Command {
                        argv: create,
                        timeout_secs: 300,
                    },
                });
                out.push(at(Step::WaitReady {
                    namespace: "kube-system".into(),
                    kind: "Deployment",
                    name: "coredns".into(),
                    timeout_secs: 180,
                }));
                let mut load = vec![
                    kind,
                    "load".into(),
                    "docker-image".into(),
                    "--name".into(),
                    name.clone(),
                ];
                load.extend(slot_images(slot, &client_images, scenarios));
                out.push(at(Step::Command {
                    argv: load,
                    timeout_secs: 300,
                }));
                out.push(at(Step::Command {
                    argv: vec![
                        istioctl.clone(),
                        "install".into(),
                        "-y".into(),
                        "-f".into(),
                        install_file.display().to_string(),
                        "--kubeconfig".into(),
                        kube.clone(),
                        "--readiness-timeout".into(),
                        "300s".into(),
                    ],
                    timeout_secs: 420,
                }));
                out.push(at(Step::WaitReady {
                    namespace: "istio-system".into(),
                    kind: "Deployment",
                    name: "istiod".into(),
                    timeout_secs: 300,
                }));
                out.push(at(Step::WaitReady {
                    namespace: "istio-system".into(),
                    kind: "Deployment",
                    name: "istio-egressgateway".into(),
                    timeout_secs: 300,
                }));
            }
            _ => out.push(at(Step::CheckExistingIstio {
                install: slot.install.clone(),
            })),
        }
        if options.upstream == crate::upstream::UpstreamMode::Local {
            // kind makes its Docker network with the first cluster: the upstream joins it then.
            if std::ptr::eq(slot, &slots[0]) {
                out.push(at(Step::StartUpstream {
                    server: crate::upstream::definition("<run-id>"),
                }));
            }
            out.push(at(upstream_secrets("istio-system")));
        }
        for name in &slot.scenarios {
            let Some(s) = scenarios.iter().find(|s| s.name() == name) else {
                continue;
            };
            out.extend(scenario_steps(s, ws, options).into_iter().map(at));
        }
        if let (Some(name), Some(kind), Some(kube)) = (&slot.cluster, &kind_bin, &kube) {
            let condition = match options.keep {
                Keep::Never => "always",
                Keep::OnFailure => "if every scenario passed",
                Keep::Always => "never, --keep",
            };
            out.push(PlannedStep {
                cluster: slot.cluster.clone(),
                condition: Some(condition),
                step: Step::Command {
                    argv: vec![
                        kind.display().to_string(),
                        "delete".into(),
                        "cluster".into(),
                        "--name".into(),
                        name.clone(),
                        "--kubeconfig".into(),
                        kube.clone(),
                    ],
                    timeout_secs: 180,
                },
            });
        }
    }
    if options.upstream == crate::upstream::UpstreamMode::Local && !slots.is_empty() {
        out.push(PlannedStep {
            cluster: None,
            condition: Some("always"),
            step: Step::StopUpstream {
                container: crate::upstream::definition("<run-id>").container_name,
            },
        });
    }
    Ok(out)
}

fn upstream_secrets(namespace: &str) -> Step {
    Step::CreateSecrets {
        namespace: namespace.into(),
        names: vec!["client-credential".into(), "upstream-ca".into()],
    }
}

/// The steps of one scenario inside its cluster.
pub fn scenario_steps(s: &Scenario, ws: &Workspace, options: &PlanOptions) -> Vec<Step> {
    let ns = s.name().to_owned();
    let manifests = ws.manifests_dir();
    let mut steps = vec![Step::CreateNamespace {
        name: ns.clone(),
        labels: vec![
            ("istio-injection".into(), "enabled".into()),
            ("egress-conformance/scenario".into(), ns.clone()),
        ],
    }];
    if options.upstream == crate::upstream::UpstreamMode::Local {
        steps.push(upstream_secrets(&ns));
    }
    steps.push(Step::Apply {
        file: manifests
            .join("client")
            .join(format!("{}.yaml", s.client.value)),
        namespace: ns.clone(),
    });
    steps.push(Step::WaitReady {
        namespace: ns.clone(),
        kind: "Pod",
        name: "curl".into(),
        timeout_secs: 180,
    });
    let manifest_list = s.manifests_for(options.upstream);
    let objects: Vec<crate::manifest::Object> = manifest_list
        .iter()
        .filter_map(|m| crate::manifest::parse_file(&manifests.join(&m.value)).ok())
        .flatten()
        .collect();
    let hosts = crate::live::config_dump::scenario_hosts(&objects);
    let gateway = format!(
        "{}/{} pods",
        crate::live::scenario_run::GATEWAY_NAMESPACE,
        crate::live::scenario_run::GATEWAY_SELECTOR
    );
    let client_objects = crate::manifest::parse_file(
        &manifests
            .join("client")
            .join(format!("{}.yaml", s.client.value)),
    )
    .unwrap_or_default();
    let mut clean_slate = vec![gateway.clone()];
    if crate::live::scenario_run::wants_sidecar(&client_objects) {
        clean_slate.push(format!("{ns}/curl"));
    }
    steps.push(Step::AwaitConfigGone {
        hosts: hosts.clone(),
        proxies: clean_slate,
    });
    for m in &manifest_list {
        steps.push(Step::Apply {
            file: manifests.join(&m.value),
            namespace: ns.clone(),
        });
    }
    let context = crate::recording::Context {
        namespace: ns.clone(),
        client_pod: "curl".into(),
        service_account: "default".into(),
        upstream: Some(options.upstream.as_str().into()),
    };
    let vars = |name: &str| context.var(name);
    for r in &s.requests {
        let url = crate::scenario::Template::parse(&r.url.value)
            .map(|t| t.render(&vars))
            .unwrap_or_else(|_| r.url.value.clone());
        steps.push(Step::Request {
            scenario: s.name().into(),
            request: r.name.value.clone(),
            namespace: ns.clone(),
            pod: "curl".into(),
            container: "curl".into(),
            argv: crate::curl::argv(
                r,
                &url,
                "<uuid per attempt>",
                &s.curl_args_for(options.upstream),
            ),
            deadline_secs: options.deadline_secs,
        });
    }
    if options.keep_objects {
        return steps;
    }
    for m in manifest_list.iter().rev() {
        steps.push(Step::Delete {
            file: manifests.join(&m.value),
            namespace: ns.clone(),
        });
    }
    steps.push(Step::DeleteNamespace { name: ns.clone() });
    steps.push(Step::AwaitConfigGone {
        hosts,
        proxies: vec![gateway],
    });
    steps
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

/// Where the pinned kind release is kept once downloaded.
pub fn cached_kind_path(cache_dir: &std::path::Path) -> PathBuf {
    cache_dir
        .join("kind")
        .join(versions::KIND_VERSION)
        .join("kind")
}

/// Release asset `istioctl-<ver>-<os>-<arch>.tar.gz` and its `.sha256`
/// (istio/release-builder pkg/build/archive.go).
fn istioctl_download(istio: &IstioRelease, options: &PlanOptions) -> (String, String, PathBuf) {
    let version = istio.to_string();
    let Platform { os, arch } = &options.platform;
    let url = format!(
        "https://github.com/istio/istio/releases/download/{version}/istioctl-{version}-{os}-{arch}.tar.gz"
    );
    let dest = options
        .cache_dir
        .join("istioctl")
        .join(&version)
        .join("istioctl");
    (url.clone(), format!("{url}.sha256"), dest)
}

/// Images of the client pods the scenarios use (read from their manifests).
fn client_images(scenarios: &[&Scenario], ws: &Workspace) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for client in scenarios
        .iter()
        .map(|s| s.client.value.clone())
        .collect::<BTreeSet<_>>()
    {
        let path = ws
            .manifests_dir()
            .join("client")
            .join(format!("{client}.yaml"));
        let objects = crate::manifest::parse_file(&path).map_err(|p| p.to_string())?;
        for o in objects {
            for c in o.spec()["containers"].as_array().into_iter().flatten() {
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
    let mut images: Vec<String> = ISTIO_IMAGES
        .iter()
        .map(|i| format!("docker.io/istio/{i}:{}", slot.istio))
        .collect();
    let clients: BTreeSet<&str> = scenarios
        .iter()
        .filter(|s| slot.scenarios.iter().any(|n| n == s.name()))
        .map(|s| s.client.value.as_str())
        .collect();
    for (client, image) in client_images {
        if clients.contains(client.as_str()) && !images.contains(image) {
            images.push(image.clone());
        }
    }
    images
}

impl Plan {
    /// One line per step, as `egress plan` prints it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for slot in &self.slots {
            let target = slot.cluster.as_deref().unwrap_or("current kube context");
            out.push_str(&format!(
                "# cluster {target}: Istio {}, install {}, node image {}, {} scenario(s)\n",
                slot.istio,
                slot.install,
                slot.node_image.as_deref().unwrap_or("-"),
                slot.scenarios.len()
            ));
        }
        for skip in &self.skipped {
            out.push_str(&format!(
                "# skipped {} on Istio {}: {}\n",
                skip.scenario, skip.istio, skip.reason
            ));
        }
        for (i, step) in self.steps.iter().enumerate() {
            out.push_str(&format!("{:>3}. {step}\n", i + 1));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Suite;

    fn ws() -> Workspace {
        Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
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
            deadline_secs: 60,
            upstream: crate::upstream::UpstreamMode::Local,
            keep_objects: false,
        }
    }

    fn commands(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .filter_map(|p| match &p.step {
                Step::Command { argv, .. } => Some(argv.join(" ")),
                _ => None,
            })
            .collect()
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
                format!("/usr/bin/kind create cluster --name egc-1-22-1-registry-only --kubeconfig {kc} --image kindest/node:v1.30.10@sha256:4de75d0e82481ea846c0ed1de86328d821c1e6a6a91ac37bf804e5313670e507"),
                "/usr/bin/kind load docker-image --name egc-1-22-1-registry-only docker.io/istio/pilot:1.22.1 docker.io/istio/proxyv2:1.22.1 curlimages/curl:8.11.1".to_owned(),
                format!("/cache/istioctl/1.22.1/istioctl install -y -f {root}/install/registry-only.yaml --kubeconfig {kc} --readiness-timeout 300s"),
                format!("/usr/bin/kind delete cluster --name egc-1-22-1-registry-only --kubeconfig {kc}"),
            ]
        );
        let download = plan.steps.iter().find_map(|p| match &p.step {
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
    fn clusters_are_shared_per_version_and_profile() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let plan = build(&all, &ws, &options("1.22.1,1.30.3")).unwrap();
        let profiles: BTreeSet<&str> = all.iter().map(|s| s.install.value.as_str()).collect();
        assert_eq!(plan.slots.len(), 2 * profiles.len());
        let creates = commands(&plan)
            .iter()
            .filter(|c| c.contains(" create cluster "))
            .count();
        assert_eq!(creates, plan.slots.len());
        let pulls = plan
            .steps
            .iter()
            .filter(|p| matches!(p.step, Step::PullImage { .. }))
            .count();
        assert_eq!(
            pulls, 5,
            "two Istio images per version plus one client image, each pulled once"
        );
    }

    #[test]
    fn every_cluster_command_uses_the_harness_kubeconfig_and_a_supported_node() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let plan = build(&all, &ws, &options("1.22.1,1.30.3")).unwrap();
        for p in &plan.steps {
            let (Some(cluster), Step::Command { argv, .. }) = (&p.cluster, &p.step) else {
                continue;
            };
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
        for slot in &plan.slots {
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
    fn the_local_upstream_joins_the_kind_network_as_httpbin_once_per_run() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let all = suite.select(&[]).unwrap();
        let plan = build(&all, &ws, &options("1.22.1,1.30.3")).unwrap();
        let starts: Vec<&crate::upstream::EchoServer> = plan
            .steps
            .iter()
            .filter_map(|p| match &p.step {
                Step::StartUpstream { server } => Some(server),
                _ => None,
            })
            .collect();
        assert_eq!(starts.len(), 1, "one upstream for the whole run");
        assert_eq!(
            (starts[0].network.as_str(), starts[0].aliases.as_slice()),
            ("kind", &["httpbin.org".to_owned()][..])
        );
        let first_create = plan
            .steps
            .iter()
            .position(|p| matches!(&p.step, Step::Command { argv, .. } if argv[1] == "create"));
        let start = plan
            .steps
            .iter()
            .position(|p| matches!(p.step, Step::StartUpstream { .. }));
        assert!(
            first_create < start,
            "kind's network exists only after the first cluster"
        );
        assert!(matches!(
            plan.steps.last().map(|p| &p.step),
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
        assert!(!internet.steps.iter().any(|p| matches!(
            p.step,
            Step::StartUpstream { .. } | Step::CreateSecrets { .. }
        )));
        // The explicit local variant: the private-CA DestinationRule only with the local upstream.
        let applies = |plan: &Plan, file: &str| {
            plan.steps
                .iter()
                .any(|p| matches!(&p.step, Step::Apply { file: f, .. } if f.ends_with(file)))
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
            plan.steps
                .iter()
                .any(|p| matches!(p.step, Step::CheckExistingIstio { .. }))
        );
    }

    #[test]
    fn versions_outside_a_scenario_range_are_skipped_with_a_reason() {
        let ws = ws();
        let suite = Suite::load(&ws).unwrap();
        let mut s = suite.select(&["gateway-http".into()]).unwrap()[0].clone();
        s.istio = crate::scenario::Range(versions::parse_range(">=1.24").unwrap());
        let plan = build(&[&s], &ws, &options("1.22.1")).unwrap();
        assert!(plan.slots.is_empty());
        assert_eq!(plan.skipped[0].reason, "applies to Istio >=1.24");
    }
}
