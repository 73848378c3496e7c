//! `egress prune`: what killed runs left — clusters and upstream containers this
//! harness marked as its own when it made them, never anything else: a kind cluster
//! counts only with the owner file the run wrote beside its kubeconfig, a container
//! only with the harness's label; either is kept while the process that made it lives.

use std::path::Path;
use std::time::Duration;

use super::cluster::Kind;
use super::command::{self, Command};
use crate::plan::{self, PlanOptions};

pub use crate::plan::{OWNER_FILE, mark_cluster, owner_pid};
/// The upstream container's label naming the process that started it.
pub const PID_LABEL: &str = "egress-conformance.pid";

/// Where the upstream's certificates and keys wait for `docker cp`: private, named
/// after the container and this process, so `egress prune` can tell a killed run's.
pub fn key_dir(container: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "{KEY_DIR_PREFIX}{container}-{}",
        std::process::id()
    ))
}

const KEY_DIR_PREFIX: &str = "egress-conformance-keys-";

/// Key folders of runs whose process is gone, removed unless `dry_run`.
pub fn prune_key_dirs(dry_run: bool) -> Vec<(String, Verdict)> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(KEY_DIR_PREFIX) else {
            continue;
        };
        // Only a real folder of ours: a link is never followed or removed.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let pid = rest
            .rsplit_once('-')
            .and_then(|(_, p)| p.parse::<u32>().ok());
        let verdict = match pid {
            Some(pid) if alive(pid) => {
                Verdict::Keep(format!("its run (pid {pid}) is still running"))
            }
            Some(_) => Verdict::Remove,
            None => continue,
        };
        if verdict == Verdict::Remove && !dry_run {
            let _ = std::fs::remove_dir_all(entry.path());
        }
        out.push((entry.path().display().to_string(), verdict));
    }
    out
}

/// Whether process `pid` still runs (signal 0 checks without sending anything).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks that the process exists. EPERM: it
    // exists, as another user's (a shared Docker daemon lists every user's containers).
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// What prune does with one thing it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Remove,
    /// Kept, and why.
    Keep(String),
}

/// A harness-named cluster: removed only with an owner file naming a process that
/// has ended.
pub fn cluster_verdict(cache_dir: &Path, name: &str) -> Verdict {
    match owner_pid(cache_dir, name) {
        None => Verdict::Keep(format!(
            "no owner file under {}: not made by this harness here (delete it with `kind delete cluster --name {name}` if it is yours)",
            plan::kubeconfig_path(cache_dir, name)
                .parent()
                .map_or_else(String::new, |d| d.display().to_string())
        )),
        Some(pid) if alive(pid) => Verdict::Keep(format!("its run (pid {pid}) is still running")),
        Some(_) => Verdict::Remove,
    }
}

/// Upstream containers a killed run left (the harness's label, its process gone):
/// removed unless `dry_run`; each with what was done.
pub async fn prune_upstreams(dry_run: bool) -> Result<Vec<(String, Verdict)>, String> {
    let label = format!(
        "label={}={}",
        crate::upstream::LABEL.0,
        crate::upstream::LABEL.1
    );
    let format = format!("{{{{.Names}}}} {{{{.Label \"{PID_LABEL}\"}}}}");
    let listed = command::run_async(Command {
        argv: [
            "docker", "ps", "-a", "--filter", &label, "--format", &format,
        ]
        .map(String::from)
        .to_vec(),
        timeout: Duration::from_secs(60),
        what: "listing upstream containers".into(),
    })
    .await?
    .checked()
    .map_err(|e| e.message)?;
    let mut out = Vec::new();
    for line in listed.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let (name, pid) = line.split_once(' ').unwrap_or((line, ""));
        let verdict = match pid.trim().parse::<u32>() {
            Ok(pid) if alive(pid) => Verdict::Keep(format!("its run (pid {pid}) is still running")),
            _ => Verdict::Remove,
        };
        if verdict == Verdict::Remove && !dry_run {
            super::docker::remove_by_name(name, Duration::from_secs(60))
                .await
                .map_err(|e| e.message)?;
        }
        out.push((name.to_owned(), verdict));
    }
    Ok(out)
}

/// Harness clusters kind knows, each removed (unless `dry_run`) when its owner file
/// says an ended run of this harness made it; a throwaway kubeconfig under the cache
/// is used, so the user's is not touched.
pub async fn prune(
    kind: &Kind,
    cache_dir: &Path,
    dry_run: bool,
) -> Result<Vec<(String, Verdict)>, String> {
    let mut out = Vec::new();
    for name in kind.harness_clusters().await? {
        let verdict = cluster_verdict(cache_dir, &name);
        if verdict == Verdict::Remove && !dry_run {
            let kubeconfig = plan::kubeconfig_path(cache_dir, &name);
            kind.delete(&name, &kubeconfig).await?;
            if let Some(dir) = kubeconfig.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        out.push((name, verdict));
    }
    Ok(out)
}

/// The kind to prune with: on PATH, or the one the harness downloaded.
pub fn kind_for_prune(options: &PlanOptions) -> Option<Kind> {
    options.kind.clone().map(|path| Kind { path }).or_else(|| {
        let cached = plan::cached_kind_path(&options.cache_dir);
        cached.is_file().then_some(Kind { path: cached })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_folder_of_a_dead_run_is_pruned_and_a_live_one_kept() {
        let live = key_dir("egc-upstream-t-live");
        let dead = std::env::temp_dir().join(format!(
            "{KEY_DIR_PREFIX}egc-upstream-t-dead-{}-{}",
            std::process::id(),
            u32::MAX - 1
        ));
        for d in [&live, &dead] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        let found = prune_key_dirs(false);
        let live_kept = live.is_dir();
        let _ = std::fs::remove_dir_all(&live);
        assert!(live_kept, "{found:?}");
        assert!(!dead.exists(), "{found:?}");
    }

    #[test]
    fn only_a_cluster_marked_by_an_ended_run_is_removed() {
        let cache = std::env::temp_dir().join(format!("egress-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        // A user's cluster that merely shares the prefix: no owner file.
        assert!(matches!(
            cluster_verdict(&cache, "egc-staging"),
            Verdict::Keep(why) if why.contains("no owner file")
        ));
        // Ours, from a run still alive (this process).
        mark_cluster(&cache, "egc-1-30-3-registry-only", "r1").expect("mark");
        assert_eq!(
            owner_pid(&cache, "egc-1-30-3-registry-only"),
            Some(std::process::id())
        );
        assert!(matches!(
            cluster_verdict(&cache, "egc-1-30-3-registry-only"),
            Verdict::Keep(why) if why.contains("still running")
        ));
        // Ours, from a run that ended.
        let dir = plan::kubeconfig_path(&cache, "egc-1-22-1-registry-only")
            .parent()
            .expect("dir")
            .to_path_buf();
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join(OWNER_FILE),
            format!("run=r0 pid={}\n", u32::MAX - 1),
        )
        .expect("write");
        assert_eq!(
            cluster_verdict(&cache, "egc-1-22-1-registry-only"),
            Verdict::Remove
        );
        let _ = std::fs::remove_dir_all(&cache);
    }
}
