//! Writing the four report files of one result set into a folder.

use std::path::{Path, PathBuf};

use super::results::Results;
use super::{baseline, html, junit, markdown};

pub const RESULTS: &str = "results.json";
pub const JUNIT: &str = "junit.xml";
pub const SUMMARY: &str = "summary.md";
pub const HTML: &str = "index.html";

/// Writes `results.json`, `junit.xml`, `summary.md` and `index.html` into `dir`;
/// with a baseline, the summary and the page list the verdicts that changed.
pub fn write(dir: &Path, results: &Results, baseline: Option<&Results>) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let changes = baseline.map(|b| baseline::changes(b, results));
    let json = serde_json::to_string_pretty(results).map_err(|e| e.to_string())? + "\n";
    replace(&dir.join(RESULTS), &json)?;
    replace(&dir.join(JUNIT), &junit::render(results)?)?;
    replace(
        &dir.join(SUMMARY),
        &markdown::render(results, changes.as_deref()),
    )?;
    let page = dir.join(HTML);
    replace(&page, &html::render(results, changes.as_deref()))?;
    Ok(page)
}

/// Writes through a temporary file, so an interrupted write leaves the old file whole.
fn replace(path: &Path, text: &str) -> Result<(), String> {
    // A name of this process's own: two writers never share a temporary file.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}.{n}.tmp", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}
