//! The simulated data plane: curl by exec answers from a recording, adapted to the
//! run. No routing is modelled: what Istio did is what the recording shows.
//!
//! Recordings, first found wins: `tests/sim/recordings/<scenario>@<mode>.json`,
//! `tests/sim/recordings/<scenario>.json` (synthesized for the simulation, never
//! evidence of Istio behaviour), then the shipped `scenarios/recordings/`. On the
//! versions a scenario's `known_issue` names, `<scenario>@<mode>.affected.json`
//! answers instead: the bug's symptom as its report describes it.
//!
//! Per-version behaviour applied on top, each from the findings of December 2026:
//! - Istio >= 1.25: the egress gateway treats the sidecar as an external client
//!   (`use_remote_address: true` in its HTTP connection manager, istio/istio
//!   pilot/pkg/networking/core/gateway.go), so it logs a fresh x-request-id and the
//!   upstream sees no `X-Envoy-Internal`.
//! - A sampled trace rewrites character 14 of the x-request-id (envoy
//!   source/common/http/request_id_extension_uuid_impl.cc, setTraceReason); Istio
//!   samples 1 % by default (meshConfig.defaultConfig.tracing.sampling).

use std::collections::{BTreeMap, BTreeSet};
#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;
use std::sync::Mutex;

use egress_harness::curl;
use egress_harness::evidence::access_log::{self, Field};
use egress_harness::model::UpstreamMode;
use egress_harness::recording::{Context, Observation, Recording};
use egress_harness::scenario::{Scenario, Template};
use egress_harness::seams::InfraError;
use egress_harness::suite::Workspace;
use semver::Version;

/// Envoy's local reply to a send its circuit breaker refused, as published: what a
/// burst's other sends get in the simulation.
const OVERFLOW_REPLY: &str = "harness/tests/fixtures/public/response-body/ssup2-istio-sidecar-access-log-curl-overflow-body.txt";

/// Stands in a synthesized local recording for the run's client certificate.
pub const CLIENT_CERT_PLACEHOLDER: &str = "<run client certificate>";

/// The two mesh settings the scenarios' profiles differ in, as they take effect for
/// the client: the mesh config, overridden by a namespace `Sidecar`'s
/// outboundTrafficPolicy (istio/istio pilot/pkg/model/sidecar.go) and by the pod's
/// `proxy.istio.io/config` annotation (istio/istio tests/integration/pilot, TestProxyHeaders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    pub allow_any: bool,
    pub in_mesh_headers: bool,
}

/// What the recordings say, per scenario.
pub struct Answers {
    /// The scenario root the recordings were read under.
    root: PathBuf,
    scenarios: BTreeMap<String, Scenario>,
    /// What each scenario's install profile sets (`manifests/install/<install>.yaml`).
    wanted: BTreeMap<String, Effective>,
    /// (scenario, mode or "") → recording.
    recordings: BTreeMap<(String, String), Recording>,
    client_cert: Mutex<Option<String>>,
    /// Sends so far per (namespace, request), for answering a burst in its recorded
    /// proportions.
    sends: Mutex<BTreeMap<(String, String), usize>>,
}

/// One exec's answer.
pub struct Answer {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
    pub gateway_lines: Vec<String>,
    pub sidecar_lines: Vec<String>,
    /// Ambient: the connection ztunnel logs (no id to adapt: it is found by namespace).
    pub ztunnel_lines: Vec<String>,
}

/// Where the synthesized recordings are: under the scenario root (`EGRESS_ROOT` or the
/// checkout), never at a path compiled into the test binary.
pub fn synthesized_dir(ws: &Workspace) -> PathBuf {
    ws.root.join("tests/sim/recordings")
}

