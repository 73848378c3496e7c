//! The HTML report in a real browser: headless Chromium parses and lays the page out,
//! its DOM is read back, and a screenshot is taken. Proves the page is well-formed
//! and self-contained as browsers see it, which string checks cannot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::case;
use super::results::Results;
use crate::live::command::{self, Command};
use crate::suite::{Suite, Workspace};

/// Chromium: `EGRESS_CHROMIUM`, else `chromium`, `chromium-browser` or `google-chrome` on PATH.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("EGRESS_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| crate::plan::find_on_path(name))
}

pub const INSTALL_HINT: &str =
    "install Chromium (Debian/Ubuntu: `apt-get install chromium`) or set EGRESS_CHROMIUM";

/// What Chromium made of a page.
#[derive(Debug)]
pub struct Rendered {
    /// The DOM after parsing, serialised.
    pub dom: String,
    pub screenshot: PathBuf,
    pub width: u32,
    pub height: u32,
}

/// Flags for a headless run on a machine without a display, sandbox or network:
/// no background connections, no first-run work, a throwaway profile.
fn argv(chromium: &Path, profile: &Path, extra: &[String], page: &Path) -> Vec<String> {
    let mut argv = vec![
        chromium.display().to_string(),
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--hide-scrollbars".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    argv.extend(extra.iter().cloned());
    argv.push(format!("file://{}", page.display()));
    argv
}

/// Renders `page` (an absolute path) at `width` × `height`; the screenshot goes to `png`.
pub fn render(
    chromium: &Path,
    page: &Path,
    png: &Path,
    width: u32,
    height: u32,
) -> Result<Rendered, String> {
    let profile = png.with_extension("profile");
    std::fs::create_dir_all(&profile).map_err(|e| format!("{}: {e}", profile.display()))?;
    let dom = command::run(&Command {
        argv: argv(chromium, &profile, &["--dump-dom".into()], page),
        timeout: Duration::from_secs(60),
        what: "reading the report's DOM in Chromium".into(),
    })?
    .checked()?
    .stdout;
    command::run(&Command {
        argv: argv(
            chromium,
            &profile,
            &[
                format!("--window-size={width},{height}"),
                format!("--screenshot={}", png.display()),
            ],
            page,
        ),
        timeout: Duration::from_secs(60),
        what: "taking a screenshot of the report in Chromium".into(),
    })?
    .checked()?;
    let _ = std::fs::remove_dir_all(&profile);
    let (w, h) = png_size(png)?;
    Ok(Rendered {
        dom,
        screenshot: png.to_path_buf(),
        width: w,
        height: h,
    })
}

/// A run's results holding `cases`, written now by this harness.
fn results_of(run_id: String, cases: Vec<super::results::Case>) -> Results {
    Results {
        format: super::results::FORMAT.into(),
        run_id,
        started: super::now(),
        finished: super::now(),
        harness: env!("CARGO_PKG_VERSION").into(),
        shard: None,
        merged_from: Vec::new(),
        problems: Vec::new(),
        interrupted: false,
        timing: None,
        cases,
    }
}

/// What tests/sim/recordings hold in place of the run's client certificate
/// (egress-sim's `CLIENT_CERT_PLACEHOLDER`).
const CLIENT_CERT_MARKER: &str = "<run client certificate>";

/// The versions of the nightly-sized report the browser trial renders.
const NIGHTLY_VERSIONS: [&str; 4] = ["1.22.1", "1.24.3", "1.28.2", "1.30.3"];

/// A report the size of a nightly's (every scenario × 4 versions), merged from one
/// report per version as the nightly merges its jobs: each scenario's recording (the
/// shipped one, else the simulation's synthesized one) judged on each version its range
/// covers, with a failure, an error and a flaky case among them, so that every part of
/// the page has something to show. Every case is marked a recording.
pub fn nightly_report(ws: &Workspace, suite: &Suite) -> Result<Results, String> {
    let client_cert = crate::upstream::Certs::generate_for(crate::upstream::HOSTS)?;
    let mut per_version = Vec::new();
    for (n, version) in NIGHTLY_VERSIONS.iter().enumerate() {
        let istio = semver::Version::parse(version).map_err(|e| e.to_string())?;
        let mut cases = Vec::new();
        for s in suite.scenarios.iter().filter(|s| s.applies_to(&istio)) {
            let shipped =
                crate::recording::shipped(&ws.scenarios_dir().join("recordings"), s.name());
            let synthesized = ws
                .root
                .join("tests/sim/recordings")
                .join(format!("{}@local.json", s.name()));
            let Some(file) = shipped
                .into_iter()
                .next()
                .or(Some(synthesized))
                .filter(|f| f.is_file())
            else {
                continue;
            };
            let mut recording = crate::recording::Recording::read(&file)?;
            recording.istio = (*version).to_owned();
            // A synthesized recording holds a marker where the simulation puts the run's
            // client certificate; a certificate of our own stands in for it here.
            let pem = serde_json::to_string(&client_cert.client_cert).map_err(|e| e.to_string())?;
            for observed in &mut recording.requests {
                if let Some(body) = &mut observed.body {
                    *body = body.replace(&format!("\"{CLIENT_CERT_MARKER}\""), &pem);
                }
            }
            // One failure on the newest version: a recording changed as the mutation
            // trials change it.
            if n == 3
                && s.name() == "gateway-http"
                && let Some((_, changed)) = crate::replay::mutations(&recording).into_iter().next()
            {
                recording = changed;
            }
            let name = file.file_name().and_then(|f| f.to_str()).unwrap_or("");
            let mut case = case::from_replay(s, &recording, name, case::client_has_sidecar(s, ws));
            if n == 2 && s.name() == "gateway-tls-passthrough" {
                case.status = super::results::Status::Error;
                case.message = Some("step 7 (create_cluster on egc-1-28-2-registry-only): kind create cluster exited 1: failed to create cluster: node(s) already exist".into());
                case.requests.clear();
            }
            if n == 1 && s.name() == "no-egress-gateway" {
                case.status = super::results::Status::Flaky;
                case.message = Some("http-headers: 1 failure(s) after a pass".into());
            }
            cases.push(case);
        }
        let results = results_of(format!("nightly-istio-{version}"), cases);
        per_version.push((results, std::env::temp_dir()));
    }
    super::merge::merge(&per_version, Path::new("nightly-merged"))
}

/// Renders `results` as a report in Chromium and checks what the browser made of it:
/// one hop diagram per request with a path, one matrix row per scenario, nothing
/// loaded from outside, a screenshot with content. Returns the screenshot.
pub fn check_report(chromium: &Path, results: &Results, out: &Path) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("egress-chromium-{}", std::process::id()));
    let page = super::write::write(&dir, results, None)?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let png = out.join("report-in-chromium.png");
    let rendered = render(chromium, &page, &png, 1280, 2400)?;
    let _ = std::fs::remove_dir_all(&dir);
    let diagrams = rendered.dom.matches("<svg class=\"hops\"").count();
    let requests: usize = results
        .cases
        .iter()
        .flat_map(|c| &c.requests)
        .filter(|r| !r.hops.is_empty())
        .count();
    if diagrams != requests || requests == 0 {
        return Err(format!(
            "Chromium's DOM holds {diagrams} hop diagram(s); the report has {requests} request(s) with a path"
        ));
    }
    let rows = rendered.dom.matches("<tr><th><a href=\"#scenario-").count();
    if rows != results.scenarios().len() {
        return Err(format!(
            "the matrix shows {rows} scenario row(s) in Chromium; the report has {}",
            results.scenarios().len()
        ));
    }
    // What a nightly reader opens the page for comes first, each with its rerun.
    let (look, matrix) = (
        rendered.dom.find("id=\"needs-a-look\""),
        rendered.dom.find("id=\"matrix\""),
    );
    if !matches!((look, matrix), (Some(l), Some(m)) if l < m) {
        return Err("\"Needs a look\" is not above the matrix in Chromium's DOM".into());
    }
    let attention = results.cases.iter().filter(|c| c.needs_a_look()).count();
    let reruns = rendered.dom.matches("<code class=\"rerun\">").count();
    if reruns != attention {
        return Err(format!(
            "{reruns} rerun command(s) in Chromium's DOM for {attention} case(s) that need a look"
        ));
    }
    let folded = rendered
        .dom
        .matches("<details class=\"case-fold\">")
        .count();
    if folded != results.cases.len() - attention {
        return Err(format!(
            "{folded} folded case(s) in Chromium's DOM; {} case(s) do not need a look",
            results.cases.len() - attention
        ));
    }
    for outside in ["<script", "<link", "src=\"http", "url(http"] {
        if rendered.dom.contains(outside) {
            return Err(format!(
                "the page is not self-contained: it holds `{outside}`"
            ));
        }
    }
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    if (rendered.width, rendered.height) != (1280, 2400) || size < 20_000 {
        return Err(format!(
            "the screenshot is {}x{}, {size} bytes: expected 1280x2400 with content",
            rendered.width, rendered.height
        ));
    }
    Ok(png)
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(path: &Path) -> Result<(u32, u32), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return Err(format!("{}: not a PNG", path.display()));
    }
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Ok((be(16), be(20)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_size_reads_ihdr_and_refuses_other_files() {
        let dir = std::env::temp_dir().join(format!("egress-png-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend(1280u32.to_be_bytes());
        png.extend(2400u32.to_be_bytes());
        std::fs::write(dir.join("a.png"), &png).expect("write");
        assert_eq!(png_size(&dir.join("a.png")), Ok((1280, 2400)));
        std::fs::write(dir.join("b.png"), b"<html>").expect("write");
        assert!(png_size(&dir.join("b.png")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
