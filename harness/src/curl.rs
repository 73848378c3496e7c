//! The curl command run in the client container, and reading what it printed.
//!
//! curl appends `-w` output after the body: a marker line, then `%{json}` (all of
//! curl's write-out variables as one JSON object on one line, curl >= 7.70), then on the
//! next lines `%{header_json}` (the response headers, values as lists, curl >= 7.83),
//! so the body, the status, the timings and the response headers come from one request.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::scenario::Request;

/// Separates the body from curl's write-out.
pub const MARKER: &str = "<<egress-conformance curl -w>>";

/// The User-Agent of an attempt: Envoy logs it (`%REQ(USER-AGENT)%` in Istio's
/// default format) and never rewrites it, so it finds the attempt's log lines.
pub fn user_agent(attempt_id: &str) -> String {
    format!("curl egress-conformance/{attempt_id}")
}

/// The probe token [`user_agent`] carries.
pub fn probe(attempt_id: &str) -> String {
    format!("egress-conformance/{attempt_id}")
}

/// The argv for one attempt of `request`; `url` has its template variables filled in;
/// `extra` are the scenario's arguments for the upstream mode in use.
pub fn argv(request: &Request, url: &str, attempt_id: &str, extra: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        "curl".into(),
        "-sS".into(),
        "--max-time".into(),
        request.max_time_seconds.to_string(),
        "-A".into(),
        user_agent(attempt_id),
        "-H".into(),
        format!("x-request-id: {attempt_id}"),
        "-w".into(),
        format!("\n{MARKER}%{{json}}\n%{{header_json}}"),
    ];
    argv.extend(request.curl_args.iter().map(|a| a.value.clone()));
    argv.extend(extra.iter().cloned());
    argv.push(url.to_owned());
    argv
}

/// The error curl printed for a failed transfer: `curl: (35) OpenSSL SSL_connect: ...`
/// (curl's `failf` messages behind `curl: (<exit code>) `), from its stderr, tolerating
/// a `* ` in front as `curl -v` output shows it. Public samples:
/// harness/tests/fixtures/public/curl-error/.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurlError<'a> {
    pub code: u32,
    pub message: &'a str,
}

pub fn error_line(stderr: &str) -> Option<CurlError<'_>> {
    stderr.lines().find_map(|line| {
        let line = line.strip_prefix("* ").unwrap_or(line);
        let rest = line.strip_prefix("curl: (")?;
        let (code, message) = rest.split_once(") ")?;
        Some(CurlError {
            code: code.parse().ok()?,
            message,
        })
    })
}

/// What curl reported about the transfer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteOut {
    /// 0 when no HTTP response came back.
    pub http_code: u16,
    pub time_total: Option<f64>,
    pub time_connect: Option<f64>,
    pub time_appconnect: Option<f64>,
    pub remote_ip: Option<String>,
    pub errormsg: Option<String>,
    /// The response headers by name as curl gives them (lower case), each with its
    /// values; `None` when curl printed none (older than 7.83, or the output was cut).
    pub headers: Option<BTreeMap<String, Vec<String>>>,
}

/// Splits curl's stdout into the body and the write-out. `None` for the write-out when
/// the marker is missing: the output was cut off, and the attempt proves nothing.
pub fn split_output(stdout: &str) -> (&str, Option<WriteOut>) {
    let Some(at) = stdout.rfind(MARKER) else {
        return (stdout, None);
    };
    let body = stdout[..at].strip_suffix('\n').unwrap_or(&stdout[..at]);
    let after = &stdout[at + MARKER.len()..];
    let (json_line, header_json) = after.split_once('\n').unwrap_or((after, ""));
    let headers = serde_json::from_str::<BTreeMap<String, Vec<String>>>(header_json.trim()).ok();
    let json: Option<Value> = serde_json::from_str(json_line.trim()).ok();
    let write_out = json.map(|v| WriteOut {
        http_code: v["http_code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0),
        time_total: v["time_total"].as_f64(),
        time_connect: v["time_connect"].as_f64(),
        time_appconnect: v["time_appconnect"].as_f64(),
        remote_ip: v["remote_ip"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        errormsg: v["errormsg"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        headers,
    });
    (body, write_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_body_from_write_out() {
        let out = format!(
            "{{\"headers\": {{}}}}\n{MARKER}{{\"http_code\":200,\"time_total\":0.05,\"remote_ip\":\"10.96.0.1\",\"errormsg\":null}}"
        );
        let (body, w) = split_output(&out);
        assert_eq!(body, "{\"headers\": {}}");
        let w = w.unwrap();
        assert_eq!(
            (w.http_code, w.time_total, w.remote_ip.as_deref()),
            (200, Some(0.05), Some("10.96.0.1"))
        );
    }

    #[test]
    fn response_headers_follow_the_write_out() {
        let out = format!(
            "{{}}\n{MARKER}{{\"http_code\":301}}\n{{\"location\":[\"https://httpbin.org/\"],\n\"server\":[\"envoy\"]\n}}"
        );
        let (_, w) = split_output(&out);
        let headers = w.unwrap().headers.unwrap();
        assert_eq!(headers["location"], ["https://httpbin.org/"]);
        assert_eq!(headers["server"], ["envoy"]);
        // A curl older than 7.83 prints no header_json: no headers, the rest as before.
        let old = format!("{{}}\n{MARKER}{{\"http_code\":200}}");
        let w = split_output(&old).1.unwrap();
        assert_eq!((w.http_code, w.headers), (200, None));
    }

    #[test]
    fn cut_off_output_has_no_write_out() {
        assert_eq!(split_output("{\"headers\""), ("{\"headers\"", None));
        assert!(split_output(&format!("x\n{MARKER}{{\"http_")).1.is_none());
    }
}
