//! `egress explain`: read evidence pasted from a bug report.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use crate::evidence::headers::EchoedHeaders;
use crate::explain;
use crate::judge;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("input").args(["access_log", "headers"])))]
pub struct Args {
    /// Access-log lines (`-` for standard input, which is read when neither flag is given).
    #[arg(long, value_name = "FILE")]
    access_log: Option<PathBuf>,
    /// An echoed-headers JSON body (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    headers: Option<PathBuf>,
    /// `text` (a short reading) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

fn read(path: &PathBuf) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("standard input: {e}"))?;
        return Ok(text);
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    // Nothing named: access-log lines on standard input, as a pipe or pasted.
    let stdin = PathBuf::from("-");
    let access_log = match (&args.access_log, &args.headers) {
        (None, None) => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!(
                    "egress: paste access-log lines, then Ctrl-D (or pass --access-log FILE / --headers FILE)"
                );
            }
            Some(&stdin)
        }
        (given, _) => given.as_ref(),
    };
    let json = args.format == "json";
    let mut out = String::new();
    let mut println = |line: String| {
        out.push_str(&line);
        out.push('\n');
    };
    let mut recognised = true;
    if let Some(path) = access_log {
        // Streamed: a line in, its reading out, through buffers on both sides.
        let input: Box<dyn std::io::BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::BufReader::with_capacity(
                1 << 16,
                std::io::stdin().lock(),
            ))
        } else {
            let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Box::new(std::io::BufReader::with_capacity(1 << 16, file))
        };
        let stdout = std::io::stdout();
        let mut writer = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        let streamed = explain::stream(input, &mut writer, json).and_then(|c| {
            writer.flush()?;
            Ok(c)
        });
        let counts = match streamed {
            Ok(c) => c,
            // A closed pipe (`| head`) is the reader's choice, not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(format!("{}: not UTF-8 text", path.display()));
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        recognised = counts.recognised > 0;
        if !recognised {
            eprintln!(
                "egress: no access-log line recognised in {} ({} line(s)): paste Envoy's lines as `kubectl logs` prints them, in Istio's TEXT or JSON format",
                path.display(),
                counts.lines
            );
        }
    }
    if let Some(path) = &args.headers {
        let headers =
            EchoedHeaders::parse(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut explained = judge::explain_headers(&headers);
        let warnings = explain::header_warnings(&explained);
        if json {
            explained["warnings"] = serde_json::json!(warnings);
            println(
                crate::model::json_terminal_safe(
                    &serde_json::to_string_pretty(&explained).map_err(|e| e.to_string())?,
                )
                .into_owned(),
            );
        } else {
            println(describe_headers(&explained));
            for w in warnings {
                println(format!("warning: {w}"));
            }
        }
    }
    // A closed pipe (`| head`) is the reader's choice, not an error.
    // The lines explained are data: their control characters are shown, not obeyed.
    let out = crate::model::terminal_safe(&out);
    match std::io::stdout().write_all(out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("writing the output: {e}"))
        }
        _ if !recognised => Ok(ExitCode::from(1)),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// An echoed body in words, with the hop path it implies.
fn describe_headers(x: &Value) -> String {
    let mut out = Vec::new();
    let proxy = x["peer_metadata_id"]["proxy_type"].as_str();
    match proxy {
        Some(kind) => out.push(format!(
            "last Istio proxy: {kind} {} in {}",
            x["peer_metadata_id"]["pod"].as_str().unwrap_or("?"),
            x["peer_metadata_id"]["namespace"].as_str().unwrap_or("?")
        )),
        None => out.push("no X-Envoy-Peer-Metadata-Id: no Istio proxy added headers (passthrough, no sidecar, or IN_MESH headers)".into()),
    }
    if let Some(version) = x["peer_metadata"]["ISTIO_VERSION"].as_str() {
        out.push(format!("proxy Istio version: {version}"));
    }
    let decorator = x["decorator_operation"].as_str();
    if let Some(d) = decorator {
        out.push(format!("route: {d}"));
    }
    let mtls = x["xfcc"].as_array().and_then(|a| a.last()).cloned();
    if let Some(e) = &mtls {
        out.push(format!(
            "mTLS into the gateway: client {} , gateway {}, hash matches cert: {}",
            e["uri"].as_str().unwrap_or("?"),
            e["by"].as_str().unwrap_or("?"),
            e["hash_matches"]
        ));
    }
    // Only XFCC shows a hop's type; the rest is read from a port or an absence, and
    // says so (the report draws such hops dashed).
    let originated = decorator.is_some_and(|d| d.contains(":443/"));
    let onward = if originated {
        "[TLS origination, inferred from the route's port 443] ->"
    } else {
        "[plain, inferred: the route's port is not 443] ->"
    };
    let path = match proxy {
        Some("router") => format!(
            "client -> sidecar -> {} egress gateway -> {onward} upstream",
            if mtls.is_some() {
                "[mTLS, seen: the gateway forwarded the client certificate] ->"
            } else {
                "[no XFCC: plain, or TLS whose client certificate was not forwarded] ->"
            },
        ),
        Some(_) => format!("client -> sidecar -> {onward} upstream"),
        None => "client -> ? -> upstream (no proxy left its headers)".into(),
    };
    out.push(format!("hops: {path}"));
    out.join("\n")
}