impl Answers {
    pub fn load(ws: &Workspace, scenarios: &[Scenario]) -> Result<Self, String> {
        let mut recordings = BTreeMap::new();
        for s in scenarios {
            let name = s.name();
            for mode in [
                "local",
                "internet",
                "",
                "local.affected",
                "internet.affected",
            ] {
                let file = if mode.is_empty() {
                    synthesized_dir(ws).join(format!("{name}.json"))
                } else {
                    synthesized_dir(ws).join(format!("{name}@{mode}.json"))
                };
                if file.is_file() {
                    recordings.insert((name.to_owned(), mode.to_owned()), Recording::read(&file)?);
                }
            }
            let shipped =
                egress_harness::recording::shipped(&ws.scenarios_dir().join("recordings"), name);
            if let Some(first) = shipped.first() {
                recordings
                    .entry((name.to_owned(), String::new()))
                    .or_insert(Recording::read(first)?);
            }
        }
        let mut wanted = BTreeMap::new();
        for s in scenarios {
            let file = ws
                .manifests_dir()
                .join("install")
                .join(format!("{}.yaml", s.install.value));
            let mesh = egress_harness::mesh_config::MeshConfig::of_profile(&file)?;
            wanted.insert(
                s.name().to_owned(),
                Effective {
                    allow_any: mesh.outbound_traffic_policy == "ALLOW_ANY",
                    in_mesh_headers: mesh.metadata_exchange_in_mesh,
                },
            );
        }
        Ok(Self {
            root: ws.root.clone(),
            scenarios: scenarios
                .iter()
                .map(|s| (s.name().to_owned(), s.clone()))
                .collect(),
            wanted,
            recordings,
            client_cert: Mutex::new(None),
            sends: Mutex::new(BTreeMap::new()),
        })
    }

    /// How the scenario's install profile sets up its client's proxy.
    #[cfg(test)]
    pub fn wanted(&self, scenario: &str) -> Option<Effective> {
        self.wanted.get(scenario).copied()
    }

    /// The simulated upstream got the run's certificates.
    pub fn set_client_cert(&self, pem: &str) {
        *self.client_cert.lock().unwrap_or_else(|e| e.into_inner()) = Some(pem.to_owned());
    }

    fn recording(
        &self,
        scenario: &str,
        mode: UpstreamMode,
        istio: &Version,
    ) -> Option<(&Recording, bool)> {
        let key = |m: &str| (scenario.to_owned(), m.to_owned());
        let affected = self
            .scenarios
            .get(scenario)
            .is_some_and(|s| s.known_issue_for(istio).is_some());
        let symptom = affected
            .then(|| {
                self.recordings
                    .get(&key(&format!("{}.affected", mode.as_str())))
            })
            .flatten();
        symptom
            .map(|r| (r, true))
            .or_else(|| self.recordings.get(&key(mode.as_str())).map(|r| (r, true)))
            .or_else(|| self.recordings.get(&key("")).map(|r| (r, false)))
    }

