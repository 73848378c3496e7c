//! The engine, executed: every scenario through the real interpreter against the
//! simulated cluster of `tests/sim`, on the seed release and the newest supported
//! one; injected faults and the outcome class each must give; cluster lifecycle;
//! steps.jsonl against the plan. Nothing here is a live result.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use egress_harness::engine::{Engine, EngineOptions, EvidenceMode, RunEnd, ScenarioRun};
use egress_harness::model::{ClusterMode, Keep, RunMode};
use egress_harness::plan::{IstioRelease, PlanOptions};
use egress_harness::report::case;
use egress_harness::report::results::{Case, Source, Status};
use egress_harness::scenario::Scenario;
use egress_harness::suite::{Suite, Workspace};
use egress_sim::{Fault, Faults, Sim};
use tokio_util::sync::CancellationToken;

fn ws() -> Workspace {
    Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn scenarios(names: &[&str]) -> Vec<Scenario> {
    let suite = Suite::load(&ws()).expect("suite");
    let terms: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    suite
        .select(&terms)
        .expect("select")
        .into_iter()
        .cloned()
        .collect()
}

/// Everything one simulated run gave.
struct SimRun {
    runs: Vec<ScenarioRun>,
    end: RunEnd,
    sim: Sim,
    dir: PathBuf,
    engine_plan: serde_json::Value,
    scenarios: Vec<Scenario>,
}

impl SimRun {
    fn case(&self, scenario: &str, istio: &str) -> Case {
        let run = self
            .runs
            .iter()
            .find(|r| r.scenario == scenario && r.istio == istio)
            .unwrap_or_else(|| panic!("no run of {scenario} on {istio}"));
        let s = self
            .scenarios
            .iter()
            .find(|s| s.name() == scenario)
            .expect("scenario");
        case::from_live(s, run, &self.dir)
    }

    fn steps(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join("steps.jsonl")).expect("steps.jsonl");
        let mut lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        lines.sort_by_key(|l| l["index"].as_u64());
        lines
    }
}

fn options(istio: &str, run_id: &str) -> EngineOptions {
    let mut plan = PlanOptions {
        istio: IstioRelease::parse_list(istio).expect("versions"),
        cluster: ClusterMode::Simulated,
        kind: None,
        cache_dir: std::env::temp_dir().join(format!("egress-engine-cache-{run_id}")),
        run_id: Some(run_id.to_owned()),
        reports_dir: std::env::temp_dir().join("egress-engine-reports"),
        ..PlanOptions::for_this_host()
    };
    plan.timeouts.request = Duration::from_secs(8);
    plan.timeouts.clean_config = Duration::from_secs(5);
    plan.timeouts.log_line = Duration::from_secs(4);
    plan.timeouts.route_status = Duration::from_secs(3);
    EngineOptions {
        plan,
        reuse: false,
        evidence: EvidenceMode::OnFailure,
        mode: RunMode::Simulated,
        verbose: false,
    }
}

fn run_with(
    names: &[&str],
    faults: &[Fault],
    options: EngineOptions,
    prepare: impl FnOnce(&Sim),
    cancel: CancellationToken,
) -> SimRun {
    let scenarios = scenarios(names);
    let sim = Sim::new(&ws(), &scenarios, Faults::of(faults)).expect("sim");
    prepare(&sim);
    let dir = options.run_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let engine =
        Engine::new(ws(), scenarios.clone(), options, sim.seams(), cancel).expect("engine");
    execute(&engine, sim, dir, scenarios)
}

fn runtime() -> tokio::runtime::Runtime {
    egress_sim::virtual_clock_runtime().expect("runtime")
}

/// Runs a planned engine to its end and keeps what it gave.
fn execute(engine: &Engine, sim: Sim, dir: PathBuf, scenarios: Vec<Scenario>) -> SimRun {
    let runs = Mutex::new(Vec::new());
    let end = runtime().block_on(engine.run(&|r| runs.lock().expect("runs").push(r)));
    SimRun {
        runs: runs.into_inner().expect("runs"),
        end,
        sim,
        dir,
        engine_plan: engine.plan().to_json(),
        scenarios,
    }
}

fn run(names: &[&str], istio: &str, faults: &[Fault], run_id: &str) -> SimRun {
    run_with(
        names,
        faults,
        options(istio, run_id),
        |_| {},
        CancellationToken::new(),
    )
}

/// The status a case must have to count as what the scenario states (a known
/// issue in xfail mode is a known failure).
fn green(status: Status) -> bool {
    matches!(status, Status::Pass | Status::KnownFailure)
}

#[test]
fn every_scenario_passes_in_simulation_on_the_seed_and_the_newest_release() {
    let newest = egress_harness::versions::newest_supported().to_string();
    let versions = format!("1.22.1,{newest}");
    let r = run(&[], &versions, &[], "all");
    let scenarios = scenarios(&[]);
    for s in &scenarios {
        for v in ["1.22.1", newest.as_str()] {
            let c = r.case(s.name(), v);
            let version = semver::Version::parse(v).expect("version");
            if !s.applies_to(&version) {
                assert_eq!(c.status, Status::Skipped, "{} on {v}", s.name());
                continue;
            }
            assert_eq!(
                c.source,
                Source::Simulated,
                "{} is marked simulated",
                s.name()
            );
            assert!(
                green(c.status),
                "{} on {v}: {:?} {}",
                s.name(),
                c.status,
                c.message.unwrap_or_default()
            );
        }
    }
    assert!(r.sim.is_empty(), "left behind: {}", r.sim.snapshot());
    assert!(r.end.problems.is_empty(), "{:?}", r.end.problems);

    // steps.jsonl: every planned step once, in plan order, with the plan's command lines.
    let logged = r.steps();
    let planned = r.engine_plan["steps"].as_array().expect("steps").clone();
    assert_eq!(logged.len(), planned.len());
    for (l, p) in logged.iter().zip(&planned) {
        assert_eq!((&l["index"], &l["step"]), (&p["index"], &p["step"]));
        assert_eq!(l["argv"], p["argv"], "step {}", p["index"]);
        assert!(l["started"].is_string() && l["duration_seconds"].is_number());
    }
    assert!(
        logged.iter().all(|l| l["outcome"] != "error"),
        "no step erred: {:?}",
        logged.iter().find(|l| l["outcome"] == "error")
    );
}

