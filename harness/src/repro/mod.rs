//! Reproducing a reported Istio bug:
//!
//! - `scaffold`: a bug report's YAML as a new scenario (`egress new-scenario`).
//! - `bisect`: the first release where the verdict changed.
//! - `bundle`: one archive of scenario, manifests, verdicts and evidence.
//!
//! `egress repro NAME --istio A,B` runs the scenario on each version with evidence
//! always collected, and keeps the clusters and the scenario's objects so a person can
//! look; `--istio A..B` bisects the releases in between instead (clusters are removed
//! after each probe, since a bisect may need many).

pub mod bisect;
pub mod bundle;
pub mod scaffold;

use std::path::{Path, PathBuf};

use semver::Version;

use crate::engine::{Engine, EngineOptions, EvidenceMode};
use crate::model::RunMode;
use crate::plan::{IstioRelease, Keep, PlanOptions, Slot};
use crate::report::case;
use crate::report::collect::Reporter;
use crate::report::results::{Case, Status};
use crate::scenario::Scenario;
use crate::suite::Workspace;
use bisect::{Finding, Verdict};

/// What `--istio` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Versions {
    List(Vec<IstioRelease>),
    /// Both ends included.
    Range(Version, Version),
}

impl Versions {
    pub fn parse(text: &str) -> Result<Self, String> {
        match bisect::parse_range(text) {
            Some(range) => range.map(|(a, b)| Versions::Range(a, b)),
            None => IstioRelease::parse_list(text).map(Versions::List),
        }
    }
}

/// The plan options of a repro: evidence always; for a list, clusters and the
/// scenario's objects kept.
pub fn plan_options(mut options: PlanOptions, istio: Vec<IstioRelease>, keep: bool) -> PlanOptions {
    options.istio = istio;
    options.keep = if keep { Keep::Always } else { Keep::Never };
    options.keep_objects = keep;
    options
}

/// How to get at a kept cluster: its kubeconfig and ready commands.
pub fn access_lines(scenario: &Scenario, slot: &Slot) -> Vec<String> {
    let Some(kubeconfig) = &slot.kubeconfig else {
        return vec![format!(
            "Istio {}: the current kube context, namespace {}",
            slot.istio,
            scenario.name()
        )];
    };
    let k = kubeconfig.display();
    let url = scenario
        .requests
        .first()
        .map_or("http://httpbin.org/headers", |r| r.url.value.as_str())
        .replace("${namespace}", scenario.name());
    vec![
        format!(
            "Istio {}: cluster {}, kubeconfig {k}",
            slot.istio,
            slot.cluster.as_deref().unwrap_or("?")
        ),
        format!(
            "  kubectl --kubeconfig {k} -n {} exec -it curl -c curl -- curl -sv {url}",
            scenario.name()
        ),
        format!("  kubectl --kubeconfig {k} -n istio-system logs deploy/istio-egressgateway"),
        format!(
            "  remove it: kind delete cluster --name {} (or `egress prune`)",
            slot.cluster.as_deref().unwrap_or("?")
        ),
    ]
}

/// A case reduced to what a bisect compares; errors and skips cannot be compared.
pub fn verdict_of(case: &Case) -> Result<Verdict, String> {
    let passed = !case.requests.is_empty() && case.requests.iter().all(|r| r.passed);
    match case.status {
        Status::Error | Status::Skipped => Err(format!(
            "{}: {}",
            case.status.label(),
            case.message.as_deref().unwrap_or("no verdict")
        )),
        _ if passed => Ok(Verdict::Passed),
        _ => Ok(Verdict::Failed),
    }
}

/// Runs one scenario on the given versions with one engine; records a case per
/// version and returns the clusters the plan used.
fn run_versions(
    ws: &Workspace,
    scenario: &Scenario,
    versions: &[IstioRelease],
    options: EngineOptions,
    reporter: &Reporter,
) -> Vec<Slot> {
    let error_cases = |reporter: &Reporter, message: &str| {
        for v in versions {
            reporter.record(case::live_error(
                scenario,
                v,
                crate::report::results::Source::Live,
                Default::default(),
                message.to_owned(),
            ));
        }
    };
    let checks = crate::doctor::checks(&crate::doctor::RealHost, 1, false);
    if let Some(banner) = crate::doctor::banner(&checks) {
        eprintln!("egress: {banner}");
        error_cases(
            reporter,
            "not run: the preflight failed; `egress doctor` lists every check",
        );
        return Vec::new();
    }
    let shutdown = crate::engine::shutdown::Shutdown::default();
    let seams = crate::live::production_seams(&options.plan.timeouts);
    let engine = match Engine::new(
        ws.clone(),
        vec![scenario.clone()],
        options,
        seams,
        shutdown.token(),
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("egress: {e}");
            error_cases(reporter, &e);
            return Vec::new();
        }
    };
    shutdown.engine_started();
    shutdown.listen(|| {});
    let slots: Vec<Slot> = engine.plan().slot_list().into_iter().cloned().collect();
    let ran = crate::engine::run_blocking(&engine);
    // This run's listener stops; the next version's run listens for itself.
    shutdown.engine_finished();
    match ran {
        Ok((runs, end)) => {
            for p in end.problems {
                reporter.problem(p);
            }
            let dir = reporter.dir().unwrap_or(Path::new(""));
            for run in runs {
                let case = case::from_live(scenario, &run, dir);
                // The reason with the verdict: a bare "error" sends the user to the report.
                let why = case
                    .message
                    .as_deref()
                    .map(|m| format!(": {}", crate::model::terminal_safe(m)))
                    .unwrap_or_default();
                eprintln!(
                    "egress: {} on Istio {}: {}{why}",
                    scenario.name(),
                    run.istio,
                    case.status_text()
                );
                reporter.record(case);
            }
        }
        Err(e) => error_cases(reporter, &e),
    }
    if shutdown.interrupted() {
        reporter.mark_interrupted();
    }
    slots
}

