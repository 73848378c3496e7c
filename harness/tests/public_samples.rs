//! Verbatim public samples of every output shape the harness reads from Istio, Envoy,
//! ztunnel, the echo server and curl, read by the same parsers a live run uses, byte
//! for byte (tabs, trailing spaces and empty last fields kept).
//!
//! Each sample is `fixtures/public/<kind>/<slug>.txt` with `<slug>.source` beside it:
//! its public URL on the first line, then `kind:`, the Istio version when known, and
//! notes on what was trimmed. tests/sim checks that the simulated cluster emits only
//! shapes these samples pin.

use std::path::{Path, PathBuf};

use egress_harness::curl;
use egress_harness::evidence::access_log::{self, Field, Layout};
use egress_harness::evidence::headers::EchoedHeaders;
use egress_harness::evidence::peer_metadata::PeerId;
use egress_harness::evidence::{status, xfcc, ztunnel_log};
use egress_harness::explain;

struct Sample {
    slug: String,
    text: String,
    url: String,
    kind: String,
}

fn folder(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/public")
        .join(name)
}

fn samples(name: &str) -> Vec<Sample> {
    let mut out: Vec<Sample> = std::fs::read_dir(folder(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .map(|p| {
            let slug = p.file_stem().unwrap().to_string_lossy().into_owned();
            let source = std::fs::read_to_string(p.with_extension("source"))
                .unwrap_or_else(|e| panic!("{slug}.source: {e}"));
            let kind = source
                .lines()
                .find_map(|l| l.strip_prefix("kind: "))
                .unwrap_or_else(|| panic!("{slug}.source names no kind"))
                .trim()
                .to_owned();
            Sample {
                text: std::fs::read_to_string(&p).unwrap(),
                url: source.lines().next().unwrap_or_default().to_owned(),
                slug,
                kind,
            }
        })
        .collect();
    out.sort_by(|a, b| a.slug.cmp(&b.slug));
    assert!(!out.is_empty(), "no samples in {name}");
    out
}

const FOLDERS: [&str; 9] = [
    "envoy-stats",
    "envoy-access-log",
    "ztunnel",
    "echo-body",
    "headers",
    "status",
    "curl-error",
    "response-body",
    "curl-header-json",
];

#[test]
fn every_sample_names_its_public_source() {
    for name in FOLDERS {
        if !folder(name).is_dir() {
            continue;
        }
        for s in samples(name) {
            assert!(
                s.url.starts_with("https://"),
                "{name}/{}: the first line of its .source is not a URL: {}",
                s.slug,
                s.url
            );
            assert!(
                s.text.ends_with('\n'),
                "{name}/{}: no final newline",
                s.slug
            );
        }
    }
}

/// Lines in layouts older than Istio 1.3 (no mixer status, no route name), and one
/// the docs cut short: refused, saying how many fields they have.
const NOT_READ: &[&str] = &[
    "istio-io-egress-control-sidecar-http-httpbin-2019",
    "istio-io-egress-control-sidecar-tls-google-2019",
    "istio-io-http-proxy-sidecar-tcp-2018",
    "istio-io-egress-gateway-tls-passthrough-2019",
    "istio-io-multicluster-sidecar-http-1-2-layout",
    "istio-io-egress-gateway-mtls-origination-truncated-2018",
];

#[test]
fn envoy_access_log_lines_are_read_as_istio_writes_them() {
    for s in samples("envoy-access-log") {
        for line in s.text.lines() {
            let parsed = access_log::parse_line(line);
            if NOT_READ.contains(&s.slug.as_str()) {
                let e = parsed.expect_err(&s.slug);
                assert!(e.reason.contains("fields"), "{}: {e}", s.slug);
                continue;
            }
            let e = parsed.unwrap_or_else(|e| panic!("{}: {e}\n{line:?}", s.slug));
            let get = |f: Field| e.get(f).unwrap_or_default();
            let what = format!("{} ({}): {line:?}", s.slug, s.kind);
            match s.kind.as_str() {
                "json" => assert_eq!(e.layout, Layout::Json, "{what}"),
                "sidecar-tcp" | "gateway-tcp" => {
                    assert!(e.is_tcp(), "{what}");
                    assert_eq!(get(Field::ResponseCode), "0", "{what}");
                }
                "sidecar-http" | "gateway-http" => {
                    assert!(!e.is_tcp(), "{what}");
                    assert!(get(Field::ResponseCode).parse::<u16>().is_ok(), "{what}");
                }
                "waypoint-http" => {
                    assert!(
                        get(Field::UpstreamCluster).starts_with("inbound-vip|"),
                        "{what}"
                    );
                }
                "nr-filter-chain-not-found" => {
                    assert_eq!(get(Field::ResponseFlags), "NR", "{what}");
                    assert_eq!(
                        get(Field::ResponseCodeDetails),
                        "filter_chain_not_found",
                        "{what}"
                    );
                }
                "blackhole" => assert!(
                    get(Field::UpstreamCluster) == "BlackHoleCluster"
                        || get(Field::ResponseCode) == "502",
                    "{what}"
                ),
                "upstream-failure" => {
                    assert!(get(Field::ResponseFlags).contains('U'), "{what}");
                }
                "rbac-denied" => {
                    assert_eq!(get(Field::ResponseCode), "403", "{what}");
                    assert!(
                        get(Field::ResponseCodeDetails).starts_with("rbac_access_denied"),
                        "{what}"
                    );
                }
                other => panic!("{}: unknown kind {other}", s.slug),
            }
        }
    }
}

#[test]
fn a_line_whose_last_field_is_empty_keeps_its_other_fields() {
    let s = samples("envoy-access-log")
        .into_iter()
        .find(|s| s.slug == "harness-devhub-nr-filter-chain-not-found-trailing-space")
        .expect("the sample");
    assert!(
        s.text.ends_with(" \n"),
        "the sample keeps its trailing space"
    );
    let e = access_log::parse_line(&s.text).unwrap();
    assert_eq!(e.layout, Layout::Istio1_9);
    assert_eq!(e.get(Field::RouteName), None);
    assert!(e.get(Field::DownstreamLocalAddress).is_some());
    // explain reads it too, where it used to say "21 fields".
    let mut out = Vec::new();
    let counts = explain::stream(s.text.as_bytes(), &mut out, true).unwrap();
    assert_eq!((counts.lines, counts.recognised), (1, 1));
}

#[test]
fn every_line_in_every_sample_file_is_read_by_explain() {
    for s in samples("envoy-access-log") {
        if NOT_READ.contains(&s.slug.as_str()) {
            continue;
        }
        let mut out = Vec::new();
        let counts = explain::stream(s.text.as_bytes(), &mut out, true).unwrap();
        assert_eq!(counts.recognised, counts.lines, "{}", s.slug);
    }
}

/// ztunnel samples that are not access lines (xDS, startup, an old format).
fn is_other(kind: &str) -> bool {
    kind == "ztunnel-other"
}

#[test]
fn ztunnel_lines_are_read_in_every_form_they_are_shown() {
    for s in samples("ztunnel") {
        let mut out = Vec::new();
        explain::stream(s.text.as_bytes(), &mut out, true).unwrap();
        let read: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &serde_json::Value| !v["ztunnel"].is_null())
            .collect();
        let connections = s.text.lines().filter(|l| l.contains("src.addr=")).count();
        if is_other(&s.kind) && !s.text.contains("src.addr=") {
            assert!(read.is_empty(), "{}: read {read:?}", s.slug);
            continue;
        }
        // A wrapped line is one connection however many lines it takes.
        let expected = if s.kind == "ztunnel-wrapped" {
            1
        } else {
            connections
        };
        assert_eq!(read.len(), expected, "{}", s.slug);
        for v in &read {
            let f = &v["ztunnel"];
            for key in ["src.addr", "dst.addr"] {
                let value = f[key].as_str().unwrap_or_default();
                assert!(
                    value.contains(':') && !value.contains(char::is_whitespace),
                    "{}: {key} = {value:?} in {f}",
                    s.slug
                );
            }
            assert!(f["direction"].is_null() || f["direction"].is_string());
        }
    }
}

#[test]
fn a_tab_separated_line_and_its_aligned_rendering_read_the_same() {
    let tabs = samples("ztunnel")
        .into_iter()
        .find(|s| s.kind == "ztunnel-tab" && s.text.contains("connection complete"))
        .expect("a tab-separated access line");
    let line = tabs.text.lines().next().unwrap();
    assert!(line.contains("\tinfo\taccess\tconnection complete\t"));
    let aligned = line
        .replacen('\t', "     ", 1)
        .replacen('\t', "    ", 1)
        .replacen('\t', "  ", 1)
        .replacen('\t', "     ", 1);
    let spaced = line.replace('\t', " ");
    let a = ztunnel_log::parse(line).unwrap();
    assert_eq!(ztunnel_log::parse(&aligned), Some(a.clone()));
    assert_eq!(ztunnel_log::parse(&spaced), Some(a.clone()));
    assert!(a.fields.contains_key("dst.hbone_addr"), "{a:?}");
}

#[test]
fn echoed_bodies_give_their_headers() {
    for s in samples("echo-body") {
        let parsed = EchoedHeaders::parse(&s.text);
        if s.slug.contains("elided") || s.slug.contains("fragment") {
            // The docs left lines out (`...`) or showed only a part: not a body.
            assert!(parsed.is_err(), "{}", s.slug);
            continue;
        }
        let headers = parsed.unwrap_or_else(|e| panic!("{}: {e}", s.slug));
        assert!(
            headers.get("User-Agent").is_some() || headers.get("Host").is_some(),
            "{}: {:?}",
            s.slug,
            headers.pairs()
        );
        if s.kind == "echo-basic-json" {
            let v: serde_json::Value = serde_json::from_str(&s.text).unwrap();
            for key in [
                "path",
                "host",
                "method",
                "proto",
                "headers",
                "namespace",
                "pod",
            ] {
                assert!(v.get(key).is_some(), "{}: no {key}", s.slug);
            }
        }
    }
}

#[test]
fn header_values_parse_as_istio_writes_them() {
    for s in samples("headers") {
        let (name, value) = s
            .text
            .trim_end_matches('\n')
            .split_once(": ")
            .unwrap_or_else(|| panic!("{}: not `Name: value`", s.slug));
        match s.kind.as_str() {
            "peer-metadata-id" => {
                assert!(name.eq_ignore_ascii_case("X-Envoy-Peer-Metadata-Id"));
                let id = PeerId::parse(value).unwrap_or_else(|e| panic!("{}: {e}", s.slug));
                assert!(!id.to_json().is_null());
            }
            "decorator-operation" => {
                assert!(name.eq_ignore_ascii_case("X-Envoy-Decorator-Operation"));
                let (host_port, route) = value.split_once('/').expect(&s.slug);
                assert!(host_port.contains(':') && route == "*", "{}", s.slug);
            }
            "xfcc" => {
                assert!(name.eq_ignore_ascii_case("X-Forwarded-Client-Cert"));
                let elements = xfcc::parse(value).unwrap_or_else(|e| panic!("{}: {e}", s.slug));
                assert!(!elements.is_empty(), "{}", s.slug);
            }
            other => panic!("{}: unknown kind {other}", s.slug),
        }
    }
}

#[test]
fn status_blocks_are_read_for_the_scenarios_status_keys() {
    for s in samples("status") {
        let object: serde_json::Value =
            serde_saphyr::from_str(&s.text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", s.slug));
        let keys: &[&str] = match s.kind.as_str() {
            "gateway-status" => &["Programmed"],
            // One blog trimmed its route status to ResolvedRefs alone.
            "route-status" | "policy-status" => &["Accepted", "ResolvedRefs"],
            other => panic!("{}: unknown kind {other}", s.slug),
        };
        let seen: Vec<_> = keys
            .iter()
            .map(|k| status::read(Some(&object), k))
            .collect();
        assert!(
            seen.iter().any(|seen| matches!(seen.value.as_deref(),
                Some(v) if v.contains("True") || v.contains("False"))),
            "{}: {keys:?} read as {seen:?}",
            s.slug
        );
        if s.kind == "gateway-status" {
            let listener = object["status"]["listeners"][0]["name"]
                .as_str()
                .expect("a listener");
            let seen = status::read(Some(&object), &format!("attachedRoutes.{listener}"));
            assert!(seen.value.is_some(), "{}: {seen:?}", s.slug);
        }
    }
}

#[test]
fn curl_errors_are_read_with_their_exit_code() {
    for s in samples("curl-error") {
        let e = curl::error_line(&s.text).unwrap_or_else(|| panic!("{}: not read", s.slug));
        let code: u32 = s
            .text
            .split("curl: (")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .and_then(|c| c.parse().ok())
            .unwrap();
        assert_eq!(e.code, code, "{}", s.slug);
        assert!(!e.message.is_empty(), "{}", s.slug);
    }
}

#[test]
fn curl_s_header_json_is_read_after_the_write_out() {
    for s in samples("curl-header-json") {
        let stdout = format!("{{}}\n{}{{\"http_code\":200}}\n{}", curl::MARKER, s.text);
        let headers = curl::split_output(&stdout)
            .1
            .and_then(|w| w.headers)
            .unwrap_or_else(|| panic!("{}: not read", s.slug));
        assert!(!headers.is_empty(), "{}", s.slug);
        assert!(
            headers.keys().all(|k| k == &k.to_ascii_lowercase()),
            "{}: {headers:?}",
            s.slug
        );
    }
}

#[test]
fn envoy_stats_are_read_line_by_line() {
    for s in samples("envoy-stats") {
        let stats = egress_harness::evidence::envoy_stats::parse(&s.text);
        assert_eq!(stats.len(), s.text.lines().count(), "{}", s.slug);
        assert!(
            stats.keys().all(|k| k.starts_with("cluster.outbound|")),
            "{}: {stats:?}",
            s.slug
        );
    }
}
