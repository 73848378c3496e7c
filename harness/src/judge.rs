//! The judge: every expectation of a request, applied to what was observed, yields a
//! verdict with what was expected, what was seen and the evidence looked at. It never
//! knows whether the observation came from a live cluster or a recording.

use std::fmt;

use semver::Version;
use serde_json::{Map, Value};

use crate::evidence::access_log::{self, Entry, Field};
use crate::evidence::headers::EchoedHeaders;
use crate::evidence::{peer_metadata, xfcc};
use crate::recording::{Context, Observation};
use crate::scenario::{Expect, Matcher, Presence, Request, Scenario};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// The evidence was not captured (e.g. a recording without sidecar logs).
    NotObserved,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What was judged, e.g. `gateway_log.upstream_cluster`.
    pub subject: String,
    pub expected: String,
    /// `None` when the thing was not there.
    pub observed: Option<String>,
    pub outcome: Outcome,
    /// The header or log line looked at.
    pub evidence: String,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let tag = match self.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::NotObserved => "not observed",
        };
        let observed = self
            .observed
            .as_deref()
            .map_or_else(|| "nothing".to_owned(), |o| format!("{o:?}"));
        write!(
            f,
            "{tag} {}: expected {}, observed {observed}",
            self.subject, self.expected
        )?;
        if self.outcome == Outcome::Fail && !self.evidence.is_empty() {
            write!(f, "\n    in: {}", self.evidence)?;
        }
        Ok(())
    }
}

/// The verdicts of one request as a whole.
pub fn passed(verdicts: &[Verdict]) -> bool {
    verdicts.iter().all(|v| v.outcome != Outcome::Fail)
        && verdicts.iter().any(|v| v.outcome == Outcome::Pass)
}

struct Judge<'a> {
    vars: &'a dyn Fn(&str) -> Option<String>,
    istio: &'a Version,
    out: Vec<Verdict>,
}

impl Judge<'_> {
    fn push(
        &mut self,
        subject: String,
        expected: String,
        observed: Option<String>,
        ok: bool,
        evidence: &str,
    ) {
        let outcome = if ok { Outcome::Pass } else { Outcome::Fail };
        self.out.push(Verdict {
            subject,
            expected,
            observed,
            outcome,
            evidence: evidence.to_owned(),
        });
    }

    fn not_observed(&mut self, subject: String, expected: String, why: &str) {
        self.out.push(Verdict {
            subject,
            expected,
            observed: None,
            outcome: Outcome::NotObserved,
            evidence: why.to_owned(),
        });
    }

    fn matcher(&mut self, subject: String, m: &Matcher, observed: Option<String>, evidence: &str) {
        if !m.applies_to(self.istio) {
            return;
        }
        let result = m.check(observed.as_deref(), self.vars);
        let expected = m.describe(self.vars);
        self.push(subject, expected, observed, result.is_ok(), evidence);
    }

    fn presence<T>(
        &mut self,
        subject: &str,
        p: &Presence<T>,
        seen: Option<String>,
        evidence: &str,
    ) -> bool {
        match p {
            Presence::Absent => {
                self.push(
                    subject.into(),
                    "absent".into(),
                    seen.clone(),
                    seen.is_none(),
                    evidence,
                );
                false
            }
            Presence::Present => {
                self.push(
                    subject.into(),
                    "present".into(),
                    seen.clone(),
                    seen.is_some(),
                    evidence,
                );
                false
            }
            Presence::Fields(_) if seen.is_none() => {
                self.push(subject.into(), "present".into(), None, false, evidence);
                false
            }
            Presence::Fields(_) => true,
        }
    }
}

/// Judges a scenario's `status:` against the objects read (`Kind/name` → object,
/// `None` when it does not exist).
pub fn judge_status(
    expect: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, Matcher>>,
    objects: &std::collections::BTreeMap<String, Option<Value>>,
    istio: &Version,
) -> Vec<Verdict> {
    let no_vars = |_: &str| None;
    let mut j = Judge {
        vars: &no_vars,
        istio,
        out: Vec::new(),
    };
    for (id, keys) in expect {
        let object = objects.get(id).and_then(Option::as_ref);
        for (key, m) in keys {
            let seen = crate::evidence::status::read(object, key);
            j.matcher(format!("status.{id}.{key}"), m, seen.value, &seen.evidence);
        }
    }
    j.out
}

/// The run's context as seen by the client that sends `request` (its pod and
/// service account fill `${client_pod}` and `${service_account}`).
pub fn context_for(scenario: &Scenario, request: &Request, run: &Context) -> Context {
    if request.client.is_none() {
        return run.clone();
    }
    let (pod, service_account) = scenario.client_of(request);
    let namespace = scenario
        .client_for(request)
        .map_or_else(|| run.namespace.clone(), |c| c.namespace_in(&run.namespace));
    Context {
        namespace,
        client_pod: pod.to_owned(),
        service_account: service_account.to_owned(),
        ..run.clone()
    }
}

