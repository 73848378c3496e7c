//! The conformance runner behind `cargo test`: libtest-mimic trials named
//! `<scenario>::<check>`, selected with `--scenario` or `EGRESS_SCENARIO`.
//!
//! Offline checks run in plain `cargo test`. Live trials stand up clusters, so they
//! are listed as ignored unless selected by `--scenario`, `EGRESS_SCENARIO` or
//! `--include-ignored`; a selected live trial that cannot run fails, saying why.

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use clap::Parser;
use libtest_mimic::{Failed, Trial};

use crate::live::session::Session;
use crate::plan::{self, IstioRelease, PlanOptions};
use crate::report::case;
use crate::report::collect::Reporter;
use crate::report::results::{Environment, Source, Status};
use crate::run_args::RunArgs;
use crate::scenario::KnownIssueMode;
use crate::scenario::Scenario;
use crate::suite::{Suite, Workspace};
use crate::validate;

/// libtest's own arguments plus the harness's.
#[derive(Parser, Debug)]
#[command(name = "conformance", about = "Istio egress conformance trials")]
struct Args {
    /// Run the scenarios with these names or tags (repeatable, comma-separated).
    #[arg(long = "scenario", value_delimiter = ',', env = "EGRESS_SCENARIO")]
    scenarios: Vec<String>,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    libtest: libtest_mimic::Arguments,
}

