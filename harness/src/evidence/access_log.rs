//! Envoy access-log lines in Istio's default TEXT format and its JSON encoding.

use serde::Deserialize;

/// The fields of Istio's default access-log format, named as in its JSON encoding
/// (`EnvoyJSONLogFormatIstio`, istio/istio pilot/pkg/model/telemetry_logging.go), in TEXT order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    StartTime,
    Method,
    Path,
    Protocol,
    ResponseCode,
    ResponseFlags,
    ResponseCodeDetails,
    ConnectionTerminationDetails,
    UpstreamTransportFailureReason,
    BytesReceived,
    BytesSent,
    Duration,
    UpstreamServiceTime,
    XForwardedFor,
    UserAgent,
    RequestId,
    Authority,
    UpstreamHost,
    UpstreamCluster,
    UpstreamLocalAddress,
    DownstreamLocalAddress,
    DownstreamRemoteAddress,
    RequestedServerName,
    RouteName,
}

impl Field {
    /// All fields in the order the TEXT format prints them.
    pub const ALL: [Field; 24] = [
        Field::StartTime,
        Field::Method,
        Field::Path,
        Field::Protocol,
        Field::ResponseCode,
        Field::ResponseFlags,
        Field::ResponseCodeDetails,
        Field::ConnectionTerminationDetails,
        Field::UpstreamTransportFailureReason,
        Field::BytesReceived,
        Field::BytesSent,
        Field::Duration,
        Field::UpstreamServiceTime,
        Field::XForwardedFor,
        Field::UserAgent,
        Field::RequestId,
        Field::Authority,
        Field::UpstreamHost,
        Field::UpstreamCluster,
        Field::UpstreamLocalAddress,
        Field::DownstreamLocalAddress,
        Field::DownstreamRemoteAddress,
        Field::RequestedServerName,
        Field::RouteName,
    ];

    /// The JSON access-log key.
    pub fn name(self) -> &'static str {
        match self {
            Field::StartTime => "start_time",
            Field::Method => "method",
            Field::Path => "path",
            Field::Protocol => "protocol",
            Field::ResponseCode => "response_code",
            Field::ResponseFlags => "response_flags",
            Field::ResponseCodeDetails => "response_code_details",
            Field::ConnectionTerminationDetails => "connection_termination_details",
            Field::UpstreamTransportFailureReason => "upstream_transport_failure_reason",
            Field::BytesReceived => "bytes_received",
            Field::BytesSent => "bytes_sent",
            Field::Duration => "duration",
            Field::UpstreamServiceTime => "upstream_service_time",
            Field::XForwardedFor => "x_forwarded_for",
            Field::UserAgent => "user_agent",
            Field::RequestId => "request_id",
            Field::Authority => "authority",
            Field::UpstreamHost => "upstream_host",
            Field::UpstreamCluster => "upstream_cluster",
            Field::UpstreamLocalAddress => "upstream_local_address",
            Field::DownstreamLocalAddress => "downstream_local_address",
            Field::DownstreamRemoteAddress => "downstream_remote_address",
            Field::RequestedServerName => "requested_server_name",
            Field::RouteName => "route_name",
        }
    }
}

use std::borrow::Cow;

use serde_json::{Map, Value};

/// Which historical TEXT layout a line was read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Istio 1.9 and later (`EnvoyTextLogFormat`): 22 fields.
    Istio1_9,
    /// Istio 1.8: no response-code details or termination details.
    Istio1_8,
    /// Istio 1.3 to 1.7: a quoted mixer-status field after the flags.
    Istio1_3,
    /// `accessLogEncoding: JSON`. Its `upstream_cluster` is `%UPSTREAM_CLUSTER%` on
    /// 1.23 and 1.24, whose stat name carries a trailing `;` (util.DelimitedStatsPrefix),
    /// where TEXT had moved to `%UPSTREAM_CLUSTER_RAW%` (pilot/pkg/model/telemetry_logging.go;
    /// both `_RAW` from 1.25): an `equals` on such JSON logs is off by that `;`.
    Json,
}

