//! A repro's plan, its evidence archive from a run over recordings, and the small
//! decisions in between.

use std::io::Read;

use super::*;
use crate::recording::Recording;
use crate::report::results::Source;
use crate::suite::Suite;

fn ws() -> Workspace {
    Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn scenario(name: &str) -> Scenario {
    Suite::load(&ws())
        .expect("suite")
        .scenarios
        .into_iter()
        .find(|s| s.name() == name)
        .expect(name)
}

fn host_options() -> PlanOptions {
    PlanOptions {
        kind: Some("/usr/bin/kind".into()),
        cache_dir: "/cache".into(),
        ..PlanOptions::for_this_host()
    }
}

#[test]
fn versions_are_a_list_or_a_range() {
    assert_eq!(
        Versions::parse("1.22.1,1.24.3").expect("list"),
        Versions::List(IstioRelease::parse_list("1.22.1,1.24.3").expect("list"))
    );
    assert_eq!(
        Versions::parse("1.22.0..1.24.3").expect("range"),
        Versions::Range(
            Version::parse("1.22.0").expect("v"),
            Version::parse("1.24.3").expect("v")
        )
    );
    assert!(Versions::parse("1.24.3..1.22.0").is_err());
}

#[test]
fn the_plan_of_a_repro_keeps_clusters_and_the_scenarios_objects() {
    let s = scenario("gateway-http");
    let istio = IstioRelease::parse_list("1.22.1,1.24.3").expect("list");
    let kept = plan_options(host_options(), istio.clone(), true);
    let plan = crate::plan::build(&[&s], &ws(), &kept).expect("plan");
    let text = plan.render();
    assert_eq!(plan.slots.len(), 2, "one cluster per version");
    assert!(text.contains("(never, --keep)"), "{text}");
    assert!(!text.contains("delete: objects of"), "{text}");
    assert!(!text.contains("delete: Namespace gateway-http"), "{text}");
    // A bisect probe cleans up after itself.
    let probe = plan_options(host_options(), istio, false);
    let text = crate::plan::build(&[&s], &ws(), &probe)
        .expect("plan")
        .render();
    assert!(text.contains("delete: Namespace gateway-http") && text.contains("(always)"));

    let lines = access_lines(&s, &plan.slots[0].slot);
    assert!(
        lines[0].contains("kubeconfig /cache/clusters/egc-1-22-1-registry-only/kubeconfig"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains(
            "-n gateway-http exec -it curl -c curl -- curl -sv http://httpbin.org/headers"
        ),
        "{lines:?}"
    );
}

#[test]
fn the_archive_holds_scenario_manifests_verdicts_and_evidence() {
    let ws = ws();
    let s = scenario("gateway-mtls-tls-origination");
    let file = ws
        .scenarios_dir()
        .join("recordings/gateway-mtls-tls-origination@1.22.1.json");
    let recording = Recording::read(&file).expect("recording");
    let reports = std::env::temp_dir().join(format!("egress-bundle-{}", std::process::id()));
    let reporter = Reporter::new(&reports, Some("r".into()), None, None).expect("reporter");
    let mut c = case::from_replay(
        &s,
        &recording,
        "gateway-mtls-tls-origination@1.22.1.json",
        true,
    );
    let text = std::fs::read(&file).expect("read");
    reporter.keep(
        &mut c,
        "evidence/gateway-mtls-tls-origination@1.22.1/recording.json",
        &text,
    );
    assert_eq!(c.status, Status::Pass);
    reporter.record(c);
    reporter.write();
    let dir = reports.join("r");
    let (archive, names) = bundle::write(&ws, &s, &reporter.results(), &dir).expect("bundle");
    for want in [
        "README.txt",
        "scenario/gateway-mtls-tls-origination.yaml",
        "manifests/install/registry-only.yaml",
        "manifests/client/curl.yaml",
        "manifests/gateways/httpbin-istio-mutual.yaml",
        "manifests/destination-rules/originate-tls-httpbin.yaml",
        "results.json",
        "summary.md",
        "evidence/gateway-mtls-tls-origination@1.22.1/recording.json",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    // Read it back as a user would.
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&archive).expect("open"),
    ));
    let mut readme = String::new();
    for entry in tar.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if entry.path().expect("path").ends_with("README.txt") {
            entry.read_to_string(&mut readme).expect("read");
        }
    }
    assert!(readme.contains("1.22.1          pass"), "{readme}");
    let _ = std::fs::remove_dir_all(&reports);
}

#[test]
fn bisect_compares_judged_verdicts_and_refuses_errors() {
    let s = scenario("gateway-http");
    let mut c = case::base(
        &s,
        Some("1.22.1"),
        Source::Live,
        Default::default(),
        Status::Error,
        Some("kind create failed".into()),
    );
    assert!(
        verdict_of(&c)
            .expect_err("error")
            .contains("kind create failed")
    );
    c.status = Status::KnownFailure;
    assert_eq!(verdict_of(&c), Ok(Verdict::Failed), "no request passed");
    let file = ws()
        .scenarios_dir()
        .join("recordings/gateway-http@1.22.1.json");
    let passed = case::from_replay(&s, &Recording::read(&file).expect("recording"), "x", true);
    assert_eq!(verdict_of(&passed), Ok(Verdict::Passed));
    let changed = Finding::Changed {
        last: Version::parse("1.23.2").expect("v"),
        first: Version::parse("1.23.3").expect("v"),
        before: Verdict::Passed,
        after: Verdict::Failed,
    };
    assert_eq!(
        describe(&changed),
        "the verdict changed in Istio 1.23.3: it passes on 1.23.2 and fails from 1.23.3"
    );
}
