//! The cases of the running process, gathered as trials finish and written to
//! `reports/<run-id>/` at the end, when the run cannot start, and on Ctrl-C (cases
//! still running then become errors). A run that includes live trials reports
//! those; replayed recordings make the report only of runs without a live trial.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::results::{Case, FORMAT, Results, Source, Status};

pub struct Reporter {
    /// `None`: this process writes no report (listing, or one test under cargo-nextest).
    dir: Option<PathBuf>,
    run_id: String,
    started: String,
    shard: Option<String>,
    baseline: Option<Results>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cases: Vec<Case>,
    /// Cases begun and not finished, by token.
    running: Vec<(usize, Case)>,
    next_token: usize,
    problems: Vec<String>,
    interrupted: bool,
    timing: Option<crate::model::RunTiming>,
}

impl Reporter {
    /// A reporter writing to `reports_dir/<run_id>`. Without an explicit run id, a
    /// folder that exists already gets a numbered sibling instead of being overwritten.
    pub fn new(
        reports_dir: &Path,
        run_id: Option<String>,
        shard: Option<String>,
        baseline: Option<&Path>,
    ) -> Result<Self, String> {
        let baseline = baseline.map(Results::read).transpose()?;
        // The folder is made here, atomically: two runs never share one.
        let (run_id, dir) = match run_id {
            Some(id) => {
                let dir = reports_dir.join(&id);
                make_dir(&dir).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        format!(
                            "{} exists: a run id names one run; set another EGRESS_RUN_ID or leave it unset",
                            dir.display()
                        )
                    } else {
                        format!("{}: {e}", dir.display())
                    }
                })?;
                (id, dir)
            }
            None => fresh_dir(reports_dir, &crate::model::run_id())?,
        };
        Ok(Self {
            dir: Some(dir),
            run_id,
            started: super::now(),
            shard,
            baseline,
            state: Mutex::new(State::default()),
        })
    }

    /// Gives back the folder made for a run that ran nothing (rejected arguments).
    /// Only an empty folder goes: whatever was written in it stays.
    pub fn discard(&self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// A reporter that writes nothing.
    pub fn off(run_id: String) -> Self {
        Self {
            dir: None,
            run_id,
            started: super::now(),
            shard: None,
            baseline: None,
            state: Mutex::new(State::default()),
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The report folder (evidence names are relative to it).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, case: Case) {
        self.state().cases.push(case);
    }

    /// Marks a case as running: if the process ends before [`Self::finish`], the
    /// placeholder is reported (an error saying the case did not finish).
    pub fn begin(&self, placeholder: Case) -> usize {
        let mut state = self.state();
        state.next_token += 1;
        let token = state.next_token;
        state.running.push((token, placeholder));
        token
    }

    pub fn finish(&self, token: usize, case: Case) {
        let mut state = self.state();
        state.running.retain(|(t, _)| *t != token);
        state.cases.push(case);
    }

    pub fn problem(&self, message: impl Into<String>) {
        self.state().problems.push(message.into());
    }

    /// Copies a file into the report folder as evidence of `case`.
    pub fn keep(&self, case: &mut Case, name: &str, content: &[u8]) {
        let Some(dir) = &self.dir else { return };
        let path = dir.join(name);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, content));
        match written {
            Ok(()) => case.evidence.push(name.to_owned()),
            Err(e) => self.problem(format!("evidence {}: {e}", path.display())),
        }
    }

    /// The results as they stand.
    pub fn results(&self) -> Results {
        let state = self.state();
        let mut cases = state.cases.clone();
        for (_, placeholder) in &state.running {
            cases.push(placeholder.clone());
        }
        if cases.iter().any(|c| c.source != Source::Recording) {
            // Broken scenario files (no version) stay: they are errors of any run.
            cases.retain(|c| {
                c.source != Source::Recording || c.istio.is_none() && c.status == Status::Error
            });
        }
        cases.sort_by(|a, b| {
            a.scenario
                .cmp(&b.scenario)
                .then_with(|| version_order(&a.istio).cmp(&version_order(&b.istio)))
        });
        Results {
            format: FORMAT.into(),
            run_id: self.run_id.clone(),
            started: self.started.clone(),
            finished: super::now(),
            harness: env!("CARGO_PKG_VERSION").into(),
            shard: self.shard.clone(),
            merged_from: Vec::new(),
            problems: state.problems.clone(),
            interrupted: state.interrupted,
            timing: state.timing.clone().map(|mut t| {
                // Time to consistency is in the cases; the engine cannot see it.
                t.consistency_seconds = cases
                    .iter()
                    .flat_map(|c| &c.requests)
                    .filter_map(|r| r.consistent_after_seconds)
                    .sum();
                t.deadline_wait_seconds = cases
                    .iter()
                    .flat_map(|c| &c.requests)
                    .filter(|r| r.consistent_after_seconds.is_none())
                    .map(|r| r.elapsed_seconds)
                    .sum();
                t
            }),
            cases,
        }
    }

    /// Writes the report files; says where on stderr. Never fails the run by itself:
    /// a report that cannot be written is said, and the run's verdict stands.
    pub fn write(&self) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let results = self.results();
        match super::write::write(dir, &results, self.baseline.as_ref()) {
            Ok(page) => {
                eprintln!(
                    "egress: report {} ({} case(s); summary.md, junit.xml, results.json beside it)",
                    page.display(),
                    results.cases.len()
                );
                Some(page)
            }
            Err(e) => {
                eprintln!("egress: could not write the report: {e}");
                None
            }
        }
    }
}