/// A slot of a TEXT layout after the timestamp: a field, the request triple, or a
/// field that is skipped (the old mixer status). `true` means the token is quoted.
#[derive(Clone, Copy)]
enum Slot {
    Request,
    F(Field, bool),
    Skip,
}

use Field as F_;
use Slot::{F, Request, Skip};

const AFTER_REQUEST_1_9: &[Slot] = &[
    F(F_::ResponseCode, false),
    F(F_::ResponseFlags, false),
    F(F_::ResponseCodeDetails, false),
    F(F_::ConnectionTerminationDetails, false),
    F(F_::UpstreamTransportFailureReason, true),
];
const AFTER_REQUEST_1_8: &[Slot] = &[
    F(F_::ResponseCode, false),
    F(F_::ResponseFlags, false),
    F(F_::UpstreamTransportFailureReason, true),
];
const AFTER_REQUEST_1_3: &[Slot] = &[
    F(F_::ResponseCode, false),
    F(F_::ResponseFlags, false),
    Skip,
    F(F_::UpstreamTransportFailureReason, true),
];
/// The tail every layout since 1.3 shares.
const TAIL: &[Slot] = &[
    F(F_::BytesReceived, false),
    F(F_::BytesSent, false),
    F(F_::Duration, false),
    F(F_::UpstreamServiceTime, false),
    F(F_::XForwardedFor, true),
    F(F_::UserAgent, true),
    F(F_::RequestId, true),
    F(F_::Authority, true),
    F(F_::UpstreamHost, true),
    F(F_::UpstreamCluster, false),
    F(F_::UpstreamLocalAddress, false),
    F(F_::DownstreamLocalAddress, false),
    F(F_::DownstreamRemoteAddress, false),
    F(F_::RequestedServerName, false),
    F(F_::RouteName, false),
];

/// The most tokens a recognised TEXT line has (timestamp included).
const MAX_TOKENS: usize = 23;

/// One access-log line, read completely. Values Envoy printed as `-` are absent.
/// Each value is a span of one text (the line itself for TEXT), so reading a line
/// copies nothing: explain reads millions.
#[derive(Clone)]
pub struct Entry<'a> {
    text: Cow<'a, str>,
    spans: [Span; 24],
    pub layout: Layout,
}

/// A value's byte range in its entry's text; [`ABSENT`] when there is none.
type Span = (u32, u32);
const ABSENT: Span = (u32::MAX, u32::MAX);

impl PartialEq for Entry<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.layout == other.layout && Field::ALL.iter().all(|&f| self.get(f) == other.get(f))
    }
}

impl std::fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let mut d = f.debug_struct("Entry");
        for field in Field::ALL {
            d.field(field.name(), &self.get(field));
        }
        d.field("layout", &self.layout).finish()
    }
}

/// A line that is not an access-log line of a known layout; nothing of it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecognised {
    pub reason: String,
}

impl std::fmt::Display for Unrecognised {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl<'a> Entry<'a> {
    pub fn get(&self, field: Field) -> Option<&str> {
        let (start, end) = self.spans[field as usize];
        (start != u32::MAX).then(|| &self.text[start as usize..end as usize])
    }

    /// Whether the line records a TCP or TLS-passthrough connection (no HTTP request).
    pub fn is_tcp(&self) -> bool {
        self.get(Field::Method).is_none() && self.get(Field::Protocol).is_none()
    }

    /// Keyed with Istio's JSON access-log names; numbers where Envoy prints numbers.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for field in Field::ALL {
            let value = match (self.get(field), field) {
                (None, _) => Value::Null,
                (
                    Some(v),
                    Field::ResponseCode | Field::BytesReceived | Field::BytesSent | Field::Duration,
                ) => v
                    .parse::<u64>()
                    .map_or_else(|_| Value::String(v.to_owned()), Value::from),
                (Some(v), _) => Value::String(v.to_owned()),
            };
            map.insert(field.name().to_owned(), value);
        }
        Value::Object(map)
    }

    pub fn into_owned(self) -> Entry<'static> {
        Entry {
            text: Cow::Owned(self.text.into_owned()),
            spans: self.spans,
            layout: self.layout,
        }
    }
}

