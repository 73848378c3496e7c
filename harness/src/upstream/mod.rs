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
pub mod image;

use serde::Serialize;

pub use crate::model::UpstreamMode;
pub use crate::scenario::UpstreamKind;
pub use certs::Certs;

/// `registry.k8s.io/gateway-api/conformance/echo-basic`, pinned.
pub const ECHO_IMAGE: &str = "registry.k8s.io/gateway-api/conformance/echo-basic";
/// A release of kubernetes-sigs/gateway-api-conformance-images on the production
/// registry (staging images are deleted after 90 days, kubernetes/k8s.io#6905). Its
/// digest could not be read where this was written: pin it with --upstream-image
/// NAME@sha256:… for a run that must not follow a re-pushed tag.
pub const ECHO_TAG: &str = "v0.1.0";
/// The host name every scenario calls.
pub const UPSTREAM_HOST: &str = "httpbin.org";
/// The names the echo server always answers as; a scenario adds its own with
/// `upstream: {hosts: [...]}` (scenarios/README.md, "Hosts").
pub const HOSTS: &[&str] = &[UPSTREAM_HOST];

/// Every name the echo server answers as for a run of `scenarios`: its network
/// aliases and its certificate's names, in a stable order.
pub fn hosts_for<'a>(
    scenarios: impl IntoIterator<Item = &'a crate::scenario::Scenario>,
) -> Vec<String> {
    let mut hosts: Vec<String> = HOSTS.iter().map(|h| (*h).to_owned()).collect();
    for s in scenarios {
        for h in &s.upstream.hosts {
            if !hosts.contains(&h.value) {
                hosts.push(h.value.clone());
            }
        }
    }
    hosts
}
/// The ports beyond 80 and 443 the upstream serves for a run of `scenarios`, each
/// with its kind, in port order; two scenarios that want one port served two ways
/// cannot share a run.
pub fn ports_for<'a>(
    scenarios: impl IntoIterator<Item = &'a crate::scenario::Scenario>,
) -> Result<Vec<(u16, UpstreamKind)>, String> {
    let mut ports: std::collections::BTreeMap<u16, (UpstreamKind, &str)> = Default::default();
    for s in scenarios {
        for p in &s.upstream.ports {
            let Ok(port) = u16::try_from(p.port.value) else {
                return Err(format!(
                    "{}: upstream port {} is not a TCP port",
                    s.name(),
                    p.port.value
                ));
            };
            let kind = p.kind.value;
            match ports.get(&port) {
                Some((other, by)) if *other != kind => {
                    return Err(format!(
                        "scenarios {by} and {} both declare upstream port {port}, as {} and {}: run them apart (--scenario)",
                        s.name(),
                        other.name(),
                        kind.name()
                    ));
                }
                Some(_) => {}
                None => {
                    ports.insert(port, (kind, s.name()));
                }
            }
        }
    }
    Ok(ports.into_iter().map(|(p, (k, _))| (p, k)).collect())
}

/// kind's Docker network (fixed name in kind's pkg/cluster/internal/providers/docker/network.go).
pub const KIND_NETWORK: &str = "kind";
/// Where the certificates are inside the container.
const CERT_DIR: &str = "/etc/egress-upstream";
/// Label on every container the harness starts, for `egress prune`.
pub const LABEL: (&str, &str) = ("egress-conformance", "upstream");

/// A file the container gets, from the certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub target: String,
    pub mode: u32,
    /// File name in [`Certs::files`].
    pub source: &'static str,
}

