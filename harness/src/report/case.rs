//! What a trial found, as a report case: the status with known issues applied, the
//! verdicts, each request's path, the evidence. The trial's own pass or fail is read
//! from the case ([`trial_outcome`]), so libtest and the reports never disagree.

use std::path::Path;

use super::hops::{self, PathFacts};
use super::results::{
    Case, Environment, KnownIssueRef, Outcome, RequestResult, Source, Status, StepTiming,
    VerdictRecord,
};
use crate::engine::ScenarioRun;
use crate::judge::{self, Verdict};
use crate::model::RunMode;
use crate::plan::IstioRelease;
use crate::recording::Recording;
use crate::scenario::{KnownIssue, KnownIssueMode, Scenario};
use crate::suite::Workspace;

/// The status of a judged case. `relapsed`: it passed in the end, but failed again
/// after having passed once.
pub fn classify(passed: bool, relapsed: bool, known: Option<&KnownIssue>) -> Status {
    match (known.map(|k| k.mode), passed) {
        (Some(KnownIssueMode::Skip), _) => Status::Skipped,
        (Some(KnownIssueMode::Xfail), true) => Status::UnexpectedPass,
        (Some(KnownIssueMode::Xfail | KnownIssueMode::Flaky), false) => Status::KnownFailure,
        (None, false) => Status::Fail,
        (_, true) if relapsed => Status::Flaky,
        (_, true) => Status::Pass,
    }
}

/// A case with nothing judged yet.
pub fn base(
    scenario: &Scenario,
    istio: Option<&str>,
    source: Source,
    environment: Environment,
    status: Status,
    message: Option<String>,
) -> Case {
    let known = istio
        .and_then(|v| semver::Version::parse(v).ok())
        .and_then(|v| scenario.known_issue_for(&v).cloned());
    Case {
        scenario: scenario.name().to_owned(),
        description: scenario.description.clone(),
        section: scenario.section.clone(),
        tags: scenario.tags.iter().map(|t| t.value.clone()).collect(),
        istio: istio.map(str::to_owned),
        source,
        environment,
        status,
        message,
        known_issue: known.map(|k| KnownIssueRef {
            url: k.url.value.clone(),
            mode: mode_name(k.mode).to_owned(),
            note: k.note.clone(),
        }),
        requests: Vec::new(),
        timings: Vec::new(),
        evidence: Vec::new(),
        duration_seconds: 0.0,
    }
}

/// A live case that never got a verdict: setup trouble, or a trial cut short.
pub fn live_error(
    scenario: &Scenario,
    istio: &IstioRelease,
    source: Source,
    environment: Environment,
    message: String,
) -> Case {
    base(
        scenario,
        Some(&istio.to_string()),
        source,
        environment,
        Status::Error,
        Some(message),
    )
}

/// A scenario file that does not load: an error on no version.
pub fn broken(file_stem: &str, problems: &str) -> Case {
    Case {
        scenario: file_stem.to_owned(),
        description: "the scenario file does not load".into(),
        section: None,
        tags: Vec::new(),
        istio: None,
        source: Source::Recording,
        environment: Environment::default(),
        status: Status::Error,
        message: Some(problems.to_owned()),
        known_issue: None,
        requests: Vec::new(),
        timings: Vec::new(),
        evidence: Vec::new(),
        duration_seconds: 0.0,
    }
}

fn mode_name(mode: KnownIssueMode) -> &'static str {
    match mode {
        KnownIssueMode::Xfail => "xfail",
        KnownIssueMode::Flaky => "flaky",
        KnownIssueMode::Skip => "skip",
    }
}

/// Whether the scenario's client pod gets a sidecar (read from its manifest).
pub fn client_has_sidecar(scenario: &Scenario, ws: &Workspace) -> bool {
    let file = ws
        .manifests_dir()
        .join("client")
        .join(format!("{}.yaml", scenario.client.value));
    crate::manifest::parse_file(&file)
        .map(|objects| crate::manifest::wants_sidecar(&objects))
        .unwrap_or(true)
}

