//! `egress list`

use std::process::ExitCode;

use crate::suite::{Suite, Workspace};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only these names or tags (comma-separated).
    #[arg(long = "scenario", value_delimiter = ',', env = "EGRESS_SCENARIO")]
    scenarios: Vec<String>,
    /// `text` or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let ws = Workspace::discover()?;
    let suite = Suite::load(&ws)?;
    let selected = suite.select(&args.scenarios)?;
    if args.format == "json" {
        let rows: Vec<serde_json::Value> = selected
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name(),
                    "description": s.description,
                    "tags": s.tag_names().collect::<Vec<_>>(),
                    "istio": s.istio.to_string(),
                    "install": s.install.value,
                    "requests": s.requests.len(),
                    "known_issue": s.known_issue.as_ref().map(|k| k.url.value.clone()),
                    "file": s.source,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
        );
    } else {
        let width = selected.iter().map(|s| s.name().len()).max().unwrap_or(0);
        for s in &selected {
            let tags: Vec<&str> = s.tag_names().collect();
            let known = s
                .known_issue
                .as_ref()
                .map(|k| format!("  known issue: {}", k.url.value))
                .unwrap_or_default();
            println!(
                "{:width$}  istio {:<8} install {:<16} tags {}{known}",
                s.name(),
                s.istio.to_string(),
                s.install.value,
                tags.join(",")
            );
        }
        println!(
            "{} scenario(s); tags: {}",
            selected.len(),
            suite.tags().into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    for (file, _) in &suite.broken {
        eprintln!(
            "warning: {} does not load; run `egress validate {}`",
            file.display(),
            file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