/// Everything about the container, as data: what `egress plan` prints and the unit
/// tests pin; `live::docker` turns it into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// The echo server of run `run_id`, from `image` (`name:tag` or `name@sha256:…`)
/// or the pinned echo-basic, answering as `hosts`, serving `ports` too (which only
/// the project's echo program does: see [`image`]).
pub fn definition(
    run_id: &str,
    image: Option<&str>,
    hosts: &[String],
    ports: &[(u16, UpstreamKind)],
) -> EchoServer {
    let path = |f: &str| format!("{CERT_DIR}/{f}");
    let mut env = vec![
        ("HTTP_PORT", "80".to_owned()),
        ("HTTPS_PORT", "443".to_owned()),
        ("TLS_SERVER_CERT", path("server.crt")),
        ("TLS_SERVER_PRIVKEY", path("server.key")),
        ("TLS_CLIENT_CACERTS", path("ca.crt")),
    ];
    for (var, kind) in [
        ("TCP_ECHO_PORTS", UpstreamKind::TcpEcho),
        ("TLS_ECHO_PORTS", UpstreamKind::TlsEcho),
        ("CLIENT_CERT_PORTS", UpstreamKind::HttpsClientCert),
    ] {
        let list: Vec<String> = ports
            .iter()
            .filter(|(_, k)| *k == kind)
            .map(|(p, _)| p.to_string())
            .collect();
        if !list.is_empty() {
            env.push((var, list.join(",")));
        }
    }
    let mounts = ["ca.crt", "server.crt", "server.key"]
        .into_iter()
        .map(|source| Mount {
            target: path(source),
            mode: 0o600,
            source,
        })
        .collect();
    let (image, tag) = match image.and_then(|i| i.rsplit_once('@').or_else(|| i.rsplit_once(':'))) {
        Some((name, tag)) => (name.to_owned(), tag.to_owned()),
        None => (ECHO_IMAGE.to_owned(), ECHO_TAG.to_owned()),
    };
    EchoServer {
        image,
        tag,
        container_name: format!("{}upstream-{run_id}", crate::model::CLUSTER_PREFIX),
        network: KIND_NETWORK.into(),
        aliases: hosts.to_vec(),
        env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        mounts,
        ports: [80, 443]
            .into_iter()
            .chain(ports.iter().map(|(p, _)| *p))
            .collect(),
        user: "0".into(),
    }
}

impl EchoServer {
    /// `image:tag`, or `image@sha256:…` when the tag is a digest.
    pub fn image_ref(&self) -> String {
        if self.tag.starts_with("sha256:") {
            format!("{}@{}", self.image, self.tag)
        } else {
            format!("{}:{}", self.image, self.tag)
        }
    }
}

impl std::fmt::Display for EchoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{} as container {} on Docker network {} with alias {}, ports {}",
            self.image_ref(),
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

/// The Secret with the client pair and CA (tls.crt, tls.key, ca.crt), for MUTUAL
/// origination at the gateway. Prefixed: in a user's cluster istio-system may hold a
/// `client-credential` of its own.
pub const CLIENT_SECRET: &str = "egress-conformance-client";
/// The Secret with the CA (ca.crt), for SIMPLE origination, which verifies the
/// server's certificate by default since Istio 1.21 and so must be told our CA.
pub const CA_SECRET: &str = "egress-conformance-upstream-ca";

/// A Secret with a CA that signed nothing of the run (ca.crt): origination that
/// trusts it must fail closed.
pub const FOREIGN_CA_SECRET: &str = "egress-conformance-foreign-ca";

/// The Kubernetes Secrets that hand the run's certificates to Istio:
/// [`CLIENT_SECRET`], [`CA_SECRET`] and [`FOREIGN_CA_SECRET`].
pub fn secrets(certs: &Certs, namespace: &str) -> Vec<serde_json::Value> {
    let secret = |name: &str, kind: &str, data: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": {LABEL.0: LABEL.1}},
            "type": kind,
            "stringData": data,
        })
    };
    vec![
        secret(
            CLIENT_SECRET,
            "kubernetes.io/tls",
            serde_json::json!({"tls.crt": certs.client_cert, "tls.key": certs.client_key, "ca.crt": certs.ca_cert}),
        ),
        secret(
            CA_SECRET,
            "Opaque",
            serde_json::json!({"ca.crt": certs.ca_cert}),
        ),
        secret(
            FOREIGN_CA_SECRET,
            "Opaque",
            serde_json::json!({"ca.crt": certs.foreign_ca_cert}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_is_defined_for_the_kind_network_as_httpbin() {
        let d = definition("20261126T120000Z", None, &hosts_for([]), &[]);
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
        assert_eq!(s[0]["metadata"]["name"], CLIENT_SECRET);
        assert_eq!(s[0]["stringData"]["tls.crt"], certs.client_cert.as_str());
        assert_eq!(s[0]["stringData"]["ca.crt"], certs.ca_cert.as_str());
        assert_eq!(s[1]["metadata"]["name"], CA_SECRET);
        assert!(s[1]["stringData"].get("tls.key").is_none());
    }
}
