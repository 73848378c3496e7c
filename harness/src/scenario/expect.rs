//! What one request must show: curl's result, echoed headers, XFCC, peer metadata,
//! and the access-log lines at the egress gateway and the client sidecar.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::matcher::Matcher;
use crate::evidence::access_log::Field;

/// The expectations of one request. Every key is optional; an absent key is not judged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default, deserialize_with = "super::exit_codes")]
    pub exit_code: Option<ExitCodes>,
    #[serde(default)]
    pub stderr: Option<Matcher>,
    /// The body curl received (trailing newlines left out): an echoed JSON, an Envoy
    /// local reply (`RBAC: access denied`, `upstream connect error ...`), a page.
    #[serde(default)]
    pub body: Option<Matcher>,
    /// Values inside a JSON body by path: `tls.serverName`, `headers.Host[0]` (keys
    /// joined by `.`, list items by `[n]`). A string is judged as is, anything else as
    /// compact JSON; a path the body lacks is observed as nothing.
    #[serde(default)]
    pub body_json: BTreeMap<String, Matcher>,
    /// How much an Envoy counter of a proxy grew while the request was sent, e.g.
    /// the egress gateway's `cluster.outbound|443||www.wikipedia.org.upstream_cx_total`
    /// (istio.io's wildcard-egress-hosts task proves the path so).
    #[serde(default)]
    pub stats: Vec<StatExpect>,
    /// Over a request's `repeat`: the share of sends that got a status, e.g.
    /// `{status: 503, at_least: 0.1}` for a circuit breaker that must trip.
    #[serde(default)]
    pub share: Vec<Share>,
    /// Bounds on curl's `%{time_total}` in seconds, e.g. `{at_least: 2.5}` for a delay
    /// a fault injection adds, `{at_most: 1}` for a timeout that must cut the wait.
    #[serde(default)]
    pub time_total: Option<TimeBounds>,
    /// HTTP status curl reports (`%{http_code}`); 0 when there was no HTTP response.
    /// A code, a matcher, or a list of matchers each for a range of Istio releases
    /// (`[{equals: 503, istio: "<1.30"}, {equals: 200, istio: ">=1.30"}]`).
    #[serde(default, deserialize_with = "super::statuses")]
    pub status: Vec<Matcher>,
    /// Headers the upstream echoed back; names ignore case.
    #[serde(default, deserialize_with = "super::case_insensitive_map")]
    pub headers: BTreeMap<String, Matcher>,
    /// Headers of the response curl received (`location` of a redirect, `server`);
    /// names ignore case, several values are judged joined by `, `.
    #[serde(default, deserialize_with = "super::case_insensitive_map")]
    pub response_headers: BTreeMap<String, Matcher>,
    /// X-Forwarded-Client-Cert: `absent`, `present` or the parts of its last element.
    #[serde(default)]
    pub xfcc: Option<Presence<XfccExpect>>,
    /// X-Envoy-Peer-Metadata-Id split into its parts.
    #[serde(default)]
    pub peer_metadata_id: Option<Presence<PeerIdExpect>>,
    /// X-Envoy-Peer-Metadata decoded; keys are top-level Struct keys (`NAMESPACE`) or
    /// `KEY.inner` for one level down (`LABELS.app`, `LABELS.service.istio.io/canonical-name`).
    #[serde(default)]
    pub peer_metadata: Option<Presence<BTreeMap<String, Matcher>>>,
    /// The line this request left in the egress gateway's access log.
    #[serde(default)]
    pub gateway_log: Option<Presence<LogExpect>>,
    /// The line this request left in the client sidecar's access log.
    #[serde(default)]
    pub sidecar_log: Option<Presence<LogExpect>>,
    /// Ambient: the connection ztunnel logged for this request (the last from the
    /// scenario's namespace to the request's host); keys are ztunnel's own
    /// (`dst.workload`, `dst.hbone_addr`, `direction`, ...).
    #[serde(default)]
    pub ztunnel_log: Option<Presence<BTreeMap<String, Matcher>>>,
    /// The TLS the upstream saw, as the harness's echo server reports it (`--upstream
    /// local` only; httpbin.org does not tell, so there it is not observed).
    #[serde(default)]
    pub upstream_tls: Option<Presence<UpstreamTlsExpect>>,
}

