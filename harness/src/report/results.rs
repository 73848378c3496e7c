//! `results.json`: everything a run found, in a versioned schema. The other report
//! files are rendered from it alone, so `egress report merge` can rebuild them.
//!
//! The schema is published as `reports/results.schema.json` (generated from these
//! types; a test keeps the two equal). A change that breaks readers bumps [`FORMAT`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The format tag every results file carries.
pub const FORMAT: &str = "egress-conformance/results/v1";

/// One run (or several merged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Results {
    /// Always `egress-conformance/results/v1`.
    pub format: String,
    /// The run's id, also its folder name under `reports/`.
    pub run_id: String,
    /// When the run started, RFC 3339 in UTC.
    pub started: String,
    /// When the report was written, RFC 3339 in UTC.
    pub finished: String,
    /// The harness version that wrote the file.
    pub harness: String,
    /// `--shard K/N` of the run, if it was one shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The runs this one was merged from (`egress report merge`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// Trouble that kept the run from judging anything (e.g. an unknown scenario name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// The run was interrupted (Ctrl-C): cases still running are errors.
    #[serde(default)]
    pub interrupted: bool,
    /// Where a live or simulated run's time went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<crate::model::RunTiming>,
    /// One per scenario and Istio version.
    pub cases: Vec<Case>,
}

/// Where a case's observations came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A cluster this run set up (or `--cluster existing`).
    Live,
    /// A shipped recording replayed through the judge.
    Recording,
    /// The real engine against the test support's simulated cluster: never a live pass.
    Simulated,
}

/// The verdict on one scenario on one Istio version.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Wrong behaviour: an expectation failed.
    Fail,
    /// A scenario marked known-failing passed: the bug may be fixed.
    UnexpectedPass,
    /// Infrastructure or harness trouble (cluster, download, image pull): no verdict on Istio.
    Error,
    /// Passed, but only after failing once the configuration had been seen to work.
    Flaky,
    /// Failed as its known issue says.
    KnownFailure,
    /// Not run: a known issue in `skip` mode, a version outside the scenario's range, no recording.
    Skipped,
    Pass,
}

impl Status {
    /// Whether this status fails the run.
    pub fn is_bad(self) -> bool {
        matches!(self, Status::Fail | Status::UnexpectedPass | Status::Error)
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::UnexpectedPass => "unexpectedly passing",
            Status::Flaky => "flaky",
            Status::KnownFailure => "known failure",
            Status::Skipped => "skipped",
        }
    }

    /// A one-character mark for tables read in a terminal or a CI summary.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✅",
            Status::Fail => "❌",
            Status::Error => "⚠️",
            Status::UnexpectedPass => "❗",
            Status::Flaky => "🔁",
            Status::KnownFailure => "☑️",
            Status::Skipped => "➖",
        }
    }

    pub const ALL: [Status; 7] = [
        Status::Fail,
        Status::UnexpectedPass,
        Status::Error,
        Status::Flaky,
        Status::KnownFailure,
        Status::Skipped,
        Status::Pass,
    ];
}

/// One scenario on one Istio version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub scenario: String,
    pub description: String,
    /// The seed article's section the scenario reproduces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `None` when no version was reached (a broken scenario file, no recording).
    pub istio: Option<String>,
    pub source: Source,
    pub environment: Environment,
    pub status: Status,
    /// Why: the error, the skip reason, or the failed expectations in a line each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_issue: Option<KnownIssueRef>,
    pub requests: Vec<RequestResult>,
    /// Steps of the live run and how long each took.
    #[serde(default)]
    pub timings: Vec<StepTiming>,
    /// Evidence files, relative to the report folder.
    #[serde(default)]
    pub evidence: Vec<String>,
    pub duration_seconds: f64,
}

impl Results {
    /// [`Results::needing_a_look`] with errors of one cause together: a host that
    /// cannot reach GitHub fails every case with one message, which is one problem.
    pub fn needing_a_look_grouped(&self) -> Vec<Vec<&Case>> {
        let mut groups: Vec<Vec<&Case>> = Vec::new();
        for case in self.needing_a_look() {
            let same = groups.iter_mut().find(|g| {
                case.status == Status::Error
                    && g[0].status == Status::Error
                    && g[0].message.is_some()
                    && g[0].message == case.message
            });
            match same {
                Some(group) => group.push(case),
                None => groups.push(vec![case]),
            }
        }
        groups
    }

