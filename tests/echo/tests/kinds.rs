//! The upstream kinds beyond echo-basic, against the real binary and the real curl
//! a scenario's client runs: what a TCP echo, a TLS echo and a port that requires a
//! client certificate answer, and what they refuse.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};

const HOST: &str = "echo.test";

struct Server {
    child: Child,
    http: u16,
    tcp: u16,
    tls: u16,
    client_cert: u16,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn named(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A CA, a server certificate for [`HOST`] and a client pair, as PEM files in `dir`.
fn certificates(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: OpenSSL takes a certificate whose issuer is its subject for self-signed.
    ca.distinguished_name = named("echo test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, &ca_key);
    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec![HOST.to_owned()]).unwrap();
    server.distinguished_name = named(HOST);
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client.distinguished_name = named("echo test client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &issuer).unwrap();
    for (name, pem) in [
        ("ca.crt", ca_cert.pem()),
        ("server.crt", server_cert.pem()),
        ("server.key", server_key.serialize_pem()),
        ("client.crt", client_cert.pem()),
        ("client.key", client_key.serialize_pem()),
    ] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
}

fn start() -> Server {
    // One folder per server: the tests run at once.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("egress-echo-kinds-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    certificates(&dir);
    // Port 0 everywhere: the server binds free ports and names them. Ports picked here and
    // released before it binds could be taken meanwhile by a test running beside this one.
    let mut child = Command::new(env!("CARGO_BIN_EXE_egress-echo"))
        .env("HTTP_PORT", "0")
        .env("HTTPS_PORT", "0")
        .env("TCP_ECHO_PORTS", "0")
        .env("TLS_ECHO_PORTS", "0")
        .env("CLIENT_CERT_PORTS", "0")
        .env("TLS_SERVER_CERT", dir.join("server.crt"))
        .env("TLS_SERVER_PRIVKEY", dir.join("server.key"))
        .env("TLS_CLIENT_CACERTS", dir.join("ca.crt"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("the echo binary");
    // It prints `listening on port N (kind)` per listener, the plain HTTPS one last.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.ends_with("(https)")) {
        seen.push(lines.next().expect("the echo server exited").unwrap());
    }
    let port = |kind: &str| -> u16 {
        let line = seen
            .iter()
            .find(|l| l.ends_with(&format!("({kind})")))
            .unwrap_or_else(|| panic!("({kind}) in {seen:?}"));
        line.split(' ').nth(3).and_then(|p| p.parse().ok()).unwrap()
    };
    let (http, tcp, tls, client_cert) = (
        port("http"),
        port("tcp-echo"),
        port("tls-echo"),
        port("https-client-cert"),
    );
    Server {
        child,
        http,
        tcp,
        tls,
        client_cert,
        dir,
    }
}

/// curl's exit code and standard output.
fn curl(server: &Server, port: u16, args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--resolve"])
        .arg(format!("{HOST}:{port}:127.0.0.1"))
        .args(args)
        .current_dir(&server.dir)
        .output()
        .expect("curl is installed (.ci/run installs it)");
    let code = out.status.code().unwrap_or(-1);
    if code != 0 {
        eprintln!("curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_tcp_echo_answers_gopher_with_the_bytes_it_was_sent() {
    let s = start();
    let url = format!("gopher://{HOST}:{}/_select%20*%20from%20t%3B%0A", s.tcp);
    let (code, out) = curl(&s, s.tcp, &[&url]);
    assert_eq!(code, 0);
    assert_eq!(out, "select * from t;\n");
    // The HTTP port is still echo-basic's.
    let (code, out) = curl(&s, s.http, &[&format!("http://{HOST}:{}/x", s.http)]);
    assert_eq!(code, 0);
    assert!(out.contains("\"path\": \"/x\""), "{out}");
}

#[test]
fn the_tls_echo_answers_inside_tls_and_fails_a_client_that_distrusts_it() {
    let s = start();
    let url = format!("gophers://{HOST}:{}/_ping%0A", s.tls);
    let (code, out) = curl(&s, s.tls, &["--cacert", "ca.crt", &url]);
    // Up to the first newline: curl's "\r\n" after the selector is not echoed.
    assert_eq!((code, out.as_str()), (0, "ping\n"));
    // Without the CA curl refuses the certificate (60): it is TLS, not plaintext.
    let (code, _) = curl(&s, s.tls, &[&url]);
    assert_eq!(code, 60);
    // Plain TCP to the TLS port gets no echo.
    let (_, out) = curl(&s, s.tls, &[&format!("gopher://{HOST}:{}/_ping%0A", s.tls)]);
    assert!(!out.contains("ping"), "{out:?}");
}

#[test]
fn the_client_cert_port_answers_only_a_client_with_a_certificate() {
    let s = start();
    let url = format!("https://{HOST}:{}/headers", s.client_cert);
    let (code, out) = curl(
        &s,
        s.client_cert,
        &[
            "--cacert",
            "ca.crt",
            "--cert",
            "client.crt",
            "--key",
            "client.key",
            &url,
        ],
    );
    assert_eq!(code, 0, "{out}");
    let body: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["tls"]["serverName"], HOST);
    // OpenSSL sends the chain it can build: the leaf, and the CA it trusts.
    assert!(
        body["tls"]["peerCertificates"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    // Without one the handshake is refused: no HTTP answer at all.
    let (code, out) = curl(&s, s.client_cert, &["--cacert", "ca.crt", &url]);
    assert_ne!(code, 0);
    assert!(out.is_empty(), "{out}");
}
