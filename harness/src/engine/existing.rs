//! `--cluster existing`: what the current cluster runs, read before planning, so that
//! the verdicts are judged against its Istio version and only the scenarios whose
//! install profile its mesh matches are run.

use std::time::Duration;

use semver::Version;

use crate::mesh_config::{self, MeshConfig};
use crate::model::mesh;
use crate::plan::{IstioRelease, PlanOptions};
use crate::seams::{InfraError, KubeConnector};

/// The mesh found in the current cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledMesh {
    pub istiod_image: String,
    /// `None` when the image tag names no release (a custom build).
    pub version: Option<Version>,
    pub config: MeshConfig,
}

/// Reads istiod's image and the mesh config of the current kube context.
pub async fn discover(
    kube: &dyn KubeConnector,
    deadline: Duration,
) -> Result<InstalledMesh, InfraError> {
    let read = async {
        let api = kube
            .connect(None)
            .await
            .map_err(|e| {
                e.context("opening the current kube context (KUBECONFIG, else ~/.kube/config; --cluster kind makes a cluster instead)")
            })?;
        let images = api
            .deployment_images(mesh::ISTIO_NAMESPACE, mesh::ISTIOD_DEPLOYMENT)
            .await?
            .ok_or_else(|| {
                InfraError::new(format!(
                    "the current cluster has no Deployment {}/{}: install Istio with an egress gateway first, or run on the harness's own clusters (--cluster kind)",
                    mesh::ISTIO_NAMESPACE,
                    mesh::ISTIOD_DEPLOYMENT
                ))
            })?;
        let istiod_image = images
            .iter()
            .find(|i| i.contains("pilot"))
            .or_else(|| images.first())
            .cloned()
            .unwrap_or_default();
        let text = api
            .config_map_value(
                mesh::ISTIO_NAMESPACE,
                mesh_config::CONFIG_MAP,
                mesh_config::CONFIG_MAP_KEY,
            )
            .await?
            .ok_or_else(|| {
                InfraError::new(format!(
                    "the current cluster has no mesh config (ConfigMap {}/{}, key {}); a revisioned install is not supported",
                    mesh::ISTIO_NAMESPACE,
                    mesh_config::CONFIG_MAP,
                    mesh_config::CONFIG_MAP_KEY
                ))
            })?;
        let config = MeshConfig::parse(&text).map_err(InfraError::new)?;
        Ok(InstalledMesh {
            version: mesh_config::istio_version_of_image(&istiod_image),
            istiod_image,
            config,
        })
    };
    tokio::time::timeout(deadline, read).await.map_err(|_| {
        InfraError::new(format!(
            "reading the current cluster's Istio took longer than {}s",
            deadline.as_secs()
        ))
    })?
}

/// Puts what was found into the plan: `installed` becomes the version istiod runs,
/// another `--istio` is refused, and the mesh config decides which profiles run.
pub fn resolve(options: &mut PlanOptions, found: &InstalledMesh) -> Result<(), String> {
    let asked: Vec<String> = options.istio.iter().map(ToString::to_string).collect();
    let version = match (options.istio.as_slice(), &found.version) {
        ([IstioRelease::Installed], Some(v)) => v.clone(),
        ([IstioRelease::Installed], None) => {
            return Err(format!(
                "istiod runs {}, whose tag names no Istio release: say which release it is with --istio VERSION",
                found.istiod_image
            ));
        }
        ([IstioRelease::Exact(asked)], Some(v)) if asked != v => {
            return Err(format!(
                "the current cluster runs Istio {v} (istiod image {}), not {asked}: drop --istio, or pass --istio {v}",
                found.istiod_image
            ));
        }
        ([IstioRelease::Exact(asked)], _) => asked.clone(),
        _ => {
            return Err(format!(
                "--cluster existing checks the one Istio the cluster runs; --istio {} names other releases (drop --istio, or use --cluster kind)",
                asked.join(",")
            ));
        }
    };
    options.istio = vec![IstioRelease::Exact(version)];
    options.installed_mesh = Some(found.config.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(image: &str) -> InstalledMesh {
        InstalledMesh {
            istiod_image: image.into(),
            version: mesh_config::istio_version_of_image(image),
            config: MeshConfig::parse(
                "accessLogFile: /dev/stdout\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}\n",
            )
            .expect("mesh"),
        }
    }

    fn options(istio: &str) -> PlanOptions {
        let mut o = PlanOptions::for_this_host();
        o.istio = IstioRelease::parse_list(istio).expect("istio");
        o
    }

    #[test]
    fn the_installed_version_replaces_installed_and_refuses_another() {
        let mut o = options("installed");
        resolve(&mut o, &found("docker.io/istio/pilot:1.24.3")).expect("resolves");
        assert_eq!(o.istio, vec![IstioRelease::parse("1.24.3").expect("v")]);
        assert!(o.installed_mesh.is_some());

        let mut o = options("1.24.3");
        resolve(&mut o, &found("docker.io/istio/pilot:1.24.3")).expect("the same release");

        let e = resolve(
            &mut options("1.30.3"),
            &found("docker.io/istio/pilot:1.24.3"),
        )
        .expect_err("another release");
        assert!(
            e.contains("runs Istio 1.24.3") && e.contains("pass --istio 1.24.3"),
            "{e}"
        );
        let e = resolve(
            &mut options("installed"),
            &found("my.registry/pilot:custom"),
        )
        .expect_err("no release in the tag");
        assert!(e.contains("--istio VERSION"), "{e}");
        let mut o = options("1.22.1");
        resolve(&mut o, &found("my.registry/pilot:custom")).expect("the user says which");
        let e = resolve(
            &mut options("1.22.1,1.24.3"),
            &found("docker.io/istio/pilot:1.24.3"),
        )
        .expect_err("two versions on one cluster");
        assert!(e.contains("--cluster kind"), "{e}");
    }
}
