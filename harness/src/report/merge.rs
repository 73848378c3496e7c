//! `egress report merge DIR…`: the results of shards and of per-version jobs as one
//! report. Each input's evidence is copied under `<its run id>/` in the output, so
//! the merged folder stands alone (it is what the nightly publishes).

use std::path::{Path, PathBuf};

use super::results::{FORMAT, Results};
use super::write::RESULTS;

/// A report folder or a `results.json` in one.
pub fn read_input(path: &Path) -> Result<(Results, PathBuf), String> {
    let (file, dir) = if path.is_dir() {
        (path.join(RESULTS), path.to_path_buf())
    } else {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        (path.to_path_buf(), dir)
    };
    if !file.is_file() {
        return Err(format!(
            "{}: no {RESULTS} here; give report folders (reports/<run-id>) or their {RESULTS}",
            path.display()
        ));
    }
    Ok((Results::read(&file)?, dir))
}

/// What a results.json from elsewhere may hold: every path, id, link and number in it
/// becomes a file name, a link or a duration here, so each is checked before anything
/// is written (the nightly merges artifacts other jobs uploaded).
fn untrusted(results: &Results, dir: &Path) -> Vec<String> {
    let from = &results.run_id;
    let mut problems = Vec::new();
    if !crate::model::valid_run_id(from) {
        problems.push(format!(
            "run_id {from:?} is not a run id (letters, digits, `-`, `_`, `.`; at most {})",
            crate::model::RUN_ID_MAX
        ));
    }
    let number = |what: String, v: f64, problems: &mut Vec<String>| {
        if !(v.is_finite() && (0.0..=1e9).contains(&v)) {
            problems.push(format!("{what} is {v}, not a duration in seconds"));
        }
    };
    for case in &results.cases {
        let at = format!(
            "{} on {}",
            case.scenario,
            case.istio.as_deref().unwrap_or("-")
        );
        if let Some(v) = &case.istio
            && semver::Version::parse(v).is_err()
        {
            problems.push(format!("{at}: istio {v:?} is not a version"));
        }
        for e in &case.evidence {
            if let Err(why) = evidence_source(dir, e) {
                problems.push(format!("{at}: evidence {e:?}: {why}"));
            }
        }
        if let Some(k) = &case.known_issue
            && !k.url.starts_with("https://")
        {
            problems.push(format!(
                "{at}: known issue link {:?} is not https://",
                k.url
            ));
        }
        number(
            format!("{at}: duration_seconds"),
            case.duration_seconds,
            &mut problems,
        );
        for t in &case.timings {
            number(format!("{at}: timing {}", t.step), t.seconds, &mut problems);
        }
        for r in &case.requests {
            number(
                format!("{at}: request {}", r.name),
                r.elapsed_seconds,
                &mut problems,
            );
            if let Some(v) = r.consistent_after_seconds {
                number(format!("{at}: request {}", r.name), v, &mut problems);
            }
        }
    }
    problems
}

/// The file an evidence entry names: relative, under `evidence/`, no `..`, no link on
/// the way, and inside the report folder once resolved.
fn evidence_source(dir: &Path, entry: &str) -> Result<PathBuf, String> {
    use std::path::Component;
    let path = Path::new(entry);
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain || path.components().next() != Some(Component::Normal("evidence".as_ref())) {
        return Err("not a relative path under evidence/".into());
    }
    let mut at = dir.to_path_buf();
    for c in path.components() {
        at.push(c);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!("{} is a link", at.display()));
        }
    }
    Ok(at)
}

/// `path` made absolute with its existing part resolved, for comparing folders.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            break;
        };
        rest.push(name.to_owned());
        existing = parent;
    }
    let mut out = std::fs::canonicalize(existing).unwrap_or_else(|_| existing.to_path_buf());
    out.extend(rest.iter().rev());
    out
}

