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
