//! The host's programs as the simulation answers them: kind, istioctl and docker
//! read their argv as the real programs do (kind's pkg/cmd/kind/*, istioctl's
//! `install -f`), and the Docker API for the upstream container.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use egress_harness::seams::{Command, DockerApi, HostPrograms, InfraError, Payload, Ran};
use egress_harness::upstream::{Certs, EchoServer};

use super::{Cluster, Fault, Sim};

pub struct Programs(pub Sim);

/// The release of an istioctl the simulation did not download (`--istioctl PATH`).
pub const LOCAL_ISTIOCTL: &str = "1.30.3";

fn ran(argv: &[String], code: i32, stdout: &str, stderr: &str) -> Ran {
    Ran {
        argv: argv.to_vec(),
        exit_code: Some(code),
        stdout: stdout.to_owned(),
        stderr: stderr.to_owned(),
        elapsed: Duration::from_millis(1),
        timed_out: false,
    }
}

/// Every value of a repeatable flag, in order.
fn flags<'a>(argv: &'a [String], name: &'a str) -> impl Iterator<Item = &'a str> {
    argv.windows(2)
        .filter(move |w| w[0] == name)
        .map(|w| w[1].as_str())
}

fn flag<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1))
        .map(String::as_str)
}

/// The cluster a kubeconfig written by the simulated `kind create` names.
pub fn cluster_of(kubeconfig: &Path) -> Option<String> {
    std::fs::read_to_string(kubeconfig)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("# simulated kind cluster: "))
        .map(str::to_owned)
}

impl Programs {
    fn kind(&self, argv: &[String]) -> Ran {
        let args: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
        let sim = &self.0;
        match args.as_slice() {
            ["version"] => ran(argv, 0, "kind v0.27.0 (simulated)\n", ""),
            ["get", "clusters", ..] => {
                let names: Vec<String> = sim.world().clusters.keys().cloned().collect();
                ran(argv, 0, &(names.join("\n") + "\n"), "")
            }
            ["create", "cluster", ..] => {
                let (Some(name), Some(kubeconfig)) =
                    (flag(argv, "--name"), flag(argv, "--kubeconfig"))
                else {
                    return ran(argv, 1, "", "ERROR: --name and --kubeconfig expected");
                };
                if sim.faults.has(Fault::ClusterCreateFails) {
                    return ran(
                        argv,
                        1,
                        "",
                        "ERROR: failed to create cluster: simulated fault cluster-create-fails",
                    );
                }
                let mut world = sim.world();
                if sim.faults.has(Fault::ClusterCreatedMeanwhile) {
                    // Someone else's, made just now: the run must leave it alone.
                    world
                        .clusters
                        .entry(name.to_owned())
                        .or_insert_with(|| Cluster {
                            existing: true,
                            ..Cluster::default()
                        });
                }
                if world.clusters.contains_key(name) {
                    // kind's pkg/cluster/internal/create/create.go
                    return ran(
                        argv,
                        1,
                        "",
                        &format!(
                            "ERROR: failed to create cluster: node(s) already exist for a cluster with the name \"{name}\""
                        ),
                    );
                }
                let written = std::fs::write(
                    kubeconfig,
                    format!("# simulated kind cluster: {name}\napiVersion: v1\nkind: Config\n"),
                );
                if let Err(e) = written {
                    return ran(argv, 1, "", &format!("ERROR: writing {kubeconfig}: {e}"));
                }
                let mut cluster = Cluster {
                    node_image: flag(argv, "--image").map(str::to_owned),
                    ..Cluster::default()
                };
                for ns in ["default", "kube-system"] {
                    cluster.namespaces.insert(ns.into(), Default::default());
                }
                world.clusters.insert(name.to_owned(), cluster);
                ran(argv, 0, "", &format!("Creating cluster \"{name}\" ...\n"))
            }
            ["delete", "cluster", ..] => {
                let Some(name) = flag(argv, "--name") else {
                    return ran(argv, 1, "", "ERROR: --name expected");
                };
                sim.world().clusters.remove(name);
                ran(argv, 0, "", &format!("Deleting cluster \"{name}\" ...\n"))
            }
            ["load", "docker-image", ..] => {
                if sim.faults.has(Fault::ContainerdImageStore) {
                    return ran(
                        argv,
                        1,
                        "",
                        "ERROR: failed to load image: command \"docker exec --privileged -i egc-control-plane ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -\" failed with error: exit status 1\nCommand Output: ctr: content digest sha256:82014a3cbf22d2e03382cd9b123f4151d956986e727340a466406a206408b7a2: not found (simulated fault containerd-image-store)",
                    );
                }
                if sim.faults.has(Fault::ImageLoadFails) {
                    return ran(
                        argv,
                        1,
                        "",
                        "ERROR: failed to load image: command \"docker exec --privileged -i egc-control-plane ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -\" failed with error: exit status 1 (simulated fault image-load-fails)",
                    );
                }
                let world = sim.world();
                let images: Vec<&String> = argv
                    .iter()
                    .skip(5)
                    .filter(|i| !i.starts_with("--"))
                    .collect();
                if let Some(missing) = images.iter().find(|i| !world.images.contains(**i)) {
                    return ran(
                        argv,
                        1,
                        "",
                        &format!("ERROR: image: \"{missing}\" not present locally"),
                    );
                }
                ran(argv, 0, "", "")
            }
            ["export", "logs", rest @ ..] => {
                // kind export logs [output-dir] [flags]: the positional, wherever it is.
                let mut positional = None;
                let mut it = rest.iter();
                while let Some(a) = it.next() {
                    if a.starts_with("--") {
                        it.next();
                    } else {
                        positional = Some(*a);
                    }
                }
                let Some(dir) = positional else {
                    return ran(argv, 1, "", "ERROR: no output directory (simulated)");
                };
                let _ = std::fs::create_dir_all(dir).and_then(|()| {
                    std::fs::write(
                        Path::new(dir).join("SIMULATED.txt"),
                        "a simulated cluster has no node logs\n",
                    )
                });
                ran(argv, 0, "", "")
            }
            _ => ran(argv, 1, "", "kind (simulated): unknown command"),
        }
    }

