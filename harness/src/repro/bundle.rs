//! One archive to attach to an Istio issue: the scenario, its manifests, the versions
//! and verdicts, and every piece of evidence the runs kept (logs, config dumps,
//! recordings). `reports/<run-id>/repro-<scenario>.tar.gz`.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::report::results::Results;
use crate::scenario::Scenario;
use crate::suite::Workspace;

/// Writes the archive; returns its path and the names inside, in order.
pub fn write(
    ws: &Workspace,
    scenario: &Scenario,
    results: &Results,
    report_dir: &Path,
) -> Result<(PathBuf, Vec<String>), String> {
    let path = report_dir.join(format!("repro-{}.tar.gz", scenario.name()));
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));

    entries.push(("README.txt".into(), readme(scenario, results).into_bytes()));
    entries.push((
        format!("scenario/{}.yaml", scenario.name()),
        // Suite paths are shown relative to the workspace.
        read(&ws.root.join(&scenario.source))?,
    ));
    let mut manifests: Vec<String> = vec![
        format!("install/{}.yaml", scenario.install.value),
        format!("client/{}.yaml", scenario.client.value),
    ];
    // Where ambient's data plane ran beside the sidecars (install `registry-only+ambient`),
    // that is the install the runs had: its base and the overlay go along.
    let beside = format!("+{}", crate::plan::AMBIENT_PROFILE);
    if results
        .cases
        .iter()
        .any(|c| c.scenario == scenario.name() && c.environment.install.contains(beside.as_str()))
    {
        for m in [
            format!("install/{}.yaml", crate::plan::BASE_PROFILE),
            format!("install/{}", crate::plan::AMBIENT_OVERLAY),
        ] {
            if !manifests.contains(&m) {
                manifests.push(m);
            }
        }
    }
    for mode in [
        crate::upstream::UpstreamMode::Local,
        crate::upstream::UpstreamMode::Internet,
    ] {
        for m in scenario.manifests_for(mode) {
            if !manifests.contains(&m.value) {
                manifests.push(m.value);
            }
        }
    }
    // Istio before 1.30 reads some of them only with the alpha Gateway API flag: the
    // overlay that sets it goes along.
    let alpha = manifests.iter().any(|m| {
        crate::manifest::parse_file(&ws.manifests_dir().join(m)).is_ok_and(|objects| {
            objects
                .iter()
                .any(|o| crate::plan::gateway_api::stable_from(o).is_some())
        })
    });
    if alpha {
        manifests.push(format!(
            "install/{}",
            crate::plan::gateway_api::ALPHA_FLAG_OVERLAY
        ));
    }
    for m in manifests {
        entries.push((
            format!("manifests/{m}"),
            read(&ws.manifests_dir().join(&m))?,
        ));
    }
    for file in ["results.json", "summary.md"] {
        let p = report_dir.join(file);
        if p.is_file() {
            entries.push((file.into(), read(&p)?));
        }
    }
    for case in results
        .cases
        .iter()
        .filter(|c| c.scenario == scenario.name())
    {
        for e in &case.evidence {
            let p = report_dir.join(e);
            match std::fs::read(&p) {
                Ok(bytes) => entries.push((e.clone(), bytes)),
                Err(err) => entries.push((
                    format!("{e}.missing.txt"),
                    format!("{}: {err}\n", p.display()).into_bytes(),
                )),
            }
        }
    }

    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
    let root = format!("repro-{}", scenario.name());
    for (name, bytes) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, format!("{root}/{name}"), bytes.as_slice())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .and_then(|mut f| f.flush())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path, entries.into_iter().map(|(n, _)| n).collect()))
}

fn readme(scenario: &Scenario, results: &Results) -> String {
    let mut out = format!(
        "egress-conformance reproduction of `{}`\n{}\n\nrun {} ({} to {}), harness {}\n\n",
        scenario.name(),
        scenario.description,
        results.run_id,
        results.started,
        results.finished,
        results.harness
    );
    if let Some(k) = &scenario.known_issue {
        out.push_str(&format!("known issue: {}\n\n", k.url.value));
    }
    out.push_str("Istio version   verdict\n");
    for case in results
        .cases
        .iter()
        .filter(|c| c.scenario == scenario.name())
    {
        out.push_str(&format!(
            "{:<15} {}{}\n",
            case.istio.as_deref().unwrap_or("-"),
            case.status.label(),
            case.message
                .as_deref()
                .and_then(|m| m.lines().next())
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    out.push_str(
        "\nscenario/   the scenario file\n\
         manifests/  everything it applies, the install profile and the client pod\n\
         results.json, summary.md  the verdicts, expectation by expectation\n\
         evidence/   per version: logs, config dumps, events, the observation\n\
         recordings/ what each run observed, replayable with `cargo test`\n",
    );
    out
}