/// A shipped recording judged again.
pub fn from_replay(
    scenario: &Scenario,
    recording: &Recording,
    recording_name: &str,
    sidecar: bool,
) -> Case {
    let environment = Environment {
        install: scenario.install.value.clone(),
        upstream: Some(
            recording
                .context
                .upstream
                .clone()
                .unwrap_or_else(|| "internet".into()),
        ),
        recording: Some(recording_name.to_owned()),
        ..Environment::default()
    };
    let mut case = base(
        scenario,
        Some(&recording.istio),
        Source::Recording,
        environment,
        Status::Error,
        None,
    );
    let istio = match crate::versions::parse_version(&recording.istio) {
        Ok(v) => v,
        Err(e) => {
            case.message = Some(format!("{recording_name}: {e}"));
            return case;
        }
    };
    let known = scenario.known_issue_for(&istio);
    if let Some(k) = known.filter(|k| k.mode == KnownIssueMode::Skip) {
        case.status = Status::Skipped;
        case.message = Some(format!("known issue {} (skip)", k.url.value));
        return case;
    }
    let facts = PathFacts {
        sidecar,
        local_upstream: recording.context.upstream.as_deref() == Some("local"),
    };
    for request in &scenario.requests {
        let Some(obs) = recording.observation(&request.name.value) else {
            case.message = Some(format!(
                "{recording_name} has no observation of request `{}`",
                request.name.value
            ));
            return case;
        };
        let verdicts = judge::judge(request, obs, &recording.context, &istio);
        case.requests.push(RequestResult {
            name: request.name.value.clone(),
            url: request.url.value.clone(),
            passed: judge::passed(&verdicts),
            verdicts: records(&verdicts),
            attempts: 1,
            inconclusive: 0,
            consistent_after_seconds: None,
            elapsed_seconds: obs.time_total.unwrap_or_default(),
            relapses: 0,
            first_relapse: Vec::new(),
            hops: hops::hops(request, obs, &facts),
        });
    }
    let passed = case.requests.iter().all(|r| r.passed);
    case.status = classify(passed, false, known);
    case.message = failure_message(&case);
    if !scenario.applies_to(&istio) {
        // The article's 1.19.3 output under a `>=1.22` scenario: it still checks the
        // judge, but says nothing about that release.
        let note = format!(
            "recorded on {}, outside the scenario's range {}: replayed to check the judge, not a verdict on that release",
            recording.istio, scenario.istio
        );
        case.message = Some(match case.message.take() {
            Some(m) => format!("{note}\n{m}"),
            None => note,
        });
    }
    case
}

/// The name the status check goes by among a case's requests (no request can have
/// it: request names are DNS labels).
pub const STATUS_CHECK: &str = "status (before traffic)";

