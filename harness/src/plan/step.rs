//! One step of a live run, as data. `egress plan` prints these values and the
//! engine's interpreter executes these very values; nothing is read back from argv.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::gateway_api::{PinnedFile, StatusTarget};
use crate::upstream::EchoServer;

/// Which proxies a config-dump check reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Proxies {
    /// Every Running pod matching a selector (the egress gateway's replicas).
    Selector {
        namespace: String,
        selector: String,
    },
    Pod {
        namespace: String,
        name: String,
    },
}

impl fmt::Display for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Selector {
                namespace,
                selector,
            } => write!(f, "{namespace}/{selector} pods"),
            Self::Pod { namespace, name } => write!(f, "{namespace}/{name}"),
        }
    }
}

/// What a readiness watch waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Workload {
    Deployment,
    /// A pod, with its sidecar when `sidecar`.
    Pod {
        sidecar: bool,
    },
}

/// What a step acts on and how. Deadlines are part of the value: what is printed
/// is what runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The Docker daemon answers `/_ping`.
    CheckDocker,
    /// kind found on PATH; `kind version` must answer.
    UseKind {
        argv: Vec<String>,
        timeout_secs: u64,
    },
    /// kind fetched once per host, checksum verified, cached.
    DownloadKind {
        url: String,
        checksum_url: String,
        dest: PathBuf,
        timeout_secs: u64,
    },
    /// `latest` becomes the newest stable Istio release (only in a printed plan: a
    /// run resolves it before planning).
    ResolveLatestIstio,
    /// `--cluster existing`: the Istio version (istiod's image) and the mesh config
    /// (ConfigMap istio-system/istio) read from the current cluster (only in a
    /// printed plan: a run reads them before planning).
    ReadInstalledMesh,
    /// A local istioctl; `istioctl version --remote=false` must answer.
    UseIstioctl {
        version: String,
        argv: Vec<String>,
        timeout_secs: u64,
    },
    DownloadIstioctl {
        version: String,
        url: String,
        checksum_url: String,
        dest: PathBuf,
        timeout_secs: u64,
    },
    /// An image pulled once per host (kept when already present), then loaded into
    /// each cluster.
    PullImage {
        image: String,
        argv: Vec<String>,
        timeout_secs: u64,
    },
    /// An image built on the host (kept when already present): each argv in order.
    BuildImage {
        image: String,
        argvs: Vec<Vec<String>>,
        timeout_secs: u64,
    },
    CreateCluster {
        name: String,
        kubeconfig: PathBuf,
        node_image: Option<String>,
        argv: Vec<String>,
        timeout_secs: u64,
        /// kind's own create is retried this often before it is an error.
        attempts: u32,
    },
    LoadImages {
        cluster: String,
        images: Vec<String>,
        argv: Vec<String>,
        timeout_secs: u64,
    },
    InstallIstio {
        version: String,
        profile: String,
        argv: Vec<String>,
        timeout_secs: u64,
    },
    /// Gateway API CRDs of the release the cluster's Istio is built against: each file
    /// fetched, checked against its pinned sha256, server-side applied, and watched
    /// until `crds` are Established. Before Istio, so istiod starts with them.
    InstallGatewayApiCrds {
        version: String,
        files: Vec<PinnedFile>,
        crds: Vec<String>,
        timeout_secs: u64,
    },
    /// Replace the cluster's Gateway API CRDs for one scenario, or put the release's
    /// back after it: delete `remove` and watch until they are gone (objects of those
    /// kinds go with them; the scenario runs alone), apply `files`, watch until `crds`
    /// are Established.
    SwapGatewayApiCrds {
        from: String,
        to: String,
        remove: Vec<String>,
        files: Vec<PinnedFile>,
        crds: Vec<String>,
        timeout_secs: u64,
    },
    /// Restart a Deployment's pods as `kubectl rollout restart` does (a new pod
    /// template annotation) and watch until the rollout is done.
    RestartDeployment {
        namespace: String,
        name: String,
        timeout_secs: u64,
    },
    /// `--cluster existing`: istiod and the egress gateway must be ready already; the
    /// mesh config was compared with each scenario's install profile while planning.
    CheckExistingIstio {
        install: String,
        timeout_secs: u64,
    },
    /// Watch until the workload reports ready.
    WaitReady {
        namespace: String,
        workload: Workload,
        name: String,
        timeout_secs: u64,
    },
    /// The harness's echo server, on kind's network as the scenarios' upstream host;
    /// once per run, by the first cluster that is ready (kind makes the network).
    StartUpstream {
        server: EchoServer,
        timeout_secs: u64,
    },
    /// Secrets holding the run's certificates (server-side apply).
    ApplySecrets {
        namespace: String,
        names: Vec<String>,
    },
    /// The run's Secrets removed again from a cluster the run did not create.
    DeleteSecrets {
        namespace: String,
        names: Vec<String>,
    },
    CreateNamespace {
        name: String,
        labels: Vec<(String, String)>,
    },
    /// Server-side apply of every object in a file.
    ApplyManifest {
        file: PathBuf,
        namespace: String,
    },
    /// Apply one object of `file` again with `merge` merged into it (RFC 7386).
    PatchObject {
        file: PathBuf,
        namespace: String,
        /// `Kind/name`.
        object: String,
        merge: serde_json::Value,
    },
    /// Poll the proxies' config dumps until none mentions `hosts` (before applying:
    /// a clean slate; after cleanup: forgotten).
    AwaitCleanConfig {
        hosts: Vec<String>,
        proxies: Vec<Proxies>,
        timeout_secs: u64,
    },
    /// Poll the Gateway API objects' status until the scenario's `status:` holds or
    /// the deadline passes; what was last seen is judged, before any request.
    AwaitStatus {
        namespace: String,
        objects: Vec<StatusTarget>,
        timeout_secs: u64,
    },
    /// curl in the client container, judged until consistent. `argv` holds
    /// [`crate::model::ATTEMPT_ID`] where each attempt puts its own id.
    SendRequest {
        scenario: String,
        request: String,
        namespace: String,
        pod: String,
        container: String,
        argv: Vec<String>,
        deadline_secs: u64,
        /// The egress gateway whose access log is read.
        gateway: Proxies,
        /// Ambient: the ztunnel pods whose connection log is read.
        #[serde(skip_serializing_if = "Option::is_none")]
        ztunnel: Option<Proxies>,
    },
    /// Manifests, logs, config dumps, events and kind's logs under the run's evidence.
    CollectEvidence {
        scenario: String,
        namespace: String,
        dir: PathBuf,
        /// The egress gateway whose logs and config dump are kept.
        gateway: Proxies,
    },
    /// Delete what a file applied (objects outside the scenario's namespace included).
    DeleteObjects {
        file: PathBuf,
        namespace: String,
    },
    DeleteNamespace {
        name: String,
        timeout_secs: u64,
    },
    DeleteCluster {
        name: String,
        kubeconfig: PathBuf,
        argv: Vec<String>,
        timeout_secs: u64,
    },
    StopUpstream {
        container: String,
        timeout_secs: u64,
    },
}

