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
//!
//! A ServiceEntry can also take traffic by destination address instead of host: "If
//! one or more IP addresses are specified, the incoming traffic will be identified as
//! belonging to this service if the destination IP matches the IP/CIDRs specified in
//! the addresses field. If the Addresses field is empty, traffic will be identified
//! solely based on the destination port. In such scenarios, the port on which the
//! service is being accessed must not be shared by any other service in the mesh"
//! (service_entry.proto, `addresses`). Local upstream hosts resolve to addresses on
//! kind's Docker network, unknown when planning, so such a claim meets every request
//! to its port unless its addresses are documentation ranges no upstream has.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

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
    /// A change to the whole cluster, such as Gateway API CRDs swapped in.
    ClusterWide(String),
    /// TCP or TLS lines in the shared egress gateway's log carry no request id: the
    /// judge matches them by time and SNI, and a line without SNI (plain TCP,
    /// BlackHoleCluster) could be another scenario's. A scenario that sends TCP or TLS
    /// through that gateway writes such lines; one that judges the gateway's line of a
    /// TCP or TLS request reads them.
    GatewayTcpLines { writes: bool },
    /// A port of the shared egress gateway, with the protocol its Gateway server gives it.
    GatewayPort(u64, String),
    /// A destination port its requests leave the client for.
    RequestPort(u64),
    /// A sidecar port an exported ServiceEntry takes by destination address: every
    /// address (`None`: a TCP port without `addresses`) or these IPs and CIDRs.
    PortByAddress(u64, Option<Vec<String>>),
}

impl Claim {
    /// Whether two scenarios holding these may not run at once.
    pub fn meets(&self, other: &Claim) -> bool {
        match (self, other) {
            (Claim::MeshWide(_) | Claim::ClusterWide(_), _)
            | (_, Claim::MeshWide(_) | Claim::ClusterWide(_)) => true,
            (Claim::Host(a), Claim::Host(b)) => hosts_meet(a, b),
            // The same port with another protocol: Istio keeps one of the two servers.
            (Claim::GatewayPort(a, p), Claim::GatewayPort(b, q)) => a == b && p != q,
            (Claim::GatewayTcpLines { writes: a }, Claim::GatewayTcpLines { writes: b }) => {
                *a || *b
            }
            (Claim::PortByAddress(a, addresses), Claim::RequestPort(b))
            | (Claim::RequestPort(b), Claim::PortByAddress(a, addresses)) => {
                a == b
                    && addresses
                        .as_ref()
                        .is_none_or(|all| !all.iter().all(|x| in_documentation_range(x)))
            }
            (Claim::PortByAddress(a, x), Claim::PortByAddress(b, y)) => {
                a == b
                    && match (x, y) {
                        (Some(x), Some(y)) => x.iter().any(|p| y.iter().any(|q| overlap(p, q))),
                        _ => true,
                    }
            }
            _ => false,
        }
    }
}

/// An address or CIDR as network and prefix length; `None` when it is neither.
fn prefix(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = text.split_once('/').unwrap_or((text, ""));
    let ip: IpAddr = ip.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = if len.is_empty() {
        max
    } else {
        len.trim().parse().ok()?
    };
    (len <= max).then_some((ip, len))
}

fn leading_bits(ip: IpAddr, len: u8) -> Option<u128> {
    let (bits, width) = match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let len = u32::from(len);
    Some(if len == 0 { 0 } else { bits >> (width - len) })
}

/// Whether two addresses or CIDRs share an address; text that parses as neither
/// shares with everything, to be safe.
fn overlap(a: &str, b: &str) -> bool {
    let (Some((x, m)), Some((y, n))) = (prefix(a), prefix(b)) else {
        return true;
    };
    if x.is_ipv4() != y.is_ipv4() {
        return false;
    }
    let len = m.min(n);
    leading_bits(x, len) == leading_bits(y, len)
}