/// Reads one line: Istio's TEXT format (any layout since 1.3), or its JSON encoding,
/// with or without the prefix `kubectl logs --prefix` (`[pod/x/c] `) or a `pod container `
/// prefix puts in front.
pub fn parse_line(line: &str) -> Result<Entry<'_>, Unrecognised> {
    let line = line.trim_end();
    // The common case first, without looking for JSON: `[START_TIME] "` at the start.
    let bytes = line.as_bytes();
    if bytes.first() == Some(&b'[')
        && bytes
            .get(1..5)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        && bytes.get(5) == Some(&b'-')
        && let Some(close) = memchr::memchr(b']', bytes)
        && bytes.get(close + 1..close + 3) == Some(b" \"")
    {
        return parse_text(line);
    }
    if let Some(at) = line.find('{')
        && is_log_prefix(&line[..at])
    {
        return parse_json(&line[at..]);
    }
    match timestamp_start(line) {
        Some(start) => parse_text(&line[start..]),
        // Pasted without its `[START_TIME]`: the request triple comes first.
        None => match line.find('"') {
            Some(at) if is_log_prefix(&line[..at]) => {
                let with_time = format!("[-] {}", &line[at..]);
                parse_text(&with_time)
                    .map(Entry::into_owned)
                    .map_err(|e| unrecognised(format!("{e} (read without a [START_TIME])")))
            }
            _ => Err(unrecognised(
                "neither a [START_TIME] nor a quoted request where an access-log line starts",
            )),
        },
    }
}

fn unrecognised(reason: impl Into<String>) -> Unrecognised {
    Unrecognised {
        reason: reason.into(),
    }
}

/// Nothing, or what log tools put before a line: `[pod/x/c]`, `[pod container]` or one
/// or two words.
fn is_log_prefix(prefix: &str) -> bool {
    let prefix = prefix.trim();
    prefix.is_empty()
        || (!prefix.contains(['"', '[']) && prefix.split_whitespace().count() <= 2)
        || (prefix.starts_with('[')
            && prefix.ends_with(']')
            && !prefix[1..prefix.len() - 1].contains(['[', ']', '"']))
}

/// Where `[YYYY-` (Envoy's START_TIME) begins.
fn timestamp_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(rel) = line[from..].find('[') {
        let at = from + rel;
        let digits = bytes.get(at + 1..at + 5);
        if digits.is_some_and(|d| d.iter().all(u8::is_ascii_digit))
            && bytes.get(at + 5) == Some(&b'-')
        {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Splits a TEXT line into tokens: `[..]`, `".."` (spaces allowed inside) and bare words.
/// Token positions: (start, end, quoted).
type Tokens = [(u32, u32, bool); MAX_TOKENS];

/// The line is shorter than 4 GiB (checked by the caller), so positions fit in u32.
fn tokenize(line: &str) -> Result<(Tokens, usize), Unrecognised> {
    let bytes = line.as_bytes();
    let mut tokens = [(0u32, 0u32, false); MAX_TOKENS];
    let mut count = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            i += 1;
            continue;
        }
        if count == MAX_TOKENS {
            return Err(unrecognised(format!("more than {MAX_TOKENS} fields")));
        }
        let (close, from, quoted) = match bytes[i] {
            b'[' => (b']', i + 1, false),
            b'"' => (b'"', i + 1, true),
            _ => (b' ', i, false),
        };
        let end = find_byte(bytes, from, close).unwrap_or(bytes.len());
        if close != b' ' && end == bytes.len() {
            return Err(unrecognised(format!("unclosed {}", close as char)));
        }
        tokens[count] = (from as u32, end as u32, quoted);
        count += 1;
        i = if close == b' ' { end } else { end + 1 };
    }
    Ok((tokens, count))
}