    /// The cases a reader must look at ([`Case::needs_a_look`]), errors first, then
    /// failures, unexpected passes and flaky verdicts: the one list summary.md and
    /// index.html both show under "Needs a look".
    pub fn needing_a_look(&self) -> Vec<&Case> {
        [
            Status::Error,
            Status::Fail,
            Status::UnexpectedPass,
            Status::Flaky,
        ]
        .into_iter()
        .flat_map(|s| self.cases.iter().filter(move |c| c.status == s))
        .filter(|c| c.needs_a_look())
        .collect()
    }

    /// A line that says the results are not live, when some are not (a simulated or
    /// replayed pass is never a live one).
    pub fn mode_notice(&self) -> Option<String> {
        let simulated = self
            .cases
            .iter()
            .filter(|c| c.source == Source::Simulated)
            .count();
        let replayed = self
            .cases
            .iter()
            .filter(|c| c.source == Source::Recording)
            .count();
        match (simulated, replayed) {
            (0, 0) => None,
            (s, 0) => Some(format!(
                "SIMULATED: {s} case(s) ran the real engine against the test support's simulated cluster; none is a live result."
            )),
            (0, r) => Some(format!(
                "RECORDINGS: {r} case(s) judged shipped recordings again; none is a live result."
            )),
            (s, r) => Some(format!(
                "SIMULATED and RECORDINGS: {s} simulated and {r} replayed case(s); none is a live result."
            )),
        }
    }
}

impl Case {
    /// The status as reports print it: a result that is not live says so, so a
    /// simulated or replayed pass is never read as a live one.
    pub fn status_text(&self) -> String {
        match self.source {
            Source::Live => self.status.label().to_owned(),
            Source::Recording => format!("{} (recording)", self.status.label()),
            Source::Simulated => format!("{} (simulated)", self.status.label()),
        }
    }

    /// Whether a nightly reader must look at it: a failure, an error, a flaky verdict
    /// or a known issue that no longer shows.
    pub fn needs_a_look(&self) -> bool {
        matches!(
            self.status,
            Status::Fail | Status::Error | Status::Flaky | Status::UnexpectedPass
        )
    }

    /// The command that runs this case again, as it ran.
    pub fn rerun(&self) -> String {
        let version = self
            .istio
            .as_deref()
            .map(|v| format!(" --istio {v}"))
            .unwrap_or_default();
        match self.source {
            Source::Live => {
                let upstream = match self.environment.upstream.as_deref() {
                    Some("internet") => " --upstream internet",
                    _ => "",
                };
                format!(
                    "egress run --scenario {}{version}{upstream} --keep-on-failure",
                    self.scenario
                )
            }
            Source::Simulated => format!(
                "cargo test -- --include-ignored --cluster simulated --scenario {}{version}",
                self.scenario
            ),
            Source::Recording => format!("cargo test -- {}::replay", self.scenario),
        }
    }

    /// The key merges and baselines match cases by.
    pub fn key(&self) -> (String, String) {
        (
            self.scenario.clone(),
            self.istio.clone().unwrap_or_default(),
        )
    }
}

pub use crate::model::Environment;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnownIssueRef {
    pub url: String,
    /// `xfail`, `flaky` or `skip`.
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One request of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestResult {
    pub name: String,
    pub url: String,
    pub passed: bool,
    /// The verdicts of the last judged attempt.
    pub verdicts: Vec<VerdictRecord>,
    /// Attempts made (1 for a recording), and how many could not be judged.
    pub attempts: u32,
    #[serde(default)]
    pub inconclusive: u32,
    /// Seconds from the first attempt until the verdicts held; `None` if they never did.
    #[serde(default)]
    pub consistent_after_seconds: Option<f64>,
    #[serde(default)]
    pub elapsed_seconds: f64,
    /// Failed attempts after one had passed: what makes a case flaky.
    #[serde(default)]
    pub relapses: u32,
    /// The verdicts of the first failed attempt after a pass, when there was one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_relapse: Vec<VerdictRecord>,
    /// The path the request took, hop by hop, as the evidence shows it.
    pub hops: Vec<Hop>,
}

/// One expectation, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerdictRecord {
    /// What was judged, e.g. `gateway_log.upstream_cluster`.
    pub subject: String,
    pub expected: String,
    /// `None` when nothing was there.
    pub observed: Option<String>,
    pub outcome: Outcome,
    /// The header or log line looked at.
    #[serde(default)]
    pub evidence: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Fail,
    NotObserved,
}