/// Within the ranges kept for documentation (RFC 5737's three TEST-NETs, RFC 3849's
/// 2001:db8::/32), which no upstream host resolves to.
fn in_documentation_range(address: &str) -> bool {
    let Some((ip, len)) = prefix(address) else {
        return false;
    };
    [
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "2001:db8::/32",
    ]
    .iter()
    .filter_map(|range| prefix(range))
    .any(|(net, net_len)| {
        ip.is_ipv4() == net.is_ipv4()
            && len >= net_len
            && leading_bits(ip, net_len) == leading_bits(net, net_len)
    })
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Claim::Host(h) => write!(f, "host {h}"),
            Claim::MeshWide(what) => write!(f, "{what} in {ISTIO_NAMESPACE} (mesh-wide)"),
            Claim::ClusterWide(what) => write!(f, "{what} (cluster-wide)"),
            Claim::GatewayTcpLines { writes } => write!(
                f,
                "TCP/TLS lines in the shared egress gateway's log ({}), matched by time and SNI",
                if *writes { "written and read" } else { "read" }
            ),
            Claim::GatewayPort(port, protocol) => {
                write!(f, "egress gateway port {port} as {protocol}")
            }
            Claim::RequestPort(port) => write!(f, "requests to port {port}"),
            Claim::PortByAddress(port, None) => {
                write!(
                    f,
                    "port {port} of every address (a TCP ServiceEntry port without addresses)"
                )
            }
            Claim::PortByAddress(port, Some(addresses)) => {
                write!(f, "port {port} of {}", addresses.join(", "))
            }
        }
    }
}

