//! `egress validate FILE...`

use std::path::PathBuf;
use std::process::ExitCode;

use crate::scenario;
use crate::suite::Workspace;
use crate::validate;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario files; none means every file under scenarios/.
    files: Vec<PathBuf>,
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let ws = Workspace::discover()?;
    let files = if args.files.is_empty() {
        ws.scenario_files()?
    } else {
        args.files.clone()
    };
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
            }
        }
        if problems.is_empty() {
            println!("ok: {}", file.display());
        } else {
            failed += 1;
            for p in problems {
                eprintln!("error: {p}");
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} file(s) failed validation", files.len());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