/// Judges one request's expectations against one observation.
pub fn judge(
    request: &Request,
    obs: &Observation,
    context: &Context,
    istio: &Version,
) -> Vec<Verdict> {
    let vars = |name: &str| context.var(name);
    let mut j = Judge {
        vars: &vars,
        istio,
        out: Vec::new(),
    };
    let e: &Expect = &request.expect;

    if let Some(codes) = &e.exit_code {
        match obs.exit_code {
            Some(code) => {
                let stderr = obs.stderr.as_deref().unwrap_or("");
                // The line curl printed for its exit code, when it printed one.
                let said = crate::curl::error_line(stderr)
                    .filter(|e| i64::from(e.code) == i64::from(code))
                    .map_or(stderr, |e| e.message);
                j.push(
                    "exit_code".into(),
                    codes.to_string(),
                    Some(code.to_string()),
                    codes.accepts(code),
                    said,
                );
            }
            None => j.not_observed("exit_code".into(), codes.to_string(), "not captured"),
        }
    }
    for m in &e.status {
        match obs.http_code {
            Some(code) => j.matcher("status".into(), m, Some(code.to_string()), ""),
            None if m.applies_to(istio) => {
                j.not_observed("status".into(), m.describe(&vars), "not captured");
            }
            None => {}
        }
    }
    for (name, m) in &e.response_headers {
        let subject = format!("response_headers.{name}");
        match &obs.response_headers {
            Some(headers) => {
                let value = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.join(", "));
                j.matcher(subject, m, value, "curl's %{header_json}");
            }
            None if m.applies_to(istio) => j.not_observed(
                subject,
                m.describe(&vars),
                "curl printed no %{header_json} (curl older than 7.83?)",
            ),
            None => {}
        }
    }
    if let Some(bounds) = &e.time_total {
        match obs.time_total {
            Some(t) => j.push(
                "time_total".into(),
                bounds.describe(),
                Some(format!("{t} s")),
                bounds.holds(t),
                "curl's %{time_total}",
            ),
            None => j.not_observed("time_total".into(), bounds.describe(), "not captured"),
        }
    }
    if let Some(m) = &e.body {
        match &obs.body {
            Some(body) => {
                let body = body.trim_end_matches(['\r', '\n']);
                j.matcher("body".into(), m, Some(body.to_owned()), "")
            }
            None => j.not_observed("body".into(), m.describe(&vars), "not captured"),
        }
    }
    for stat in &e.stats {
        let subject = format!("stats.{}", stat.key());
        match obs.stat_deltas.as_ref().and_then(|d| d.get(&stat.key())) {
            Some(delta) => j.push(
                subject,
                stat.describe(),
                Some(format!("grew by {delta}")),
                stat.holds(*delta),
                "Envoy /stats before and after the attempt",
            ),
            None => j.not_observed(subject, stat.describe(), "the stats were not read"),
        }
    }
    for share in &e.share {
        let subject = format!("share.{}", share.status);
        match &obs.statuses {
            Some(all) if !all.is_empty() => {
                let hits = all.iter().filter(|s| **s == share.status).count();
                #[allow(clippy::cast_precision_loss)]
                let part = hits as f64 / all.len() as f64;
                j.push(
                    subject,
                    share.describe(),
                    Some(format!("{hits} of {} ({:.1} %)", all.len(), part * 100.0)),
                    share.holds(part),
                    "the statuses of the burst",
                );
            }
            _ => j.not_observed(subject, share.describe(), "no burst was sent (`repeat`)"),
        }
    }
    if !e.body_json.is_empty() {
        let json = obs
            .body
            .as_deref()
            .map(|b| serde_json::from_str::<Value>(b.trim()));
        for (path, m) in &e.body_json {
            let subject = format!("body_json.{path}");
            match &json {
                Some(Ok(json)) => {
                    let found = json_path(json, path).map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                    j.matcher(subject, m, found, "");
                }
                Some(Err(e)) if m.applies_to(istio) => j.not_observed(
                    subject,
                    m.describe(&vars),
                    &format!("the body is not JSON: {e}"),
                ),
                Some(Err(_)) => {}
                None => j.not_observed(subject, m.describe(&vars), "not captured"),
            }
        }
    }
    if let Some(m) = &e.stderr {
        match &obs.stderr {
            Some(stderr) => j.matcher(
                "stderr".into(),
                m,
                Some(stderr.trim_end().to_owned()),
                stderr.trim_end(),
            ),
            None => j.not_observed("stderr".into(), m.describe(&vars), "not captured"),
        }
    }
    judge_headers(&mut j, e, obs);
    judge_upstream_tls(&mut j, e, obs, context);
    // A proxied request's sidecar line names the proxy; any other line, the site.
    let sidecar_host = log_host(request);
    let host = url_host(&request.url.value);
    for (name, expect, lines) in [
        ("gateway_log", &e.gateway_log, &obs.gateway_log),
        ("sidecar_log", &e.sidecar_log, &obs.sidecar_log),
    ] {
        let Some(expect) = expect else { continue };
        let Some(lines) = lines else {
            j.not_observed(
                name.into(),
                "a line of this request".into(),
                "log not captured",
            );
            continue;
        };
        let found = find_line(
            lines,
            obs,
            if name == "sidecar_log" {
                &sidecar_host
            } else {
                &host
            },
        );
        let raw = found.as_ref().map(|(raw, _)| raw.to_string());
        if j.presence(name, expect, raw.clone(), raw.as_deref().unwrap_or(""))
            && let (Presence::Fields(fields), Some((raw, entry))) = (expect, &found)
        {
            for (field, m) in fields {
                j.matcher(
                    format!("{name}.{}", field.name()),
                    m,
                    entry.get(*field).map(str::to_owned),
                    raw,
                );
            }
        }
    }
    judge_ztunnel(&mut j, e, obs, context, &host);
    j.out
}

fn judge_ztunnel(j: &mut Judge<'_>, e: &Expect, obs: &Observation, context: &Context, host: &str) {
    let Some(expect) = &e.ztunnel_log else { return };
    let Some(lines) = &obs.ztunnel_log else {
        j.not_observed(
            "ztunnel_log".into(),
            "this request's connection".into(),
            "ztunnel's log not captured",
        );
        return;
    };
    let found = crate::evidence::ztunnel_log::find(lines, &context.namespace, host);
    let raw = found.as_ref().map(|(raw, _)| (*raw).to_owned());
    if j.presence(
        "ztunnel_log",
        expect,
        raw.clone(),
        raw.as_deref().unwrap_or(""),
    ) && let (Presence::Fields(fields), Some((raw, c))) = (expect, &found)
    {
        for (key, m) in fields {
            j.matcher(
                format!("ztunnel_log.{key}"),
                m,
                c.fields.get(key).cloned(),
                raw,
            );
        }
    }
}

/// What echo-basic reports under `tls` (kubernetes-sigs/gateway-api
/// conformance/echo-basic/echo-basic.go, TLSAssertions): `None` when the request did
/// not arrive over TLS.
fn upstream_tls(body: &str) -> Result<Option<Value>, String> {
    let json: Value =
        serde_json::from_str(body.trim()).map_err(|e| format!("the body is not JSON: {e}"))?;
    Ok(json.get("tls").filter(|t| !t.is_null()).cloned())
}