/// `--parallel-scenarios 4`: the plan's groups run at once on the cluster, every
/// scenario still green, every step once, nothing left. Scenarios of one group overlap
/// on the (virtual) clock: their steps' starts interleave.
#[test]
fn scenarios_side_by_side_stay_green_and_overlap() {
    let newest = egress_harness::versions::newest_supported().to_string();
    let mut opts = options(&newest, "side-by-side");
    opts.plan.parallel_scenarios = 4;
    let r = run_with(&[], &[], opts, |_| {}, CancellationToken::new());
    for s in scenarios(&[]) {
        let c = r.case(s.name(), &newest);
        if c.status != Status::Skipped {
            assert!(
                green(c.status),
                "{}: {:?} {}",
                s.name(),
                c.status,
                c.message.unwrap_or_default()
            );
        }
    }
    assert!(r.sim.is_empty(), "left behind: {}", r.sim.snapshot());
    assert!(r.end.problems.is_empty(), "{:?}", r.end.problems);
    let planned = r.engine_plan["steps"].as_array().expect("steps").len();
    assert_eq!(r.steps().len(), planned);
    // Some group of the plan holds several scenarios, and they ran at once: one's
    // first step started before another's last step ended.
    let shared: Vec<Vec<String>> = r.engine_plan["scenario_groups"]
        .as_array()
        .expect("scenario_groups")
        .iter()
        .flat_map(|slot| slot["groups"].as_array().cloned().unwrap_or_default())
        .map(|g| serde_json::from_value::<Vec<String>>(g).expect("names"))
        .filter(|g| g.len() > 1)
        .collect();
    assert!(!shared.is_empty(), "no group of several scenarios");
    let steps = r.steps();
    let span = |name: &str| {
        let mine: Vec<&serde_json::Value> =
            steps.iter().filter(|l| l["scenario"] == name).collect();
        let start = |l: &&serde_json::Value| l["started"].as_str().unwrap_or_default().to_owned();
        (
            mine.iter().map(start).min().unwrap_or_default(),
            mine.iter().map(start).max().unwrap_or_default(),
        )
    };
    let (a, b) = (span(&shared[0][0]), span(&shared[0][1]));
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "{} {a:?} and {} {b:?} did not overlap",
        shared[0][0],
        shared[0][1]
    );
}

