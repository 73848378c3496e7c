//! The simulated cluster emits only shapes a verbatim public sample pins
//! (harness/tests/fixtures/public/, each with its source URL): every access-log line,
//! ztunnel line, echoed body, response body and curl error in the recordings it
//! answers from, and every status block it writes. A shape is the form of the output,
//! not its values: the separators and quoting of each field, the keys and their order,
//! the indentation, the message of an error with its numbers and hosts left out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The bytes of every public sample of one kind folder.
fn public(folder: &str) -> Vec<(String, String)> {
    let dir = root().join("harness/tests/fixtures/public").join(folder);
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every request of every recording the simulation answers from.
fn recorded_requests() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for dir in ["tests/sim/recordings", "scenarios/recordings"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            for r in v["requests"].as_array().into_iter().flatten() {
                out.push((format!("{file} {}", r["name"]), r.clone()));
            }
        }
    }
    assert!(out.len() > 40, "only {} recorded requests", out.len());
    out
}

/// An Envoy TEXT line as its token classes and the exact separators between them:
/// `T` the `[START_TIME]`, `R` the request `"- - -"`, `H` an HTTP request triple,
/// `Q` another quoted field, `B` a bare one.
fn envoy_shape(line: &str) -> Option<String> {
    let b = line.as_bytes();
    if b.first() != Some(&b'[') {
        return None;
    }
    let mut shape = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' {
            shape.push(' ');
            i += 1;
            continue;
        }
        let (close, from) = match b[i] {
            b'[' => (b']', i + 1),
            b'"' => (b'"', i + 1),
            _ => (b' ', i),
        };
        let end = b[from..]
            .iter()
            .position(|c| *c == close)
            .map_or(b.len(), |p| from + p);
        let token = &line[from..end];
        shape.push(match b[i] {
            b'[' => 'T',
            b'"' if token == "- - -" => 'R',
            b'"' if token.split(' ').count() == 3 && token.contains(" /") => 'H',
            b'"' => 'Q',
            _ => 'B',
        });
        i = if close == b' ' { end } else { end + 1 };
    }
    Some(shape)
}

#[test]
fn every_access_log_line_the_simulation_emits_has_a_public_sample_s_shape() {
    let pinned: BTreeSet<String> = public("envoy-access-log")
        .iter()
        .flat_map(|(_, text)| text.lines().filter_map(envoy_shape).collect::<Vec<_>>())
        .collect();
    for (at, r) in recorded_requests() {
        for key in ["gateway_log", "sidecar_log"] {
            for line in r[key].as_array().into_iter().flatten() {
                let line = line.as_str().unwrap();
                let shape = envoy_shape(line).unwrap_or_else(|| panic!("{at}: {line}"));
                assert!(
                    pinned.contains(&shape),
                    "{at} {key}: no public sample has the shape {shape:?} of\n{line}"
                );
            }
        }
    }
}

/// A ztunnel line as its header separators and its fields' keys, each with whether
/// its value is quoted.
fn ztunnel_shape(line: &str) -> Option<String> {
    let mut shape = String::new();
    let mut rest = line;
    for _ in 0..4 {
        let word_end = rest.find(['\t', ' '])?;
        let after = &rest[word_end..];
        let sep_len = after.len() - after.trim_start_matches(['\t', ' ']).len();
        // The message, "connection complete", is one field with a space inside.
        if rest[..word_end] == *"connection" {
            let (_, tail) = rest.split_once("connection ")?;
            let end = tail.find('\t')?;
            shape.push_str("<connection ...>");
            shape.push_str(&tail[end..end + 1]);
            rest = &tail[end + 1..];
            break;
        }
        shape.push_str("<w>");
        shape.push_str(&after[..sep_len]);
        rest = &after[sep_len..];
    }
    for field in rest.split(' ') {
        let (key, value) = field.split_once('=')?;
        shape.push_str(key);
        shape.push_str(if value.starts_with('"') {
            "=\"\" "
        } else {
            "= "
        });
    }
    Some(shape)
}

