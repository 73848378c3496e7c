//! The `egress` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn egress(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_egress"))
        .args(args)
        .env("EGRESS_ROOT", root())
        .env_remove("EGRESS_SCENARIO")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("egress-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn validate_accepts_every_shipped_scenario() {
    let out = egress(&["validate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).matches("ok: ").count() >= 14);
}

#[test]
fn validate_reports_every_error_of_a_file_with_what_to_write_instead() {
    let text_of = "name: pitfalls\ndescription: d   # PLACEHOLDER: say what it shows\nrequests:\n  - name: r\n    url: http://httpbin.org/headers\n    expect:\n      status: 200\n      flavour: mint\n      gateway_log:\n        upstream_cluster: {matches: \"outbound|443||httpbin.org\"}\n      headers:\n        X-Anything: {matches: \".*\"}\n";
    let path = scratch("pitfalls.yaml", text_of.as_bytes());
    let out = egress(&["validate", path.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    for want in [
        "pitfalls.yaml:2:",
        "PLACEHOLDER from `egress new-scenario`",
        "pitfalls.yaml:8:7: `requests[0].expect.flavour`: unknown field",
        "has an empty alternative",
        "write {equals: \"outbound|443||httpbin.org\"}",
        "`.*` matches every text",
    ] {
        assert!(said.contains(want), "expected `{want}` in:\n{said}");
    }
    assert!(!said.contains(".?`"), "{said}");
}

#[test]
fn validate_rejects_broken_files_naming_them() {
    let good = std::fs::read_to_string(root().join("scenarios/gateway-http.yaml")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "unknown-key.yaml",
            good.replace("name: gateway-http", "name: unknown-key\nflavour: mint")
                .into_bytes(),
            "unknown-key.yaml:2:1: `flavour`: unknown field",
        ),
        (
            "broken-yaml.yaml",
            b"name: broken-yaml\ndescription: [unclosed\n".to_vec(),
            "broken-yaml.yaml:",
        ),
        (
            "missing-manifest.yaml",
            good.replace("name: gateway-http", "name: missing-manifest")
                .replace("gateways/httpbin-http.yaml", "gateways/nope.yaml")
                .into_bytes(),
            "missing-manifest.yaml:8:5: `manifests[1]`: manifest `gateways/nope.yaml` not found",
        ),
        ("empty.yaml", Vec::new(), "empty.yaml: the file is empty"),
        (
            "binary.yaml",
            vec![0x7f, b'E', b'L', b'F', 0, 0, 0xff, 0xfe],
            "binary.yaml:1: not UTF-8 text",
        ),
        (
            "not-a-map.yaml",
            b"- just\n- a list\n".to_vec(),
            "not-a-map.yaml:1:1",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = scratch(name, &bytes);
        let out = egress(&["validate", path.to_str().unwrap()]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {said}");
        assert!(said.contains(want), "{name}: expected `{want}` in:\n{said}");
        assert!(!said.contains("panicked"), "{name}: {said}");
    }
    let out = egress(&["validate", "/nonexistent/scenario.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("/nonexistent/scenario.yaml: cannot read the file"),
        "{}",
        text(&out)
    );
}

#[test]
fn plan_covers_each_version_with_its_own_kubeconfig() {
    // One cluster per version; the article's layout, a cluster per profile, on request.
    let wide = text(&egress(&[
        "plan",
        "--istio",
        "1.22.1,1.30.3",
        "--mesh-wide-profiles",
    ]));
    for cluster in ["egc-1-22-1-allow-any", "egc-1-30-3-in-mesh-headers"] {
        assert!(
            wide.contains(&format!("# cluster {cluster}:")),
            "no cluster {cluster}"
        );
    }
    let out = egress(&["plan", "--istio", "1.22.1,1.30.3"]);
    let plan = text(&out);
    assert!(out.status.success(), "{plan}");
    // One per version: ambient beside the sidecars on 1.30.3, and the scenario with
    // its own Gateway API CRDs last on it, swapping them in and back.
    for cluster in [
        "egc-1-22-1-registry-only",
        "egc-1-30-3-registry-only-ambient",
    ] {
        assert!(
            plan.contains(&format!("# cluster {cluster}:")),
            "no cluster {cluster}"
        );
    }
    assert_eq!(plan.matches("# cluster ").count(), 2, "{plan}");
    assert_eq!(plan.matches(" create cluster ").count(), 2, "{plan}");
    assert!(
        plan.contains("swap Gateway API CRDs v1.5.1 -> v1.4.1"),
        "{plan}"
    );
    for line in plan.lines().filter(|l| {
        l.contains(" create cluster ")
            || l.contains(" install -y ")
            || l.contains(" delete cluster ")
    }) {
        assert!(
            line.contains("--kubeconfig ") && line.contains("/clusters/egc-"),
            "{line}"
        );
        assert!(!line.contains(".kube/config"), "{line}");
    }
    assert!(
        plan.lines()
            .any(|l| l.contains("egc-1-22-1-registry-only --kubeconfig")
                && l.contains("kindest/node:v1.30.")),
        "1.22 needs a 1.30 node"
    );
    assert!(
        plan.lines().any(
            |l| l.contains("egc-1-30-3-registry-only-ambient --kubeconfig")
                && l.contains("kindest/node:v1.36.")
        ),
        "1.30 runs on the newest Kubernetes it supports, 1.36"
    );
}

#[test]
fn unknown_scenario_lists_the_known_ones() {
    let out = egress(&["plan", "--scenario", "gatway-http"]);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out);
    assert!(said.contains("did you mean `gateway-http`?"), "{said}");
    assert!(
        said.contains("known scenarios: ambient-waypoint-authz, ambient-waypoint-tls-origination, app-tls-in-mesh-mtls"),
        "{said}"
    );
}

#[test]
fn explain_reads_pasted_evidence_exactly() {
    let recording: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            root().join("scenarios/recordings/gateway-mtls-tls-origination@1.22.1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let observed = &recording["requests"][0];
    let body = scratch("body.json", observed["body"].as_str().unwrap().as_bytes());
    let out = egress(&[
        "explain",
        "--headers",
        body.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let x: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(x["peer_metadata_id"]["proxy_type"], "router");
    assert_eq!(
        x["peer_metadata_id"]["pod"],
        "istio-egressgateway-75c5457c56-htpvz"
    );
    assert_eq!(x["peer_metadata"]["ISTIO_VERSION"], "1.22.1");
    assert_eq!(x["peer_metadata"]["LABELS"]["istio"], "egressgateway");
    assert_eq!(x["decorator_operation"], "httpbin.org:443/*");
    assert_eq!(
        x["xfcc"][0]["uri"],
        "spiffe://cluster.local/ns/default/sa/default"
    );
    assert_eq!(
        x["xfcc"][0]["cert"]["san_uris"][0],
        "spiffe://cluster.local/ns/default/sa/default"
    );
    assert_eq!(x["xfcc"][0]["hash_matches"], true);

    let log = format!(
        "# pasted\n\n{}\nnot a log line\n",
        observed["gateway_log"][0].as_str().unwrap()
    );
    let log = scratch("gw.log", log.as_bytes());
    let out = egress(&[
        "explain",
        "--access-log",
        log.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["response_code"], 200);
    assert_eq!(lines[0]["upstream_cluster"], "outbound|443||httpbin.org");
    assert_eq!(lines[0]["requested_server_name"], "httpbin.org");
    assert_eq!(lines[0]["route_name"], serde_json::Value::Null);
    assert!(lines[1]["error"].is_string());
}

#[test]
fn explain_reads_lines_as_people_paste_them_and_fails_on_nothing_it_knows() {
    let line = r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/2" 200 - via_upstream - "-" 0 1450 57 57 "10.244.0.7" "curl/7.83.1-DEV" "51ed62d9-1da8-4250-9923-df406ca9fd57" "httpbin.org" "3.213.1.197:80" outbound|80||httpbin.org 10.244.0.6:41144 10.244.0.6:8080 10.244.0.7:55490 - -"#;
    let untimed = line.split_once("] ").unwrap().1;
    let pasted = [
        format!("{line}   \t"),
        format!("istio-egressgateway-6646f879b8-dfx7v istio-proxy {line}"),
        format!("[pod/istio-egressgateway-6646f879b8-dfx7v/istio-proxy] {line}"),
        untimed.to_owned(),
    ]
    .join("\n");
    let log = scratch("pasted.log", pasted.as_bytes());
    let out = egress(&["explain", "--access-log", log.to_str().unwrap()]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert_eq!(
        said.matches("answered by the upstream (via_upstream)")
            .count(),
        4,
        "{said}"
    );

    let garbage = scratch("garbage.log", b"hello\nworld\n");
    let out = egress(&["explain", "--access-log", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no access-log line recognised"),
        "{}",
        text(&out)
    );

    let body = scratch(
        "bad-id.json",
        br#"{"headers": {"X-Envoy-Peer-Metadata-Id": "router-only-one-part"}}"#,
    );
    let out = egress(&["explain", "--headers", body.to_str().unwrap()]);
    assert!(
        text(&out)
            .contains("warning: X-Envoy-Peer-Metadata-Id `router-only-one-part` is malformed"),
        "{}",
        text(&out)
    );
}

#[test]
fn egress_run_is_the_suite_and_refuses_a_simulation_it_does_not_have() {
    // A report folder of its own: CI's run id names the suite's report.
    let id = format!("cli-egress-run-{}", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_egress"))
        .args([
            "run",
            "--scenario",
            "gateway-http",
            "--cluster",
            "simulated",
        ])
        .env("EGRESS_ROOT", root())
        .env("EGRESS_RUN_ID", &id)
        .env_remove("EGRESS_SCENARIO")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(std::path::Path::new(&root()).join("reports").join(&id));
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("gateway-http::live"), "{text}");
    // With a live trial selected, the offline checks are one line, not a dozen.
    assert!(text.contains("offline-checks ("), "{text}");
    assert!(!text.contains("gateway-http::validate"), "{text}");
    assert!(
        text.contains("--cluster simulated runs only in the project's own test binary"),
        "{text}"
    );
}

#[test]
fn listing_help_and_rejected_arguments_leave_no_report_folder() {
    let id = format!("cli-no-report-{}", std::process::id());
    for args in [
        vec!["run", "--list"],
        vec!["run", "--help"],
        vec!["run", "--bogus"],
        vec!["run", "--istio", "1.19"],
        vec!["run", "--scenario", "no-such-scenario"],
        vec!["run", "--scenario", "gateway-http", "--istio", "1.21.0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_egress"))
            .args(&args)
            .env("EGRESS_ROOT", root())
            .env("EGRESS_RUN_ID", &id)
            .env_remove("EGRESS_SCENARIO")
            .output()
            .unwrap();
        let rejected = !args.contains(&"--list") && !args.contains(&"--help");
        assert_eq!(
            out.status.code(),
            Some(if rejected { 2 } else { 0 }),
            "{args:?}: {}",
            text(&out)
        );
        assert!(
            !root().join("reports").join(&id).exists(),
            "{args:?} left reports/{id}"
        );
    }
}

/// A scenario root of the test's own: the project's manifests, an empty scenarios/,
/// and manifests/user/ for the test's files.
fn scratch_root(name: &str) -> PathBuf {
    let scratch = std::env::temp_dir().join(format!("egress-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    copy_dir(&root().join("manifests"), &scratch.join("manifests"));
    std::fs::create_dir_all(scratch.join("scenarios")).unwrap();
    std::fs::create_dir_all(scratch.join("manifests/user")).unwrap();
    scratch
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_scenario_whose_manifests_fail_validation_is_not_run_live() {
    // A user's scenario routing to a subset no DestinationRule defines.
    let scratch = scratch_root("refused");
    std::fs::write(
        scratch.join("manifests/user/subset-without-rule.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: httpbin}\nspec:\n  hosts: [httpbin.org]\n  http:\n  - route:\n    - destination: {host: httpbin.org, subset: cnn}\n",
    )
    .unwrap();
    std::fs::write(
        scratch.join("scenarios/subset-without-rule.yaml"),
        "name: subset-without-rule\ndescription: a route to a subset nobody defines\nmanifests: [service-entries/httpbin.yaml, user/subset-without-rule.yaml]\nrequests:\n  - name: r\n    url: http://httpbin.org/headers\n    expect: {status: 200}\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_egress"))
        .args(["run", "--scenario", "subset-without-rule"])
        .env("EGRESS_ROOT", &scratch)
        .env("EGRESS_RUN_ID", "refused")
        .env_remove("EGRESS_SCENARIO")
        .output()
        .unwrap();
    let text = text(&out);
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("subset-without-rule::live")
            && text.contains("not run live: its manifests fail validation")
            && text.contains("subset `cnn` of `httpbin.org`"),
        "{text}"
    );
    // Nothing was set up for it: no download, no cluster, in seconds.
    assert!(
        !text.contains("create cluster") && !text.contains("download"),
        "{text}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn validate_accepts_kinds_it_does_not_check_with_a_note_and_refuses_namespaces() {
    let scratch = std::env::temp_dir().join(format!("egress-cli-kinds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    copy_dir(&root().join("manifests"), &scratch.join("manifests"));
    std::fs::create_dir_all(scratch.join("scenarios")).unwrap();
    std::fs::create_dir_all(scratch.join("manifests/user")).unwrap();
    let scenario = |name: &str, manifest: &str| {
        std::fs::write(
            scratch.join(format!("scenarios/{name}.yaml")),
            format!("name: {name}\ndescription: d\nmanifests: [service-entries/httpbin.yaml, user/{manifest}]\nrequests:\n  - name: r\n    url: http://httpbin.org/headers\n    expect: {{status: 200}}\n"),
        )
        .unwrap();
    };
    std::fs::write(
        scratch.join("manifests/user/sni-logging.yaml"),
        "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: sni}\nspec:\n  accessLogging: [{providers: [{name: envoy}]}]\n---\napiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: w}\nspec: {url: oci://example/w}\n",
    )
    .unwrap();
    std::fs::write(
        scratch.join("manifests/user/egress-namespace.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-egress}\n",
    )
    .unwrap();
    scenario("sni-logging", "sni-logging.yaml");
    scenario("egress-namespace", "egress-namespace.yaml");
    let validate = |name: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_egress"))
            .args(["validate", "--scenario", name])
            .env("EGRESS_ROOT", &scratch)
            .env_remove("EGRESS_SCENARIO")
            .output()
            .unwrap();
        (out.status.success(), text(&out))
    };
    let (ok, said) = validate("sni-logging");
    assert!(ok, "{said}");
    assert!(
        said.contains("note:") && said.contains("kind `WasmPlugin`") && !said.contains("Telemetry"),
        "{said}"
    );
    let (ok, said) = validate("egress-namespace");
    assert!(!ok, "{said}");
    assert!(said.contains("does not apply Namespaces yet"), "{said}");
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn a_scenario_s_sidecar_beside_its_install_profile_s_is_refused() {
    // allow-any on a shared cluster puts a selector-less Sidecar in the scenario's
    // namespace; a second one of the scenario's own makes Istio's choice undefined.
    let scratch = scratch_root("two-sidecars");
    std::fs::write(
        scratch.join("manifests/user/own-sidecar.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: mine}\nspec:\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n",
    )
    .unwrap();
    std::fs::write(
        scratch.join("scenarios/two-sidecars.yaml"),
        "name: two-sidecars\ndescription: d\ninstall: allow-any\nmanifests: [service-entries/httpbin.yaml, user/own-sidecar.yaml]\nrequests:\n  - name: r\n    url: http://httpbin.org/headers\n    expect: {status: 200}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_egress"))
        .args(["validate", "--scenario", "two-sidecars"])
        .env("EGRESS_ROOT", &scratch)
        .output()
        .unwrap();
    let text = text(&out);
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("a second Sidecar without workloadSelector")
            && text.contains("namespace-profiles/allow-any.yaml"),
        "{text}"
    );
}

#[test]
fn explain_shows_a_line_s_control_characters_instead_of_sending_them_to_the_terminal() {
    let file = std::env::temp_dir().join(format!("egress-cli-escape-{}.log", std::process::id()));
    std::fs::write(
        &file,
        "[2024-06-24T21:29:03.272Z] \"GET /h\u{1b}]0;pwned\u{7} HTTP/1.1\" 200 - via_upstream - \"-\" 0 3157 67 67 \"10.244.0.7\" \"curl/7.83.1-DEV\" \"a9\" \"httpbin.org\" \"44.195.190.188:80\" outbound|80||httpbin.org 10.244.0.6:56744 10.244.0.6:8443 10.244.0.7:57726 httpbin.org -\n",
    )
    .unwrap();
    let out = egress(&["explain", "--access-log", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    let text = text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("GET /h\\u{1b}]0;pwned\\u{7}"), "{text}");
}

#[test]
fn nonsense_settings_are_refused_before_anything_runs() {
    for (args, says) in [
        (
            vec!["run", "--deadline", "0", "--scenario", "gateway-http"],
            "--deadline",
        ),
        (
            vec![
                "run",
                "--upstream-image",
                "mirror.example/echo",
                "--scenario",
                "gateway-http",
            ],
            "give a tag",
        ),
        (vec!["run", "--scenario", ""], "names no scenario or tag"),
    ] {
        let out = egress(&args);
        let text = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
    }
}

#[test]
fn doctor_for_an_existing_cluster_opens_the_current_context() {
    let doctor = |kubeconfig: &Path| {
        Command::new(env!("CARGO_BIN_EXE_egress"))
            .args(["doctor", "--cluster", "existing", "--offline"])
            .env("EGRESS_ROOT", root())
            .env("KUBECONFIG", kubeconfig)
            .output()
            .unwrap()
    };
    // No kubeconfig: not "ready".
    let missing = doctor(Path::new("/nonexistent/egress-kubeconfig"));
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(
        text(&missing).contains("FAIL kube context"),
        "{}",
        text(&missing)
    );
    assert!(text(&missing).contains("/nonexistent/egress-kubeconfig"));
    // A context whose server refuses: named, with the cause, as kubectl names it.
    let refused = scratch(
        "refused-kubeconfig",
        b"apiVersion: v1\nkind: Config\ncurrent-context: lab\nclusters:\n- name: lab\n  cluster: {server: \"https://127.0.0.1:1\", insecure-skip-tls-verify: true}\ncontexts:\n- name: lab\n  context: {cluster: lab, user: lab}\nusers:\n- name: lab\n  user: {token: t}\n",
    );
    let out = doctor(&refused);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("ok   kube context           context lab, server https://127.0.0.1:1"),
        "{said}"
    );
    assert!(
        said.contains("FAIL cluster answers") && said.contains("Connection refused"),
        "{said}"
    );
}

#[test]
fn small_things_a_newcomer_meets() {
    // explain reads standard input when no file is named.
    let line = "[2026-12-01T12:00:00.000Z] \"GET /headers HTTP/1.1\" 200 - via_upstream - \"-\" 0 612 3 2 \"10.244.0.7\" \"curl/8.11.1\" \"5e1f0c2a-0003-4b7e-9c3d-0123456789ab\" \"httpbin.org\" \"172.18.0.9:443\" outbound|443||httpbin.org 10.244.0.6:41144 10.244.0.6:8443 10.244.0.7:55490 httpbin.org -\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_egress"))
        .arg("explain")
        .env("EGRESS_ROOT", root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), line.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("GET /headers HTTP/1.1 for httpbin.org -> 200"),
        "{}",
        text(&out)
    );
    // A minor alone is its newest known patch, and the run says so.
    let out = egress(&["plan", "--istio", "1.22", "--scenario", "gateway-http"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("--istio 1.22 is Istio 1.22.8"),
        "{}",
        text(&out)
    );
    let out = egress(&["plan", "--istio", "1.21", "--scenario", "gateway-http"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("a minor alone names its newest patch for 1.22"),
        "{}",
        text(&out)
    );
    // `egress run --help` is the harness's help, not libtest-mimic's.
    let out = egress(&["run", "--help"]);
    assert!(out.status.success());
    assert!(
        text(&out).starts_with("Run Istio egress conformance scenarios"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("Usage: egress run [--scenario"),
        "{}",
        text(&out)
    );
    // A bad value from the environment names the variable.
    let out = Command::new(env!("CARGO_BIN_EXE_egress"))
        .args(["run", "--scenario", "gateway-http"])
        .env("EGRESS_ROOT", root())
        .env("EGRESS_DEADLINE", "abc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains(
            "the environment variable EGRESS_DEADLINE holds a value --deadline does not take"
        ),
        "{}",
        text(&out)
    );
}