    /// What curl printed for `argv` in the namespace of `scenario`.
    pub fn answer(
        &self,
        call: &Call,
        istio: &Version,
        sampled: bool,
        effective: Effective,
    ) -> Result<Answer, InfraError> {
        let Call {
            scenario: scenario_name,
            namespace,
            pod,
            argv,
            present,
        } = *call;
        let scenario = self.scenarios.get(scenario_name).ok_or_else(|| {
            InfraError::permanent(format!(
                "simulated exec: no scenario {scenario_name} runs in namespace {namespace}"
            ))
        })?;
        let attempt_id = argv
            .iter()
            .find_map(|a| a.strip_prefix("x-request-id: "))
            .ok_or_else(|| InfraError::new("simulated exec: the curl carries no x-request-id"))?;
        let context = Context {
            namespace: scenario_name.to_owned(),
            client_pod: "curl".into(),
            service_account: "default".into(),
            upstream: None,
        };
        // The run started the local upstream (it got the run's certificates) or it did
        // not (--upstream internet): the same curl may serve both, so that decides first.
        let local_first = self
            .client_cert
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        let modes = if local_first {
            [UpstreamMode::Local, UpstreamMode::Internet]
        } else {
            [UpstreamMode::Internet, UpstreamMode::Local]
        };
        // A request is its client's: the same curl from two pods are two requests.
        let candidates: Vec<_> = scenario
            .requests
            .iter()
            .filter_map(|r| {
                let context = egress_harness::judge::context_for(scenario, r, &context);
                if context.client_pod != pod {
                    return None;
                }
                let url = Template::parse(&r.url.value)
                    .ok()?
                    .render(&|name: &str| context.var(name));
                modes
                    .into_iter()
                    .find(|m| curl::argv(r, &url, attempt_id, &scenario.curl_args_for(*m)) == argv)
                    .map(|m| (r, m))
            })
            .collect();
        // The same curl before and after a configuration change: the one whose
        // configuration is the cluster's now answers.
        let found = if candidates.len() > 1 {
            candidates
                .iter()
                .find(|(r, m)| {
                    self.configured_for(scenario, r, *m, scenario_name)
                        .is_some_and(|(expected, universe)| {
                            let now: Objects = present
                                .iter()
                                .filter(|(id, _)| universe.contains(*id))
                                .map(|(id, body)| (id.clone(), body.clone()))
                                .collect();
                            expected == now
                        })
                })
                .copied()
                .ok_or_else(|| {
                    InfraError::new(format!(
                        "simulated exec: the objects in the cluster are those of none of the requests sent as {argv:?} (simulated)"
                    ))
                })?
                .into()
        } else {
            candidates.first().copied()
        };
        let (request, mode) = found.ok_or_else(|| {
            InfraError::new(format!(
                "simulated exec: no request of {namespace} is sent from {pod} as {argv:?}"
            ))
        })?;
        // Nothing will answer on a later attempt either: the run stops trying at once.
        let (recording, mode_specific) = self.recording(scenario_name, mode, istio).ok_or_else(|| {
            InfraError::permanent(format!(
                "the simulated cluster has no recorded answer for {scenario_name}: run it live once and copy reports/<run-id>/recordings/{scenario_name}@<istio>.json into {}, or write a synthesized one at {}",
                self.root.join("scenarios/recordings").display(),
                self.root.join(format!("tests/sim/recordings/{scenario_name}@{}.json", mode.as_str())).display(),
            ))
        })?;
        let obs = recording.observation(&request.name.value).ok_or_else(|| {
            InfraError::permanent(format!(
                "{namespace}: the recording has no request {}",
                request.name.value
            ))
        })?;
        // A burst answers in the recorded proportions, cycling through its statuses;
        // a send that did not get the first's status gets the local reply recorded
        // for it (no line: only the first send's logs are judged).
        if let Some(statuses) = obs.statuses.as_ref().filter(|s| !s.is_empty()) {
            let n = {
                let mut sends = self.sends.lock().unwrap_or_else(|e| e.into_inner());
                let n = sends
                    .entry((scenario_name.to_owned(), request.name.value.clone()))
                    .or_default();
                *n += 1;
                *n - 1
            };
            let status = statuses[n % statuses.len()];
            if Some(status) != obs.http_code {
                let reply = if status == 503 {
                    std::fs::read_to_string(self.root.join(OVERFLOW_REPLY)).unwrap_or_default()
                } else {
                    String::new()
                };
                let write_out = serde_json::json!({"http_code": status, "time_total": 0.01});
                return Ok(Answer {
                    stdout: format!(
                        "{}\n{}{write_out}",
                        reply.trim_end_matches('\n'),
                        curl::MARKER
                    ),
                    stderr: String::new(),
                    exit_code: 0,
                    gateway_lines: Vec::new(),
                    sidecar_lines: Vec::new(),
                    ztunnel_lines: Vec::new(),
                });
            }
        }
        let user_agent = curl::user_agent(attempt_id);
        let logged_id = if sampled {
            sampled_id(attempt_id)
        } else {
            attempt_id.to_owned()
        };
        let rewrite_gateway = *istio >= Version::new(1, 25, 0);
        let adapt = |line: &str, at_gateway: bool| {
            let id = if at_gateway && rewrite_gateway {
                uuid::Uuid::new_v4().to_string()
            } else {
                logged_id.clone()
            };
            let line = rename_namespace(line, &recording.context.namespace, namespace);
            adapt_line(&line, obs, &id, &user_agent)
        };
        let gateway_lines: Vec<String> = last_line(obs.gateway_log.as_deref())
            .map(|l| adapt(l, true))
            .into_iter()
            .collect();
        let sidecar_lines: Vec<String> = last_line(obs.sidecar_log.as_deref())
            .map(|l| adapt(l, false))
            .into_iter()
            .collect();
        let mut body = rename_namespace(
            obs.body.as_deref().unwrap_or_default(),
            &recording.context.namespace,
            namespace,
        );
        let from = recording.context.namespace.as_str();
        let drop_version = *istio >= Version::new(1, 24, 0);
        body = map_headers(&body, |name, value| {
            if name.eq_ignore_ascii_case("X-Envoy-Internal")
                && rewrite_gateway
                && !gateway_lines.is_empty()
            {
                None
            } else if name.eq_ignore_ascii_case("X-Forwarded-Client-Cert") {
                Some(super::identity::reissue_xfcc(value))
            } else if name.eq_ignore_ascii_case("X-Envoy-Peer-Metadata") {
                Some(super::identity::rewrite_peer_metadata(
                    value,
                    from,
                    namespace,
                    drop_version,
                ))
            } else {
                Some(value.to_owned())
            }
        });
        if mode == UpstreamMode::Local && !mode_specific {
            body = as_echo_basic(&body, &request.url.value);
        }
        if let Some(pem) = &*self.client_cert.lock().unwrap_or_else(|e| e.into_inner()) {
            let escaped = serde_json::to_string(pem).unwrap_or_default();
            body = body.replace(&format!("\"{CLIENT_CERT_PLACEHOLDER}\""), &escaped);
        }
        // The recording shows the mesh its profile set up; where the client's proxy
        // is set up otherwise, answer as that proxy would.
        let wanted = self.wanted.get(scenario_name).copied().unwrap_or(effective);
        if wanted.allow_any && !effective.allow_any {
            // REGISTRY_ONLY: the unregistered host gets the block_all 502.
            let write_out = serde_json::json!({"http_code": 502, "time_total": 0.01});
            return Ok(Answer {
                stdout: format!("\n{}{write_out}", curl::MARKER),
                stderr: String::new(),
                exit_code: 0,
                gateway_lines: Vec::new(),
                sidecar_lines: Vec::new(),
                ztunnel_lines: Vec::new(),
            });
        }
        if wanted.in_mesh_headers && !effective.in_mesh_headers {
            // Metadata exchange on for external hosts: the sidecar adds its id.
            body = add_header(
                &body,
                "X-Envoy-Peer-Metadata-Id",
                &format!("sidecar~10.244.0.7~curl.{namespace}~{namespace}.svc.cluster.local"),
            );
        }
        if !wanted.in_mesh_headers && effective.in_mesh_headers {
            body = map_headers(&body, |name, value| {
                (!name
                    .to_ascii_lowercase()
                    .starts_with("x-envoy-peer-metadata"))
                .then(|| value.to_owned())
            });
        }
        let body = echo_basic_text(&body).unwrap_or(body);
        let write_out = serde_json::json!({
            "http_code": obs.http_code.unwrap_or(0),
            "time_total": obs.time_total.unwrap_or(0.05),
        });
        Ok(Answer {
            stdout: format!(
                "{body}\n{}{write_out}{}",
                curl::MARKER,
                obs.response_headers
                    .as_ref()
                    .map(|h| format!("\n{}", header_json_text(h)))
                    .unwrap_or_default()
            ),
            stderr: obs.stderr.clone().unwrap_or_default(),
            exit_code: obs.exit_code.unwrap_or(0),
            gateway_lines,
            sidecar_lines,
            ztunnel_lines: obs
                .ztunnel_log
                .iter()
                .flatten()
                .map(|l| rename_namespace(l, &recording.context.namespace, namespace))
                .collect(),
        })
    }
}

