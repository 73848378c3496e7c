//! `egress new-scenario NAME --from FILE.yaml…`

use std::path::PathBuf;
use std::process::ExitCode;

use crate::repro::scaffold;
use crate::suite::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The scenario's name (also its namespace), e.g. istio-37293-tls-istio-mutual.
    name: String,
    /// The bug report's YAML (repeatable): ServiceEntry, Gateway, VirtualService, DestinationRule…
    #[arg(long = "from", required = true)]
    from: Vec<PathBuf>,
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let ws = Workspace::discover()?;
    let s = scaffold::scaffold(&ws, &args.name, &args.from)?;
    for f in &s.manifest_files {
        println!("wrote {}", f.display());
    }
    println!("wrote {}", s.scenario_file.display());
    if !s.problems.is_empty() {
        eprintln!("the files are written, but the scenario does not validate yet:");
        for p in &s.problems {
            eprintln!("  {}", crate::model::terminal_safe(&p.to_string()));
        }
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "left to fill in ({} line(s) marked PLACEHOLDER; `egress validate` fails until none is left):",
        s.placeholders.len()
    );
    for p in &s.placeholders {
        println!("  {}", crate::model::terminal_safe(&p.to_string()));
    }
    println!(
        "then run it:\n  egress repro {} --istio <reported version>,<fixed version>",
        args.name
    );
    Ok(ExitCode::SUCCESS)
}
