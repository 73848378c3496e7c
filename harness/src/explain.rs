//! What an access-log line or an echoed body means, in words: whether the request
//! reached an upstream, and what Envoy's flags and details say happened. The hops
//! claim a kind of TLS only where the line shows it.

use serde_json::Value;

use crate::evidence::access_log::{Entry, Field};

/// One line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The line in one sentence.
    pub summary: String,
    /// Whether the request or connection got to an upstream host.
    pub reached_upstream: bool,
    /// What the flags, details and cluster mean, a sentence each.
    pub meaning: Vec<String>,
    pub hops: String,
    pub warnings: Vec<String>,
}

impl Reading {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "summary": self.summary,
            "reached_upstream": self.reached_upstream,
            "meaning": self.meaning,
            "hops": self.hops,
            "warnings": self.warnings,
        })
    }
}

/// Envoy's response flags (envoy/stream_info StreamInfo ResponseFlag short names),
/// with whether each means the request never reached an upstream host.
const FLAGS: &[(&str, bool, &str)] = &[
    (
        "NR",
        true,
        "no route (NR): no route matched, or for TCP no filter chain of the listener did",
    ),
    (
        "UH",
        true,
        "no healthy upstream (UH): the cluster had no endpoint to send to",
    ),
    (
        "UF",
        true,
        "upstream connection failure (UF): connecting to the upstream failed",
    ),
    (
        "UO",
        true,
        "upstream overflow (UO): the circuit breaker refused the request",
    ),
    (
        "NC",
        true,
        "no cluster (NC): the route named a cluster the proxy does not have",
    ),
    (
        "DPE",
        true,
        "downstream protocol error (DPE): the proxy could not read the client's request",
    ),
    (
        "UT",
        false,
        "upstream request timeout (UT): the upstream took longer than the route allows",
    ),
    (
        "UC",
        false,
        "upstream connection termination (UC): the upstream closed the connection",
    ),
    (
        "URX",
        false,
        "upstream retry limit exceeded (URX): every retry failed",
    ),
    (
        "DC",
        false,
        "downstream connection termination (DC): the client went away first",
    ),
    (
        "UAEX",
        true,
        "unauthorized by an external authorization service (UAEX)",
    ),
    (
        "RL",
        true,
        "rate limited (RL): the proxy answered 429 itself",
    ),
];

fn port(address: Option<&str>) -> Option<&str> {
    address.and_then(|a| a.rsplit_once(':')).map(|(_, p)| p)
}

/// Reads one access-log line.
pub fn read_line(e: &Entry<'_>) -> Reading {
    let get = |f| e.get(f).unwrap_or("-");
    let cluster = e.get(Field::UpstreamCluster);
    let details = e.get(Field::ResponseCodeDetails).unwrap_or_default();
    let flags: Vec<&str> = e
        .get(Field::ResponseFlags)
        .map(|f| f.split(',').collect())
        .unwrap_or_default();
    let sni = e.get(Field::RequestedServerName);
    let mut meaning = Vec::new();
    let mut stopped = false;

    if cluster == Some("BlackHoleCluster") {
        stopped = true;
        meaning.push("BlackHoleCluster: no ServiceEntry or Service registers this destination and the mesh is REGISTRY_ONLY, so the proxy dropped it; it never left the proxy".into());
    }
    if cluster == Some("PassthroughCluster") {
        meaning.push("PassthroughCluster: the destination is registered nowhere and the mesh is ALLOW_ANY, so the proxy sent it on to the original address as it was".into());
    }
    if details == "direct_response" {
        stopped = true;
        let route = e.get(Field::RouteName);
        meaning.push(match route {
            Some("block_all") => "answered by the proxy itself (direct_response, route block_all): REGISTRY_ONLY's answer for a host no ServiceEntry registers; no upstream saw it".into(),
            Some(r) => format!("answered by the proxy itself (direct_response, route {r}): a route with a direct response, no upstream saw it"),
            None => "answered by the proxy itself (direct_response): no upstream saw it".into(),
        });
    }
    if details.starts_with("filter_chain_not_found") {
        stopped = true;
        meaning.push(format!(
            "no filter chain of the listener on {} matched (SNI {}, port and transport): the proxy closed the connection",
            get(Field::DownstreamLocalAddress),
            sni.unwrap_or("-")
        ));
    }
    if details == "via_upstream" {
        meaning.push("answered by the upstream (via_upstream)".into());
    }
    for flag in &flags {
        if let Some((_, never, text)) = FLAGS.iter().find(|(f, _, _)| f == flag) {
            stopped |= never;
            meaning.push((*text).into());
        }
    }
    if let Some(reason) = e.get(Field::UpstreamTransportFailureReason) {
        meaning.push(format!(
            "the TLS (or TCP) handshake to the upstream failed: {reason}"
        ));
    }
    let reached = !stopped && e.get(Field::UpstreamHost).is_some();
    if !reached && !stopped {
        meaning.push("no upstream host is logged: it did not reach an upstream".into());
    }

    let summary = if e.is_tcp() {
        format!(
            "TCP/TLS connection, SNI {}, to {}: {} bytes sent, {} received",
            sni.unwrap_or("-"),
            cluster.unwrap_or("-"),
            get(Field::BytesSent),
            get(Field::BytesReceived)
        )
    } else {
        format!(
            "{} {} {} for {} -> {} via {}",
            get(Field::Method),
            get(Field::Path),
            get(Field::Protocol),
            get(Field::Authority),
            get(Field::ResponseCode),
            cluster.unwrap_or("-")
        )
    };
    Reading {
        summary,
        reached_upstream: reached,
        meaning,
        hops: hops(e, reached),
        warnings: Vec::new(),
    }
}

