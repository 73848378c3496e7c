//! The conformance runner behind `cargo test`: libtest-mimic trials named
//! `<scenario>::<check>`, selected with `--scenario` or `EGRESS_SCENARIO`.
//!
//! Offline checks run in plain `cargo test`. Live trials stand up clusters, so they
//! are listed as ignored unless selected by `--scenario`, `EGRESS_SCENARIO` or
//! `--include-ignored`; a selected live trial that cannot run fails, saying why.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use libtest_mimic::{Failed, Trial};

use crate::engine::shutdown::Shutdown;
use crate::engine::{Engine, RunEnd, ScenarioRun};
use crate::model::{ClusterMode, RunMode};
use crate::plan::{self, IstioRelease, PlanOptions};
use crate::report::case;
use crate::report::collect::Reporter;
use crate::report::results::{Environment, Source, Status};
use crate::run_args::RunArgs;
use crate::scenario::KnownIssueMode;
use crate::scenario::Scenario;
use crate::seams::Seams;
use crate::suite::{Suite, Workspace};
use crate::validate;

/// libtest's own arguments plus the harness's.
#[derive(clap::Parser, Debug)]
#[command(
    name = "egress run",
    about = "Run Istio egress conformance scenarios: live on kind clusters of the harness's own (the default), on the current kube context (--cluster existing), or from recordings; each scenario's offline checks run too",
    override_usage = "egress run [--scenario NAMES|TAGS] [--istio VERSIONS] [--cluster kind|existing] [OPTIONS] [FILTER]\n       cargo test -- [the same]",
    after_help = "Examples:\n  egress run --scenario mtls                  the scenarios named or tagged mtls, live\n  egress run --scenario gateway-http --istio 1.22,1.31 --keep-on-failure\n  egress run --scenario mtls --cluster existing --upstream internet\n\n`egress doctor` checks this host first; `egress plan` prints the steps a run would take."
)]
#[derive(Clone)]
struct Args {
    /// Run the scenarios with these names or tags (repeatable, comma-separated).
    #[arg(long = "scenario", value_delimiter = ',', env = "EGRESS_SCENARIO")]
    scenarios: Vec<String>,
    #[command(flatten)]
    run: RunArgs,
    #[command(
        flatten,
        next_help_heading = "libtest's options (as `cargo test --` takes them)"
    )]
    libtest: libtest_mimic::Arguments,
}

/// A stand-in for kind, Istio and Docker that the project's test support provides
/// (`--cluster simulated`); the harness itself ships none.
pub trait Simulation: Send + Sync {
    /// The seams of a simulated world for these scenarios.
    fn seams(&self, ws: &Workspace, scenarios: &[Scenario]) -> Result<Seams, String>;
    /// What the simulation still holds (clusters, namespaces, objects, containers),
    /// written to `reports/<run-id>/simulated-cluster.json` at the end.
    fn snapshot(&self) -> serde_json::Value;
    /// The runtime the engine runs on against this simulation: the test support's
    /// virtual clock, so simulated waits cost no wall time.
    fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime>;
}

/// Entry point of `tests/conformance.rs` without a simulation.
pub fn main() -> ExitCode {
    main_with(None)
}

/// Entry point of `tests/conformance.rs`.
pub fn main_with(simulation: Option<Arc<dyn Simulation>>) -> ExitCode {
    // kube runs a kubeconfig's credential plugin through this binary (live::credential).
    if let Some(code) = crate::live::credential::guard_if_asked() {
        return code;
    }
    let full: Vec<String> = std::env::args().collect();
    match parse_args(full) {
        Ok(args) => run(args, simulation),
        Err(code) => code,
    }
}