impl Reporter {
    /// The run was interrupted: the report says so.
    /// Where the run's time went, as the engine measured it.
    pub fn set_timing(&self, timing: crate::model::RunTiming) {
        self.state().timing = Some(timing);
    }

    pub fn mark_interrupted(&self) {
        self.state().interrupted = true;
    }

    /// Called on a signal when no engine runs, before the process exits: running
    /// cases become errors and the report is written.
    pub fn interrupted(&self) {
        {
            let mut state = self.state();
            state.interrupted = true;
            for (_, case) in &mut state.running {
                case.status = Status::Error;
                case.message = Some("interrupted (SIGINT/SIGTERM) before the case finished".into());
            }
        }
        self.write();
    }
}

fn version_order(v: &Option<String>) -> (u8, Option<semver::Version>, String) {
    match v {
        Some(text) => (0, semver::Version::parse(text).ok(), text.clone()),
        None => (1, None, String::new()),
    }
}

/// Creates `dir` (its parents as needed); fails if it exists.
fn make_dir(dir: &Path) -> std::io::Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::create_dir(dir)
}

/// Makes `reports/<id>`, or `reports/<id>-2`, `-3`, … if taken (two runs in one second).
fn fresh_dir(reports_dir: &Path, id: &str) -> Result<(String, PathBuf), String> {
    for n in 1..=1000 {
        let candidate = if n == 1 {
            id.to_owned()
        } else {
            format!("{id}-{n}")
        };
        let dir = reports_dir.join(&candidate);
        match make_dir(&dir) {
            Ok(()) => return Ok((candidate, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
    }
    Err(format!(
        "{}: no free folder for run {id} after 1000 tries",
        reports_dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(scenario: &str, source: Source, status: Status) -> Case {
        Case {
            source,
            ..Case::example(scenario, "1.22.1", status)
        }
    }

    #[test]
    fn unfinished_cases_are_reported_and_live_cases_win() {
        let dir = std::env::temp_dir().join(format!("egress-collect-{}", std::process::id()));
        let reporter = Reporter::new(&dir, Some("t".into()), None, None).expect("reporter");
        reporter.record(case("a", Source::Recording, Status::Pass));
        assert_eq!(reporter.results().cases.len(), 1);
        let token = reporter.begin(case("b", Source::Live, Status::Error));
        let results = reporter.results();
        assert_eq!(results.cases.len(), 1, "replays drop out of a live report");
        assert_eq!(results.cases[0].scenario, "b");
        reporter.finish(token, case("b", Source::Live, Status::Pass));
        assert_eq!(reporter.results().cases[0].status, Status::Pass);
        assert!(reporter.write().is_some());
        for file in ["results.json", "junit.xml", "summary.md", "index.html"] {
            assert!(dir.join("t").join(file).is_file(), "{file}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_run_in_the_same_second_gets_its_own_folder() {
        let dir = std::env::temp_dir().join(format!("egress-fresh-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("20261126T000000Z")).expect("mkdir");
        let (id, path) = fresh_dir(&dir, "20261126T000000Z").expect("fresh");
        assert_eq!(id, "20261126T000000Z-2");
        assert_eq!(path, dir.join("20261126T000000Z-2"));
        assert!(path.is_dir(), "made, not only named");
        // Many runs at once: each gets a folder of its own.
        let ids: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| fresh_dir(&dir, "20261126T000001Z").expect("fresh").0))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), 8, "{ids:?}");
        // An explicit id that exists is refused, not shared.
        let err = Reporter::new(&dir, Some("20261126T000000Z".into()), None, None)
            .err()
            .expect("refused");
        assert!(err.contains("a run id names one run"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
