//! Evidence of a live scenario run, written under `reports/<run>/evidence/<scenario>@<istio>/`
//! on failure (or always, with `--evidence always`): what a person needs to tell a
//! harness bug from an Istio bug without the cluster.

use std::path::{Path, PathBuf};

/// No single evidence file grows beyond this; the tail is kept (the newest lines
/// are the ones about the failure).
pub const FILE_CAP: usize = 4 * 1024 * 1024;

/// When evidence is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvidenceMode {
    #[default]
    OnFailure,
    Always,
}

impl EvidenceMode {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "on-failure" => Ok(Self::OnFailure),
            "always" => Ok(Self::Always),
            other => Err(format!(
                "--evidence takes `on-failure` or `always`, not `{other}`"
            )),
        }
    }
}

/// A directory of evidence files, each capped.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub problems: Vec<String>,
}

impl Bundle {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            files: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Writes `content` to `name` inside the bundle, keeping only its last [`FILE_CAP`] bytes.
    pub fn write(&mut self, name: &str, content: &[u8]) {
        let path = self.dir.join(name);
        let result = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, capped(content)));
        match result {
            Ok(()) => self.files.push(path),
            Err(e) => self.problems.push(format!("{}: {e}", path.display())),
        }
    }

    /// Records that a piece of evidence could not be collected (also written to the bundle).
    pub fn missing(&mut self, what: &str, why: &str) {
        self.problems.push(format!("{what}: {why}"));
    }

    /// Writes `problems.txt` when something could not be collected.
    pub fn finish(mut self) -> Self {
        if !self.problems.is_empty() {
            let text = self.problems.join("\n") + "\n";
            self.write("problems.txt", text.as_bytes());
        }
        self
    }

    /// Truncates every file under `dir` (e.g. `kind export logs`) to the cap.
    pub fn cap_tree(&mut self, dir: &Path) {
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if entry.metadata().is_ok_and(|m| m.len() > FILE_CAP as u64)
                    && let Ok(bytes) = std::fs::read(&path)
                    && let Err(e) = std::fs::write(&path, capped(&bytes))
                {
                    self.problems.push(format!("{}: {e}", path.display()));
                }
            }
        }
    }
}

/// The last [`FILE_CAP`] bytes, after a line saying how much was cut.
pub fn capped(content: &[u8]) -> Vec<u8> {
    if content.len() <= FILE_CAP {
        return content.to_vec();
    }
    let cut = content.len() - FILE_CAP;
    let mut out =
        format!("[egress-conformance: first {cut} bytes cut; {FILE_CAP} kept]\n").into_bytes();
    out.extend_from_slice(&content[cut..]);
    out
}

/// A file name safe on every file system, from a pod or object name.
pub fn file_name(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_files_keep_their_tail_and_say_so() {
        let mut big = vec![b'a'; FILE_CAP];
        big.extend_from_slice(b"the failing line\n");
        let out = capped(&big);
        assert!(out.starts_with(b"[egress-conformance: first 17 bytes cut"));
        assert!(out.ends_with(b"the failing line\n"));
        assert_eq!(capped(b"small"), b"small");
    }

    #[test]
    fn a_bundle_lists_its_files_and_what_it_could_not_get() {
        let dir = std::env::temp_dir().join(format!("egress-bundle-{}", std::process::id()));
        let mut bundle = Bundle::new(dir.clone());
        bundle.write("logs/gateway.log", b"line\n");
        bundle.missing("config dump of curl", "pod gone");
        let bundle = bundle.finish();
        assert_eq!(bundle.files.len(), 2);
        assert!(
            std::fs::read_to_string(dir.join("problems.txt"))
                .unwrap()
                .contains("pod gone")
        );
        assert_eq!(
            file_name(&["istio-egressgateway-5d/x", "istio-proxy"]),
            "istio-egressgateway-5d_x-istio-proxy"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
