//! The hermetic upstream's certificates, made in-process for each run: a CA, a server
//! certificate for the host the scenarios call (httpbin.org), and a client certificate
//! the egress gateway presents for MUTUAL origination. Nothing is reused across runs.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// The client certificate's subject and URI SAN: what the upstream must report seeing.
pub const CLIENT_COMMON_NAME: &str = "egress-conformance client";
pub const CLIENT_URI: &str = "spiffe://egress-conformance.test/egress-gateway";

/// PEM text of everything a run needs.
#[derive(Clone)]
pub struct Certs {
    pub ca_cert: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
    /// A CA that signed nothing of the run: what a fail-closed scenario trusts.
    pub foreign_ca_cert: String,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("Certs { .. private keys not shown .. }")
    }
}

fn named(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "egress-conformance");
    dn
}

fn err(e: rcgen::Error) -> String {
    format!("making certificates: {e}")
}

impl Certs {
    /// A fresh CA and the server (for `host`) and client certificates it signs.
    pub fn generate(host: &str) -> Result<Self, String> {
        Self::generate_for(&[host])
    }

    /// As [`Certs::generate`], the server certificate naming every one of `hosts`.
    pub fn generate_for(hosts: &[&str]) -> Result<Self, String> {
        let host = hosts.first().copied().unwrap_or("localhost");
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.distinguished_name = named("egress-conformance test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, &ca_key);

        let server_key = KeyPair::generate().map_err(err)?;
        let names: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let mut server = CertificateParams::new(names).map_err(err)?;
        server.distinguished_name = named(host);
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer).map_err(err)?;

        let client_key = KeyPair::generate().map_err(err)?;
        let mut client = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        client.distinguished_name = named(CLIENT_COMMON_NAME);
        client.subject_alt_names = vec![SanType::URI(CLIENT_URI.try_into().map_err(err)?)];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &issuer).map_err(err)?;

        let foreign_key = KeyPair::generate().map_err(err)?;
        let mut foreign = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        foreign.distinguished_name = named("egress-conformance foreign CA");
        foreign.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        foreign.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let foreign_ca = foreign.self_signed(&foreign_key).map_err(err)?;

        Ok(Self {
            foreign_ca_cert: foreign_ca.pem(),
            ca_cert: ca_cert.pem(),
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
            client_cert: client_cert.pem(),
            client_key: client_key.serialize_pem(),
        })
    }

    /// The files the echo server mounts, written with mode 0600 into `dir`.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, String> {
        self.write_where(dir, |_| true)
    }

    /// The certificates only, no private key: what a report folder may hold (CI
    /// uploads it).
    pub fn write_public(&self, dir: &Path) -> Result<Vec<PathBuf>, String> {
        self.write_where(dir, |name| !name.ends_with(".key"))
    }

    fn write_where(&self, dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut written = Vec::new();
        for (name, text) in self.files().into_iter().filter(|(n, _)| keep(n)) {
            let path = dir.join(name);
            write_private(&path, text.as_bytes())?;
            written.push(path);
        }
        Ok(written)
    }

    /// (file name, PEM) of everything, as the echo server's environment names them.
    pub fn files(&self) -> [(&'static str, &str); 5] {
        [
            ("ca.crt", &self.ca_cert),
            ("server.crt", &self.server_cert),
            ("server.key", &self.server_key),
            ("client.crt", &self.client_cert),
            ("client.key", &self.client_key),
        ]
    }
}

