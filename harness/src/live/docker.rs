//! The production [`DockerApi`]: the upstream echo server's container, through the
//! docker CLI and the one command runner.
//!
//! Not testcontainers: testcontainers 0.28 (bollard 0.21) sends every request as
//! `/v1.53/...` without negotiating (testcontainers/testcontainers-rs@0.28.0
//! testcontainers/src/core/client/bollard_client.rs; fussybeaver/bollard@0.21.1
//! src/docker.rs, API_DEFAULT_VERSION), so every engine older than Docker 29.2
//! refuses it ("client version 1.53 is too new", moby daemon/server/middleware/
//! version.go); harness/tests/docker.rs shows it on the engine at hand. The docker
//! CLI negotiates the version itself.

use std::time::Duration;

use super::command::{self, Command, Ran};
use crate::seams::{DockerApi, InfraError};
use crate::upstream::{Certs, EchoServer, LABEL};

#[derive(Default)]
pub struct DockerEngine;

async fn docker(args: &[&str], timeout: Duration, what: &str) -> Result<Ran, InfraError> {
    let mut argv = vec!["docker".to_owned()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    command::run_async(Command {
        argv,
        timeout,
        what: what.to_owned(),
    })
    .await
    .map_err(InfraError::new)
}

/// What a failed `docker network inspect NETWORK` means, with the daemon's words: two
/// networks of one name make it "ambiguous" (moby daemon/network.go), which is
/// not the same trouble as none.
pub fn network_trouble(network: &str, stderr: &str) -> String {
    let said = crate::model::terminal_safe(stderr.trim()).into_owned();
    if said.contains("ambiguous") {
        format!(
            "two or more Docker networks are named {network} ({said}): keep kind's and remove the other with `docker network rm <ID>` (`docker network ls --filter name=^{network}$` lists them)"
        )
    } else {
        format!("Docker network {network} not found (kind makes it with its first cluster): {said}")
    }
}

/// Containers on `network` that answer to one of `aliases`, with the alias.
async fn alias_holders(
    network: &str,
    aliases: &[String],
    timeout: Duration,
) -> Result<Vec<(String, String)>, InfraError> {
    let listed = docker(
        &[
            "network",
            "inspect",
            network,
            "--format",
            "{{range $id, $c := .Containers}}{{$c.Name}} {{end}}",
        ],
        timeout,
        "listing the containers on the upstream's network",
    )
    .await?;
    if !listed.success() {
        return Err(InfraError::new(network_trouble(network, &listed.stderr)));
    }
    let mut holders = Vec::new();
    for name in listed.stdout.split_whitespace() {
        let inspected = docker(
            &[
                "inspect",
                name,
                "--format",
                "{{json .NetworkSettings.Networks}}",
            ],
            timeout,
            "reading a container's aliases",
        )
        .await?;
        let networks: serde_json::Value =
            serde_json::from_str(inspected.stdout.trim()).unwrap_or_default();
        let held: Vec<&str> = networks[network]["Aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .collect();
        for alias in aliases {
            if held.contains(&alias.as_str()) {
                holders.push((name.to_owned(), alias.clone()));
            }
        }
    }
    Ok(holders)
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

    /// Docker's embedded DNS answers the aliases to every container on the network;
    /// kind's nodes forward pod DNS there (kind images/base/files/usr/local/bin/
    /// entrypoint, enable_network_magic).
    async fn start_upstream(
        &self,
        server: &EchoServer,
        certs: &Certs,
        timeout: Duration,
    ) -> Result<(), InfraError> {
        let call = Duration::from_secs(60).min(timeout);
        let holders = alias_holders(&server.network, &server.aliases, call).await?;
        if let Some((holder, alias)) = holders.first() {
            // Permanent: nothing was made, so nothing of this run is to be removed.
            return Err(InfraError::permanent(format!(
                "container {holder} already answers as {alias} on Docker network {}: two upstreams would share the name. Remove it (`egress prune` removes the harness's own; `docker rm -f {holder}` any other)",
                server.network
            )));
        }
        let label = format!("{}={}", LABEL.0, LABEL.1);
        let pid = format!("{}={}", super::prune::PID_LABEL, std::process::id());
        let mut args: Vec<String> = [
            "create",
            "--name",
            &server.container_name,
            "--label",
            &label,
            "--label",
            &pid,
            "--user",
            &server.user,
            "--network",
            &server.network,
        ]
        .map(String::from)
        .to_vec();
        for alias in &server.aliases {
            args.extend(["--network-alias".to_owned(), alias.clone()]);
        }
        for (k, v) in &server.env {
            args.extend(["-e".to_owned(), format!("{k}={v}")]);
        }
        args.push(server.image_ref());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&argv, timeout, "creating the upstream container")
            .await?
            .checked()
            .map_err(|e| {
                // Docker's "Conflict. The container name ... is already in use": the
                // name is someone else's, and so is the container.
                if e.message.contains("is already in use") {
                    InfraError::permanent(e.message)
                } else {
                    e
                }
            })?;
        let started = self.copy_and_start(server, certs, timeout).await;
        if let Err(e) = started {
            let _ = self.remove_container(&server.container_name, call).await;
            return Err(e);
        }
        Ok(())
    }

    async fn remove_container(&self, name: &str, timeout: Duration) -> Result<(), InfraError> {
        remove_by_name(name, timeout).await
    }
}

impl DockerEngine {
    async fn copy_and_start(
        &self,
        server: &EchoServer,
        certs: &Certs,
        timeout: Duration,
    ) -> Result<(), InfraError> {
        // The certificates share one folder; `docker cp DIR/. C:FOLDER` creates it. The
        // folder is private (0700, made new: never one found there) and gone after the
        // copy; `egress prune` removes one a killed run left.
        let dir = super::prune::key_dir(&server.container_name);
        make_private_dir(&dir)?;
        // Gone on every way out of here, errors and timeouts included.
        let _remove = RemoveOnDrop(dir.clone());
        let files = certs.files();
        let mut folder = None;
        for m in &server.mounts {
            let pem = files
                .iter()
                .find(|(name, _)| *name == m.source)
                .map(|(_, pem)| pem.to_string())
                .ok_or_else(|| InfraError::new(format!("no certificate file {}", m.source)))?;
            let target = std::path::Path::new(&m.target);
            let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
                return Err(InfraError::new(format!("{} is no file path", m.target)));
            };
            folder.get_or_insert_with(|| parent.display().to_string());
            write_private(&dir.join(name), pem.as_bytes(), m.mode)?;
        }
        if let Some(folder) = folder {
            let source = format!("{}/.", dir.display());
            let target = format!("{}:{folder}", server.container_name);
            let copied = docker(
                &["cp", &source, &target],
                timeout,
                "copying the certificates in",
            )
            .await?
            .checked();
            let _ = std::fs::remove_dir_all(&dir);
            copied?;
        }
        docker(
            &["start", &server.container_name],
            timeout,
            "starting the upstream container",
        )
        .await?
        .checked()?;
        // echo-basic prints "(https)" once its HTTPS listener is up.
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let logs = docker(
                &["logs", &server.container_name],
                Duration::from_secs(30).min(timeout),
                "reading the upstream's log",
            )
            .await?;
            if logs.stdout.contains("(https)") || logs.stderr.contains("(https)") {
                return Ok(());
            }
            if started.elapsed() + pause > timeout {
                return Err(InfraError::new(format!(
                    "the upstream {} did not say it serves HTTPS within {}s; its log:\n{}{}",
                    server.container_name,
                    timeout.as_secs(),
                    logs.stdout,
                    logs.stderr
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

/// A file only its owner reads (the server key).
/// Removes a folder this run made when it goes out of scope.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new folder only its owner can enter; an existing one is an error, not reused.
fn make_private_dir(dir: &std::path::Path) -> Result<(), InfraError> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| {
        InfraError::new(format!(
            "{}: {e} (a killed run's? `egress prune` removes it)",
            dir.display()
        ))
    })
}

/// A new file with `mode` from its first byte (never a moment world-readable).
fn write_private(path: &std::path::Path, bytes: &[u8], mode: u32) -> Result<(), InfraError> {
    use std::io::Write;
    let io = |e: std::io::Error| InfraError::new(format!("{}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(io)
}

/// `docker rm -f`, for containers of this run or of an earlier one.
pub async fn remove_by_name(name: &str, timeout: Duration) -> Result<(), InfraError> {
    let ran = docker(&["rm", "-f", name], timeout, "removing a container").await?;
    if ran.success() || ran.stderr.contains("No such container") {
        Ok(())
    } else {
        Err(InfraError::new(ran.failure()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_networks_of_one_name_are_told_apart_from_none() {
        let two = network_trouble(
            "kind",
            "Error response from daemon: network kind is ambiguous (2 matches found on name)\n",
        );
        assert!(
            two.contains("docker network rm") && two.contains("ambiguous"),
            "{two}"
        );
        let none = network_trouble(
            "kind",
            "Error response from daemon: network kind not found\n",
        );
        assert!(
            none.contains("not found") && !none.contains("network rm"),
            "{none}"
        );
        // The daemon's words are data.
        assert!(!network_trouble("kind", "\u{1b}[2J").contains('\u{1b}'));
    }
}