/// Entry point of `tests/conformance.rs`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let reporter = match reporter(&args) {
        Ok(r) => Arc::new(r),
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    reporter.write_on_interrupt();
    if !args.libtest.list {
        crate::report::collect::write_on_ctrl_c_without_session();
    }
    let seed = Arc::new(LiveSeed::default());
    match trials(&args, &seed, &reporter) {
        Ok(trials) => {
            let conclusion = libtest_mimic::run(&args.libtest, trials);
            reporter.write();
            if let Some(Ok(session)) = seed.session.get() {
                session.finish();
            }
            conclusion.exit_code()
        }
        Err(message) => {
            reporter.problem(message.clone());
            reporter.write();
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

/// The run's reporter. Listing trials writes nothing, nor does one test process of
/// cargo-nextest (each test runs in its own; `cargo test` writes the run's report).
fn reporter(args: &Args) -> Result<Reporter, String> {
    let run_id = crate::run_args::explicit_run_id()?;
    if args.libtest.list || std::env::var_os("NEXTEST_RUN_ID").is_some() {
        return Ok(Reporter::off(
            run_id.unwrap_or_else(crate::run_args::run_id),
        ));
    }
    let ws = Workspace::discover()?;
    Reporter::new(
        &ws.reports_dir(),
        run_id,
        args.run.shard.map(|s| s.to_string()),
        args.run.baseline.as_deref(),
    )
}

/// What the live trials of this process share: the session, made by the first
/// live trial that runs (so listing and offline runs never start one).
#[derive(Default)]
struct LiveSeed {
    make: OnceLock<(Workspace, Vec<Scenario>, RunArgs, String)>,
    session: OnceLock<Result<Session, String>>,
}

impl LiveSeed {
    fn session(&self) -> Result<&Session, String> {
        self.session
            .get_or_init(|| {
                let (ws, scenarios, args, run_id) =
                    self.make.get().ok_or("no live run was prepared")?;
                if let Err(missing) = crate::prereq::check_live() {
                    return Err(crate::prereq::describe(&missing));
                }
                if std::env::var_os("NEXTEST_RUN_ID").is_some() && !args.reuse {
                    return Err("live trials share clusters inside one process; cargo-nextest runs each test in its own. Run live trials with `cargo test -- --scenario NAME` (or pass --reuse / EGRESS_REUSE=1 with clusters kept by an earlier run)".into());
                }
                Session::new(
                    ws.clone(),
                    scenarios.clone(),
                    args.live_options(ws, run_id)?,
                )
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn trials(
    args: &Args,
    seed: &Arc<LiveSeed>,
    reporter: &Arc<Reporter>,
) -> Result<Vec<Trial>, String> {
    let ws = Workspace::discover()?;
    let suite = Suite::load(&ws)?;
    let selecting = !args.scenarios.is_empty();
    let terms: Vec<String> = crate::suite::split_terms(&args.scenarios)
        .into_iter()
        .map(str::to_owned)
        .collect();

    // A broken file is still reachable by its file name, so `--scenario x` on a broken
    // x.yaml reports the breakage instead of "no such scenario".
    let mut trials = Vec::new();
    let mut matched_broken = Vec::new();
    for (file, errors) in &suite.broken {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("unreadable")
            .to_owned();
        if !selecting || terms.contains(&stem) {
            matched_broken.push(stem.clone());
            let message = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
            reporter.record(case::broken(&stem, &message));
            trials.push(Trial::test(format!("{stem}::validate"), move || {
                Err(message.into())
            }));
        }
    }
    let remaining: Vec<String> = terms
        .iter()
        .filter(|t| !matched_broken.contains(t))
        .cloned()
        .collect();
    let mut selected: Vec<&Scenario> = if selecting && remaining.is_empty() {
        Vec::new()
    } else {
        suite.select(&remaining)?
    };
    if let Some(shard) = args.run.shard {
        selected = shard.take(selected, Scenario::name);
    }
    // Every scenario shows in a report: one never recorded says so, unless libtest's
    // own filters narrowed the run.
    let unfiltered = args.libtest.filter.is_none() && args.libtest.skip.is_empty();

    let istio = args.run.plan_options()?.istio;
    let _ = seed.make.set((
        ws.clone(),
        selected.iter().map(|s| (*s).clone()).collect(),
        args.run.clone(),
        reporter.run_id().to_owned(),
    ));
    for s in selected {
        trials.extend(scenario_trials(s, &ws, &istio, reporter, unfiltered));
        trials.extend(live_trials(s, &istio, selecting, seed, reporter));
    }
    if !selecting {
        trials.push(browser_trial(&ws, &suite, reporter));
    }
    Ok(trials)
}

fn scenario_trials(
    s: &Scenario,
    ws: &Workspace,
    istio: &[IstioRelease],
    reporter: &Arc<Reporter>,
    unfiltered: bool,
) -> Vec<Trial> {
    let name = s.name().to_owned();
    let mut trials = vec![Trial::test(format!("{name}::validate"), || Ok(()))];

    let (scenario, workspace) = (s.clone(), ws.clone());
    trials.push(Trial::test(format!("{name}::manifests"), move || {
        problems(validate::check_manifests(&scenario, &workspace))
    }));

    let (scenario, workspace) = (s.clone(), ws.clone());
    trials.push(Trial::test(format!("{name}::consistency"), move || {
        problems(validate::check_consistency(&scenario, &workspace))
    }));

    let (scenario, workspace) = (s.clone(), ws.clone());
    let versions = istio.to_vec();
    trials.push(Trial::test(format!("{name}::plan"), move || {
        let options = PlanOptions {
            istio: versions,
            kind: Some("kind".into()),
            ..PlanOptions::for_this_host()
        };
        let plan = plan::build(&[&scenario], &workspace, &options)?;
        let requests = plan
            .steps
            .iter()
            .filter(|p| matches!(p.step, plan::Step::Request { .. }))
            .count();
        let expected = scenario.requests.len() * plan.slots.len();
        if requests != expected {
            return Err(format!(
                "the plan sends {requests} request(s); the scenario states {expected}"
            )
            .into());
        }
        Ok(())
    }));

    trials.extend(replay_trials(s, ws, reporter, unfiltered));
    trials
}

/// `<scenario>::live` (or `::live@<version>` with several versions): the scenario on
/// a real mesh. Listed as ignored unless selected; versions outside the scenario's
/// range get no trial.
fn live_trials(
    s: &Scenario,
    istio: &[IstioRelease],
    selected: bool,
    seed: &Arc<LiveSeed>,
    reporter: &Arc<Reporter>,
) -> Vec<Trial> {
    let mut trials = Vec::new();
    for version in istio {
        if let IstioRelease::Exact(v) = version {
            if !s.applies_to(v) {
                continue;
            }
            // A known issue in `skip` mode: reported as skipped, never run.
            if let Some(k) = s
                .known_issue_for(v)
                .filter(|k| k.mode == KnownIssueMode::Skip)
            {
                if selected {
                    reporter.record(case::base(
                        s,
                        Some(&v.to_string()),
                        Source::Live,
                        Default::default(),
                        Status::Skipped,
                        Some(format!("known issue {} (skip)", k.url.value)),
                    ));
                }
                continue;
            }
        }
        let suffix = if istio.len() > 1 {
            format!("@{version}")
        } else {
            String::new()
        };
        let (seed, scenario, version, reporter) = (
            Arc::clone(seed),
            s.clone(),
            version.clone(),
            Arc::clone(reporter),
        );
        trials.push(
            Trial::test(format!("{}::live{suffix}", s.name()), move || {
                live_trial(&seed, &reporter, &scenario, &version)
            })
            .with_kind("live")
            .with_ignored_flag(!selected),
        );
    }
    trials
}

/// `<scenario>::replay` per shipped recording, and `<scenario>::mutation-<what>` for
/// every mutation that changes it: each must turn the replay red.
fn replay_trials(
    s: &Scenario,
    ws: &Workspace,
    reporter: &Arc<Reporter>,
    unfiltered: bool,
) -> Vec<Trial> {
    let name = s.name().to_owned();
    let files = crate::recording::shipped(&ws.scenarios_dir().join("recordings"), &name);
    if files.is_empty() && unfiltered {
        reporter.record(case::base(
            s,
            None,
            Source::Recording,
            Default::default(),
            Status::Skipped,
            Some(format!(
                "no recording shipped; run it live: cargo test -- --scenario {name}"
            )),
        ));
    }
    let sidecar = case::client_has_sidecar(s, ws);
    let several = files.len() > 1;
    let mut trials = Vec::new();
    for file in files {
        let suffix = if several {
            file.file_stem()
                .and_then(|f| f.to_str())
                .and_then(|f| f.split_once('@'))
                .map(|(_, v)| format!("@{v}"))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let recording = match crate::recording::Recording::read(&file) {
            Ok(r) => r,
            Err(e) => {
                reporter.record(case::base(
                    s,
                    None,
                    Source::Recording,
                    Default::default(),
                    Status::Error,
                    Some(e.clone()),
                ));
                trials.push(Trial::test(format!("{name}::replay{suffix}"), move || {
                    Err(e.into())
                }));
                continue;
            }
        };
        let (scenario, original, reporter) = (s.clone(), recording.clone(), Arc::clone(reporter));
        let shipped_name = file
            .strip_prefix(&ws.root)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        trials.push(Trial::test(format!("{name}::replay{suffix}"), move || {
            let mut case = case::from_replay(&scenario, &original, &shipped_name, sidecar);
            if let Ok(text) = serde_json::to_vec_pretty(&original) {
                let kept = format!(
                    "evidence/{}@{}/recording.json",
                    original.scenario, original.istio
                );
                reporter.keep(&mut case, &kept, &text);
            }
            let outcome = case::trial_outcome(&case);
            reporter.record(case);
            outcome.map(|_| ()).map_err(Failed::from)
        }));
        for (mutation, changed) in crate::replay::mutations(&recording) {
            let scenario = s.clone();
            trials.push(Trial::test(format!("{name}::mutation-{mutation}{suffix}"), move || {
                let result = crate::replay::replay(&scenario, &changed)?;
                if result.passed() {
                    return Err(format!("the mutation {mutation} left the verdict green: no expectation looks at what it changed").into());
                }
                Ok(())
            }));
        }
    }
    trials
}

/// `report::html-in-chromium`: a report of every shipped recording, rendered by
/// headless Chromium. Ignored where no Chromium is found, unless
/// `EGRESS_REQUIRE_CHROMIUM=1` (CI) makes a missing browser a failure.
fn browser_trial(ws: &Workspace, suite: &Suite, reporter: &Arc<Reporter>) -> Trial {
    let chromium = crate::report::browser::find_chromium();
    let required = std::env::var("EGRESS_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    let results = crate::report::browser::recordings_report(ws, suite);
    let out = reporter
        .dir()
        .map_or_else(std::env::temp_dir, std::path::Path::to_path_buf);
    let ignored = chromium.is_none() && !required;
    Trial::test("report::html-in-chromium", move || {
        let chromium = chromium
            .ok_or_else(|| format!("no Chromium: {}", crate::report::browser::INSTALL_HINT))?;
        let png = crate::report::browser::check_report(&chromium, &results, &out)?;
        eprintln!("egress: the report as Chromium draws it: {}", png.display());
        Ok(())
    })
    .with_ignored_flag(ignored)
}

fn problems(found: Vec<crate::manifest::Problem>) -> Result<(), Failed> {
    if found.is_empty() {
        Ok(())
    } else {
        Err(found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
            .into())
    }
}

fn live_trial(
    seed: &LiveSeed,
    reporter: &Reporter,
    scenario: &Scenario,
    istio: &IstioRelease,
) -> Result<(), Failed> {
    let token = reporter.begin(case::live_error(
        scenario,
        istio,
        Environment::default(),
        "the live trial did not finish".into(),
    ));
    let case = match seed.session() {
        Err(e) => case::live_error(scenario, istio, Environment::default(), e),
        Ok(session) => case::from_session(
            session,
            scenario,
            istio,
            reporter.dir().unwrap_or(std::path::Path::new("")),
        ),
    };
    let outcome = case::trial_outcome(&case);
    reporter.finish(token, case);
    let summary = outcome?;
    eprintln!("egress: {}: {summary}", scenario.name());
    Ok(())
}
