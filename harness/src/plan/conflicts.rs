//! Which scenarios of one cluster may run at once (`--parallel-scenarios`). Each
//! scenario claims what it changes or depends on beyond its own namespace; two whose
//! claims meet run one after the other.
//!
//! Istio exports ServiceEntries, VirtualServices and DestinationRules to every
//! namespace unless `exportTo` says otherwise (istio/api networking/v1alpha3
//! service_entry.proto, `export_to`: "If no namespaces are specified then the service
//! is exported to all namespaces by default"; virtual_service.proto and
//! destination_rule.proto say the same of theirs), so another scenario's objects for
//! a host change the routes of every request to it; objects in the root namespace
//! (istio-system) apply to the whole mesh; Gateways in any namespace program the one
//! shared egress gateway, one listener per port.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::manifest::Object;
use crate::model::mesh::ISTIO_NAMESPACE;
use crate::scenario::Scenario;

/// Something a scenario changes or depends on beyond its namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Claim {
    /// A host its requests reach or its exported Istio objects name (`*.` for a family).
    Host(String),
    /// An object in the root namespace, which applies to the whole mesh (kind/name).
    MeshWide(String),
    /// A port of the shared egress gateway, with the protocol its Gateway server gives it.
    GatewayPort(u64, String),
}

impl Claim {
    /// Whether two scenarios holding these may not run at once.
    pub fn meets(&self, other: &Claim) -> bool {
        match (self, other) {
            (Claim::MeshWide(_), _) | (_, Claim::MeshWide(_)) => true,
            (Claim::Host(a), Claim::Host(b)) => hosts_meet(a, b),
            // The same port with another protocol: Istio keeps one of the two servers.
            (Claim::GatewayPort(a, p), Claim::GatewayPort(b, q)) => a == b && p != q,
            _ => false,
        }
    }
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Claim::Host(h) => write!(f, "host {h}"),
            Claim::MeshWide(what) => write!(f, "{what} in {ISTIO_NAMESPACE} (mesh-wide)"),
            Claim::GatewayPort(port, protocol) => {
                write!(f, "egress gateway port {port} as {protocol}")
            }
        }
    }
}

/// Equal, or one a wildcard family (`*.wikipedia.org`) the other belongs to.
fn hosts_meet(a: &str, b: &str) -> bool {
    let a = a.to_ascii_lowercase();
    let b = b.to_ascii_lowercase();
    let in_family = |host: &str, wildcard: &str| {
        wildcard
            .strip_prefix('*')
            .is_some_and(|suffix| host.ends_with(suffix) || host == &suffix[1..])
    };
    a == b || in_family(&a, &b) || in_family(&b, &a)
}

