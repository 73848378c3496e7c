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
    for m in scenario
        .manifests_for(mode)
        .iter()
        .chain(&scenario.applied_later(mode))
    {
        let path = ws.manifests_dir().join(&m.value);
        match manifest::parse_file_in(&path, scenario.name()) {
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

/// Notes that are no problems: objects of kinds the harness does not check offline.
pub fn notes(scenario: &Scenario, ws: &Workspace) -> Vec<Problem> {
    let mut notes: Vec<Problem> = Vec::new();
    for mode in MODES {
        for o in scenario_objects(scenario, ws, mode).unwrap_or_default() {
            if let Some(note) = manifest::kinds::unchecked(&o) {
                let note = Problem::on(&o, note);
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
    }
    notes
}

/// What the Istio releases the scenario runs on refuse in `object`: each known minor's
/// newest patch its `istio:` range admits (versions::NEWEST_PATCHES), checked as that
/// release's validation would; one problem per message, naming the releases.
fn release_problems(scenario: &Scenario, object: &Object) -> Vec<Problem> {
    let mut by_message: Vec<(String, Vec<String>)> = Vec::new();
    for patch in crate::versions::NEWEST_PATCHES {
        let Ok(release) = semver::Version::parse(patch) else {
            continue;
        };
        if !scenario.applies_to(&release) {
            continue;
        }
        for message in manifest::kinds::release_problems(object, &release) {
            match by_message.iter_mut().find(|(m, _)| *m == message) {
                Some((_, releases)) => releases.push(format!("1.{}", release.minor)),
                None => by_message.push((message, vec![format!("1.{}", release.minor)])),
            }
        }
    }
    by_message
        .into_iter()
        .map(|(message, releases)| {
            Problem::on(
                object,
                format!(
                    "{message} (Istio {} in the scenario's `istio:` range)",
                    releases.join(", ")
                ),
            )
        })
        .collect()
}

/// Kind, API version and field checks on every object, plus the install profile and the
/// client pod the scenario names.
pub fn check_manifests(scenario: &Scenario, ws: &Workspace) -> Vec<Problem> {
    let mut problems = replacements(scenario);
    problems.extend(local_hosts(scenario, ws));
    problems.extend(client_problems(scenario, ws));
    problems.extend(status_entries(scenario, ws));
    for mode in MODES {
        let found = match scenario_objects(scenario, ws, mode) {
            Ok(objects) => objects
                .iter()
                .flat_map(|o| {
                    manifest::check_kind(o)
                        .into_iter()
                        .chain(release_problems(scenario, o))
                })
                .collect(),
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

/// Each of `clients` is a manifest with one Pod of that name, a container named like the
/// default client's (the harness execs curl in it) and the service account it states;
/// a ServiceAccount object beside it is allowed.
fn client_problems(scenario: &Scenario, ws: &Workspace) -> Vec<Problem> {
    let mut problems = Vec::new();
    for c in &scenario.clients {
        let rel = format!("client/{}.yaml", c.manifest.value);
        let path = ws.manifests_dir().join(&rel);
        let objects = match manifest::parse_file_in(&path, scenario.name()) {
            Ok(objects) => objects,
            Err(p) => {
                problems.push(Problem {
                    file: ws.display(&p.file).into(),
                    ..p
                });
                continue;
            }
        };
        let mut say = |o: Option<&Object>, message: String| {
            problems.push(match o {
                Some(o) => Problem::on(
                    &Object {
                        file: rel.clone().into(),
                        ..o.clone()
                    },
                    message,
                ),
                None => Problem {
                    file: rel.clone().into(),
                    line: 1,
                    object: None,
                    message,
                },
            });
        };
        for o in objects
            .iter()
            .filter(|o| o.kind != "Pod" && o.kind != "ServiceAccount")
        {
            say(
                Some(o),
                "a client manifest holds one Pod and may hold its ServiceAccount; nothing else"
                    .into(),
            );
        }
        let pods: Vec<&Object> = objects.iter().filter(|o| o.kind == "Pod").collect();
        let [pod] = pods.as_slice() else {
            say(
                None,
                format!("must hold exactly one Pod (client `{}`)", c.name.value),
            );
            continue;
        };
        if pod.name != c.name.value {
            say(
                Some(pod),
                format!(
                    "the Pod is named `{}` but the scenario's client is `{}`; they must match",
                    pod.name, c.name.value
                ),
            );
        }
        let account = pod.spec()["serviceAccountName"]
            .as_str()
            .unwrap_or(crate::model::mesh::CLIENT_SERVICE_ACCOUNT);
        if account != c.service_account.value {
            say(
                Some(pod),
                format!(
                    "the Pod runs as service account `{account}` but the scenario says `{}`",
                    c.service_account.value
                ),
            );
        }
        let has_client_container = pod.spec()["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|k| k["name"].as_str() == Some(crate::model::mesh::CLIENT_CONTAINER));
        if !has_client_container {
            say(
                Some(pod),
                format!(
                    "needs a container named `{}` with curl in it: the harness sends requests from there",
                    crate::model::mesh::CLIENT_CONTAINER
                ),
            );
        }
    }
    problems
}

/// `status:` lists every Gateway API object the scenario applies, and only those,
/// each with condition types or `attachedRoutes.<listener>`.
fn status_entries(scenario: &Scenario, ws: &Workspace) -> Vec<Problem> {
    let at = |message: String| Problem {
        file: scenario.source.clone(),
        line: 1,
        object: None,
        message,
    };
    let mut problems = Vec::new();
    let mut applied = Vec::new();
    for mode in MODES {
        if let Ok(objects) = scenario_objects(scenario, ws, mode) {
            for o in objects.iter().filter(|o| o.is_gateway_api()) {
                if !applied.contains(&o.id()) {
                    applied.push(o.id());
                }
            }
        }
    }
    for id in &applied {
        if !scenario.status.contains_key(id) {
            problems.push(at(format!(
                "status: {id} is applied but has no entry; list the conditions it must show before traffic (e.g. `{id}: {{Accepted: {{equals: \"True\"}}}}`)"
            )));
        }
    }
    for (id, keys) in &scenario.status {
        if !applied.contains(id) {
            problems.push(at(format!(
                "status: `{id}` names no Gateway API object the scenario applies (applied: {})",
                if applied.is_empty() {
                    "none".to_owned()
                } else {
                    applied.join(", ")
                }
            )));
        }
        if keys.is_empty() {
            problems.push(at(format!("status.{id}: lists nothing to judge")));
        }
        for key in keys.keys() {
            let listener = key.strip_prefix("attachedRoutes.");
            let condition_type = key.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && key.chars().all(|c| c.is_ascii_alphanumeric());
            if !condition_type && listener.is_none_or(str::is_empty) {
                problems.push(at(format!(
                    "status.{id}.{key}: not a condition type (Accepted, Programmed, ResolvedRefs, …) nor `attachedRoutes.<listener>`"
                )));
            }
        }
    }
    problems
}

/// With the local upstream, every request goes to a host something answers as:
/// the echo server's names, or a Service of the scenario's own manifests.
fn local_hosts(scenario: &Scenario, ws: &Workspace) -> Vec<Problem> {
    if scenario.upstream.internet_only.is_some() {
        return Vec::new();
    }
    let Ok(objects) = scenario_objects(scenario, ws, UpstreamMode::Local) else {
        return Vec::new();
    };
    let namespace = scenario.name();
    let hosts = crate::upstream::hosts_for([scenario]);
    let mut served = hosts.clone();
    for o in objects.iter().filter(|o| o.kind == "Service") {
        let ns = o.namespace.as_deref().unwrap_or(namespace);
        for suffix in ["", ".NS", ".NS.svc", ".NS.svc.cluster.local"] {
            served.push(format!("{}{}", o.name, suffix.replace("NS", ns)));
        }
    }
    let mut problems = Vec::new();
    for r in &scenario.requests {
        let url = r.url.value.replace("${namespace}", namespace);
        let host = crate::judge::url_host(&url);
        if !served.contains(&host) {
            problems.push(Problem {
                file: scenario.source.clone(),
                line: r.url.referenced.line(),
                object: None,
                message: format!(
                    "request `{}`: the local upstream does not answer as {host} (only as {}, and the scenario's own Services); point the request at one of them, add the host to `upstream: {{hosts: [...]}}` (scenarios/README.md, \"Hosts\"), or set `upstream: {{internet_only: \"why\"}}` to run it with --upstream internet only",
                    r.name.value,
                    hosts.join(", ")
                ),
            });
        }
    }
    problems
}

/// What a shared cluster applies in the scenario's namespace for its install profile
/// (a namespace Sidecar for allow-any): part of what its own objects must agree with.
fn profile_objects(scenario: &Scenario, ws: &Workspace) -> Vec<Object> {
    crate::plan::NAMESPACE_PROFILES
        .iter()
        .filter(|p| p.profile == scenario.install.value)
        .flat_map(|p| p.manifests.iter())
        .filter_map(|m| manifest::parse_file_in(&ws.manifests_dir().join(m), scenario.name()).ok())
        .flatten()
        .map(|o| Object {
            file: ws.display(&o.file).into(),
            ..o
        })
        .collect()
}

/// Hosts, gateways and ports agree across the scenario's objects (and those its
/// install profile puts in its namespace on a shared cluster).
pub fn check_consistency(scenario: &Scenario, ws: &Workspace) -> Vec<Problem> {
    let mut problems = Vec::new();
    let profile = profile_objects(scenario, ws);
    for mode in MODES {
        let found = match scenario_objects(scenario, ws, mode) {
            Ok(objects) => manifest::check_consistency(
                &profile.iter().cloned().chain(objects).collect::<Vec<_>>(),
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
            let applied_later = scenario
                .requests
                .iter()
                .flat_map(|r| &r.before)
                .any(|a| matches!(a, crate::scenario::Action::Apply(f) if &f.value == key));
            if !applied_later && !scenario.manifests.iter().any(|m| &m.value == key) {
                problems.push(Problem {
                    file: scenario.source.clone(),
                    line: 1,
                    object: None,
                    message: format!(
                        "`upstream.{mode}.replace`: {key} is neither among the scenario's manifests nor applied by a request's `before`"
                    ),
                });
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(url: &str, extra: &str) -> Scenario {
        let text = format!(
            "name: hosts\ndescription: d\n{extra}manifests: [service-entries/httpbin.yaml]\nrequests:\n  - name: r\n    url: {url}\n    expect: {{status: 200}}\n"
        );
        crate::scenario::load_str(&text, Path::new("scenarios/hosts.yaml")).expect("scenario")
    }

    fn ws() -> Workspace {
        Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
    }

    #[test]
    fn a_local_run_only_asks_hosts_the_local_upstream_answers_as() {
        assert!(local_hosts(&scenario("http://httpbin.org/headers", ""), &ws()).is_empty());
        let problems = local_hosts(&scenario("https://api.example.com/x", ""), &ws());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 6);
        assert!(
            problems[0]
                .message
                .contains("does not answer as api.example.com")
                && problems[0].message.contains("internet_only"),
            "{}",
            problems[0].message
        );
        let internet = scenario(
            "https://api.example.com/x",
            "upstream: {internet_only: \"the report's host\"}\n",
        );
        assert!(local_hosts(&internet, &ws()).is_empty());
        // and the plan of a local run skips it with that reason
        let plan = crate::plan::build(
            &[&internet],
            &ws(),
            &crate::plan::PlanOptions::for_this_host(),
        )
        .expect("plan");
        assert!(plan.slots.is_empty());
        assert_eq!(
            plan.skipped[0].reason,
            "runs only with --upstream internet: the report's host"
        );
    }

    #[test]
    fn a_scenario_is_checked_against_each_release_its_range_admits() {
        let object = |yaml: &str| {
            crate::manifest::parse_str(yaml, Path::new("m.yaml"))
                .expect("yaml")
                .remove(0)
        };
        let tls = object(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: wiki}\nspec:\n  hosts: [\"*.wikipedia.org\"]\n  resolution: DYNAMIC_DNS\n  ports:\n  - {number: 443, name: tls, protocol: TLS}\n",
        );
        let everywhere = scenario("http://httpbin.org/headers", "");
        let messages: Vec<String> = release_problems(&everywhere, &tls)
            .iter()
            .map(|p| p.message.clone())
            .collect();
        assert_eq!(
            messages,
            [
                "resolution DYNAMIC_DNS is not served before Istio 1.28 (Istio 1.22, 1.23, 1.24, 1.25, 1.26, 1.27 in the scenario's `istio:` range)",
                "spec.ports[0].protocol is `TLS`; resolution DYNAMIC_DNS takes HTTP (Istio 1.28 in the scenario's `istio:` range)",
            ]
        );
        let from_1_29 = scenario("http://httpbin.org/headers", "istio: \">=1.29\"\n");
        assert!(release_problems(&from_1_29, &tls).is_empty());
    }

    #[test]
    fn the_scenarios_own_services_are_hosts_too() {
        let ws = ws();
        let suite = crate::suite::Suite::load(&ws).expect("suite");
        let s = suite
            .select(&["external-name-service".into()])
            .expect("select")[0]
            .clone();
        assert!(
            local_hosts(&s, &ws).is_empty(),
            "{:?}",
            local_hosts(&s, &ws)
        );
    }
}