/// When a step runs; the interpreter decides at run time and logs the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    /// Skipped when `--reuse` found the cluster already there.
    UnlessReused,
    /// Once per run, by the first cluster ready.
    OncePerRun,
    /// When a request of the scenario failed, or with `--evidence always`.
    OnFailureOrAlways,
    /// Every time (cleanup also after a failed step).
    Always,
    /// After the cluster's last scenario, unless kept as `--keep` says, or the
    /// cluster was not made by this run.
    UnlessKept(crate::model::Keep),
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Self::UnlessReused => "unless --reuse finds it",
            Self::OncePerRun => "once per run",
            Self::OnFailureOrAlways => "on failure, or --evidence always",
            Self::Always => "always",
            Self::UnlessKept(crate::model::Keep::Never) => {
                "after its last scenario, if this run created it"
            }
            Self::UnlessKept(crate::model::Keep::OnFailure) => {
                "after its last scenario, unless one failed (--keep-on-failure)"
            }
            Self::UnlessKept(crate::model::Keep::Always) => "never, --keep",
        })
    }
}

/// A step, its place in the plan and the cluster and scenario it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStep {
    /// 1-based position in the plan; `steps.jsonl` names it too.
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    #[serde(flatten)]
    pub step: Step,
}

impl Step {
    /// The step's kind, as `steps.jsonl` and the JSON plan name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::CheckDocker => "check_docker",
            Step::UseKind { .. } => "use_kind",
            Step::DownloadKind { .. } => "download_kind",
            Step::ResolveLatestIstio => "resolve_latest_istio",
            Step::ReadInstalledMesh => "read_installed_mesh",
            Step::UseIstioctl { .. } => "use_istioctl",
            Step::DownloadIstioctl { .. } => "download_istioctl",
            Step::PullImage { .. } => "pull_image",
            Step::BuildImage { .. } => "build_image",
            Step::CreateCluster { .. } => "create_cluster",
            Step::LoadImages { .. } => "load_images",
            Step::InstallIstio { .. } => "install_istio",
            Step::InstallGatewayApiCrds { .. } => "install_gateway_api_crds",
            Step::SwapGatewayApiCrds { .. } => "swap_gateway_api_crds",
            Step::RestartDeployment { .. } => "restart_deployment",
            Step::AwaitStatus { .. } => "await_status",
            Step::CheckExistingIstio { .. } => "check_existing_istio",
            Step::WaitReady { .. } => "wait_ready",
            Step::StartUpstream { .. } => "start_upstream",
            Step::ApplySecrets { .. } => "apply_secrets",
            Step::DeleteSecrets { .. } => "delete_secrets",
            Step::CreateNamespace { .. } => "create_namespace",
            Step::ApplyManifest { .. } => "apply_manifest",
            Step::PatchObject { .. } => "patch_object",
            Step::AwaitCleanConfig { .. } => "await_clean_config",
            Step::SendRequest { .. } => "send_request",
            Step::CollectEvidence { .. } => "collect_evidence",
            Step::DeleteObjects { .. } => "delete_objects",
            Step::DeleteNamespace { .. } => "delete_namespace",
            Step::DeleteCluster { .. } => "delete_cluster",
            Step::StopUpstream { .. } => "stop_upstream",
        }
    }

    /// The external program the step runs, if it runs one.
    pub fn argv(&self) -> Option<&[String]> {
        match self {
            Step::UseKind { argv, .. }
            | Step::UseIstioctl { argv, .. }
            | Step::PullImage { argv, .. }
            | Step::CreateCluster { argv, .. }
            | Step::LoadImages { argv, .. }
            | Step::InstallIstio { argv, .. }
            | Step::DeleteCluster { argv, .. }
            | Step::SendRequest { argv, .. } => Some(argv),
            _ => None,
        }
    }

    /// Whether the step is cleanup, which runs even after an earlier step failed.
    pub fn is_cleanup(&self) -> bool {
        matches!(
            self,
            Step::DeleteObjects { .. }
                | Step::DeleteNamespace { .. }
                | Step::DeleteCluster { .. }
                | Step::StopUpstream { .. }
                | Step::CollectEvidence { .. }
        )
    }
}

pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,%+|".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''").replace('\n', "\\n"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Pinned files as their URLs and digests.
fn pinned(files: &[PinnedFile]) -> String {
    let urls: Vec<String> = files
        .iter()
        .map(|p| format!("{} (sha256 {})", p.url, p.sha256))
        .collect();
    list(&urls)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Step::CheckDocker => write!(
                f,
                "check: Docker daemon reachable (GET /_ping on the Docker socket)"
            ),
            Step::DownloadKind {
                url,
                checksum_url,
                dest,
                timeout_secs,
            } => write!(
                f,
                "download (timeout {timeout_secs}s): {url} (sha256 from {checksum_url}) -> {}",
                dest.display()
            ),
            Step::ResolveLatestIstio => write!(
                f,
                "resolve: `latest` to the newest stable Istio release (no -rc, -beta, -alpha)"
            ),
            Step::ReadInstalledMesh => write!(
                f,
                "read: the Istio version from istiod's image and the mesh config from ConfigMap istio-system/istio (key mesh); scenarios whose install profile differs are skipped"
            ),
            Step::DownloadIstioctl {
                version,
                url,
                checksum_url,
                dest,
                timeout_secs,
            } => write!(
                f,
                "download (timeout {timeout_secs}s): istioctl {version} from {url} (sha256 from {checksum_url}) -> {}",
                dest.display()
            ),
            Step::LoadImages {
                argv, timeout_secs, ..
            } => write!(
                f,
                "run (timeout {timeout_secs}s; where Docker's containerd image store cannot export them, the nodes pull instead): {}",
                shell_words(argv)
            ),
            Step::BuildImage {
                image,
                argvs,
                timeout_secs,
            } => write!(
                f,
                "build {image} unless the host has it (timeout {timeout_secs}s each): {}",
                argvs
                    .iter()
                    .map(|a| shell_words(a))
                    .collect::<Vec<_>>()
                    .join(" && ")
            ),
            Step::UseKind { argv, timeout_secs }
            | Step::UseIstioctl {
                argv, timeout_secs, ..
            }
            | Step::PullImage {
                argv, timeout_secs, ..
            }
            | Step::InstallIstio {
                argv, timeout_secs, ..
            }
            | Step::DeleteCluster {
                argv, timeout_secs, ..
            } => write!(f, "run (timeout {timeout_secs}s): {}", shell_words(argv)),
            Step::CreateCluster {
                argv,
                timeout_secs,
                attempts,
                ..
            } => write!(
                f,
                "run (timeout {timeout_secs}s, {attempts} attempts): {}",
                shell_words(argv)
            ),
            Step::InstallGatewayApiCrds {
                version,
                files,
                crds,
                timeout_secs,
            } => write!(
                f,
                "apply (server-side, deadline {timeout_secs}s): Gateway API {version} CRDs {}; watch until Established: {}",
                pinned(files),
                list(crds)
            ),
            Step::SwapGatewayApiCrds {
                from,
                to,
                remove,
                files,
                crds,
                timeout_secs,
            } => write!(
                f,
                "swap Gateway API CRDs {from} -> {to} (deadline {timeout_secs}s): delete {}, watch until gone; apply (server-side) {}; watch until Established: {}",
                list(remove),
                pinned(files),
                list(crds)
            ),
            Step::RestartDeployment {
                namespace,
                name,
                timeout_secs,
            } => write!(
                f,
                "restart (deadline {timeout_secs}s): Deployment {namespace}/{name} (as kubectl rollout restart), watch until rolled out"
            ),
            Step::AwaitStatus {
                namespace,
                objects,
                timeout_secs,
            } => {
                let ids: Vec<String> = objects.iter().map(StatusTarget::id).collect();
                write!(
                    f,
                    "watch (deadline {timeout_secs}s): status of {} in namespace {namespace} until the scenario's `status:` holds; judged before any request",
                    list(&ids)
                )
            }
            Step::CheckExistingIstio {
                install,
                timeout_secs,
            } => write!(
                f,
                "check (deadline {timeout_secs}s): istiod and istio-egressgateway ready in istio-system (install profile {install}, matched against the mesh config)"
            ),
            Step::WaitReady {
                namespace,
                workload,
                name,
                timeout_secs,
            } => match workload {
                Workload::Deployment => write!(
                    f,
                    "watch (deadline {timeout_secs}s): Deployment {namespace}/{name} available"
                ),
                Workload::Pod { sidecar } => write!(
                    f,
                    "watch (deadline {timeout_secs}s): Pod {namespace}/{name} ready{}",
                    if *sidecar {
                        " with its istio-proxy sidecar"
                    } else {
                        ", no sidecar"
                    }
                ),
            },
            Step::StartUpstream {
                server,
                timeout_secs,
            } => write!(
                f,
                "start (docker create/cp/start, timeout {timeout_secs}s): {server}; serving HTTP on 80, HTTPS on 443 with a certificate for {} from the run's CA, client certificates verified against it",
                server.aliases.join(",")
            ),
            Step::ApplySecrets { namespace, names } => write!(
                f,
                "apply: Secrets {} in namespace {namespace} (the run's CA and client certificate)",
                names.join(", ")
            ),
            Step::DeleteSecrets { namespace, names } => write!(
                f,
                "delete: Secrets {} in namespace {namespace} (the cluster is left as it was found)",
                names.join(", ")
            ),
            Step::CreateNamespace { name, labels } => {
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "apply: Namespace {name} labels {}", labels.join(","))
            }
            Step::ApplyManifest { file, namespace } => write!(
                f,
                "apply (server-side): {} in namespace {namespace}",
                file.display()
            ),
            Step::PatchObject {
                file,
                namespace,
                object,
                merge,
            } => write!(
                f,
                "patch (server-side apply): {object} of {} in namespace {namespace}, merging {merge}",
                file.display()
            ),
            Step::AwaitCleanConfig {
                hosts,
                proxies,
                timeout_secs,
            } => {
                let proxies: Vec<String> = proxies.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "watch (deadline {timeout_secs}s): config dumps of {} (Envoy admin :15000) free of {}",
                    list(&proxies),
                    list(hosts)
                )
            }
            Step::SendRequest {
                scenario,
                request,
                namespace,
                pod,
                container,
                argv,
                deadline_secs,
                gateway,
                ztunnel,
            } => write!(
                f,
                "request {scenario}/{request}: exec in {namespace}/{pod} container {container}: {}; read the logs of gateway {gateway}{} and the sidecar; judge until {} consecutive passes (deadline {deadline_secs}s)",
                shell_words(argv),
                ztunnel
                    .as_ref()
                    .map(|z| format!(", ztunnel {z}"))
                    .unwrap_or_default(),
                crate::model::CONSISTENT_PASSES
            ),
            Step::CollectEvidence { dir, gateway, .. } => write!(
                f,
                "collect: manifests, logs (client, gateway {gateway}, istiod), config dumps, events (and kind export logs) into {}",
                dir.display()
            ),
            Step::DeleteObjects { file, namespace } => write!(
                f,
                "delete: objects of {} (namespace {namespace} unless stated)",
                file.display()
            ),
            Step::DeleteNamespace { name, timeout_secs } => write!(
                f,
                "delete: Namespace {name}, watch until gone (deadline {timeout_secs}s)"
            ),
            Step::StopUpstream {
                container,
                timeout_secs,
            } => write!(f, "remove (timeout {timeout_secs}s): container {container}"),
        }
    }
}

