//! The leaf of the crate: the modes, names and deadlines every layer shares. It
//! imports nothing of the crate, so plan, engine and report can all depend on it
//! without depending on one another.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every kind cluster and container the harness creates carries this prefix;
/// `egress prune` removes them.
pub const CLUSTER_PREFIX: &str = "egc-";
/// Consecutive passes that make a request's verdict consistent.
pub const CONSISTENT_PASSES: u32 = 3;
/// Stands in the planned curl argv for the fresh id of each attempt.
pub const ATTEMPT_ID: &str = "<uuid per attempt>";

/// Where the mesh's pieces are, as Istio's charts name them (istio/istio
/// manifests/charts/gateways/istio-egress/values.yaml: `istio: egressgateway`).
pub mod mesh {
    pub const ISTIO_NAMESPACE: &str = "istio-system";
    pub const GATEWAY_DEPLOYMENT: &str = "istio-egressgateway";
    pub const GATEWAY_SELECTOR: &str = "istio=egressgateway";
    pub const ISTIOD_DEPLOYMENT: &str = "istiod";
    pub const ISTIOD_SELECTOR: &str = "app=istiod";
    /// Ambient's node proxy (istio/istio manifests/charts/ztunnel/templates/daemonset.yaml:
    /// label `app: ztunnel`, container `istio-proxy`).
    pub const ZTUNNEL_SELECTOR: &str = "app=ztunnel";
    pub const ISTIOD_CONTAINER: &str = "discovery";
    pub const PROXY_CONTAINER: &str = "istio-proxy";
    /// The scenarios' client pod and its container (manifests/client/*.yaml).
    pub const CLIENT_POD: &str = "curl";
    pub const CLIENT_CONTAINER: &str = "curl";
    pub const CLIENT_SERVICE_ACCOUNT: &str = "default";
}

/// Where the scenarios' upstream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamMode {
    /// The harness's echo server on the kind network, answering as httpbin.org.
    #[default]
    Local,
    /// The real httpbin.org, as the article ran it.
    Internet,
}

impl UpstreamMode {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "local" => Ok(Self::Local),
            "internet" => Ok(Self::Internet),
            other => Err(format!(
                "--upstream takes `local` or `internet`, not `{other}`"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Internet => "internet",
        }
    }
}

/// Where scenarios run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterMode {
    /// kind clusters of the harness's own, with their own kubeconfig.
    #[default]
    Kind,
    /// The current kube context; nothing is created or deleted.
    Existing,
    /// kind clusters as the test support simulates them: the real engine, no
    /// cluster. Only the project's own test binary can run it.
    Simulated,
}

impl ClusterMode {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "kind" => Ok(Self::Kind),
            "existing" => Ok(Self::Existing),
            "simulated" => Ok(Self::Simulated),
            other => Err(format!(
                "--cluster takes `kind`, `existing` or `simulated`, not `{other}`"
            )),
        }
    }

    /// Whether the harness makes its own kind clusters (real or simulated).
    pub fn makes_clusters(self) -> bool {
        matches!(self, Self::Kind | Self::Simulated)
    }
}

/// When harness clusters are kept after their last scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Keep {
    #[default]
    Never,
    OnFailure,
    Always,
}

/// How results were obtained; reports keep them apart, and only `Live` is a live pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunMode {
    #[default]
    Live,
    Simulated,
}

/// Waits between polls: doubling from `initial` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Backoff {
    #[serde(with = "secs")]
    pub initial: Duration,
    #[serde(with = "secs")]
    pub max: Duration,
}

impl Backoff {
    pub fn next(&self, pause: Duration) -> Duration {
        (pause * 2).min(self.max)
    }
}