/// What a scenario claims: the hosts of its requests, and of its objects (`objects`:
/// those it applies, at once or later) that other namespaces see.
pub fn claims(s: &Scenario, objects: &[Object]) -> BTreeSet<Claim> {
    let mut out: BTreeSet<Claim> = s
        .requests
        .iter()
        .map(|r| Claim::Host(crate::judge::url_host(&r.url.value)))
        .filter(|c| !matches!(c, Claim::Host(h) if h.is_empty() || h.contains('$')))
        .collect();
    for o in objects {
        if o.namespace.as_deref() == Some(ISTIO_NAMESPACE) {
            out.insert(Claim::MeshWide(format!("{}/{}", o.kind, o.name)));
        }
        let spec = o.spec();
        let own_namespace_only = spec["exportTo"]
            .as_array()
            .is_some_and(|to| to.iter().all(|n| n == "."));
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        let hosts: Vec<String> = match o.kind.as_str() {
            "ServiceEntry" => [strings(&spec["hosts"]), strings(&spec["addresses"])].concat(),
            "VirtualService" => strings(&spec["hosts"]),
            "DestinationRule" => spec["host"]
                .as_str()
                .map(str::to_owned)
                .into_iter()
                .collect(),
            "HTTPRoute" | "TLSRoute" | "GRPCRoute" => strings(&spec["hostnames"]),
            // Its traffic is traffic to that host, routed by whatever names it.
            "Service" => spec["externalName"]
                .as_str()
                .map(str::to_owned)
                .into_iter()
                .collect(),
            "Gateway" if o.api_version.starts_with("networking.istio.io/") => {
                for server in spec["servers"].as_array().into_iter().flatten() {
                    if let Some(port) = server["port"]["number"].as_u64() {
                        let protocol = server["port"]["protocol"]
                            .as_str()
                            .unwrap_or_default()
                            .to_ascii_uppercase();
                        out.insert(Claim::GatewayPort(port, protocol));
                    }
                }
                spec["servers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|server| strings(&server["hosts"]))
                    // `namespace/host` in a Gateway server's hosts.
                    .map(|h| h.rsplit_once('/').map_or(h.clone(), |(_, h)| h.to_owned()))
                    .collect()
            }
            _ => Vec::new(),
        };
        if own_namespace_only && o.kind != "Gateway" {
            continue;
        }
        out.extend(
            hosts
                .into_iter()
                .filter(|h| h != "*" && h != "mesh" && !h.contains('$'))
                .map(Claim::Host),
        );
    }
    out
}

/// Groups run one after another, each of at most `at_once` scenarios whose claims do
/// not meet: the first group each scenario fits, in the order given (indices into
/// `claimed`).
pub fn groups(claimed: &[BTreeSet<Claim>], at_once: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (i, mine) in claimed.iter().enumerate() {
        let fits = |group: &Vec<usize>| {
            group.len() < at_once.max(1)
                && group
                    .iter()
                    .all(|&j| !mine.iter().any(|a| claimed[j].iter().any(|b| a.meets(b))))
        };
        match out.iter_mut().find(|g| fits(g)) {
            Some(group) => group.push(i),
            None => out.push(vec![i]),
        }
    }
    out
}

/// Why two scenarios do not run at once: the first claims of theirs that meet.
pub fn why_apart(a: &BTreeSet<Claim>, b: &BTreeSet<Claim>) -> Option<String> {
    a.iter()
        .find_map(|x| b.iter().find(|y| x.meets(y)).map(|y| (x, y)))
        .map(|(x, y)| {
            if x == y {
                x.to_string()
            } else {
                format!("{x} / {y}")
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(claims: &[Claim]) -> BTreeSet<Claim> {
        claims.iter().cloned().collect()
    }

    #[test]
    fn scenarios_that_share_a_host_a_family_or_the_mesh_run_apart() {
        let host = |h: &str| Claim::Host(h.into());
        assert!(host("www.wikipedia.org").meets(&host("*.wikipedia.org")));
        assert!(host("wikipedia.org").meets(&host("*.wikipedia.org")));
        assert!(!host("httpbin.org").meets(&host("*.wikipedia.org")));
        assert!(Claim::MeshWide("AuthorizationPolicy/x".into()).meets(&host("a.example")));
        assert!(
            Claim::GatewayPort(443, "TLS".into()).meets(&Claim::GatewayPort(443, "HTTPS".into()))
        );
        assert!(
            !Claim::GatewayPort(443, "TLS".into()).meets(&Claim::GatewayPort(443, "TLS".into()))
        );

        let claimed = vec![
            set(&[host("httpbin.org")]),
            set(&[host("db.example.com")]),
            set(&[host("httpbin.org")]),
            set(&[host("www.wikipedia.org")]),
            set(&[host("*.wikipedia.org")]),
            set(&[Claim::MeshWide("AuthorizationPolicy/deny".into())]),
        ];
        assert_eq!(
            groups(&claimed, 4),
            vec![vec![0, 1, 3], vec![2, 4], vec![5]]
        );
        // At most `at_once` in a group; one at a time is the plain sequence.
        assert_eq!(
            groups(&claimed, 2),
            vec![vec![0, 1], vec![2, 3], vec![4], vec![5]]
        );
        assert_eq!(groups(&claimed, 1).len(), claimed.len());
        assert_eq!(
            why_apart(&claimed[0], &claimed[2]).as_deref(),
            Some("host httpbin.org")
        );
    }
}
