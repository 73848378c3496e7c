//! The project's echo program: the upstream of the Docker tests here, and the live
//! upstream of runs whose scenarios declare ports of kinds echo-basic lacks (built
//! statically and imported into an image with nothing else: harness/src/upstream/image.rs).
//!
//! `egress-echo` serves like echo-basic (kubernetes-sigs/gateway-api
//! conformance/echo-basic/echo-basic.go): HTTP on `HTTP_PORT`, HTTPS on `HTTPS_PORT`
//! with `TLS_SERVER_CERT`/`TLS_SERVER_PRIVKEY`, client certificates verified against
//! `TLS_CLIENT_CACERTS` when presented; every answer is the request as JSON
//! (`path`, `host`, `method`, `proto`, `headers` as lists, `tls`), and it prints
//! `(https)` once it listens, as echo-basic does. Each listener prints
//! `listening on port N (kind)` with the port it bound, so port 0 takes any free one.
//!
//! Beyond echo-basic, the upstream kinds a scenario may declare (`upstream.ports`):
//! `TCP_ECHO_PORTS` and `TLS_ECHO_PORTS` (comma-separated lists) answer each connection with
//! the bytes it sent up to the first newline (or 64 KiB), then close, in plain TCP or
//! inside TLS with the server certificate; `CLIENT_CERT_PORTS` serve HTTPS like
//! `HTTPS_PORT` but refuse a handshake without a client certificate signed by
//! `TLS_CLIENT_CACERTS`. curl reaches the echo ports as `gopher://host:port/_bytes`
//! (`gophers://` for TLS): gopher sends the selector as it is and prints the answer.
//!
//! `egress-echo get URL [CA] [CERT KEY]` is the client a second container runs: it
//! resolves the host through the container's DNS (Docker's embedded resolver), sends
//! one GET and prints the body; exit 1 on any failure. `egress-echo send
//! tcp://HOST:PORT TEXT` (`tls://…` with a CA) sends TEXT and a newline over plain
//! TCP or TLS and prints what came back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("get") => get(&args[2..]),
        Some("send") => send(&args[2..]),
        _ => serve(),
    };
    if let Err(e) = result {
        eprintln!("egress-echo: {e}");
        std::process::exit(1);
    }
}

type Result<T> = std::result::Result<T, String>;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| format!("{path}: {e}"))
}

fn key(path: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{path}: {e}"))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn serve() -> Result<()> {
    let http_port = env("HTTP_PORT").unwrap_or_else(|| "80".into());
    let https_port = env("HTTPS_PORT").unwrap_or_else(|| "443".into());
    let http = bind(http_port.parse().map_err(|_| "HTTP_PORT")?, "http")?;
    std::thread::spawn(move || {
        for stream in http.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = answer(stream, None);
            });
        }
    });
    for port in ports("TCP_ECHO_PORTS")? {
        let listener = bind(port, "tcp-echo")?;
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let _ = echo_once(&mut stream);
                    close_gracefully(&stream);
                });
            }
        });
    }
    let (Some(cert), Some(key_file)) = (env("TLS_SERVER_CERT"), env("TLS_SERVER_PRIVKEY")) else {
        let _ = std::io::stdout().flush();
        loop {
            std::thread::park();
        }
    };
    let optional = tls_config(&cert, &key_file, ClientCert::Optional)?;
    for port in ports("TLS_ECHO_PORTS")? {
        let listener = bind(port, "tls-echo")?;
        let config = Arc::clone(&optional);
        std::thread::spawn(move || {
            serve_tls(listener, config, |mut tls, _| {
                let _ = echo_once(&mut tls);
                // curl reads an end without close_notify as an error.
                tls.conn.send_close_notify();
                let _ = tls.conn.complete_io(&mut tls.sock);
                close_gracefully(&tls.sock);
            })
        });
    }
    let required = tls_config(&cert, &key_file, ClientCert::Required)?;
    for port in ports("CLIENT_CERT_PORTS")? {
        let listener = bind(port, "https-client-cert")?;
        let required = Arc::clone(&required);
        std::thread::spawn(move || {
            serve_tls(listener, required, |tls, info| {
                let _ = answer(tls, Some(info));
            })
        });
    }
    let https = bind(https_port.parse().map_err(|_| "HTTPS_PORT")?, "https")?;
    let _ = std::io::stdout().flush();
    serve_tls(https, optional, |tls, info| {
        let _ = answer(tls, Some(info));
    });
    Ok(())
}

/// A comma-separated list of ports from `name`, empty when unset.
fn ports(name: &str) -> Result<Vec<u16>> {
    env(name)
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim()
                .parse()
                .map_err(|_| format!("{name}: {p:?} is not a port"))
        })
        .collect()
}

