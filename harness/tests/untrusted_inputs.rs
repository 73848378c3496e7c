//! Every input that comes from outside — a `results.json` given to `report merge`, a
//! line or body given to `explain`, a scenario file, a bug report's YAML given to
//! `new-scenario` — mangled many times with a fixed seed and fed to the real `egress`
//! binary. Each run must end without a panic, print no raw control byte, and write
//! nothing outside the folder it was given. Bounded: a few hundred runs, seconds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

/// What an attacker or a broken tool would put in a field.
fn hostile(rng: &mut Rng, base: &Path) -> Value {
    let escape = base.join("../egress-escaped");
    let choices: Vec<Value> = vec![
        "\u{1b}[2J\u{1b}]0;owned\u{7}".into(),
        "\u{9b}31mC1\u{85}".into(),
        "a\u{0}b\rc\u{8}d".into(),
        "../../../../../tmp/egress-untrusted-escape".into(),
        escape.display().to_string().into(),
        "evidence/../../outside.log".into(),
        "/etc/passwd".into(),
        "javascript:alert(1)".into(),
        "<script>alert(1)</script>".into(),
        "x".repeat(5000).into(),
        "".into(),
        "${namespace}".into(),
        "| col | \n# heading".into(),
        (-1).into(),
        u64::MAX.into(),
        1e308.into(),
        Value::Null,
        true.into(),
        serde_json::json!({"nested": ["\u{1b}[31m"]}),
        serde_json::json!([]),
    ];
    choices[rng.below(choices.len())].clone()
}

/// `value` with one leaf (or container) replaced by something hostile, a key
/// dropped or a list emptied.
fn mangle(value: &mut Value, rng: &mut Rng, base: &Path) {
    let stop = rng.below(4) == 0;
    match value {
        Value::Object(map) if !map.is_empty() && !stop => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = keys[rng.below(keys.len())].clone();
            if rng.below(8) == 0 {
                map.remove(&key);
            } else if let Some(inner) = map.get_mut(&key) {
                mangle(inner, rng, base);
            }
        }
        Value::Array(items) if !items.is_empty() && !stop => {
            let i = rng.below(items.len());
            mangle(&mut items[i], rng, base);
        }
        _ => *value = hostile(rng, base),
    }
}

fn egress(root: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_egress"))
        .args(args)
        .current_dir(cwd)
        .env("EGRESS_ROOT", root)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("egress runs")
}