#[test]
fn every_ztunnel_line_the_simulation_emits_has_a_public_sample_s_shape() {
    let pinned: BTreeSet<String> = public("ztunnel")
        .iter()
        .flat_map(|(_, text)| text.lines().filter_map(ztunnel_shape).collect::<Vec<_>>())
        .collect();
    let mut seen = 0;
    for (at, r) in recorded_requests() {
        for line in r["ztunnel_log"].as_array().into_iter().flatten() {
            let line = line.as_str().unwrap();
            let shape = ztunnel_shape(line).unwrap_or_else(|| panic!("{at}: {line:?}"));
            assert!(
                pinned.contains(&shape),
                "{at}: no public ztunnel line has the shape {shape:?} of\n{line:?}"
            );
            seen += 1;
        }
    }
    assert!(seen > 0, "no ztunnel line in the recordings");
}

/// A JSON body as its indentation, its keys but `tls` (serde_json reads them sorted)
/// and how it lists header values.
fn json_shape(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let second = body.lines().nth(1)?;
    let indent = second.len() - second.trim_start().len();
    let keys: Vec<&String> = v.as_object()?.keys().filter(|k| *k != "tls").collect();
    let header_values = match v["headers"].as_object().and_then(|h| h.values().next()) {
        Some(Value::Array(_)) => "lists",
        Some(_) => "strings",
        None => "none",
    };
    let trailing = if body.ends_with('\n') {
        "a newline"
    } else {
        "no newline"
    };
    Some(format!(
        "indent {indent}; keys {keys:?}; headers as {header_values}; ends with {trailing}"
    ))
}

/// The keys of a body's `tls` object. A sample may be the `"tls": {...}` member alone,
/// as docs print it, elided and so not JSON: then its keys are read line by line.
fn tls_keys(text: &str) -> BTreeSet<String> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return v["tls"]
            .as_object()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
    }
    let Some((_, member)) = text.split_once("\"tls\": {") else {
        return BTreeSet::new();
    };
    member
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('"')?.split_once("\":"))
        .map(|(key, _)| key.to_owned())
        .collect()
}

/// For every gopher request of the suite, `(recording request, answer)`: what the
/// project's echo sends back, the URL's selector up to its first newline.
fn tcp_echoes() -> BTreeSet<(String, String)> {
    let ws = egress_harness::suite::Workspace::at(root());
    let suite = egress_harness::suite::Suite::load(&ws).unwrap();
    let mut out = BTreeSet::new();
    for s in &suite.scenarios {
        for r in &s.requests {
            let url = &r.url.value;
            if !(url.starts_with("gopher://") || url.starts_with("gophers://")) {
                continue;
            }
            let path = url.split_once("://").unwrap().1;
            let selector = path.split_once("/_").map_or("", |(_, s)| s);
            let mut bytes = Vec::new();
            let mut it = selector.bytes();
            while let Some(b) = it.next() {
                if b == b'%' {
                    let hex: String = it.by_ref().take(2).map(char::from).collect();
                    bytes.push(u8::from_str_radix(&hex, 16).unwrap());
                } else {
                    bytes.push(b);
                }
            }
            let answer = match bytes.iter().position(|b| *b == b'\n') {
                Some(end) => &bytes[..=end],
                None => &bytes[..],
            };
            out.insert((
                format!("{}@local.json \"{}\"", s.name(), r.name.value),
                String::from_utf8_lossy(answer).into_owned(),
            ));
        }
    }
    assert!(out.len() >= 2, "the suite's TCP echoes: {out:?}");
    out
}