/// Every deadline of a live run, in one place (as Gateway API's conformance
/// `TimeoutConfig`). `egress plan` prints the values in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    #[serde(with = "secs")]
    pub download: Duration,
    #[serde(with = "secs")]
    pub tool_version: Duration,
    #[serde(with = "secs")]
    pub image_pull: Duration,
    #[serde(with = "secs")]
    pub cluster_create: Duration,
    #[serde(with = "secs")]
    pub cluster_delete: Duration,
    #[serde(with = "secs")]
    pub coredns_ready: Duration,
    #[serde(with = "secs")]
    pub image_load: Duration,
    /// istioctl's own `--readiness-timeout`.
    #[serde(with = "secs")]
    pub istio_readiness: Duration,
    /// The istioctl process as a whole.
    #[serde(with = "secs")]
    pub istio_install: Duration,
    #[serde(with = "secs")]
    pub istio_ready: Duration,
    /// `--cluster existing`: how long its istiod and gateway may take to answer ready.
    #[serde(with = "secs")]
    pub existing_istio_ready: Duration,
    #[serde(with = "secs")]
    pub upstream_start: Duration,
    #[serde(with = "secs")]
    pub docker_call: Duration,
    /// One Kubernetes API call (apply, list, logs, events).
    #[serde(with = "secs")]
    pub kube_call: Duration,
    #[serde(with = "secs")]
    pub client_ready: Duration,
    #[serde(with = "secs")]
    pub namespace_delete: Duration,
    /// How long a request may take to become consistent (`--deadline`).
    #[serde(with = "secs")]
    pub request: Duration,
    /// How long the proxies may take to forget an earlier scenario's hosts.
    #[serde(with = "secs")]
    pub clean_config: Duration,
    /// One config dump read.
    #[serde(with = "secs")]
    pub config_dump: Duration,
    /// How long a log line may take to show up after the request returned. Istio's
    /// pilot-agent starts Envoy with `--file-flush-interval-msec 1000` (istio/istio
    /// pkg/envoy/proxy.go), so a line is on disk a second after its request.
    #[serde(with = "secs")]
    pub log_line: Duration,
    /// How long to keep reading before believing a line is really absent.
    #[serde(with = "secs")]
    pub absence_settle: Duration,
    /// Added to curl's `--max-time` for the exec around it.
    #[serde(with = "secs")]
    pub exec_slack: Duration,
    #[serde(with = "secs")]
    pub export_logs: Duration,
    /// Gateway API CRDs applied until every one is Established.
    #[serde(with = "secs")]
    pub gateway_api_crds: Duration,
    /// How long Gateway API objects may take to show their expected conditions.
    #[serde(with = "secs")]
    pub route_status: Duration,
    /// The Deployment Istio makes for a Gateway API Gateway, until available.
    #[serde(with = "secs")]
    pub gateway_deployment: Duration,
    pub backoff: Backoff,
}

impl Default for Timeouts {
    fn default() -> Self {
        let s = Duration::from_secs;
        Self {
            download: s(300),
            tool_version: s(30),
            image_pull: s(600),
            cluster_create: s(300),
            cluster_delete: s(120),
            coredns_ready: s(180),
            image_load: s(300),
            istio_readiness: s(300),
            istio_install: s(420),
            istio_ready: s(300),
            existing_istio_ready: s(30),
            upstream_start: s(120),
            docker_call: s(60),
            kube_call: s(30),
            client_ready: s(180),
            namespace_delete: s(180),
            request: s(60),
            clean_config: s(60),
            config_dump: s(20),
            log_line: s(10),
            absence_settle: s(3),
            exec_slack: s(15),
            export_logs: s(180),
            gateway_api_crds: s(120),
            route_status: s(60),
            gateway_deployment: s(180),
            backoff: Backoff {
                initial: Duration::from_millis(250),
                max: s(2),
            },
        }
    }
}

impl fmt::Display for Timeouts {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let value = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        let Some(map) = value.as_object() else {
            return Err(fmt::Error);
        };
        let parts: Vec<String> = map
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::Object(b) => format!(
                    "{k}={}s..{}s",
                    b.get("initial").cloned().unwrap_or_default(),
                    b.get("max").cloned().unwrap_or_default()
                ),
                other => format!("{k}={other}s"),
            })
            .collect();
        f.write_str(&parts.join(" "))
    }
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Where the case ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The install profile (`manifests/install/<name>.yaml`).
    pub install: String,
    /// `local` (the harness's echo server) or `internet` (httpbin.org).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The API server's version, e.g. `v1.33.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The recording replayed (recordings only), as shipped under `scenarios/recordings/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
}

/// Where a live run's time went, from the durations of its steps. Clusters set up at
/// once overlap, so phases may sum to more than the wall time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunTiming {
    /// From the first step to the last.
    pub wall_seconds: f64,
    /// Downloads, image pulls, tool checks.
    pub host_seconds: f64,
    /// kind create, node readiness, image loads, the upstream and its Secrets.
    pub cluster_setup_seconds: f64,
    /// istioctl install and istiod and the gateway becoming ready.
    pub istio_install_seconds: f64,
    /// Every scenario's own steps, from its namespace to its cleanup.
    pub scenario_seconds: f64,
    /// Of those, the time the requests took to become consistent.
    pub consistency_seconds: f64,
    /// Of those, the time requests that never became consistent spent waiting out
    /// their deadline (a failure or a known failure costs its whole `--deadline`).
    #[serde(default)]
    pub deadline_wait_seconds: f64,
    /// Clusters deleted, the upstream stopped.
    pub teardown_seconds: f64,
    /// CPU time of the harness's own process over the run (user and system), which
    /// is what it spends when not waiting on kind, istioctl, Kubernetes or Envoy. In a
    /// simulated run the simulation shares the process and is counted too.
    pub harness_cpu_seconds: f64,
    /// The durations are on the simulated cluster's virtual clock (tokio's paused
    /// time): what the waits would take, not time anyone waited.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub virtual_clock: bool,
}