/// An object in the cluster: kind, namespace, name.
pub type ObjectId = (String, String, String);

/// The cluster's objects with their bodies (as JSON text), to tell a configuration
/// from a patched one.
pub type Objects = BTreeMap<ObjectId, String>;

/// One curl by exec: where it ran and what the cluster held then.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    /// The scenario whose namespace (or one of whose clients' namespaces) it ran in.
    pub scenario: &'a str,
    pub namespace: &'a str,
    pub pod: &'a str,
    pub argv: &'a [String],
    /// Every object in the cluster.
    pub present: &'a Objects,
}

impl Answers {
    /// The objects that are applied when `request` is sent (the scenario's manifests,
    /// then every `before` up to it, patches made), and every object any of its files
    /// holds.
    fn configured_for(
        &self,
        scenario: &Scenario,
        request: &egress_harness::scenario::Request,
        mode: UpstreamMode,
        namespace: &str,
    ) -> Option<(Objects, BTreeSet<ObjectId>)> {
        let objects = |file: &str| -> Option<Objects> {
            let path = self.root.join("manifests").join(file);
            let objects = egress_harness::manifest::parse_file_in(&path, namespace).ok()?;
            Some(
                objects
                    .into_iter()
                    .map(|o| {
                        let ns = o.namespace.unwrap_or_else(|| namespace.to_owned());
                        ((o.kind, ns, o.name), o.body.to_string())
                    })
                    .collect(),
            )
        };
        let mut universe: BTreeSet<ObjectId> = BTreeSet::new();
        let mut state: Objects = BTreeMap::new();
        for m in scenario.manifests_for(mode) {
            let found = objects(&m.value)?;
            universe.extend(found.keys().cloned());
            state.extend(found);
        }
        for m in scenario.applied_later(mode) {
            universe.extend(objects(&m.value)?.into_keys());
        }
        for r in &scenario.requests {
            for action in &r.before {
                let file = scenario.replaced(action.file(), mode).value;
                let found = objects(&file)?;
                match action {
                    egress_harness::scenario::Action::Apply(_) => state.extend(found),
                    egress_harness::scenario::Action::Delete(_) => {
                        state.retain(|id, _| !found.contains_key(id));
                    }
                    egress_harness::scenario::Action::Patch(p) => {
                        let (kind, name) = p.object.value.split_once('/')?;
                        let (_, body) = state
                            .iter_mut()
                            .find(|((k, _, n), _)| k == kind && n == name)?;
                        let mut json: serde_json::Value = serde_json::from_str(body).ok()?;
                        egress_harness::manifest::merge_patch(&mut json, &p.merge);
                        *body = json.to_string();
                    }
                }
            }
            if r.name.value == request.name.value {
                break;
            }
        }
        Some((state, universe))
    }
}