impl fmt::Display for PlannedStep {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if let Some(cluster) = &self.cluster {
            write!(f, "[{cluster}] ")?;
        }
        if let Some(condition) = self.condition {
            write!(f, "({condition}) ")?;
        }
        self.step.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_when_needed() {
        let argv: Vec<String> = ["curl", "-H", "x-request-id: abc", "-w", "\nx'y"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            shell_words(&argv),
            r"curl -H 'x-request-id: abc' -w '\nx'\''y'"
        );
    }

    #[test]
    fn a_step_serialises_with_its_kind_and_argv() {
        let step = PlannedStep {
            index: 3,
            cluster: Some("egc-1-22-1".into()),
            scenario: None,
            condition: Some(Condition::UnlessReused),
            step: Step::CreateCluster {
                name: "egc-1-22-1".into(),
                kubeconfig: "/k".into(),
                node_image: None,
                argv: vec!["kind".into(), "create".into(), "cluster".into()],
                timeout_secs: 300,
                attempts: 3,
            },
        };
        let json = serde_json::to_value(&step).unwrap();
        assert_eq!(json["step"], "create_cluster");
        assert_eq!(json["step"], step.step.kind());
        assert_eq!(json["condition"], "unless-reused");
        assert_eq!(json["argv"][1], "create");
        assert_eq!(json["index"], 3);
    }
}
