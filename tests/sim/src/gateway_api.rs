//! The simulated cluster's Gateway API: CRDs served per release, and the status
//! Istio's gateway controller writes (istio/istio pilot/pkg/config/kube/gateway
//! conversion.go: a route parent is Accepted when a listener allows its kind,
//! ResolvedRefs when every backendRef resolves; a listener counts its routes).

use egress_harness::manifest::GATEWAY_API_GROUP;
use serde_json::{Value, json};

use super::Cluster;

/// The versions a release's experimental CRD serves, as its file at the tag lists
/// them (config/crd/experimental/gateway.networking.k8s.io_<plural>.yaml).
fn served_versions(plural: &str, release: &str) -> Vec<&'static str> {
    let at_least = |v: &str| {
        let parse = |t: &str| {
            t.trim_start_matches('v')
                .split('.')
                .map(|n| n.parse::<u64>().unwrap_or(0))
                .collect::<Vec<_>>()
        };
        parse(release) >= parse(v)
    };
    match plural {
        "tlsroutes" if at_least("v1.5.0") => vec!["v1", "v1alpha2", "v1alpha3"],
        "tlsroutes" if at_least("v1.4.0") => vec!["v1alpha2", "v1alpha3"],
        "tlsroutes" | "tcproutes" => vec!["v1alpha2"],
        "backendtlspolicies" if at_least("v1.4.0") => vec!["v1", "v1alpha3"],
        "backendtlspolicies" => vec!["v1alpha3"],
        "referencegrants" => vec!["v1beta1"],
        "grpcroutes" => vec!["v1"],
        _ => vec!["v1", "v1beta1"],
    }
}

/// The plural a kind is served under (`Gateway` → gateways, `BackendTLSPolicy` →
/// backendtlspolicies).
pub fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    // English plurals as the CRDs spell them: policy → policies, gateway → gateways.
    match lower.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) => format!("{stem}ies"),
        _ => format!("{lower}s"),
    }
}

/// The simulated bytes of a CRD file URL
/// `…/gateway-api/<release>/config/crd/experimental/gateway.networking.k8s.io_<plural>.yaml`.
pub fn crd_file(url: &str) -> Result<String, String> {
    let (release, plural) = url
        .split("/gateway-api/")
        .nth(1)
        .and_then(|rest| {
            let release = rest.split('/').next()?;
            let file = rest.rsplit('/').next()?;
            let plural = file
                .strip_prefix(&format!("{GATEWAY_API_GROUP}_"))?
                .strip_suffix(".yaml")?;
            Some((release, plural))
        })
        .ok_or_else(|| format!("GET {url}: HTTP 404 Not Found (simulated)"))?;
    let versions: Vec<Value> = served_versions(plural, release)
        .into_iter()
        .map(|v| json!({"name": v, "served": true, "storage": v == "v1"}))
        .collect();
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{plural}.{GATEWAY_API_GROUP}"),
            "annotations": {
                "gateway.networking.k8s.io/bundle-version": release,
                "gateway.networking.k8s.io/channel": "experimental",
            },
        },
        "spec": {"group": GATEWAY_API_GROUP, "names": {"plural": plural}, "versions": versions},
    });
    serde_json::to_string(&crd).map_err(|e| e.to_string())
}