    fn istioctl(&self, argv: &[String]) -> Ran {
        let sim = &self.0;
        match argv.get(1).map(String::as_str) {
            Some("version") => {
                let version = sim
                    .world()
                    .downloads
                    .get(Path::new(&argv[0]))
                    .cloned()
                    .unwrap_or_else(|| LOCAL_ISTIOCTL.into());
                ran(argv, 0, &format!("client version: {version}\n"), "")
            }
            Some("install") => {
                let (Some(file), Some(kubeconfig)) = (flag(argv, "-f"), flag(argv, "--kubeconfig"))
                else {
                    return ran(argv, 1, "", "Error: -f and --kubeconfig expected");
                };
                let Some(name) = cluster_of(Path::new(kubeconfig)) else {
                    return ran(argv, 1, "", "Error: the kubeconfig names no cluster");
                };
                let version = {
                    let world = sim.world();
                    world.downloads.get(Path::new(&argv[0])).cloned()
                };
                let version = version.unwrap_or_else(|| LOCAL_ISTIOCTL.into());
                let Ok(version) = semver::Version::parse(&version) else {
                    return ran(argv, 1, "", "Error: this istioctl has no version");
                };
                let profile = Path::new(file)
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("default")
                    .to_owned();
                let mut world = sim.world();
                let Some(cluster) = world.clusters.get_mut(&name) else {
                    return ran(argv, 1, "", "Error: the cluster does not answer");
                };
                cluster.istio = Some((version, profile));
                // istioctl writes the profile's meshConfig into the istio ConfigMap.
                cluster.mesh_config = egress_harness::manifest::parse_file(Path::new(file))
                    .ok()
                    .and_then(|objects| objects.into_iter().next())
                    .and_then(|o| o.body.pointer("/spec/meshConfig").cloned())
                    .map(|m| m.to_string());
                // istiod's environment: `values.pilot.env` of every `-f`, overlaid left
                // to right as istioctl does.
                cluster.istiod_env.clear();
                cluster.ztunnel = false;
                // istiod starts now, with the CRDs the cluster has.
                cluster.istiod_crds = cluster.crds.clone();
                for file in flags(argv, "-f") {
                    let objects = match egress_harness::manifest::parse_file(Path::new(file)) {
                        Ok(objects) => objects,
                        Err(e) => return ran(argv, 1, "", &format!("Error: {e}")),
                    };
                    for o in objects {
                        let spec = &o.body["spec"];
                        cluster.ztunnel |= spec["profile"] == "ambient"
                            || spec["components"]["ztunnel"]["enabled"] == true;
                        for (k, v) in o.body["spec"]["values"]["pilot"]["env"]
                            .as_object()
                            .into_iter()
                            .flatten()
                        {
                            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                            cluster.istiod_env.insert(k.clone(), v);
                        }
                    }
                }
                cluster.namespaces.entry("istio-system".into()).or_default();
                ran(
                    argv,
                    0,
                    "✔ Istio core installed\n✔ Installation complete\n",
                    "",
                )
            }
            _ => ran(argv, 1, "", "istioctl (simulated): unknown command"),
        }
    }