/// The line a request left: the one its recorded id finds, else the last.
fn last_line(lines: Option<&[String]>) -> Option<&str> {
    lines?.last().map(String::as_str)
}

/// The id as a sampled trace logs it: character 14 (the UUID version, `4`) becomes
/// the trace reason `9` (envoy source/common/http/request_id_extension_uuid_impl.cc).
pub fn sampled_id(id: &str) -> String {
    id.char_indices()
        .map(|(i, c)| if i == 14 { '9' } else { c })
        .collect()
}

/// The recording's namespace, where it names the client, becomes the run's.
fn rename_namespace(text: &str, from: &str, to: &str) -> String {
    if from == to {
        return text.to_owned();
    }
    text.replace(&format!("/ns/{from}/"), &format!("/ns/{to}/"))
        .replace(&format!(".{from}~{from}.svc"), &format!(".{to}~{to}.svc"))
        .replace(&format!("-httpbin.{from}"), &format!("-httpbin.{to}"))
}

/// The recorded id, User-Agent and START_TIME of a line replaced by this attempt's.
fn adapt_line(line: &str, obs: &Observation, id: &str, user_agent: &str) -> String {
    let mut out = line.to_owned();
    if let (Some(rest), Some(end)) = (line.strip_prefix('['), line.find(']')) {
        let now = egress_harness::model::virtual_now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
        out = format!("[{now}]{}", &rest[end..]);
    }
    if let Some(recorded) = obs.request_id.as_deref() {
        out = out.replace(recorded, id);
    }
    if let Ok(entry) = access_log::parse_line(line)
        && let Some(ua) = entry.get(Field::UserAgent)
    {
        out = out.replace(&format!("\"{ua}\""), &format!("\"{user_agent}\""));
    }
    out
}