/// The first `needle` at or after `from`. Tokens are short (codes, sizes, addresses,
/// ids), so eight bytes a step in a word (the zero-byte test of Hacker's Delight
/// 6-1) beats a call into a vectorised search.
fn find_byte(bytes: &[u8], from: usize, needle: u8) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = u64::from_ne_bytes([needle; 8]);
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes
        .get(at..)?
        .iter()
        .position(|&b| b == needle)
        .map(|p| at + p)
}

fn parse_text(line: &str) -> Result<Entry<'_>, Unrecognised> {
    if u32::try_from(line.len()).is_err() {
        return Err(unrecognised("a line of 4 GiB or more"));
    }
    let (tokens, count) = tokenize(line)?;
    let (layout, head) = match count {
        22 => (Layout::Istio1_9, AFTER_REQUEST_1_9),
        20 => (Layout::Istio1_8, AFTER_REQUEST_1_8),
        // One short of 1.9 with a bare response-code details where 1.3 had its quoted
        // mixer status: a 1.9 line whose last field (the route name) Envoy left empty,
        // as TCP lines with `NR filter_chain_not_found` show it (a trailing space).
        21 if !tokens[4].2 => (Layout::Istio1_9, AFTER_REQUEST_1_9),
        21 => (Layout::Istio1_3, AFTER_REQUEST_1_3),
        n => {
            return Err(unrecognised(format!(
                "{n} fields; Istio's TEXT layouts have 20 (1.8), 21 (1.3-1.7) or 22 (1.9 and later)"
            )));
        }
    };
    let bytes = line.as_bytes();
    let mut spans = [ABSENT; 24];
    // `-` is Envoy's absent value; a span fits in u32 (checked above).
    let span = |start: usize, end: usize| -> Span {
        if end == start + 1 && bytes[start] == b'-' {
            ABSENT
        } else {
            (start as u32, end as u32)
        }
    };
    spans[Field::StartTime as usize] = span(tokens[0].0 as usize, tokens[0].1 as usize);
    let slots = std::iter::once(&Request).chain(head).chain(TAIL);
    for (slot, &(start, end, quoted)) in slots.zip(&tokens[1..count]) {
        let (start, end) = (start as usize, end as usize);
        match *slot {
            Skip => {}
            Request => {
                if !quoted {
                    return Err(unrecognised("the request field is not quoted"));
                }
                let text = &line[start..end];
                if text == "- - -" {
                    continue;
                }
                let not_a_request =
                    || unrecognised(format!("request `{text}` is not METHOD PATH PROTOCOL"));
                let first = text.find(' ').ok_or_else(not_a_request)?;
                let last = text.rfind(' ').ok_or_else(not_a_request)?;
                if last <= first {
                    return Err(not_a_request());
                }
                spans[Field::Method as usize] = span(start, start + first);
                spans[Field::Path as usize] = span(start + first + 1, start + last);
                spans[Field::Protocol as usize] = span(start + last + 1, end);
            }
            F(field, want_quoted) => {
                if quoted != want_quoted {
                    let how = if want_quoted { "quoted" } else { "bare" };
                    return Err(unrecognised(format!(
                        "{} should be {how} in the {layout:?} layout",
                        field.name()
                    )));
                }
                spans[field as usize] = span(start, end);
            }
        }
    }
    Ok(Entry {
        text: Cow::Borrowed(line),
        spans,
        layout,
    })
}

