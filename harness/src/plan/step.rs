//! One step of a live run. Steps are data: `egress plan` prints them and the live
//! engine executes them, so what is printed is what runs.

use std::fmt;
use std::path::PathBuf;

/// What a step acts on and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The Docker daemon answers `/_ping`.
    CheckDocker,
    /// kind found on PATH; its version is printed.
    UseKind {
        path: PathBuf,
    },
    /// kind fetched once per host, checksum verified, cached.
    DownloadKind {
        url: String,
        checksum_url: String,
        dest: PathBuf,
    },
    /// `latest` becomes the newest stable Istio release.
    ResolveLatestIstio,
    UseIstioctl {
        path: PathBuf,
    },
    DownloadIstioctl {
        version: String,
        url: String,
        checksum_url: String,
        dest: PathBuf,
    },
    /// An image pulled once per host, then loaded into each cluster.
    PullImage {
        image: String,
    },
    /// An external program, run with a timeout.
    Command {
        argv: Vec<String>,
        timeout_secs: u64,
    },
    /// The current kube context already runs Istio (`--cluster existing`).
    CheckExistingIstio {
        install: String,
    },
    /// Watch until the workload reports ready.
    WaitReady {
        namespace: String,
        kind: &'static str,
        name: String,
        timeout_secs: u64,
    },
    CreateNamespace {
        name: String,
        labels: Vec<(String, String)>,
    },
    /// Server-side apply of every object in a file.
    Apply {
        file: PathBuf,
        namespace: String,
    },
    /// curl in the client container, judged until consistent.
    Request {
        scenario: String,
        request: String,
        namespace: String,
        pod: String,
        container: String,
        argv: Vec<String>,
        deadline_secs: u64,
    },
    /// Delete what a file applied (objects outside the scenario's namespace included).
    Delete {
        file: PathBuf,
        namespace: String,
    },
    DeleteNamespace {
        name: String,
    },
    /// The harness's echo server, on kind's network as the scenarios' upstream host.
    StartUpstream {
        server: crate::upstream::EchoServer,
    },
    StopUpstream {
        container: String,
    },
    /// Secrets holding the run's certificates (server-side apply).
    CreateSecrets {
        namespace: String,
        names: Vec<String>,
    },
    /// Watch the proxies' config dumps until they no longer mention the hosts the
    /// scenario's ServiceEntries bring (before applying: a clean slate; after: gone).
    AwaitConfigGone {
        hosts: Vec<String>,
        proxies: Vec<String>,
    },
}

/// A step and the cluster it belongs to (none for host-wide steps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    pub cluster: Option<String>,
    /// Whether the step only runs in some cases (e.g. cleanup skipped with `--keep`).
    pub condition: Option<&'static str>,
    pub step: Step,
}

fn shell_words(argv: &[String]) -> String {
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

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Step::CheckDocker => write!(
                f,
                "check: Docker daemon reachable (GET /_ping on the Docker socket)"
            ),
            Step::UseKind { path } => write!(f, "check: kind at {} (kind version)", path.display()),
            Step::DownloadKind {
                url,
                checksum_url,
                dest,
            } => {
                write!(
                    f,
                    "download: {url} (sha256 from {checksum_url}) -> {}",
                    dest.display()
                )
            }
            Step::ResolveLatestIstio => write!(
                f,
                "resolve: `latest` to the newest stable Istio release (no -rc, -beta, -alpha)"
            ),
            Step::UseIstioctl { path } => write!(
                f,
                "check: istioctl at {} (istioctl version --remote=false)",
                path.display()
            ),
            Step::DownloadIstioctl {
                version,
                url,
                checksum_url,
                dest,
            } => {
                write!(
                    f,
                    "download: istioctl {version} from {url} (sha256 from {checksum_url}) -> {}",
                    dest.display()
                )
            }
            Step::PullImage { image } => write!(f, "run (timeout 600s): docker pull {image}"),
            Step::Command { argv, timeout_secs } => {
                write!(f, "run (timeout {timeout_secs}s): {}", shell_words(argv))
            }
            Step::CheckExistingIstio { install } => write!(
                f,
                "check: istiod and istio-egressgateway ready in istio-system (install profile {install} assumed; its mesh config is not compared)"
            ),
            Step::WaitReady {
                namespace,
                kind,
                name,
                timeout_secs,
            } => {
                write!(
                    f,
                    "watch (deadline {timeout_secs}s): {kind} {namespace}/{name} ready"
                )
            }
            Step::CreateNamespace { name, labels } => {
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "apply: Namespace {name} labels {}", labels.join(","))
            }
            Step::Apply { file, namespace } => write!(
                f,
                "apply (server-side): {} in namespace {namespace}",
                file.display()
            ),
            Step::Request {
                scenario,
                request,
                namespace,
                pod,
                container,
                argv,
                deadline_secs,
            } => write!(
                f,
                "request {scenario}/{request}: exec in {namespace}/{pod} container {container}: {}; read gateway and sidecar logs; judge until 3 consecutive passes (deadline {deadline_secs}s)",
                shell_words(argv)
            ),
            Step::Delete { file, namespace } => write!(
                f,
                "delete: objects of {} (namespace {namespace} unless stated)",
                file.display()
            ),
            Step::DeleteNamespace { name } => {
                write!(f, "delete: Namespace {name}, watch until gone")
            }
            Step::StartUpstream { server } => write!(
                f,
                "start (testcontainers): {server}; serving HTTP on 80, HTTPS on 443 with a certificate for {} from the run's CA, client certificates verified against it",
                server.aliases.join(",")
            ),
            Step::StopUpstream { container } => {
                write!(f, "remove: container {container}")
            }
            Step::CreateSecrets { namespace, names } => write!(
                f,
                "apply: Secrets {} in namespace {namespace} (the run's CA and client certificate)",
                names.join(", ")
            ),
            Step::AwaitConfigGone { hosts, proxies } => {
                write!(
                    f,
                    "watch: config dumps of {} (Envoy admin :15000 via port-forward) free of {}",
                    proxies.join(", "),
                    if hosts.is_empty() {
                        "-".to_owned()
                    } else {
                        hosts.join(", ")
                    }
                )
            }
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
}