/// Checks the whole merge before it writes: inputs, their contents, and `out`.
pub fn check(inputs: &[(Results, PathBuf)], out: &Path) -> Result<(), String> {
    let target = resolved(out);
    let mut problems = Vec::new();
    // Run ids name the output's folders, and a scenario × version has one verdict.
    let mut ids: Vec<&str> = Vec::new();
    let mut keys: Vec<((String, String), &str)> = Vec::new();
    for (results, _) in inputs {
        if ids.contains(&results.run_id.as_str()) {
            problems.push(format!(
                "two inputs have run id {:?}: their evidence would share a folder",
                results.run_id
            ));
        }
        ids.push(&results.run_id);
        for case in &results.cases {
            let key = case.key();
            if let Some((_, other)) = keys.iter().find(|(k, _)| *k == key) {
                problems.push(format!(
                    "{} on Istio {} is in both {other} and {}; merge runs that split the work (shards, versions), not reruns",
                    key.0,
                    if key.1.is_empty() { "(none)" } else { &key.1 },
                    results.run_id
                ));
            } else {
                keys.push((key, &results.run_id));
            }
        }
    }
    for (results, dir) in inputs {
        let source = resolved(dir);
        // The output is never an input nor around one (its files would be inputs'
        // files); inside one it is only a new folder.
        if target == source || source.starts_with(&target) {
            problems.push(format!(
                "--out {} overlaps the input {}: write the merged report to a folder of its own",
                out.display(),
                dir.display()
            ));
        }
        problems.extend(
            untrusted(results, dir)
                .into_iter()
                .map(|p| format!("{}: {p}", dir.join(RESULTS).display())),
        );
    }
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        problems.push(format!(
            "--out {} exists and is not empty: a merge writes a new folder",
            out.display()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "nothing was written; the merge refuses:\n  {}",
            problems.join("\n  ")
        ))
    }
}

/// Merges `inputs` into `out` (`out`'s folder name becomes the run id) and copies
/// their evidence. Two inputs with the same scenario × version are an error: the
/// merge would have to pick a verdict. Everything is checked ([`check`]) before the
/// first file is written.
pub fn merge(inputs: &[(Results, PathBuf)], out: &Path) -> Result<Results, String> {
    if inputs.is_empty() {
        return Err("nothing to merge: give at least one report folder".into());
    }
    check(inputs, out)?;
    let run_id = out
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("merged")
        .to_owned();
    let mut merged = Results {
        format: FORMAT.into(),
        run_id,
        started: String::new(),
        finished: String::new(),
        harness: env!("CARGO_PKG_VERSION").into(),
        shard: None,
        merged_from: Vec::new(),
        problems: Vec::new(),
        interrupted: false,
        timing: None,
        cases: Vec::new(),
    };
    let mut origin: Vec<((String, String), String)> = Vec::new();
    let mut copied_names: Vec<String> = Vec::new();
    for (results, dir) in inputs {
        let from = results.run_id.clone();
        merged.merged_from.push(match &results.shard {
            Some(shard) => format!("{from} (shard {shard})"),
            None => from.clone(),
        });
        merged.interrupted |= results.interrupted;
        merged
            .problems
            .extend(results.problems.iter().map(|p| format!("{from}: {p}")));
        if merged.started.is_empty() || results.started < merged.started {
            merged.started.clone_from(&results.started);
        }
        if results.finished > merged.finished {
            merged.finished.clone_from(&results.finished);
        }
        for case in &results.cases {
            let key = case.key();
            if let Some((_, other)) = origin.iter().find(|(k, _)| *k == key) {
                return Err(format!(
                    "{} on Istio {} is in both {other} and {from}; merge runs that split the work (shards, versions), not reruns",
                    key.0,
                    if key.1.is_empty() { "(none)" } else { &key.1 }
                ));
            }
            origin.push((key, from.clone()));
            let mut case = case.clone();
            case.evidence = case
                .evidence
                .iter()
                .map(|e| {
                    let name = format!("{from}/{e}");
                    // Cases of one run may share a file: it is copied once.
                    let copied = if copied_names.contains(&name) {
                        Ok(())
                    } else {
                        copied_names.push(name.clone());
                        evidence_source(dir, e).and_then(|source| copy(&source, &out.join(&name)))
                    };
                    if let Err(why) = copied {
                        merged.problems.push(format!("{from}: evidence {e}: {why}"));
                    }
                    name
                })
                .collect();
            merged.cases.push(case);
        }
    }
    merged.cases.sort_by(|a, b| {
        a.scenario.cmp(&b.scenario).then_with(|| {
            let v = |c: &super::results::Case| {
                c.istio
                    .as_deref()
                    .and_then(|v| semver::Version::parse(v).ok())
            };
            v(a).cmp(&v(b))
        })
    });
    Ok(merged)
}