/// A live run of a scenario on one mesh. `report_dir` is what evidence names are
/// relative to.
pub fn from_live(scenario: &Scenario, run: &ScenarioRun, report_dir: &Path) -> Case {
    let source = match run.mode {
        RunMode::Live => Source::Live,
        RunMode::Simulated => Source::Simulated,
    };
    let mut case = base(
        scenario,
        Some(&run.istio),
        source,
        run.environment.clone(),
        Status::Error,
        None,
    );
    if let Some(reason) = &run.skipped {
        case.status = Status::Skipped;
        case.message = Some(reason.clone());
        return case;
    }
    let facts = PathFacts {
        sidecar: run.sidecar.unwrap_or(true),
        local_upstream: run.environment.upstream.as_deref() == Some("local"),
    };
    // The status first: a route that never attached explains the requests after it.
    if let Some(status) = &run.status {
        case.requests.push(RequestResult {
            name: STATUS_CHECK.into(),
            url: "Gateway API status, read before any request".into(),
            passed: status.passed(),
            verdicts: records(&status.verdicts),
            attempts: status.reads,
            inconclusive: 0,
            consistent_after_seconds: status.passed().then_some(status.elapsed.as_secs_f64()),
            elapsed_seconds: status.elapsed.as_secs_f64(),
            relapses: 0,
            first_relapse: Vec::new(),
            hops: Vec::new(),
        });
    }
    for r in &run.requests {
        let request = scenario.requests.iter().find(|q| q.name.value == r.name);
        let c = &r.converged;
        case.requests.push(RequestResult {
            name: r.name.clone(),
            url: request.map(|q| q.url.value.clone()).unwrap_or_default(),
            passed: r.passed(),
            verdicts: records(&r.verdicts),
            attempts: c.attempts.len() as u32,
            inconclusive: c.inconclusive() as u32,
            consistent_after_seconds: c.consistent_after.map(|d| d.as_secs_f64()),
            elapsed_seconds: c.elapsed.as_secs_f64(),
            relapses: c.relapses().len() as u32,
            first_relapse: records(&r.first_relapse),
            hops: match (request, c.last_observed()) {
                (Some(q), Some(obs)) => hops::hops(q, obs, &facts),
                _ => Vec::new(),
            },
        });
    }
    case.timings = run
        .timings
        .iter()
        .map(|t| StepTiming {
            step: t.step.clone(),
            seconds: t.elapsed.as_secs_f64(),
        })
        .collect();
    case.duration_seconds = case.timings.iter().map(|t| t.seconds).sum();
    let files = run
        .evidence
        .iter()
        .flat_map(|b| b.files.iter())
        .chain(run.recording.iter());
    case.evidence = files
        .filter_map(|f| f.strip_prefix(report_dir).ok())
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    if let Some(error) = &run.error {
        case.message = Some(if run.interrupted {
            format!("interrupted: {error}")
        } else {
            error.to_string()
        });
        return case;
    }
    let passed = run.passed();
    let relapsed = case.requests.iter().any(|r| r.relapses > 0);
    let known = semver::Version::parse(&run.istio)
        .ok()
        .and_then(|v| scenario.known_issue_for(&v).cloned());
    case.status = classify(passed, relapsed, known.as_ref());
    case.message = failure_message(&case);
    if let Some(cleanup) = &run.cleanup_error
        && !case.status.is_bad()
    {
        case.status = Status::Error;
        case.message = Some(format!(
            "judged {}, but the scenario could not be cleaned up: {cleanup}",
            case.status.label()
        ));
    }
    case
}

fn records(verdicts: &[Verdict]) -> Vec<VerdictRecord> {
    verdicts
        .iter()
        .map(|v| VerdictRecord {
            subject: v.subject.clone(),
            expected: v.expected.clone(),
            observed: v.observed.clone(),
            outcome: match v.outcome {
                judge::Outcome::Pass => Outcome::Pass,
                judge::Outcome::Fail => Outcome::Fail,
                judge::Outcome::NotObserved => Outcome::NotObserved,
            },
            evidence: v.evidence.clone(),
        })
        .collect()
}

