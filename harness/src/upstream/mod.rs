//! The hermetic upstream: an echo server the harness owns, outside the cluster, on
//! kind's Docker network under the name the scenarios call (httpbin.org).
//!
//! The image is the Gateway API conformance suite's echo-basic
//! (kubernetes-sigs/gateway-api conformance/echo-basic/echo-basic.go): it echoes the
//! request headers as JSON and, on its HTTPS port, the TLS it saw (`tls.version`,
//! `tls.serverName` = SNI, `tls.peerCertificates` = the client certificate), verifying
//! a client certificate against `TLS_CLIENT_CACERTS` when one is presented. Why this
//! image and not Istio's echo app or go-httpbin is in the README.

pub mod certs;

use std::time::Duration;

use testcontainers::CopyTargetOptions;
use testcontainers::bollard::models::{EndpointSettings, NetworkConnectRequest};
use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

pub use certs::Certs;

/// `gcr.io/k8s-staging-gateway-api/echo-basic`, pinned.
pub const ECHO_IMAGE: &str = "gcr.io/k8s-staging-gateway-api/echo-basic";
pub const ECHO_TAG: &str = "v20260204-monthly-2026.01-60-g28382302";
/// The host name every scenario calls.
pub const UPSTREAM_HOST: &str = "httpbin.org";
/// kind's Docker network (fixed name in kind's pkg/cluster/internal/providers/docker/network.go).
pub const KIND_NETWORK: &str = "kind";
/// Where the certificates are inside the container.
const CERT_DIR: &str = "/etc/egress-upstream";
/// Label on every container the harness starts, for `egress prune`.
pub const LABEL: (&str, &str) = ("egress-conformance", "upstream");

/// Where the scenarios' upstream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamMode {
    /// The harness's echo server on the kind network, answering as httpbin.org.
    #[default]
    Local,
    /// The real httpbin.org, as the article ran it.
    Internet,
}

impl UpstreamMode {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "local" => Ok(Self::Local),
            "internet" => Ok(Self::Internet),
            other => Err(format!(
                "--upstream takes `local` or `internet`, not `{other}`"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Internet => "internet",
        }
    }
}

/// A file the container gets, from the certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub target: String,
    pub mode: u32,
    /// File name in [`Certs::files`].
    pub source: &'static str,
}

/// Everything about the container, as data: what `egress plan` prints and the unit
/// tests pin; [`start`] turns it into a testcontainers request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoServer {
    pub image: String,
    pub tag: String,
    pub container_name: String,
    pub network: String,
    pub aliases: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub ports: Vec<u16>,
    /// Root inside its own container: to bind 80 and 443 and read the 0600 keys
    /// (the image's default user is distroless `nonroot`).
    pub user: String,
}

/// The echo server of run `run_id`.
pub fn definition(run_id: &str) -> EchoServer {
    let path = |f: &str| format!("{CERT_DIR}/{f}");
    let env = [
        ("HTTP_PORT", "80".to_owned()),
        ("HTTPS_PORT", "443".to_owned()),
        ("TLS_SERVER_CERT", path("server.crt")),
        ("TLS_SERVER_PRIVKEY", path("server.key")),
        ("TLS_CLIENT_CACERTS", path("ca.crt")),
    ];
    let mounts = ["ca.crt", "server.crt", "server.key"]
        .into_iter()
        .map(|source| Mount {
            target: path(source),
            mode: 0o600,
            source,
        })
        .collect();
    EchoServer {
        image: ECHO_IMAGE.into(),
        tag: ECHO_TAG.into(),
        container_name: format!("{}upstream-{run_id}", crate::plan::CLUSTER_PREFIX),
        network: KIND_NETWORK.into(),
        aliases: vec![UPSTREAM_HOST.into()],
        env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        mounts,
        ports: vec![80, 443],
        user: "0".into(),
    }
}

impl std::fmt::Display for EchoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{}:{} as container {} on Docker network {} with alias {}, ports {}",
            self.image,
            self.tag,
            self.container_name,
            self.network,
            self.aliases.join(","),
            self.ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )
    }
}

/// A started echo server; removed by [`Running::stop`] or, failing that, when dropped
/// (testcontainers removes a container on drop).
pub struct Running {
    pub container: ContainerAsync<GenericImage>,
    pub definition: EchoServer,
}

