//! The path a request took — client, sidecar, egress gateway, upstream — and each
//! hop's protocol, read from the evidence rather than from the manifests:
//!
//! - client → first hop: the URL curl was given (`https://` is the app's own TLS).
//! - sidecar → gateway: the gateway's access-log line (TCP by SNI = passthrough; an HTTP
//!   line on a TLS port or with an SNI = terminated TLS) and the XFCC header the gateway
//!   added, which proves it saw the sidecar's client certificate (mTLS).
//! - last proxy → upstream: that proxy's upstream cluster (`outbound|443||host` with an
//!   HTTP line = TLS origination), or what the harness's echo server saw of the TLS.
//!
//! Where nothing captured tells, the hop is read from the scenario and marked
//! `inferred` (drawn dashed), never presented as seen.

use serde_json::Value;

use super::results::{Hop, Node, Protocol};
use crate::evidence::access_log::{Entry, Field};
use crate::evidence::headers::EchoedHeaders;
use crate::judge::find_line;
use crate::recording::Observation;
use crate::scenario::{Presence, Request};

/// What the hop reading needs besides the observation.
pub struct PathFacts {
    /// The client pod has a sidecar.
    pub sidecar: bool,
    /// The harness's echo server answered (it reports the TLS it saw).
    pub local_upstream: bool,
}

/// The port Istio's egress gateway listens on for a Gateway server on 443
/// (targetPort 8443 in the istio-egress chart's Service).
const GATEWAY_TLS_PORT: &str = "8443";

pub fn hops(request: &Request, obs: &Observation, facts: &PathFacts) -> Vec<Hop> {
    let url = request.url.value.as_str();
    let host = crate::judge::url_host(url);
    let sidecar_host = crate::judge::log_host(request);
    let app_tls = url.starts_with("https://");
    let line = |lines: &Option<Vec<String>>, host: &str| -> Option<Option<Entry<'static>>> {
        lines
            .as_ref()
            .map(|l| find_line(l, obs, host).map(|(_, e)| e.into_owned()))
    };
    let gateway_line = line(&obs.gateway_log, &host);
    let sidecar_line = line(&obs.sidecar_log, &sidecar_host);
    let body: Option<Value> = obs
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b.trim()).ok());
    let headers = obs
        .body
        .as_deref()
        .and_then(|b| EchoedHeaders::parse(b).ok());
    let xfcc = headers
        .as_ref()
        .and_then(|h| h.get("X-Forwarded-Client-Cert"));
    let last_proxy_is_gateway = headers
        .as_ref()
        .and_then(|h| h.get("X-Envoy-Peer-Metadata-Id"))
        .is_some_and(|id| id.starts_with("router~") && id.contains("egressgateway"));
    let expects_gateway = matches!(
        request.expect.gateway_log,
        Some(Presence::Present | Presence::Fields(_))
    );

    let first = if facts.sidecar {
        Node::Sidecar
    } else {
        Node::Upstream
    };
    let mut out = vec![Hop {
        from: Node::Client,
        to: first,
        protocol: if app_tls {
            Protocol::Tls
        } else {
            Protocol::Http
        },
        evidence: format!("curl {url}"),
        inferred: false,
    }];
    if !facts.sidecar {
        return out;
    }

    // Is the gateway on the path? Its line or its peer id says so; a captured log
    // without the line says no; otherwise the scenario's expectation is all there is.
    let gateway = match &gateway_line {
        Some(Some(_)) => Some(false),
        _ if last_proxy_is_gateway => Some(false),
        Some(None) => None,
        None if expects_gateway => Some(true),
        None => None,
    };
    let (last, last_line) = match gateway {
        Some(inferred) => {
            out.push(to_gateway(
                gateway_line.as_ref().and_then(Option::as_ref),
                xfcc.as_deref(),
                inferred,
            ));
            (Node::EgressGateway, gateway_line.flatten())
        }
        None => (Node::Sidecar, sidecar_line.flatten()),
    };
    out.push(to_upstream(
        last,
        last_line.as_ref(),
        body.as_ref(),
        app_tls,
        obs,
        facts,
    ));
    out
}

