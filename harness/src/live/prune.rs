//! `egress prune`: what killed runs left — harness clusters and upstream containers,
//! found by their name prefix and label, never anything else.

use std::time::Duration;

use super::cluster::Kind;
use super::command::{self, Command};
use crate::plan::{self, PlanOptions};

/// Upstream containers a killed run left (labelled by the harness), removed.
pub async fn prune_upstreams() -> Result<Vec<String>, String> {
    let label = format!(
        "label={}={}",
        crate::upstream::LABEL.0,
        crate::upstream::LABEL.1
    );
    let listed = command::run_async(Command {
        argv: ["docker", "ps", "-aq", "--filter", &label]
            .map(String::from)
            .to_vec(),
        timeout: Duration::from_secs(60),
        what: "listing upstream containers".into(),
    })
    .await?
    .checked()
    .map_err(|e| e.message)?;
    let ids: Vec<String> = listed
        .stdout
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    for id in &ids {
        super::docker::remove_by_name(id, Duration::from_secs(60))
            .await
            .map_err(|e| e.message)?;
    }
    Ok(ids)
}

/// Every harness cluster kind knows, removed, with a throwaway kubeconfig under the
/// cache so the user's is not touched.
pub async fn prune(kind: &Kind, cache_dir: &std::path::Path) -> Result<Vec<String>, String> {
    let names = kind.harness_clusters().await?;
    for name in &names {
        let kubeconfig = plan::kubeconfig_path(cache_dir, name);
        kind.delete(name, &kubeconfig).await?;
        if let Some(dir) = kubeconfig.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    Ok(names)
}

/// The kind to prune with: on PATH, or the one the harness downloaded.
pub fn kind_for_prune(options: &PlanOptions) -> Option<Kind> {
    options.kind.clone().map(|path| Kind { path }).or_else(|| {
        let cached = plan::cached_kind_path(&options.cache_dir);
        cached.is_file().then_some(Kind { path: cached })
    })
}