/// The command line as the harness reads it: its own help (libtest-mimic's template
/// would win through the flatten), and a bad value from an `EGRESS_*` variable named
/// as such, since clap names only the flag.
fn parse_args(full: Vec<String>) -> Result<Args, ExitCode> {
    let command = <Args as clap::CommandFactory>::command()
        .help_template("{about}\n\n{usage-heading} {usage}\n\n{all-args}\n\n{after-help}");
    let given = full.clone();
    let parsed = command
        .clone()
        .try_get_matches_from(full)
        .and_then(|m| <Args as clap::FromArgMatches>::from_arg_matches(&m));
    match parsed {
        Ok(args) => Ok(args),
        Err(e) => {
            let bad_value = matches!(
                e.kind(),
                clap::error::ErrorKind::InvalidValue | clap::error::ErrorKind::ValueValidation
            );
            let from_env = bad_value
                .then(|| e.get(clap::error::ContextKind::InvalidArg))
                .flatten()
                .map(ToString::to_string)
                .and_then(|flag| {
                    let long = flag
                        .split([' ', '='])
                        .next()?
                        .trim_start_matches('-')
                        .to_owned();
                    let arg = command
                        .get_arguments()
                        .find(|a| a.get_long() == Some(long.as_str()))?;
                    let var = arg.get_env()?.to_string_lossy().into_owned();
                    let on_command_line = given
                        .iter()
                        .any(|g| *g == format!("--{long}") || g.starts_with(&format!("--{long}=")));
                    (!on_command_line && std::env::var_os(&var).is_some()).then_some(var)
                });
            match from_env {
                Some(var) => {
                    let said = e.render().to_string();
                    eprintln!(
                        "error: the environment variable {var} holds a value --{} does not take: {}",
                        var.trim_start_matches("EGRESS_")
                            .to_lowercase()
                            .replace('_', "-"),
                        said.trim_start_matches("error: ").trim_end()
                    );
                    Err(ExitCode::from(2))
                }
                None => e.exit(),
            }
        }
    }
}

/// `egress run [--scenario …] [live flags] [libtest flags]`: the suite as `cargo test
/// -- …` runs it, same engine and reports. Without `--scenario` every scenario runs live.
pub fn egress_run(argv: Vec<String>) -> ExitCode {
    let mut full = vec!["egress run".to_owned()];
    full.extend(argv);
    let mut args = match parse_args(full) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if args.scenarios.is_empty() {
        // Every scenario live; the report's browser check is the project's own test.
        args.libtest.include_ignored = true;
        args.libtest.skip.push("report::html-in-chromium".into());
    }
    run(args, None)
}