/// The body with each echoed header value mapped (`None` drops the header), in
/// httpbin's (`"Name": "v"`) and echo-basic's (`"Name": ["v"]`) forms alike.
/// The body with one more echoed header (as a list where the body lists values).
fn add_header(body: &str, name: &str, value: &str) -> String {
    let Ok(mut json) = serde_json::from_str::<serde_json::Value>(body.trim()) else {
        return body.to_owned();
    };
    let Some(headers) = json.get_mut("headers").and_then(|h| h.as_object_mut()) else {
        return body.to_owned();
    };
    let listed = headers.values().any(serde_json::Value::is_array);
    let value = if listed {
        serde_json::json!([value])
    } else {
        serde_json::json!(value)
    };
    headers.insert(name.to_owned(), value);
    serde_json::to_string_pretty(&json).unwrap_or_else(|_| body.to_owned())
}

fn map_headers(body: &str, mut f: impl FnMut(&str, &str) -> Option<String>) -> String {
    let Ok(mut json) = serde_json::from_str::<serde_json::Value>(body.trim()) else {
        return body.to_owned();
    };
    let Some(headers) = json.get_mut("headers").and_then(|h| h.as_object_mut()) else {
        return body.to_owned();
    };
    let mut mapped = serde_json::Map::new();
    for (name, value) in headers.iter() {
        let new = match value {
            serde_json::Value::String(v) => f(name, v).map(serde_json::Value::String),
            serde_json::Value::Array(values) => {
                let kept: Vec<serde_json::Value> = values
                    .iter()
                    .filter_map(|v| v.as_str().and_then(|v| f(name, v)))
                    .map(serde_json::Value::String)
                    .collect();
                (!kept.is_empty()).then_some(serde_json::Value::Array(kept))
            }
            other => Some(other.clone()),
        };
        if let Some(v) = new {
            mapped.insert(name.clone(), v);
        }
    }
    *headers = mapped;
    serde_json::to_string_pretty(&json).unwrap_or_else(|_| body.to_owned())
}

/// httpbin's `/headers` body as the Gateway API echo server would print it
/// (kubernetes-sigs/gateway-api conformance/echo-basic/echo-basic.go, RequestAssertions).
fn as_echo_basic(body: &str, url: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body.trim()) else {
        return body.to_owned();
    };
    // A live run's recording with the local upstream is echo-basic's already.
    if json.get("path").is_some() {
        return body.to_owned();
    }
    let Some(headers) = json.get("headers").and_then(|h| h.as_object()) else {
        return body.to_owned();
    };
    let lists: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::json!([v.as_str().unwrap_or_default()]),
            )
        })
        .collect();
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
        .unwrap_or_else(|| "/".into());
    let host = headers
        .get("Host")
        .and_then(|h| h.as_str())
        .unwrap_or("httpbin.org");
    serde_json::to_string_pretty(&serde_json::json!({
        "path": path,
        "host": host,
        "method": "GET",
        "proto": "HTTP/1.1",
        "headers": lists,
        "namespace": "",
        "ingress": "",
        "service": "",
        "pod": "egc-upstream (simulated)",
    }))
    .unwrap_or_else(|_| body.to_owned())
}

/// Recorded response headers as curl's `%{header_json}` writes them: `{`, one
/// `"name":["value",...]` per header with `,` and a newline between, a newline and `}`
/// (curl src/tool_writeout_json.c headerJSON; public samples in
/// harness/tests/fixtures/public/curl-header-json/). Names lower case, as curl gives them.
pub fn header_json_text(headers: &BTreeMap<String, Vec<String>>) -> String {
    let entries: Vec<String> = headers
        .iter()
        .map(|(name, values)| {
            let values: Vec<String> = values
                .iter()
                .map(|v| serde_json::to_string(v).unwrap_or_default())
                .collect();
            format!(
                "{}:[{}]",
                serde_json::to_string(&name.to_ascii_lowercase()).unwrap_or_default(),
                values.join(",")
            )
        })
        .collect();
    format!("{{{}\n}}", entries.join(",\n"))
}