fn parse_json(text: &str) -> Result<Entry<'static>, Unrecognised> {
    let map: Map<String, Value> = serde_json::from_str(text.trim())
        .map_err(|e| unrecognised(format!("not a JSON object: {e}")))?;
    // The values one after another in one text, each a span of it.
    let mut joined = String::new();
    let mut spans = [ABSENT; 24];
    let mut known = 0;
    for field in Field::ALL {
        let Some(value) = map.get(field.name()) else {
            continue;
        };
        known += 1;
        let value: Cow<'_, str> = match value {
            Value::Null => continue,
            Value::String(s) if s == "-" || s.is_empty() => continue,
            Value::String(s) => Cow::Borrowed(s),
            other => Cow::Owned(other.to_string()),
        };
        let start = joined.len();
        joined.push_str(&value);
        match (u32::try_from(start), u32::try_from(joined.len())) {
            (Ok(start), Ok(end)) => spans[field as usize] = (start, end),
            _ => return Err(unrecognised("a line of 4 GiB or more")),
        }
    }
    if known < 3 {
        return Err(unrecognised(
            "a JSON object without Istio's access-log keys",
        ));
    }
    Ok(Entry {
        text: Cow::Owned(joined),
        spans,
        layout: Layout::Json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_is_found_where_a_plain_search_finds_it() {
        let text: Vec<u8> = (0u32..300).map(|i| (i * 37 % 11) as u8 + b' ').collect();
        for from in 0..text.len() {
            for needle in [b' ', b'"', b']', b'$', b'*'] {
                let plain = text[from..]
                    .iter()
                    .position(|&b| b == needle)
                    .map(|p| from + p);
                assert_eq!(
                    find_byte(&text, from, needle),
                    plain,
                    "{needle} from {from}"
                );
            }
        }
        assert_eq!(find_byte(b"ab", 2, b'a'), None);
    }

    /// The seed article's gateway line (Istio 1.22.1).
    const HTTP: &str = r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/2" 200 - via_upstream - "-" 0 1450 57 57 "10.244.0.7" "curl/7.83.1-DEV" "51ed62d9-1da8-4250-9923-df406ca9fd57" "httpbin.org" "3.213.1.197:80" outbound|80||httpbin.org 10.244.0.6:41144 10.244.0.6:8080 10.244.0.7:55490 - -"#;
    const TCP: &str = r#"[2024-06-21T21:22:27.560Z] "- - -" 0 - - - "-" 940 5946 156 - "-" "-" "-" "-" "18.211.234.122:443" outbound|443||httpbin.org 10.244.0.6:50356 10.244.0.6:8443 10.244.0.7:51628 httpbin.org -"#;

    #[test]
    fn reads_every_field_of_an_http_line() {
        let e = parse_line(HTTP).unwrap();
        let want = [
            (Field::StartTime, Some("2024-06-21T19:24:00.453Z")),
            (Field::Method, Some("GET")),
            (Field::Path, Some("/headers")),
            (Field::Protocol, Some("HTTP/2")),
            (Field::ResponseCode, Some("200")),
            (Field::ResponseFlags, None),
            (Field::ResponseCodeDetails, Some("via_upstream")),
            (Field::ConnectionTerminationDetails, None),
            (Field::UpstreamTransportFailureReason, None),
            (Field::BytesReceived, Some("0")),
            (Field::BytesSent, Some("1450")),
            (Field::Duration, Some("57")),
            (Field::UpstreamServiceTime, Some("57")),
            (Field::XForwardedFor, Some("10.244.0.7")),
            (Field::UserAgent, Some("curl/7.83.1-DEV")),
            (
                Field::RequestId,
                Some("51ed62d9-1da8-4250-9923-df406ca9fd57"),
            ),
            (Field::Authority, Some("httpbin.org")),
            (Field::UpstreamHost, Some("3.213.1.197:80")),
            (Field::UpstreamCluster, Some("outbound|80||httpbin.org")),
            (Field::UpstreamLocalAddress, Some("10.244.0.6:41144")),
            (Field::DownstreamLocalAddress, Some("10.244.0.6:8080")),
            (Field::DownstreamRemoteAddress, Some("10.244.0.7:55490")),
            (Field::RequestedServerName, None),
            (Field::RouteName, None),
        ];
        for (field, value) in want {
            assert_eq!(e.get(field), value, "{}", field.name());
        }
        assert_eq!(e.layout, Layout::Istio1_9);
        assert!(!e.is_tcp());
    }

    #[test]
    fn reads_tcp_lines_and_prefixes() {
        for line in [
            TCP.to_owned(),
            format!("[pod/istio-egressgateway-75c5457c56-htpvz/istio-proxy] {TCP}"),
            format!("istio-egressgateway-75c5457c56-htpvz istio-proxy {TCP}"),
        ] {
            let e = parse_line(&line).unwrap();
            assert!(e.is_tcp());
            assert_eq!(e.get(Field::ResponseCode), Some("0"));
            assert_eq!(e.get(Field::RequestedServerName), Some("httpbin.org"));
            assert_eq!(
                e.get(Field::UpstreamCluster),
                Some("outbound|443||httpbin.org")
            );
            assert_eq!(e.to_json()["response_code"], Value::from(0));
            assert_eq!(e.to_json()["method"], Value::Null);
        }
    }

    #[test]
    fn quoted_fields_keep_spaces() {
        let line = HTTP.replace("curl/7.83.1-DEV", "Mozilla/5.0 (X11; Linux x86_64)");
        assert_eq!(
            parse_line(&line).unwrap().get(Field::UserAgent),
            Some("Mozilla/5.0 (X11; Linux x86_64)")
        );
    }

    #[test]
    fn reads_the_json_encoding_in_any_key_order() {
        let line = r#"{"upstream_cluster":"outbound|443||httpbin.org","response_code":200,"method":"GET","path":"/headers","protocol":"HTTP/1.1","start_time":"2024-06-21T19:50:33.667Z","requested_server_name":"httpbin.org","route_name":null,"bytes_sent":2997}"#;
        let e = parse_line(line).unwrap();
        assert_eq!(
            (
                e.layout,
                e.get(Field::ResponseCode),
                e.get(Field::RouteName)
            ),
            (Layout::Json, Some("200"), None)
        );
        assert_eq!(e.to_json()["bytes_sent"], Value::from(2997));
    }

    #[test]
    fn reads_older_layouts() {
        // Istio 1.8: no details, no termination details.
        let l18 = r#"[2020-11-20T01:02:03.000Z] "GET /status/418 HTTP/1.1" 418 - "-" 0 135 5 2 "-" "curl/7.73.0" "d2b3c0a5-0000-4000-8000-000000000000" "httpbin.org" "10.0.0.1:80" outbound|80||httpbin.org 10.1.1.1:40000 10.1.1.1:8080 10.1.1.2:50000 - -"#;
        let e = parse_line(l18).unwrap();
        assert_eq!(
            (
                e.layout,
                e.get(Field::ResponseCode),
                e.get(Field::UpstreamCluster)
            ),
            (
                Layout::Istio1_8,
                Some("418"),
                Some("outbound|80||httpbin.org")
            )
        );
        // Istio 1.3-1.7: a quoted mixer status after the flags.
        let l13 = r#"[2019-09-16T20:17:52.211Z] "GET /headers HTTP/2" 200 - "-" "-" 0 1312 47 47 "10.1.2.3" "curl/7.64.0" "b9a6c1e5-0000-4000-8000-000000000000" "httpbin.org" "52.22.1.1:80" outbound|80||httpbin.org - 172.30.146.72:80 10.1.2.3:53434 - -"#;
        let e = parse_line(l13).unwrap();
        assert_eq!(
            (
                e.layout,
                e.get(Field::UpstreamLocalAddress),
                e.get(Field::RequestId)
            ),
            (
                Layout::Istio1_3,
                None,
                Some("b9a6c1e5-0000-4000-8000-000000000000")
            )
        );
    }

    #[test]
    fn anything_else_is_unrecognised_not_half_read() {
        let bad = [
            "",
            "2024-06-21T19:24:00.453Z info envoy upstream",
            r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/2" 200"#,
            r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/2 200 - via_upstream"#,
            &HTTP.replace("\"-\" 0 1450", "- 0 1450"),
            r#"{"level":"info","msg":"hello"}"#,
            "[2024-",
        ];
        for line in bad {
            assert!(parse_line(line).is_err(), "read: {line}");
        }
    }
}