/// One line per failed expectation (or per request nothing could be judged for).
fn failure_message(case: &Case) -> Option<String> {
    let mut lines = Vec::new();
    for r in &case.requests {
        if r.verdicts.iter().all(|v| v.outcome == Outcome::NotObserved) {
            lines.push(format!(
                "{}: nothing was judged (no evidence for any expectation)",
                r.name
            ));
        }
        for v in r.verdicts.iter().filter(|v| v.outcome == Outcome::Fail) {
            let observed = v
                .observed
                .as_deref()
                .map_or_else(|| "nothing".to_owned(), |o| format!("{o:?}"));
            lines.push(format!(
                "{}: {}: expected {}, observed {observed}",
                r.name, v.subject, v.expected
            ));
        }
        let failed_verdicts = r.verdicts.iter().any(|v| v.outcome == Outcome::Fail);
        if !r.passed && !failed_verdicts && !r.verdicts.is_empty() {
            lines.push(format!(
                "{}: its last attempt passed, but not {} in a row within {:.0}s ({} attempt(s), {} inconclusive): raise --deadline if Istio is slow here",
                r.name,
                crate::model::CONSISTENT_PASSES,
                r.elapsed_seconds,
                r.attempts,
                r.inconclusive
            ));
        }
        if r.passed && r.relapses > 0 {
            lines.push(format!(
                "{}: failed {} time(s) after passing; it passed in the end",
                r.name, r.relapses
            ));
        }
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// The trial's result: `Ok` with a line to print, `Err` with why the run fails.
pub fn trial_outcome(case: &Case) -> Result<String, String> {
    // Never read as live: a simulated or replayed verdict says so on its own line.
    let mode = match case.source {
        super::results::Source::Live => "",
        super::results::Source::Simulated => " (simulated)",
        super::results::Source::Recording => " (replayed)",
    };
    let on = case
        .istio
        .as_deref()
        .map_or_else(String::new, |v| format!("{mode} on Istio {v}"));
    let message = case.message.clone().unwrap_or_default();
    let known = case
        .known_issue
        .as_ref()
        .map_or_else(String::new, |k| k.url.clone());
    let evidence = if case.evidence.is_empty() {
        String::new()
    } else {
        format!("\nevidence: {}", case.evidence.join(", "))
    };
    match case.status {
        Status::Pass => Ok(format!("passes{on}{}", consistency(case))),
        Status::Flaky => Ok(format!("flaky{on}: {message}{evidence}")),
        Status::KnownFailure => Ok(format!("fails as known ({known}){on}: {message}")),
        Status::Skipped => Ok(format!("skipped{on}: {message}")),
        Status::Fail => Err(format!("{message}{evidence}")),
        Status::UnexpectedPass => Err(format!(
            "unexpectedly passing: the known issue {known} may be fixed{on}{evidence}"
        )),
        Status::Error => Err(format!(
            "error (not a verdict on Istio): {message}{evidence}"
        )),
    }
}

/// Why a trial that did not fail is no pass either: a known failure (it ran and
/// failed as the issue says) or a skip. The terminal shows it as `ignored (…)`.
pub fn not_a_pass(case: &Case) -> Option<String> {
    let known = case
        .known_issue
        .as_ref()
        .map_or_else(String::new, |k| k.url.clone());
    match case.status {
        Status::KnownFailure => Some(format!("known failure: {known}")),
        Status::Skipped => Some(format!(
            "skipped: {}",
            case.message.as_deref().unwrap_or("not run on this version")
        )),
        _ => None,
    }
}

fn consistency(case: &Case) -> String {
    let parts: Vec<String> = case
        .requests
        .iter()
        .filter_map(|r| {
            r.consistent_after_seconds.map(|s| {
                format!(
                    "{} consistent after {s:.1}s ({} attempts)",
                    r.name, r.attempts
                )
            })
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(mode: &str) -> KnownIssue {
        let yaml = format!(
            "name: t\ndescription: d\nknown_issue: {{url: 'https://github.com/istio/istio/issues/1', mode: {mode}}}\nrequests:\n  - name: r\n    url: http://httpbin.org/headers\n    expect: {{status: 200}}\n"
        );
        crate::scenario::load_str(&yaml, Path::new("t.yaml"))
            .expect("scenario")
            .known_issue
            .expect("known issue")
    }

    #[test]
    fn known_issues_turn_verdicts_into_statuses() {
        let (xfail, flaky, skip) = (issue("xfail"), issue("flaky"), issue("skip"));
        assert_eq!(classify(true, false, None), Status::Pass);
        assert_eq!(classify(false, false, None), Status::Fail);
        assert_eq!(classify(true, true, None), Status::Flaky);
        assert_eq!(classify(false, false, Some(&xfail)), Status::KnownFailure);
        assert_eq!(classify(true, false, Some(&xfail)), Status::UnexpectedPass);
        assert_eq!(classify(false, false, Some(&flaky)), Status::KnownFailure);
        assert_eq!(classify(true, false, Some(&flaky)), Status::Pass);
        assert_eq!(classify(true, true, Some(&flaky)), Status::Flaky);
        assert_eq!(classify(false, false, Some(&skip)), Status::Skipped);
    }

    /// A live run of gateway-http whose one request went `outcomes` (P pass, F fail).
    fn live_run(outcomes: &str, consistent: bool) -> (Scenario, ScenarioRun) {
        use crate::engine::converge::{Attempt, Converged, Tried};
        use std::time::Duration;
        let ws = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let scenario = crate::suite::Suite::load(&ws)
            .expect("suite")
            .scenarios
            .into_iter()
            .find(|s| s.name() == "gateway-http")
            .expect("scenario");
        let attempts = outcomes
            .chars()
            .enumerate()
            .map(|(i, c)| Tried {
                at: Duration::from_secs(i as u64),
                attempt: Attempt::Judged {
                    passed: c == 'P',
                    observed: crate::recording::Observation {
                        name: "http-headers".into(),
                        exit_code: Some(if c == 'P' { 0 } else { 56 }),
                        ..Default::default()
                    },
                },
            })
            .collect();
        let run = ScenarioRun {
            scenario: "gateway-http".into(),
            istio: "1.22.1".into(),
            mode: RunMode::Live,
            requests: vec![crate::engine::RequestRun {
                name: "http-headers".into(),
                verdicts: vec![],
                converged: Converged {
                    attempts,
                    consistent_after: consistent.then_some(Duration::from_secs(2)),
                    elapsed: Duration::from_secs(5),
                },
                first_relapse: vec![],
            }],
            status: None,
            error: None,
            cleanup_error: None,
            timings: vec![],
            evidence: Some(crate::engine::evidence::Bundle {
                dir: "/r/evidence/gateway-http@1.22.1".into(),
                files: vec![
                    "/r/evidence/gateway-http@1.22.1/first-failure-http-headers.json".into(),
                ],
                problems: vec![],
            }),
            recording: None,
            environment: Environment::default(),
            sidecar: Some(true),
            interrupted: false,
            skipped: None,
        };
        (scenario, run)
    }

    #[test]
    fn a_pass_after_a_relapse_is_flaky_with_its_evidence_never_clean() {
        let (scenario, run) = live_run("FFPFPPP", true);
        let case = from_live(&scenario, &run, Path::new("/r"));
        assert_eq!(case.status, Status::Flaky);
        assert_eq!(case.requests[0].relapses, 1);
        assert_eq!(case.requests[0].attempts, 7);
        assert_eq!(case.requests[0].consistent_after_seconds, Some(2.0));
        assert_eq!(
            case.evidence,
            vec!["evidence/gateway-http@1.22.1/first-failure-http-headers.json"]
        );
        assert!(
            case.message
                .as_deref()
                .unwrap_or("")
                .contains("failed 1 time(s) after passing")
        );
        assert!(
            trial_outcome(&case)
                .expect("not a failure")
                .starts_with("flaky")
        );

        // Failures only before the first pass: Istio converging, a clean pass.
        let (scenario, run) = live_run("FFPPP", true);
        assert_eq!(
            from_live(&scenario, &run, Path::new("/r")).status,
            Status::Pass
        );
        // Never consistent: a failure.
        let (scenario, mut run) = live_run("PFPFPF", false);
        assert_eq!(
            from_live(&scenario, &run, Path::new("/r")).status,
            Status::Fail
        );
        run.error = Some(crate::engine::StepError {
            index: 7,
            kind: "create_cluster".into(),
            cluster: Some("egc-1-22-1-registry-only".into()),
            message: "kind create cluster failed".into(),
        });
        assert_eq!(
            from_live(&scenario, &run, Path::new("/r")).status,
            Status::Error
        );
    }

    #[test]
    fn only_bad_statuses_fail_the_trial() {
        let scenario =
            crate::scenario::load_str(
                "name: t\ndescription: d\nrequests:\n  - name: r\n    url: http://httpbin.org/headers\n    expect: {status: 200}\n",
                Path::new("t.yaml"),
            )
            .expect("scenario");
        for status in Status::ALL {
            let case = base(
                &scenario,
                Some("1.22.1"),
                Source::Recording,
                Environment::default(),
                status,
                Some("why".into()),
            );
            assert_eq!(trial_outcome(&case).is_err(), status.is_bad(), "{status:?}");
        }
    }

    #[test]
    fn a_recording_outside_the_scenario_range_says_so() {
        let ws = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let name = "gateway-mtls-plain-upstream";
        let s = crate::scenario::load_file(
            &ws.scenarios_dir().join(format!("{name}.yaml")),
            &ws.manifests_dir(),
        )
        .expect("scenario");
        let old = ws
            .scenarios_dir()
            .join(format!("recordings/{name}@1.19.3.json"));
        let recording = Recording::read(&old).expect("recording");
        let case = from_replay(&s, &recording, "old", true);
        let message = case.message.unwrap_or_default();
        assert!(
            message.starts_with("recorded on 1.19.3, outside the scenario's range >=1.22"),
            "{message}"
        );
        let mut inside = recording;
        inside.istio = "1.22.1".into();
        let case = from_replay(&s, &inside, "new", true);
        assert!(
            !case.message.unwrap_or_default().contains("outside"),
            "a recording inside the range carries no note"
        );
    }
}