fn to_gateway(line: Option<&Entry<'_>>, xfcc: Option<&str>, inferred: bool) -> Hop {
    let hop = |protocol, evidence: String, inferred| Hop {
        from: Node::Sidecar,
        to: Node::EgressGateway,
        protocol,
        evidence,
        inferred,
    };
    if let Some(xfcc) = xfcc {
        let by = xfcc
            .split([';', ','])
            .find(|p| p.starts_with("By="))
            .unwrap_or("X-Forwarded-Client-Cert");
        return hop(
            Protocol::Mtls,
            format!("the gateway forwarded the sidecar's client certificate ({by})"),
            false,
        );
    }
    let Some(line) = line else {
        return hop(
            Protocol::Unknown,
            "the gateway's access log was not captured".into(),
            inferred,
        );
    };
    let sni = line.get(Field::RequestedServerName).unwrap_or("-");
    let port = line
        .get(Field::DownstreamLocalAddress)
        .and_then(|a| a.rsplit_once(':'))
        .map_or("-", |(_, p)| p);
    if line.is_tcp() {
        if sni.starts_with("outbound_") {
            // Istio's own SNI: the sidecar's mTLS around the app's TLS.
            return hop(
                Protocol::MtlsAroundTls,
                format!("gateway TCP line, Istio SNI {sni}, port {port}"),
                false,
            );
        }
        // The app's SNI on a TCP line is passthrough, or Istio mTLS the gateway ended
        // before proxying the app's TLS (an ISTIO_MUTUAL server with a tcp route): the
        // line cannot tell them apart, so the hop is drawn as inferred.
        return hop(
            Protocol::Passthrough,
            format!(
                "gateway TCP line, SNI {sni}, port {port}: passthrough, or Istio mTLS ended at the gateway (the line cannot tell)"
            ),
            true,
        );
    }
    if sni != "-" || port == GATEWAY_TLS_PORT {
        // TLS ended at the gateway; without XFCC the client certificate is not proven.
        return hop(
            Protocol::Mtls,
            format!("gateway HTTP line on TLS (SNI {sni}, port {port}); no XFCC echoed"),
            true,
        );
    }
    hop(
        Protocol::Http,
        format!("gateway HTTP line, no SNI, port {port}"),
        false,
    )
}

fn to_upstream(
    from: Node,
    line: Option<&Entry<'_>>,
    body: Option<&Value>,
    app_tls: bool,
    obs: &Observation,
    facts: &PathFacts,
) -> Hop {
    let hop = |protocol, evidence: String, inferred| Hop {
        from,
        to: Node::Upstream,
        protocol,
        evidence,
        inferred,
    };
    let upstream_tls = body.and_then(|b| b.get("tls")).filter(|t| !t.is_null());
    if let Some(line) = line {
        let cluster = line.get(Field::UpstreamCluster).unwrap_or("-");
        let flags = line.get(Field::ResponseFlags).unwrap_or("-");
        if cluster.starts_with("BlackHole") || flags.contains("NR") {
            return hop(
                Protocol::Blocked,
                format!("{} line: cluster {cluster}, flags {flags}", from.label()),
                false,
            );
        }
        let port = cluster.split('|').nth(1).unwrap_or("");
        let protocol = if line.is_tcp() {
            if port == "443" || app_tls {
                Protocol::Passthrough
            } else {
                Protocol::Http
            }
        } else if upstream_tls.is_some() || port == "443" {
            origination(upstream_tls)
        } else {
            Protocol::Http
        };
        let kind = if line.is_tcp() { "TCP" } else { "HTTP" };
        return hop(
            protocol,
            format!("{} {kind} line to {cluster}", from.label()),
            false,
        );
    }
    if let Some(tls) = upstream_tls {
        let version = tls["version"].as_str().unwrap_or("TLS");
        let protocol = if app_tls {
            Protocol::Tls
        } else {
            origination(Some(tls))
        };
        return hop(protocol, format!("the echo server saw {version}"), false);
    }
    if facts.local_upstream && body.is_some() {
        return hop(
            if app_tls {
                Protocol::Tls
            } else {
                Protocol::Http
            },
            "the echo server saw no TLS".into(),
            false,
        );
    }
    if obs.exit_code.is_some_and(|c| c != 0) && body.is_none() {
        return hop(
            Protocol::NotReached,
            format!(
                "curl exited {}; no access log captured",
                obs.exit_code.unwrap_or_default()
            ),
            true,
        );
    }
    hop(
        if app_tls {
            Protocol::Tls
        } else {
            Protocol::Http
        },
        format!(
            "from the URL; the {} access log was not captured",
            from.label()
        ),
        true,
    )
}