fn judge_upstream_tls(j: &mut Judge<'_>, e: &Expect, obs: &Observation, context: &Context) {
    let Some(p) = &e.upstream_tls else { return };
    if context.upstream.as_deref() != Some("local") {
        j.not_observed(
            "upstream_tls".into(),
            "the TLS the upstream saw".into(),
            "only the harness's echo server reports it (--upstream local)",
        );
        return;
    }
    let Some(body) = &obs.body else {
        j.not_observed(
            "upstream_tls".into(),
            "an echoed body".into(),
            "body not captured",
        );
        return;
    };
    let excerpt: String = body.chars().take(200).collect();
    let tls = match upstream_tls(body) {
        Ok(tls) => tls,
        // Not the echo server's answer (a proxy's own reply): the echo server saw
        // nothing, which is what `absent` asks.
        Err(_) if matches!(p, Presence::Absent) => None,
        Err(why) => {
            j.push(
                "upstream_tls".into(),
                "an echo-basic body".into(),
                Some(why),
                false,
                &excerpt,
            );
            return;
        }
    };
    let seen = tls
        .as_ref()
        .map(|t| t["version"].as_str().unwrap_or("TLS").to_owned());
    let evidence = tls.as_ref().map(Value::to_string).unwrap_or_default();
    if !j.presence("upstream_tls", p, seen, &evidence) {
        return;
    }
    let (Presence::Fields(want), Some(tls)) = (p, tls) else {
        return;
    };
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let client = tls["peerCertificates"]
        .as_array()
        .and_then(|certs| certs.first())
        .and_then(Value::as_str)
        .map(xfcc::cert_info);
    let (subject, uris) = match client {
        Some(Ok(info)) => (Some(info.subject), Some(info.san_uris.join(","))),
        Some(Err(why)) => (Some(format!("unreadable certificate: {why}")), None),
        None => (None, None),
    };
    let parts = [
        ("version", &want.version, text(&tls["version"])),
        ("sni", &want.sni, text(&tls["serverName"])),
        ("client_cert_subject", &want.client_cert_subject, subject),
        ("client_cert_uri", &want.client_cert_uri, uris),
    ];
    for (part, m, seen) in parts {
        if let Some(m) = m {
            j.matcher(format!("upstream_tls.{part}"), m, seen, &evidence);
        }
    }
}

fn judge_headers(j: &mut Judge<'_>, e: &Expect, obs: &Observation) {
    let wants_headers = !e.headers.is_empty()
        || e.xfcc.is_some()
        || e.peer_metadata_id.is_some()
        || e.peer_metadata.is_some();
    if !wants_headers {
        return;
    }
    let Some(body) = &obs.body else {
        j.not_observed(
            "headers".into(),
            "an echoed body".into(),
            "body not captured",
        );
        return;
    };
    // An empty body echoed nothing: a proxy's own answer (direct_response 502) or
    // no HTTP at all. Headers are then absent, not unreadable.
    let headers = match EchoedHeaders::parse(body) {
        Ok(h) => h,
        Err(_) if body.trim().is_empty() => EchoedHeaders::default(),
        Err(why) => {
            let excerpt: String = body.chars().take(200).collect();
            j.push(
                "headers".into(),
                "a body echoing the request headers".into(),
                Some(why),
                false,
                &excerpt,
            );
            return;
        }
    };
    for (name, m) in &e.headers {
        let seen = headers.get(name);
        let evidence = seen
            .as_ref()
            .map(|v| format!("{name}: {v}"))
            .unwrap_or_default();
        j.matcher(format!("headers.{name}"), m, seen, &evidence);
    }
    if let Some(p) = &e.xfcc {
        let raw = headers.get("X-Forwarded-Client-Cert");
        let evidence = raw.clone().unwrap_or_default();
        if j.presence("xfcc", p, raw.clone(), &evidence)
            && let (Presence::Fields(x), Some(raw)) = (p, raw)
        {
            match xfcc::parse(&raw) {
                Err(why) => j.push(
                    "xfcc".into(),
                    "a well-formed header".into(),
                    Some(why),
                    false,
                    &raw,
                ),
                Ok(elements) => judge_xfcc(j, x, &elements, &raw),
            }
        }
    }
    if let Some(p) = &e.peer_metadata_id {
        let raw = headers.get("X-Envoy-Peer-Metadata-Id");
        let evidence = raw.clone().unwrap_or_default();
        if j.presence("peer_metadata_id", p, raw.clone(), &evidence)
            && let (Presence::Fields(want), Some(raw)) = (p, raw)
        {
            match peer_metadata::PeerId::parse(&raw) {
                Err(why) => j.push(
                    "peer_metadata_id".into(),
                    "a node id".into(),
                    Some(why),
                    false,
                    &raw,
                ),
                Ok(id) => {
                    let parts = [
                        ("proxy_type", &want.proxy_type, &id.proxy_type),
                        ("ip", &want.ip, &id.ip),
                        ("pod", &want.pod, &id.pod),
                        ("namespace", &want.namespace, &id.namespace),
                        ("domain", &want.domain, &id.domain),
                    ];
                    for (part, m, seen) in parts {
                        if let Some(m) = m {
                            j.matcher(
                                format!("peer_metadata_id.{part}"),
                                m,
                                Some(seen.clone()),
                                &raw,
                            );
                        }
                    }
                }
            }
        }
    }
    if let Some(p) = &e.peer_metadata {
        let raw = headers.get("X-Envoy-Peer-Metadata");
        let excerpt = raw
            .as_deref()
            .map(|r| r.chars().take(80).collect::<String>())
            .unwrap_or_default();
        if j.presence("peer_metadata", p, raw.clone(), &excerpt)
            && let (Presence::Fields(keys), Some(raw)) = (p, raw)
        {
            match peer_metadata::decode(&raw) {
                Err(why) => j.push(
                    "peer_metadata".into(),
                    "a base64 protobuf Struct".into(),
                    Some(why),
                    false,
                    &excerpt,
                ),
                Ok(decoded) => {
                    let shown = Value::Object(decoded.clone()).to_string();
                    for (key, m) in keys {
                        j.matcher(
                            format!("peer_metadata.{key}"),
                            m,
                            peer_metadata::lookup(&decoded, key),
                            &shown,
                        );
                    }
                }
            }
        }
    }
}