/// No panic, no raw control byte on the terminal (newline and tab are layout).
fn assert_handled(out: &Output, what: &str) {
    let code = out.status.code();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        code.is_some() && code != Some(101) && !stderr.contains("panicked"),
        "{what}: exit {code:?}\n{stderr}"
    );
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let raw = text.chars().find(|c| {
            (c.is_control() && *c != '\n' && *c != '\t') || ('\u{80}'..='\u{9f}').contains(c)
        });
        assert!(raw.is_none(), "{what}: raw {raw:?} on {stream}:\n{text}");
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            out.extend(files(&path));
        } else {
            out.insert(path);
        }
    }
    out
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("egress-untrusted-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Nothing escaped to the places the hostile values point at.
fn assert_nothing_escaped(base: &Path) {
    for p in [
        PathBuf::from("/tmp/egress-untrusted-escape"),
        base.join("../egress-escaped"),
        base.join("../outside.log"),
    ] {
        assert!(!p.exists(), "{} was written", p.display());
    }
}

#[test]
fn report_merge_refuses_or_merges_mangled_results_and_writes_only_its_out_folder() {
    let base = scratch("merge");
    // A real report to start from: a replayed run of one scenario, on a copy of the
    // suite, from another working folder.
    let root = base.join("root");
    copy_dir(&repo().join("scenarios"), &root.join("scenarios"));
    copy_dir(&repo().join("manifests"), &root.join("manifests"));
    let seeded = egress(
        &root,
        &base,
        &["run", "--scenario", "gateway-http", "--skip", "::live"],
    );
    assert_eq!(
        seeded.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&seeded.stdout)
    );
    let report = std::fs::read_dir(root.join("reports"))
        .expect("a report")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("results.json").is_file())
        .expect("results.json");
    let seed: Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("results.json")).unwrap())
            .unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for i in 0..60 {
        let input = base.join(format!("in-{i}"));
        copy_dir(&report, &input);
        let mut results = seed.clone();
        for _ in 0..=rng.below(3) {
            mangle(&mut results, &mut rng, &base);
        }
        std::fs::write(input.join("results.json"), results.to_string()).unwrap();
        let before = files(&base);
        let out_dir = base.join(format!("out-{i}"));
        let out = egress(
            &root,
            &base,
            &[
                "report",
                "merge",
                &input.display().to_string(),
                &report.display().to_string(),
                "--out",
                &out_dir.display().to_string(),
            ],
        );
        assert_handled(&out, &format!("merge #{i}: {results}"));
        let written: Vec<PathBuf> = files(&base)
            .difference(&before)
            .filter(|p| !p.starts_with(&out_dir))
            .cloned()
            .collect();
        assert!(
            written.is_empty(),
            "merge #{i} wrote outside --out: {written:?}"
        );
        assert_nothing_escaped(&base);
        let _ = std::fs::remove_dir_all(&input);
        let _ = std::fs::remove_dir_all(&out_dir);
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn explain_reads_mangled_lines_and_bodies_without_echoing_control_bytes() {
    let base = scratch("explain");
    let recording: Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo().join("tests/sim/recordings/gateway-mtls-origination@local.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let line = recording["requests"][0]["gateway_log"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let body: Value =
        serde_json::from_str(recording["requests"][0]["body"].as_str().unwrap()).unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    for i in 0..60 {
        // A line: a field swapped for hostile text.
        let mut fields: Vec<String> = line.split(' ').map(str::to_owned).collect();
        let at = rng.below(fields.len());
        fields[at] = match hostile(&mut rng, &base) {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let file = base.join("line.txt");
        std::fs::write(&file, fields.join(" ")).unwrap();
        for format in ["text", "json"] {
            let out = egress(
                &base,
                &base,
                &[
                    "explain",
                    "--access-log",
                    &file.display().to_string(),
                    "--format",
                    format,
                ],
            );
            assert_handled(
                &out,
                &format!("explain line #{i} ({format}): {}", fields.join(" ")),
            );
        }
        // A body: a value swapped.
        let mut mangled = body.clone();
        mangle(&mut mangled, &mut rng, &base);
        let file = base.join("body.json");
        std::fs::write(&file, mangled.to_string()).unwrap();
        let out = egress(
            &base,
            &base,
            &["explain", "--headers", &file.display().to_string()],
        );
        assert_handled(&out, &format!("explain body #{i}: {mangled}"));
    }
    assert_nothing_escaped(&base);
    let _ = std::fs::remove_dir_all(&base);
}

/// A YAML document as JSON (a subset of YAML), mangled, for the loader.
fn yaml_of(value: &Value) -> String {
    value.to_string()
}

#[test]
fn validate_and_new_scenario_take_mangled_yaml_and_write_only_their_scenario() {
    let base = scratch("yaml");
    let root = base.join("root");
    copy_dir(&repo().join("manifests"), &root.join("manifests"));
    std::fs::create_dir_all(root.join("scenarios")).unwrap();
    let scenario = serde_json::json!({
        "name": "mangled",
        "description": "a scenario to mangle",
        "tags": ["gateway"],
        "istio": ">=1.22",
        "manifests": ["service-entries/httpbin.yaml"],
        "upstream": {"hosts": ["api.example.com"], "ports": [{"port": 9000, "kind": "tcp-echo"}]},
        "requests": [{
            "name": "r",
            "url": "http://httpbin.org/headers",
            "curl_args": ["--http1.1"],
            "expect": {"status": 200, "headers": {"X-Envoy-Decorator-Operation": {"equals": "httpbin.org:80/*"}},
                        "gateway_log": {"response_code": {"equals": 200}}}
        }]
    });
    let report = serde_json::json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "reported", "namespace": "default"},
        "spec": {"hosts": ["api.example.com"], "location": "MESH_EXTERNAL", "resolution": "DNS",
                 "ports": [{"number": 443, "name": "https", "protocol": "HTTPS"}]}
    });
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    for i in 0..50 {
        let mut s = scenario.clone();
        mangle(&mut s, &mut rng, &base);
        std::fs::write(root.join("scenarios/mangled.yaml"), yaml_of(&s)).unwrap();
        let before = files(&base);
        let out = egress(&root, &base, &["validate"]);
        assert_handled(&out, &format!("validate #{i}: {s}"));
        assert_eq!(files(&base), before, "validate #{i} wrote files");

        let mut r = report.clone();
        mangle(&mut r, &mut rng, &base);
        let input = base.join("report.yaml");
        std::fs::write(&input, yaml_of(&r)).unwrap();
        let name = format!("from-report-{i}");
        let before = files(&base);
        let out = egress(
            &root,
            &base,
            &[
                "new-scenario",
                &name,
                "--from",
                &input.display().to_string(),
            ],
        );
        assert_handled(&out, &format!("new-scenario #{i}: {r}"));
        // Only the new scenario and its manifests, inside the root.
        let written: Vec<PathBuf> = files(&base)
            .difference(&before)
            .filter(|p| {
                !(p.starts_with(root.join("scenarios")) || p.starts_with(root.join("manifests")))
                    || !p.display().to_string().contains(&name)
            })
            .cloned()
            .collect();
        assert!(written.is_empty(), "new-scenario #{i} wrote {written:?}");
        assert_nothing_escaped(&base);
    }
    let _ = std::fs::remove_dir_all(&base);
}