/// What a repro run needs from the command line.
pub struct ReproRun<'a> {
    pub ws: &'a Workspace,
    pub scenario: &'a Scenario,
    pub versions: Versions,
    pub plan: PlanOptions,
    pub reuse: bool,
    pub verbose: bool,
    /// The releases of Istio, newest first (for a range); fetched when `None`.
    pub releases: Option<Vec<Version>>,
}

/// Runs the reproduction and writes the report and the archive; returns the archive
/// and the results.
pub fn run(r: ReproRun<'_>) -> Result<(PathBuf, crate::report::results::Results), String> {
    let run_id = match crate::run_args::explicit_run_id()? {
        Some(id) => id,
        None => format!("repro-{}-{}", r.scenario.name(), crate::run_args::run_id()),
    };
    let reporter = std::sync::Arc::new(Reporter::new(
        &r.ws.reports_dir(),
        Some(run_id.clone()),
        None,
        None,
    )?);
    let live = |istio: Vec<IstioRelease>, keep: bool| {
        let mut plan = plan_options(r.plan.clone(), istio, keep);
        plan.run_id = Some(run_id.clone());
        plan.reports_dir = r.ws.reports_dir();
        EngineOptions {
            plan,
            reuse: r.reuse,
            verbose: r.verbose,
            evidence: EvidenceMode::Always,
            mode: RunMode::Live,
        }
    };
    match &r.versions {
        Versions::List(versions) => {
            let slots = run_versions(
                r.ws,
                r.scenario,
                versions,
                live(versions.clone(), true),
                &reporter,
            );
            for slot in &slots {
                // Only a cluster that exists can be looked into.
                if slot.kubeconfig.as_ref().is_some_and(|k| !k.is_file()) {
                    eprintln!(
                        "egress: Istio {}: no cluster was kept (the run stopped before one was ready; the report says why)",
                        slot.istio
                    );
                    continue;
                }
                for line in access_lines(r.scenario, slot) {
                    eprintln!("egress: {line}");
                }
            }
        }
        Versions::Range(from, to) => {
            // Before asking GitHub for the releases: a bisect needs clusters.
            let checks = crate::doctor::checks(&crate::doctor::RealHost, 1, false);
            if let Some(banner) = crate::doctor::banner(&checks) {
                return Err(banner);
            }
            let releases = match &r.releases {
                Some(list) => list.clone(),
                None => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("tokio runtime: {e}"))?
                    .block_on(crate::live::download::istio_releases(Some(from)))?,
            };
            let candidates: Vec<Version> = bisect::releases_between(&releases, from, to)
                .into_iter()
                .filter(|v| r.scenario.applies_to(v))
                .collect();
            eprintln!(
                "egress: {} release(s) from {from} to {to} the scenario applies to",
                candidates.len()
            );
            let bisection = bisect::bisect(&candidates, |v| {
                let istio = vec![IstioRelease::Exact(v.clone())];
                run_versions(
                    r.ws,
                    r.scenario,
                    &istio,
                    live(istio.clone(), false),
                    &reporter,
                );
                let results = reporter.results();
                let case = results
                    .case(r.scenario.name(), Some(&v.to_string()))
                    .ok_or_else(|| format!("no result for Istio {v}"))?;
                verdict_of(case)
            })?;
            let message = describe(&bisection.finding);
            eprintln!("egress: {message}");
            reporter.problem(format!("bisect {from}..{to}: {message}"));
            if let Finding::Changed { last, first, .. } = &bisection.finding {
                eprintln!(
                    "egress: keep both clusters to compare: egress repro {} --istio {last},{first}",
                    r.scenario.name()
                );
            }
        }
    }
    let report_dir = r.ws.reports_dir().join(&run_id);
    reporter.write();
    let results = reporter.results();
    let (archive, _) = bundle::write(r.ws, r.scenario, &results, &report_dir)?;
    eprintln!("egress: evidence archive {}", archive.display());
    Ok((archive, results))
}

/// One sentence on a bisect's finding.
pub fn describe(finding: &Finding) -> String {
    match finding {
        Finding::Changed {
            last,
            first,
            before,
            after,
        } => format!(
            "the verdict changed in Istio {first}: it {} on {last} and {} from {first}",
            before.label(),
            after.label()
        ),
        Finding::Unchanged(v) => format!(
            "no change: it {} at both ends of the range (a change and a change back in between cannot be seen)",
            v.label()
        ),
        Finding::Stopped { at, error } => {
            format!("stopped at Istio {at}, which could not be judged: {error}")
        }
    }
}

#[cfg(test)]
mod tests;