fn judge_xfcc(
    j: &mut Judge<'_>,
    x: &crate::scenario::XfccExpect,
    elements: &[xfcc::Element],
    raw: &str,
) {
    if let Some(n) = x.elements {
        j.push(
            "xfcc.elements".into(),
            n.to_string(),
            Some(elements.len().to_string()),
            elements.len() == n,
            raw,
        );
    }
    let Some(last) = elements.last() else { return };
    let joined = |v: &[String]| (!v.is_empty()).then(|| v.join(","));
    let cert = last.cert();
    let cert_ok = cert.as_ref().and_then(|c| c.as_ref().ok());
    let parts = [
        ("by", &x.by, joined(&last.by)),
        ("hash", &x.hash, last.hash.clone()),
        ("uri", &x.uri, joined(&last.uri)),
        ("subject", &x.subject, last.subject.clone()),
        ("dns", &x.dns, joined(&last.dns)),
        (
            "cert_san_uris",
            &x.cert_san_uris,
            cert_ok.and_then(|c| joined(&c.san_uris)),
        ),
        (
            "cert_issuer",
            &x.cert_issuer,
            cert_ok.map(|c| c.issuer.clone()),
        ),
    ];
    for (part, m, seen) in parts {
        if let Some(m) = m {
            j.matcher(format!("xfcc.{part}"), m, seen, raw);
        }
    }
    if let Some(Err(why)) = &cert
        && (x.cert_san_uris.is_some()
            || x.cert_issuer.is_some()
            || x.hash_matches_cert == Some(true))
    {
        j.push(
            "xfcc.cert".into(),
            "a parseable certificate".into(),
            Some(why.clone()),
            false,
            raw,
        );
    }
    if let Some(want) = x.hash_matches_cert {
        let seen = last.hash_matches();
        let described = |b: Option<bool>| match b {
            Some(true) => "Hash = sha256(Cert)".to_owned(),
            Some(false) => "Hash != sha256(Cert)".to_owned(),
            None => "no Hash or no Cert".to_owned(),
        };
        j.push(
            "xfcc.hash_matches_cert".into(),
            described(Some(want)),
            Some(described(seen)),
            seen == Some(want),
            raw,
        );
    }
}

/// The log line a request left: the one carrying its request id, or for TCP/TLS
/// passthrough (no request id) the last connection line whose SNI is the request's host.
pub fn find_line<'a>(
    lines: &'a [String],
    obs: &Observation,
    host: &str,
) -> Option<(&'a str, Entry<'a>)> {
    let parsed: Vec<(&str, Entry<'a>)> = lines
        .iter()
        .filter_map(|l| access_log::parse_line(l).ok().map(|e| (l.as_str(), e)))
        .collect();
    // The probe rides in the User-Agent, which Envoy logs and never rewrites; the
    // egress gateway replaces x-request-id from Istio 1.25 (it treats the sidecar as
    // an external client), so the id alone finds no gateway line there.
    if let Some(probe) = obs.probe.as_deref()
        && let Some(hit) = parsed
            .iter()
            .rev()
            .find(|(_, e)| e.get(Field::UserAgent).is_some_and(|ua| ua.contains(probe)))
    {
        return Some(hit.clone());
    }
    if let Some(id) = obs.request_id.as_deref()
        && let Some(hit) = parsed.iter().rev().find(|(_, e)| {
            e.get(Field::RequestId)
                .is_some_and(|logged| same_request_id(logged, id))
        })
    {
        return Some(hit.clone());
    }
    // A TCP or TLS line carries no id: it must have started with this attempt or
    // later (START_TIME in ms; a second of slack for the proxy's clock), and name the
    // host as SNI or in its cluster.
    let sent = obs
        .sent_at
        .as_deref()
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok());
    let recent = |e: &Entry<'_>| match (sent, e.get(Field::StartTime)) {
        (Some(sent), Some(start)) => start
            .parse::<k8s_openapi::jiff::Timestamp>()
            .is_ok_and(|start| start >= sent - k8s_openapi::jiff::SignedDuration::from_secs(1)),
        _ => true,
    };
    let tcp: Vec<&(&str, Entry<'a>)> = parsed
        .iter()
        .rev()
        .filter(|(_, e)| e.is_tcp() && recent(e))
        .collect();
    // A short name (a proxy's Service, `squid`) names the cluster of its FQDN.
    let names_host = |e: &Entry<'_>| {
        e.get(Field::UpstreamCluster).is_some_and(|c| {
            c.ends_with(&format!("||{host}"))
                || (!host.contains('.') && c.contains(&format!("||{host}.")))
        })
    };
    if let Some(hit) = tcp
        .iter()
        .find(|(_, e)| e.get(Field::RequestedServerName) == Some(host) && names_host(e))
        .or_else(|| {
            tcp.iter()
                .find(|(_, e)| e.get(Field::RequestedServerName) == Some(host))
        })
    {
        return Some((*hit).clone());
    }
    // A TCP line without SNI (plain TCP, or TLS on a port Istio reads as TCP): it
    // started with this attempt or later, and its cluster names the host
    // (`outbound|<port>||host`) or, on PassthroughCluster, its upstream is the URL's own
    // address (the original destination, kept by passthrough). The newest such line wins.
    let passthrough_to_host = |e: &Entry<'_>| {
        e.get(Field::UpstreamCluster) == Some("PassthroughCluster")
            && e.get(Field::UpstreamHost).is_some_and(|upstream| {
                upstream
                    .rsplit_once(':')
                    .is_some_and(|(address, _)| address.trim_matches(['[', ']']) == host)
            })
    };
    if let Some(hit) = tcp.iter().find(|(_, e)| {
        e.get(Field::RequestedServerName).is_none() && (names_host(e) || passthrough_to_host(e))
    }) {
        return Some((*hit).clone());
    }
    // REGISTRY_ONLY drops TLS into the BlackHoleCluster before any SNI is read: that
    // line has no server name (istio/istio pilot/pkg/networking/core/listener.go,
    // blackhole filter chain). The logs are read from the attempt's start on.
    tcp.into_iter()
        .find(|(_, e)| {
            e.get(Field::RequestedServerName).is_none()
                && e.get(Field::UpstreamCluster) == Some("BlackHoleCluster")
        })
        .cloned()
}

#[cfg(test)]
mod correlation_tests {
    use super::*;

