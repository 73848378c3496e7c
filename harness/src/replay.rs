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
            judge::judge(r, obs, &recording.context, &istio),
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

fn edit_headers(r: &mut Recording, edit: fn(&mut serde_json::Map<String, Value>)) {
    for o in &mut r.requests {
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
