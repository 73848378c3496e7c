//! `egress validate [FILE...] [--scenario NAMES|TAGS]`

use std::path::PathBuf;
use std::process::ExitCode;

use crate::scenario;
use crate::suite::Workspace;
use crate::validate;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario files; none means every file under scenarios/.
    files: Vec<PathBuf>,
    /// Only the scenarios with these names or tags (comma-separated); a file that
    /// does not load is kept when its file name is one of them.
    #[arg(long = "scenario", value_delimiter = ',', env = "EGRESS_SCENARIO")]
    scenarios: Vec<String>,
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let ws = Workspace::discover()?;
    let mut files = if args.files.is_empty() {
        ws.scenario_files()?
    } else {
        args.files.clone()
    };
    if !args.scenarios.is_empty() {
        let terms: Vec<&str> = args.scenarios.iter().map(|t| t.trim()).collect();
        files.retain(
            |file| match scenario::load_file(file, &ws.manifests_dir()) {
                Ok(s) => terms.iter().any(|t| s.name() == *t || s.has_tag(t)),
                Err(_) => file
                    .file_stem()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| terms.contains(&n)),
            },
        );
        if files.is_empty() {
            return Err(format!(
                "no scenario file is named or tagged {}; `egress list` shows the names and tags",
                terms.join(", ")
            ));
        }
    }
    let mut failed = 0;
    for file in &files {
        let mut problems: Vec<String> = Vec::new();
        match scenario::load_file(file, &ws.manifests_dir()) {
            Err(errors) => problems.extend(errors.iter().map(ToString::to_string)),
            Ok(s) => {
                // A manifest's problem is said under the scenario that uses it.
                let located = |p: &crate::manifest::Problem| {
                    if p.file == *file {
                        p.to_string()
                    } else {
                        format!("{}: {p}", file.display())
                    }
                };
                problems.extend(validate::check_manifests(&s, &ws).iter().map(located));
                problems.extend(validate::check_consistency(&s, &ws).iter().map(located));
                for note in validate::notes(&s, &ws) {
                    eprintln!("note: {}", crate::model::terminal_safe(&located(&note)));
                }
            }
        }
        if problems.is_empty() {
            println!("ok: {}", file.display());
        } else {
            failed += 1;
            for p in problems {
                eprintln!("error: {}", crate::model::terminal_safe(&p));
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} file(s) failed validation", files.len());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
