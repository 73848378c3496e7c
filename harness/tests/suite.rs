//! The shipped scenarios and manifests pass every offline check.

use egress_harness::suite::{Suite, Workspace};
use egress_harness::validate;

fn workspace() -> Workspace {
    Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn every_shipped_scenario_loads_and_checks_clean() {
    let ws = workspace();
    let suite = Suite::load(&ws).unwrap();
    let broken: Vec<String> = suite
        .broken
        .iter()
        .flat_map(|(_, e)| e)
        .map(ToString::to_string)
        .collect();
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    assert!(
        suite.scenarios.len() >= 14,
        "only {} scenarios",
        suite.scenarios.len()
    );
    for s in &suite.scenarios {
        let problems: Vec<String> = validate::check_manifests(s, &ws)
            .into_iter()
            .chain(validate::check_consistency(s, &ws))
            .map(|p| p.to_string())
            .collect();
        assert!(
            problems.is_empty(),
            "{}:\n{}",
            s.name(),
            problems.join("\n")
        );
    }
}

#[test]
fn tags_select_what_they_say() {
    let suite = Suite::load(&workspace()).unwrap();
    let mtls = suite.select(&["mtls".into()]).unwrap();
    assert!(mtls.len() >= 3);
    assert!(mtls.iter().all(|s| s.has_tag("mtls")));
    let two = suite
        .select(&["gateway-http,no-egress-gateway".into()])
        .unwrap();
    assert_eq!(two.len(), 2);
    let err = suite.select(&["gateway-htp".into()]).unwrap_err();
    assert!(err.contains("did you mean `gateway-http`"), "{err}");
    assert!(err.contains("known scenarios: "), "{err}");
}

/// The annotated example in scenarios/README.md is a scenario that loads.
#[test]
fn the_documented_example_loads() {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/README.md"
    ))
    .unwrap();
    let block = readme
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a yaml block");
    let name = block
        .lines()
        .find_map(|l| l.strip_prefix("name: "))
        .map(|n| n.split_whitespace().next().unwrap().to_owned())
        .unwrap();
    let s =
        egress_harness::scenario::load_str(block, std::path::Path::new(&format!("{name}.yaml")))
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(s.upstream.local.is_some());
    assert!(s.requests[0].expect.upstream_tls.is_some());
}

/// `cargo test -- --scenario X` passes the suite's flags to every test binary of the
/// root package: each must be a libtest-mimic runner (`harness = false`) that takes
/// them, and none may be discovered implicitly.
#[test]
fn the_root_package_builds_only_test_binaries_that_take_the_suite_s_flags() {
    let manifest = std::fs::read_to_string(workspace().root.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("autotests = false"),
        "the root package must not discover tests/*.rs on its own"
    );
    let targets: Vec<&str> = manifest.split("[[test]]").skip(1).collect();
    assert!(!targets.is_empty(), "no conformance target in Cargo.toml");
    for target in targets {
        let target = target.split("\n[").next().unwrap_or(target);
        assert!(
            target.contains("harness = false"),
            "a root test target with libtest's own harness rejects --scenario:{target}"
        );
        assert!(
            target.contains("path = \"tests/conformance.rs\""),
            "only the conformance runner takes the suite's flags:{target}"
        );
    }
}