    #[test]
    fn a_request_through_a_proxy_is_found_by_the_proxy_s_line() {
        let request = |args: &str| {
            let text = format!(
                "name: x\ndescription: d\nrequests:\n  - name: r\n    url: https://en.wikipedia.org/\n    curl_args: {args}\n    expect: {{status: 200}}\n"
            );
            crate::scenario::load_str(&text, std::path::Path::new("x.yaml"))
                .unwrap()
                .requests
                .remove(0)
        };
        for args in [
            r#"[--proxy, "http://squid:3128"]"#,
            r#"[-x, "squid:3128"]"#,
            r#"["--proxy=http://squid:3128"]"#,
            r#"["-xsquid:3128"]"#,
        ] {
            assert_eq!(log_host(&request(args)), "squid", "{args}");
        }
        assert_eq!(log_host(&request("[--insecure]")), "en.wikipedia.org");
        let obs = Observation {
            sent_at: Some("2026-12-01T12:00:00Z".into()),
            ..Observation::default()
        };
        let tunnel = r#"[2026-12-01T12:00:00.200Z] "- - -" 0 - - - "-" 702 87599 92 - "-" "-" "-" "-" "10.244.0.12:3128" outbound|3128||squid.demo.svc.cluster.local 10.244.0.7:44478 10.96.130.7:3128 10.244.0.7:44476 - -"#;
        let lines = vec![tunnel.to_owned()];
        assert!(find_line(&lines, &obs, "squid").is_some());
        assert!(find_line(&lines, &obs, "en.wikipedia.org").is_none());
        // A dotted host never matches a longer name by prefix.
        assert!(find_line(&lines, &obs, "squid.demo").is_none());
        // Judged: the sidecar's line by the proxy, the gateway's by the site.
        let s = crate::scenario::load_str(
            "name: x\ndescription: d\nrequests:\n  - name: r\n    url: https://en.wikipedia.org/\n    curl_args: [--proxy, \"http://squid:3128\"]\n    expect:\n      sidecar_log: {upstream_cluster: {matches: \"squid\"}}\n      gateway_log: {requested_server_name: {equals: en.wikipedia.org}}\n",
            std::path::Path::new("x.yaml"),
        )
        .unwrap();
        let at_gateway = r#"[2026-12-01T12:00:00.300Z] "- - -" 0 - - - "-" 940 5946 156 - "-" "-" "-" "-" "172.18.0.9:443" outbound|443||en.wikipedia.org 10.244.0.6:48712 10.244.0.6:8443 10.244.0.12:55490 en.wikipedia.org -"#;
        let obs = Observation {
            sidecar_log: Some(vec![tunnel.to_owned()]),
            gateway_log: Some(vec![at_gateway.to_owned()]),
            ..obs
        };
        let context = super::tests::context("x", None);
        let v = judge(&s.requests[0], &obs, &context, &Version::new(1, 30, 3));
        assert!(v.iter().all(|v| v.outcome == Outcome::Pass), "{v:?}");
    }

    #[test]
    fn a_share_is_judged_over_every_send_of_the_burst() {
        let s = crate::scenario::load_str(
            "name: x\ndescription: d\nrequests:\n  - name: r\n    url: http://httpbin.org/\n    repeat: {count: 4, concurrency: 2}\n    expect:\n      share:\n        - {status: 503, at_least: 0.5}\n        - {status: 200, at_most: 0.25}\n",
            std::path::Path::new("x.yaml"),
        )
        .unwrap();
        let context = super::tests::context("x", None);
        let judged = |statuses: Option<Vec<u16>>| {
            let obs = Observation {
                statuses,
                ..Observation::default()
            };
            judge(&s.requests[0], &obs, &context, &Version::new(1, 30, 3))
                .into_iter()
                .map(|v| (v.subject, v.outcome))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            judged(Some(vec![200, 503, 503, 0])),
            vec![
                ("share.503".to_owned(), Outcome::Pass),
                ("share.200".to_owned(), Outcome::Pass)
            ]
        );
        assert_eq!(
            judged(Some(vec![200, 200, 503, 0])),
            vec![
                ("share.503".to_owned(), Outcome::Fail),
                ("share.200".to_owned(), Outcome::Fail)
            ]
        );
        assert!(judged(None).iter().all(|(_, o)| *o == Outcome::NotObserved));
    }

    #[test]
    fn json_paths_reach_keys_and_list_items() {
        let body: Value = serde_json::from_str(
            r#"{"headers": {"Host": ["httpbin.org"], "X": ["a", "b"]}, "tls": {"serverName": "en.wikipedia.org", "n": 2}}"#,
        )
        .unwrap();
        assert_eq!(
            json_path(&body, "tls.serverName"),
            Some(&Value::from("en.wikipedia.org"))
        );
        assert_eq!(json_path(&body, "headers.X[1]"), Some(&Value::from("b")));
        assert_eq!(json_path(&body, "tls.n"), Some(&Value::from(2)));
        for missing in ["tls.version", "headers.X[2]", "headers.X[x]", "nothing"] {
            assert_eq!(json_path(&body, missing), None, "{missing}");
        }
        // Judged: a path the body lacks fails, a matching one passes.
        let s = crate::scenario::load_str(
            "name: x\ndescription: d\nrequests:\n  - name: r\n    url: https://httpbin.org/headers\n    expect:\n      body_json:\n        tls.serverName: {equals: en.wikipedia.org}\n        tls.version: present\n",
            std::path::Path::new("x.yaml"),
        )
        .unwrap();
        let obs = Observation {
            body: Some(body.to_string()),
            ..Observation::default()
        };
        let context = super::tests::context("x", None);
        let v = judge(&s.requests[0], &obs, &context, &Version::new(1, 30, 3));
        let outcome = |subject: &str| {
            v.iter()
                .find(|v| v.subject == subject)
                .map(|v| v.outcome.clone())
        };
        assert_eq!(outcome("body_json.tls.serverName"), Some(Outcome::Pass));
        assert_eq!(outcome("body_json.tls.version"), Some(Outcome::Fail));
    }

    #[test]
    fn a_tcp_line_without_sni_is_matched_by_its_cluster_or_its_original_destination() {
        let obs = Observation {
            sent_at: Some("2026-12-01T12:00:00Z".into()),
            ..Observation::default()
        };
        let line = |start: &str, upstream: &str, cluster: &str| {
            format!(
                r#"[{start}] "- - -" 0 - - - "-" 78 612 3 - "-" "-" "-" "-" "{upstream}" {cluster} 10.244.0.7:38112 {upstream} 10.244.0.7:55490 - -"#
            )
        };
        let earlier = line(
            "2026-12-01T11:59:50.000Z",
            "172.18.0.9:80",
            "outbound|80||httpbin.org",
        );
        let other = line(
            "2026-12-01T12:00:00.100Z",
            "172.18.0.7:80",
            "outbound|80||example.org",
        );
        let ours = line(
            "2026-12-01T12:00:00.200Z",
            "172.18.0.9:80",
            "outbound|80||httpbin.org",
        );
        let lines = vec![earlier.clone(), ours.clone(), other.clone()];
        assert_eq!(
            find_line(&lines, &obs, "httpbin.org").map(|(l, _)| l),
            Some(ours.as_str())
        );
        // Before this attempt: another attempt's line, never this one's.
        assert!(find_line(&[earlier], &obs, "httpbin.org").is_none());
        // Passthrough keeps the address the client dialled.
        let passthrough = line(
            "2026-12-01T12:00:00.300Z",
            "10.0.0.5:3306",
            "PassthroughCluster",
        );
        let lines = vec![other, passthrough.clone()];
        assert_eq!(
            find_line(&lines, &obs, "10.0.0.5").map(|(l, _)| l),
            Some(passthrough.as_str())
        );
        assert!(find_line(&lines, &obs, "10.0.0.6").is_none());
    }

