//! Replaying a recording through the judge, and the mutations that prove each
//! expectation can fail: altered evidence must turn a green replay red.

use serde_json::Value;

use crate::judge::{self, Outcome, Verdict};
use crate::recording::Recording;
use crate::scenario::Scenario;
use crate::versions;

/// The verdicts of every request of a scenario on one recording.
#[derive(Debug)]
pub struct Replay {
    pub requests: Vec<(String, Vec<Verdict>)>,
}

impl Replay {
    pub fn passed(&self) -> bool {
        self.requests.iter().all(|(_, v)| judge::passed(v))
    }

    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (request, verdicts) in &self.requests {
            if verdicts.iter().all(|v| v.outcome == Outcome::NotObserved) {
                out.push(format!(
                    "{request}: nothing was judged (no evidence for any expectation)"
                ));
            }
            out.extend(
                verdicts
                    .iter()
                    .filter(|v| v.outcome == Outcome::Fail)
                    .map(|v| format!("{request}: {v}")),
            );
        }
        out
    }
}

pub fn replay(scenario: &Scenario, recording: &Recording) -> Result<Replay, String> {
    let istio = versions::parse_version(&recording.istio)?;
    let mut requests = Vec::new();
    for r in &scenario.requests {
        let obs = recording.observation(&r.name.value).ok_or_else(|| {
            format!(
                "the recording has no observation of request `{}`",
                r.name.value
            )
        })?;
        requests.push((
            r.name.value.clone(),
            judge::judge(
                r,
                obs,
                &judge::context_for(scenario, r, &recording.context),
                &istio,
            ),
        ));
    }
    Ok(Replay { requests })
}

/// A named change to a recording.
pub struct Mutation {
    pub name: &'static str,
    pub apply: fn(&mut Recording),
}

pub const MUTATIONS: &[Mutation] = &[
    Mutation {
        name: "drop-xfcc",
        apply: |r| edit_headers(r, |h| drop_header(h, "X-Forwarded-Client-Cert")),
    },
    Mutation {
        name: "tamper-xfcc-hash",
        apply: |r| edit_headers(r, tamper_xfcc_hash),
    },
    Mutation {
        name: "swap-peer-id",
        apply: |r| edit_headers(r, swap_peer_id),
    },
    Mutation {
        name: "corrupt-peer-metadata",
        apply: |r| edit_headers(r, corrupt_peer_metadata),
    },
    Mutation {
        name: "change-decorator",
        apply: |r| edit_headers(r, change_decorator),
    },
    Mutation {
        name: "add-internal-header",
        apply: |r| edit_headers(r, toggle_internal),
    },
    Mutation {
        name: "change-upstream-cluster",
        apply: |r| edit_gateway_lines(r, swap_cluster_port),
    },
    Mutation {
        name: "change-sni",
        apply: |r| edit_gateway_lines(r, |l| l.replace(" httpbin.org -", " example.com -")),
    },
    Mutation {
        name: "drop-gateway-log",
        apply: |r| {
            r.requests.iter_mut().for_each(|o| {
                if let Some(l) = &mut o.gateway_log {
                    l.clear()
                }
            })
        },
    },
    Mutation {
        name: "change-exit-code",
        apply: |r| {
            r.requests
                .iter_mut()
                .for_each(|o| o.exit_code = o.exit_code.map(|c| if c == 0 { 7 } else { 0 }))
        },
    },
    Mutation {
        name: "change-status",
        apply: |r| {
            r.requests
                .iter_mut()
                .for_each(|o| o.http_code = o.http_code.map(|c| if c == 200 { 503 } else { 200 }))
        },
    },
    Mutation {
        name: "change-stderr",
        apply: |r| {
            r.requests.iter_mut().for_each(|o| {
                o.stderr = o
                    .stderr
                    .as_ref()
                    .map(|s| s.replace("wrong version number", "connection reset"))
            })
        },
    },
];

/// The mutations that change this recording, each with the changed copy.
pub fn mutations(recording: &Recording) -> Vec<(&'static str, Recording)> {
    MUTATIONS
        .iter()
        .filter_map(|m| {
            let mut changed = recording.clone();
            (m.apply)(&mut changed);
            (changed != *recording).then_some((m.name, changed))
        })
        .collect()
}

/// Whether every line the request left is a TCP line (`"- - -"`): no proxy on its path
/// read HTTP (the app's own TLS through the mesh), so no Istio change can alter the
/// headers the upstream saw, and no header mutation models one.
fn proxies_saw_only_tcp(o: &crate::recording::Observation) -> bool {
    let lines: Vec<&String> = o
        .sidecar_log
        .iter()
        .chain(o.gateway_log.iter())
        .flatten()
        .collect();
    !lines.is_empty()
        && lines
            .iter()
            .all(|l| crate::evidence::access_log::parse_line(l).is_ok_and(|e| e.is_tcp()))
}

