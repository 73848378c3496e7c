//! The upstream container path against the real Docker engine of this machine (no
//! registry: the echo image is the project's echo program, built and imported as a run builds it).
//! Needs a Docker daemon; without one the tests say they are skipped, unless
//! `EGRESS_REQUIRE_DOCKER=1` (CI).

mod support;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use egress_harness::live::docker::DockerEngine;
use egress_harness::seams::DockerApi;
use egress_harness::upstream::{self, Certs, EchoServer};

fn docker_here() -> bool {
    let up = Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !up {
        assert!(
            std::env::var("EGRESS_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "no Docker daemon"
        );
        eprintln!("skipped: no Docker daemon");
    }
    up
}

fn image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        egress_harness::upstream::image::project_echo(
            &egress_harness::upstream::image::source_root(),
        )
        .and_then(|echo| echo.build_blocking())
        .expect("the project's echo image")
    })
}

fn docker(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The tests' own network, never kind's: made for the test and removed after it, so
/// no kind cluster on this engine and no other checkout shares it.
struct Network;

static NETWORK: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("egc-test-net-{}", std::process::id()));

impl Network {
    fn ensure() -> Self {
        let (exists, _, _) = docker(&["network", "inspect", &NETWORK]);
        if !exists {
            let (made, _, err) = docker(&["network", "create", &NETWORK]);
            assert!(made, "docker network create {}: {err}", *NETWORK);
        }
        Network
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let (removed, _, err) = docker(&["network", "rm", &NETWORK]);
        if !removed {
            eprintln!("docker network rm {}: {err}", *NETWORK);
        }
    }
}

/// The upstream the run plans, on the tests' network.
fn on_test_network(mut server: EchoServer) -> EchoServer {
    server.network = NETWORK.clone();
    server
}

fn server(run_id: &str) -> EchoServer {
    on_test_network(upstream::definition(
        run_id,
        Some(image()),
        &upstream::hosts_for([]),
        &[],
    ))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn exists(name: &str) -> bool {
    let (_, out, _) = docker(&["ps", "-a", "--format", "{{.Names}}"]);
    out.lines().any(|l| l == name)
}

/// GET from a second container on the network, the way a pod reaches the alias.
fn get_from_peer(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    from_peer(dir, "get", args)
}

/// The echo program's client `command` (get, send) in a second container on the
/// network, with `dir` as /certs.
fn from_peer(dir: &std::path::Path, command: &str, args: &[&str]) -> (bool, String, String) {
    let mount = format!("{}:/certs:ro", dir.display());
    let mut argv = vec![
        "run",
        "--rm",
        "--network",
        &NETWORK,
        "-v",
        &mount,
        image(),
        command,
    ];
    argv.extend_from_slice(args);
    docker(&argv)
}

fn u2_an_unnegotiated_api_1_53_client_is_refused_by_older_engines_and_the_cli_negotiates() {
    if !docker_here() {
        return;
    }
    let socket = egress_harness::prereq::DockerEndpoint::from_env();
    let egress_harness::prereq::DockerEndpoint::Unix(path) = socket else {
        eprintln!("skipped: a TCP Docker endpoint");
        return;
    };
    let ask = |path_and_query: &str| {
        let mut s = std::os::unix::net::UnixStream::connect(&path).expect("socket");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(s, "GET {path_and_query} HTTP/1.0\r\nHost: docker\r\n\r\n").expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    };
    let version = ask("/version");
    let body = version.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(body).expect("version JSON");
    let api = json["ApiVersion"].as_str().expect("ApiVersion").to_owned();
    let minor: u32 = api
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .expect("1.NN");
    // What testcontainers 0.28 / bollard 0.21 send, unnegotiated.
    let answer = ask("/v1.53/version");
    if minor < 53 {
        assert!(
            answer.starts_with("HTTP/1.0 400") || answer.starts_with("HTTP/1.1 400"),
            "{answer}"
        );
        assert!(answer.contains("too new"), "{answer}");
        eprintln!("this engine speaks API {api}: testcontainers 0.28 cannot drive it");
    }
    // The docker CLI the harness now uses negotiates down to the engine's version.
    let (ok, out, err) = docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), api);
}

