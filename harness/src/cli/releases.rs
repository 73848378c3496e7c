//! `egress releases`: the Istio versions a nightly run covers, from GitHub's release list.

use std::process::ExitCode;

use crate::live::download;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// How many of the newest minor versions (the newest patch of each).
    #[arg(long, default_value_t = 3)]
    minors: usize,
    /// Versions always included (comma-separated), e.g. the seed article's 1.22.1.
    #[arg(long = "with", value_delimiter = ',')]
    with: Vec<semver::Version>,
    /// Print a JSON array (for a GitHub Actions matrix) instead of a comma-separated list.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let releases = match runtime.block_on(download::istio_releases(None)) {
        Ok(releases) => releases,
        // Offline: what this harness knows, said to be that.
        Err(e) => {
            eprintln!(
                "egress: {e}\negress: from this harness's own table instead (the newest patch of each minor it knows, harness/src/versions.rs); a release after it is missing"
            );
            crate::versions::NEWEST_PATCHES
                .iter()
                .filter_map(|p| semver::Version::parse(p).ok())
                .collect()
        }
    };
    let versions = pick(&releases, args.minors, &args.with);
    let names: Vec<String> = versions.iter().map(ToString::to_string).collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&names).map_err(|e| e.to_string())?
        );
    } else {
        println!("{}", names.join(","));
    }
    Ok(ExitCode::SUCCESS)
}

/// The newest patch of the last `minors` minors plus `with`, oldest first, no repeats.
fn pick(
    releases: &[semver::Version],
    minors: usize,
    with: &[semver::Version],
) -> Vec<semver::Version> {
    let mut out = download::newest_patches(releases, minors);
    out.extend(with.iter().cloned());
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_nightly_covers_three_minors_and_the_seed_version() {
        let v = |s: &str| semver::Version::parse(s).expect("version");
        let releases = vec![
            v("1.30.3"),
            v("1.30.2"),
            v("1.29.7"),
            v("1.28.4"),
            v("1.27.9"),
            v("1.22.1"),
        ];
        assert_eq!(
            super::pick(&releases, 3, &[v("1.22.1"), v("1.30.3")]),
            vec![v("1.22.1"), v("1.28.4"), v("1.29.7"), v("1.30.3")]
        );
    }
}