/// Every body the simulation answers with at run time, on a release outside and
/// inside each scenario's known issue.
fn answered_bodies() -> Vec<(String, String)> {
    let ws = egress_harness::suite::Workspace::at(root());
    let suite = egress_harness::suite::Suite::load(&ws).unwrap();
    let answers = super::data::Answers::load(&ws, &suite.scenarios).unwrap();
    // As a local run: the upstream was started and got the run's client certificate.
    answers.set_client_cert("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    let mut out = Vec::new();
    for s in &suite.scenarios {
        let context = egress_harness::recording::Context {
            namespace: s.name().to_owned(),
            client_pod: "curl".into(),
            service_account: "default".into(),
            upstream: None,
        };
        let mut versions = vec![semver::Version::new(1, 30, 5)];
        if s.known_issue.is_some() {
            versions.extend(
                ["1.22.1", "1.24.2", "1.29.2", "1.30.3"]
                    .iter()
                    .map(|v| semver::Version::parse(v).unwrap())
                    .filter(|v| s.known_issue_for(v).is_some()),
            );
        }
        for r in &s.requests {
            let context = egress_harness::judge::context_for(s, r, &context);
            let url = egress_harness::scenario::Template::parse(&r.url.value)
                .unwrap()
                .render(&|name: &str| context.var(name));
            let local = s.curl_args_for(egress_harness::model::UpstreamMode::Local);
            let argv = egress_harness::curl::argv(r, &url, "attempt-1", &local);
            for v in &versions {
                let wanted = answers.wanted(s.name()).unwrap();
                let Ok(a) = answers.answer(
                    &super::data::Call {
                        scenario: s.name(),
                        namespace: &context.namespace,
                        pod: &context.client_pod,
                        argv: &argv,
                        present: &Default::default(),
                    },
                    v,
                    false,
                    wanted,
                ) else {
                    continue;
                };
                let body = a
                    .stdout
                    .split_once(&format!("\n{}", egress_harness::curl::MARKER))
                    .map_or(a.stdout.as_str(), |(b, _)| b);
                out.push((
                    format!("{} {} on {v}", s.name(), r.name.value),
                    body.to_owned(),
                ));
            }
        }
    }
    assert!(out.len() > 40, "only {} answers", out.len());
    out
}

#[test]
fn every_echoed_body_the_simulation_emits_has_a_public_sample_s_shape() {
    let samples = public("echo-body");
    let pinned: BTreeSet<String> = samples
        .iter()
        .filter_map(|(_, text)| json_shape(text.trim_end_matches('\n')))
        .collect();
    let pinned_tls: BTreeSet<String> = samples
        .iter()
        .flat_map(|(_, text)| tls_keys(text.trim_end_matches('\n')))
        .collect();
    assert!(!pinned_tls.is_empty(), "no public echo body shows its tls");
    let recorded = recorded_requests()
        .into_iter()
        .map(|(at, r)| (at, r["body"].as_str().unwrap_or_default().to_owned()));
    let mut checked = 0;
    for (at, body) in recorded.chain(answered_bodies()) {
        let Some(shape) = json_shape(&body) else {
            continue;
        };
        assert!(
            pinned.contains(&shape),
            "{at}: no public echoed body has the shape {shape}; pinned: {pinned:#?}"
        );
        let tls = tls_keys(&body);
        assert!(
            tls.is_subset(&pinned_tls),
            "{at}: tls keys {tls:?}, pinned {pinned_tls:?}"
        );
        checked += 1;
    }
    assert!(checked > 40, "only {checked} JSON bodies");
}

/// Text with its numbers and host names left out, and what follows the last
/// `reason: ` (Envoy's local replies end with a cause that varies).
fn text_shape(text: &str) -> String {
    let text = text.trim_end_matches('\n');
    let text = match text.rfind("reason: ") {
        Some(at) => format!("{}reason: *", &text[..at]),
        None => text.to_owned(),
    };
    let mut out = String::new();
    for word in text.split(' ') {
        if !out.is_empty() {
            out.push(' ');
        }
        let host_port = word
            .rsplit_once(':')
            .is_some_and(|(h, p)| h.contains('.') && p.bytes().all(|b| b.is_ascii_digit()));
        if host_port {
            out.push_str("HOST:PORT");
        } else if word.bytes().all(|b| b.is_ascii_digit()) && !word.is_empty() {
            out.push('N');
        } else {
            out.push_str(word);
        }
    }
    out
}

#[test]
fn every_text_body_the_simulation_emits_has_a_public_sample_s_shape() {
    let pinned: BTreeSet<String> = public("response-body")
        .iter()
        .map(|(_, text)| text_shape(text))
        .collect();
    let echoed = tcp_echoes();
    for (at, r) in recorded_requests() {
        let body = r["body"].as_str().unwrap_or_default();
        if body.is_empty() || json_shape(body).is_some() || body.trim_start().starts_with('{') {
            continue;
        }
        // The project's TCP/TLS echo answers with the request's own bytes, as
        // tests/echo/tests/kinds.rs pins against the real program.
        if echoed.contains(&(at.clone(), body.to_owned())) {
            continue;
        }
        let shape = text_shape(body);
        assert!(
            pinned.contains(&shape),
            "{at}: no public response body has the shape {shape:?}; pinned: {pinned:#?}"
        );
    }
}

#[test]
fn every_curl_error_the_simulation_emits_has_a_public_sample_s_shape() {
    let pinned: BTreeSet<String> = public("curl-error")
        .iter()
        .flat_map(|(_, text)| text.lines().map(text_shape).collect::<Vec<_>>())
        .collect();
    for (at, r) in recorded_requests() {
        let stderr = r["stderr"].as_str().unwrap_or_default();
        for line in stderr.lines() {
            let shape = text_shape(line);
            assert!(
                pinned.contains(&shape),
                "{at}: no public curl error has the shape {shape:?}"
            );
        }
    }
}

/// Every key path of a value (`status.listeners[].conditions[].type`).
/// A route parent's `parentRef` (a policy's `ancestorRef`) repeats the spec's
/// reference as the scenario wrote it, so only its presence counts.
fn key_paths(v: &Value, at: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let path = format!("{at}.{k}");
                out.insert(path.clone());
                if k != "parentRef" && k != "ancestorRef" {
                    key_paths(v, &path, out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                key_paths(item, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_status_the_simulation_writes_has_the_keys_istio_writes() {
    use super::gateway_api;
    // The status samples Istio wrote, by the kind of object.
    let mut samples: Vec<(&str, BTreeSet<String>)> = Vec::new();
    for (slug, text) in public("status") {
        let v: Value = serde_saphyr::from_str(&text).unwrap();
        let istio =
            text.contains("istio.io/gateway-controller") || slug.starts_with("istio-golden");
        let kind = if v["status"]["listeners"].is_array() {
            "Gateway"
        } else if v["status"]["ancestors"].is_array() {
            "Policy"
        } else {
            "Route"
        };
        let mut paths = BTreeSet::new();
        key_paths(&v["status"], "status", &mut paths);
        if istio || kind == "Gateway" {
            samples.push((kind, paths));
        }
    }
    // A simulated cluster holding the Gateway API egress gateway, its routes and a
    // BackendTLSPolicy, as the scenarios apply them.
    let mut cluster = super::Cluster {
        istio: Some((semver::Version::new(1, 30, 3), "registry-only".into())),
        ..super::Cluster::default()
    };
    for plural in ["gateways", "httproutes", "tlsroutes", "backendtlspolicies"] {
        let crd: Value = serde_json::from_str(
            &gateway_api::crd_file(&format!(
                "https://x/gateway-api/v1.5.1/config/crd/experimental/gateway.networking.k8s.io_{plural}.yaml"
            ))
            .unwrap(),
        )
        .unwrap();
        cluster
            .crds
            .insert(crd["metadata"]["name"].as_str().unwrap().into(), crd);
    }
    // istiod started with them.
    cluster.istiod_crds = cluster.crds.clone();
    let ns = cluster.namespaces.entry("s".into()).or_default();
    for file in [
        "service-entries/httpbin.yaml",
        "gateway-api/gateway-http.yaml",
        "gateway-api/routes-http-to-443.yaml",
        "gateway-api/backend-tls-policy-missing-ca.yaml",
        "gateway-api/gateway-tls-passthrough.yaml",
        "gateway-api/routes-tls-passthrough.yaml",
    ] {
        let objects =
            egress_harness::manifest::parse_file(&root().join("manifests").join(file)).unwrap();
        for o in objects {
            ns.objects.insert((o.kind.clone(), o.name.clone()), o.body);
        }
    }
    let objects: Vec<(String, String)> = cluster.namespaces["s"].objects.keys().cloned().collect();
    let mut checked = 0;
    for (kind, name) in objects {
        let Some(body) = gateway_api::with_status(&cluster, "s", &kind, &name, false) else {
            continue;
        };
        if body["status"].is_null() {
            continue;
        }
        let class = match kind.as_str() {
            "Gateway" => "Gateway",
            k if k.ends_with("Route") => "Route",
            _ => "Policy",
        };
        let mut emitted = BTreeSet::new();
        key_paths(&body["status"], "status", &mut emitted);
        let same: Vec<&BTreeSet<String>> = samples
            .iter()
            .filter(|(k, _)| *k == class)
            .map(|(_, p)| p)
            .collect();
        assert!(!same.is_empty(), "no public {class} status");
        let every: BTreeSet<String> = same.iter().flat_map(|p| p.iter().cloned()).collect();
        let common: BTreeSet<String> = same.iter().skip(1).fold(same[0].clone(), |acc, p| {
            acc.intersection(p).cloned().collect()
        });
        let unknown: Vec<&String> = emitted.difference(&every).collect();
        let missing: Vec<&String> = common.difference(&emitted).collect();
        assert!(
            unknown.is_empty(),
            "{kind}/{name}: no sample has {unknown:?}"
        );
        assert!(
            missing.is_empty(),
            "{kind}/{name}: every sample has {missing:?}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} statuses checked");
}

/// curl's `%{header_json}` framing: `{` and the first entry on one line, then one entry
/// per line, each line but the last ending `],`, the last `}` alone.
fn header_json_framing(text: &str) -> Option<&'static str> {
    let lines: Vec<&str> = text.trim_end_matches('\n').lines().collect();
    let (last, entries) = lines.split_last()?;
    let framed = *last == "}"
        && entries.first().is_some_and(|l| l.starts_with("{\""))
        && entries.iter().enumerate().all(|(i, l)| {
            (i == 0 || l.starts_with('"'))
                && l.contains("\":[")
                && if i + 1 == entries.len() {
                    l.ends_with(']')
                } else {
                    l.ends_with("],")
                }
        });
    framed.then_some("curl header_json")
}

#[test]
fn response_headers_are_written_as_curl_writes_header_json() {
    let samples = public("curl-header-json");
    for (slug, text) in &samples {
        assert_eq!(
            header_json_framing(text),
            Some("curl header_json"),
            "{slug}"
        );
    }
    let mut headers = std::collections::BTreeMap::new();
    headers.insert(
        "Location".to_owned(),
        vec!["https://httpbin.org/".to_owned()],
    );
    headers.insert(
        "set-cookie".to_owned(),
        vec!["a=1".to_owned(), "b=\"2\"".to_owned()],
    );
    let text = super::data::header_json_text(&headers);
    assert_eq!(
        header_json_framing(&text),
        Some("curl header_json"),
        "{text}"
    );
    assert!(text.starts_with("{\"location\":"), "{text}");
    let read = egress_harness::curl::split_output(&format!(
        "{{}}\n{}{{\"http_code\":301}}\n{text}",
        egress_harness::curl::MARKER
    ))
    .1
    .and_then(|w| w.headers)
    .expect("headers");
    assert_eq!(read["set-cookie"], ["a=1", "b=\"2\""]);
    assert!(header_json_framing("{}").is_none());
}