/// A counter of a proxy and the bounds of its growth over one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatExpect {
    pub proxy: StatProxy,
    /// The stat's full name as Envoy's `/stats` prints it.
    pub name: String,
    #[serde(default)]
    pub at_least: Option<i64>,
    #[serde(default)]
    pub at_most: Option<i64>,
}

/// Whose stats: the egress gateway's pods (summed) or the client's sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatProxy {
    Gateway,
    Sidecar,
}

impl StatExpect {
    /// The key of its delta in an observation.
    pub fn key(&self) -> String {
        format!(
            "{}:{}",
            match self.proxy {
                StatProxy::Gateway => "gateway",
                StatProxy::Sidecar => "sidecar",
            },
            self.name
        )
    }

    pub fn holds(&self, delta: i64) -> bool {
        self.at_least.is_none_or(|min| delta >= min) && self.at_most.is_none_or(|max| delta <= max)
    }

    pub fn describe(&self) -> String {
        match (self.at_least, self.at_most) {
            (Some(a), Some(b)) => format!("grows by {a} to {b}"),
            (Some(a), None) => format!("grows by at least {a}"),
            (None, Some(b)) => format!("grows by at most {b}"),
            (None, None) => "any change".into(),
        }
    }
}

/// The share of a burst's sends that got `status`, between `at_least` and `at_most`
/// (fractions of 1; either may be left out).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    pub status: u16,
    #[serde(default)]
    pub at_least: Option<f64>,
    #[serde(default)]
    pub at_most: Option<f64>,
}

impl Share {
    pub fn holds(&self, share: f64) -> bool {
        self.at_least.is_none_or(|min| share >= min) && self.at_most.is_none_or(|max| share <= max)
    }

    pub fn describe(&self) -> String {
        match (self.at_least, self.at_most) {
            (Some(a), Some(b)) => format!("between {a} and {b} of the sends"),
            (Some(a), None) => format!("at least {a} of the sends"),
            (None, Some(b)) => format!("at most {b} of the sends"),
            (None, None) => "any share".into(),
        }
    }
}

/// Bounds on an elapsed time, in seconds; either may be left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeBounds {
    pub at_least: Option<f64>,
    pub at_most: Option<f64>,
}

impl TimeBounds {
    pub fn holds(&self, seconds: f64) -> bool {
        self.at_least.is_none_or(|lo| seconds >= lo) && self.at_most.is_none_or(|hi| seconds <= hi)
    }

    pub fn describe(&self) -> String {
        match (self.at_least, self.at_most) {
            (Some(lo), Some(hi)) => format!("between {lo} s and {hi} s"),
            (Some(lo), None) => format!("at least {lo} s"),
            (None, Some(hi)) => format!("at most {hi} s"),
            (None, None) => "any time".into(),
        }
    }
}

/// What the hermetic upstream saw of the TLS connection that reached it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsExpect {
    /// `TLSv1.2`, `TLSv1.3`.
    #[serde(default)]
    pub version: Option<Matcher>,
    /// The SNI the connection carried.
    #[serde(default)]
    pub sni: Option<Matcher>,
    /// Subject of the client certificate presented (`absent` when none was).
    #[serde(default)]
    pub client_cert_subject: Option<Matcher>,
    /// SAN URIs of the client certificate, joined with `,`.
    #[serde(default)]
    pub client_cert_uri: Option<Matcher>,
}

/// Accepted exit codes of curl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitCodes(pub Vec<i32>);

impl ExitCodes {
    pub fn accepts(&self, code: i32) -> bool {
        self.0.contains(&code)
    }
}

impl fmt::Display for ExitCodes {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let codes: Vec<String> = self.0.iter().map(i32::to_string).collect();
        f.write_str(&codes.join(" or "))
    }
}

/// Fields of an access-log line, by Istio's JSON access-log names.
pub type LogExpect = BTreeMap<Field, Matcher>;

