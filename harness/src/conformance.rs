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
use crate::run_args::RunArgs;
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
    let seed = Arc::new(LiveSeed::default());
    match trials(&args, &seed) {
        Ok(trials) => {
            let conclusion = libtest_mimic::run(&args.libtest, trials);
            if let Some(Ok(session)) = seed.session.get() {
                session.finish();
            }
            conclusion.exit_code()
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

/// What the live trials of this process share: the session, made by the first
/// live trial that runs (so listing and offline runs never start one).
#[derive(Default)]
struct LiveSeed {
    make: OnceLock<(Workspace, Vec<Scenario>, RunArgs)>,
    session: OnceLock<Result<Session, String>>,
}

impl LiveSeed {
    fn session(&self) -> Result<&Session, String> {
        self.session
            .get_or_init(|| {
                let (ws, scenarios, args) = self.make.get().ok_or("no live run was prepared")?;
                if let Err(missing) = crate::prereq::check_live() {
                    return Err(crate::prereq::describe(&missing));
                }
                if std::env::var_os("NEXTEST_RUN_ID").is_some() && !args.reuse {
                    return Err("live trials share clusters inside one process; cargo-nextest runs each test in its own. Run live trials with `cargo test -- --scenario NAME` (or pass --reuse / EGRESS_REUSE=1 with clusters kept by an earlier run)".into());
                }
                Session::new(ws.clone(), scenarios.clone(), args.live_options(ws)?)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn trials(args: &Args, seed: &Arc<LiveSeed>) -> Result<Vec<Trial>, String> {
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
    let selected: Vec<&Scenario> = if selecting && remaining.is_empty() {
        Vec::new()
    } else {
        suite.select(&remaining)?
    };

    let istio = args.run.plan_options()?.istio;
    let _ = seed.make.set((
        ws.clone(),
        selected.iter().map(|s| (*s).clone()).collect(),
        args.run.clone(),
    ));
    for s in selected {
        trials.extend(scenario_trials(s, &ws, &istio));
        trials.extend(live_trials(s, &istio, selecting, seed));
    }
    Ok(trials)
}

fn scenario_trials(s: &Scenario, ws: &Workspace, istio: &[IstioRelease]) -> Vec<Trial> {
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

    trials.extend(replay_trials(s, ws));
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
) -> Vec<Trial> {
    let mut trials = Vec::new();
    for version in istio {
        if let IstioRelease::Exact(v) = version
            && !s.applies_to(v)
        {
            continue;
        }
        let suffix = if istio.len() > 1 {
            format!("@{version}")
        } else {
            String::new()
        };
        let (seed, scenario, version) = (Arc::clone(seed), s.clone(), version.clone());
        trials.push(
            Trial::test(format!("{}::live{suffix}", s.name()), move || {
                live_trial(&seed, &scenario, &version)
            })
            .with_kind("live")
            .with_ignored_flag(!selected),
        );
    }
    trials
}

/// `<scenario>::replay` per shipped recording, and `<scenario>::mutation-<what>` for
/// every mutation that changes it: each must turn the replay red.
fn replay_trials(s: &Scenario, ws: &Workspace) -> Vec<Trial> {
    let name = s.name().to_owned();
    let files = crate::recording::shipped(&ws.scenarios_dir().join("recordings"), &name);
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
                trials.push(Trial::test(format!("{name}::replay{suffix}"), move || {
                    Err(e.into())
                }));
                continue;
            }
        };
        let (scenario, original) = (s.clone(), recording.clone());
        trials.push(Trial::test(format!("{name}::replay{suffix}"), move || {
            crate::replay::verdict(&scenario, &original)
                .map(|_| ())
                .map_err(Failed::from)
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

fn live_trial(seed: &LiveSeed, scenario: &Scenario, istio: &IstioRelease) -> Result<(), Failed> {
    let session = seed.session()?;
    let run = session.run(scenario.name(), istio)?;
    let summary = crate::live::verdict(scenario, &run)?;
    eprintln!("egress: {}: {summary}", scenario.name());
    Ok(())
}
