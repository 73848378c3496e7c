//! What one run observed, per request: the format live runs write and replay reads.
//! `None` means "not captured"; an empty list means "captured, and nothing was there".

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The format tag every recording carries.
pub const FORMAT: &str = "egress-conformance/recording/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    pub format: String,
    pub scenario: String,
    /// The Istio version the observations were made on.
    pub istio: String,
    /// Where the observations come from (a live run id, or a publication).
    pub source: String,
    pub context: Context,
    pub requests: Vec<Observation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Facts of the run that expectations may refer to (`${namespace}`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    pub namespace: String,
    pub client_pod: String,
    pub service_account: String,
    /// `local` when the harness's echo server answered (it reports the TLS it saw);
    /// absent for httpbin.org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

impl Context {
    pub fn var(&self, name: &str) -> Option<String> {
        match name {
            "namespace" => Some(self.namespace.clone()),
            "client_pod" => Some(self.client_pod.clone()),
            "service_account" => Some(self.service_account.clone()),
            _ => None,
        }
    }
}

/// One attempt of one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// The scenario's request name.
    pub name: String,
    /// The x-request-id sent.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The token the harness put in the User-Agent, by which log lines are found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// When the attempt was sent (RFC 3339, ms): a TCP line, which carries no id, must
    /// have started no earlier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub http_code: Option<u16>,
    /// The response body (curl's write-out removed).
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub stderr: Option<String>,
    /// Egress gateway access-log lines from when the request was sent.
    #[serde(default)]
    pub gateway_log: Option<Vec<String>>,
    /// Client sidecar access-log lines from when the request was sent.
    #[serde(default)]
    pub sidecar_log: Option<Vec<String>>,
    /// Ambient: ztunnel's connection lines from the scenario's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ztunnel_log: Option<Vec<String>>,
    /// Seconds from sending until curl returned, and other timings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_total: Option<f64>,
    /// The response headers curl received (`%{header_json}`: lower-case names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<std::collections::BTreeMap<String, Vec<String>>>,
    /// A request sent `repeat` times: the HTTP status of each send (0: none came), in
    /// the order they returned; the rest of the observation is the first send's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<u16>>,
    /// How much each Envoy stat the request's `stats` name grew over the attempt,
    /// by `<proxy>:<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat_deltas: Option<std::collections::BTreeMap<String, i64>>,
}

impl Recording {
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let recording: Recording =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if recording.format != FORMAT {
            return Err(format!(
                "{}: format `{}`, expected `{FORMAT}`",
                path.display(),
                recording.format
            ));
        }
        Ok(recording)
    }

    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn observation(&self, request: &str) -> Option<&Observation> {
        self.requests.iter().find(|o| o.name == request)
    }
}

/// Recordings shipped with a scenario: `scenarios/recordings/<scenario>@<istio>.json`.
pub fn shipped(dir: &Path, scenario: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.split_once('@'))
                    .is_some_and(|(name, _)| name == scenario)
        })
        .collect();
    found.sort();
    found
}