fn origination(tls: Option<&Value>) -> Protocol {
    let client_cert = tls
        .and_then(|t| t["peerCertificates"].as_array())
        .is_some_and(|c| !c.is_empty());
    if client_cert {
        Protocol::MtlsOrigination
    } else {
        Protocol::TlsOrigination
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Recording;
    use crate::suite::{Suite, Workspace};

    fn path_of(recording: &str) -> Vec<(Node, Node, Protocol, bool)> {
        let ws = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let suite = Suite::load(&ws).expect("suite");
        let r = Recording::read(&ws.scenarios_dir().join("recordings").join(recording))
            .expect("recording");
        let scenario = suite
            .scenarios
            .iter()
            .find(|s| s.name() == r.scenario)
            .expect("scenario");
        let request = &scenario.requests[0];
        let obs = r.observation(&request.name.value).expect("observation");
        let facts = PathFacts {
            sidecar: true,
            local_upstream: false,
        };
        hops(request, obs, &facts)
            .into_iter()
            .map(|h| (h.from, h.to, h.protocol, h.inferred))
            .collect()
    }

    use Node::*;
    use Protocol::*;

    #[test]
    fn plain_http_through_the_gateway() {
        assert_eq!(
            path_of("gateway-http@1.22.1.json"),
            vec![
                (Client, Sidecar, Http, false),
                (Sidecar, EgressGateway, Http, false),
                (EgressGateway, Upstream, Http, false),
            ]
        );
    }

    #[test]
    fn tls_origination_at_the_gateway() {
        assert_eq!(
            path_of("gateway-tls-origination@1.22.1.json")[2],
            (EgressGateway, Upstream, TlsOrigination, false)
        );
    }

    #[test]
    fn mtls_to_the_gateway_is_read_from_xfcc() {
        let path = path_of("gateway-mtls-tls-origination@1.22.1.json");
        assert_eq!(path[1], (Sidecar, EgressGateway, Mtls, false));
        assert_eq!(path[2], (EgressGateway, Upstream, TlsOrigination, false));
    }

    #[test]
    fn passthrough_keeps_the_apps_tls() {
        assert_eq!(
            path_of("gateway-tls-passthrough@1.22.1.json"),
            vec![
                (Client, Sidecar, Tls, false),
                (Sidecar, EgressGateway, Passthrough, true),
                (EgressGateway, Upstream, Passthrough, false),
            ]
        );
    }

    #[test]
    fn without_logs_the_last_hop_is_inferred_and_says_so() {
        assert_eq!(
            path_of("no-egress-gateway@1.22.1.json"),
            vec![
                (Client, Sidecar, Http, false),
                (Sidecar, Upstream, Http, true)
            ]
        );
    }

    #[test]
    fn a_failed_handshake_is_not_drawn_as_reaching_the_upstream() {
        let path = path_of("gateway-passthrough-double-encryption@1.22.1.json");
        assert_eq!(path[1], (Sidecar, EgressGateway, Unknown, true));
        assert_eq!(path[2], (EgressGateway, Upstream, NotReached, true));
    }

    #[test]
    fn the_echo_servers_client_certificate_means_mtls_origination() {
        let tls = serde_json::json!({"version": "TLSv1.3", "peerCertificates": ["pem"]});
        assert_eq!(origination(Some(&tls)), MtlsOrigination);
        assert_eq!(origination(None), TlsOrigination);
    }
}