/// The path the line shows; the TLS of a leg only where the line says it.
fn hops(e: &Entry<'_>, reached: bool) -> String {
    let sni = e.get(Field::RequestedServerName);
    let into = match (sni, e.is_tcp()) {
        (Some(s), true) => format!("[TLS, SNI {s}, not terminated here]"),
        (None, true) => "[TCP, no SNI read]".to_owned(),
        (Some(s), false) => format!("[TLS terminated here, SNI {s}]"),
        (None, false) => "[plain HTTP]".to_owned(),
    };
    let listener = match port(e.get(Field::DownstreamLocalAddress)) {
        Some(p) => format!("this proxy (listener :{p})"),
        None => "this proxy".to_owned(),
    };
    if !reached {
        return format!("client -> {into} -> {listener} -> stopped here");
    }
    let out = if e.is_tcp() {
        "[the client's bytes as they came: passthrough]".to_owned()
    } else {
        "[HTTP; whether the proxy wrapped it in TLS is not in the line]".to_owned()
    };
    format!(
        "client -> {into} -> {listener} -> {out} -> {} ({})",
        e.get(Field::UpstreamCluster).unwrap_or("-"),
        e.get(Field::UpstreamHost).unwrap_or("-")
    )
}

/// Warnings about an echoed body, from `judge::explain_headers` and the raw headers.
pub fn header_warnings(explained: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let headers = &explained["headers"];
    let raw = |name: &str| {
        headers
            .as_object()
            .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
    };
    if let Some(id) = raw("X-Envoy-Peer-Metadata-Id")
        && explained["peer_metadata_id"].is_null()
    {
        out.push(format!(
            "X-Envoy-Peer-Metadata-Id `{id}` is malformed: Istio writes <proxy_type>~<ip>~<pod>.<namespace>~<domain>"
        ));
    }
    if raw("X-Envoy-Peer-Metadata").is_some() && explained["peer_metadata"].is_null() {
        out.push("X-Envoy-Peer-Metadata does not decode (base64 of a protobuf Struct)".into());
    }
    if raw("X-Forwarded-Client-Cert").is_some() && explained["xfcc"].is_null() {
        out.push("X-Forwarded-Client-Cert does not parse as Envoy writes it".into());
    }
    for (i, e) in explained["xfcc"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if e["hash_matches"] == Value::Bool(false) {
            out.push(format!(
                "X-Forwarded-Client-Cert element {}: Hash is not the SHA-256 of its Cert, so the two describe different certificates",
                i + 1
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::access_log::parse_line;

    fn read(line: &str) -> Reading {
        read_line(&parse_line(line).expect("a line"))
    }

    #[test]
    fn lines_that_never_left_the_proxy_say_so() {
        let blackhole = read(
            r#"[2024-06-21T19:50:33.667Z] "- - -" 0 UH no_healthy_upstream - "-" 0 0 0 - "-" "-" "-" "-" "-" BlackHoleCluster - 10.96.0.1:443 10.244.0.7:5555 - -"#,
        );
        assert!(!blackhole.reached_upstream);
        assert!(blackhole.meaning[0].starts_with("BlackHoleCluster: no ServiceEntry"));
        assert!(blackhole.meaning.iter().any(|m| m.contains("(UH)")));
        assert!(
            blackhole.hops.ends_with("stopped here"),
            "{}",
            blackhole.hops
        );

        let blocked = read(
            r#"[2024-06-21T19:50:33.667Z] "GET /headers HTTP/1.1" 502 - direct_response - "-" 0 0 0 - "-" "curl/8" "id" "httpbin.org" "-" - - 10.96.0.1:80 10.244.0.7:5555 - block_all"#,
        );
        assert!(!blocked.reached_upstream);
        assert!(
            blocked.meaning[0].contains("route block_all"),
            "{:?}",
            blocked.meaning
        );

        let no_chain = read(
            r#"[2024-06-21T19:50:33.667Z] "- - -" 0 NR filter_chain_not_found - "-" 0 0 0 - "-" "-" "-" "-" "-" - - 10.244.0.6:8443 10.244.0.7:5555 - -"#,
        );
        assert!(!no_chain.reached_upstream);
        assert!(
            no_chain
                .meaning
                .iter()
                .any(|m| m.contains("no filter chain"))
        );
        assert!(
            no_chain
                .meaning
                .iter()
                .any(|m| m.starts_with("no route (NR)"))
        );
    }

    #[test]
    fn tls_is_claimed_only_where_the_line_shows_it() {
        let plain = read(
            r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/2" 200 - via_upstream - "-" 0 1450 57 57 "10.244.0.7" "curl/7.83.1-DEV" "51ed62d9-1da8-4250-9923-df406ca9fd57" "httpbin.org" "3.213.1.197:80" outbound|80||httpbin.org 10.244.0.6:41144 10.244.0.6:8080 10.244.0.7:55490 - -"#,
        );
        assert!(plain.reached_upstream);
        assert_eq!(
            plain.hops,
            "client -> [plain HTTP] -> this proxy (listener :8080) -> [HTTP; whether the proxy wrapped it in TLS is not in the line] -> outbound|80||httpbin.org (3.213.1.197:80)"
        );
        let passthrough = read(
            r#"[2024-06-21T19:42:17.330Z] "- - -" 0 - - - "-" 839 5356 218 - "-" "-" "-" "-" "3.211.196.247:443" outbound|443||httpbin.org 10.244.0.6:49404 10.244.0.6:8443 10.244.0.7:38690 httpbin.org -"#,
        );
        assert!(
            passthrough
                .hops
                .contains("[TLS, SNI httpbin.org, not terminated here]")
        );
        assert!(passthrough.hops.contains("passthrough"));
        let terminated = read(
            r#"[2024-06-21T19:50:33.667Z] "GET /headers HTTP/1.1" 200 - via_upstream - "-" 0 2997 109 108 "10.244.0.7" "curl/7.83.1-DEV" "0db0a05e-6c1e-4a8a-b932-0f582340d36e" "httpbin.org" "3.211.196.247:443" outbound|443||httpbin.org 10.244.0.6:42264 10.244.0.6:8443 10.244.0.7:54554 httpbin.org -"#,
        );
        assert!(
            terminated
                .hops
                .contains("[TLS terminated here, SNI httpbin.org]")
        );
        assert!(!terminated.hops.contains("origination"));
    }

    #[test]
    fn a_wrong_hash_and_a_malformed_peer_id_are_warnings() {
        let explained = serde_json::json!({
            "peer_metadata_id": null,
            "peer_metadata": null,
            "xfcc": [{"hash_matches": false}],
            "headers": {"X-Envoy-Peer-Metadata-Id": "router-10.0.0.1", "X-Forwarded-Client-Cert": "Hash=00"},
        });
        let warnings = header_warnings(&explained);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("`router-10.0.0.1` is malformed"));
        assert!(warnings[1].contains("Hash is not the SHA-256 of its Cert"));
    }
}
