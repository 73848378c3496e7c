//! ztunnel's access log: one line per connection. ztunnel's formatter writes the
//! time, the level, the target and the message separated by TABs, then the fields
//! `key=value` separated by single spaces, string values Debug-quoted (istio/ztunnel
//! src/telemetry.rs: `write!(writer, "\t{}\t", level)`, `"message" =>
//! write!(self.writer, "{val:?}\t")`; the event is `access_log!` in
//! src/proxy/metrics.rs). `kubectl logs` keeps the tabs; istio.io renders them as
//! aligned spaces and docs wrap long lines, so any run of whitespace separates here.
//! Keys as ztunnel writes them: `src.addr`, `src.workload`, `src.namespace`,
//! `src.identity`, `src.cluster`, `dst.addr`, `dst.hbone_addr`, `dst.service`,
//! `dst.workload`, `dst.namespace`, `dst.identity`, `dst.cluster`, `direction`,
//! `bytes_sent`, `bytes_recv`, `duration`, `error`.
//! Verbatim public lines: harness/tests/fixtures/public/ztunnel/.

use std::collections::BTreeMap;

/// One connection's line: its timestamp and fields, or `None` for other lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub time: String,
    pub fields: BTreeMap<String, String>,
}

/// The next whitespace-delimited word of `text` and what follows it.
fn word(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    Some((&text[..end], &text[end..]))
}

/// An RFC 3339 time as ztunnel (tracing-subscriber's `SystemTime`) writes it:
/// `2025-04-01T14:01:02.476412Z`.
fn is_time(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() >= 11 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T'
}

/// How many words may stand before `access` (a log tool's prefix, time, level).
const MAX_HEADER_WORDS: usize = 6;

/// Parses a ztunnel access line: tab-separated as ztunnel writes it, or with single
/// or aligned spaces as issues and istio.io show it, after a log tool's prefix
/// (`kubectl logs --prefix`, `pod container`), with or without its time, or a wrapped
/// line joined with any whitespace. A line of fields alone from `src.addr=` on (as
/// Kiali shows them) is read too. Anything else (startup, xDS, warnings) is `None`.
pub fn parse(line: &str) -> Option<Connection> {
    let mut time = String::new();
    let mut rest = line;
    let mut failed = None;
    for _ in 0..MAX_HEADER_WORDS {
        let Some((w, after)) = word(rest) else { break };
        if is_time(w) {
            w.clone_into(&mut time);
        }
        if w == "access" || w == "access:" {
            let (connection, after) = word(after)?;
            let (outcome, after) = word(after)?;
            failed = match (connection, outcome) {
                ("connection", "complete") => Some(false),
                ("connection", "failed") => Some(true),
                _ => return None,
            };
            rest = after;
            break;
        }
        rest = after;
    }
    let failed = match failed {
        Some(f) => f,
        None => {
            // Fields alone, perhaps behind a `[pod]` prefix.
            let fields = line.trim_start();
            let fields = match fields.strip_prefix('[') {
                Some(p) => p.split_once(']')?.1.trim_start(),
                None => fields,
            };
            if !fields.starts_with("src.addr=") {
                return None;
            }
            rest = fields;
            false
        }
    };
    let mut fields = BTreeMap::new();
    if failed {
        // Overwritten by the line's own `error=` when it has one.
        fields.insert("error".to_owned(), "connection failed".to_owned());
    }
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if chars.next_if_eq(&'=').is_none() {
            // A word without `=`: not a field; skip it.
            continue;
        }
        // Strings are Debug-quoted (1.22 wrote some bare); addresses and numbers bare.
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut v = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => v.push('\n'),
                        Some('t') => v.push('\t'),
                        Some(other) => v.push(other),
                        None => break,
                    },
                    '"' => break,
                    c => v.push(c),
                }
            }
            v
        } else {
            let mut v = String::new();
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                v.push(c);
            }
            v
        };
        if !key.is_empty() {
            fields.insert(key, value);
        }
    }
    Some(Connection { time, fields })
}

/// Whether a physical line continues a wrapped ztunnel line: it starts with a field
/// (`key=`) rather than a timestamp.
pub fn is_continuation(line: &str) -> bool {
    word(line).is_some_and(|(first, _)| {
        first.split_once('=').is_some_and(|(key, _)| {
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
        })
    })
}

/// The last connection from a workload of `namespace` to `host` (its `dst.service`
/// or, before the service is known, any destination), among `lines`.
pub fn find<'a>(lines: &'a [String], namespace: &str, host: &str) -> Option<(&'a str, Connection)> {
    lines.iter().rev().find_map(|raw| {
        let c = parse(raw)?;
        let from_here = c.fields.get("src.namespace").map(String::as_str) == Some(namespace);
        let to_host = c
            .fields
            .get("dst.service")
            .is_none_or(|s| s == host || s.is_empty());
        (from_here && to_host).then_some((raw.as_str(), c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"2026-12-01T12:00:00.123456Z info access connection complete src.addr=10.244.0.7:55490 src.workload="curl" src.namespace="ambient-waypoint-authz" src.identity="spiffe://cluster.local/ns/ambient-waypoint-authz/sa/default" dst.addr=10.244.0.12:15008 dst.hbone_addr=240.240.0.3:80 dst.service="httpbin.org" dst.workload="waypoint-7c9d8f6b5-x2k4q" dst.namespace="ambient-waypoint-authz" dst.identity="spiffe://cluster.local/ns/ambient-waypoint-authz/sa/waypoint" direction="outbound" bytes_sent=84 bytes_recv=612 duration="3ms""#;

    #[test]
    fn a_connection_line_is_read_into_its_fields() {
        let c = parse(LINE).unwrap();
        assert_eq!(c.time, "2026-12-01T12:00:00.123456Z");
        assert_eq!(c.fields["src.workload"], "curl");
        assert_eq!(c.fields["dst.hbone_addr"], "240.240.0.3:80");
        assert_eq!(c.fields["dst.workload"], "waypoint-7c9d8f6b5-x2k4q");
        assert_eq!(c.fields["direction"], "outbound");
        assert_eq!(c.fields["bytes_recv"], "612");
        assert_eq!(c.fields["duration"], "3ms");
        assert_eq!(parse("2026-12-01T12:00:00Z info xds received config"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn the_request_s_connection_is_the_last_from_its_namespace_to_its_host() {
        let other = LINE.replace(
            "ambient-waypoint-authz\" src.identity",
            "elsewhere\" src.identity",
        );
        let lines = vec![LINE.to_owned(), other.clone()];
        let (raw, _) = find(&lines, "ambient-waypoint-authz", "httpbin.org").unwrap();
        assert_eq!(raw, LINE);
        assert!(find(&lines, "ambient-waypoint-authz", "example.com").is_none());
        assert!(find(&[other], "ambient-waypoint-authz", "httpbin.org").is_none());
    }

    #[test]
    fn mangled_lines_never_panic() {
        for cut in 0..LINE.len() {
            let _ = parse(&LINE[..cut]);
        }
        let _ = parse("t info access connection complete =\"");
        let _ = parse("t info access connection complete k=\"unterminated \\");
    }
}
