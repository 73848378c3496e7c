//! The kinds a scenario may apply, the API versions that serve them, and the fields
//! their specs accept (from the Istio API protos), so a typo fails offline instead of
//! being rejected, or silently pruned, by a live API server.

use serde_json::Value;

use super::{Object, Problem};

pub struct Kind {
    pub kind: &'static str,
    pub api_versions: &'static [&'static str],
    pub namespaced: bool,
    /// Top-level spec fields; `None` when not checked.
    pub spec_fields: Option<&'static [&'static str]>,
}

const ISTIO_NETWORKING: &[&str] = &[
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
];
const ISTIO_SECURITY: &[&str] = &["security.istio.io/v1", "security.istio.io/v1beta1"];
/// The Gateway API group (kubernetes-sigs/gateway-api config/crd/experimental): its
/// `Gateway` shares the kind name with Istio's and is told apart by the group.
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

pub const KINDS: &[Kind] = &[
    Kind {
        kind: "ServiceEntry",
        api_versions: ISTIO_NETWORKING,
        namespaced: true,
        spec_fields: Some(&[
            "hosts",
            "addresses",
            "ports",
            "location",
            "resolution",
            "endpoints",
            "workloadSelector",
            "exportTo",
            "subjectAltNames",
        ]),
    },
    Kind {
        kind: "Gateway",
        api_versions: ISTIO_NETWORKING,
        namespaced: true,
        spec_fields: Some(&["selector", "servers"]),
    },
    Kind {
        kind: "VirtualService",
        api_versions: ISTIO_NETWORKING,
        namespaced: true,
        spec_fields: Some(&["hosts", "gateways", "http", "tls", "tcp", "exportTo"]),
    },
    Kind {
        kind: "DestinationRule",
        api_versions: ISTIO_NETWORKING,
        namespaced: true,
        spec_fields: Some(&[
            "host",
            "trafficPolicy",
            "subsets",
            "exportTo",
            "workloadSelector",
        ]),
    },
    Kind {
        kind: "Sidecar",
        api_versions: ISTIO_NETWORKING,
        namespaced: true,
        spec_fields: Some(&[
            "workloadSelector",
            "ingress",
            "egress",
            "outboundTrafficPolicy",
            "inboundConnectionPool",
        ]),
    },
    Kind {
        kind: "PeerAuthentication",
        api_versions: ISTIO_SECURITY,
        namespaced: true,
        spec_fields: Some(&["selector", "mtls", "portLevelMtls"]),
    },
    Kind {
        kind: "AuthorizationPolicy",
        api_versions: ISTIO_SECURITY,
        namespaced: true,
        spec_fields: Some(&[
            "selector",
            "targetRef",
            "targetRefs",
            "rules",
            "action",
            "provider",
        ]),
    },
    // Gateway API, as Istio's Gateway API flavour of the egress gateway uses it
    // (istio.io docs/tasks/traffic-management/egress/egress-gateway, Gateway API tab).
    // TLSRoute is v1alpha2 up to Gateway API v1.4 and v1 from v1.5; BackendTLSPolicy
    // v1alpha3 before v1.4, v1 from v1.4.
    Kind {
        kind: "Gateway",
        api_versions: &[
            "gateway.networking.k8s.io/v1",
            "gateway.networking.k8s.io/v1beta1",
        ],
        namespaced: true,
        spec_fields: Some(&[
            "gatewayClassName",
            "listeners",
            "addresses",
            "infrastructure",
            "backendTLS",
            "allowedListeners",
        ]),
    },
    Kind {
        kind: "HTTPRoute",
        api_versions: &[
            "gateway.networking.k8s.io/v1",
            "gateway.networking.k8s.io/v1beta1",
        ],
        namespaced: true,
        spec_fields: Some(&["parentRefs", "hostnames", "rules"]),
    },
    Kind {
        kind: "TLSRoute",
        api_versions: &[
            "gateway.networking.k8s.io/v1",
            "gateway.networking.k8s.io/v1alpha2",
        ],
        namespaced: true,
        spec_fields: Some(&["parentRefs", "hostnames", "rules"]),
    },
    Kind {
        kind: "BackendTLSPolicy",
        api_versions: &[
            "gateway.networking.k8s.io/v1",
            "gateway.networking.k8s.io/v1alpha3",
        ],
        namespaced: true,
        spec_fields: Some(&["targetRefs", "validation", "options"]),
    },
    Kind {
        kind: "Service",
        api_versions: &["v1"],
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "Secret",
        api_versions: &["v1"],
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "ConfigMap",
        api_versions: &["v1"],
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "ServiceAccount",
        api_versions: &["v1"],
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "Pod",
        api_versions: &["v1"],
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "Deployment",
        api_versions: &["apps/v1"],
        namespaced: true,
        spec_fields: None,
    },
    // RBAC, for what Istio checks on a proxy's behalf: before 1.25 a sidecar's SDS
    // request for a credentialName Secret passes only if the proxy's service account
    // may `list secrets` (istio/istio pilot/pkg/credentials/kube/secrets.go).
    Kind {
        kind: "Role",
        api_versions: &["rbac.authorization.k8s.io/v1"],
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "RoleBinding",
        api_versions: &["rbac.authorization.k8s.io/v1"],
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "NetworkPolicy",
        api_versions: &["networking.k8s.io/v1"],
        namespaced: true,
        spec_fields: Some(&["podSelector", "policyTypes", "ingress", "egress"]),
    },
    // Kinds the user study's setups needed (istio.io's Kubernetes-service, SNI
    // monitoring and VM tasks); their specs are left to the API server.
    Kind {
        kind: "Endpoints",
        api_versions: &["v1"],
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "EndpointSlice",
        api_versions: &["discovery.k8s.io/v1"],
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "Telemetry",
        api_versions: &["telemetry.istio.io/v1", "telemetry.istio.io/v1alpha1"],
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "EnvoyFilter",
        api_versions: &["networking.istio.io/v1alpha3"],
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "WorkloadEntry",
        api_versions: ISTIO_NETWORKING,
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "RequestAuthentication",
        api_versions: ISTIO_SECURITY,
        namespaced: true,
        spec_fields: None,
    },
    Kind {
        kind: "IstioOperator",
        api_versions: &["install.istio.io/v1alpha1"],
        namespaced: true,
        spec_fields: Some(&[
            "profile",
            "hub",
            "tag",
            "revision",
            "namespace",
            "meshConfig",
            "components",
            "values",
            "unvalidatedValues",
            "installPackagePath",
            "compatibilityVersion",
        ]),
    },
];

