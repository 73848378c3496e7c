//! The harness's own cost: every scenario on one Istio version through the real
//! engine against the simulated cluster, reporting wall time, the process's CPU time
//! (harness and simulation, which share it) and the time split the summary prints, on
//! the simulated cluster's virtual clock.
//! `cargo run --release --example bench_simulated_run [VERSION]`. Nothing here is a
//! live result.

use std::sync::Mutex;

use egress_harness::engine::{Engine, EngineOptions, EvidenceMode};
use egress_harness::model::{ClusterMode, RunMode};
use egress_harness::plan::{IstioRelease, PlanOptions};
use egress_harness::suite::{Suite, Workspace};
use egress_sim::{Faults, Sim};
use tokio_util::sync::CancellationToken;

fn main() -> Result<(), String> {
    let version = std::env::args()
        .nth(1)
        .unwrap_or_else(|| egress_harness::versions::newest_supported().to_string());
    let ws = Workspace::at(env!("CARGO_MANIFEST_DIR"));
    let suite = Suite::load(&ws)?;
    let scenarios: Vec<_> = suite.scenarios.clone();
    let sim = Sim::new(&ws, &scenarios, Faults::of(&[]))?;
    let run_id = format!("bench-simulated-{}", std::process::id());
    let plan = PlanOptions {
        istio: IstioRelease::parse_list(&version)?,
        cluster: ClusterMode::Simulated,
        kind: None,
        cache_dir: std::env::temp_dir().join(&run_id),
        run_id: Some(run_id.clone()),
        reports_dir: std::env::temp_dir().join("egress-bench-reports"),
        ..PlanOptions::for_this_host()
    };
    let options = EngineOptions {
        plan,
        reuse: false,
        evidence: EvidenceMode::OnFailure,
        mode: RunMode::Simulated,
        verbose: false,
    };
    let dir = options.run_dir();
    let engine = Engine::new(
        ws,
        scenarios,
        options,
        sim.seams(),
        CancellationToken::new(),
    )?;
    // The simulated cluster's virtual clock: its waits cost no real time, so the real
    // wall time is the harness's and the simulation's own work.
    let runtime = egress_sim::virtual_clock_runtime().map_err(|e| e.to_string())?;
    let runs = Mutex::new(Vec::new());
    let real = std::time::Instant::now();
    let end = runtime.block_on(engine.run(&|r| {
        runs.lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }));
    let real = real.elapsed().as_secs_f64();
    let runs = runs.into_inner().unwrap_or_else(|e| e.into_inner());
    let _ = std::fs::remove_dir_all(&dir);
    let passed = runs.iter().filter(|r| r.passed()).count();
    let mut t = end.timing.clone();
    t.consistency_seconds = runs
        .iter()
        .flat_map(|r| &r.requests)
        .filter_map(|q| q.converged.consistent_after)
        .map(|d| d.as_secs_f64())
        .sum();
    println!(
        "SIMULATED: {} scenario run(s) on Istio {version}, {passed} with every expectation holding (a known issue's scenario does not)",
        runs.len()
    );
    println!("{}", egress_harness::report::markdown::time_split(&t));
    println!(
        "real wall time {real:.2} s, process CPU {:.2} s (harness and simulation); on the virtual clock the run took {:.0} s",
        t.harness_cpu_seconds, t.wall_seconds,
    );
    Ok(())
}
