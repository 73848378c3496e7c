//! ztunnel's access log: one line per connection, `<time> info access connection
//! complete key=value ...`, values quoted when they hold spaces (istio/ztunnel
//! src/proxy/metrics.rs, `event!(target: "access", ...)`; the line istio.io shows under
//! docs/ambient/usage/troubleshoot-ztunnel). Keys as ztunnel writes them:
//! `src.addr`, `src.workload`, `src.namespace`, `src.identity`, `dst.addr`,
//! `dst.hbone_addr`, `dst.service`, `dst.workload`, `dst.namespace`, `dst.identity`,
//! `direction`, `bytes_sent`, `bytes_recv`, `duration`, `error`.

use std::collections::BTreeMap;

/// One connection's line: its timestamp and fields, or `None` for other lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub time: String,
    pub fields: BTreeMap<String, String>,
}

/// Parses a ztunnel access line; anything else (startup, xDS, warnings) is `None`.
pub fn parse(line: &str) -> Option<Connection> {
    let mut words = line.splitn(3, ' ');
    let time = words.next()?.to_owned();
    let _level = words.next()?;
    let rest = words.next()?.strip_prefix("access ")?;
    let (rest, failed) = match rest.strip_prefix("connection complete") {
        Some(r) => (r, false),
        None => (rest.strip_prefix("connection failed")?, true),
    };
    let mut fields = BTreeMap::new();
    if failed {
        // Overwritten by the line's own `error=` when it has one.
        fields.insert("error".to_owned(), "connection failed".to_owned());
    }
    let mut chars = rest.trim_start().chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => v.extend(chars.next()),
                    '"' => break,
                    c => v.push(c),
                }
            }
            if chars.peek() == Some(&' ') {
                chars.next();
            }
            v
        } else {
            chars.by_ref().take_while(|c| *c != ' ').collect()
        };
        let key = key.trim();
        if key.is_empty() {
            break;
        }
        fields.insert(key.to_owned(), value);
    }
    Some(Connection { time, fields })
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