const PORT_PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "GRPC", "HTTP2", "MONGO", "TCP", "TLS"];
const CLIENT_TLS_MODES: &[&str] = &["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"];
const SERVER_TLS_MODES: &[&str] = &[
    "PASSTHROUGH",
    "SIMPLE",
    "MUTUAL",
    "AUTO_PASSTHROUGH",
    "ISTIO_MUTUAL",
    "OPTIONAL_MUTUAL",
];

/// Checks kind, API version and fields of one object.
pub fn check_kind(object: &Object) -> Vec<Problem> {
    let mut problems = Vec::new();
    // Same kind, several groups (Gateway): the one serving this apiVersion, else the first.
    let same_kind = || KINDS.iter().filter(|k| k.kind == object.kind);
    if object.kind == "Namespace" {
        // Cluster-scoped, and the scenario's cleanup deletes what it applied: a
        // namespace this run did not make (on an existing cluster) would go with it.
        problems.push(Problem::on(
            object,
            "a scenario does not apply Namespaces yet: its cleanup would delete one this run may not have created; put the objects in the scenario's own namespace (`${namespace}`)",
        ));
        return problems;
    }
    let Some(kind) = same_kind()
        .find(|k| k.api_versions.contains(&object.api_version.as_str()))
        .or_else(|| same_kind().next())
    else {
        // Any other kind is applied as the API server serves it (discovery): see
        // `unchecked`.
        return problems;
    };
    if !kind.api_versions.contains(&object.api_version.as_str()) {
        problems.push(Problem::on(
            object,
            format!(
                "apiVersion `{}` does not serve {}; use one of {}",
                object.api_version,
                kind.kind,
                kind.api_versions.join(", ")
            ),
        ));
    }
    if let Some(allowed) = kind.spec_fields {
        match object.spec().as_object() {
            None => problems.push(Problem::on(object, "has no spec")),
            Some(spec) => {
                for key in spec.keys() {
                    if !allowed.contains(&key.as_str()) {
                        problems.push(Problem::on(
                            object,
                            format!(
                                "unknown field spec.{key}; {} accepts {}",
                                kind.kind,
                                allowed.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }
    let spec = object.spec();
    let mut enum_at = |path: String, value: &Value, allowed: &[&str]| {
        if let Some(v) = value.as_str()
            && !allowed.contains(&v)
        {
            problems.push(Problem::on(
                object,
                format!("{path} is `{v}`; expected one of {}", allowed.join(", ")),
            ));
        }
    };
    match kind.kind {
        "ServiceEntry" => {
            for (i, port) in items(&spec["ports"]).enumerate() {
                enum_at(
                    format!("spec.ports[{i}].protocol"),
                    &port["protocol"],
                    PORT_PROTOCOLS,
                );
            }
            // DYNAMIC_DNS from istio/api 1.28 (1d89957ad, #3565); which releases take it,
            // and how, is `release_problems`.
            enum_at(
                "spec.resolution".into(),
                &spec["resolution"],
                &["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"],
            );
            enum_at(
                "spec.location".into(),
                &spec["location"],
                &["MESH_EXTERNAL", "MESH_INTERNAL"],
            );
        }
        "Gateway" if !object.is_gateway_api() => {
            for (i, server) in items(&spec["servers"]).enumerate() {
                enum_at(
                    format!("spec.servers[{i}].port.protocol"),
                    &server["port"]["protocol"],
                    PORT_PROTOCOLS,
                );
                enum_at(
                    format!("spec.servers[{i}].tls.mode"),
                    &server["tls"]["mode"],
                    SERVER_TLS_MODES,
                );
            }
        }
        "DestinationRule" => {
            let policy = &spec["trafficPolicy"];
            enum_at(
                "spec.trafficPolicy.tls.mode".into(),
                &policy["tls"]["mode"],
                CLIENT_TLS_MODES,
            );
            for (i, port) in items(&policy["portLevelSettings"]).enumerate() {
                enum_at(
                    format!("spec.trafficPolicy.portLevelSettings[{i}].tls.mode"),
                    &port["tls"]["mode"],
                    CLIENT_TLS_MODES,
                );
            }
        }
        _ => {}
    }
    problems
}

/// A note for an object of a kind the harness does not know: it is applied live as the
/// API server's discovery serves it, so a typo in its kind or fields shows only there.
pub fn unchecked(object: &Object) -> Option<String> {
    (object.kind != "Namespace" && !KINDS.iter().any(|k| k.kind == object.kind)).then(|| {
        format!(
            "kind `{}` ({}) is not one the harness checks offline; it is applied as the API server serves it, so a typo in it shows only live",
            object.kind, object.api_version
        )
    })
}

/// What Istio `release` refuses in `object` that the kind's schema alone allows:
/// a ServiceEntry with `resolution: DYNAMIC_DNS`, as istio/istio
/// pkg/config/validation/validation.go (`case networking.ServiceEntry_DYNAMIC_DNS`)
/// checks it at each release. Not served before 1.28 (istio.io/api pinned by go.mod);
/// from 1.28 every host wildcarded, no addresses or endpoints; ports HTTP (1.28), HTTP
/// or TLS (1.29), HTTP, TLS, GRPC or HTTP2 (1.30+); MESH_EXTERNAL only before 1.30, and
/// MESH_INTERNAL never through a waypoint (`istio.io/use-waypoint`).
pub fn release_problems(object: &Object, release: &semver::Version) -> Vec<String> {
    let spec = object.spec();
    if object.kind != "ServiceEntry" || spec["resolution"].as_str() != Some("DYNAMIC_DNS") {
        return Vec::new();
    }
    let minor = (release.major, release.minor);
    if minor < (1, 28) {
        return vec!["resolution DYNAMIC_DNS is not served before Istio 1.28".into()];
    }
    let mut out = Vec::new();
    let hosts: Vec<&str> = items(&spec["hosts"]).filter_map(Value::as_str).collect();
    if hosts.is_empty() || hosts.iter().any(|h| !h.starts_with("*.")) {
        out.push("resolution DYNAMIC_DNS needs every host wildcarded (`*.example.com`)".into());
    }
    for field in ["addresses", "endpoints"] {
        if items(&spec[field]).next().is_some() {
            out.push(format!("resolution DYNAMIC_DNS takes no spec.{field}"));
        }
    }
    let protocols: &[&str] = if minor < (1, 29) {
        &["HTTP"]
    } else if minor < (1, 30) {
        &["HTTP", "TLS"]
    } else {
        &["HTTP", "TLS", "GRPC", "HTTP2"]
    };
    for (i, port) in items(&spec["ports"]).enumerate() {
        let protocol = port["protocol"].as_str().unwrap_or_default();
        if !protocols.contains(&protocol) {
            out.push(format!(
                "spec.ports[{i}].protocol is `{protocol}`; resolution DYNAMIC_DNS takes {}",
                protocols.join(", ")
            ));
        }
    }
    let internal = spec["location"].as_str() == Some("MESH_INTERNAL");
    if internal && minor < (1, 30) {
        out.push("resolution DYNAMIC_DNS needs location MESH_EXTERNAL before 1.30".into());
    }
    let waypoint = object.body["metadata"]["labels"]["istio.io/use-waypoint"].is_string();
    if internal && waypoint {
        out.push("resolution DYNAMIC_DNS with MESH_INTERNAL cannot use a waypoint".into());
    }
    out
}

/// The elements of a JSON array, or nothing.
pub(crate) fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_str;
    use std::path::Path;

    fn problems(yaml: &str) -> Vec<String> {
        parse_str(yaml, Path::new("m.yaml"))
            .unwrap()
            .iter()
            .flat_map(check_kind)
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn dynamic_dns_is_checked_as_each_istio_release_validates_it() {
        let se = |extra: &str| {
            parse_str(
                &format!("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: w}}\nspec:\n  hosts: [\"*.wikipedia.org\"]\n  resolution: DYNAMIC_DNS\n{extra}"),
                Path::new("m.yaml"),
            )
            .unwrap()
            .remove(0)
        };
        let v = |s: &str| semver::Version::parse(s).unwrap();
        let https = se("  ports:\n  - {number: 443, name: tls, protocol: TLS}\n");
        assert!(check_kind(&https).is_empty());
        assert_eq!(
            release_problems(&https, &v("1.27.9")),
            ["resolution DYNAMIC_DNS is not served before Istio 1.28"]
        );
        assert!(release_problems(&https, &v("1.28.10"))[0].contains("takes HTTP"));
        assert!(release_problems(&https, &v("1.29.8")).is_empty());
        assert!(release_problems(&https, &v("1.30.5")).is_empty());
        let internal = se(
            "  location: MESH_INTERNAL\n  ports:\n  - {number: 80, name: http, protocol: HTTP}\n",
        );
        assert!(release_problems(&internal, &v("1.29.8"))[0].contains("MESH_EXTERNAL"));
        assert!(release_problems(&internal, &v("1.30.5")).is_empty());
        let named = parse_str(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: named}\nspec:\n  hosts: [en.wikipedia.org]\n  addresses: [10.0.0.1]\n  resolution: DYNAMIC_DNS\n",
            Path::new("m.yaml"),
        )
        .unwrap()
        .remove(0);
        let problems = release_problems(&named, &v("1.30.5"));
        assert!(
            problems.iter().any(|p| p.contains("wildcarded")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("spec.addresses")),
            "{problems:?}"
        );
    }

    #[test]
    fn good_objects_pass() {
        let yaml = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: httpbin.org\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 443}\n      tls: {mode: SIMPLE}\n";
        assert_eq!(problems(yaml), Vec::<String>::new());
    }

    #[test]
    fn typos_unknown_kinds_and_versions_fail() {
        let typo = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec: {hosts: [a.org], prots: []}\n";
        assert!(problems(typo)[0].contains("unknown field spec.prots"));
        let kind = "apiVersion: v1\nkind: Servce\nmetadata: {name: s}\n";
        // An unknown kind is applied as discovery serves it: a note, not a problem.
        assert!(problems(kind).is_empty());
        let object = parse_str(kind, Path::new("m.yaml")).unwrap().remove(0);
        assert!(unchecked(&object).is_some_and(|n| n.contains("kind `Servce`")));
        let version = "apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: g}\nspec: {servers: []}\n";
        assert!(problems(version)[0].contains("does not serve Gateway"));
        let mode = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  servers:\n  - port: {number: 443, protocol: HTTPS}\n    tls: {mode: PASSTRHOUGH}\n";
        assert!(problems(mode)[0].contains("PASSTRHOUGH"));
    }

    #[test]
    fn gateway_api_objects_are_told_apart_from_istio_ones_by_group() {
        let gateway = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  gatewayClassName: istio\n  listeners: []\n";
        assert_eq!(problems(gateway), Vec::<String>::new());
        let istio_field = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {gatewayClassName: istio, servers: []}\n";
        assert!(problems(istio_field)[0].contains("unknown field spec.servers"));
        let old_tls_route = "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: TLSRoute\nmetadata: {name: r}\nspec: {parentRefs: []}\n";
        assert!(problems(old_tls_route)[0].contains("does not serve TLSRoute"));
    }
}