/// The parts of the last X-Forwarded-Client-Cert element (the one the nearest proxy added).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XfccExpect {
    #[serde(default)]
    pub by: Option<Matcher>,
    #[serde(default)]
    pub hash: Option<Matcher>,
    #[serde(default)]
    pub uri: Option<Matcher>,
    #[serde(default)]
    pub subject: Option<Matcher>,
    #[serde(default)]
    pub dns: Option<Matcher>,
    /// SAN URIs of the certificate in `Cert`, joined with `,`.
    #[serde(default)]
    pub cert_san_uris: Option<Matcher>,
    #[serde(default)]
    pub cert_issuer: Option<Matcher>,
    /// Demands that `Hash` is the SHA-256 of the certificate in `Cert`.
    #[serde(default)]
    pub hash_matches_cert: Option<bool>,
    /// How many elements the header has.
    #[serde(default)]
    pub elements: Option<usize>,
}

/// X-Envoy-Peer-Metadata-Id: `<proxy_type>~<ip>~<pod>.<namespace>~<domain>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerIdExpect {
    #[serde(default)]
    pub proxy_type: Option<Matcher>,
    #[serde(default)]
    pub ip: Option<Matcher>,
    #[serde(default)]
    pub pod: Option<Matcher>,
    #[serde(default)]
    pub namespace: Option<Matcher>,
    #[serde(default)]
    pub domain: Option<Matcher>,
}

/// `present`, `absent`, or a map of finer expectations (which imply presence).
#[derive(Debug, Clone)]
pub enum Presence<T> {
    Present,
    Absent,
    Fields(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Presence<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Presence<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`present`, `absent`, or a map of fields")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "present" => Ok(Presence::Present),
                    "absent" => Ok(Presence::Absent),
                    other => Err(E::custom(format!(
                        "`{other}`: expected `present`, `absent`, or a map of fields"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Presence::Fields)
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

impl Expect {
    /// Every matcher with the name of what it judges, for validation and listing.
    pub fn matchers(&self) -> Vec<(String, &Matcher)> {
        let mut out: Vec<(String, &Matcher)> = Vec::new();
        if let Some(m) = &self.stderr {
            out.push(("stderr".into(), m));
        }
        if let Some(m) = &self.body {
            out.push(("body".into(), m));
        }
        for m in &self.status {
            out.push(("status".into(), m));
        }
        for (path, m) in &self.body_json {
            out.push((format!("body_json.{path}"), m));
        }
        for (name, m) in &self.headers {
            out.push((format!("headers.{name}"), m));
        }
        for (name, m) in &self.response_headers {
            out.push((format!("response_headers.{name}"), m));
        }
        if let Some(Presence::Fields(x)) = &self.xfcc {
            let parts = [
                ("by", &x.by),
                ("hash", &x.hash),
                ("uri", &x.uri),
                ("subject", &x.subject),
                ("dns", &x.dns),
                ("cert_san_uris", &x.cert_san_uris),
                ("cert_issuer", &x.cert_issuer),
            ];
            out.extend(
                parts
                    .into_iter()
                    .filter_map(|(n, m)| m.as_ref().map(|m| (format!("xfcc.{n}"), m))),
            );
        }
        if let Some(Presence::Fields(p)) = &self.peer_metadata_id {
            let parts = [
                ("proxy_type", &p.proxy_type),
                ("ip", &p.ip),
                ("pod", &p.pod),
                ("namespace", &p.namespace),
                ("domain", &p.domain),
            ];
            out.extend(
                parts
                    .into_iter()
                    .filter_map(|(n, m)| m.as_ref().map(|m| (format!("peer_metadata_id.{n}"), m))),
            );
        }
        if let Some(Presence::Fields(keys)) = &self.peer_metadata {
            out.extend(keys.iter().map(|(k, m)| (format!("peer_metadata.{k}"), m)));
        }
        for (log, expect) in [
            ("gateway_log", &self.gateway_log),
            ("sidecar_log", &self.sidecar_log),
        ] {
            if let Some(Presence::Fields(fields)) = expect {
                out.extend(
                    fields
                        .iter()
                        .map(|(f, m)| (format!("{log}.{}", f.name()), m)),
                );
            }
        }
        out
    }

    /// Whether this request states anything at all to judge.
    pub fn is_empty(&self) -> bool {
        self.exit_code.is_none()
            && self.status.is_empty()
            && self.share.is_empty()
            && self.stats.is_empty()
            && self.time_total.is_none()
            && self.xfcc.is_none()
            && self.peer_metadata_id.is_none()
            && self.peer_metadata.is_none()
            && self.gateway_log.is_none()
            && self.sidecar_log.is_none()
            && self.matchers().is_empty()
    }
}
