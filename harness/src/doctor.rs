//! The preflight of a live run (`egress doctor`, and once before every live run):
//! everything a kind + Istio run needs from this host, all checked at once, each with
//! its fix.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Works, but may hurt (too little memory for several clusters, …).
    Warn,
    /// A live run cannot work.
    Fail,
}

/// One check and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// Empty when nothing is to be done.
    pub fix: String,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        write!(f, "{mark} {:<22} {}", self.name, self.detail)?;
        if !self.fix.is_empty() {
            write!(f, "\n     {:<22} fix: {}", "", self.fix)?;
        }
        Ok(())
    }
}

/// What the checks read from the host: its own seam, so the rules are tested here.
pub trait Host {
    /// Where a Docker daemon answers, and how it was found.
    fn docker_endpoints(&self) -> Vec<(String, crate::prereq::DockerEndpoint)>;
    fn ping(&self, endpoint: &crate::prereq::DockerEndpoint) -> Result<(), String>;
    /// `docker version` / `docker info` values: API version, memory, root dir.
    fn docker_facts(&self) -> Option<DockerFacts>;
    fn read(&self, path: &Path) -> Option<String>;
    /// Free bytes on the file system of `path`.
    fn free_bytes(&self, path: &Path) -> Option<u64>;
    /// Whether `host:443` accepts a TCP connection within a few seconds.
    /// Whether `host:443` answers; the cause when it does not.
    fn reachable(&self, host: &str) -> Result<(), String>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerFacts {
    pub api_version: String,
    pub mem_total: u64,
    pub root_dir: PathBuf,
    /// The ids of the networks named exactly `kind`: kind's own, or none yet.
    pub kind_networks: Vec<String>,
}

/// Memory one kind cluster with Istio, an egress gateway and a client takes.
const PER_CLUSTER: u64 = 3 * 1024 * 1024 * 1024;
/// Disk for node images, Istio images and a cluster's containers.
const DISK_NEEDED: u64 = 15 * 1024 * 1024 * 1024;
/// kind's known issue "Pod errors due to too many open files" (kind docs,
/// known-issues.md): these limits or more for several clusters.
const INOTIFY_WATCHES: u64 = 524_288;
const INOTIFY_INSTANCES: u64 = 512;
/// Hosts a live run downloads from: kind and istioctl releases, Istio's and the
/// client's images, the echo server and the node images.
const HOSTS: &[(&str, &str)] = &[
    ("github.com", "kind and istioctl releases"),
    (
        "registry-1.docker.io",
        "Istio's, kind's node and the client's images",
    ),
    ("registry.k8s.io", "the echo server's image"),
];

/// What a run asks of this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Docker serves kind and the local upstream.
    pub docker: bool,
    /// kind clusters alive at once (0: `--cluster existing`).
    pub clusters: usize,
    /// Check the hosts a run downloads from.
    pub network: bool,
}

impl Needs {
    pub fn of(
        cluster: crate::model::ClusterMode,
        upstream: crate::model::UpstreamMode,
        clusters: usize,
        network: bool,
    ) -> Self {
        let makes = cluster.makes_clusters();
        Self {
            docker: makes || upstream == crate::model::UpstreamMode::Local,
            clusters: if makes { clusters.max(1) } else { 0 },
            network,
        }
    }
}

/// The checks a run with these needs depends on: an existing cluster checked against
/// the internet needs nothing of this host but its kube context.
pub fn checks_for(host: &dyn Host, needs: Needs) -> Vec<Check> {
    if !needs.docker {
        return vec![ok(
            "Docker",
            "not needed: an existing cluster and --upstream internet".into(),
        )];
    }
    let mut all = checks(host, needs.clusters.max(1), needs.network);
    if needs.clusters == 0 {
        // Only the local upstream's container runs here.
        all.retain(|c| {
            matches!(c.name, "Docker daemon" | "Docker API")
                || (c.name == "reachable" && c.detail.starts_with("registry.k8s.io"))
        });
    }
    all
}