impl RunTiming {
    /// The harness's own share of the wall time.
    pub fn overhead_share(&self) -> f64 {
        if self.wall_seconds > 0.0 && self.harness_cpu_seconds > 0.0 {
            self.harness_cpu_seconds / self.wall_seconds
        } else {
            0.0
        }
    }
}

/// CPU time this process has used so far (user + system), from getrusage(2).
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF needs nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The UTC time now as a run id (sorts by time).
/// Text from outside (log lines, headers, files) as the terminal may show it: control
/// characters (C0 but newline and tab, DEL, C1 — ESC among them, which starts terminal
/// escape sequences) become visible `\u{..}` escapes.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    escape_where(
        text,
        |c| (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c),
        |c| c.escape_unicode().to_string(),
    )
}

/// JSON text for a terminal: serde_json escapes C0 controls but writes DEL and the C1
/// controls (U+0080..U+009F, CSI among them) as they are; those, which can only sit
/// inside strings, become `\u00XX` escapes, so the JSON means the same.
pub fn json_terminal_safe(json: &str) -> std::borrow::Cow<'_, str> {
    escape_where(
        json,
        |c| ('\u{7f}'..='\u{9f}').contains(&c),
        |c| format!("\\u{:04x}", u32::from(c)),
    )
}

/// `text` with each character `unsafe_char` picks written by `escape`; borrowed when
/// there is none.
fn escape_where(
    text: &str,
    unsafe_char: impl Fn(char) -> bool,
    escape: impl Fn(char) -> String,
) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(&unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if unsafe_char(c) {
                    escape(c)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Whether `id` may name a folder under reports/: letters, digits, `-`, `_`, `.`, not
/// starting with `.`, at most [`RUN_ID_MAX`] characters.
pub fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= RUN_ID_MAX
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Longest run id: a folder name with room for a suffix on every file system.
pub const RUN_ID_MAX: usize = 100;

/// Now, as a run on tokio's paused time sees the wall clock (the simulated cluster's
/// virtual clock, tests/sim): the wall clock when first asked, plus the tokio time
/// since. Under real time it follows the wall clock, short of clock adjustments.
pub fn virtual_now() -> k8s_openapi::jiff::Timestamp {
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    static ANCHOR: std::sync::OnceLock<(Timestamp, std::time::Instant)> =
        std::sync::OnceLock::new();
    let (wall, instant) = *ANCHOR.get_or_init(|| (Timestamp::now(), std::time::Instant::now()));
    // A paused runtime's clock starts at its creation, possibly before the anchor.
    let tokio_now = tokio::time::Instant::now().into_std();
    let since = match tokio_now.checked_duration_since(instant) {
        Some(ahead) => SignedDuration::try_from(ahead).unwrap_or(SignedDuration::MAX),
        None => -SignedDuration::try_from(instant - tokio_now).unwrap_or(SignedDuration::MAX),
    };
    wall.checked_add(since).unwrap_or(wall)
}

pub fn run_id() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_outside_are_shown_not_obeyed() {
        assert_eq!(terminal_safe("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            terminal_safe("\u{1b}[2J\u{1b}]0;pwned\u{7}x\u{9b}y\rz"),
            "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}x\\u{9b}y\\u{d}z"
        );
    }

    #[test]
    fn timeouts_print_every_deadline_in_seconds() {
        let text = Timeouts::default().to_string();
        assert!(text.contains("cluster_create=300.0s"), "{text}");
        assert!(text.contains("backoff=0.25s..2.0s"), "{text}");
        assert_eq!(text.matches('=').count(), 27, "{text}");
    }

    #[test]
    fn modes_parse_and_refuse_with_the_choices() {
        assert_eq!(ClusterMode::parse("simulated"), Ok(ClusterMode::Simulated));
        assert!(
            ClusterMode::parse("minikube")
                .unwrap_err()
                .contains("`kind`, `existing` or `simulated`")
        );
        assert_eq!(UpstreamMode::parse("internet"), Ok(UpstreamMode::Internet));
    }
}