fn run(args: Args, simulation: Option<Arc<dyn Simulation>>) -> ExitCode {
    // `--scenario ""` names nothing; taken as "everything" it would run the suite live.
    if !args.scenarios.is_empty() && crate::suite::split_terms(&args.scenarios).is_empty() {
        eprintln!(
            "error: --scenario (or EGRESS_SCENARIO) names no scenario or tag: name one, or leave it out"
        );
        return ExitCode::from(2);
    }
    let reporter = match reporter(&args) {
        Ok(r) => Arc::new(r),
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let shutdown = Shutdown::default();
    if !args.libtest.list {
        let on_signal = Arc::clone(&reporter);
        shutdown.listen(move || on_signal.interrupted());
    }
    let seed = Arc::new(LiveSeed {
        simulation,
        simulated: args.run.cluster == "simulated",
        shutdown: shutdown.clone(),
        ..LiveSeed::default()
    });
    let exit = match trials(&args, &seed, &reporter) {
        Ok(trials) => {
            let conclusion = libtest_mimic::run(&args.libtest, trials);
            seed.finish(&reporter);
            if seed.simulated && !args.libtest.list {
                eprintln!(
                    "egress: the scenario trials above ran on the SIMULATED cluster (the project's test support): none is a verdict on Istio; run without --cluster simulated for one"
                );
            }
            conclusion.exit_code()
        }
        Err(message) => {
            // Rejected arguments ran nothing: no report folder for them.
            reporter.discard();
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if shutdown.interrupted() {
        reporter.mark_interrupted();
    }
    reporter.write();
    if shutdown.interrupted() {
        return ExitCode::from(130);
    }
    exit
}

/// A trial whose failure message is shown safely: it quotes log lines, headers and
/// files, whose control characters must not drive the terminal.
fn safe_trial(
    name: impl Into<String>,
    runner: impl FnOnce() -> Result<(), Failed> + Send + 'static,
) -> Trial {
    Trial::test(name, move || {
        runner().map_err(|f| match f.message() {
            Some(m) => Failed::from(crate::model::terminal_safe(m)),
            None => f,
        })
    })
}

/// As [`safe_trial`], for a trial that may end neither passed nor failed: a known
/// failure or a skip is reported `ignored (known failure: URL)`, never `ok`
/// (libtest has no outcome of its own for pytest's XFAIL).
fn safe_ignorable_trial(
    name: impl Into<String>,
    runner: impl FnOnce() -> Result<Option<String>, Failed> + Send + 'static,
) -> Trial {
    Trial::ignorable_test(name, move || match runner() {
        Ok(None) => Ok(libtest_mimic::Completion::Completed),
        Ok(Some(why)) => Ok(libtest_mimic::Completion::ignored_with(
            crate::model::terminal_safe(&why),
        )),
        Err(f) => Err(match f.message() {
            Some(m) => Failed::from(crate::model::terminal_safe(m)),
            None => f,
        }),
    })
}

/// An offline check of a scenario (validate, manifests, consistency, plan, replay,
/// mutations): a trial of its own, or one of the fold when live trials run.
struct Check {
    name: String,
    run: Box<dyn FnOnce() -> Result<Option<String>, Failed> + Send>,
}

impl Check {
    fn new(
        name: impl Into<String>,
        run: impl FnOnce() -> Result<(), Failed> + Send + 'static,
    ) -> Self {
        Self::ignorable(name, move || run().map(|()| None))
    }

    /// A check that may end a known failure or a skip: `Ok(Some(why))`.
    fn ignorable(
        name: impl Into<String>,
        run: impl FnOnce() -> Result<Option<String>, Failed> + Send + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            run: Box::new(run),
        }
    }

    fn into_trial(self) -> Trial {
        safe_ignorable_trial(self.name, self.run)
    }
}

/// The offline checks as one trial, for a run whose live trials are what the user came
/// for: one line instead of a dozen per scenario. It fails naming every check that
/// failed; with none failed but some a known failure or skip, it is `ignored` saying
/// which, never `ok`.
fn folded(checks: Vec<Check>) -> Trial {
    let name = format!(
        "offline-checks ({}: validate, plan, replay, mutations)",
        checks.len()
    );
    safe_ignorable_trial(name, move || run_folded(checks))
}

fn run_folded(checks: Vec<Check>) -> Result<Option<String>, Failed> {
    let total = checks.len();
    let (mut failed, mut not_a_pass) = (Vec::new(), Vec::new());
    for check in checks {
        match (check.run)() {
            Ok(None) => {}
            Ok(Some(why)) => not_a_pass.push(format!("{}: {why}", check.name)),
            Err(f) => failed.push(format!(
                "{}: {}",
                check.name,
                f.message().unwrap_or("failed")
            )),
        }
    }
    if !failed.is_empty() {
        return Err(format!(
            "{} of {total} offline checks failed (`--skip ::live` runs each as a trial of its own):\n{}",
            failed.len(),
            failed.join("\n")
        )
        .into());
    }
    Ok((!not_a_pass.is_empty()).then(|| {
        format!(
            "{} passed; not a pass: {}",
            total - not_a_pass.len(),
            not_a_pass.join("; ")
        )
    }))
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

/// Scenario runs as the engine hands them over, awaited by the live trials.
#[derive(Default)]
struct Board {
    state: Mutex<BoardState>,
    changed: Condvar,
}

#[derive(Default)]
struct BoardState {
    runs: BTreeMap<(String, String), ScenarioRun>,
    /// The engine ended (or never started, with this error).
    ended: Option<Result<(), String>>,
}

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, BoardState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn post(&self, run: ScenarioRun) {
        self.lock()
            .runs
            .insert((run.scenario.clone(), run.istio.clone()), run);
        self.changed.notify_all();
    }

    fn end(&self, result: Result<(), String>) {
        self.lock().ended.get_or_insert(result);
        self.changed.notify_all();
    }

    /// The run of `scenario` on `istio`, once there; `Err` when the engine ended
    /// without it.
    fn wait(&self, scenario: &str, istio: &str) -> Result<ScenarioRun, String> {
        let key = (scenario.to_owned(), istio.to_owned());
        let mut state = self.lock();
        loop {
            if let Some(run) = state.runs.remove(&key) {
                return Ok(run);
            }
            match &state.ended {
                Some(Err(e)) => return Err(e.clone()),
                Some(Ok(())) => {
                    return Err(format!(
                        "the engine ended without running {scenario} on Istio {istio}"
                    ));
                }
                None => {}
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// What the live trials of this process share: one engine, started by the first
/// live trial that runs, executing the plan of every live trial selected.
#[derive(Default)]
struct LiveSeed {
    simulation: Option<Arc<dyn Simulation>>,
    /// `--cluster simulated` was asked for.
    simulated: bool,
    shutdown: Shutdown,
    make: OnceLock<LiveWork>,
    started: OnceLock<Result<Started, String>>,
    board: Arc<Board>,
    engine: Mutex<Option<std::thread::JoinHandle<RunEnd>>>,
}

struct LiveWork {
    ws: Workspace,
    scenarios: Vec<Scenario>,
    args: RunArgs,
    run_id: String,
    report_dir: Option<std::path::PathBuf>,
}

/// What the started engine is, as trials need it.
struct Started {
    mode: RunMode,
    resolved: Vec<IstioRelease>,
    /// `latest` and `installed`, as they resolved.
    aliases: Vec<(IstioRelease, IstioRelease)>,
}

impl LiveSeed {
    /// Starts the engine on its own thread, once.
    fn start(&self) -> Result<&Started, String> {
        self.started
            .get_or_init(|| self.start_engine())
            .as_ref()
            .map_err(Clone::clone)
    }

    fn start_engine(&self) -> Result<Started, String> {
        let work = self.make.get().ok_or("no live run was prepared")?;
        let mut options = work.args.engine_options(&work.ws, &work.run_id)?;
        let simulated = options.plan.cluster == ClusterMode::Simulated;
        let seams = match (&self.simulation, simulated) {
            (Some(sim), true) => sim.seams(&work.ws, &work.scenarios)?,
            (None, true) => {
                return Err("--cluster simulated runs only in the project's own test binary (`cargo test -- --cluster simulated`)".into());
            }
            (_, false) => {
                // The preflight once, one banner; each live trial then says it did not run.
                // Reachability is checked when the run must fetch something: offline
                // reruns with everything cached need no internet.
                let scenarios: Vec<&Scenario> = work.scenarios.iter().collect();
                let online = options.plan.istio.contains(&IstioRelease::Latest)
                    || plan::build(&scenarios, &work.ws, &options.plan).is_ok_and(|p| {
                        needs_internet(&p, crate::upstream::image::docker_has_image)
                    });
                let needs = crate::doctor::Needs::of(
                    options.plan.cluster,
                    options.plan.upstream,
                    options.plan.parallel_clusters,
                    online,
                );
                let checks = crate::doctor::checks_for(&crate::doctor::RealHost, needs);
                if let Some(banner) = crate::doctor::banner(&checks) {
                    eprintln!("egress: {banner}");
                    // The cause and fix are in the banner, once; each trial names it.
                    let first = checks
                        .iter()
                        .find(|c| c.verdict == crate::doctor::Verdict::Fail)
                        .map(|c| c.detail.split(" (").next().unwrap_or(&c.detail).to_owned())
                        .unwrap_or_default();
                    return Err(format!(
                        "not run: the preflight failed: {first} (the banner above the trials says why and what to do; `egress doctor` checks again)"
                    ));
                }
                if std::env::var_os("NEXTEST_RUN_ID").is_some() && !work.args.reuse {
                    return Err("live trials share clusters inside one process; cargo-nextest runs each test in its own. Run live trials with `cargo test -- --scenario NAME` (or pass --reuse / EGRESS_REUSE=1 with clusters kept by an earlier run)".into());
                }
                crate::live::production_seams(&options.plan.timeouts)
            }
        };
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("tokio runtime: {e}"))
        };
        let mut aliases = Vec::new();
        if options.plan.istio.contains(&IstioRelease::Latest) {
            let newest = if simulated {
                crate::versions::newest_supported()
            } else {
                runtime()?.block_on(crate::live::download::latest_istio())?
            };
            eprintln!("egress: `latest` is Istio {newest}");
            aliases.push((IstioRelease::Latest, IstioRelease::Exact(newest)));
        }
        if options.plan.cluster == ClusterMode::Existing {
            let deadline = options.plan.timeouts.existing_istio_ready;
            let found = runtime()?
                .block_on(crate::engine::existing::discover(&*seams.kube, deadline))
                .map_err(|e| e.to_string())?;
            let asked = options.plan.istio.clone();
            crate::engine::existing::resolve(&mut options.plan, &found)?;
            eprintln!(
                "egress: the current cluster runs Istio {} ({}); mesh config: {}",
                options
                    .plan
                    .istio
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                found.istiod_image,
                found.config
            );
            if let (Some(from), Some(to)) = (asked.first(), options.plan.istio.first()) {
                aliases.push((from.clone(), to.clone()));
            }
        }
        let mut resolved = Vec::new();
        for r in &options.plan.istio {
            let r = aliases
                .iter()
                .find(|(from, _)| from == r)
                .map_or_else(|| r.clone(), |(_, to)| to.clone());
            if !resolved.contains(&r) {
                resolved.push(r);
            }
        }
        options.plan.istio = resolved.clone();
        let mode = options.mode;
        let engine = Engine::new(
            work.ws.clone(),
            work.scenarios.clone(),
            options,
            seams,
            self.shutdown.token(),
        )?;
        self.shutdown.engine_started();
        let board = Arc::clone(&self.board);
        let simulation = self.simulation.clone().filter(|_| simulated);
        let handle = std::thread::Builder::new()
            .name("egress-engine".into())
            .spawn(move || {
                let runtime = match &simulation {
                    Some(sim) => sim.runtime(),
                    None => crate::engine::own_runtime(),
                };
                let ran = runtime
                    .map_err(|e| format!("tokio runtime: {e}"))
                    .map(|rt| rt.block_on(engine.run(&|run| board.post(run))));
                match ran {
                    Ok(end) => {
                        board.end(Ok(()));
                        end
                    }
                    Err(e) => {
                        board.end(Err(e));
                        RunEnd::default()
                    }
                }
            })
            .map_err(|e| format!("starting the engine thread: {e}"))?;
        *self.engine.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(Started {
            mode,
            resolved,
            aliases,
        })
    }

    /// The run of one live trial.
    fn run(
        &self,
        scenario: &str,
        istio: &IstioRelease,
    ) -> Result<(RunMode, ScenarioRun), (IstioRelease, String)> {
        let started = self.start().map_err(|e| (istio.clone(), e))?;
        let exact = started
            .aliases
            .iter()
            .find(|(from, _)| from == istio)
            .map_or_else(|| istio.clone(), |(_, to)| to.clone());
        debug_assert!(started.resolved.contains(&exact));
        self.board
            .wait(scenario, &exact.to_string())
            .map(|run| (started.mode, run))
            .map_err(|e| (exact, e))
    }

    /// After the trials: the engine's end, run problems, the simulation's leftovers.
    fn finish(&self, reporter: &Reporter) {
        let handle = self.engine.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(handle) = handle else { return };
        let end = match handle.join() {
            Ok(end) => end,
            Err(_) => {
                reporter.problem("the engine thread panicked");
                return;
            }
        };
        for p in end.problems {
            reporter.problem(p);
        }
        reporter.set_timing(end.timing);
        for (name, kubeconfig) in end.kept {
            eprintln!(
                "egress: kept cluster {name}: kubectl --kubeconfig {} get pods -A",
                kubeconfig.display()
            );
        }
        if let (Some(sim), Some(work)) = (&self.simulation, self.make.get())
            && self.simulated
            && let Some(dir) = &work.report_dir
        {
            let snapshot = sim.snapshot();
            let written = std::fs::create_dir_all(dir).and_then(|()| {
                std::fs::write(
                    dir.join("simulated-cluster.json"),
                    serde_json::to_vec_pretty(&snapshot).unwrap_or_default(),
                )
            });
            if let Err(e) = written {
                reporter.problem(format!("simulated-cluster.json: {e}"));
            }
        }
    }
}

impl LiveSeed {
    /// How this process's live trials are reported.
    fn source(&self) -> Source {
        match self.make.get() {
            _ if self.simulated => Source::Simulated,
            _ => Source::Live,
        }
    }
}

/// Whether libtest will run a trial with these arguments.
fn will_run(args: &libtest_mimic::Arguments, trial: &Trial, ignored: bool) -> bool {
    if args.list || args.is_filtered_out(trial) || args.is_ignored(trial) {
        return false;
    }
    !args.ignored || ignored
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
            trials.push(safe_trial(format!("{stem}::validate"), move || {
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
    let mut checks = Vec::new();
    let mut live = Vec::new();
    let mut refused_live = false;
    for s in &selected {
        checks.extend(scenario_checks(s, &ws, &istio, reporter, unfiltered));
        // Manifests Istio would refuse or misroute are not worth a cluster.
        let refused: Vec<String> = validate::check_manifests(s, &ws)
            .into_iter()
            .chain(validate::check_consistency(s, &ws))
            .map(|p| p.to_string())
            .collect();
        for (trial, version) in live_trials(s, &istio, selecting, seed, reporter) {
            if !refused.is_empty() {
                refused_live |= will_run(&args.libtest, &trial, !selecting);
                trials.push(not_run_live(s, trial, &version, &refused, seed, reporter));
                continue;
            }
            if will_run(&args.libtest, &trial, !selecting) {
                live.push((s.name().to_owned(), version));
            }
            trials.push(trial);
        }
    }
    // A selection that runs nothing live is an error, not a green run of offline checks.
    let unfiltered_live = args.libtest.filter.is_none() && args.libtest.skip.is_empty();
    if selecting
        && live.is_empty()
        && !refused_live
        && unfiltered_live
        && !args.libtest.list
        && !selected.is_empty()
    {
        let versions: Vec<String> = istio.iter().map(ToString::to_string).collect();
        let ranges: Vec<String> = selected
            .iter()
            .map(|s| {
                let skip = istio.iter().find_map(|v| match v {
                    IstioRelease::Exact(v) => s
                        .known_issue_for(v)
                        .filter(|k| k.mode == KnownIssueMode::Skip)
                        .map(|k| format!(", skipped by known issue {}", k.url.value)),
                    IstioRelease::Latest | IstioRelease::Installed => None,
                });
                format!(
                    "{} applies to Istio {}{}",
                    s.name(),
                    s.istio,
                    skip.unwrap_or_default()
                )
            })
            .collect();
        return Err(format!(
            "no selected scenario runs live on Istio {}: {}. Pick versions inside those ranges with --istio",
            versions.join(","),
            ranges.join("; ")
        ));
    }
    // The engine plans exactly the scenarios and versions of the live trials that run.
    let live_scenarios: Vec<Scenario> = selected
        .iter()
        .filter(|s| live.iter().any(|(n, _)| n == s.name()))
        .map(|s| (*s).clone())
        .collect();
    let mut run = args.run.clone();
    let versions: Vec<String> = istio
        .iter()
        .filter(|v| live.iter().any(|(_, lv)| lv == *v))
        .map(ToString::to_string)
        .collect();
    run.istio = Some(versions.join(","));
    let _ = seed.make.set(LiveWork {
        ws: ws.clone(),
        scenarios: live_scenarios,
        args: run,
        run_id: reporter.run_id().to_owned(),
        report_dir: reporter.dir().map(std::path::Path::to_path_buf),
    });
    if !live.is_empty() {
        // Started now, so setup overlaps the offline trials; errors reach each live trial.
        let _ = seed.start();
    }
    if !live.is_empty() && unfiltered && !args.libtest.list && !checks.is_empty() {
        trials.push(folded(checks));
    } else {
        trials.extend(checks.into_iter().map(Check::into_trial));
    }
    if !selecting {
        trials.push(browser_trial(&ws, &suite, reporter));
    }
    Ok(trials)
}

fn scenario_checks(
    s: &Scenario,
    ws: &Workspace,
    istio: &[IstioRelease],
    reporter: &Arc<Reporter>,
    unfiltered: bool,
) -> Vec<Check> {
    let name = s.name().to_owned();
    // The file is read again: a trial that could not fail would prove nothing. Its
    // source is shown relative to the root, which need not be the working folder.
    let (file, manifests) = (ws.root.join(&s.source), ws.manifests_dir());
    let expected = name.clone();
    let mut checks =
        vec![Check::new(
            format!("{name}::validate"),
            move || match crate::scenario::load_file(&file, &manifests) {
                Ok(s) if s.name() == expected => Ok(()),
                Ok(s) => Err(format!("{} names itself {}", file.display(), s.name()).into()),
                Err(errors) => Err(errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into()),
            },
        )];

    let (scenario, workspace) = (s.clone(), ws.clone());
    checks.push(Check::new(format!("{name}::manifests"), move || {
        problems(validate::check_manifests(&scenario, &workspace))
    }));

    let (scenario, workspace) = (s.clone(), ws.clone());
    checks.push(Check::new(format!("{name}::consistency"), move || {
        problems(validate::check_consistency(&scenario, &workspace))
    }));

    let (scenario, workspace) = (s.clone(), ws.clone());
    let versions = istio.to_vec();
    checks.push(Check::new(format!("{name}::plan"), move || {
        let options = PlanOptions {
            istio: versions,
            kind: Some("kind".into()),
            ..PlanOptions::for_this_host()
        };
        let plan = plan::build(&[&scenario], &workspace, &options)?;
        let requests = plan
            .steps()
            .iter()
            .filter(|p| matches!(p.step, plan::Step::SendRequest { .. }))
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

    checks.extend(replay_checks(s, ws, reporter, unfiltered));
    checks
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
) -> Vec<(Trial, IstioRelease)> {
    let source = if seed.simulated {
        Source::Simulated
    } else {
        Source::Live
    };
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
                        source,
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
        let kind = if seed.simulated { "simulated" } else { "live" };
        let (seed, scenario, trial_version, reporter) = (
            Arc::clone(seed),
            s.clone(),
            version.clone(),
            Arc::clone(reporter),
        );
        trials.push((
            safe_ignorable_trial(format!("{}::live{suffix}", s.name()), move || {
                live_trial(&seed, &reporter, &scenario, &trial_version)
            })
            .with_kind(kind)
            .with_ignored_flag(!selected),
            version.clone(),
        ));
    }
    trials
}

/// The live trial of a scenario whose manifests fail validation: it fails at once,
/// naming the first problem and the offline trials that list them all, and no cluster
/// is made for it.
fn not_run_live(
    s: &Scenario,
    trial: Trial,
    version: &IstioRelease,
    refused: &[String],
    seed: &LiveSeed,
    reporter: &Arc<Reporter>,
) -> Trial {
    let name = s.name().to_owned();
    let message = format!(
        "not run live: its manifests fail validation ({} problem(s), all in {name}::manifests and {name}::consistency); the first: {}",
        refused.len(),
        refused[0]
    );
    let (scenario, version, reporter, source) = (
        s.clone(),
        version.clone(),
        Arc::clone(reporter),
        seed.source(),
    );
    let ignored = trial.has_ignored_flag();
    safe_trial(trial.name().to_owned(), move || {
        reporter.record(case::live_error(
            &scenario,
            &version,
            source,
            Environment::default(),
            message.clone(),
        ));
        Err(message.into())
    })
    .with_kind(if seed.simulated { "simulated" } else { "live" })
    .with_ignored_flag(ignored)
}

/// `<scenario>::replay` per shipped recording, and `<scenario>::mutation-<what>` for
/// every mutation that changes it: each must turn the replay red.
fn replay_checks(
    s: &Scenario,
    ws: &Workspace,
    reporter: &Arc<Reporter>,
    unfiltered: bool,
) -> Vec<Check> {
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
    let mut checks = Vec::new();
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
                checks.push(Check::new(format!("{name}::replay{suffix}"), move || {
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
        checks.push(Check::ignorable(
            format!("{name}::replay{suffix}"),
            move || {
                let mut case = case::from_replay(&scenario, &original, &shipped_name, sidecar);
                if let Ok(text) = serde_json::to_vec_pretty(&original) {
                    let kept = format!(
                        "evidence/{}@{}/recording.json",
                        original.scenario, original.istio
                    );
                    reporter.keep(&mut case, &kept, &text);
                }
                let outcome = case::trial_outcome(&case);
                let not_a_pass = case::not_a_pass(&case);
                reporter.record(case);
                outcome.map(|_| not_a_pass).map_err(Failed::from)
            },
        ));
        for (mutation, changed) in crate::replay::mutations(&recording) {
            let scenario = s.clone();
            checks.push(Check::new(format!("{name}::mutation-{mutation}{suffix}"), move || {
                let result = crate::replay::replay(&scenario, &changed)?;
                if result.passed() {
                    return Err(format!("the mutation {mutation} left the verdict green: no expectation looks at what it changed").into());
                }
                Ok(())
            }));
        }
    }
    checks
}

/// `report::html-in-chromium`: a nightly-sized merged report (16 scenarios × 4 versions), rendered by
/// headless Chromium. Ignored where no Chromium is found, unless
/// `EGRESS_REQUIRE_CHROMIUM=1` (CI) makes a missing browser a failure.
fn browser_trial(ws: &Workspace, suite: &Suite, reporter: &Arc<Reporter>) -> Trial {
    let chromium = crate::report::browser::find_chromium();
    let required = std::env::var("EGRESS_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    let results = crate::report::browser::nightly_report(ws, suite);
    let out = reporter
        .dir()
        .map_or_else(std::env::temp_dir, std::path::Path::to_path_buf);
    let ignored = chromium.is_none() && !required;
    safe_trial("report::html-in-chromium", move || {
        let chromium = chromium
            .ok_or_else(|| format!("no Chromium: {}", crate::report::browser::INSTALL_HINT))?;
        let png = crate::report::browser::check_report(&chromium, &results?, &out)?;
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
) -> Result<Option<String>, Failed> {
    let token = reporter.begin(case::live_error(
        scenario,
        istio,
        Source::Live,
        Environment::default(),
        "the live trial did not finish".into(),
    ));
    let dir = reporter.dir().unwrap_or(std::path::Path::new(""));
    let case = match seed.run(scenario.name(), istio) {
        Ok((_, run)) => case::from_live(scenario, &run, dir),
        Err((exact, e)) => {
            case::live_error(scenario, &exact, seed.source(), Environment::default(), e)
        }
    };
    let outcome = case::trial_outcome(&case);
    let not_a_pass = case::not_a_pass(&case);
    reporter.finish(token, case);
    let summary = outcome?;
    eprintln!("egress: {}: {summary}", scenario.name());
    Ok(not_a_pass)
}

/// Whether a run of `plan` must fetch something: a kind or istioctl not in the
/// cache, or an image this host's Docker does not have.
fn needs_internet(plan: &crate::plan::Plan, has_image: impl Fn(&str) -> bool) -> bool {
    plan.steps().iter().any(|p| match &p.step {
        plan::Step::DownloadKind { dest, .. } | plan::Step::DownloadIstioctl { dest, .. } => {
            !dest.is_file()
        }
        // cargo may fetch crates for the project's echo program.
        plan::Step::PullImage { image, .. } | plan::Step::BuildImage { image, .. } => {
            !has_image(image)
        }
        // The pinned Gateway API CRDs, unless the cache has them.
        plan::Step::InstallGatewayApiCrds { files, .. }
        | plan::Step::SwapGatewayApiCrds { files, .. } => files.iter().any(|f| !f.dest.is_file()),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fold_of_offline_checks_names_what_failed_and_is_never_ok_for_a_known_failure() {
        let checks = || {
            vec![
                Check::new("a::validate", || Ok(())),
                Check::ignorable("a::replay", || {
                    Ok(Some(
                        "known failure: https://github.com/istio/istio/issues/1".into(),
                    ))
                }),
                Check::new("b::plan", || Err("the plan sends 0 request(s)".into())),
            ]
        };
        let failed = run_folded(checks()).unwrap_err();
        let message = failed.message().unwrap_or_default();
        assert!(
            message.starts_with("1 of 3 offline checks failed"),
            "{message}"
        );
        assert!(
            message.contains("b::plan: the plan sends 0 request(s)"),
            "{message}"
        );
        assert!(!message.contains("a::validate"), "{message}");

        let mut passing = checks();
        passing.pop();
        let said = run_folded(passing).unwrap();
        assert_eq!(
            said.as_deref(),
            Some(
                "1 passed; not a pass: a::replay: known failure: https://github.com/istio/istio/issues/1"
            )
        );
        assert_eq!(
            run_folded(vec![Check::new("a::validate", || Ok(()))]).unwrap(),
            None
        );
    }

    #[test]
    fn a_run_needs_the_internet_only_for_what_this_host_lacks() {
        let ws = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let suite = Suite::load(&ws).unwrap();
        let picked = suite.select(&["gateway-http".to_owned()]).unwrap();
        let cache = std::env::temp_dir().join(format!("egress-needs-net-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        let options = PlanOptions {
            istio: IstioRelease::parse_list("1.30.3").unwrap(),
            cache_dir: cache.clone(),
            kind: None,
            ..PlanOptions::for_this_host()
        };
        let plan = plan::build(&picked, &ws, &options).unwrap();
        // Nothing cached, no image: kind, istioctl and the images are fetched.
        assert!(needs_internet(&plan, |_| false));
        // Every image present, the tools still missing.
        assert!(needs_internet(&plan, |_| true));
        // The tools cached too: an offline rerun.
        for p in plan.steps() {
            if let plan::Step::DownloadKind { dest, .. }
            | plan::Step::DownloadIstioctl { dest, .. } = &p.step
            {
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::write(dest, "").unwrap();
            }
        }
        assert!(!needs_internet(&plan, |_| true));
        assert!(needs_internet(&plan, |image| !image.contains("proxyv2")));
        let _ = std::fs::remove_dir_all(&cache);
    }
}