/// A Service of istio-system, by its cluster name (`<name>.istio-system.svc…`).
fn in_root_namespace(host: &str) -> bool {
    host.split('.').nth(1) == Some(ISTIO_NAMESPACE)
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
    out.extend(
        s.requests
            .iter()
            .filter_map(|r| crate::judge::url_port(&r.url.value))
            .map(Claim::RequestPort),
    );
    // A scenario with a Gateway API gateway of its own reads that gateway's log; one
    // with an Istio Gateway sends through the shared one.
    let own_gateway = objects
        .iter()
        .any(|o| o.kind == "Gateway" && o.api_version.starts_with("gateway.networking.k8s.io/"));
    let through_shared = objects
        .iter()
        .any(|o| o.kind == "Gateway" && o.api_version.starts_with("networking.istio.io/"));
    let tcp_or_tls = |r: &&crate::scenario::Request| {
        r.url
            .value
            .split_once("://")
            .is_some_and(|(scheme, _)| !scheme.eq_ignore_ascii_case("http"))
    };
    let judged = s
        .requests
        .iter()
        .filter(tcp_or_tls)
        .any(|r| r.expect.gateway_log.is_some());
    let writes = through_shared && s.requests.iter().any(|r| tcp_or_tls(&r));
    if !own_gateway && (writes || judged) {
        out.insert(Claim::GatewayTcpLines { writes });
    }
    if let Some(crds) = &s.gateway_api_crds {
        out.insert(Claim::ClusterWide(format!(
            "Gateway API CRDs {} swapped in",
            crds.value
        )));
    }
    for o in objects {
        if o.namespace.as_deref() == Some(ISTIO_NAMESPACE) {
            out.insert(Claim::MeshWide(format!("{}/{}", o.kind, o.name)));
        }
        let spec = o.spec();
        // An empty list exports everywhere, as no list does.
        let own_namespace_only = spec["exportTo"]
            .as_array()
            .is_some_and(|to| !to.is_empty() && to.iter().all(|n| n == "."));
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        if o.kind == "ServiceEntry" && !own_namespace_only {
            out.extend(ports_by_address(spec, &strings(&spec["addresses"])));
        }
        let hosts: Vec<String> = match o.kind.as_str() {
            "ServiceEntry" => [strings(&spec["hosts"]), strings(&spec["addresses"])].concat(),
            // Its hosts, and where it sends them: another scenario's rules for a
            // destination change these routes too. A short name is the namespace's own.
            "VirtualService" => {
                let destinations = ["http", "tls", "tcp"].into_iter().flat_map(|kind| {
                    spec[kind]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|rule| rule["route"].as_array().into_iter().flatten())
                        .filter_map(|route| route["destination"]["host"].as_str())
                        .filter(|host| host.contains('.') && !in_root_namespace(host))
                        .map(str::to_owned)
                });
                strings(&spec["hosts"])
                    .into_iter()
                    .chain(destinations)
                    .collect()
            }
            // A sidecar takes a DestinationRule from its own namespace, then the
            // service's, then the root (istio/istio pilot/pkg/model/push_context.go,
            // destinationRule): one for a Service of istio-system (the egress gateway's)
            // in a scenario's namespace changes only that scenario's clients.
            "DestinationRule" => spec["host"]
                .as_str()
                .filter(|host| !in_root_namespace(host))
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

/// The sidecar ports a ServiceEntry takes by address: with `addresses`, each port not
/// routed by HTTP Host; without, each opaque one (TCP, the databases', or none given,
/// which Istio sniffs) — TLS and HTTPS ports are told apart by SNI.
fn ports_by_address(spec: &Value, addresses: &[String]) -> Vec<Claim> {
    spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|port| {
            let number = port["number"].as_u64()?;
            let protocol = port["protocol"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let by_host = matches!(protocol.as_str(), "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB");
            let by_sni = matches!(protocol.as_str(), "TLS" | "HTTPS");
            if !addresses.is_empty() {
                (!by_host).then(|| Claim::PortByAddress(number, Some(addresses.to_vec())))
            } else {
                (!by_host && !by_sni).then_some(Claim::PortByAddress(number, None))
            }
        })
        .collect()
}

/// Groups run one after another, each of at most `at_once` scenarios whose claims do
/// not meet: the first group each scenario fits, in the order given (indices into
/// `claimed`).
pub fn groups(claimed: &[BTreeSet<Claim>], at_once: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let whole_cluster = |c: &BTreeSet<Claim>| c.iter().any(|x| matches!(x, Claim::ClusterWide(_)));
    for (i, mine) in claimed.iter().enumerate() {
        // A change to the whole cluster runs alone, after what came before it.
        if whole_cluster(mine) {
            out.push(vec![i]);
            continue;
        }
        let fits = |group: &Vec<usize>| {
            group.len() < at_once.max(1)
                && group.iter().all(|&j| {
                    !whole_cluster(&claimed[j])
                        && !mine.iter().any(|a| claimed[j].iter().any(|b| a.meets(b)))
                })
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
        // A cluster-wide change runs alone, even beside scenarios that claim nothing.
        let nothing = BTreeSet::new();
        let swap = set(&[Claim::ClusterWide(
            "Gateway API CRDs v1.4.1 swapped in".into(),
        )]);
        assert_eq!(
            groups(&[nothing.clone(), swap, nothing.clone()], 4),
            vec![vec![0, 2], vec![1]]
        );
        assert_eq!(
            why_apart(&claimed[0], &claimed[2]).as_deref(),
            Some("host httpbin.org")
        );
    }

    #[test]
    fn a_virtual_service_claims_the_hosts_it_routes_to() {
        let o = crate::manifest::parse_str(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a.example]\n  http:\n  - route:\n    - destination: {host: b.example}\n    - destination: {host: squid}\n    - destination: {host: istio-egressgateway.istio-system.svc.cluster.local}\n  tcp:\n  - route:\n    - destination: {host: c.example}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec: {host: istio-egressgateway.istio-system.svc.cluster.local}\n",
            std::path::Path::new("v.yaml"),
        )
        .unwrap();
        let text = "name: s\ndescription: d\nrequests:\n  - name: r\n    url: http://a.example/\n    expect: {status: 200}\n";
        let s = crate::scenario::load_str(text, std::path::Path::new("s.yaml")).unwrap();
        let hosts: Vec<String> = claims(&s, &o)
            .into_iter()
            .filter_map(|c| match c {
                Claim::Host(h) => Some(h),
                _ => None,
            })
            .collect();
        assert_eq!(hosts, ["a.example", "b.example", "c.example"]);
        let tcp_lines = |c: &BTreeSet<Claim>| {
            c.iter().find_map(|x| match x {
                Claim::GatewayTcpLines { writes } => Some(*writes),
                _ => None,
            })
        };
        assert_eq!(tcp_lines(&claims(&s, &o)), None, "plain HTTP");
        let tls = text
            .replace("http://a.example/", "https://a.example/")
            .replace("{status: 200}", "{status: 200, gateway_log: absent}");
        let tls = crate::scenario::load_str(&tls, std::path::Path::new("s.yaml")).unwrap();
        assert_eq!(
            tcp_lines(&claims(&tls, &o)),
            Some(false),
            "reads the gateway's lines"
        );
        let gateway = crate::manifest::parse_str(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {selector: {istio: egressgateway}}\n",
            std::path::Path::new("g.yaml"),
        )
        .unwrap();
        assert_eq!(
            tcp_lines(&claims(&tls, &gateway)),
            Some(true),
            "writes them too"
        );
        let (reads, writes) = (
            Claim::GatewayTcpLines { writes: false },
            Claim::GatewayTcpLines { writes: true },
        );
        assert!(!reads.meets(&reads));
        assert!(reads.meets(&writes) && writes.meets(&writes));
    }

    #[test]
    fn a_service_entry_taking_a_port_by_address_meets_the_requests_it_can_catch() {
        let every = Claim::PortByAddress(443, None);
        let cidr = Claim::PortByAddress(443, Some(vec!["172.16.0.0/12".into()]));
        let test_net = Claim::PortByAddress(443, Some(vec!["203.0.113.1".into()]));
        // Local upstream hosts resolve into kind's network (172.18.0.0/16 by default).
        assert!(cidr.meets(&Claim::RequestPort(443)));
        assert!(every.meets(&Claim::RequestPort(443)));
        assert!(!cidr.meets(&Claim::RequestPort(80)), "another port");
        assert!(
            !test_net.meets(&Claim::RequestPort(443)),
            "nothing resolves there"
        );
        assert!(test_net.meets(&Claim::PortByAddress(
            443,
            Some(vec!["203.0.113.0/24".into()])
        )));
        assert!(!test_net.meets(&Claim::PortByAddress(443, Some(vec!["203.0.113.2".into()]))));
        assert!(test_net.meets(&every));
        assert!(cidr.meets(&Claim::PortByAddress(443, Some(vec!["172.18.0.5".into()]))));
        assert!(!cidr.meets(&Claim::PortByAddress(443, Some(vec!["10.0.0.0/8".into()]))));
        assert!(!Claim::RequestPort(443).meets(&Claim::RequestPort(443)));
        assert!(overlap("2001:db8::/32", "2001:db8:1::1"));
        assert!(!overlap("2001:db8::1", "10.0.0.1"));
        assert!(
            overlap("not-an-address", "10.0.0.1"),
            "unreadable: assume it meets"
        );
        assert!(in_documentation_range("198.51.100.0/25"));
        assert!(
            !in_documentation_range("198.51.0.0/16"),
            "wider than the range"
        );
        assert_eq!(
            crate::judge::url_port("http://httpbin.org/headers"),
            Some(80)
        );
        assert_eq!(
            crate::judge::url_port("https://u@en.wikipedia.org/wiki"),
            Some(443)
        );
        assert_eq!(
            crate::judge::url_port("gopher://db.example.com:5432/_x"),
            Some(5432)
        );
        assert_eq!(
            crate::judge::url_port("http://[2001:db8::1]:8080/"),
            Some(8080)
        );
        assert_eq!(crate::judge::url_port("http://[2001:db8::1]/"), Some(80));
    }
}