fn the_upstream_answers_as_httpbin_on_the_kind_network_over_http_tls_and_mtls() {
    if !docker_here() {
        return;
    }
    let _turn = support::docker_lock::docker_lock();
    let _net = Network::ensure();
    let s = server(&format!("t-serve-{}", std::process::id()));
    let certs = Certs::generate(upstream::UPSTREAM_HOST).expect("certs");
    let dir = std::env::temp_dir().join(format!("egress-docker-certs-{}", std::process::id()));
    certs.write(&dir).expect("certs written");
    let engine = DockerEngine;
    let rt = runtime();
    rt.block_on(engine.start_upstream(&s, &certs, Duration::from_secs(60)))
        .expect("the upstream starts");
    let checks = std::panic::catch_unwind(|| {
        let (ok, body, err) = get_from_peer(&dir, &["http://httpbin.org/headers"]);
        assert!(ok, "HTTP: {err}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["headers"]["Host"][0], "httpbin.org");
        assert!(json["tls"].is_null(), "no TLS on 80");

        let (ok, body, err) =
            get_from_peer(&dir, &["https://httpbin.org/headers", "/certs/ca.crt"]);
        assert!(ok, "TLS: {err}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["tls"]["serverName"], "httpbin.org");
        assert_eq!(
            json["tls"]["peerCertificates"].as_array().map(Vec::len),
            Some(0)
        );

        let (ok, body, err) = get_from_peer(
            &dir,
            &[
                "https://httpbin.org/headers",
                "/certs/ca.crt",
                "/certs/client.crt",
                "/certs/client.key",
            ],
        );
        assert!(ok, "mTLS: {err}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let pem = json["tls"]["peerCertificates"][0]
            .as_str()
            .expect("the client certificate");
        let info = egress_harness::evidence::xfcc::cert_info(pem).expect("readable");
        assert!(
            info.subject.contains("egress-conformance client"),
            "{}",
            info.subject
        );

        // A certificate from another CA is refused in the handshake.
        let other = Certs::generate("stranger.test").expect("certs");
        let odir = std::env::temp_dir().join(format!("egress-docker-other-{}", std::process::id()));
        other.write(&odir).expect("written");
        std::fs::copy(dir.join("ca.crt"), odir.join("ca.crt")).expect("our CA");
        let (ok, _, _) = get_from_peer(
            &odir,
            &[
                "https://httpbin.org/headers",
                "/certs/ca.crt",
                "/certs/client.crt",
                "/certs/client.key",
            ],
        );
        assert!(!ok, "a foreign client certificate must be refused");
    });
    rt.block_on(engine.remove_container(&s.container_name, Duration::from_secs(60)))
        .expect("removed");
    assert!(!exists(&s.container_name), "the container is gone");
    if let Err(e) = checks {
        std::panic::resume_unwind(e);
    }
}

fn declared_ports_serve_a_tcp_echo_a_tls_echo_and_https_only_with_a_client_certificate() {
    if !docker_here() {
        return;
    }
    let _turn = support::docker_lock::docker_lock();
    let _net = Network::ensure();
    let ports = [
        (9000, upstream::UpstreamKind::TcpEcho),
        (9443, upstream::UpstreamKind::TlsEcho),
        (8443, upstream::UpstreamKind::HttpsClientCert),
    ];
    // The definition a run plans, as the live engine starts it.
    let s = on_test_network(upstream::definition(
        &format!("t-ports-{}", std::process::id()),
        Some(image()),
        &upstream::hosts_for([]),
        &ports,
    ));
    let certs = Certs::generate(upstream::UPSTREAM_HOST).expect("certs");
    let dir = std::env::temp_dir().join(format!("egress-docker-ports-{}", std::process::id()));
    certs.write(&dir).expect("certs written");
    let rt = runtime();
    rt.block_on(DockerEngine.start_upstream(&s, &certs, Duration::from_secs(60)))
        .expect("the upstream starts");
    let checks = std::panic::catch_unwind(|| {
        let send = |args: &[&str]| from_peer(&dir, "send", args);
        let (ok, out, err) = send(&["tcp://httpbin.org:9000", "select 1"]);
        assert!(ok, "TCP echo: {err}");
        assert_eq!(out, "select 1\n");
        let (ok, out, err) = send(&["tls://httpbin.org:9443", "ping", "/certs/ca.crt"]);
        assert!(ok, "TLS echo: {err}");
        assert_eq!(out, "ping\n");
        // 9443 is TLS: plain TCP gets no echo.
        let (_, out, _) = send(&["tcp://httpbin.org:9443", "ping"]);
        assert!(!out.contains("ping"), "{out:?}");
        let (ok, _, _) =
            get_from_peer(&dir, &["https://httpbin.org:8443/headers", "/certs/ca.crt"]);
        assert!(!ok, "8443 must refuse a client without a certificate");
        let (ok, body, err) = get_from_peer(
            &dir,
            &[
                "https://httpbin.org:8443/headers",
                "/certs/ca.crt",
                "/certs/client.crt",
                "/certs/client.key",
            ],
        );
        assert!(ok, "8443 with the client certificate: {err}");
        assert!(body.contains("peerCertificates"), "{body}");
    });
    rt.block_on(DockerEngine.remove_container(&s.container_name, Duration::from_secs(60)))
        .expect("removed");
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = checks {
        std::panic::resume_unwind(e);
    }
}

fn a_leftover_holding_the_alias_is_refused_not_shared() {
    if !docker_here() {
        return;
    }
    let _turn = support::docker_lock::docker_lock();
    let _net = Network::ensure();
    let squatter = format!("egc-test-squatter-{}", std::process::id());
    let (ok, _, err) = docker(&[
        "run",
        "-d",
        "--name",
        &squatter,
        "--network",
        &NETWORK,
        "--network-alias",
        "httpbin.org",
        "-e",
        "HTTP_PORT=8080",
        image(),
    ]);
    assert!(ok, "{err}");
    let s = server(&format!("t-alias-{}", std::process::id()));
    let certs = Certs::generate(upstream::UPSTREAM_HOST).expect("certs");
    let result =
        runtime().block_on(DockerEngine.start_upstream(&s, &certs, Duration::from_secs(30)));
    let _ = docker(&["rm", "-f", &squatter]);
    let e = result.expect_err("refused");
    assert!(
        e.message.contains(&squatter) && e.message.contains("already answers as httpbin.org"),
        "{e}"
    );
    assert!(!exists(&s.container_name), "nothing was created");
}

fn prune_removes_an_upstream_a_killed_run_left_and_keeps_a_live_runs() {
    if !docker_here() {
        return;
    }
    let _turn = support::docker_lock::docker_lock();
    let _net = Network::ensure();
    use egress_harness::live::prune::{PID_LABEL, Verdict, prune_upstreams};
    // This process's upstream: its run is alive.
    let s = server(&format!("t-prune-{}", std::process::id()));
    let certs = Certs::generate(upstream::UPSTREAM_HOST).expect("certs");
    let rt = runtime();
    rt.block_on(DockerEngine.start_upstream(&s, &certs, Duration::from_secs(60)))
        .expect("started");
    // A killed run's: the harness's label, a process that is gone.
    let dead = format!("egc-upstream-t-dead-{}", std::process::id());
    let label = format!("{}={}", upstream::LABEL.0, upstream::LABEL.1);
    let pid = format!("{PID_LABEL}={}", u32::MAX - 1);
    let (made, _, err) = docker(&[
        "create",
        "--name",
        &dead,
        "--label",
        &label,
        "--label",
        &pid,
        image(),
    ]);
    assert!(made, "{err}");
    let dry = rt.block_on(prune_upstreams(true)).expect("dry run");
    assert!(
        exists(&dead) && exists(&s.container_name),
        "a dry run removes nothing"
    );
    assert!(dry.contains(&(dead.clone(), Verdict::Remove)), "{dry:?}");
    let done = rt.block_on(prune_upstreams(false)).expect("prune");
    let kept = exists(&s.container_name);
    let _ = docker(&["rm", "-f", &s.container_name, &dead]);
    assert!(kept, "a running run's upstream was removed: {done:?}");
    assert!(
        done.iter().any(|(n, v)| *n == s.container_name
            && matches!(v, Verdict::Keep(why) if why.contains("still running"))),
        "{done:?}"
    );
    assert!(!exists(&dead), "the killed run's upstream is left");
}

/// Without the Docker/Envoy these need, the tests are reported ignored with the reason.
fn main() -> std::process::ExitCode {
    let tests: Vec<(&'static str, fn())> = vec![
        (
            "u2_an_unnegotiated_api_1_53_client_is_refused_by_older_engines_and_the_cli_negotiates",
            u2_an_unnegotiated_api_1_53_client_is_refused_by_older_engines_and_the_cli_negotiates
                as fn(),
        ),
        (
            "the_upstream_answers_as_httpbin_on_the_kind_network_over_http_tls_and_mtls",
            the_upstream_answers_as_httpbin_on_the_kind_network_over_http_tls_and_mtls as fn(),
        ),
        (
            "declared_ports_serve_a_tcp_echo_a_tls_echo_and_https_only_with_a_client_certificate",
            declared_ports_serve_a_tcp_echo_a_tls_echo_and_https_only_with_a_client_certificate
                as fn(),
        ),
        (
            "a_leftover_holding_the_alias_is_refused_not_shared",
            a_leftover_holding_the_alias_is_refused_not_shared as fn(),
        ),
        (
            "prune_removes_an_upstream_a_killed_run_left_and_keeps_a_live_runs",
            prune_removes_an_upstream_a_killed_run_left_and_keeps_a_live_runs as fn(),
        ),
    ];
    support::runner::run(
        support::runner::missing(
            !Command::new("docker")
                .args(["version", "--format", "{{.Server.APIVersion}}"])
                .output()
                .is_ok_and(|o| o.status.success()),
            "EGRESS_REQUIRE_DOCKER",
            "no Docker daemon answers `docker version` here".into(),
        ),
        tests,
    )
}
