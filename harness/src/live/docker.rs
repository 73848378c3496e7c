//! The production [`DockerApi`]: the upstream echo server started by testcontainers
//! and joined to kind's network with its aliases through testcontainers' bollard.

use std::collections::BTreeMap;
use std::time::Duration;

use testcontainers::CopyTargetOptions;
use testcontainers::bollard::models::{EndpointSettings, NetworkConnectRequest};
use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::command::{self, Command};
use crate::seams::{DockerApi, InfraError};
use crate::upstream::{Certs, EchoServer, LABEL};

/// Containers this process started, by name, so that they are removed by handle.
#[derive(Default)]
pub struct DockerEngine {
    started: tokio::sync::Mutex<BTreeMap<String, ContainerAsync<GenericImage>>>,
}

#[async_trait::async_trait]
impl DockerApi for DockerEngine {
    async fn ping(&self) -> Result<(), InfraError> {
        let endpoint = crate::prereq::DockerEndpoint::from_env();
        tokio::task::spawn_blocking(move || crate::prereq::check_docker(&endpoint))
            .await
            .map_err(|e| InfraError::new(format!("Docker check: {e}")))?
            .map_err(|m| InfraError::new(crate::prereq::describe(&[m])))
    }

    /// testcontainers has no network-alias API, so the container starts on Docker's
    /// default bridge and is then connected to `kind` with `EndpointSettings.aliases`
    /// (Docker's `POST /networks/{id}/connect`). Docker's embedded DNS answers aliases
    /// to every container on that network; kind's nodes forward pod DNS there (kind's
    /// images/base/files/usr/local/bin/entrypoint, enable_network_magic).
    async fn start_upstream(
        &self,
        server: &EchoServer,
        certs: &Certs,
        timeout: Duration,
    ) -> Result<(), InfraError> {
        let files = certs.files();
        let mut request = GenericImage::new(&server.image, &server.tag)
            .with_wait_for(WaitFor::message_on_stdout("(https)"))
            .with_container_name(&server.container_name)
            .with_label(LABEL.0, LABEL.1)
            .with_user(&server.user)
            .with_startup_timeout(timeout);
        for (k, v) in &server.env {
            request = request.with_env_var(k, v);
        }
        for m in &server.mounts {
            let bytes = files
                .iter()
                .find(|(name, _)| *name == m.source)
                .map(|(_, pem)| pem.as_bytes().to_vec())
                .ok_or_else(|| InfraError::new(format!("no certificate file {}", m.source)))?;
            request =
                request.with_copy_to(CopyTargetOptions::new(&m.target).with_mode(m.mode), bytes);
        }
        let container = request
            .start()
            .await
            .map_err(|e| InfraError::new(format!("starting the upstream {server}: {e}")))?;
        let docker = testcontainers::bollard::Docker::connect_with_defaults()
            .map_err(|e| InfraError::new(format!("Docker client: {e}")))?;
        let connect = NetworkConnectRequest {
            container: container.id().to_owned(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(server.aliases.clone()),
                ..EndpointSettings::default()
            }),
        };
        if let Err(e) = docker.connect_network(&server.network, connect).await {
            let _ = container.rm().await;
            return Err(InfraError::new(format!(
                "connecting the upstream to Docker network {} (is a kind cluster up?): {e}",
                server.network
            )));
        }
        self.started
            .lock()
            .await
            .insert(server.container_name.clone(), container);
        Ok(())
    }

    async fn remove_container(&self, name: &str, timeout: Duration) -> Result<(), InfraError> {
        if let Some(container) = self.started.lock().await.remove(name) {
            return tokio::time::timeout(timeout, container.rm())
                .await
                .map_err(|_| {
                    InfraError::new(format!(
                        "removing {name} took longer than {}s",
                        timeout.as_secs()
                    ))
                })?
                .map_err(|e| InfraError::new(format!("removing the upstream {name}: {e}")));
        }
        remove_by_name(name, timeout).await
    }
}

/// `docker rm -f`, for containers of an earlier run or one whose handle is gone.
pub async fn remove_by_name(name: &str, timeout: Duration) -> Result<(), InfraError> {
    command::run_async(Command {
        argv: vec!["docker".into(), "rm".into(), "-f".into(), name.into()],
        timeout,
        what: format!("removing container {name}"),
    })
    .await
    .map_err(InfraError::new)?
    .checked()
    .map(|_| ())
}
