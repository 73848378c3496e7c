//! SIGINT and SIGTERM during a run remove the upstream container it started: the
//! engine with the simulated cluster and the real Docker engine of this machine,
//! signalled for real. A test binary of its own: the signal reaches the whole process.

#[path = "../../../harness/tests/support/docker_lock.rs"]
mod docker_lock;
#[path = "../../../harness/tests/support/runner.rs"]
mod runner;

use std::process::Command;
use std::time::{Duration, Instant};

use egress_harness::engine::shutdown::Shutdown;
use egress_harness::engine::{Engine, EngineOptions, EvidenceMode};
use egress_harness::model::{ClusterMode, RunMode};
use egress_harness::plan::{IstioRelease, PlanOptions};
use egress_harness::suite::{Suite, Workspace};
use egress_sim::{Fault, Faults, Sim};

/// Whether docker succeeded, its standard output and the daemon's error.
fn docker(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn running(name: &str) -> bool {
    docker(&["ps", "-a", "--format", "{{.Names}}"])
        .1
        .lines()
        .any(|l| l == name)
}

/// The engine on the simulated cluster with the real Docker upstream, running on a
/// thread of its own, signals listened to; its upstream container's name.
fn start_run(
    run_id: &str,
    image: &str,
) -> (
    std::thread::JoinHandle<egress_harness::engine::RunEnd>,
    String,
    Sim,
) {
    let ws = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let scenarios: Vec<_> = Suite::load(&ws)
        .expect("suite")
        .select(&["gateway-http".into()])
        .expect("select")
        .into_iter()
        .cloned()
        .collect();
    // Late log lines keep the request busy long enough to be interrupted.
    let sim = Sim::new(&ws, &scenarios, Faults::of(&[Fault::LogLineLate])).expect("sim");
    let mut seams = sim.seams();
    seams.docker = std::sync::Arc::new(egress_harness::live::docker::DockerEngine);
    let mut plan = PlanOptions {
        istio: IstioRelease::parse_list("1.22.1").expect("version"),
        cluster: ClusterMode::Simulated,
        kind: None,
        cache_dir: std::env::temp_dir().join(format!("egress-signal-{run_id}")),
        run_id: Some(run_id.into()),
        reports_dir: std::env::temp_dir().join("egress-signal-reports"),
        upstream_image: Some(image.to_owned()),
        ..PlanOptions::for_this_host()
    };
    plan.timeouts.request = Duration::from_secs(60);
    let shutdown = Shutdown::default();
    let engine = Engine::new(
        ws,
        scenarios,
        EngineOptions {
            plan,
            reuse: false,
            evidence: EvidenceMode::OnFailure,
            mode: RunMode::Simulated,
            verbose: false,
        },
        seams,
        shutdown.token(),
    )
    .expect("engine");
    let container = format!("egc-upstream-{run_id}");
    shutdown.engine_started();
    shutdown.listen(|| {});
    let handle = std::thread::spawn(move || {
        let end = egress_harness::engine::run_blocking(&engine)
            .expect("ran")
            .1;
        // The next run's signal is not this one's second.
        shutdown.engine_finished();
        end
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !running(&container) {
        assert!(Instant::now() < deadline, "the upstream never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    (handle, container, sim)
}

fn run_and_signal(signal: libc::c_int, run_id: &str, image: &str) {
    let (handle, container, sim) = start_run(run_id, image);
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own pid; no memory is shared.
    unsafe {
        libc::kill(libc::getpid(), signal);
    }
    let signalled = Instant::now();
    let end = handle.join().expect("the engine returns");
    assert!(
        signalled.elapsed() < Duration::from_secs(20),
        "a signal stops the run promptly, not at the request's deadline: {:?}",
        signalled.elapsed()
    );
    assert!(end.interrupted, "the run knows it was interrupted");
    assert!(!running(&container), "{container} is gone after the signal");
    assert!(
        sim.is_empty(),
        "the simulated cluster is gone: {}",
        sim.snapshot()
    );
}

fn sigint_and_sigterm_remove_the_upstream_container() {
    let Some(host) = DockerHost::take() else {
        return;
    };
    let image = host.image.clone();
    let pid = std::process::id();
    run_and_signal(libc::SIGINT, &format!("sigint-{pid}"), &image);
    run_and_signal(libc::SIGTERM, &format!("sigterm-{pid}"), &image);
}

/// The Docker engine, held for one test: the lock every Docker test takes, the
/// project's echo image, and kind's network, made for the test when missing and then
/// removed when the test ends.
struct DockerHost {
    _turn: docker_lock::DockerLock,
    image: String,
    made_network: bool,
}

impl DockerHost {
    /// `None` (said, or a failure under EGRESS_REQUIRE_DOCKER=1) without a daemon.
    fn take() -> Option<Self> {
        if !docker(&["version"]).0 {
            assert!(
                std::env::var("EGRESS_REQUIRE_DOCKER").as_deref() != Ok("1"),
                "no Docker daemon"
            );
            eprintln!("skipped: no Docker daemon");
            return None;
        }
        // kind's own network is shared with every Docker test and checkout on this host.
        let turn = docker_lock::docker_lock();
        let image = egress_harness::upstream::image::project_echo(
            &egress_harness::upstream::image::source_root(),
        )
        .and_then(|echo| echo.build_blocking())
        .expect("the project's echo image");
        let made_network = !docker(&["network", "inspect", "kind"]).0 && {
            let (made, _, err) = docker(&["network", "create", "kind"]);
            assert!(made, "docker network create kind: {err}");
            made
        };
        Some(Self {
            _turn: turn,
            image,
            made_network,
        })
    }
}

impl Drop for DockerHost {
    fn drop(&mut self) {
        if self.made_network {
            let (removed, _, err) = docker(&["network", "rm", "kind"]);
            if !removed {
                eprintln!("docker network rm kind (made by this test): {err}");
            }
        }
    }
}

/// Set in the child of `a_second_sigint_leaves_at_once_naming_what_is_left`: the run
/// id and image it runs with, until a signal ends it.
const CHILD: &str = "EGRESS_SIGNAL_CHILD";

fn a_second_sigint_leaves_at_once_naming_what_is_left() {
    let Some(host) = DockerHost::take() else {
        return;
    };
    let image = host.image.clone();
    let run_id = format!("twice-{}", std::process::id());
    let container = format!("egc-upstream-{run_id}");
    // A process of its own: the second signal ends it.
    let child = Command::new(std::env::current_exe().expect("this test binary"))
        .env(CHILD, format!("{run_id} {image}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the child run");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !running(&container) {
        assert!(
            Instant::now() < deadline,
            "the child's upstream never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on the child this test started.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    std::thread::sleep(Duration::from_millis(30));
    let second = Instant::now();
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let out = child.wait_with_output().expect("the child ends");
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "{:?}",
        second.elapsed()
    );
    assert_eq!(out.status.code(), Some(130));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("interrupted again; leaving at once"),
        "{said}"
    );
    // What it says is left is what is left.
    let left = running(&container);
    eprintln!("after the second interrupt, {container} left: {left}; the run said: {said}");
    if left {
        assert!(said.contains(&format!("container {container}")), "{said}");
        assert!(said.contains("egress prune"), "{said}");
        let (removed, _, err) = docker(&["rm", "-f", &container]);
        // The run's own removal may still be under way in the daemon: it finishes.
        let finishing = !removed && err.contains("already in progress");
        if finishing {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while running(&container) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        assert!(
            removed || (finishing && !running(&container)),
            "docker rm -f {container}: {err}"
        );
    } else {
        assert!(!said.contains(&format!("container {container}")), "{said}");
    }
}

/// The child's side: runs until a signal ends the process.
fn child_run(spec: &str) -> std::process::ExitCode {
    let (run_id, image) = spec.split_once(' ').expect("RUN_ID IMAGE");
    let (handle, _, _sim) = start_run(run_id, image);
    let _ = handle.join();
    std::process::ExitCode::SUCCESS
}

/// A test that cannot run here (no Docker daemon) is reported ignored with the reason, never
/// `ok`; with the `EGRESS_REQUIRE_*` variable set (CI) it fails instead.
fn main() -> std::process::ExitCode {
    if let Ok(spec) = std::env::var(CHILD) {
        return child_run(&spec);
    }
    let missing = runner::missing(
        !Command::new("docker")
            .args(["version", "--format", "{{.Server.APIVersion}}"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "EGRESS_REQUIRE_DOCKER",
        "no Docker daemon answers `docker version` here".into(),
    );
    let tests: Vec<(&'static str, fn())> = vec![
        (
            "sigint_and_sigterm_remove_the_upstream_container",
            sigint_and_sigterm_remove_the_upstream_container as fn(),
        ),
        (
            "a_second_sigint_leaves_at_once_naming_what_is_left",
            a_second_sigint_leaves_at_once_naming_what_is_left as fn(),
        ),
    ];
    runner::run(missing, tests)
}