/// Creates `path` readable by its owner only, before any byte is written.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{
        ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
    };

    use super::*;

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn cert(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn key(pem: &str) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn roots(ca: &str) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(cert(ca)).unwrap();
        Arc::new(roots)
    }

    /// A real TLS server on loopback that requires a client certificate signed by `ca`.
    /// Returns the client certificate's subject it saw, or the handshake error.
    fn handshake(
        server: &Certs,
        client_cert: Option<(&str, &str)>,
        trust: &str,
        name: &str,
    ) -> Result<usize, String> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(roots(&server.ca_cert), provider())
                .build()
                .unwrap();
        let server_config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert(&server.server_cert)], key(&server.server_key))
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            let conn = ServerConnection::new(Arc::new(server_config)).unwrap();
            let mut tls = StreamOwned::new(conn, socket);
            let mut buf = [0u8; 5];
            let read = tls.read_exact(&mut buf).map_err(|e| e.to_string());
            let peers = tls.conn.peer_certificates().map_or(0, <[_]>::len);
            if read.is_ok() {
                let _ = tls.write_all(b"ok");
            }
            read.map(|()| peers)
        });
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(trust));
        let client_config = match client_cert {
            Some((c, k)) => builder
                .with_client_auth_cert(vec![cert(c)], key(k))
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let conn = ClientConnection::new(
            Arc::new(client_config),
            ServerName::try_from(name.to_owned()).unwrap(),
        )
        .unwrap();
        let mut tls = StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
        let client_side = tls.write_all(b"hello").and_then(|()| {
            let mut buf = [0u8; 2];
            tls.read_exact(&mut buf)
        });
        let server_side = accept.join().unwrap();
        client_side.map_err(|e| e.to_string())?;
        server_side
    }

    #[test]
    fn the_gateway_client_certificate_is_accepted_by_the_upstream() {
        let certs = Certs::generate("httpbin.org").unwrap();
        let peers = handshake(
            &certs,
            Some((&certs.client_cert, &certs.client_key)),
            &certs.ca_cert,
            "httpbin.org",
        )
        .unwrap();
        assert_eq!(peers, 1, "the server saw the client certificate");
    }

    #[test]
    fn a_client_certificate_from_another_ca_is_refused() {
        let certs = Certs::generate("httpbin.org").unwrap();
        let stranger = Certs::generate("httpbin.org").unwrap();
        let result = handshake(
            &certs,
            Some((&stranger.client_cert, &stranger.client_key)),
            &certs.ca_cert,
            "httpbin.org",
        );
        assert!(result.is_err(), "{result:?}");
        let result = handshake(&certs, None, &certs.ca_cert, "httpbin.org");
        assert!(result.is_err(), "no client certificate at all: {result:?}");
    }

    #[test]
    fn the_server_certificate_verifies_for_its_host_only_and_only_with_our_ca() {
        let certs = Certs::generate("httpbin.org").unwrap();
        let client = Some((certs.client_cert.as_str(), certs.client_key.as_str()));
        let wrong_name = handshake(&certs, client, &certs.ca_cert, "example.org").unwrap_err();
        assert!(
            wrong_name.to_lowercase().contains("name") || wrong_name.contains("NotValidForName"),
            "{wrong_name}"
        );
        let other = Certs::generate("httpbin.org").unwrap();
        assert!(
            handshake(&certs, client, &other.ca_cert, "httpbin.org").is_err(),
            "another CA must not verify it"
        );
    }

    #[test]
    fn the_client_certificate_names_what_the_upstream_should_see() {
        let certs = Certs::generate("httpbin.org").unwrap();
        let pem = x509_parser::pem::parse_x509_pem(certs.client_cert.as_bytes())
            .unwrap()
            .1;
        let x509 = pem.parse_x509().unwrap();
        assert!(x509.subject().to_string().contains(CLIENT_COMMON_NAME));
        let san = x509.subject_alternative_name().unwrap().unwrap();
        assert!(format!("{:?}", san.value).contains(CLIENT_URI));
    }

    #[cfg(unix)]
    #[test]
    fn files_are_written_for_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("egress-certs-{}", std::process::id()));
        let files = Certs::generate("httpbin.org").unwrap().write(&dir).unwrap();
        assert_eq!(files.len(), 5);
        for f in &files {
            assert_eq!(
                std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
                0o600,
                "{}",
                f.display()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