/// Every check, for a run that keeps `clusters` clusters alive at once.
pub fn checks(host: &dyn Host, clusters: usize, network: bool) -> Vec<Check> {
    let mut out = Vec::new();
    let endpoints = host.docker_endpoints();
    let answering = endpoints.iter().find(|(_, e)| host.ping(e).is_ok());
    out.push(match answering {
        Some((how, e)) => ok("Docker daemon", format!("{e} ({how})")),
        None => fail(
            "Docker daemon",
            format!(
                "none answered at {}",
                endpoints
                    .iter()
                    .map(|(how, e)| format!("{e} ({how})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "start Docker (Docker Engine, Docker Desktop, Colima or Podman's Docker socket), or point DOCKER_HOST at it",
        ),
    });
    let facts = answering.and_then(|_| host.docker_facts());
    if let Some(f) = &facts {
        let minor: u32 = f
            .api_version
            .split('.')
            .nth(1)
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        out.push(if minor >= 41 {
            ok(
                "Docker API",
                format!("{} (the docker CLI negotiates)", f.api_version),
            )
        } else {
            fail(
                "Docker API",
                format!("{} is older than 1.41 (Docker 20.10)", f.api_version),
                "upgrade Docker to 20.10 or newer",
            )
        });
        // Two networks named kind make every `docker network inspect kind` ambiguous:
        // the upstream could not join kind's.
        if f.kind_networks.len() > 1 {
            out.push(fail(
                "kind network",
                format!(
                    "{} Docker networks are named kind: {}",
                    f.kind_networks.len(),
                    f.kind_networks.join(", ")
                ),
                "keep kind's (its clusters' nodes are attached: docker network inspect <ID>) and remove the other with docker network rm <ID>",
            ));
        }
        let need = PER_CLUSTER * clusters.max(1) as u64;
        out.push(if f.mem_total >= need {
            ok(
                "memory for Docker",
                format!("{} GiB for {clusters} cluster(s)", gib(f.mem_total)),
            )
        } else {
            Check {
                name: "memory for Docker",
                verdict: Verdict::Warn,
                detail: format!(
                    "{} GiB; {clusters} cluster(s) at once want about {} GiB",
                    gib(f.mem_total),
                    gib(need)
                ),
                fix:
                    "give Docker more memory, or run fewer clusters at once (--parallel-clusters 1)"
                        .into(),
            }
        });
        out.push(match host.free_bytes(&f.root_dir) {
            Some(free) if free >= DISK_NEEDED => ok(
                "disk",
                format!("{} GiB free at {}", gib(free), f.root_dir.display()),
            ),
            Some(free) => Check {
                name: "disk",
                verdict: Verdict::Warn,
                detail: format!("{} GiB free at {}", gib(free), f.root_dir.display()),
                fix: format!(
                    "free {} GiB or more for node and Istio images (docker system prune)",
                    gib(DISK_NEEDED)
                ),
            },
            None => Check {
                name: "disk",
                verdict: Verdict::Warn,
                detail: format!("could not read the free space of {}", f.root_dir.display()),
                fix: String::new(),
            },
        });
    }
    let limit = |file: &str| {
        host.read(Path::new(file))
            .and_then(|t| t.trim().parse::<u64>().ok())
    };
    match (
        limit("/proc/sys/fs/inotify/max_user_watches"),
        limit("/proc/sys/fs/inotify/max_user_instances"),
    ) {
        (Some(w), Some(i)) if w >= INOTIFY_WATCHES && i >= INOTIFY_INSTANCES => {
            out.push(ok("inotify limits", format!("{w} watches, {i} instances")));
        }
        (Some(w), Some(i)) => out.push(Check {
            name: "inotify limits",
            // A warning: one cluster runs within most defaults; several often do not.
            verdict: Verdict::Warn,
            detail: format!("{w} watches, {i} instances: several kind clusters run out of them"),
            fix: format!(
                "sudo sysctl fs.inotify.max_user_watches={INOTIFY_WATCHES} fs.inotify.max_user_instances={INOTIFY_INSTANCES} (kind's known issues)"
            ),
        }),
        _ => out.push(ok("inotify limits", "not a Linux host: Docker's VM sets them".into())),
    }
    // kindnet enforces NetworkPolicy through NFQUEUE and fails open without it
    // (kubernetes-sigs/kind images/kindnetd, FailOpen: true): the policy scenario
    // would pass traffic it should drop.
    let nfqueue = host
        .read(Path::new("/proc/modules"))
        .is_some_and(|m| m.lines().any(|l| l.starts_with("nfnetlink_queue ")))
        || host
            .read(Path::new("/proc/net/netfilter/nfnetlink_queue"))
            .is_some();
    out.push(if nfqueue {
        ok("NFQUEUE (NetworkPolicy)", "nfnetlink_queue loaded".into())
    } else {
        Check {
            name: "NFQUEUE (NetworkPolicy)",
            verdict: Verdict::Warn,
            detail: "nfnetlink_queue not loaded: kindnet lets NetworkPolicy traffic through".into(),
            fix: "sudo modprobe nfnetlink_queue (network-policy-blocks-bypass depends on it)"
                .into(),
        }
    });
    if network {
        for (name, what) in HOSTS {
            out.push(match host.reachable(name) {
                Ok(()) => ok("reachable", format!("{name}:443 ({what})")),
                Err(cause) => fail(
                    "reachable",
                    format!("{name}:443 does not answer ({what}): {cause}"),
                    "a live run needs internet access to it (or HTTPS_PROXY for the downloads, and mirrors: --upstream-image, --node-image)",
                )
            });
        }
    }
    out
}

/// A check that passed.
pub fn ok(name: &'static str, detail: String) -> Check {
    Check {
        name,
        verdict: Verdict::Ok,
        detail,
        fix: String::new(),
    }
}

/// A check that failed, with its fix.
pub fn fail(name: &'static str, detail: String, fix: &str) -> Check {
    Check {
        name,
        verdict: Verdict::Fail,
        detail,
        fix: fix.into(),
    }
}

fn gib(bytes: u64) -> u64 {
    bytes / (1024 * 1024 * 1024)
}

/// The failed checks as one banner, or `None` when nothing fails.
pub fn banner(checks: &[Check]) -> Option<String> {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(ToString::to_string)
        .collect();
    (!failed.is_empty()).then(|| {
        format!(
            "cannot run live: the preflight failed (all of it: `egress doctor`)\n{}",
            failed.join("\n")
        )
    })
}

/// This machine.
pub struct RealHost;

impl Host for RealHost {
    fn docker_endpoints(&self) -> Vec<(String, crate::prereq::DockerEndpoint)> {
        use crate::prereq::DockerEndpoint;
        let mut out = Vec::new();
        if std::env::var_os("DOCKER_HOST").is_some() {
            out.push(("DOCKER_HOST".into(), DockerEndpoint::from_env()));
            return out;
        }
        let context = std::process::Command::new("docker")
            .args([
                "context",
                "inspect",
                "--format",
                "{{.Endpoints.docker.Host}}",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        if let Some(host) = context.and_then(|h| h.strip_prefix("unix://").map(PathBuf::from)) {
            out.push((
                "the active docker context".into(),
                DockerEndpoint::Unix(host),
            ));
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
        let mut candidates = vec![
            ("the standard socket", PathBuf::from("/var/run/docker.sock")),
            ("Docker Desktop", home.join(".docker/run/docker.sock")),
            ("Colima", home.join(".colima/default/docker.sock")),
        ];
        if let Some(r) = runtime {
            candidates.push(("rootless Docker", r.join("docker.sock")));
            candidates.push(("Podman", r.join("podman/podman.sock")));
        }
        for (how, path) in candidates {
            if !out
                .iter()
                .any(|(_, e)| *e == DockerEndpoint::Unix(path.clone()))
            {
                out.push((how.into(), DockerEndpoint::Unix(path)));
            }
        }
        out
    }

    fn ping(&self, endpoint: &crate::prereq::DockerEndpoint) -> Result<(), String> {
        crate::prereq::check_docker(endpoint).map_err(|m| m.to_string())
    }

    fn docker_facts(&self) -> Option<DockerFacts> {
        let out = std::process::Command::new("docker")
            .args(["info", "--format", "{{.MemTotal}} {{.DockerRootDir}}"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (mem, root) = text.trim().split_once(' ')?;
        let version = std::process::Command::new("docker")
            .args(["version", "--format", "{{.Server.APIVersion}}"])
            .output()
            .ok()?;
        let networks = std::process::Command::new("docker")
            .args([
                "network",
                "ls",
                "--filter",
                "name=^kind$",
                "--format",
                "{{.ID}}",
            ])
            .output()
            .ok()?;
        Some(DockerFacts {
            api_version: String::from_utf8_lossy(&version.stdout).trim().to_owned(),
            mem_total: mem.parse().ok()?,
            root_dir: PathBuf::from(root),
            kind_networks: String::from_utf8_lossy(&networks.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    }

    fn read(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    fn free_bytes(&self, path: &Path) -> Option<u64> {
        // The root dir may be inside Docker's VM (Desktop): then the host's `/` is
        // the nearest answer.
        let target = if path.exists() { path } else { Path::new("/") };
        let c = std::ffi::CString::new(target.as_os_str().to_string_lossy().as_bytes()).ok()?;
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: statvfs(3) writes into `s`, a zeroed struct of the right type.
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
        (rc == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
    }

    fn reachable(&self, host: &str) -> Result<(), String> {
        use std::net::ToSocketAddrs;
        let addrs = (host, 443)
            .to_socket_addrs()
            .map_err(|e| format!("DNS: {host}: {e}"))?;
        let mut last = format!("DNS: {host} has no address");
        for a in addrs {
            match std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)) {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("connect {a}: {e}"),
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prereq::DockerEndpoint;

    struct Fake {
        docker: bool,
        mem: u64,
        watches: &'static str,
        modules: &'static str,
        online: bool,
        kind_networks: &'static [&'static str],
    }

    impl Host for Fake {
        fn docker_endpoints(&self) -> Vec<(String, DockerEndpoint)> {
            vec![("DOCKER_HOST".into(), DockerEndpoint::Unix("/d.sock".into()))]
        }
        fn ping(&self, _: &DockerEndpoint) -> Result<(), String> {
            if self.docker {
                Ok(())
            } else {
                Err("no".into())
            }
        }
        fn docker_facts(&self) -> Option<DockerFacts> {
            Some(DockerFacts {
                api_version: "1.41".into(),
                mem_total: self.mem,
                root_dir: "/var/lib/docker".into(),
                kind_networks: self.kind_networks.iter().map(|n| (*n).to_owned()).collect(),
            })
        }
        fn read(&self, path: &Path) -> Option<String> {
            match path.to_str()? {
                "/proc/sys/fs/inotify/max_user_watches" => Some(self.watches.into()),
                "/proc/sys/fs/inotify/max_user_instances" => Some(
                    if self.watches == "524288" {
                        "512"
                    } else {
                        "128"
                    }
                    .into(),
                ),
                "/proc/modules" => Some(self.modules.into()),
                _ => None,
            }
        }
        fn free_bytes(&self, _: &Path) -> Option<u64> {
            Some(50 << 30)
        }
        fn reachable(&self, host: &str) -> Result<(), String> {
            if self.online {
                Ok(())
            } else {
                Err(format!("DNS: {host}: failed to lookup address information"))
            }
        }
    }

    #[test]
    fn two_networks_named_kind_fail_with_the_fix() {
        let host = Fake {
            docker: true,
            mem: 64 << 30,
            watches: "524288",
            modules: "nfnetlink_queue",
            online: true,
            kind_networks: &["0a1b2c", "3d4e5f"],
        };
        let checks = checks(&host, 1, true);
        let kind = checks
            .iter()
            .find(|c| c.name == "kind network")
            .expect("checked");
        assert_eq!(kind.verdict, Verdict::Fail);
        assert!(kind.detail.contains("0a1b2c, 3d4e5f"), "{}", kind.detail);
        assert!(kind.fix.contains("docker network rm"));
        let one = Fake {
            kind_networks: &["0a1b2c"],
            ..host
        };
        assert!(!checks_named(&one, "kind network"));
    }

    fn checks_named(host: &Fake, name: &str) -> bool {
        checks(host, 1, true).iter().any(|c| c.name == name)
    }

    #[test]
    fn each_missing_piece_is_named_with_its_fix() {
        let host = Fake {
            docker: false,
            mem: 0,
            watches: "8192",
            modules: "",
            online: false,
            kind_networks: &[],
        };
        let checks = checks(&host, 2, true);
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            failed,
            vec!["Docker daemon", "reachable", "reachable", "reachable"]
        );
        let text = banner(&checks).expect("a banner");
        assert!(
            text.contains("start Docker") && text.contains("registry.k8s.io"),
            "{text}"
        );
        let inotify = checks
            .iter()
            .find(|c| c.name == "inotify limits")
            .expect("inotify");
        assert_eq!(inotify.verdict, Verdict::Warn);
        assert!(inotify.fix.contains("sysctl fs.inotify"), "{inotify}");
        assert!(
            checks
                .iter()
                .any(|c| c.name == "NFQUEUE (NetworkPolicy)" && c.verdict == Verdict::Warn)
        );
    }

    #[test]
    fn a_ready_host_passes_with_warnings_at_most() {
        let host = Fake {
            docker: true,
            mem: 4 << 30,
            watches: "524288",
            modules: "nfnetlink_queue 24576 0 - Live 0x0",
            online: true,
            kind_networks: &[],
        };
        let checks = checks(&host, 2, true);
        assert!(banner(&checks).is_none(), "{checks:?}");
        let memory = checks
            .iter()
            .find(|c| c.name == "memory for Docker")
            .expect("memory");
        assert_eq!(
            memory.verdict,
            Verdict::Warn,
            "4 GiB for 2 clusters is tight"
        );
        assert!(memory.fix.contains("--parallel-clusters 1"));
    }

    #[test]
    fn an_existing_cluster_asks_only_what_it_uses_of_this_host() {
        use crate::model::{ClusterMode, UpstreamMode};
        let host = Fake {
            docker: false,
            mem: 0,
            watches: "8192",
            modules: "",
            online: false,
            kind_networks: &[],
        };
        let internet = Needs::of(ClusterMode::Existing, UpstreamMode::Internet, 2, true);
        let checks = checks_for(&host, internet);
        assert!(banner(&checks).is_none(), "no Docker is needed: {checks:?}");
        let local = Needs::of(ClusterMode::Existing, UpstreamMode::Local, 2, true);
        let names: Vec<&str> = checks_for(&host, local).iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            vec!["Docker daemon", "reachable"],
            "the upstream's container needs Docker and its image, no kind limits"
        );
        let kind = Needs::of(ClusterMode::Kind, UpstreamMode::Internet, 2, true);
        assert!(
            banner(&checks_for(&host, kind)).is_some(),
            "kind needs Docker"
        );
    }
}