/// An echo-basic body (one with `path`) written as echo-basic writes it:
/// `json.MarshalIndent(requestAssertions, "", " ")` with no newline after, fields in
/// the order of its `RequestAssertions` struct, `tls` left out on plain HTTP and, inside
/// it, `peerCertificates` and `negotiatedProtocol` left out when empty (`omitempty`)
/// (kubernetes-sigs/gateway-api conformance/echo-basic/echo-basic.go at v1.4.1;
/// public samples in harness/tests/fixtures/public/echo-body/). `None` for any other body.
pub fn echo_basic_text(body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
    let object = json.as_object()?;
    object.get("path")?;
    let pretty = |v: &serde_json::Value, depth: usize| {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        serde::Serialize::serialize(v, &mut ser).ok()?;
        let text = String::from_utf8(out).ok()?;
        Some(text.replace('\n', &format!("\n{}", " ".repeat(depth))))
    };
    let members = |pairs: Vec<(&str, String)>, depth: usize| {
        let pad = " ".repeat(depth + 1);
        let inner: Vec<String> = pairs
            .into_iter()
            .map(|(k, v)| format!("{pad}\"{k}\": {v}"))
            .collect();
        format!("{{\n{}\n{}}}", inner.join(",\n"), " ".repeat(depth))
    };
    let mut top = Vec::new();
    for key in [
        "path",
        "host",
        "method",
        "proto",
        "headers",
        "namespace",
        "ingress",
        "service",
        "pod",
    ] {
        top.push((key, pretty(object.get(key)?, 1)?));
    }
    if let Some(tls) = object.get("tls").and_then(serde_json::Value::as_object) {
        let mut fields = Vec::new();
        for (key, omit_empty) in [
            ("version", false),
            ("peerCertificates", true),
            ("serverName", false),
            ("negotiatedProtocol", true),
            ("cipherSuite", false),
        ] {
            let value = tls
                .get(key)
                .cloned()
                .unwrap_or_else(|| serde_json::json!(""));
            let empty = value.as_str() == Some("")
                || value.as_array().is_some_and(Vec::is_empty)
                || value.is_null();
            if !(omit_empty && empty) {
                fields.push((key, pretty(&value, 2)?));
            }
        }
        top.push(("tls", members(fields, 1)));
    }
    Some(members(top, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gateway-http's first request, answered with or without a local upstream started.
    fn body(started_local: bool) -> String {
        let ws = Workspace::at(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
        let suite = egress_harness::suite::Suite::load(&ws).unwrap();
        let scenarios: Vec<Scenario> = suite
            .select(&["gateway-http".to_owned()])
            .unwrap()
            .into_iter()
            .cloned()
            .collect();
        let answers = Answers::load(&ws, &scenarios).unwrap();
        if started_local {
            answers.set_client_cert("-----BEGIN CERTIFICATE-----\n");
        }
        let s = &scenarios[0];
        let context = Context {
            namespace: s.name().to_owned(),
            client_pod: "curl".into(),
            service_account: "default".into(),
            upstream: None,
        };
        let r = &s.requests[0];
        let url = Template::parse(&r.url.value)
            .unwrap()
            .render(&|name: &str| context.var(name));
        let argv = curl::argv(
            r,
            &url,
            "attempt-1",
            &s.curl_args_for(UpstreamMode::Internet),
        );
        let wanted = answers.wanted(s.name()).unwrap();
        let a = answers
            .answer(
                &Call {
                    scenario: s.name(),
                    namespace: s.name(),
                    pod: "curl",
                    argv: &argv,
                    present: &BTreeMap::new(),
                },
                &Version::new(1, 22, 1),
                false,
                wanted,
            )
            .unwrap();
        a.stdout
            .split(curl::MARKER)
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn an_internet_run_is_answered_from_the_internet_recording() {
        // The article's httpbin.org answer: header values as strings, no `path`.
        let internet: serde_json::Value = serde_json::from_str(body(false).trim()).unwrap();
        assert!(internet.get("path").is_none(), "{internet}");
        assert!(internet["headers"]["Host"].is_string(), "{internet}");
        // With the local upstream started: echo-basic's answer.
        let local: serde_json::Value = serde_json::from_str(body(true).trim()).unwrap();
        assert_eq!(local["path"], "/headers", "{local}");
        assert!(local["headers"]["Host"].is_array(), "{local}");
    }
}
