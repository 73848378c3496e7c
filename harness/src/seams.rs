//! The only ways out of the process for the engine: the Kubernetes API of a cluster,
//! the host's programs (kind, istioctl, docker) and downloads, and the Docker API
//! for the upstream container. `live` implements them for real; the project's test
//! support implements them as a simulated cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::jiff::Timestamp;

use crate::manifest::Object;

/// Trouble outside Istio's behaviour: a cluster, a program, an API that did not do
/// its part. Never a verdict on Istio.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InfraError {
    pub message: String,
    /// Worth retrying while the deadline allows (HTTP 429/5xx, a watch gone, a reset).
    pub transient: bool,
    /// Known at once to stay so (nothing can answer the request): no attempt is repeated.
    pub permanent: bool,
}

impl InfraError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
            permanent: false,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            transient: true,
            ..Self::new(message)
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::new(message)
        }
    }

    /// Classifies an API error text: a watch that expired (410), throttling (429),
    /// the server or a proxy unavailable (5xx), a connection dropped.
    pub fn from_api(message: impl Into<String>) -> Self {
        let message = message.into();
        let transient = [
            "410",
            "Gone",
            "429",
            "500",
            "502",
            "503",
            "504",
            "connection reset",
            "broken pipe",
            "timed out",
        ]
        .iter()
        .any(|m| message.contains(m));
        Self {
            message,
            transient,
            permanent: false,
        }
    }

    /// The same error with what was being done in front.
    pub fn context(self, what: &str) -> Self {
        Self {
            message: format!("{what}: {}", self.message),
            ..self
        }
    }
}

impl From<InfraError> for String {
    fn from(e: InfraError) -> Self {
        e.message
    }
}

impl From<String> for InfraError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

/// An object as applied, so that it can be deleted again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

impl Applied {
    pub fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// What an exec left. `exit_code` is `None` when the status was lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exec {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i32>,
}

/// An external program to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    pub timeout: Duration,
    /// Shown in progress lines, e.g. "creating cluster egc-1-22-1-registry-only".
    pub what: String,
}

/// What a finished (or killed) run left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub argv: Vec<String>,
    /// `None` when the run was killed or ended by a signal.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub timed_out: bool,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// The run as an error message: the command, how it ended, and the tail of stderr.
    pub fn failure(&self) -> String {
        let how = if self.timed_out {
            format!("timed out after {:.0}s", self.elapsed.as_secs_f64())
        } else {
            match self.exit_code {
                Some(code) => format!("exited with {code}"),
                None => "was killed by a signal".into(),
            }
        };
        let tail: Vec<&str> = self.stderr.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "`{}` {how}{}",
            self.argv.join(" "),
            if tail.is_empty() {
                String::new()
            } else {
                format!(":\n  {}", tail.join("\n  "))
            }
        )
    }

    /// The run if it succeeded, else its failure as an error.
    pub fn checked(self) -> Result<Self, InfraError> {
        if self.success() {
            Ok(self)
        } else {
            Err(InfraError::new(self.failure()))
        }
    }
}

/// What a download delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// The asset is the program itself.
    Binary,
    /// The program is this entry of a .tar.gz asset.
    TarGz(&'static str),
}

