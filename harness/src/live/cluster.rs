//! kind as `egress prune` uses it: list the harness's clusters and delete them, each
//! with the harness's own kubeconfig, so the user's `~/.kube/config` and clusters are
//! never touched. Flags as in kubernetes-sigs/kind pkg/cmd/kind/{delete,get}/. The
//! run's own kind commands are steps of the plan.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::command::{self, Command};
use crate::model::CLUSTER_PREFIX;

/// A kind binary and how to call it.
#[derive(Debug, Clone)]
pub struct Kind {
    pub path: PathBuf,
}

fn cmd(argv: Vec<String>, timeout_secs: u64, what: String) -> Command {
    Command {
        argv,
        timeout: Duration::from_secs(timeout_secs),
        what,
    }
}

impl Kind {
    fn argv(&self, args: &[&str]) -> Vec<String> {
        std::iter::once(self.path.display().to_string())
            .chain(args.iter().map(|a| (*a).to_owned()))
            .collect()
    }

    pub fn delete_command(&self, name: &str, kubeconfig: &Path) -> Command {
        let kc = kubeconfig.display().to_string();
        cmd(
            self.argv(&["delete", "cluster", "--name", name, "--kubeconfig", &kc]),
            180,
            format!("deleting kind cluster {name}"),
        )
    }

    /// Clusters of the harness's own (named with [`CLUSTER_PREFIX`]).
    pub async fn harness_clusters(&self) -> Result<Vec<String>, String> {
        let ran = command::run_async(cmd(
            self.argv(&["get", "clusters"]),
            60,
            "listing kind clusters".into(),
        ))
        .await?
        .checked()
        .map_err(|e| e.message)?;
        Ok(harness_clusters_in(&ran.stdout))
    }

    pub async fn delete(&self, name: &str, kubeconfig: &Path) -> Result<(), String> {
        command::run_async(self.delete_command(name, kubeconfig))
            .await?
            .checked()
            .map(|_| ())
            .map_err(|e| e.message)
    }
}

/// `kind get clusters` prints one name per line ("No kind clusters found." goes to
/// stderr), kind's pkg/cmd/kind/get/clusters/clusters.go.
pub fn harness_clusters_in(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(CLUSTER_PREFIX))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_harness_clusters_are_listed() {
        let out = "kind\negc-1-22-1-registry-only\nmy-dev\negc-1-30-3-allow-any\n";
        assert_eq!(
            harness_clusters_in(out),
            vec!["egc-1-22-1-registry-only", "egc-1-30-3-allow-any"]
        );
        assert!(harness_clusters_in("").is_empty());
    }

    #[test]
    fn prune_deletes_with_our_kubeconfig() {
        let kind = Kind {
            path: "/bin/kind".into(),
        };
        let kc = Path::new("/cache/clusters/egc-x/kubeconfig");
        assert_eq!(
            kind.delete_command("egc-x", kc).argv.join(" "),
            "/bin/kind delete cluster --name egc-x --kubeconfig /cache/clusters/egc-x/kubeconfig"
        );
    }
}
