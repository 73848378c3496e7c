//! kind clusters of the harness's own and the images they need. Every kind command
//! names the cluster and the harness's kubeconfig, so the user's `~/.kube/config` and
//! clusters are never touched. Flags as in kubernetes-sigs/kind
//! pkg/cmd/kind/{create,delete,get,load,export}/.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::command::{self, Command, Ran};
use crate::plan::CLUSTER_PREFIX;

/// `kind create cluster` tries this often before giving up.
const CREATE_ATTEMPTS: u32 = 3;

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

    pub fn create_command(&self, name: &str, kubeconfig: &Path, image: Option<&str>) -> Command {
        let kc = kubeconfig.display().to_string();
        let mut argv = self.argv(&["create", "cluster", "--name", name, "--kubeconfig", &kc]);
        if let Some(image) = image {
            argv.extend(["--image".into(), image.into()]);
        }
        cmd(argv, 300, format!("creating kind cluster {name}"))
    }

    pub fn delete_command(&self, name: &str, kubeconfig: &Path) -> Command {
        let kc = kubeconfig.display().to_string();
        cmd(
            self.argv(&["delete", "cluster", "--name", name, "--kubeconfig", &kc]),
            180,
            format!("deleting kind cluster {name}"),
        )
    }

    pub fn load_command(&self, name: &str, images: &[String]) -> Command {
        let mut argv = self.argv(&["load", "docker-image", "--name", name]);
        argv.extend(images.iter().cloned());
        cmd(
            argv,
            300,
            format!("loading {} image(s) into {name}", images.len()),
        )
    }

    pub fn export_logs_command(&self, name: &str, dir: &Path) -> Command {
        let dir = dir.display().to_string();
        cmd(
            self.argv(&["export", "logs", &dir, "--name", name]),
            180,
            format!("exporting logs of {name}"),
        )
    }

    /// `kind version`, checked as a prerequisite.
    pub async fn version(&self) -> Result<String, String> {
        let ran = command::run_async(cmd(self.argv(&["version"]), 30, "kind version".into()))
            .await?
            .checked()?;
        Ok(ran.stdout.trim().to_owned())
    }

    /// Clusters of the harness's own (named with [`CLUSTER_PREFIX`]).
    pub async fn harness_clusters(&self) -> Result<Vec<String>, String> {
        let ran = command::run_async(cmd(
            self.argv(&["get", "clusters"]),
            60,
            "listing kind clusters".into(),
        ))
        .await?
        .checked()?;
        Ok(harness_clusters_in(&ran.stdout))
    }

    /// Creates a cluster, retrying on failure after removing what the failed attempt
    /// left. A name that is already taken is not retried: `--reuse` or `egress prune`.
    pub async fn create(
        &self,
        name: &str,
        kubeconfig: &Path,
        image: Option<&str>,
    ) -> Result<Ran, String> {
        if let Some(dir) = kubeconfig.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut last = String::new();
        for attempt in 1..=CREATE_ATTEMPTS {
            let ran = command::run_async(self.create_command(name, kubeconfig, image)).await?;
            if ran.success() {
                return Ok(ran);
            }
            if already_exists(&ran) {
                return Err(format!(
                    "kind cluster {name} already exists: run with --reuse to use it, or `egress prune` to remove it"
                ));
            }
            last = ran.failure();
            eprintln!(
                "egress: creating {name} failed (attempt {attempt} of {CREATE_ATTEMPTS}): {last}"
            );
            let _ = command::run_async(self.delete_command(name, kubeconfig)).await;
        }
        Err(format!(
            "creating kind cluster {name} failed {CREATE_ATTEMPTS} times; last: {last}"
        ))
    }

    pub async fn delete(&self, name: &str, kubeconfig: &Path) -> Result<(), String> {
        command::run_async(self.delete_command(name, kubeconfig))
            .await?
            .checked()
            .map(|_| ())
    }

    pub async fn load(&self, name: &str, images: &[String]) -> Result<(), String> {
        command::run_async(self.load_command(name, images))
            .await?
            .checked()
            .map(|_| ())
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

/// kind's message when the node container name is taken
/// (pkg/cluster/internal/create/create.go: "node(s) already exist for a cluster with the name").
fn already_exists(ran: &Ran) -> bool {
    ran.stderr
        .contains("already exist for a cluster with the name")
}

/// `docker pull`, unless the image is already on this host (`docker image inspect`):
/// images are pulled once per host and loaded into each cluster from there.
pub async fn ensure_image(image: &str) -> Result<(), String> {
    let inspect = command::run_async(cmd(
        vec![
            "docker".into(),
            "image".into(),
            "inspect".into(),
            "--format".into(),
            "{{.Id}}".into(),
            image.into(),
        ],
        60,
        format!("looking for {image}"),
    ))
    .await?;
    if inspect.success() {
        return Ok(());
    }
    command::run_async(pull_command(image))
        .await?
        .checked()
        .map(|_| ())
}

pub fn pull_command(image: &str) -> Command {
    cmd(
        vec!["docker".into(), "pull".into(), image.into()],
        600,
        format!("pulling {image}"),
    )
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
    fn every_kind_command_names_the_cluster_and_our_kubeconfig() {
        let kind = Kind {
            path: "/bin/kind".into(),
        };
        let kc = Path::new("/cache/clusters/egc-x/kubeconfig");
        let create = kind.create_command("egc-x", kc, Some("kindest/node:v1.30.10"));
        assert_eq!(
            create.argv.join(" "),
            "/bin/kind create cluster --name egc-x --kubeconfig /cache/clusters/egc-x/kubeconfig --image kindest/node:v1.30.10"
        );
        assert_eq!(
            kind.delete_command("egc-x", kc).argv.join(" "),
            "/bin/kind delete cluster --name egc-x --kubeconfig /cache/clusters/egc-x/kubeconfig"
        );
        assert_eq!(
            kind.load_command("egc-x", &["curlimages/curl:8.11.1".into()])
                .argv
                .join(" "),
            "/bin/kind load docker-image --name egc-x curlimages/curl:8.11.1"
        );
        assert_eq!(
            kind.export_logs_command("egc-x", Path::new("/r/kind"))
                .argv
                .join(" "),
            "/bin/kind export logs /r/kind --name egc-x"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn create_retries_and_then_reports_the_last_failure() {
        // A stand-in kind that always fails, counting its create calls.
        let dir = std::env::temp_dir().join(format!("egress-fake-kind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let count = dir.join("count");
        let script = dir.join("kind");
        std::fs::write(
            &script,
            format!("#!/bin/sh\nif [ \"$1\" = create ]; then echo x >> {}; echo 'ERROR: failed to create cluster: boom' >&2; exit 1; fi\nexit 0\n", count.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let kind = Kind { path: script };
        let err = kind
            .create("egc-t", &dir.join("kc"), None)
            .await
            .unwrap_err();
        assert!(
            err.contains("failed 3 times") && err.contains("boom"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