/// Copies into a file that must not exist yet: a merge never overwrites.
fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let mut source = std::fs::File::open(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| format!("{}: {e}", to.display()))?;
    std::io::copy(&mut source, &mut target)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", from.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::results::{Case, Status};

    fn results(run_id: &str, cases: &[(&str, &str)]) -> Results {
        let cases = cases
            .iter()
            .map(|(s, v)| Case {
                evidence: vec!["evidence/x.log".into()],
                ..Case::example(s, v, Status::Pass)
            })
            .collect();
        Results {
            started: format!("2026-11-26T0{}:00:00Z", run_id.len()),
            shard: Some("1/2".into()),
            ..Results::example(run_id, cases)
        }
    }

    #[test]
    fn shards_combine_and_evidence_follows() {
        let base = std::env::temp_dir().join(format!("egress-merge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (a, b) = (base.join("a"), base.join("bb"));
        for dir in [&a, &b] {
            std::fs::create_dir_all(dir.join("evidence")).expect("mkdir");
            std::fs::write(dir.join("evidence/x.log"), "log").expect("write");
        }
        let inputs = vec![
            (results("a", &[("s2", "1.22.1"), ("s1", "1.22.1")]), a),
            (results("bb", &[("s1", "1.30.3")]), b),
        ];
        let out = base.join("merged");
        let merged = merge(&inputs, &out).expect("merge");
        let keys: Vec<_> = merged.cases.iter().map(Case::key).collect();
        assert_eq!(
            keys,
            vec![
                ("s1".into(), "1.22.1".into()),
                ("s1".into(), "1.30.3".into()),
                ("s2".into(), "1.22.1".into())
            ]
        );
        assert_eq!(merged.run_id, "merged");
        assert_eq!(merged.merged_from, vec!["a (shard 1/2)", "bb (shard 1/2)"]);
        assert!(merged.problems.is_empty(), "{:?}", merged.problems);
        assert!(out.join("bb/evidence/x.log").is_file());
        assert_eq!(merged.cases[1].evidence, vec!["bb/evidence/x.log"]);
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn nothing_in_an_input_leads_out_of_its_folder_and_a_refusal_writes_nothing() {
        let base = std::env::temp_dir().join(format!("egress-merge-evil-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let input = base.join("in");
        std::fs::create_dir_all(input.join("evidence")).expect("mkdir");
        std::fs::write(input.join("evidence/x.log"), "log").expect("write");
        std::os::unix::fs::symlink("/etc/hostname", input.join("evidence/link.log")).expect("link");
        let out = base.join("out");
        for (run_id, evidence, problem) in [
            ("ok", "/etc/passwd", "not a relative path under evidence/"),
            (
                "ok",
                "evidence/../../etc/passwd",
                "not a relative path under evidence/",
            ),
            ("ok", "logs/x.log", "not a relative path under evidence/"),
            ("ok", "evidence/link.log", "is a link"),
            ("../../x", "evidence/x.log", "is not a run id"),
            ("", "evidence/x.log", "is not a run id"),
        ] {
            let mut r = results(run_id, &[("s1", "1.22.1")]);
            r.cases[0].evidence = vec![evidence.into()];
            let err = merge(&[(r, input.clone())], &out).expect_err(evidence);
            assert!(
                err.contains(problem) && err.contains("nothing was written"),
                "{err}"
            );
            assert!(
                !out.exists(),
                "{run_id} {evidence}: wrote {}",
                out.display()
            );
        }
        let mut r = results("ok", &[("s1", "1.22.1")]);
        r.cases[0].duration_seconds = 1e308;
        r.cases[0].known_issue = Some(crate::report::results::KnownIssueRef {
            url: "javascript:alert(1)".into(),
            mode: "xfail".into(),
            note: None,
        });
        let err = merge(&[(r, input.clone())], &out).expect_err("numbers and links");
        assert!(
            err.contains("not a duration") && err.contains("not https://"),
            "{err}"
        );
        // The output is never an input or around one.
        for out in [input.clone(), base.clone()] {
            let err = merge(&[(results("ok", &[("s1", "1.22.1")]), input.clone())], &out)
                .expect_err("overlap");
            assert!(err.contains("overlaps the input"), "{err}");
        }
        assert!(
            std::fs::metadata(input.join("evidence/x.log"))
                .expect("kept")
                .len()
                > 0
        );
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn the_same_case_twice_is_refused() {
        let inputs = vec![
            (
                results("a", &[("s1", "1.22.1")]),
                PathBuf::from("/nonexistent/a"),
            ),
            (
                results("b", &[("s1", "1.22.1")]),
                PathBuf::from("/nonexistent/b"),
            ),
        ];
        let out = std::env::temp_dir().join(format!("egress-merge-twice-{}", std::process::id()));
        let err = merge(&inputs, &out).expect_err("conflict");
        assert!(
            err.contains("s1 on Istio 1.22.1 is in both a and b"),
            "{err}"
        );
        assert!(!out.exists(), "refused before anything was copied");
        // Two inputs of one run id would share the output's folder for their evidence.
        let inputs = vec![
            (
                results("a", &[("s1", "1.22.1")]),
                PathBuf::from("/nonexistent/a"),
            ),
            (
                results("a", &[("s2", "1.22.1")]),
                PathBuf::from("/nonexistent/b"),
            ),
        ];
        let err = merge(&inputs, &out).expect_err("same run id");
        assert!(err.contains("two inputs have run id \"a\""), "{err}");
        let mut bad = results("c", &[("s1", "1</table>")]);
        bad.cases[0].evidence.clear();
        let err = merge(&[(bad, PathBuf::from("/nonexistent/c"))], &out).expect_err("version");
        assert!(err.contains("is not a version"), "{err}");
    }

    #[test]
    fn a_merge_keeps_each_case_its_mode() {
        use crate::report::results::Source;
        let mut simulated = results("sim", &[("s1", "1.22.1")]);
        simulated.cases[0].source = Source::Simulated;
        simulated.cases[0].evidence.clear();
        let mut live = results("live", &[("s1", "1.30.3")]);
        live.cases[0].evidence.clear();
        let merged = merge(
            &[
                (simulated, PathBuf::from("/nonexistent/sim")),
                (live, PathBuf::from("/nonexistent/live")),
            ],
            &std::env::temp_dir().join(format!("egress-merge-modes-{}", std::process::id())),
        )
        .expect("merge");
        let sources: Vec<Source> = merged.cases.iter().map(|c| c.source).collect();
        assert_eq!(sources, vec![Source::Simulated, Source::Live]);
        assert_eq!(merged.cases[0].status_text(), "pass (simulated)");
        assert!(
            merged
                .mode_notice()
                .is_some_and(|n| n.contains("SIMULATED: 1 case(s)")),
            "{:?}",
            merged.mode_notice()
        );
    }
}
