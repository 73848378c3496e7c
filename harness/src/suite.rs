//! The workspace (where scenarios and manifests live), the suite of scenarios loaded from
//! it, and selection by name or tag.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::scenario::{self, LoadError, Scenario};

/// The checkout the harness works in.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
}

impl Workspace {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `EGRESS_ROOT`, else the nearest ancestor of the current directory holding
    /// `scenarios/` and `manifests/`, else the checkout this binary was built from.
    pub fn discover() -> Result<Self, String> {
        if let Some(root) = std::env::var_os("EGRESS_ROOT") {
            let ws = Self::at(PathBuf::from(root));
            return if ws.looks_right() {
                Ok(ws)
            } else {
                Err(format!(
                    "EGRESS_ROOT={} holds no scenarios/ and manifests/",
                    ws.root.display()
                ))
            };
        }
        if let Ok(cwd) = std::env::current_dir() {
            for dir in cwd.ancestors() {
                let ws = Self::at(dir);
                if ws.looks_right() {
                    return Ok(ws);
                }
            }
        }
        let built_from = Self::at(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
        if built_from.looks_right() {
            return Ok(built_from);
        }
        Err("no scenarios/ and manifests/ here or above; run inside the egress-conformance checkout or set EGRESS_ROOT".into())
    }

    fn looks_right(&self) -> bool {
        self.scenarios_dir().is_dir() && self.manifests_dir().is_dir()
    }

    pub fn scenarios_dir(&self) -> PathBuf {
        self.root.join("scenarios")
    }

    pub fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    /// The scenario files (`*.yaml`, `*.yml` directly under `scenarios/`), sorted.
    /// The scenario files under scenarios/, and under its subdirectories (the
    /// regression pack in scenarios/regressions/), sorted.
    pub fn scenario_files(&self) -> Result<Vec<PathBuf>, String> {
        let mut files = Vec::new();
        let mut dirs = vec![self.scenarios_dir()];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                // A link is not followed: it could lead out of the tree or loop.
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_symlink() {
                    return Err(format!(
                        "{} is a symbolic link: scenarios are read only from files inside {}",
                        path.display(),
                        self.scenarios_dir().display()
                    ));
                }
                if kind.is_dir() {
                    dirs.push(path);
                } else if matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                ) {
                    files.push(path);
                }
            }
        }
        // By scenario name, wherever the file sits.
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then(a.cmp(b)));
        Ok(files)
    }

    pub fn reports_dir(&self) -> PathBuf {
        self.root.join("reports")
    }

    /// A path as the user should see it: relative to the workspace when inside it.
    pub fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Every scenario file of a workspace: the ones that loaded and the ones that did not.
#[derive(Debug)]
pub struct Suite {
    pub scenarios: Vec<Scenario>,
    pub broken: Vec<(PathBuf, Vec<LoadError>)>,
}

impl Suite {
    pub fn load(ws: &Workspace) -> Result<Self, String> {
        let files = ws.scenario_files()?;
        let mut suite = Suite {
            scenarios: Vec::new(),
            broken: Vec::new(),
        };
        for file in files {
            let shown = PathBuf::from(ws.display(&file));
            match scenario::load_file(&file, &ws.manifests_dir()) {
                Ok(mut s) => {
                    s.source = shown;
                    suite.scenarios.push(s);
                }
                Err(errors) => {
                    let errors = errors
                        .into_iter()
                        .map(|e| LoadError {
                            file: shown.clone(),
                            ..e
                        })
                        .collect();
                    suite.broken.push((shown, errors));
                }
            }
        }
        // A name is a namespace and a selector: two files may not share one.
        let mut seen: Vec<(String, PathBuf)> = Vec::new();
        let mut duplicates = Vec::new();
        for s in &suite.scenarios {
            match seen.iter().find(|(n, _)| n == s.name()) {
                Some((_, first)) => {
                    duplicates.push((s.source.clone(), first.clone(), s.name().to_owned()))
                }
                None => seen.push((s.name().to_owned(), s.source.clone())),
            }
        }
        for (file, first, name) in duplicates {
            suite.scenarios.retain(|s| s.source != file);
            suite.broken.push((
                file.clone(),
                vec![LoadError {
                    file,
                    line: None,
                    column: None,
                    key: Some("name".into()),
                    message: format!(
                        "scenario `{name}` is also {}: scenario names are unique across scenarios/ and its folders",
                        first.display()
                    ),
                }],
            ));
        }
        Ok(suite)
    }