    fn tcp_line(start: &str, cluster: &str) -> String {
        format!(
            r#"[{start}] "- - -" 0 - - - "-" 940 5946 156 - "-" "-" "-" "-" "172.18.0.9:443" {cluster} 10.244.0.6:48712 10.244.0.6:8443 10.244.0.7:55490 httpbin.org -"#
        )
    }

    #[test]
    fn a_route_that_never_attached_is_judged_on_its_status() {
        let s = crate::scenario::load_str(
            "name: x\ndescription: d\nstatus:\n  TLSRoute/forward:\n    Accepted: {equals: \"True\"}\n  Gateway/egress:\n    attachedRoutes.tls: {equals: \"1\"}\nrequests:\n  - name: r\n    url: https://httpbin.org/headers\n    expect: {exit_code: 0}\n",
            std::path::Path::new("x.yaml"),
        )
        .unwrap();
        let mut objects = std::collections::BTreeMap::new();
        objects.insert(
            "TLSRoute/forward".to_owned(),
            Some(serde_json::json!({"spec": {}})),
        );
        objects.insert(
            "Gateway/egress".to_owned(),
            Some(serde_json::json!({"status": {"listeners": [{"name": "tls", "attachedRoutes": 0}]}})),
        );
        let v = judge_status(&s.status, &objects, &Version::new(1, 30, 3));
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|v| v.outcome == Outcome::Fail), "{v:?}");
        assert_eq!(v[0].subject, "status.Gateway/egress.attachedRoutes.tls");
        assert_eq!(v[0].observed.as_deref(), Some("0"));
        assert_eq!(v[1].subject, "status.TLSRoute/forward.Accepted");
        assert_eq!(v[1].observed, None);
        assert!(
            v[1].evidence.contains("no Accepted condition"),
            "{}",
            v[1].evidence
        );
    }

    #[test]
    fn a_tcp_line_is_taken_only_from_the_attempt_on_and_for_its_host() {
        let earlier = tcp_line("2026-12-01T12:00:00.000Z", "outbound|443||httpbin.org");
        let other_host = tcp_line("2026-12-01T12:00:10.100Z", "outbound|443||other.example");
        let this = tcp_line("2026-12-01T12:00:10.050Z", "outbound|443||httpbin.org");
        let obs = Observation {
            sent_at: Some("2026-12-01T12:00:10.000Z".into()),
            ..Observation::default()
        };
        let lines = vec![earlier.clone(), this.clone(), other_host];
        assert_eq!(
            find_line(&lines, &obs, "httpbin.org").map(|(l, _)| l),
            Some(this.as_str())
        );
        assert!(
            find_line(std::slice::from_ref(&earlier), &obs, "httpbin.org").is_none(),
            "a line from before the attempt is another attempt's"
        );
        let recorded = Observation::default();
        assert!(
            find_line(&[earlier], &recorded, "httpbin.org").is_some(),
            "recordings without a send time keep the SNI match"
        );
    }
}

/// Whether a logged x-request-id is the one sent. Envoy marks a sampled trace by
/// rewriting character 14 of the UUID (envoy source/common/http/request_id_extension_uuid_impl.cc,
/// setTraceReason), so that character is not compared.
pub fn same_request_id(logged: &str, sent: &str) -> bool {
    logged.len() == sent.len()
        && logged
            .bytes()
            .zip(sent.bytes())
            .enumerate()
            .all(|(i, (a, b))| i == 14 || a == b)
}

/// The value at `path` (`a.b[0].c`) in `json`, if there is one.
pub fn json_path<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = json;
    for segment in path.split('.') {
        let (key, indexes) = segment
            .split_once('[')
            .map_or((segment, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            at = at.get(key)?;
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            let n: usize = index.strip_suffix(']')?.parse().ok()?;
            at = at.get(n)?;
        }
    }
    Some(at)
}

/// The host a request's log lines name: the proxy's when curl is told to use one
/// (`-x`/`--proxy`: the sidecar sees a CONNECT tunnel to it, TCP), else the URL's.
pub fn log_host(request: &Request) -> String {
    let args: Vec<&str> = request.curl_args.iter().map(|a| a.value.as_str()).collect();
    let proxy = args.iter().enumerate().find_map(|(i, a)| match *a {
        "-x" | "--proxy" => args.get(i + 1).copied(),
        _ => a
            .strip_prefix("--proxy=")
            .or_else(|| a.strip_prefix("-x").filter(|rest| !rest.is_empty())),
    });
    url_host(proxy.unwrap_or(&request.url.value))
}

/// The host of an `http(s)://host[:port]/path` URL.
pub fn url_host(url: &str) -> String {
    let (_, host) = url_parts(url);
    host.split(':').next().unwrap_or(host).to_owned()
}

/// The port a request URL connects to: its own, or its scheme's (the schemes a
/// scenario may use: scenario::load checks them).
pub fn url_port(url: &str) -> Option<u64> {
    let (scheme, host_port) = url_parts(url);
    let after_host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, after)| after),
        None => host_port.split_once(':').map_or("", |(_, p)| p),
    };
    let explicit = after_host.trim_start_matches(':');
    if !explicit.is_empty() {
        return explicit.parse().ok();
    }
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        "gopher" | "gophers" => Some(70),
        _ => None,
    }
}

/// A URL's scheme and its `host[:port]`, the user info left out.
fn url_parts(url: &str) -> (&str, &str) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    (
        scheme,
        authority.rsplit_once('@').map_or(authority, |(_, h)| h),
    )
}