fn bind(port: u16, what: &str) -> Result<TcpListener> {
    let listener =
        TcpListener::bind(("0.0.0.0", port)).map_err(|e| format!("{what} port {port}: {e}"))?;
    // The port bound, so that port 0 (any free one) tells its caller which.
    let bound = listener.local_addr().map_or(port, |a| a.port());
    println!("listening on port {bound} ({what})");
    Ok(listener)
}

#[derive(Clone, Copy, PartialEq)]
enum ClientCert {
    /// Verified against `TLS_CLIENT_CACERTS` when presented, as echo-basic does.
    Optional,
    /// A handshake without one signed by `TLS_CLIENT_CACERTS` is refused.
    Required,
}

fn tls_config(cert: &str, key_file: &str, client: ClientCert) -> Result<Arc<rustls::ServerConfig>> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match (env("TLS_CLIENT_CACERTS"), client) {
        (Some(ca), _) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(&ca)? {
                roots.add(c).map_err(|e| e.to_string())?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            );
            let verifier = if client == ClientCert::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
        (None, ClientCert::Optional) => builder.with_no_client_auth(),
        (None, ClientCert::Required) => {
            return Err(
                "a client certificate is required: TLS_CLIENT_CACERTS must name its CA".into(),
            );
        }
    };
    Ok(Arc::new(
        builder
            .with_single_cert(certs(cert)?, key(key_file)?)
            .map_err(|e| e.to_string())?,
    ))
}

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// Accepts TLS connections and hands each, once its handshake is done, to `then`
/// with what the handshake showed (echo-basic's `tls` object).
fn serve_tls(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    then: fn(Tls, serde_json::Value),
) {
    for stream in listener.incoming().flatten() {
        let config = Arc::clone(&config);
        std::thread::spawn(move || {
            let Ok(conn) = rustls::ServerConnection::new(config) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            while tls.conn.is_handshaking() {
                if tls.conn.complete_io(&mut tls.sock).is_err() {
                    return;
                }
            }
            let info = serde_json::json!({
                "version": match tls.conn.protocol_version() {
                    Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
                    Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
                    _ => "",
                },
                "serverName": tls.conn.server_name().unwrap_or_default(),
                "peerCertificates": tls.conn.peer_certificates().unwrap_or_default().iter().map(pem).collect::<Vec<_>>(),
            });
            then(tls, info);
        });
    }
}

/// Reads up to the first newline (or 64 KiB, or the end) and writes that back, then closes:
/// one exchange per connection, so a client that never half-closes (curl's gopher)
/// still gets its answer and an end.
fn echo_once<S: Read + Write>(mut stream: S) -> Result<()> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while received.len() < 64 * 1024 && !received.contains(&b'\n') {
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
    }
    // Exactly up to the first newline, however the bytes were split in arriving.
    if let Some(end) = received.iter().position(|b| *b == b'\n') {
        received.truncate(end + 1);
    }
    stream.write_all(&received).map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())
}

/// Ends a connection with a FIN, not a reset: closing a socket that still holds unread
/// bytes (curl's gopher sends "\r\n" after the selector, often in a second segment) makes
/// the kernel send RST, and the client may lose the answer to "Connection reset by peer".
/// So half-close, then read what the client still sends until it closes (or 2 s pass).
fn close_gracefully(stream: &TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let mut sink = [0u8; 4096];
    let mut reader = stream;
    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
}

fn pem(der: &CertificateDer<'_>) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// Reads one request and answers it with the request as JSON.
fn answer<S: Read + Write>(stream: S, tls: Option<serde_json::Value>) -> Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let mut parts = line.split_whitespace();
    let (method, path, proto) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let mut headers = serde_json::Map::new();
    let mut host = String::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).map_err(|e| e.to_string())? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("host") {
                host = v.to_owned();
            }
            let entry = headers
                .entry(canonical(k))
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if let Some(list) = entry.as_array_mut() {
                list.push(serde_json::Value::String(v.to_owned()));
            }
        }
    }
    let body = serde_json::to_string_pretty(&serde_json::json!({
        "path": path, "host": host, "method": method, "proto": proto,
        "headers": headers, "namespace": "", "ingress": "", "service": "",
        "pod": "egress-echo", "tls": tls,
    }))
    .map_err(|e| e.to_string())?;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let stream = reader.get_mut();
    stream
        .write_all(response.as_bytes())
        .map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())
}