    pub fn names(&self) -> Vec<&str> {
        self.scenarios.iter().map(Scenario::name).collect()
    }

    pub fn tags(&self) -> BTreeSet<&str> {
        self.scenarios
            .iter()
            .flat_map(Scenario::tag_names)
            .collect()
    }

    /// The scenarios named or tagged by any of `terms` (each may hold comma-separated
    /// terms), in suite order. An empty selection selects everything.
    pub fn select(&self, terms: &[String]) -> Result<Vec<&Scenario>, String> {
        let terms = split_terms(terms);
        if terms.is_empty() {
            return Ok(self.scenarios.iter().collect());
        }
        let mut unknown = Vec::new();
        for term in &terms {
            let known = self
                .scenarios
                .iter()
                .any(|s| s.name() == *term || s.has_tag(term));
            if !known {
                unknown.push(*term);
            }
        }
        if !unknown.is_empty() {
            return Err(self.unknown_message(&unknown));
        }
        Ok(self
            .scenarios
            .iter()
            .filter(|s| terms.iter().any(|t| s.name() == *t || s.has_tag(t)))
            .collect())
    }

    fn unknown_message(&self, unknown: &[&str]) -> String {
        let candidates: Vec<&str> = self.names().into_iter().chain(self.tags()).collect();
        let mut message = String::new();
        for term in unknown {
            message.push_str(&format!("error: no scenario is named or tagged `{term}`"));
            if let Some(close) = closest(term, &candidates) {
                message.push_str(&format!("; did you mean `{close}`?"));
            }
            message.push('\n');
        }
        message.push_str(&format!("known scenarios: {}\n", self.names().join(", ")));
        message.push_str(&format!(
            "known tags: {}",
            self.tags().into_iter().collect::<Vec<_>>().join(", ")
        ));
        message
    }
}

/// `--scenario` values as single names or tags: comma-separated, trimmed, none empty.
pub fn split_terms(terms: &[String]) -> Vec<&str> {
    terms
        .iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

/// The candidate nearest to `word` by edit distance, if near enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2) || c.contains(word))
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j] + 1).min(row[j + 1] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_scenarios_of_one_name_in_different_folders_are_refused() {
        let root = std::env::temp_dir().join(format!("egress-suite-twice-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let real = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        std::fs::create_dir_all(root.join("scenarios/more")).unwrap();
        std::os::unix::fs::symlink(real.manifests_dir(), root.join("manifests")).unwrap();
        let text = std::fs::read_to_string(real.scenarios_dir().join("gateway-http.yaml")).unwrap();
        std::fs::write(root.join("scenarios/gateway-http.yaml"), &text).unwrap();
        std::fs::write(root.join("scenarios/more/gateway-http.yaml"), &text).unwrap();
        let suite = Suite::load(&Workspace::at(&root)).unwrap();
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(suite.scenarios.len(), 1);
        assert_eq!(suite.broken.len(), 1);
        assert!(
            suite.broken[0].1[0].message.contains("is also"),
            "{:?}",
            suite.broken
        );
    }

    #[test]
    fn a_link_under_scenarios_is_refused_not_followed() {
        let root = std::env::temp_dir().join(format!("egress-suite-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("scenarios")).unwrap();
        // A loop: followed, discovery would walk it for ever.
        std::os::unix::fs::symlink(root.join("scenarios"), root.join("scenarios/again")).unwrap();
        let err = Workspace::at(&root).scenario_files().unwrap_err();
        assert!(err.contains("is a symbolic link"), "{err}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn closest_finds_typos_only() {
        let names = ["gateway-http", "gateway-tls-passthrough", "mtls"];
        assert_eq!(closest("gatway-http", &names), Some("gateway-http"));
        assert_eq!(closest("mtsl", &names), Some("mtls"));
        assert_eq!(closest("nosuch", &names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