/// Whether the cluster serves `api_version` `kind` of the Gateway API.
pub fn served(cluster: &Cluster, api_version: &str, kind: &str) -> bool {
    let version = api_version.rsplit('/').next().unwrap_or_default();
    cluster
        .crds
        .get(&format!("{}.{GATEWAY_API_GROUP}", plural(kind)))
        .is_some_and(|crd| {
            crd["spec"]["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v["name"].as_str() == Some(version))
        })
}

/// A Gateway Istio deploys: its name and its Deployment's (`<name>-istio` for class
/// istio, the name itself for istio-waypoint).
pub struct Deployed {
    pub name: String,
    pub deployment: String,
}

impl Deployed {
    /// The pod the Deployment runs.
    pub fn pod(&self) -> String {
        format!("{}-6d8f9c7b5-sim0", self.deployment)
    }
}

/// The Gateway Istio deploys in the namespace, if any.
pub fn deployed_gateway(cluster: &Cluster, namespace: &str) -> Option<Deployed> {
    let ns = cluster.namespaces.get(namespace)?;
    ns.objects.iter().find_map(|((kind, name), body)| {
        if kind != "Gateway" || !is_gateway_api(body) {
            return None;
        }
        let deployment = match body["spec"]["gatewayClassName"].as_str()? {
            "istio" => format!("{name}-istio"),
            "istio-waypoint" => name.clone(),
            _ => return None,
        };
        Some(Deployed {
            name: name.clone(),
            deployment,
        })
    })
}

pub fn is_gateway_api(body: &Value) -> bool {
    body["apiVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with(GATEWAY_API_GROUP))
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// When the simulation wrote a status: every condition Istio writes carries the time
/// it last changed (harness/tests/fixtures/public/status/; `observedGeneration` only
/// in some samples, so the simulation leaves it out).
const TRANSITION_TIME: &str = "2026-12-01T12:00:00Z";

fn condition(kind: &str, ok: bool, reason_if_not: &str, message: &str) -> Value {
    json!({
        "lastTransitionTime": TRANSITION_TIME,
        "message": message,
        "reason": if ok { kind } else { reason_if_not },
        "status": if ok { "True" } else { "False" },
        "type": kind,
    })
}

/// The route kinds a listener lists as supported (gateway-api apis/v1
/// gateway_types.go; Istio's status for an HTTP listener names HTTPRoute and GRPCRoute).
fn supported_kinds(listener: &Value) -> Vec<Value> {
    let kinds: &[&str] = match listener["protocol"].as_str().unwrap_or_default() {
        "HTTP" | "HTTPS" => &["HTTPRoute", "GRPCRoute"],
        "TLS" => &["TLSRoute"],
        "TCP" => &["TCPRoute"],
        _ => &[],
    };
    kinds
        .iter()
        .map(|k| json!({"group": GATEWAY_API_GROUP, "kind": k}))
        .collect()
}

/// The route kinds a listener allows, by protocol (gateway-api apis/v1
/// gateway_types.go, "Support: Core" kinds per protocol).
fn allows(listener: &Value, route_kind: &str) -> bool {
    match listener["protocol"].as_str().unwrap_or_default() {
        "HTTP" | "HTTPS" => route_kind == "HTTPRoute" || route_kind == "GRPCRoute",
        "TLS" => route_kind == "TLSRoute",
        "TCP" => route_kind == "TCPRoute",
        _ => false,
    }
}

/// Whether istiod runs with `PILOT_ENABLE_ALPHA_GATEWAY_API=true`.
fn alpha_enabled(cluster: &Cluster) -> bool {
    cluster
        .istiod_env
        .get("PILOT_ENABLE_ALPHA_GATEWAY_API")
        .is_some_and(|v| v == "true")
}

/// Whether istiod watches the cluster's objects of `kind`. TLSRoute before 1.30 and
/// TCPRoute before 1.31 only with `PILOT_ENABLE_ALPHA_GATEWAY_API=true` (sources at
/// egress_harness::plan::gateway_api::needs_alpha_flag). TLSRoute also depends on the
/// CRD release (istio/istio pkg/kube/kclient/crdwatcher.go at each tag): 1.30 reads
/// `v1`, served from Gateway API v1.5 on (istio/istio.io#17394); 1.28.6 and 1.29.2
/// ignore a bundle newer than v1.4.0 (MaximumCRDVersions, istio/istio#59949), 1.28.7+
/// and 1.29.3+ one newer than v1.4.1; before that Istio reads `v1alpha2`.
pub fn istiod_reads(cluster: &Cluster, kind: &str) -> bool {
    let before = |minor: u64| {
        cluster
            .istio
            .as_ref()
            .is_some_and(|(v, _)| (v.major, v.minor) < (1, minor))
    };
    let gated = egress_harness::plan::gateway_api::stable_from_minor(kind).is_some_and(before);
    if gated && !alpha_enabled(cluster) {
        return false;
    }
    if kind != "TLSRoute" {
        return true;
    }
    let (Some((istio, _)), Some(crd)) = (
        &cluster.istio,
        cluster
            .istiod_crds
            .get(&format!("tlsroutes.{GATEWAY_API_GROUP}")),
    ) else {
        return false;
    };
    let serves = |v: &str| items(&crd["spec"]["versions"]).any(|x| x["name"].as_str() == Some(v));
    let bundle = crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"]
        .as_str()
        .and_then(|b| semver::Version::parse(b.trim_start_matches('v')).ok());
    let v = |s: &str| semver::Version::parse(s).unwrap_or(semver::Version::new(0, 0, 0));
    let release = semver::Version::new(istio.major, istio.minor, istio.patch);
    if release >= v("1.30.0") {
        return serves("v1");
    }
    let maximum = if release == v("1.28.6") || release == v("1.29.2") {
        Some(v("1.4.0"))
    } else if release >= v("1.28.7") {
        Some(v("1.4.1"))
    } else {
        None
    };
    if let (Some(max), Some(b)) = (maximum, bundle)
        && b > max
    {
        return false;
    }
    serves("v1alpha2")
}

struct Attachment {
    route: (String, String),
    parent: Value,
    /// Why the parent did not take the route; `None` when it did.
    refused: Option<String>,
}

/// Every route parentRef in the namespace, and whether its parent takes it.
fn attachments(cluster: &Cluster, namespace: &str, never: bool) -> Vec<Attachment> {
    let Some(ns) = cluster.namespaces.get(namespace) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ((kind, name), body) in &ns.objects {
        if !kind.ends_with("Route") || !is_gateway_api(body) || !istiod_reads(cluster, kind) {
            continue;
        }
        for parent in items(&body["spec"]["parentRefs"]) {
            let parent_kind = parent["kind"].as_str().unwrap_or("Gateway");
            let parent_name = parent["name"].as_str().unwrap_or_default();
            let refused = if never {
                Some("NotAllowedByListeners: no listener allows the route (simulated fault)".into())
            } else if parent_kind == "ServiceEntry" {
                (!ns.objects
                    .contains_key(&("ServiceEntry".into(), parent_name.into())))
                .then(|| format!("NoMatchingParent: ServiceEntry {parent_name} not found"))
            } else {
                match ns.objects.get(&("Gateway".into(), parent_name.into())) {
                    None => Some(format!("NoMatchingParent: Gateway {parent_name} not found")),
                    Some(gw) => {
                        let section = parent["sectionName"].as_str();
                        let fits = items(&gw["spec"]["listeners"]).any(|l| {
                            section.is_none_or(|s| l["name"].as_str() == Some(s)) && allows(l, kind)
                        });
                        (!fits).then(|| {
                            format!(
                                "NotAllowedByListeners: no listener of {parent_name} allows {kind}"
                            )
                        })
                    }
                }
            };
            out.push(Attachment {
                route: (kind.clone(), name.clone()),
                parent: parent.clone(),
                refused,
            });
        }
    }
    out
}

/// Whether a backendRef resolves: a `Hostname` to a ServiceEntry host, a Service to
/// one of the namespace's Services or a deployed Gateway's `<name>-istio`.
fn resolves(cluster: &Cluster, namespace: &str, backend: &Value) -> bool {
    let Some(ns) = cluster.namespaces.get(namespace) else {
        return false;
    };
    let name = backend["name"].as_str().unwrap_or_default();
    match backend["kind"].as_str().unwrap_or("Service") {
        "Hostname" => ns
            .objects
            .iter()
            .filter(|((k, _), _)| k == "ServiceEntry")
            .any(|(_, se)| items(&se["spec"]["hosts"]).any(|h| h.as_str() == Some(name))),
        _ => {
            ns.objects.contains_key(&("Service".into(), name.into()))
                || deployed_gateway(cluster, namespace).is_some_and(|g| g.deployment == name)
        }
    }
}

/// The object with the status Istio would have written, `None` when absent.
pub fn with_status(
    cluster: &Cluster,
    namespace: &str,
    kind: &str,
    name: &str,
    never_attached: bool,
) -> Option<Value> {
    let ns = cluster.namespaces.get(namespace)?;
    let mut body = ns.objects.get(&(kind.to_owned(), name.to_owned()))?.clone();
    let attached = attachments(cluster, namespace, never_attached);
    let status = match kind {
        "Gateway" => {
            let listeners: Vec<Value> = items(&body["spec"]["listeners"])
                .map(|l| {
                    let listener = l["name"].as_str().unwrap_or_default();
                    let count = attached
                        .iter()
                        .filter(|a| {
                            a.refused.is_none()
                                && a.parent["kind"].as_str().unwrap_or("Gateway") == "Gateway"
                                && a.parent["name"].as_str() == Some(name)
                                && a.parent["sectionName"]
                                    .as_str()
                                    .is_none_or(|s| s == listener)
                                && allows(l, &a.route.0)
                        })
                        .count();
                    json!({"attachedRoutes": count, "conditions": [
                        condition("Accepted", true, "", "No errors found"),
                        condition("Conflicted", false, "NoConflicts", "No errors found"),
                        condition("Programmed", true, "", "No errors found"),
                        condition("ResolvedRefs", true, "", "No errors found"),
                    ], "name": listener, "supportedKinds": supported_kinds(l)})
                })
                .collect();
            json!({
                "conditions": [
                    condition("Accepted", true, "", "Resource accepted"),
                    condition("Programmed", true, "", &format!("Resource programmed, assigned to service(s) {name}-istio.{namespace}.svc.cluster.local")),
                ],
                "listeners": listeners,
            })
        }
        // Unseen by istiod: nobody writes its status.
        k if k.ends_with("Route") && !istiod_reads(cluster, k) => return Some(body),
        "BackendTLSPolicy" => {
            // A missing CA ConfigMap: Accepted=False NoValidCACertificate, ResolvedRefs=False
            // InvalidCACertificateRef (istio/istio pilot/pkg/config/kube/gateway/backend_policies.go).
            let missing: Vec<&str> = items(&body["spec"]["validation"]["caCertificateRefs"])
                .filter_map(|r| r["name"].as_str())
                .filter(|n| !ns.objects.contains_key(&("ConfigMap".into(), (*n).into())))
                .collect();
            let ok = missing.is_empty();
            let message = format!(
                "Certificate reference not found: ConfigMap {}",
                missing.join(", ")
            );
            let ancestors: Vec<Value> = items(&body["spec"]["targetRefs"])
                .map(|t| json!({
                    "ancestorRef": {"group": t["group"], "kind": t["kind"], "name": t["name"]},
                    "controllerName": "istio.io/gateway-controller",
                    "conditions": [
                        condition("Accepted", ok, "NoValidCACertificate", if ok { "Configuration is valid" } else { &message }),
                        condition("ResolvedRefs", ok, "InvalidCACertificateRef", if ok { "Configuration is valid" } else { &message }),
                    ],
                }))
                .collect();
            json!({"ancestors": ancestors})
        }
        k if k.ends_with("Route") => {
            let backends_ok = items(&body["spec"]["rules"])
                .flat_map(|r| items(&r["backendRefs"]))
                .all(|b| resolves(cluster, namespace, b));
            let parents: Vec<Value> = attached
                .iter()
                .filter(|a| a.route == (kind.to_owned(), name.to_owned()))
                .map(|a| {
                    let (reason, message) = a
                        .refused
                        .as_deref()
                        .and_then(|r| r.split_once(": "))
                        .unwrap_or(("", "Route was valid"));
                    json!({
                        "parentRef": a.parent,
                        "controllerName": "istio.io/gateway-controller",
                        "conditions": [
                            condition("Accepted", a.refused.is_none(), reason, message),
                            condition("ResolvedRefs", backends_ok, "BackendNotFound",
                                if backends_ok { "All references resolved" } else { "backend not found" }),
                        ],
                    })
                })
                .collect();
            json!({"parents": parents})
        }
        _ => return Some(body),
    };
    body["status"] = status;
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_served_under_their_plurals_per_release() {
        assert_eq!(plural("BackendTLSPolicy"), "backendtlspolicies");
        assert_eq!(plural("TLSRoute"), "tlsroutes");
        assert_eq!(plural("Gateway"), "gateways");
        assert_eq!(
            served_versions("tlsroutes", "v1.4.1"),
            ["v1alpha2", "v1alpha3"]
        );
        assert!(served_versions("tlsroutes", "v1.5.1").contains(&"v1"));
        let crd: Value = serde_json::from_str(
            &crd_file("https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/v1.1.0/config/crd/experimental/gateway.networking.k8s.io_tlsroutes.yaml").unwrap(),
        )
        .unwrap();
        assert_eq!(
            crd["metadata"]["name"],
            "tlsroutes.gateway.networking.k8s.io"
        );
        assert_eq!(crd["spec"]["versions"][0]["name"], "v1alpha2");
    }
}