/// Starts the echo server and puts it on the kind network under its aliases.
///
/// testcontainers has no network-alias API, so the container starts on Docker's
/// default bridge and is then connected to `kind` with `EndpointSettings.aliases`
/// through testcontainers' re-exported bollard client (Docker's
/// `POST /networks/{id}/connect`). Docker's embedded DNS answers aliases to every
/// container on that network; kind's nodes forward pod DNS there (kind's
/// images/base/files/usr/local/bin/entrypoint, enable_network_magic).
pub async fn start(definition: &EchoServer, certs: &Certs) -> Result<Running, String> {
    let files = certs.files();
    let mut request = GenericImage::new(&definition.image, &definition.tag)
        .with_wait_for(WaitFor::message_on_stdout("(https)"))
        .with_container_name(&definition.container_name)
        .with_label(LABEL.0, LABEL.1)
        .with_user(&definition.user)
        .with_startup_timeout(Duration::from_secs(120));
    for (k, v) in &definition.env {
        request = request.with_env_var(k, v);
    }
    for m in &definition.mounts {
        let bytes = files
            .iter()
            .find(|(name, _)| *name == m.source)
            .map(|(_, pem)| pem.as_bytes().to_vec())
            .ok_or_else(|| format!("no certificate file {}", m.source))?;
        request = request.with_copy_to(CopyTargetOptions::new(&m.target).with_mode(m.mode), bytes);
    }
    let container = request
        .start()
        .await
        .map_err(|e| format!("starting the upstream {definition}: {e}"))?;
    let docker = testcontainers::bollard::Docker::connect_with_defaults()
        .map_err(|e| format!("Docker client: {e}"))?;
    let connect = NetworkConnectRequest {
        container: container.id().to_owned(),
        endpoint_config: Some(EndpointSettings {
            aliases: Some(definition.aliases.clone()),
            ..EndpointSettings::default()
        }),
    };
    if let Err(e) = docker.connect_network(&definition.network, connect).await {
        let _ = container.rm().await;
        return Err(format!(
            "connecting the upstream to Docker network {} (is a kind cluster up?): {e}",
            definition.network
        ));
    }
    Ok(Running {
        container,
        definition: definition.clone(),
    })
}

impl Running {
    /// Removes the container (and with it its place on the kind network).
    pub async fn stop(self) -> Result<(), String> {
        let name = self.definition.container_name.clone();
        self.container
            .rm()
            .await
            .map_err(|e| format!("removing the upstream {name}: {e}"))
    }
}

/// The Kubernetes Secrets that hand the run's certificates to Istio:
/// `client-credential` (tls.crt, tls.key, ca.crt) for MUTUAL origination at the
/// gateway, and `upstream-ca` (ca.crt) for SIMPLE origination, which verifies the
/// server's certificate by default since Istio 1.21 and so must be told our CA.
pub fn secrets(certs: &Certs, namespace: &str) -> Vec<serde_json::Value> {
    let client = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "client-credential", "namespace": namespace,
                     "labels": {LABEL.0: LABEL.1}},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": certs.client_cert, "tls.key": certs.client_key, "ca.crt": certs.ca_cert},
    });
    let ca = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "upstream-ca", "namespace": namespace,
                     "labels": {LABEL.0: LABEL.1}},
        "type": "Opaque",
        "stringData": {"ca.crt": certs.ca_cert},
    });
    vec![client, ca]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_is_defined_for_the_kind_network_as_httpbin() {
        let d = definition("20261126T120000Z");
        assert_eq!((d.image.as_str(), d.tag.as_str()), (ECHO_IMAGE, ECHO_TAG));
        assert_eq!(d.container_name, "egc-upstream-20261126T120000Z");
        assert_eq!(d.network, "kind");
        assert_eq!(d.aliases, vec!["httpbin.org"]);
        assert_eq!(d.ports, vec![80, 443]);
        let env: std::collections::BTreeMap<&str, &str> = d
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(env["HTTP_PORT"], "80");
        assert_eq!(env["HTTPS_PORT"], "443");
        // Every path the server reads is a file the harness copies in.
        for var in [
            "TLS_SERVER_CERT",
            "TLS_SERVER_PRIVKEY",
            "TLS_CLIENT_CACERTS",
        ] {
            let m = d
                .mounts
                .iter()
                .find(|m| m.target == env[var])
                .unwrap_or_else(|| panic!("{var}"));
            assert_eq!(m.mode, 0o600);
        }
        assert!(
            !d.mounts.iter().any(|m| m.source.starts_with("client")),
            "the client key stays with Istio"
        );
    }

    #[test]
    fn secrets_carry_the_client_pair_and_the_ca() {
        let certs = Certs::generate(UPSTREAM_HOST).unwrap();
        let s = secrets(&certs, "istio-system");
        assert_eq!(s[0]["metadata"]["name"], "client-credential");
        assert_eq!(s[0]["stringData"]["tls.crt"], certs.client_cert.as_str());
        assert_eq!(s[0]["stringData"]["ca.crt"], certs.ca_cert.as_str());
        assert_eq!(s[1]["metadata"]["name"], "upstream-ca");
        assert!(s[1]["stringData"].get("tls.key").is_none());
    }

    #[tokio::test]
    async fn without_docker_starting_fails_with_a_clear_error() {
        if crate::prereq::check_docker(&crate::prereq::DockerEndpoint::from_env()).is_ok() {
            return; // a real daemon: nothing to show here
        }
        let certs = Certs::generate(UPSTREAM_HOST).unwrap();
        let Err(e) = start(&definition("test"), &certs).await else {
            panic!("started without Docker");
        };
        assert!(e.contains("starting the upstream"), "{e}");
    }
}