fn edit_headers(r: &mut Recording, edit: fn(&mut serde_json::Map<String, Value>)) {
    for o in &mut r.requests {
        if proxies_saw_only_tcp(o) {
            continue;
        }
        let Some(body) = &o.body else { continue };
        let Ok(mut json) = serde_json::from_str::<Value>(body) else {
            continue;
        };
        let Some(headers) = json.get_mut("headers").and_then(Value::as_object_mut) else {
            continue;
        };
        let before = headers.clone();
        edit(headers);
        if *headers != before {
            o.body = serde_json::to_string_pretty(&json).ok();
        }
    }
}

fn drop_header(h: &mut serde_json::Map<String, Value>, name: &str) {
    h.retain(|k, _| !k.eq_ignore_ascii_case(name));
}

fn edit_value(h: &mut serde_json::Map<String, Value>, name: &str, f: impl Fn(&str) -> String) {
    for (k, v) in h.iter_mut() {
        if k.eq_ignore_ascii_case(name)
            && let Value::String(s) = v
        {
            *s = f(s);
        }
    }
}

fn tamper_xfcc_hash(h: &mut serde_json::Map<String, Value>) {
    edit_value(h, "X-Forwarded-Client-Cert", |v| match v.find("Hash=") {
        Some(at) => {
            let digit = at + "Hash=".len();
            let flipped = if v[digit..].starts_with('0') {
                "1"
            } else {
                "0"
            };
            format!("{}{flipped}{}", &v[..digit], &v[digit + 1..])
        }
        None => v.to_owned(),
    });
}

fn swap_peer_id(h: &mut serde_json::Map<String, Value>) {
    edit_value(h, "X-Envoy-Peer-Metadata-Id", |v| {
        if let Some(rest) = v.strip_prefix("router~") {
            format!("sidecar~{rest}")
        } else {
            v.replacen("sidecar~", "router~", 1)
        }
    });
}

fn corrupt_peer_metadata(h: &mut serde_json::Map<String, Value>) {
    edit_value(h, "X-Envoy-Peer-Metadata", |v| {
        v.chars().take(v.len() / 2).collect()
    });
}

fn change_decorator(h: &mut serde_json::Map<String, Value>) {
    edit_value(h, "X-Envoy-Decorator-Operation", |v| {
        if v.contains(":443/") {
            v.replace(":443/", ":80/")
        } else {
            v.replace(":80/", ":443/")
        }
    });
}

fn toggle_internal(h: &mut serde_json::Map<String, Value>) {
    if h.keys().any(|k| k.eq_ignore_ascii_case("X-Envoy-Internal")) {
        drop_header(h, "X-Envoy-Internal");
    } else if h.keys().any(|k| {
        k.eq_ignore_ascii_case("X-Envoy-Peer-Metadata-Id") || k.eq_ignore_ascii_case("Host")
    }) {
        h.insert("X-Envoy-Internal".into(), Value::String("true".into()));
    }
}

fn swap_cluster_port(line: &str) -> String {
    if line.contains("outbound|443|") {
        line.replace("outbound|443|", "outbound|80|")
    } else {
        line.replace("outbound|80|", "outbound|443|")
    }
}

fn edit_gateway_lines(r: &mut Recording, f: fn(&str) -> String) {
    for o in &mut r.requests {
        if let Some(lines) = &mut o.gateway_log {
            for l in lines.iter_mut() {
                *l = f(l);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Context, FORMAT, Observation};

    fn recording(sidecar_line: &str) -> Recording {
        Recording {
            format: FORMAT.into(),
            scenario: "s".into(),
            istio: "1.30.5".into(),
            source: "test".into(),
            context: Context {
                namespace: "s".into(),
                client_pod: "curl".into(),
                service_account: "default".into(),
                upstream: None,
            },
            requests: vec![Observation {
                name: "r".into(),
                body: Some("{\"headers\": {\"Host\": \"httpbin.org\"}}".into()),
                sidecar_log: Some(vec![sidecar_line.into()]),
                http_code: Some(200),
                exit_code: Some(0),
                ..Observation::default()
            }],
            notes: Vec::new(),
        }
    }

    #[test]
    fn header_mutations_are_not_asked_of_a_request_no_proxy_read_as_http() {
        // The app's own TLS through the mesh: the sidecar logged TCP only.
        let tcp = r#"[2024-06-21T19:42:17.330Z] "- - -" 0 - - - "-" 839 5356 218 - "-" "-" "-" "-" "3.211.196.247:443" outbound|443||httpbin.org 10.244.0.6:49404 10.244.0.6:8443 10.244.0.7:38690 httpbin.org -"#;
        let names: Vec<&str> = mutations(&recording(tcp))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(!names.contains(&"add-internal-header"), "{names:?}");
        assert!(names.contains(&"change-status"), "{names:?}");
        // The same body behind an HTTP line: the sidecar could have added the header.
        let http = r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/1.1" 200 - via_upstream - "-" 0 1450 57 57 "-" "curl/8.4.0" "51ed62d9-1da8-4250-9923-df406ca9fd57" "httpbin.org" "3.213.1.197:80" outbound|80||httpbin.org 10.244.0.6:41144 3.213.1.197:80 10.244.0.7:55490 - default"#;
        let names: Vec<&str> = mutations(&recording(http))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(names.contains(&"add-internal-header"), "{names:?}");
    }
}