/// A hop between two parts of the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hop {
    pub from: Node,
    pub to: Node,
    pub protocol: Protocol,
    /// What the protocol was read from (a log field, a header, the URL).
    pub evidence: String,
    /// `true` when read from the scenario rather than seen (drawn dashed).
    #[serde(default)]
    pub inferred: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Node {
    Client,
    Sidecar,
    EgressGateway,
    Upstream,
}

impl Node {
    pub fn label(self) -> &'static str {
        match self {
            Node::Client => "client",
            Node::Sidecar => "sidecar",
            Node::EgressGateway => "egress gateway",
            Node::Upstream => "upstream",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Plain HTTP.
    Http,
    /// TLS the application opened (curl https://), not touched by the proxy.
    Tls,
    /// Istio mutual TLS between proxies.
    Mtls,
    /// The proxy received HTTP and opened TLS to the upstream.
    TlsOrigination,
    /// The proxy opened TLS with a client certificate to the upstream.
    MtlsOrigination,
    /// The application's TLS forwarded as TCP by SNI.
    Passthrough,
    /// The application's TLS carried inside Istio mTLS.
    MtlsAroundTls,
    /// The proxy refused the request (REGISTRY_ONLY, no route).
    Blocked,
    /// The request did not get this far.
    NotReached,
    /// Nothing captured tells.
    Unknown,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Tls => "TLS (app)",
            Protocol::Mtls => "mTLS",
            Protocol::TlsOrigination => "TLS origination",
            Protocol::MtlsOrigination => "mTLS origination",
            Protocol::Passthrough => "TLS passthrough",
            Protocol::MtlsAroundTls => "mTLS around TLS",
            Protocol::Blocked => "blocked",
            Protocol::NotReached => "not reached",
            Protocol::Unknown => "not captured",
        }
    }
}

/// A step of a live run and its duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepTiming {
    pub step: String,
    pub seconds: f64,
}

impl Results {
    pub fn read(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let results: Results = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a results file: {e}", path.display()))?;
        if results.format != FORMAT {
            return Err(format!(
                "{}: format `{}`, this harness reads `{FORMAT}`",
                path.display(),
                results.format
            ));
        }
        Ok(results)
    }

    /// The Istio versions of the cases, oldest first; cases without one last.
    pub fn versions(&self) -> Vec<Option<String>> {
        let mut versions: Vec<Option<String>> = Vec::new();
        for c in &self.cases {
            if !versions.contains(&c.istio) {
                versions.push(c.istio.clone());
            }
        }
        versions.sort_by_key(|v| match v {
            Some(v) => (0, semver::Version::parse(v).ok(), v.clone()),
            None => (1, None, String::new()),
        });
        versions
    }

    /// Scenario names in the order they first appear.
    pub fn scenarios(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for c in &self.cases {
            if !names.contains(&c.scenario.as_str()) {
                names.push(&c.scenario);
            }
        }
        names
    }

    pub fn case(&self, scenario: &str, istio: Option<&str>) -> Option<&Case> {
        self.cases
            .iter()
            .find(|c| c.scenario == scenario && c.istio.as_deref() == istio)
    }

    pub fn count(&self, status: Status) -> usize {
        self.cases.iter().filter(|c| c.status == status).count()
    }
}

#[cfg(test)]
impl Case {
    /// A live case with nothing judged, for tests.
    pub fn example(scenario: &str, istio: &str, status: Status) -> Self {
        Case {
            scenario: scenario.into(),
            description: String::new(),
            section: None,
            tags: vec![],
            istio: Some(istio.into()),
            source: Source::Live,
            environment: Environment::default(),
            status,
            message: None,
            known_issue: None,
            requests: vec![],
            timings: vec![],
            evidence: vec![],
            duration_seconds: 0.0,
        }
    }
}

#[cfg(test)]
impl Results {
    /// A run of `cases`, for tests.
    pub fn example(run_id: &str, cases: Vec<Case>) -> Self {
        Results {
            format: FORMAT.into(),
            run_id: run_id.into(),
            started: String::new(),
            finished: String::new(),
            harness: String::new(),
            shard: None,
            merged_from: vec![],
            problems: vec![],
            interrupted: false,
            timing: None,
            cases,
        }
    }
}

/// The JSON Schema of [`Results`], as published in `reports/results.schema.json`.
pub fn schema() -> String {
    let schema = schemars::schema_for!(Results);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}