/// The Kubernetes API of one cluster: the operations the engine uses.
#[async_trait]
pub trait KubeApi: Send + Sync {
    async fn server_version(&self) -> Option<String>;
    async fn create_namespace(
        &self,
        name: &str,
        labels: &[(String, String)],
    ) -> Result<(), InfraError>;
    /// Deletes and watches until gone.
    async fn delete_namespace(&self, name: &str, timeout: Duration) -> Result<(), InfraError>;
    /// Server-side apply; objects without a namespace go into `namespace`.
    async fn apply(&self, objects: &[Object], namespace: &str) -> Result<Vec<Applied>, InfraError>;
    async fn delete(&self, applied: &[Applied]) -> Result<(), InfraError>;
    /// Restarts the Deployment's pods as `kubectl rollout restart` does: a new
    /// `restartedAt` annotation on its pod template (kube-rs `Api::restart`).
    async fn restart_deployment(&self, namespace: &str, name: &str) -> Result<(), InfraError>;
    /// Watches until the Deployment has all replicas available.
    async fn wait_deployment(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Duration, InfraError>;
    /// Watches until the pod is Ready (and has its sidecar when `sidecar`).
    async fn wait_pod(
        &self,
        namespace: &str,
        name: &str,
        sidecar: bool,
        timeout: Duration,
    ) -> Result<Duration, InfraError>;
    /// Names of the Running pods matching a label selector.
    async fn pods(&self, namespace: &str, selector: &str) -> Result<Vec<String>, InfraError>;
    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<Exec, InfraError>;
    async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        since: Option<Timestamp>,
        limit_bytes: Option<i64>,
    ) -> Result<Vec<String>, InfraError>;
    /// The Envoy config dump of a pod's proxy, as JSON text.
    async fn config_dump(
        &self,
        namespace: &str,
        pod: &str,
        timeout: Duration,
    ) -> Result<String, InfraError>;
    /// A pod's proxy's counters and gauges: Envoy admin `/stats`, text form.
    async fn envoy_stats(
        &self,
        namespace: &str,
        pod: &str,
        timeout: Duration,
    ) -> Result<String, InfraError>;
    async fn events(&self, namespace: &str) -> Result<Vec<String>, InfraError>;
    /// The images of a Deployment's pod template; `None` when there is no such one.
    async fn deployment_images(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Vec<String>>, InfraError>;
    /// One object as the API server holds it, status included; `None` when there is
    /// no such object. `namespace` is `None` for cluster-scoped kinds.
    async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<serde_json::Value>, InfraError>;
    /// One key of a ConfigMap; `None` when the ConfigMap or the key is missing.
    async fn config_map_value(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<String>, InfraError>;
}

/// Opens a [`KubeApi`] on a kubeconfig (`None`: the current context).
#[async_trait]
pub trait KubeConnector: Send + Sync {
    async fn connect(&self, kubeconfig: Option<&Path>) -> Result<Arc<dyn KubeApi>, InfraError>;
}

/// The host's programs, through one runner with deadlines, and downloads.
#[async_trait]
pub trait HostPrograms: Send + Sync {
    /// Runs a program; only failing to start is an error, the exit is in [`Ran`].
    async fn run(&self, command: Command) -> Result<Ran, InfraError>;
    /// Fetches `url`, checks it against the sha256 at `checksum_url`, installs it at
    /// `dest` (reused when present and valid).
    async fn download(
        &self,
        url: &str,
        checksum_url: &str,
        payload: Payload,
        dest: &Path,
        timeout: Duration,
    ) -> Result<PathBuf, InfraError>;
    /// The bytes of `url`, which must have the pinned `sha256`; cached at `dest`.
    async fn fetch_pinned(
        &self,
        url: &str,
        sha256: &str,
        dest: &Path,
        timeout: Duration,
    ) -> Result<Vec<u8>, InfraError>;
    /// Ends every program still running (interrupts).
    fn kill_all(&self);
}

/// The Docker API, for the upstream container.
#[async_trait]
pub trait DockerApi: Send + Sync {
    async fn ping(&self) -> Result<(), InfraError>;
    /// Starts the echo server with the run's certificates on its network and aliases.
    async fn start_upstream(
        &self,
        server: &crate::upstream::EchoServer,
        certs: &crate::upstream::Certs,
        timeout: Duration,
    ) -> Result<(), InfraError>;
    async fn remove_container(&self, name: &str, timeout: Duration) -> Result<(), InfraError>;
}

/// The three seams of one run.
#[derive(Clone)]
pub struct Seams {
    pub kube: Arc<dyn KubeConnector>,
    pub host: Arc<dyn HostPrograms>,
    pub docker: Arc<dyn DockerApi>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_worth_retrying_are_told_apart() {
        assert!(InfraError::from_api("ApiError: Service Unavailable (503)").transient);
        assert!(InfraError::from_api("watch: 410 Gone: too old resource version").transient);
        assert!(!InfraError::from_api("pods \"curl\" is forbidden (403)").transient);
        assert_eq!(
            InfraError::new("boom").context("applying x").to_string(),
            "applying x: boom"
        );
    }
}