#[test]
fn the_run_plan_is_what_egress_plan_prints_as_json() {
    let scenarios = scenarios(&["gateway-http"]);
    let options = options("1.22.1", "plan-json");
    let refs: Vec<&Scenario> = scenarios.iter().collect();
    let printed = egress_harness::plan::build(&refs, &ws(), &options.plan)
        .expect("plan")
        .to_json();
    let r = run(&["gateway-http"], "1.22.1", &[], "plan-json");
    assert_eq!(printed["steps"], r.engine_plan["steps"]);
    // The run's time, split by phase from the same steps.
    let t = &r.end.timing;
    let logged: f64 = r
        .steps()
        .iter()
        .filter_map(|l| l["duration_seconds"].as_f64())
        .sum();
    let phases = t.host_seconds
        + t.cluster_setup_seconds
        + t.istio_install_seconds
        + t.scenario_seconds
        + t.teardown_seconds;
    assert!((phases - logged).abs() < 1e-6, "{phases} vs {logged}");
    assert!(
        t.scenario_seconds > 0.0 && t.wall_seconds >= t.scenario_seconds,
        "{t:?}"
    );
    assert!(
        t.harness_cpu_seconds > 0.0 && t.harness_cpu_seconds < t.wall_seconds,
        "{t:?}"
    );
    let kinds: Vec<serde_json::Value> = r.steps().iter().map(|l| l["step"].clone()).collect();
    let planned: Vec<serde_json::Value> = printed["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].clone())
        .collect();
    assert_eq!(kinds, planned);
}

fn only_case(r: &SimRun, scenario: &str) -> Case {
    r.case(scenario, "1.22.1")
}

fn assert_error_at(c: &Case, step: &str) {
    assert_eq!(c.status, Status::Error, "{:?}", c.message);
    let message = c.message.clone().unwrap_or_default();
    assert!(message.contains(step), "names the step {step}: {message}");
}

#[test]
fn infrastructure_faults_are_errors_naming_their_step() {
    for (fault, step) in [
        (Fault::ClusterCreateFails, "create_cluster"),
        (Fault::ImageLoadFails, "load_images"),
        (Fault::IstiodNeverReady, "wait_ready"),
        (Fault::PodNeverReady, "wait_ready"),
        (Fault::NoSidecarInjected, "wait_ready"),
    ] {
        let r = run(&["gateway-http"], "1.22.1", &[fault], fault.name());
        let c = only_case(&r, "gateway-http");
        assert_error_at(&c, step);
        assert!(
            r.sim.is_empty(),
            "{}: left {}",
            fault.name(),
            r.sim.snapshot()
        );
    }
}

const GATEWAY_API: [&str; 3] = [
    "gateway-api-http",
    "gateway-api-tls-origination",
    "gateway-api-tls-passthrough",
];

#[test]
fn gateway_api_scenarios_get_the_pinned_crds_and_are_judged_on_status_before_traffic() {
    let r = run(&["gateway-api"], "1.24.3,1.30.3", &[], "gateway-api");
    for s in GATEWAY_API {
        for v in ["1.24.3", "1.30.3"] {
            let c = r.case(s, v);
            assert_eq!(c.status, Status::Pass, "{s} on {v}: {:?}", c.message);
            let status = &c.requests[0];
            assert_eq!(status.name, case::STATUS_CHECK);
            assert!(
                status.passed && status.verdicts.len() >= 7,
                "{s}: {status:?}"
            );
        }
    }
    assert!(r.sim.is_empty(), "left behind: {}", r.sim.snapshot());
    // Each cluster gets the release its Istio is built against, before Istio starts.
    let steps = r.steps();
    for (cluster, version) in [
        ("egc-1-24-3-registry-only", "v1.2.1"),
        ("egc-1-30-3-registry-only", "v1.5.1"),
    ] {
        let of_cluster: Vec<&serde_json::Value> =
            steps.iter().filter(|l| l["cluster"] == cluster).collect();
        let at = |kind: &str| of_cluster.iter().position(|l| l["step"] == kind);
        let crds = at("install_gateway_api_crds").expect("a CRD step");
        assert!(crds < at("install_istio").expect("an install"), "{cluster}");
        assert_eq!(of_cluster[crds]["outcome"], "ok", "{:?}", of_cluster[crds]);
        let planned = r.engine_plan["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|p| p["index"] == of_cluster[crds]["index"])
            .expect("the planned step");
        assert_eq!(planned["version"], version);
        let urls = planned["files"].as_array().expect("files");
        assert!(urls.iter().all(|f| f["url"].as_str().is_some_and(|u| {
            u.contains(&format!("/gateway-api/{version}/config/crd/experimental/"))
        }) && f["sha256"].as_str().is_some_and(|d| d.len() == 64)));
    }
    // The gateway log was read from the scenario's own gateway.
    let request = r.engine_plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|l| l["step"] == "send_request" && l["scenario"] == "gateway-api-http")
        .expect("a request step");
    assert_eq!(
        request["gateway"]["selector"],
        "gateway.networking.k8s.io/gateway-name=httpbin-egress-gateway"
    );
    assert_eq!(request["gateway"]["namespace"], "gateway-api-http");
}

#[test]
fn a_route_that_never_attaches_fails_on_its_status_not_on_a_bare_status_code() {
    let r = run(
        &["gateway-api-tls-passthrough"],
        "1.30.3",
        &[Fault::RouteNeverAttached],
        "never-attached",
    );
    let c = r.case("gateway-api-tls-passthrough", "1.30.3");
    assert_eq!(
        c.status,
        Status::Fail,
        "a verdict, not an error: {:?}",
        c.message
    );
    let message = c.message.clone().unwrap_or_default();
    assert!(
        message.starts_with(case::STATUS_CHECK)
            && message.contains("attachedRoutes.tls: expected equals \"1\", observed \"0\""),
        "{message}"
    );
    let status = &c.requests[0];
    assert!(!status.passed);
    assert!(
        status
            .verdicts
            .iter()
            .any(|v| v.evidence.contains("NotAllowedByListeners")),
        "the reason is kept: {:?}",
        status.verdicts
    );
    assert!(
        c.evidence.iter().any(|e| e.ends_with("status.json")),
        "{:?}",
        c.evidence
    );
    assert!(r.sim.is_empty());
}

#[test]
fn a_crd_swap_that_cannot_delete_the_release_s_crds_is_an_error_not_a_verdict() {
    let r = run(
        &["istio-io-17394-tlsroute-crds-before-v1-5"],
        "1.30.4",
        &[Fault::CrdStuckTerminating],
        "crd-stuck",
    );
    let c = r.case("istio-io-17394-tlsroute-crds-before-v1-5", "1.30.4");
    assert_error_at(&c, "swap_gateway_api_crds");
    let message = c.message.clone().unwrap_or_default();
    assert!(
        message.contains("still present")
            && message.contains("tlsroutes.gateway.networking.k8s.io"),
        "{message}"
    );
    // No request ran on a cluster halfway between two CRD releases.
    assert!(
        c.requests.iter().all(|q| q.attempts == 0),
        "{:?}",
        c.requests
    );
    assert!(r.sim.is_empty(), "left {}", r.sim.snapshot());
}

#[test]
fn a_crd_file_that_is_not_the_pinned_one_is_an_error_of_its_step() {
    let r = run(
        &["gateway-api-http"],
        "1.30.3",
        &[Fault::CrdDigestMismatch],
        "crd-digest",
    );
    let c = r.case("gateway-api-http", "1.30.3");
    assert_error_at(&c, "install_gateway_api_crds");
    assert!(
        c.message
            .clone()
            .unwrap_or_default()
            .contains("does not match the pinned"),
        "{:?}",
        c.message
    );
    assert!(r.sim.is_empty(), "left {}", r.sim.snapshot());
}

#[test]
fn the_regression_pack_fails_where_its_bug_is_and_passes_where_it_is_fixed() {
    use Status::{KnownFailure as Bug, Pass};
    let r = run(
        &["regression"],
        "1.22.1,1.23.0,1.24.2,1.24.3,1.29.2,1.29.3,1.30.4",
        &[],
        "regressions",
    );
    // (scenario, Istio, status); a version outside a scenario's range has no case.
    let expected = [
        ("istio-51466-same-host-tls-and-https", "1.22.1", Bug),
        ("istio-51466-same-host-tls-and-https", "1.30.4", Bug),
        ("istio-51747-second-address-ignored", "1.22.1", Bug),
        ("istio-51747-second-address-ignored", "1.23.0", Pass),
        ("istio-51747-second-address-ignored", "1.24.3", Pass),
        ("istio-52944-single-ip-and-cidr", "1.23.0", Bug),
        ("istio-52944-single-ip-and-cidr", "1.24.3", Pass),
        ("istio-54990-overlapping-addresses", "1.24.2", Bug),
        ("istio-54990-overlapping-addresses", "1.24.3", Pass),
        ("istio-59949-tlsroute-crds-v1-4-1", "1.29.2", Bug),
        ("istio-59949-tlsroute-crds-v1-4-1", "1.29.3", Pass),
        ("istio-io-17394-tlsroute-crds-before-v1-5", "1.30.4", Bug),
        // The advisory's sidecar fail-open: 1.29.0-1.29.6 and 1.30.0-1.30.3.
        ("ghsa-qm8v-g4f9-qhjx-backend-tls-policy", "1.29.2", Bug),
        ("ghsa-qm8v-g4f9-qhjx-backend-tls-policy", "1.30.4", Pass),
    ];
    for (scenario, istio, status) in expected {
        let c = r.case(scenario, istio);
        assert_eq!(c.status, status, "{scenario} on {istio}: {:?}", c.message);
    }
    let outside: Vec<&ScenarioRun> = r
        .runs
        .iter()
        .filter(|run| run.scenario == "istio-52944-single-ip-and-cidr" && run.istio == "1.22.1")
        .collect();
    assert!(
        !outside.is_empty() && outside.iter().all(|run| run.skipped.is_some()),
        "outside its range, #52944 is skipped, not judged (#51747 would hide it)"
    );
    // #59949 is seen in the status before any request: the CRD is ignored.
    let c = r.case("istio-59949-tlsroute-crds-v1-4-1", "1.29.2");
    let status = &c.requests[0];
    assert!(
        status.verdicts.iter().any(|v| v.subject
            == "status.Gateway/httpbin-egress-gateway.attachedRoutes.tls"
            && v.observed.as_deref() == Some("0")),
        "{status:?}"
    );
    // No cluster of their own: the CRD release the scenario asks for is swapped in on
    // its version's cluster after the others, and the release's put back after it,
    // istiod restarted each time (a verdict of Bug above needs the restart: istiod
    // reads a CRD once).
    let plan = r.engine_plan["steps"].as_array().expect("steps");
    assert!(
        !plan
            .iter()
            .any(|p| p["cluster"].as_str().is_some_and(|c| c.contains("gwapi")))
    );
    let swaps: Vec<String> = plan
        .iter()
        .filter(|p| {
            p["step"] == "swap_gateway_api_crds" && p["cluster"] == "egc-1-29-2-registry-only"
        })
        .map(|p| {
            format!(
                "{}->{}",
                p["from"].as_str().unwrap_or(""),
                p["to"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(swaps, ["v1.4.0->v1.4.1", "v1.4.1->v1.4.0"]);
    let restarts: Vec<(String, String)> = r
        .sim
        .world()
        .restarts
        .iter()
        .filter(|(cluster, _)| cluster == "egc-1-29-2-registry-only")
        .cloned()
        .collect();
    assert_eq!(restarts.len(), 2, "{restarts:?}");
    assert!(restarts.iter().all(|(_, d)| d == "istio-system/istiod"));
    assert!(r.sim.is_empty(), "left behind: {}", r.sim.snapshot());
}

#[test]
fn ambient_scenarios_run_beside_sidecars_and_read_the_waypoint_and_ztunnel() {
    let r = run(&["ambient", "gateway-http"], "1.30.3", &[], "ambient");
    let beside = r.case("gateway-http", "1.30.3");
    assert_eq!(beside.status, Status::Pass, "{:?}", beside.message);
    for s in ["ambient-waypoint-authz", "ambient-waypoint-tls-origination"] {
        let c = r.case(s, "1.30.3");
        assert_eq!(c.status, Status::Pass, "{s}: {:?}", c.message);
        let judged: Vec<&str> = c
            .requests
            .iter()
            .flat_map(|q| q.verdicts.iter())
            .filter(|v| v.outcome == egress_harness::report::results::Outcome::Pass)
            .map(|v| v.subject.as_str())
            .collect();
        assert!(
            judged.contains(&"ztunnel_log.dst.workload"),
            "{s}: {judged:?}"
        );
        assert!(
            judged.contains(&"gateway_log.response_code"),
            "{s}: {judged:?}"
        );
    }
    let plan = r.engine_plan["steps"].as_array().expect("steps");
    let of = |kind: &'static str| plan.iter().filter(move |p| p["step"] == kind);
    // One cluster: ambient's data plane (its distroless images) beside the sidecars
    // and the egress gateway.
    assert_eq!(of("create_cluster").count(), 1);
    assert!(of("create_cluster").all(|p| p["name"] == "egc-1-30-3-registry-only-ambient"));
    assert!(of("load_images").any(|p| {
        p["images"].as_array().is_some_and(|i| {
            i.iter()
                .any(|x| x == "docker.io/istio/ztunnel:1.30.3-distroless")
        })
    }));
    assert!(of("wait_ready").any(|p| p["name"] == "istio-egressgateway"));
    let label = |ns: &str| {
        of("create_namespace")
            .find(|p| p["name"] == ns)
            .map(|p| p["labels"][0].clone())
    };
    for ns in ["ambient-waypoint-authz", "ambient-waypoint-tls-origination"] {
        assert_eq!(
            label(ns),
            Some(serde_json::json!(["istio.io/dataplane-mode", "ambient"]))
        );
    }
    assert_eq!(
        label("gateway-http"),
        Some(serde_json::json!(["istio-injection", "enabled"]))
    );
    assert!(
        of("wait_ready")
            .any(|p| p["name"] == "waypoint" && p["namespace"] == "ambient-waypoint-authz")
    );
    assert!(
        of("send_request")
            .filter(|p| p["scenario"] != "gateway-http")
            .all(|p| p["ztunnel"]["selector"] == "app=ztunnel"
                && p["gateway"]["selector"] == "gateway.networking.k8s.io/gateway-name=waypoint")
    );
    // The POST is refused by the waypoint, an L7 effect ztunnel cannot have.
    let post = r.case("ambient-waypoint-authz", "1.30.3");
    let denied = post
        .requests
        .iter()
        .find(|q| q.name == "post-denied")
        .expect("post-denied");
    assert!(denied.passed, "{denied:?}");
    assert!(r.sim.is_empty(), "left behind: {}", r.sim.snapshot());
}

#[test]
fn requests_that_were_never_judged_are_errors_not_failures() {
    for fault in [
        Fault::ExecLost,
        Fault::ExecTimeout,
        Fault::GatewayLogsUnreadable,
    ] {
        let r = run(&["gateway-http"], "1.22.1", &[fault], fault.name());
        let c = only_case(&r, "gateway-http");
        assert_error_at(&c, "send_request");
        assert!(
            c.message
                .clone()
                .unwrap_or_default()
                .contains("inconclusive"),
            "{}: {:?}",
            fault.name(),
            c.message
        );
        assert!(r.sim.is_empty());
    }
}

#[test]
fn an_unreadable_log_never_passes_an_expectation_on_it() {
    // no-egress-gateway wants `gateway_log: absent`: with a replica unreadable that
    // cannot be known, so it must not pass.
    let r = run(
        &["no-egress-gateway", "no-sidecar-bypasses-mesh"],
        "1.22.1",
        &[Fault::GatewayLogsUnreadable],
        "unreadable",
    );
    assert_eq!(only_case(&r, "no-egress-gateway").status, Status::Error);
    assert_eq!(
        only_case(&r, "no-sidecar-bypasses-mesh").status,
        Status::Error
    );
}

#[test]
fn transient_faults_are_survived() {
    for fault in [
        Fault::WatchGone410,
        Fault::Apiserver503,
        Fault::LogLineLate,
        Fault::TraceSampled,
    ] {
        // A late line costs each attempt its delay: give the request the time.
        let mut opts = options("1.22.1", fault.name());
        opts.plan.timeouts.request = Duration::from_secs(30);
        let r = run_with(
            &["gateway-http"],
            &[fault],
            opts,
            |_| {},
            CancellationToken::new(),
        );
        let c = only_case(&r, "gateway-http");
        assert_eq!(c.status, Status::Pass, "{}: {:?}", fault.name(), c.message);
    }
}

#[test]
fn k1_kind_load_on_the_containerd_image_store_lets_the_nodes_pull() {
    let r = run(
        &["gateway-http"],
        "1.22.1",
        &[Fault::ContainerdImageStore],
        "containerd-store",
    );
    let c = only_case(&r, "gateway-http");
    assert_eq!(c.status, Status::Pass, "{:?}", c.message);
    let load = r
        .steps()
        .into_iter()
        .find(|l| l["step"] == "load_images")
        .expect("a load_images step");
    assert_eq!(load["outcome"], "skipped", "{load}");
    assert!(
        load.to_string()
            .contains("the nodes pull the images themselves"),
        "{load}"
    );
}

#[test]
fn a_line_that_never_appears_is_a_failure_of_the_expectation() {
    let r = run(&["gateway-http"], "1.22.1", &[Fault::LogLineNever], "never");
    let c = only_case(&r, "gateway-http");
    assert_eq!(c.status, Status::Fail, "{:?}", c.message);
    assert!(c.message.unwrap_or_default().contains("gateway_log"));
    assert!(
        !c.evidence.is_empty(),
        "a failure keeps evidence: {:?}",
        c.evidence
    );
}

#[test]
fn config_that_lingers_after_cleanup_is_an_error_of_the_cleanup() {
    let r = run(
        &["gateway-http"],
        "1.22.1",
        &[Fault::ConfigDumpKeepsHost],
        "keeps-host",
    );
    let c = only_case(&r, "gateway-http");
    assert_eq!(c.status, Status::Error, "{:?}", c.message);
    let message = c.message.unwrap_or_default();
    assert!(
        message.contains("cleaned up") && message.contains("await_clean_config"),
        "{message}"
    );
    assert!(
        r.sim.is_empty(),
        "the cluster still goes: {}",
        r.sim.snapshot()
    );
}

#[test]
fn a_cancelled_run_cleans_up_and_marks_its_cases_interrupted() {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let r = run_with(
        &[
            "gateway-http",
            "gateway-tls-origination",
            "no-egress-gateway",
        ],
        &[Fault::LogLineLate],
        options("1.22.1", "cancelled"),
        |sim| sim.on_first_request(move || trigger.cancel()),
        cancel,
    );
    assert!(r.end.interrupted);
    assert!(r.sim.is_empty(), "left: {}", r.sim.snapshot());
    assert!(r.runs.iter().any(|run| run.interrupted));
    for run in &r.runs {
        assert_ne!(
            r.case(&run.scenario, "1.22.1").status,
            Status::Pass,
            "{}: an interrupted run passes nothing it did not finish",
            run.scenario
        );
    }
}

#[test]
fn clusters_are_deleted_after_their_last_scenario_and_limited_in_number() {
    let mut opts = options("1.22.1,1.30.3", "lifecycle");
    opts.plan.parallel_clusters = 1;
    let r = run_with(
        &["gateway-http", "no-egress-gateway"],
        &[],
        opts,
        |_| {},
        CancellationToken::new(),
    );
    let steps = r.steps();
    // With one cluster at a time, the second is created after the first is deleted.
    let started = |kind: &str, cluster: &str| {
        steps
            .iter()
            .find(|l| l["step"] == kind && l["cluster"] == cluster)
            .and_then(|l| l["started"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("{kind} on {cluster}"))
    };
    let first = "egc-1-22-1-registry-only";
    let second = "egc-1-30-3-registry-only";
    assert!(started("delete_cluster", first) <= started("create_cluster", second));
    assert!(r.sim.is_empty());
}

#[test]
fn a_cluster_this_run_did_not_create_is_never_deleted() {
    let name = "egc-1-22-1-registry-only";
    let kept = |sim: &Sim| sim.world().clusters.contains_key(name);
    let precreate = |sim: &Sim| {
        sim.world()
            .clusters
            .insert(name.into(), egress_sim::Cluster::default());
    };
    // Without --reuse: refused, and the cluster stays.
    let r = run_with(
        &["gateway-http"],
        &[],
        options("1.22.1", "foreign"),
        precreate,
        CancellationToken::new(),
    );
    let c = only_case(&r, "gateway-http");
    assert_error_at(&c, "create_cluster");
    assert!(c.message.unwrap_or_default().contains("--reuse"));
    assert!(kept(&r.sim));

    // With --reuse and --keep-on-failure semantics aside: used, then left in place.
    let mut opts = options("1.22.1", "reused");
    opts.reuse = true;
    opts.plan.keep = Keep::Never;
    let r = run_with(
        &["gateway-http"],
        &[],
        opts,
        precreate,
        CancellationToken::new(),
    );
    assert!(kept(&r.sim), "a reused cluster is not ours to delete");
    let delete = r
        .steps()
        .into_iter()
        .find(|l| l["step"] == "delete_cluster")
        .expect("the delete step is logged");
    assert_eq!(delete["outcome"], "skipped");
}

#[test]
fn evidence_and_recordings_are_written_and_marked_simulated() {
    let mut opts = options("1.22.1", "evidence");
    opts.evidence = EvidenceMode::Always;
    let r = run_with(
        &["gateway-http"],
        &[],
        opts,
        |_| {},
        CancellationToken::new(),
    );
    let c = only_case(&r, "gateway-http");
    assert_eq!(c.status, Status::Pass);
    let files: Vec<&str> = c.evidence.iter().map(String::as_str).collect();
    for want in [
        "manifests/client/curl.yaml",
        "config_dump/",
        "logs/",
        "events/",
        "recordings/",
    ] {
        assert!(
            files.iter().any(|f| f.contains(want)),
            "{want} in {files:?}"
        );
    }
    let recording = r.dir.join("recordings").join("gateway-http@1.22.1.json");
    let text = std::fs::read_to_string(&recording).expect("recording");
    assert!(
        text.contains("SIMULATED"),
        "{}",
        Path::new(&recording).display()
    );
}

#[test]
fn an_istioctl_of_another_release_is_refused() {
    let mut opts = options("1.22.1", "istioctl");
    opts.plan.istioctl = Some("/opt/istio-1.30.3/bin/istioctl".into());
    let r = run_with(
        &["gateway-http"],
        &[],
        opts,
        |_| {},
        CancellationToken::new(),
    );
    let c = only_case(&r, "gateway-http");
    assert_error_at(&c, "use_istioctl");
    assert!(
        c.message
            .clone()
            .unwrap_or_default()
            .contains("is istioctl 1.30.3"),
        "{:?}",
        c.message
    );
}

#[test]
fn an_existing_cluster_is_judged_on_what_it_runs_and_left_as_it_was_found() {
    // The user's cluster runs 1.24.3 with the article's registry-only mesh.
    let names = ["gateway-mtls-origination", "external-name-service"];
    let scenarios = scenarios(&names);
    let sim = Sim::new(&ws(), &scenarios, Faults::of(&[])).expect("sim");
    let mesh = "accessLogFile: /dev/stdout\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n";
    sim.add_existing_cluster(semver::Version::new(1, 24, 3), "registry-only", mesh);
    let seams = sim.seams();

    let mut options = options("installed", "existing");
    options.plan.cluster = ClusterMode::Existing;
    let found = runtime()
        .block_on(egress_harness::engine::existing::discover(
            &*seams.kube,
            Duration::from_secs(5),
        ))
        .expect("discovered");
    assert_eq!(found.istiod_image, "docker.io/istio/pilot:1.24.3");
    let mut other = options.plan.clone();
    other.istio = IstioRelease::parse_list("1.30.3").expect("v");
    let refused = egress_harness::engine::existing::resolve(&mut other, &found)
        .expect_err("another release than the cluster's");
    assert!(refused.contains("runs Istio 1.24.3"), "{refused}");
    egress_harness::engine::existing::resolve(&mut options.plan, &found).expect("resolved");

    let dir = options.run_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let engine = Engine::new(
        ws(),
        scenarios.clone(),
        options,
        seams,
        CancellationToken::new(),
    )
    .expect("engine");
    let r = execute(&engine, sim, dir, scenarios);
    let judged = r.case("gateway-mtls-origination", "1.24.3");
    assert!(
        green(judged.status),
        "{:?} {}",
        judged.status,
        judged.message.unwrap_or_default()
    );
    // Its allow-any profile is had in its namespace (a Sidecar), on the user's mesh.
    let allow_any = r.case("external-name-service", "1.24.3");
    assert!(
        green(allow_any.status),
        "{:?} {}",
        allow_any.status,
        allow_any.message.unwrap_or_default()
    );
    assert_eq!(
        allow_any.environment.install,
        "allow-any (in its namespace, on a registry-only mesh)"
    );
    // Nothing of the run is left in the user's cluster; the user's Secret is untouched.
    let world = r.sim.world();
    let cluster = world
        .clusters
        .get(egress_sim::EXISTING_CLUSTER)
        .expect("the user's cluster is still there");
    let namespaces: Vec<&String> = cluster.namespaces.keys().collect();
    assert_eq!(namespaces, vec!["istio-system"], "scenario namespaces went");
    let secrets: Vec<&String> = cluster.namespaces["istio-system"]
        .objects
        .keys()
        .map(|(_, name)| name)
        .collect();
    assert_eq!(secrets, vec![egress_sim::USERS_SECRET]);
    drop(world);
    assert!(r.sim.is_empty(), "{}", r.sim.snapshot());
    assert!(r.end.problems.is_empty(), "{:?}", r.end.problems);
}

/// The scenarios `names` of another workspace (a copy with something changed), run
/// on the simulated cluster.
fn run_in(ws: Workspace, names: &[&str], istio: &str, run_id: &str) -> SimRun {
    let terms: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let scenarios: Vec<Scenario> = Suite::load(&ws)
        .expect("suite")
        .select(&terms)
        .expect("select")
        .into_iter()
        .cloned()
        .collect();
    let sim = Sim::new(&ws, &scenarios, Faults::of(&[])).expect("sim");
    let options = options(istio, run_id);
    let dir = options.run_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let engine = Engine::new(
        ws,
        scenarios.clone(),
        options,
        sim.seams(),
        CancellationToken::new(),
    )
    .expect("engine");
    execute(&engine, sim, dir, scenarios)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

#[test]
fn the_namespace_profiles_are_what_makes_those_scenarios_pass_on_a_shared_cluster() {
    // The same two scenarios on a workspace whose namespace profiles do nothing: the
    // simulated proxies then act as the registry-only mesh says, and both fail.
    let root = std::env::temp_dir().join(format!("egress-no-overlays-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for dir in ["manifests", "scenarios", "tests/sim/recordings"] {
        copy_tree(&ws().root.join(dir), &root.join(dir));
    }
    let manifests = root.join("manifests");
    let sidecar = manifests.join("namespace-profiles/allow-any.yaml");
    let text = std::fs::read_to_string(&sidecar).expect("sidecar");
    std::fs::write(
        &sidecar,
        text.replace("mode: ALLOW_ANY", "mode: REGISTRY_ONLY"),
    )
    .expect("write");
    let client = manifests.join("client/curl-in-mesh-headers.yaml");
    let text = std::fs::read_to_string(&client).expect("client");
    std::fs::write(&client, text.replace("IN_MESH", "ALWAYS")).expect("write");
    let broken = Workspace::at(&root);

    let names = ["external-name-service", "metadata-headers-in-mesh"];
    let r = run_in(broken, &names, "1.22.1", "no-overlays");
    assert_eq!(
        r.engine_plan["slots"].as_array().map(Vec::len),
        Some(1),
        "one shared cluster"
    );
    for name in names {
        let c = r.case(name, "1.22.1");
        assert_eq!(c.status, Status::Fail, "{name}: {:?}", c.message);
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn tls_routes_before_1_30_are_read_only_with_the_alpha_gateway_api_flag() {
    // The shipped workspace installs 1.29.3 with the overlay that sets the flag.
    let names = ["gateway-api-tls-passthrough"];
    let r = run(&names, "1.29.3", &[], "alpha-flag");
    assert_eq!(
        r.case("gateway-api-tls-passthrough", "1.29.3").status,
        Status::Pass
    );
    let install = r.engine_plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|p| p["step"] == "install_istio")
        .expect("install_istio")
        .clone();
    assert!(
        install["argv"]
            .to_string()
            .contains("overlays/alpha-gateway-api.yaml"),
        "{install}"
    );

    // The same run on a workspace whose overlay leaves the flag off: Istio does not
    // read the TLSRoutes, nobody writes their status, and attachedRoutes stays 0.
    let root = std::env::temp_dir().join(format!("egress-no-alpha-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for dir in ["manifests", "scenarios", "tests/sim/recordings"] {
        copy_tree(&ws().root.join(dir), &root.join(dir));
    }
    let overlay = root.join("manifests/install/overlays/alpha-gateway-api.yaml");
    let text = std::fs::read_to_string(&overlay).expect("overlay");
    std::fs::write(
        &overlay,
        text.replace(
            "PILOT_ENABLE_ALPHA_GATEWAY_API: \"true\"",
            "PILOT_ENABLE_ALPHA_GATEWAY_API: \"false\"",
        ),
    )
    .expect("write");
    let r = run_in(Workspace::at(&root), &names, "1.29.3", "no-alpha");
    let c = r.case("gateway-api-tls-passthrough", "1.29.3");
    assert_eq!(c.status, Status::Fail, "{:?}", c.message);
    assert!(
        c.requests[0].verdicts.iter().any(
            |v| v.subject.ends_with("attachedRoutes.tls") && v.observed.as_deref() == Some("0")
        ),
        "{:?}",
        c.requests[0]
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_gateway_fails_closed_on_a_backend_tls_policy_without_its_ca_on_every_release() {
    // GHSA-qm8v-g4f9-qhjx is the sidecar's; the gateway blocks on affected releases too.
    let r = run(
        &["fail-closed-backend-tls-policy-at-gateway"],
        "1.29.2,1.30.4",
        &[],
        "bfp-gateway",
    );
    for istio in ["1.29.2", "1.30.4"] {
        let c = r.case("fail-closed-backend-tls-policy-at-gateway", istio);
        assert_eq!(c.status, Status::Pass, "{istio}: {:?}", c.message);
    }
}

#[test]
fn a_scenario_without_a_recorded_answer_fails_at_once_saying_where_to_put_one() {
    // A scenario of the user's, under a root of its own, that nothing has answered yet.
    let root = std::env::temp_dir().join(format!("egress-no-answer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for dir in ["manifests", "scenarios", "tests/sim/recordings"] {
        copy_tree(&ws().root.join(dir), &root.join(dir));
    }
    let text = std::fs::read_to_string(root.join("scenarios/gateway-http.yaml")).expect("scenario");
    std::fs::write(
        root.join("scenarios/no-answer.yaml"),
        text.replace("name: gateway-http", "name: no-answer"),
    )
    .expect("write");
    let started = std::time::Instant::now();
    let r = run_in(Workspace::at(&root), &["no-answer"], "1.30.3", "no-answer");
    let elapsed = started.elapsed();
    let c = r.case("no-answer", "1.30.3");
    assert_eq!(c.status, Status::Error, "{:?}", c.message);
    let message = c.message.unwrap_or_default();
    assert!(
        message.contains("no recorded answer for no-answer")
            && message.contains(&root.join("scenarios/recordings").display().to_string()),
        "{message}"
    );
    // Known at the first attempt: not the request deadline (8 s here, 60 s by default).
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    let requests = &c.requests;
    assert!(
        requests.iter().all(|q| q.attempts <= 1),
        "{:?}",
        requests.iter().map(|q| q.attempts).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// The scenario's planned steps that ran, in order, each as the plan prints it.
fn ran_steps(r: &SimRun, scenario: &str) -> Vec<serde_json::Value> {
    let ok: Vec<u64> = r
        .steps()
        .iter()
        .filter(|s| s["outcome"].as_str() == Some("ok"))
        .filter_map(|s| s["index"].as_u64())
        .collect();
    r.engine_plan["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["scenario"].as_str() == Some(scenario))
        .filter(|s| s["index"].as_u64().is_some_and(|i| ok.contains(&i)))
        .cloned()
        .collect()
}

#[test]
fn a_scenario_changes_its_configuration_between_requests_and_each_request_sees_its_own() {
    let name = "sidecar-tls-origination-switched-on";
    let r = run(&[name], "1.30.3", &[], "before-after");
    let c = r.case(name, "1.30.3");
    assert_eq!(c.status, Status::Pass, "{:?}", c.message);
    // The route is applied after the first request and deleted before the third, as
    // steps between them, not with the scenario's manifests or its cleanup.
    let order: Vec<String> = ran_steps(&r, name)
        .iter()
        .map(|s| {
            let file = s["file"].as_str().unwrap_or_default();
            let what = s["request"].as_str().unwrap_or(file);
            let what = what.rsplit('/').next().unwrap_or(what);
            format!("{} {what}", s["step"].as_str().unwrap_or_default())
        })
        .filter(|s| s.starts_with("send_request") || s.contains("sidecar-to-443"))
        .collect();
    assert_eq!(
        order,
        vec![
            "send_request plain-before",
            "apply_manifest sidecar-to-443.yaml",
            "send_request tls-originated-after",
            "patch_object sidecar-to-443.yaml",
            "send_request plain-again-with-the-route-to-80",
            "delete_objects sidecar-to-443.yaml",
            "send_request plain-again-without-the-route",
            // Cleanup lists every file once; this one is gone already.
            "delete_objects sidecar-to-443.yaml",
        ],
    );

    // Without its `before`, the second request meets the first one's configuration and
    // fails: the steps between requests are what its verdict rests on.
    let root = std::env::temp_dir().join(format!("egress-no-before-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for dir in ["manifests", "scenarios", "tests/sim/recordings"] {
        copy_tree(&ws().root.join(dir), &root.join(dir));
    }
    let file = root.join(format!("scenarios/{name}.yaml"));
    let text = std::fs::read_to_string(&file).expect("scenario");
    // Every `before` block left out, up to its request's url.
    let mut skipping = false;
    let without: String = text
        .lines()
        .filter(|line| {
            if *line == "    before:" {
                skipping = true;
            } else if line.starts_with("    url:") {
                skipping = false;
            }
            !skipping
        })
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(without, text);
    std::fs::write(&file, without).expect("write");
    let r = run_in(Workspace::at(&root), &[name], "1.30.3", "no-before");
    let c = r.case(name, "1.30.3");
    assert_eq!(c.status, Status::Fail, "{:?}", c.message);
    let message = c.message.unwrap_or_default();
    assert!(message.contains("tls-originated-after"), "{message}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn each_client_sends_its_own_requests_and_is_judged_as_its_identity() {
    let name = "gateway-authz-by-identity";
    let r = run(&[name], "1.30.3", &[], "two-clients");
    let c = r.case(name, "1.30.3");
    assert_eq!(c.status, Status::Pass, "{:?}", c.message);
    let ran = ran_steps(&r, name);
    let sent: Vec<(&str, &str, &str)> = ran
        .iter()
        .filter(|s| s["step"].as_str() == Some("send_request"))
        .map(|s| {
            (
                s["request"].as_str().unwrap_or_default(),
                s["namespace"].as_str().unwrap_or_default(),
                s["pod"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let elsewhere = format!("{name}-elsewhere");
    assert_eq!(
        sent,
        vec![
            ("allowed-identity", name, "curl"),
            ("other-identity-denied", name, "curl-other"),
            (
                "other-namespace-denied",
                elsewhere.as_str(),
                "curl-elsewhere"
            ),
        ]
    );
    let waited: Vec<&str> = ran
        .iter()
        .filter(|s| s["step"].as_str() == Some("wait_ready"))
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(waited, vec!["curl", "curl-other", "curl-elsewhere"]);
    // The client's own namespace is made with the scenario and removed with it.
    let namespaces: Vec<(&str, &str)> = ran
        .iter()
        .filter_map(|s| {
            let step = s["step"].as_str()?;
            (step == "create_namespace" || step == "delete_namespace")
                .then(|| (step, s["name"].as_str().unwrap_or_default()))
        })
        .collect();
    assert!(
        namespaces.contains(&("create_namespace", elsewhere.as_str())),
        "{namespaces:?}"
    );
    assert!(
        namespaces.contains(&("delete_namespace", elsewhere.as_str())),
        "{namespaces:?}"
    );
    assert!(r.sim.is_empty(), "left behind: {}", r.sim.snapshot());
}

#[test]
fn a_cluster_made_by_someone_else_meanwhile_is_neither_deleted_nor_retried() {
    let r = run(
        &["gateway-http"],
        "1.30.3",
        &[Fault::ClusterCreatedMeanwhile],
        "created-meanwhile",
    );
    let c = r.case("gateway-http", "1.30.3");
    assert_eq!(c.status, Status::Error, "{:?}", c.message);
    let message = c.message.unwrap_or_default();
    assert!(message.contains("created by someone else"), "{message}");
    // The other run's cluster is still there, and kind was asked to delete nothing.
    let snapshot = r.sim.snapshot().to_string();
    assert!(snapshot.contains("egc-1-30-3-registry-only"), "{snapshot}");
    let deletes = r
        .steps()
        .iter()
        .filter(|s| s["step"].as_str() == Some("delete_cluster") && s["outcome"] == "ok")
        .count();
    assert_eq!(deletes, 0);
    // The mark this run wrote before kind refused is gone: the cluster is not ours.
    let cache = std::env::temp_dir().join("egress-engine-cache-created-meanwhile");
    assert_eq!(
        egress_harness::plan::owner_pid(&cache, "egc-1-30-3-registry-only"),
        None
    );
}

#[test]
fn an_upstream_name_held_by_someone_else_is_refused_and_left_alone() {
    // Another process's container, under the very name and alias this run would use.
    let theirs = "egc-upstream-held-upstream";
    let r = run_with(
        &["gateway-http"],
        &[],
        options("1.30.3", "held-upstream"),
        |sim| {
            sim.world()
                .containers
                .insert(theirs.into(), vec!["httpbin.org".into()]);
        },
        CancellationToken::new(),
    );
    let c = r.case("gateway-http", "1.30.3");
    assert_eq!(c.status, Status::Error, "{:?}", c.message);
    assert!(
        c.message
            .unwrap_or_default()
            .contains("already answers as httpbin.org"),
        "refused for the name"
    );
    assert!(
        r.sim.world().containers.contains_key(theirs),
        "their container was removed: {}",
        r.sim.snapshot()
    );
}

#[test]
fn a_burst_sends_its_count_per_attempt_and_is_judged_on_its_shares() {
    let name = "sidecar-circuit-breaker-external";
    let r = run(&[name], "1.30.3", &[], "burst");
    let c = r.case(name, "1.30.3");
    assert_eq!(c.status, Status::Pass, "{:?}", c.message);
    // Three consistent attempts of 20 sends each.
    assert_eq!(r.sim.world().requests, 60);
    let shares: Vec<String> = c.requests[0]
        .verdicts
        .iter()
        .filter(|v| v.subject.starts_with("share."))
        .map(|v| format!("{} {}", v.subject, v.observed.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        shares,
        vec!["share.200 17 of 20 (85.0 %)", "share.503 3 of 20 (15.0 %)"]
    );
}

#[test]
fn a_counter_that_does_not_grow_fails_its_stats_expectation() {
    let name = "gateway-wildcard-passthrough";
    let r = run(&[name], "1.30.3", &[], "stats-grow");
    let c = r.case(name, "1.30.3");
    assert_eq!(c.status, Status::Pass, "{:?}", c.message);
    // No line at the gateway: the connection never reached it, and its counter stays.
    let r = run(&[name], "1.30.3", &[Fault::LogLineNever], "stats-still");
    let c = r.case(name, "1.30.3");
    assert_eq!(c.status, Status::Fail, "{:?}", c.message);
    let stats: Vec<(String, Option<String>)> = c.requests[0]
        .verdicts
        .iter()
        .filter(|v| v.subject.starts_with("stats.gateway:"))
        .map(|v| (format!("{:?}", v.outcome), v.observed.clone()))
        .collect();
    assert_eq!(
        stats,
        vec![("Fail".to_owned(), Some("grew by 0".to_owned()))]
    );
}

#[test]
fn no_private_key_is_left_in_the_report_folder() {
    let r = run(&["gateway-mtls-origination"], "1.30.3", &[], "no-keys");
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if std::fs::read_to_string(&path).is_ok_and(|t| t.contains("PRIVATE KEY")) {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&r.dir, &mut found);
    assert!(
        r.dir.join("upstream/ca.crt").is_file(),
        "the CA is kept for the user"
    );
    assert!(found.is_empty(), "private keys in the report: {found:?}");
}

/// `-v` prints each command in full as it starts, those outside the plan's steps too
/// (image checks, kind's own listing) and each attempt's curl as the kubectl line that
/// runs it. Stderr is the test's: the run happens in a child of this test binary.
#[test]
fn verbose_prints_every_command_the_run_starts() {
    const CHILD: &str = "EGRESS_TEST_VERBOSE_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let mut options = options("1.22.1", "verbose");
        options.verbose = true;
        let r = run_with(
            &["gateway-http"],
            &[],
            options,
            |_| {},
            CancellationToken::new(),
        );
        assert_eq!(only_case(&r, "gateway-http").status, Status::Pass);
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "verbose_prints_every_command_the_run_starts",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("the child run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let commands: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("egress [simulated]: $ "))
        .collect();
    for wanted in [
        "/kind create cluster --name egc-1-22-1-registry-only ",
        // Not steps of the plan: kind's listing before create, Docker's image check.
        "/kind get clusters  # listing kind clusters",
        "docker image inspect docker.io/istio/proxyv2:1.22.1  # looking for",
    ] {
        assert!(
            commands.iter().any(|c| c.contains(wanted)),
            "{wanted} in {err}"
        );
    }
    let curl = commands
        .iter()
        .find(|c| c.starts_with("kubectl exec -n "))
        .unwrap_or_else(|| panic!("no request's kubectl line in {err}"));
    assert!(curl.contains(" -c curl -- curl "), "{curl}");
    assert!(curl.ends_with("  # request http-headers"), "{curl}");
}