    /// The project's echo image (harness/src/upstream/image.rs): `env … cargo build`
    /// makes the binary, `sh -c '… docker import …' sh BINARY IMAGE` makes the image
    /// only from a binary that was built.
    fn build(&self, argv: &[String]) -> Ran {
        let sim = &self.0;
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["env", _, cargo, "build", rest @ ..] if cargo.ends_with("cargo") => {
                let (Some(dir), Some(triple)) =
                    (flag(argv, "--target-dir"), flag(argv, "--target"))
                else {
                    return ran(argv, 101, "", "error: no --target-dir/--target (simulated)");
                };
                let _ = rest;
                let binary = format!("{dir}/{triple}/release/egress-echo");
                sim.world().built.insert(binary);
                ran(argv, 0, "", "")
            }
            ["sh", "-c", script, "sh", binary, image] if script.contains("docker import") => {
                let mut world = sim.world();
                if !world.built.contains(*binary) {
                    return ran(
                        argv,
                        1,
                        "",
                        &format!("cp: cannot stat '{binary}': No such file or directory"),
                    );
                }
                world.images.insert((*image).to_owned());
                ran(argv, 0, "sha256:0000 (simulated import)\n", "")
            }
            _ => ran(
                argv,
                127,
                "",
                &format!("{}: not found on the simulated host", args[0]),
            ),
        }
    }

    fn docker(&self, argv: &[String]) -> Ran {
        let sim = &self.0;
        let args: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
        match args.as_slice() {
            ["image", "inspect", image] => {
                let present = sim.world().images.contains(*image);
                ran(argv, if present { 0 } else { 1 }, "", "")
            }
            ["pull", image] => {
                sim.world().images.insert((*image).to_owned());
                ran(argv, 0, "", "")
            }
            ["rm", "-f", name] => {
                sim.world().containers.remove(*name);
                ran(argv, 0, "", "")
            }
            _ => ran(argv, 1, "", "docker (simulated): unknown command"),
        }
    }
}

#[async_trait]
impl HostPrograms for Programs {
    async fn run(&self, command: Command) -> Result<Ran, InfraError> {
        let Some(program) = command.argv.first() else {
            return Err(InfraError::new("empty command"));
        };
        let name = Path::new(program)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        Ok(match name {
            "kind" => self.kind(&command.argv),
            "istioctl" => self.istioctl(&command.argv),
            "docker" => self.docker(&command.argv),
            "env" | "sh" => self.build(&command.argv),
            other => ran(
                &command.argv,
                127,
                "",
                &format!("{other}: not found on the simulated host"),
            ),
        })
    }

    async fn download(
        &self,
        url: &str,
        _checksum_url: &str,
        _payload: Payload,
        dest: &Path,
        _timeout: Duration,
    ) -> Result<PathBuf, InfraError> {
        // The releases' URLs carry the version: .../download/<version>/...
        let version = url
            .split("/download/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_owned();
        self.0.world().downloads.insert(dest.to_owned(), version);
        Ok(dest.to_owned())
    }

    async fn fetch_pinned(
        &self,
        url: &str,
        _sha256: &str,
        dest: &Path,
        _timeout: Duration,
    ) -> Result<Vec<u8>, InfraError> {
        // The digest is the live seam's to check (live::download tests); here the
        // fault says what a mismatch looks like to the engine.
        if self.0.faults.has(Fault::CrdDigestMismatch) {
            return Err(InfraError::new(format!(
                "{url}: sha256 {} does not match the pinned one; nothing was applied (simulated)",
                "0".repeat(64)
            )));
        }
        let body = super::gateway_api::crd_file(url).map_err(InfraError::new)?;
        self.0
            .world()
            .downloads
            .insert(dest.to_owned(), url.to_owned());
        Ok(body.into_bytes())
    }

    fn kill_all(&self) {}
}

pub struct Docker(pub Sim);

#[async_trait]
impl DockerApi for Docker {
    async fn ping(&self) -> Result<(), InfraError> {
        Ok(())
    }

    async fn start_upstream(
        &self,
        server: &EchoServer,
        certs: &Certs,
        _timeout: Duration,
    ) -> Result<(), InfraError> {
        let mut world = self.0.world();
        // kind makes its network with the first cluster.
        if world.clusters.is_empty() {
            return Err(InfraError::new(format!(
                "connecting the upstream to Docker network {}: network not found (simulated)",
                server.network
            )));
        }
        if !world.images.contains(&server.image_ref()) {
            return Err(InfraError::new(format!(
                "docker create: No such image: {} (simulated)",
                server.image_ref()
            )));
        }
        if let Some((holder, _)) = world
            .containers
            .iter()
            .find(|(_, aliases)| aliases.iter().any(|a| server.aliases.contains(a)))
        {
            return Err(InfraError::permanent(format!(
                "container {holder} already answers as {} on {}",
                server.aliases.join(","),
                server.network
            )));
        }
        world
            .containers
            .insert(server.container_name.clone(), server.aliases.clone());
        drop(world);
        self.0.data.set_client_cert(&certs.client_cert);
        Ok(())
    }

    async fn remove_container(&self, name: &str, _timeout: Duration) -> Result<(), InfraError> {
        self.0.world().containers.remove(name);
        Ok(())
    }
}