/// `x-request-id` → `X-Request-Id`, as Go's net/http prints header names.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// `get URL [CA] [CERT KEY]`.
fn get(args: &[String]) -> Result<()> {
    let url = args.first().ok_or("get URL [CA] [CERT KEY]")?;
    let (scheme, rest) = url.split_once("://").ok_or("the URL needs a scheme")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse::<u16>().map_err(|e| e.to_string())?),
        None => (
            authority.to_owned(),
            if scheme == "https" { 443 } else { 80 },
        ),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: egress-echo\r\nConnection: close\r\n\r\n"
    );
    let tls = match scheme {
        "https" => Some(ClientTls {
            ca: args.get(1).ok_or("https needs a CA file")?,
            client: args.get(2).zip(args.get(3)),
        }),
        _ => None,
    };
    let response = exchange(&host, port, tls, request.as_bytes())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "answered {}",
            head.lines().next().unwrap_or_default()
        ));
    }
    println!("{body}");
    Ok(())
}

/// `send tcp://HOST:PORT TEXT` or `send tls://HOST:PORT TEXT CA`.
fn send(args: &[String]) -> Result<()> {
    let (Some(url), Some(text)) = (args.first(), args.get(1)) else {
        return Err("send tcp://HOST:PORT TEXT | send tls://HOST:PORT TEXT CA".into());
    };
    let (scheme, authority) = url.split_once("://").ok_or("the URL needs a scheme")?;
    let (host, port) = authority.split_once(':').ok_or("the URL needs a port")?;
    let port: u16 = port.parse().map_err(|_| format!("{port} is not a port"))?;
    let tls = match scheme {
        "tls" => Some(ClientTls {
            ca: args.get(2).ok_or("tls needs a CA file")?,
            client: None,
        }),
        _ => None,
    };
    let answer = exchange(host, port, tls, format!("{text}\n").as_bytes())?;
    print!("{}", String::from_utf8_lossy(&answer));
    Ok(())
}

/// The client side of a TLS connection: the CA to trust, a certificate and key to show.
struct ClientTls<'a> {
    ca: &'a String,
    client: Option<(&'a String, &'a String)>,
}

/// Connects to `host:port` (in TLS when asked), sends `bytes` and reads to the end.
fn exchange(host: &str, port: u16, tls: Option<ClientTls<'_>>, bytes: &[u8]) -> Result<Vec<u8>> {
    let ip = resolve(host)?;
    let mut stream = TcpStream::connect((ip.as_str(), port))
        .map_err(|e| format!("connect {host} ({ip}):{port}: {e}"))?;
    let mut answer = Vec::new();
    let Some(tls) = tls else {
        stream.write_all(bytes).map_err(|e| e.to_string())?;
        stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
        return Ok(answer);
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(tls.ca)? {
        roots.add(c).map_err(|e| e.to_string())?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match tls.client {
        Some((c, k)) => builder
            .with_client_auth_cert(certs(c)?, key(k)?)
            .map_err(|e| e.to_string())?,
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    tls.write_all(bytes).map_err(|e| format!("TLS: {e}"))?;
    // An HTTPS server may close without close_notify after its answer; what came counts.
    let read = tls.read_to_end(&mut answer);
    if answer.is_empty() {
        read.map_err(|e| format!("TLS: {e}"))?;
    }
    Ok(answer)
}

/// An A record from the first nameserver in /etc/resolv.conf (a static binary has no
/// NSS to resolve with; Docker writes its embedded resolver there).
fn resolve(host: &str) -> Result<String> {
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(host.to_owned());
    }
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let Some(server) = conf
        .lines()
        .find_map(|l| l.strip_prefix("nameserver "))
        .map(str::trim)
    else {
        return (host, 0)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map(|a| a.ip().to_string())
            .ok_or_else(|| format!("cannot resolve {host}"));
    };
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in host.split('.') {
        query.push(u8::try_from(label.len()).map_err(|e| e.to_string())?);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    socket
        .send_to(&query, (server, 53))
        .map_err(|e| format!("DNS {server}: {e}"))?;
    let mut buf = [0u8; 512];
    let n = socket
        .recv(&mut buf)
        .map_err(|e| format!("DNS {server}: {e}"))?;
    let answer = &buf[..n];
    let answers = u16::from_be_bytes([answer[6], answer[7]]);
    let mut at = query.len();
    for _ in 0..answers {
        // A compressed name (0xC0xx) or labels, then type, class, ttl, length.
        if answer.get(at).is_some_and(|b| b & 0xC0 == 0xC0) {
            at += 2;
        } else {
            while answer.get(at).is_some_and(|b| *b != 0) {
                at += usize::from(answer[at]) + 1;
            }
            at += 1;
        }
        let kind = u16::from_be_bytes([answer[at], answer[at + 1]]);
        let len = usize::from(u16::from_be_bytes([answer[at + 8], answer[at + 9]]));
        at += 10;
        if kind == 1 && len == 4 {
            return Ok(format!(
                "{}.{}.{}.{}",
                answer[at],
                answer[at + 1],
                answer[at + 2],
                answer[at + 3]
            ));
        }
        at += len;
    }
    Err(format!("{host}: no A record from {server}"))
}
