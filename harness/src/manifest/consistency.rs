//! Cross-object checks: every host a VirtualService or DestinationRule names is in the
//! registry (a ServiceEntry host or a mesh service), every gateway a VirtualService names
//! exists, and every port a route or match uses is served where it points.

use std::collections::BTreeSet;

use serde_json::Value;

use super::kinds::items;
use super::{Object, Problem};

/// The egress gateway Service the install profiles create.
pub const EGRESS_GATEWAY_HOST: &str = "istio-egressgateway.istio-system.svc.cluster.local";

/// A host known to the mesh with the ports it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshService {
    pub host: String,
    pub ports: Vec<u64>,
}

impl MeshService {
    /// The egress gateway's Service: ports 80 (http2), 443 (https) and 15443 (tls), labels
    /// `istio: egressgateway` (istio/istio manifests/charts/gateways/istio-egress/values.yaml).
    pub fn egress_gateway() -> Self {
        Self {
            host: EGRESS_GATEWAY_HOST.into(),
            ports: vec![80, 443, 15443],
        }
    }
}

const EGRESS_GATEWAY_LABELS: &[(&str, &str)] =
    &[("app", "istio-egressgateway"), ("istio", "egressgateway")];

/// Checks the objects of one scenario, applied in `namespace`, against each other and
/// the mesh services the install provides.
pub fn check_consistency(
    objects: &[Object],
    namespace: &str,
    installed: &[MeshService],
) -> Vec<Problem> {
    let mut registry: Vec<MeshService> = installed.to_vec();
    for o in objects {
        match o.kind.as_str() {
            "ServiceEntry" => {
                let ports: Vec<u64> = items(&o.spec()["ports"])
                    .filter_map(|p| p["number"].as_u64())
                    .collect();
                for host in items(&o.spec()["hosts"]).filter_map(Value::as_str) {
                    registry.push(MeshService {
                        host: host.to_owned(),
                        ports: ports.clone(),
                    });
                }
            }
            "Service" => {
                let ns = o.namespace.as_deref().unwrap_or(namespace);
                let ports = items(&o.spec()["ports"])
                    .filter_map(|p| p["port"].as_u64())
                    .collect();
                registry.push(MeshService {
                    host: format!("{}.{ns}.svc.cluster.local", o.name),
                    ports,
                });
            }
            _ => {}
        }
    }
    let gateways: Vec<&Object> = objects
        .iter()
        .filter(|o| o.kind == "Gateway" && !o.is_gateway_api())
        .collect();
    let lookup = |host: &str, ns: &str| -> Option<&MeshService> {
        let fqdn = fqdn(host, ns);
        registry.iter().find(|s| host_matches(&s.host, &fqdn))
    };

    let mut problems = Vec::new();
    for o in objects {
        let ns = o.namespace.as_deref().unwrap_or(namespace);
        let spec = o.spec();
        match o.kind.as_str() {
            "VirtualService" => {
                let vs_gateways: Vec<&str> =
                    items(&spec["gateways"]).filter_map(Value::as_str).collect();
                for g in &vs_gateways {
                    if *g != "mesh" && find_gateway(&gateways, g).is_none() {
                        problems.push(Problem::on(
                            o,
                            format!(
                                "names gateway `{g}`, which no manifest of the scenario defines"
                            ),
                        ));
                    }
                }
                let vs_hosts: Vec<&str> = items(&spec["hosts"]).filter_map(Value::as_str).collect();
                for host in &vs_hosts {
                    if lookup(host, ns).is_none() {
                        problems.push(Problem::on(
                            o,
                            format!("host `{host}` has no ServiceEntry and is no mesh service"),
                        ));
                    }
                }
                for section in ["http", "tls", "tcp"] {
                    for (i, rule) in items(&spec[section]).enumerate() {
                        for (j, route) in items(&rule["route"]).enumerate() {
                            let dest = &route["destination"];
                            let at = format!("spec.{section}[{i}].route[{j}]");
                            check_destination(o, &at, dest, ns, &lookup, &mut problems);
                        }
                        for (j, m) in items(&rule["match"]).enumerate() {
                            let Some(port) = m["port"].as_u64() else {
                                continue;
                            };
                            let at = format!("spec.{section}[{i}].match[{j}]");
                            let match_gateways: Vec<&str> = match m["gateways"].as_array() {
                                Some(list) => list.iter().filter_map(Value::as_str).collect(),
                                None => vs_gateways.clone(),
                            };
                            for g in match_gateways {
                                if g == "mesh" {
                                    let served = vs_hosts.iter().any(|h| {
                                        lookup(h, ns).is_some_and(|s| s.ports.contains(&port))
                                    });
                                    if !served {
                                        problems.push(Problem::on(o, format!("{at} matches port {port} for the mesh, but no host of this VirtualService serves it")));
                                    }
                                } else if let Some(gw) = find_gateway(&gateways, g)
                                    && !gateway_ports(gw).contains(&port)
                                {
                                    problems.push(Problem::on(o, format!("{at} matches port {port} on gateway `{g}`, which has no server on that port")));
                                }
                            }
                        }
                    }
                }
            }
            "DestinationRule" => match spec["host"].as_str() {
                None => problems.push(Problem::on(o, "spec.host is missing")),
                Some(host) => match lookup(host, ns) {
                    None => problems.push(Problem::on(
                        o,
                        format!("host `{host}` has no ServiceEntry and is no mesh service"),
                    )),
                    Some(service) => {
                        for (i, level) in
                            items(&spec["trafficPolicy"]["portLevelSettings"]).enumerate()
                        {
                            if let Some(port) = level["port"]["number"].as_u64()
                                && !service.ports.contains(&port)
                            {
                                problems.push(Problem::on(o, format!("spec.trafficPolicy.portLevelSettings[{i}] names port {port}, which `{host}` does not serve (ports {:?})", service.ports)));
                            }
                        }
                    }
                },
            },
            "Gateway" if !o.is_gateway_api() => {
                let selector = spec["selector"].as_object();
                let selects_egress = selector.is_some_and(|sel| {
                    !sel.is_empty()
                        && sel.iter().all(|(k, v)| {
                            EGRESS_GATEWAY_LABELS
                                .iter()
                                .any(|(lk, lv)| lk == k && v.as_str() == Some(lv))
                        })
                });
                if !selects_egress {
                    problems.push(Problem::on(
                        o,
                        "spec.selector does not select the egress gateway (istio: egressgateway)",
                    ));
                }
                let egress = MeshService::egress_gateway();
                for (i, server) in items(&spec["servers"]).enumerate() {
                    if let Some(port) = server["port"]["number"].as_u64()
                        && !egress.ports.contains(&port)
                    {
                        problems.push(Problem::on(o, format!("spec.servers[{i}] listens on port {port}, which the egress gateway Service does not expose ({:?})", egress.ports)));
                    }
                    for host in items(&server["hosts"]).filter_map(Value::as_str) {
                        let bare = host.rsplit('/').next().unwrap_or(host);
                        if bare != "*" && lookup(bare, ns).is_none() {
                            problems.push(Problem::on(o, format!("spec.servers[{i}] host `{host}` has no ServiceEntry and is no mesh service")));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    problems.extend(subsets_without_rules(objects, namespace));
    problems.extend(hosts_the_gateway_does_not_serve(objects, &gateways));
    problems.extend(sidecars_without_selector(objects, namespace));
    let mut seen = BTreeSet::new();
    for o in objects {
        let key = (o.kind.clone(), o.namespace.clone(), o.name.clone());
        if !seen.insert(key) {
            problems.push(Problem::on(
                o,
                "defined twice in this scenario's manifests; the second would overwrite the first",
            ));
        }
    }
    problems
}

fn check_destination<'a>(
    o: &Object,
    at: &str,
    dest: &Value,
    ns: &str,
    lookup: &dyn Fn(&str, &str) -> Option<&'a MeshService>,
    problems: &mut Vec<Problem>,
) {
    let Some(host) = dest["host"].as_str() else {
        problems.push(Problem::on(o, format!("{at}.destination.host is missing")));
        return;
    };
    match lookup(host, ns) {
        None => problems.push(Problem::on(
            o,
            format!("{at} routes to `{host}`, which has no ServiceEntry and is no mesh service"),
        )),
        Some(service) => {
            if let Some(port) = dest["port"]["number"].as_u64()
                && !service.ports.contains(&port)
            {
                problems.push(Problem::on(
                    o,
                    format!(
                        "{at} routes to `{host}` port {port}, which it does not serve (ports {:?})",
                        service.ports
                    ),
                ));
            }
        }
    }
}

/// A host as Istio resolves it in `ns`: short names are the namespace's Services.
fn fqdn(host: &str, ns: &str) -> String {
    if host.contains('.') {
        host.to_owned()
    } else {
        format!("{host}.{ns}.svc.cluster.local")
    }
}

/// Routes to a subset no DestinationRule of the scenario defines for that host: Envoy
/// has no such cluster and the request fails (istio.io docs/ops/best-practices/
/// traffic-management, "Avoid 503 errors while reconfiguring service routes").
fn subsets_without_rules(objects: &[Object], namespace: &str) -> Vec<Problem> {
    let defined: Vec<(String, String)> = objects
        .iter()
        .filter(|o| o.kind == "DestinationRule")
        .flat_map(|o| {
            let ns = o.namespace.as_deref().unwrap_or(namespace);
            let host = fqdn(o.spec()["host"].as_str().unwrap_or_default(), ns);
            items(&o.spec()["subsets"])
                .filter_map(|s| s["name"].as_str())
                .map(move |name| (host.clone(), name.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut problems = Vec::new();
    for o in objects.iter().filter(|o| o.kind == "VirtualService") {
        let ns = o.namespace.as_deref().unwrap_or(namespace);
        for section in ["http", "tls", "tcp"] {
            for (i, rule) in items(&o.spec()[section]).enumerate() {
                for (j, route) in items(&rule["route"]).enumerate() {
                    let dest = &route["destination"];
                    let (Some(host), Some(subset)) =
                        (dest["host"].as_str(), dest["subset"].as_str())
                    else {
                        continue;
                    };
                    let host = fqdn(host, ns);
                    if !defined
                        .iter()
                        .any(|(h, s)| host_matches(h, &host) && s == subset)
                    {
                        problems.push(Problem::on(
                            o,
                            format!("spec.{section}[{i}].route[{j}] routes to subset `{subset}` of `{host}`, which no DestinationRule of the scenario defines; Envoy has no cluster for it and the request fails"),
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// A VirtualService bound to a gateway for a host none of that gateway's servers lists:
/// the gateway has no route for it and answers 404 (NR).
fn hosts_the_gateway_does_not_serve(objects: &[Object], gateways: &[&Object]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for o in objects.iter().filter(|o| o.kind == "VirtualService") {
        let hosts: Vec<&str> = items(&o.spec()["hosts"])
            .filter_map(Value::as_str)
            .collect();
        for g in items(&o.spec()["gateways"]).filter_map(Value::as_str) {
            let Some(gateway) = (g != "mesh").then(|| find_gateway(gateways, g)).flatten() else {
                continue;
            };
            let served: Vec<&str> = items(&gateway.spec()["servers"])
                .flat_map(|s| items(&s["hosts"]).filter_map(Value::as_str))
                .map(|h| h.rsplit('/').next().unwrap_or(h))
                .collect();
            for host in &hosts {
                if !served.iter().any(|s| *s == "*" || host_matches(s, host)) {
                    problems.push(Problem::on(
                        o,
                        format!("host `{host}` is bound to gateway `{g}`, whose servers list {served:?}; the gateway has no route for it and answers 404 (NR)"),
                    ));
                }
            }
        }
    }
    problems
}

/// Two Sidecars without a workloadSelector in one namespace: Istio's behaviour is
/// undefined ("the behavior of the system is undefined if more than one selector-less
/// Sidecar resource exists in a given namespace", istio/api networking/v1alpha3/sidecar.proto).
fn sidecars_without_selector(objects: &[Object], namespace: &str) -> Vec<Problem> {
    let mut seen: Vec<(&str, &Object)> = Vec::new();
    let mut problems = Vec::new();
    for o in objects
        .iter()
        .filter(|o| o.kind == "Sidecar" && o.spec()["workloadSelector"].is_null())
    {
        let ns = o.namespace.as_deref().unwrap_or(namespace);
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == ns) {
            problems.push(Problem::on(
                o,
                format!(
                    "a second Sidecar without workloadSelector in namespace {ns} (the first is {}, {}:{}); Istio's behaviour with two is undefined",
                    first.id(),
                    first.file.display(),
                    first.line
                ),
            ));
        } else {
            seen.push((ns, o));
        }
    }
    problems
}

fn find_gateway<'a>(gateways: &[&'a Object], reference: &str) -> Option<&'a Object> {
    let name = reference.rsplit('/').next().unwrap_or(reference);
    gateways.iter().copied().find(|g| g.name == name)
}

fn gateway_ports(gateway: &Object) -> Vec<u64> {
    items(&gateway.spec()["servers"])
        .filter_map(|s| s["port"]["number"].as_u64())
        .collect()
}

/// Istio host matching: exact, or a `*.suffix` wildcard pattern.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(suffix),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_str;
    use std::path::Path;

    const SE: &str = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: httpbin}\nspec:\n  hosts: [httpbin.org]\n  ports:\n  - {number: 80, name: http, protocol: HTTP}\n  resolution: DNS\n---\n";
    const GW: &str = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: egress}\nspec:\n  selector: {istio: egressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [httpbin.org]\n---\n";

    fn vs(gw_port: u64, upstream_port: u64, gateway: &str) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v}}\nspec:\n  hosts: [httpbin.org]\n  gateways: [{gateway}, mesh]\n  http:\n  - match: [{{gateways: [mesh], port: 80}}]\n    route: [{{destination: {{host: {EGRESS_GATEWAY_HOST}, port: {{number: {gw_port}}}}}}}]\n  - match: [{{gateways: [{gateway}], port: 80}}]\n    route: [{{destination: {{host: httpbin.org, port: {{number: {upstream_port}}}}}}}]\n"
        )
    }

    fn check(yaml: &str) -> Vec<String> {
        let objects = parse_str(yaml, Path::new("m.yaml")).unwrap();
        check_consistency(&objects, "demo", &[MeshService::egress_gateway()])
            .into_iter()
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn consistent_gateway_setup_passes() {
        assert_eq!(
            check(&format!("{SE}{GW}{}", vs(80, 80, "egress"))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_inconsistency_is_reported() {
        let missing_gateway = check(&format!("{SE}{GW}{}", vs(80, 80, "nosuch")));
        assert!(
            missing_gateway
                .iter()
                .any(|m| m.contains("names gateway `nosuch`")),
            "{missing_gateway:?}"
        );
        let bad_upstream_port = check(&format!("{SE}{GW}{}", vs(80, 443, "egress")));
        assert!(
            bad_upstream_port
                .iter()
                .any(|m| m.contains("`httpbin.org` port 443")),
            "{bad_upstream_port:?}"
        );
        let bad_gateway_port = check(&format!("{SE}{GW}{}", vs(8080, 80, "egress")));
        assert!(
            bad_gateway_port.iter().any(|m| m.contains("port 8080")),
            "{bad_gateway_port:?}"
        );
        let no_service_entry = check(&format!("{GW}{}", vs(80, 80, "egress")));
        assert!(
            no_service_entry
                .iter()
                .any(|m| m.contains("no ServiceEntry")),
            "{no_service_entry:?}"
        );
        let dr = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: httpbin.org\n  trafficPolicy:\n    portLevelSettings: [{port: {number: 443}, tls: {mode: SIMPLE}}]\n";
        assert!(check(&format!("{SE}{dr}"))[0].contains("port 443"));
    }

    #[test]
    fn the_mistakes_istio_s_docs_warn_about_are_refused() {
        // A route to a subset no DestinationRule defines.
        let subset = format!(
            "{SE}{}",
            vs(80, 80, "egress").replace("{host: httpbin.org,", "{host: httpbin.org, subset: cnn,")
        );
        let problems = check(&format!("{GW}{subset}"));
        assert!(
            problems
                .iter()
                .any(|m| m.contains("subset `cnn` of `httpbin.org`")),
            "{problems:?}"
        );
        let dr = "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: httpbin.org\n  subsets: [{name: cnn}]\n";
        assert_eq!(check(&format!("{GW}{subset}{dr}")), Vec::<String>::new());
        // A gateway server that does not list the routed host.
        let other = GW.replace("hosts: [httpbin.org]", "hosts: [other.httpbin.org]");
        let problems = check(&format!("{SE}{other}{}", vs(80, 80, "egress")));
        assert!(
            problems
                .iter()
                .any(|m| m.contains("bound to gateway `egress`") && m.contains("404")),
            "{problems:?}"
        );
        // Two selector-less Sidecars in one namespace.
        let sidecar = |name: &str| {
            format!(
                "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: {name}}}\nspec:\n  outboundTrafficPolicy: {{mode: ALLOW_ANY}}\n---\n"
            )
        };
        let problems = check(&format!("{}{}", sidecar("a"), sidecar("b")));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("the first is Sidecar/a"),
            "{problems:?}"
        );
    }

    #[test]
    fn short_names_resolve_in_the_namespace() {
        let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {type: ExternalName, externalName: httpbin.org, ports: [{port: 80}]}\n---\n";
        let dr = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec: {host: ext}\n";
        assert_eq!(check(&format!("{svc}{dr}")), Vec::<String>::new());
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "example.org"));
    }
}
