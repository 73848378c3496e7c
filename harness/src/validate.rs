//! Offline checks of a scenario's manifests: each file parses into objects of known
//! kinds, and the objects agree with each other and with the install.

use crate::manifest::{self, MeshService, Object, Problem};
use crate::model::UpstreamMode;
use crate::scenario::Scenario;
use crate::suite::Workspace;

const MODES: [UpstreamMode; 2] = [UpstreamMode::Local, UpstreamMode::Internet];

/// The objects a scenario applies with upstream `mode`, in order, or the problems reading them.
pub fn scenario_objects(
    scenario: &Scenario,
    ws: &Workspace,
    mode: UpstreamMode,
) -> Result<Vec<Object>, Vec<Problem>> {
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    for m in &scenario.manifests_for(mode) {
        let path = ws.manifests_dir().join(&m.value);
        match manifest::parse_file(&path) {
            Ok(found) => objects.extend(found.into_iter().map(|o| Object {
                file: ws.display(&o.file).into(),
                ..o
            })),
            Err(p) => problems.push(Problem {
                file: ws.display(&p.file).into(),
                ..p
            }),
        }
    }
    if problems.is_empty() {
        Ok(objects)
    } else {
        Err(problems)
    }
}

/// Kind, API version and field checks on every object, plus the install profile and the
/// client pod the scenario names.
pub fn check_manifests(scenario: &Scenario, ws: &Workspace) -> Vec<Problem> {
    let mut problems = replacements(scenario);
    for mode in MODES {
        let found = match scenario_objects(scenario, ws, mode) {
            Ok(objects) => objects.iter().flat_map(manifest::check_kind).collect(),
            Err(problems) => problems,
        };
        for p in found {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    let fixed = [
        (
            format!("install/{}.yaml", scenario.install.value),
            "IstioOperator",
        ),
        (format!("client/{}.yaml", scenario.client.value), "Pod"),
    ];
    for (rel, kind) in fixed {
        let path = ws.manifests_dir().join(&rel);
        match manifest::parse_file(&path) {
            Err(p) => problems.push(Problem {
                file: ws.display(&p.file).into(),
                ..p
            }),
            Ok(objects) => {
                for o in &objects {
                    problems.extend(manifest::check_kind(o));
                }
                if objects.len() != 1 || objects[0].kind != kind {
                    problems.push(Problem {
                        file: rel.into(),
                        line: 1,
                        object: None,
                        message: format!("must hold exactly one {kind}"),
                    });
                }
            }
        }
    }
    problems
}

/// Hosts, gateways and ports agree across the scenario's objects.
pub fn check_consistency(scenario: &Scenario, ws: &Workspace) -> Vec<Problem> {
    let mut problems = Vec::new();
    for mode in MODES {
        let found = match scenario_objects(scenario, ws, mode) {
            Ok(objects) => manifest::check_consistency(
                &objects,
                scenario.name(),
                &[MeshService::egress_gateway()],
            ),
            Err(problems) => problems,
        };
        for p in found {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    problems
}

/// Every `upstream.<mode>.replace` key names a manifest the scenario lists.
fn replacements(scenario: &Scenario) -> Vec<Problem> {
    let variants = [
        ("local", scenario.upstream.local.as_ref()),
        ("internet", scenario.upstream.internet.as_ref()),
    ];
    let mut problems = Vec::new();
    for (mode, variant) in variants {
        for key in variant.iter().flat_map(|v| v.replace.keys()) {
            if !scenario.manifests.iter().any(|m| &m.value == key) {
                problems.push(Problem {
                    file: scenario.source.clone(),
                    line: 1,
                    object: None,
                    message: format!(
                        "`upstream.{mode}.replace`: {key} is not among the scenario's manifests"
                    ),
                });
            }
        }
    }
    problems
}
