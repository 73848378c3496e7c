//! Faults the simulation can be told to inject (`EGRESS_SIMULATED_FAULTS=a,b`).

use std::collections::BTreeSet;

/// One way for the simulated world to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// `kind create cluster` fails every time.
    ClusterCreateFails,
    /// `kind load docker-image` fails.
    ImageLoadFails,
    /// istiod never becomes available.
    IstiodNeverReady,
    /// The client pod never becomes ready.
    PodNeverReady,
    /// The client pod comes up without its istio-proxy sidecar.
    NoSidecarInjected,
    /// The exec's connection drops: no write-out, no status.
    ExecLost,
    /// The exec does not answer within its timeout.
    ExecTimeout,
    /// Two gateway replicas; the one that logs the requests cannot be read.
    GatewayLogsUnreadable,
    /// Access-log lines appear 2 s after the request.
    LogLineLate,
    /// Access-log lines never appear.
    LogLineNever,
    /// The proxies never forget a deleted ServiceEntry's host.
    ConfigDumpKeepsHost,
    /// The first readiness watch ends with 410 Gone.
    WatchGone410,
    /// The first API calls answer 503.
    Apiserver503,
    /// SIGINT to this process during the first request.
    Interrupt,
    /// Every request's trace is sampled (character 14 of its id rewritten).
    TraceSampled,
    /// Docker's containerd image store: `kind load` fails with "content digest …
    /// not found" (kubernetes-sigs/kind#3795, the output as in #3845).
    ContainerdImageStore,
    /// A Gateway API CRD file's bytes are not the pinned ones (a moved tag, a proxy).
    CrdDigestMismatch,
    /// Istio never attaches the routes: every route parent is Accepted=False
    /// (NotAllowedByListeners) and every listener has attachedRoutes 0.
    RouteNeverAttached,
    /// Another run makes the cluster between `kind get clusters` and `kind create`.
    ClusterCreatedMeanwhile,
    /// A deleted CRD never goes (its cleanup finalizer does not finish).
    CrdStuckTerminating,
}

impl Fault {
    pub const ALL: [Fault; 20] = [
        Fault::ClusterCreateFails,
        Fault::ImageLoadFails,
        Fault::IstiodNeverReady,
        Fault::PodNeverReady,
        Fault::NoSidecarInjected,
        Fault::ExecLost,
        Fault::ExecTimeout,
        Fault::GatewayLogsUnreadable,
        Fault::LogLineLate,
        Fault::LogLineNever,
        Fault::ConfigDumpKeepsHost,
        Fault::WatchGone410,
        Fault::Apiserver503,
        Fault::Interrupt,
        Fault::TraceSampled,
        Fault::ContainerdImageStore,
        Fault::CrdDigestMismatch,
        Fault::RouteNeverAttached,
        Fault::ClusterCreatedMeanwhile,
        Fault::CrdStuckTerminating,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::ClusterCreateFails => "cluster-create-fails",
            Fault::ImageLoadFails => "image-load-fails",
            Fault::IstiodNeverReady => "istiod-never-ready",
            Fault::PodNeverReady => "pod-never-ready",
            Fault::NoSidecarInjected => "no-sidecar-injected",
            Fault::ExecLost => "exec-lost",
            Fault::ExecTimeout => "exec-timeout",
            Fault::GatewayLogsUnreadable => "gateway-logs-unreadable",
            Fault::LogLineLate => "log-line-late",
            Fault::LogLineNever => "log-line-never",
            Fault::ConfigDumpKeepsHost => "config-dump-keeps-host",
            Fault::WatchGone410 => "watch-gone-410",
            Fault::Apiserver503 => "apiserver-503",
            Fault::Interrupt => "interrupt",
            Fault::TraceSampled => "trace-sampled",
            Fault::ContainerdImageStore => "containerd-image-store",
            Fault::CrdDigestMismatch => "crd-digest-mismatch",
            Fault::RouteNeverAttached => "route-never-attached",
            Fault::ClusterCreatedMeanwhile => "cluster-created-meanwhile",
            Fault::CrdStuckTerminating => "crd-stuck-terminating",
        }
    }

    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "EGRESS_SIMULATED_FAULTS: no fault `{name}`; known: {}",
                    known.join(", ")
                )
            })
    }
}

/// The faults of one simulation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults(pub BTreeSet<Fault>);

impl Faults {
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(Fault::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }

    pub fn from_env() -> Result<Self, String> {
        Self::parse(&std::env::var("EGRESS_SIMULATED_FAULTS").unwrap_or_default())
    }

    pub fn of(faults: &[Fault]) -> Self {
        Self(faults.iter().copied().collect())
    }

    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }
}

/// API calls that answer 503 under `apiserver-503`.
pub const FAILING_API_CALLS: u32 = 3;