/// Everything `egress explain --headers` reports about an echoed body.
pub fn explain_headers(headers: &EchoedHeaders) -> Value {
    let peer_id = headers
        .get("X-Envoy-Peer-Metadata-Id")
        .and_then(|id| peer_metadata::PeerId::parse(&id).ok())
        .map(|p| p.to_json());
    let peer = headers
        .get("X-Envoy-Peer-Metadata")
        .and_then(|m| peer_metadata::decode(&m).ok())
        .map(Value::Object);
    let xfcc_list: Option<Vec<Value>> = headers.get("X-Forwarded-Client-Cert").and_then(|h| xfcc::parse(&h).ok()).map(|elements| {
        elements
            .iter()
            .map(|e| {
                let cert = e.cert().and_then(Result::ok).map(|c| {
                    serde_json::json!({"subject": c.subject, "issuer": c.issuer, "san_uris": c.san_uris, "not_before": c.not_before, "not_after": c.not_after})
                });
                let one = |v: &[String]| if v.is_empty() { Value::Null } else { Value::String(v.join(",")) };
                serde_json::json!({
                    "by": one(&e.by), "hash": e.hash, "uri": one(&e.uri), "subject": e.subject, "dns": one(&e.dns),
                    "cert": cert, "hash_matches": e.hash_matches(),
                })
            })
            .collect()
    });
    let mut out = Map::new();
    out.insert("peer_metadata_id".into(), peer_id.unwrap_or(Value::Null));
    out.insert("peer_metadata".into(), peer.unwrap_or(Value::Null));
    out.insert(
        "decorator_operation".into(),
        headers
            .get("X-Envoy-Decorator-Operation")
            .map_or(Value::Null, Value::String),
    );
    out.insert("xfcc".into(), xfcc_list.map_or(Value::Null, Value::Array));
    out.insert("headers".into(), Value::Object(headers.normalised()));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::Certs;

    /// The curl pod of namespace `ns`, with the upstream mode a run recorded.
    pub(super) fn context(ns: &str, upstream: Option<&str>) -> Context {
        Context {
            namespace: ns.into(),
            client_pod: "curl".into(),
            service_account: "default".into(),
            upstream: upstream.map(str::to_owned),
        }
    }

    #[test]
    fn a_connection_that_skipped_the_waypoint_fails_the_ztunnel_expectation() {
        let s = crate::scenario::load_str(
            "name: a\ndescription: d\nrequests:\n  - name: r\n    url: http://httpbin.org/headers\n    expect:\n      ztunnel_log:\n        dst.workload: {matches: \"^waypoint-\"}\n",
            std::path::Path::new("a.yaml"),
        )
        .unwrap();
        let line = |dst: &str| {
            format!(
                r#"2026-12-01T12:00:00Z info access connection complete src.workload="curl" src.namespace="a" dst.service="httpbin.org" dst.workload="{dst}" direction="outbound""#
            )
        };
        let context = context("a", Some("local"));
        let judged = |lines: Option<Vec<String>>| {
            let obs = Observation {
                name: "r".into(),
                ztunnel_log: lines,
                ..Observation::default()
            };
            judge(&s.requests[0], &obs, &context, &Version::new(1, 30, 3))
        };
        let via = judged(Some(vec![line("waypoint-6d8f9c7b5-x2k4q")]));
        assert!(passed(&via), "{via:?}");
        let bypassed = judged(Some(vec![line("")]));
        assert_eq!(bypassed[0].outcome, Outcome::Fail, "{bypassed:?}");
        let none = judged(Some(vec![]));
        assert_eq!(none[0].subject, "ztunnel_log");
        assert_eq!(none[0].outcome, Outcome::Fail);
        assert_eq!(judged(None)[0].outcome, Outcome::NotObserved);
    }

    #[test]
    fn response_headers_are_judged_by_name_ignoring_case() {
        // istio.io's egress-gateway task: the gateway's 301 to https carries `location`.
        let s = crate::scenario::load_str(
            "name: h\ndescription: d\nrequests:\n  - name: r\n    url: http://edition.cnn.com/politics\n    expect:\n      status: 301\n      response_headers:\n        Location: {equals: \"https://edition.cnn.com/politics\"}\n        x-envoy-upstream-service-time: present\n",
            std::path::Path::new("h.yaml"),
        )
        .unwrap();
        let context = context("h", None);
        let judged = |headers: Option<&[(&str, &str)]>| {
            let obs = Observation {
                name: "r".into(),
                http_code: Some(301),
                response_headers: headers.map(|h| {
                    h.iter()
                        .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
                        .collect()
                }),
                ..Observation::default()
            };
            judge(&s.requests[0], &obs, &context, &Version::new(1, 30, 5))
        };
        let seen = [
            ("location", "https://edition.cnn.com/politics"),
            ("x-envoy-upstream-service-time", "30"),
        ];
        assert!(passed(&judged(Some(&seen))));
        let wrong = judged(Some(&[("location", "http://edition.cnn.com/politics")]));
        assert!(
            wrong
                .iter()
                .any(|v| v.subject == "response_headers.Location" && v.outcome == Outcome::Fail)
        );
        assert!(wrong.iter().any(|v| v.subject
            == "response_headers.x-envoy-upstream-service-time"
            && v.outcome == Outcome::Fail));
        assert!(
            judged(None)
                .iter()
                .any(|v| v.outcome == Outcome::NotObserved)
        );
    }

    #[test]
    fn a_status_can_differ_by_istio_release() {
        let s = crate::scenario::load_str(
            "name: s\ndescription: d\nrequests:\n  - name: r\n    url: http://httpbin.org/headers\n    expect:\n      status:\n        - {equals: 503, istio: \"<1.30\"}\n        - {equals: 200, istio: \">=1.30\"}\n",
            std::path::Path::new("s.yaml"),
        )
        .unwrap();
        let context = context("s", None);
        let judged = |code: u16, istio: &str| {
            let obs = Observation {
                name: "r".into(),
                http_code: Some(code),
                ..Observation::default()
            };
            judge(
                &s.requests[0],
                &obs,
                &context,
                &Version::parse(istio).unwrap(),
            )
        };
        assert!(passed(&judged(503, "1.29.8")));
        assert!(passed(&judged(200, "1.30.5")));
        let v = judged(503, "1.30.5");
        assert_eq!(v.len(), 1, "only the matcher of 1.30 is judged: {v:?}");
        assert_eq!(v[0].outcome, Outcome::Fail);
        // A plain code and a single matcher read as before.
        for form in ["status: 200", "status: {equals: 200}"] {
            let one = crate::scenario::load_str(
                &format!("name: s\ndescription: d\nrequests:\n  - name: r\n    url: http://httpbin.org/headers\n    expect:\n      {form}\n"),
                std::path::Path::new("s.yaml"),
            )
            .unwrap();
            assert_eq!(one.requests[0].expect.status.len(), 1, "{form}");
        }
    }

    #[test]
    fn elapsed_time_is_judged_against_its_bounds() {
        let s = crate::scenario::load_str(
            "name: t\ndescription: d\nrequests:\n  - name: r\n    url: http://httpbin.org/delay/5\n    expect:\n      time_total: {at_most: 3.5}\n",
            std::path::Path::new("t.yaml"),
        )
        .unwrap();
        let context = context("t", None);
        let judged = |t: Option<f64>| {
            let obs = Observation {
                name: "r".into(),
                time_total: t,
                ..Observation::default()
            };
            judge(&s.requests[0], &obs, &context, &Version::new(1, 30, 5))
        };
        // istio.io's request-timeouts task: a 3 s VirtualService timeout cuts a 5 s call.
        assert!(passed(&judged(Some(3.01))));
        let slow = judged(Some(5.02));
        assert_eq!(slow[0].outcome, Outcome::Fail);
        assert_eq!(slow[0].expected, "at most 3.5 s");
        assert_eq!(judged(None)[0].outcome, Outcome::NotObserved);
        let bounds = crate::scenario::TimeBounds {
            at_least: Some(2.0),
            at_most: None,
        };
        assert!(bounds.holds(2.0) && !bounds.holds(1.9));
    }

    #[test]
    fn the_body_is_judged_as_curl_received_it() {
        let s = crate::scenario::load_str(
            "name: b\ndescription: d\nrequests:\n  - name: r\n    url: http://httpbin.org/post\n    expect:\n      status: 403\n      body: {equals: \"RBAC: access denied\"}\n",
            std::path::Path::new("b.yaml"),
        )
        .unwrap();
        let context = context("b", Some("local"));
        let judged = |body: Option<&str>| {
            let obs = Observation {
                name: "r".into(),
                http_code: Some(403),
                body: body.map(str::to_owned),
                ..Observation::default()
            };
            judge(&s.requests[0], &obs, &context, &Version::new(1, 30, 3))
        };
        // Envoy's RBAC denial, as istio.io prints it (fixtures/public/response-body).
        assert!(passed(&judged(Some("RBAC: access denied\n"))));
        let other = judged(Some(
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
        ));
        let body = other
            .iter()
            .find(|v| v.subject == "body")
            .expect("a body verdict");
        assert_eq!(body.outcome, Outcome::Fail);
        assert!(
            body.observed
                .as_deref()
                .is_some_and(|o| o.starts_with("upstream connect"))
        );
        let none = judged(None);
        assert_eq!(
            none.iter()
                .find(|v| v.subject == "body")
                .map(|v| v.outcome.clone()),
            Some(Outcome::NotObserved)
        );
    }

    const SCENARIO: &str = r#"
name: t
description: upstream TLS
requests:
  - name: r
    url: http://httpbin.org/headers
    expect:
      upstream_tls:
        version: {equals: TLSv1.3}
        sni: {equals: httpbin.org}
        client_cert_subject: {contains: "CN=egress-conformance client"}
        client_cert_uri: {equals: "spiffe://egress-conformance.test/egress-gateway"}
"#;

    /// An echo-basic answer as kubernetes-sigs/gateway-api's echo-basic.go writes it.
    fn body(tls: Option<Value>) -> String {
        let mut b = serde_json::json!({
            "path": "/headers", "host": "httpbin.org", "method": "GET", "proto": "HTTP/1.1",
            "headers": {"User-Agent": ["curl/8.11.1"]},
            "namespace": "", "ingress": "", "service": "", "pod": "", "sni": ""
        });
        if let Some(tls) = tls {
            b["tls"] = tls;
        }
        b.to_string()
    }

    fn verdicts(tls: Option<Value>, upstream: Option<&str>) -> Vec<Verdict> {
        let s = crate::scenario::load_str(SCENARIO, std::path::Path::new("t.yaml")).unwrap();
        let obs = Observation {
            name: "r".into(),
            body: Some(body(tls)),
            ..Observation::default()
        };
        let context = context("t", upstream);
        judge(&s.requests[0], &obs, &context, &Version::new(1, 30, 3))
    }

    fn failed(v: &[Verdict]) -> Vec<&str> {
        v.iter()
            .filter(|v| v.outcome == Outcome::Fail)
            .map(|v| v.subject.as_str())
            .collect()
    }

    #[test]
    fn what_the_upstream_saw_is_judged_and_each_part_can_fail() {
        let certs = Certs::generate("httpbin.org").unwrap();
        let tls = |sni: &str, peers: Vec<&str>| {
            Some(
                serde_json::json!({"version": "TLSv1.3", "serverName": sni, "cipherSuite": "TLS_AES_128_GCM_SHA256", "peerCertificates": peers}),
            )
        };
        let good = verdicts(tls("httpbin.org", vec![&certs.client_cert]), Some("local"));
        assert!(passed(&good), "{good:#?}");
        assert_eq!(good.len(), 4, "four parts judged: {good:#?}");

        let wrong_sni = verdicts(tls("evil.example", vec![&certs.client_cert]), Some("local"));
        assert_eq!(failed(&wrong_sni), vec!["upstream_tls.sni"]);

        let no_cert = verdicts(tls("httpbin.org", vec![]), Some("local"));
        assert_eq!(
            failed(&no_cert),
            vec![
                "upstream_tls.client_cert_subject",
                "upstream_tls.client_cert_uri"
            ]
        );

        let other = Certs::generate("httpbin.org").unwrap();
        let stranger = verdicts(tls("httpbin.org", vec![&other.server_cert]), Some("local"));
        assert!(failed(&stranger).contains(&"upstream_tls.client_cert_subject"));

        let plain = verdicts(None, Some("local"));
        assert_eq!(failed(&plain), vec!["upstream_tls"]);
    }

    #[test]
    fn httpbin_org_cannot_tell_so_nothing_is_judged() {
        let v = verdicts(None, None);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].outcome, Outcome::NotObserved);
    }

    #[test]
    fn a_proxys_own_reply_means_the_echo_server_saw_nothing() {
        let yaml = "name: t\ndescription: d\nrequests:\n  - name: r\n    url: http://httpbin.org/headers\n    expect:\n      upstream_tls: WANT\n";
        let context = context("t", Some("local"));
        let reply = Observation {
            name: "r".into(),
            body: Some("upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: TLS_error:CERTIFICATE_VERIFY_FAILED".into()),
            ..Observation::default()
        };
        let judged = |want: &str| {
            let s = crate::scenario::load_str(
                &yaml.replace("WANT", want),
                std::path::Path::new("t.yaml"),
            )
            .expect("scenario");
            judge(&s.requests[0], &reply, &context, &Version::new(1, 30, 3))
        };
        assert!(passed(&judged("absent")), "{:#?}", judged("absent"));
        assert_eq!(failed(&judged("present")), vec!["upstream_tls"]);
    }
}
