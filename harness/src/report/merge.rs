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

/// Merges `inputs` into `out` (`out`'s folder name becomes the run id) and copies
/// their evidence. Two inputs with the same scenario × version are an error: the
/// merge would have to pick a verdict.
pub fn merge(inputs: &[(Results, PathBuf)], out: &Path) -> Result<Results, String> {
    if inputs.is_empty() {
        return Err("nothing to merge: give at least one report folder".into());
    }
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
                    if let Err(why) = copy(&dir.join(e), &out.join(&name)) {
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

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::copy(from, to)
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
        let err = merge(&inputs, Path::new("/nonexistent/out")).expect_err("conflict");
        assert!(
            err.contains("s1 on Istio 1.22.1 is in both a and b"),
            "{err}"
        );
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
            Path::new("/nonexistent/out"),
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
