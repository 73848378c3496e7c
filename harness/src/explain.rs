//! What an access-log line or an echoed body means, in words: whether the request
//! reached an upstream, and what Envoy's flags and details say happened. The hops
//! claim a kind of TLS only where the line shows it.

use std::borrow::Cow;

use serde_json::Value;

use crate::evidence::access_log::{Entry, Field};

/// One line, read (its one-sentence form is [`summary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// Whether the request or connection got to an upstream host.
    pub reached_upstream: bool,
    /// What the flags, details and cluster mean, a sentence each.
    pub meaning: Vec<Cow<'static, str>>,
    pub hops: String,
    pub warnings: Vec<String>,
}

impl Reading {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "reached_upstream": self.reached_upstream,
            "meaning": self.meaning,
            "hops": self.hops,
            "warnings": self.warnings,
        })
    }
}

/// Envoy's response flags (envoy/stream_info StreamInfo ResponseFlag short names),
/// with whether each means the request never reached an upstream host.
const FLAGS: &[(&str, bool, &str)] = &[
    (
        "NR",
        true,
        "no route (NR): no route matched, or for TCP no filter chain of the listener did",
    ),
    (
        "UH",
        true,
        "no healthy upstream (UH): the cluster had no endpoint to send to",
    ),
    (
        "UF",
        true,
        "upstream connection failure (UF): connecting to the upstream failed",
    ),
    (
        "UO",
        true,
        "upstream overflow (UO): the circuit breaker refused the request",
    ),
    (
        "NC",
        true,
        "no cluster (NC): the route named a cluster the proxy does not have",
    ),
    (
        "DPE",
        true,
        "downstream protocol error (DPE): the proxy could not read the client's request",
    ),
    (
        "UT",
        false,
        "upstream request timeout (UT): the upstream took longer than the route allows",
    ),
    (
        "UC",
        false,
        "upstream connection termination (UC): the upstream closed the connection",
    ),
    (
        "URX",
        false,
        "upstream retry limit exceeded (URX): every retry failed",
    ),
    (
        "DC",
        false,
        "downstream connection termination (DC): the client went away first",
    ),
    (
        "UAEX",
        true,
        "unauthorized by an external authorization service (UAEX)",
    ),
    (
        "RL",
        true,
        "rate limited (RL): the proxy answered 429 itself",
    ),
];

fn port(address: Option<&str>) -> Option<&str> {
    address.and_then(|a| a.rsplit_once(':')).map(|(_, p)| p)
}

/// Reads one access-log line.
pub fn read_line(e: &Entry<'_>) -> Reading {
    let get = |f| e.get(f).unwrap_or("-");
    let cluster = e.get(Field::UpstreamCluster);
    let details = e.get(Field::ResponseCodeDetails).unwrap_or_default();
    let flags: Vec<&str> = e
        .get(Field::ResponseFlags)
        .map(|f| f.split(',').collect())
        .unwrap_or_default();
    let sni = e.get(Field::RequestedServerName);
    let mut meaning: Vec<Cow<'static, str>> = Vec::new();
    let mut stopped = false;

    if cluster == Some("BlackHoleCluster") {
        stopped = true;
        meaning.push("BlackHoleCluster: no ServiceEntry or Service registers this destination and the mesh is REGISTRY_ONLY, so the proxy dropped it; it never left the proxy".into());
    }
    if cluster == Some("PassthroughCluster") {
        meaning.push("PassthroughCluster: the destination is registered nowhere and the mesh is ALLOW_ANY, so the proxy sent it on to the original address as it was".into());
    }
    if details == "direct_response" {
        stopped = true;
        let route = e.get(Field::RouteName);
        meaning.push(match route {
            Some("block_all") => "answered by the proxy itself (direct_response, route block_all): REGISTRY_ONLY's answer for a host no ServiceEntry registers; no upstream saw it".into(),
            Some(r) => format!("answered by the proxy itself (direct_response, route {r}): a route with a direct response, no upstream saw it").into(),
            None => "answered by the proxy itself (direct_response): no upstream saw it".into(),
        });
    }
    if details.starts_with("filter_chain_not_found") {
        stopped = true;
        meaning.push(
            format!(
                "no filter chain of the listener on {} matched (SNI {}, port and transport): the proxy closed the connection",
                get(Field::DownstreamLocalAddress),
                sni.unwrap_or("-")
            )
            .into(),
        );
    }
    if details == "via_upstream" {
        meaning.push("answered by the upstream (via_upstream)".into());
    }
    for flag in &flags {
        if let Some((_, never, text)) = FLAGS.iter().find(|(f, _, _)| f == flag) {
            stopped |= never;
            meaning.push((*text).into());
        }
    }
    if let Some(reason) = e.get(Field::UpstreamTransportFailureReason) {
        meaning.push(format!("the TLS (or TCP) handshake to the upstream failed: {reason}").into());
    }
    let reached = !stopped && e.get(Field::UpstreamHost).is_some();
    if !reached && !stopped {
        meaning.push("no upstream host is logged: it did not reach an upstream".into());
    }

    Reading {
        reached_upstream: reached,
        meaning,
        hops: hops(e, reached),
        warnings: Vec::new(),
    }
}

/// The line in one sentence.
pub fn summary(e: &Entry<'_>) -> String {
    let get = |f| e.get(f).unwrap_or("-");
    let cluster = e.get(Field::UpstreamCluster);
    let sni = e.get(Field::RequestedServerName);
    let mut summary = String::with_capacity(96);
    {
        use std::fmt::Write;
        let _ = if e.is_tcp() {
            write!(
                summary,
                "TCP/TLS connection, SNI {}, to {}: {} bytes sent, {} received",
                sni.unwrap_or("-"),
                cluster.unwrap_or("-"),
                get(Field::BytesSent),
                get(Field::BytesReceived)
            )
        } else {
            write!(
                summary,
                "{} {} {} for {} -> {} via {}",
                get(Field::Method),
                get(Field::Path),
                get(Field::Protocol),
                get(Field::Authority),
                get(Field::ResponseCode),
                cluster.unwrap_or("-")
            )
        };
    }
    summary
}

/// The path the line shows; the TLS of a leg only where the line says it.
fn hops(e: &Entry<'_>, reached: bool) -> String {
    // One buffer per line, pieces pushed rather than formatted: explain streams
    // millions of these.
    let mut text = String::with_capacity(192);
    text.push_str("client -> ");
    match (e.get(Field::RequestedServerName), e.is_tcp()) {
        (Some(s), true) => {
            text.push_str("[TLS, SNI ");
            text.push_str(s);
            text.push_str(", not terminated here]");
        }
        (None, true) => text.push_str("[TCP, no SNI read]"),
        (Some(s), false) => {
            text.push_str("[TLS terminated here, SNI ");
            text.push_str(s);
            text.push(']');
        }
        (None, false) => text.push_str("[plain HTTP]"),
    }
    match port(e.get(Field::DownstreamLocalAddress)) {
        Some(p) => {
            text.push_str(" -> this proxy (listener :");
            text.push_str(p);
            text.push(')');
        }
        None => text.push_str(" -> this proxy"),
    }
    if !reached {
        text.push_str(" -> stopped here");
        return text;
    }
    text.push_str(if e.is_tcp() {
        " -> [the client's bytes as they came: passthrough]"
    } else {
        " -> [HTTP; whether the proxy wrapped it in TLS is not in the line]"
    });
    text.push_str(" -> ");
    text.push_str(e.get(Field::UpstreamCluster).unwrap_or("-"));
    text.push_str(" (");
    text.push_str(e.get(Field::UpstreamHost).unwrap_or("-"));
    text.push(')');
    text
}

/// Warnings about an echoed body, from `judge::explain_headers` and the raw headers.
pub fn header_warnings(explained: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let headers = &explained["headers"];
    let raw = |name: &str| {
        headers
            .as_object()
            .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
    };
    if let Some(id) = raw("X-Envoy-Peer-Metadata-Id")
        && explained["peer_metadata_id"].is_null()
    {
        out.push(format!(
            "X-Envoy-Peer-Metadata-Id `{id}` is malformed: Istio writes <proxy_type>~<ip>~<pod>.<namespace>~<domain>"
        ));
    }
    if raw("X-Envoy-Peer-Metadata").is_some() && explained["peer_metadata"].is_null() {
        out.push("X-Envoy-Peer-Metadata does not decode (base64 of a protobuf Struct)".into());
    }
    if raw("X-Forwarded-Client-Cert").is_some() && explained["xfcc"].is_null() {
        out.push("X-Forwarded-Client-Cert does not parse as Envoy writes it".into());
    }
    for (i, e) in explained["xfcc"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if e["hash_matches"] == Value::Bool(false) {
            out.push(format!(
                "X-Forwarded-Client-Cert element {}: Hash is not the SHA-256 of its Cert, so the two describe different certificates",
                i + 1
            ));
        }
    }
    out
}

/// What a stream of lines held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Lines read, blank and `#` lines left out.
    pub lines: u64,
    /// Lines that were access-log lines.
    pub recognised: u64,
}

/// Reads access-log lines from `input` and writes each one's reading to `out` (a JSON
/// object per line with `json`), in order: memory stays that of a few blocks of lines,
/// whatever the input's size.
pub fn stream(
    input: impl std::io::BufRead,
    out: &mut impl std::io::Write,
    json: bool,
) -> std::io::Result<Counts> {
    // JSON records are independent: blocks of lines are read on this thread, explained
    // on the others, and written here in order. Text keeps one thread (its errors
    // number the lines).
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    if json && workers > 1 {
        return stream_blocks(input, out, workers.min(MAX_WORKERS));
    }
    stream_lines(input, out, json)
}

/// Input bytes per block handed to a worker.
const BLOCK: usize = 1 << 18;
/// Workers at most; with blocks in flight at most twice that, memory stays bounded.
const MAX_WORKERS: usize = 4;

/// `stream` for JSON on several threads: the same records, in the same order.
fn stream_blocks(
    mut input: impl std::io::BufRead,
    out: &mut impl std::io::Write,
    workers: usize,
) -> std::io::Result<Counts> {
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Done>();
        let mut to_workers = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = std::sync::mpsc::channel::<Work>();
            let done = done_tx.clone();
            scope.spawn(move || {
                for (seq, block, records) in rx {
                    // A panic would leave its block's place empty and the writer waiting.
                    let (counts, records) =
                        std::panic::catch_unwind(|| explain_block(&block, records)).unwrap_or_else(
                            |_| {
                                let panicked = "explaining a block of lines panicked";
                                (Err(std::io::Error::other(panicked)), Vec::new())
                            },
                        );
                    if done.send((seq, counts, records, block)).is_err() {
                        return;
                    }
                }
            });
            to_workers.push(tx);
        }
        drop(done_tx);
        let mut results = InOrder {
            done: done_rx,
            finished: Default::default(),
            counts: Counts::default(),
            sent: 0,
            written: 0,
            spare_blocks: Vec::new(),
            spare_records: Vec::new(),
        };
        let mut carry: Vec<u8> = Vec::new();
        let mut eof = false;
        // A read error ends the input: the whole lines before it are still written, as
        // on one thread, and then the error is told.
        let mut read_error = None;
        loop {
            if !eof {
                let mut block = results.spare_blocks.pop().unwrap_or_default();
                block.clear();
                block.extend_from_slice(&carry);
                carry.clear();
                // At least a block's worth read anew: a line longer than a block grows it.
                let size = block.len() + BLOCK;
                eof = match fill(&mut input, &mut block, size) {
                    Ok(eof) => eof,
                    Err(e) => {
                        block.truncate(memchr::memrchr(b'\n', &block).map_or(0, |at| at + 1));
                        read_error = Some(e);
                        true
                    }
                };
                if !eof {
                    let end = block_end(&block);
                    // Nowhere to cut in several blocks' worth (every line continues the
                    // one before, as logfmt's do): the rest goes on this thread, after
                    // what is in flight.
                    if end == 0 && block.len() > 4 * BLOCK {
                        while results.written < results.sent {
                            results.write_or_wait(out)?;
                        }
                        let rest = std::io::Read::chain(std::io::Cursor::new(block), input);
                        let c = stream_lines(rest, out, true)?;
                        results.counts.lines += c.lines;
                        results.counts.recognised += c.recognised;
                        return Ok(results.counts);
                    }
                    carry.extend_from_slice(&block[end..]);
                    block.truncate(end);
                }
                if !block.is_empty() {
                    let records = results.spare_records.pop().unwrap_or_default();
                    let worker = &to_workers[(results.sent % workers as u64) as usize];
                    worker
                        .send((results.sent, block, records))
                        .map_err(|_| worker_stopped())?;
                    results.sent += 1;
                }
            }
            // Wait for a result when enough are in flight, or at the end.
            while results.written < results.sent
                && (eof || results.sent - results.written >= 2 * workers as u64)
            {
                results.write_or_wait(out)?;
            }
            if eof && results.written == results.sent {
                return match read_error {
                    Some(e) => Err(e),
                    None => Ok(results.counts),
                };
            }
        }
    })
}

/// A worker's block, explained into `records` itself: nothing is flushed on the way,
/// so JSON, which writes to `out` only when flushing, writes nothing there.
fn explain_block(block: &[u8], mut records: Vec<u8>) -> (std::io::Result<Counts>, Vec<u8>) {
    records.clear();
    let mut explainer = Explainer::new(true, records, usize::MAX);
    let mut nowhere = std::io::sink();
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', block).chain([block.len()]);
    let explained = ends
        .try_for_each(|end| {
            let line = &block[start..end];
            start = end + 1;
            explainer.line(line, &mut nowhere)
        })
        .and_then(|()| explainer.write_held(&mut nowhere));
    (explained.map(|()| explainer.counts), explainer.pending)
}

/// A block of lines for a worker, and the buffer its records go into.
type Work = (u64, Vec<u8>, Vec<u8>);
/// A worker's counts and records; both buffers come back to be used again (fresh ones
/// would cost a page fault every 4 KiB of output).
type Done = (u64, std::io::Result<Counts>, Vec<u8>, Vec<u8>);

fn worker_stopped() -> std::io::Error {
    std::io::Error::other("an explain worker stopped")
}

/// The workers' results, written in the order their blocks were read.
struct InOrder {
    done: std::sync::mpsc::Receiver<Done>,
    finished: std::collections::BTreeMap<u64, Vec<u8>>,
    counts: Counts,
    sent: u64,
    written: u64,
    spare_blocks: Vec<Vec<u8>>,
    spare_records: Vec<Vec<u8>>,
}

impl InOrder {
    /// Writes the next block's records if they are there, else waits for a result.
    fn write_or_wait(&mut self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        if let Some(mut records) = self.finished.remove(&self.written) {
            out.write_all(&records)?;
            records.clear();
            self.spare_records.push(records);
            self.written += 1;
            return Ok(());
        }
        let (seq, counts, records, block) = self.done.recv().map_err(|_| worker_stopped())?;
        let c = counts?;
        self.counts.lines += c.lines;
        self.counts.recognised += c.recognised;
        self.finished.insert(seq, records);
        self.spare_blocks.push(block);
        Ok(())
    }
}

/// Reads into `block` until it holds `size` bytes or the input ends; whether it ended.
fn fill(
    input: &mut impl std::io::BufRead,
    block: &mut Vec<u8>,
    size: usize,
) -> std::io::Result<bool> {
    while block.len() < size {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(true);
        }
        let take = available.len().min(size - block.len());
        block.extend_from_slice(&available[..take]);
        input.consume(take);
    }
    Ok(false)
}

/// Where a block may end: before a whole line that starts fresh — not blank, not a
/// comment, not the continuation of a wrapped ztunnel line, which one thread would join
/// across blank and comment lines. The rest waits for the next block.
fn block_end(block: &[u8]) -> usize {
    let mut end = match memchr::memrchr(b'\n', block) {
        Some(at) => at,
        None => return 0,
    };
    // `end` ends the last whole line.
    while let Some(before) = memchr::memrchr(b'\n', &block[..end]) {
        let next = String::from_utf8_lossy(&block[before + 1..end]);
        let next = next.trim();
        if !next.is_empty()
            && !next.starts_with('#')
            && !crate::evidence::ztunnel_log::is_continuation(next)
        {
            return before + 1;
        }
        end = before;
    }
    0
}

/// `stream` on this thread, a line at a time.
fn stream_lines(
    mut input: impl std::io::BufRead,
    out: &mut impl std::io::Write,
    json: bool,
) -> std::io::Result<Counts> {
    let mut explainer = Explainer::new(json, Vec::with_capacity(FLUSH_AT + 4096), FLUSH_AT);
    // Each line a slice of the reader's buffer: no copy, and one UTF-8 check, unless
    // it spans two fills (then it is gathered in `spill`).
    let mut spill: Vec<u8> = Vec::new();
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // What was read is written before the error is told.
            Err(e) => {
                explainer.finish(out)?;
                return Err(e);
            }
        };
        if available.is_empty() {
            if !spill.is_empty() {
                explainer.line(&spill, out)?;
            }
            explainer.finish(out)?;
            return Ok(explainer.counts);
        }
        let used = match memchr::memchr(b'\n', available) {
            Some(at) if spill.is_empty() => {
                explainer.line(&available[..at], out)?;
                at + 1
            }
            Some(at) => {
                spill.extend_from_slice(&available[..at]);
                explainer.line(&spill, out)?;
                spill.clear();
                at + 1
            }
            None => {
                spill.extend_from_slice(available);
                available.len()
            }
        };
        input.consume(used);
    }
}

/// `stream`'s state between lines.
struct Explainer {
    counts: Counts,
    /// A ztunnel line is held until the next line shows it was not wrapped.
    ztunnel: Option<String>,
    json: bool,
    /// JSON records not yet written to the output, written once they hold `flush_at`
    /// bytes.
    pending: Vec<u8>,
    flush_at: usize,
}

/// Bytes of JSON records gathered before one write to the output.
const FLUSH_AT: usize = 1 << 16;

impl Explainer {
    fn new(json: bool, pending: Vec<u8>, flush_at: usize) -> Self {
        Self {
            counts: Counts::default(),
            ztunnel: None,
            json,
            pending,
            flush_at,
        }
    }

    fn line(&mut self, bytes: &[u8], out: &mut impl std::io::Write) -> std::io::Result<()> {
        let json = self.json;
        // A CRLF file's line: the CR is the line's end, not a character to show.
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        // Not UTF-8: read with U+FFFD where the bytes were, as text, never obeyed.
        let mut line = match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        };
        // Read for a terminal: the line's control characters are shown, not obeyed
        // (in JSON, as escapes: `emit_json`).
        if !json && let Cow::Owned(safe) = crate::model::terminal_safe(&line) {
            line = Cow::Owned(safe);
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(());
        }
        if let Some(held) = self.ztunnel.as_mut()
            && crate::evidence::ztunnel_log::is_continuation(trimmed)
        {
            held.push(' ');
            held.push_str(trimmed);
            return Ok(());
        }
        self.write_held(out)?;
        self.counts.lines += 1;
        match crate::evidence::access_log::parse_line(&line) {
            Ok(entry) => {
                self.counts.recognised += 1;
                let reading = read_line(&entry);
                if json {
                    self.emit_json(out, |buf| {
                        write_json(&entry, &reading, buf);
                        Ok(())
                    })
                } else {
                    writeln!(out, "{}", summary(&entry))?;
                    write_text(&reading, out)
                }
            }
            // Not Envoy's: ztunnel's connection line (ambient) is read too.
            Err(_) if crate::evidence::ztunnel_log::parse(trimmed).is_some() => {
                self.counts.recognised += 1;
                self.ztunnel = Some(trimmed.to_owned());
                Ok(())
            }
            Err(u) if json => self.emit_json(out, |buf| {
                std::io::Write::write_all(buf, b"{\"error\":")?;
                serde_json::to_writer(&mut *buf, &u.reason)?;
                std::io::Write::write_all(buf, b"}\n")
            }),
            Err(u) => writeln!(
                out,
                "line {}: not an access-log line: {u}",
                self.counts.lines
            ),
        }
    }

    fn finish(&mut self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        self.write_held(out)?;
        out.write_all(&self.pending)?;
        self.pending.clear();
        Ok(())
    }

    /// One JSON record, written for a terminal ([`crate::model::json_terminal_safe`]):
    /// added to `pending`, which goes to `out` once it holds `flush_at` bytes.
    fn emit_json(
        &mut self,
        out: &mut impl std::io::Write,
        write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let pending = &mut self.pending;
        let start = pending.len();
        write(pending)?;
        if may_drive_a_terminal(&pending[start..]) {
            let safe =
                crate::model::json_terminal_safe(&String::from_utf8_lossy(&pending[start..]))
                    .into_owned();
            pending.truncate(start);
            pending.extend_from_slice(safe.as_bytes());
        }
        if pending.len() >= self.flush_at {
            out.write_all(pending)?;
            pending.clear();
        }
        Ok(())
    }

    /// The held ztunnel connection line (joined when it was wrapped), read and written.
    fn write_held(&mut self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let Some(line) = self.ztunnel.take() else {
            return Ok(());
        };
        let Some(c) = crate::evidence::ztunnel_log::parse(&line) else {
            return Ok(());
        };
        let said = ztunnel_summary(&c);
        if self.json {
            self.emit_json(out, |buf| {
                serde_json::to_writer(
                    &mut *buf,
                    &serde_json::json!({"ztunnel": c.fields, "time": c.time, "meaning": [said]}),
                )?;
                std::io::Write::write_all(buf, b"\n")
            })
        } else {
            writeln!(out, "ztunnel {}", c.time)?;
            writeln!(out, "  - {said}")
        }
    }
}

/// Whether JSON text may hold DEL or a C1 control (U+0080..U+009F, which UTF-8 writes
/// as 0xC2 0x80..0x9F) — what serde_json leaves unescaped and a terminal obeys. memchr's
/// vectorised search, since every record is scanned; a hit is checked closely.
fn may_drive_a_terminal(json: &[u8]) -> bool {
    memchr::memchr2(0x7f, 0xc2, json).is_some()
}

/// One ztunnel connection in words: who, to what, through which hop.
pub fn ztunnel_summary(c: &crate::evidence::ztunnel_log::Connection) -> String {
    let f = |k: &str| {
        c.fields
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let from = match (f("src.workload"), f("src.namespace")) {
        (Some(w), Some(n)) => format!("{w} in {n}"),
        _ => f("src.addr").unwrap_or("an unknown source").to_owned(),
    };
    let to = f("dst.service")
        .or(f("dst.hbone_addr"))
        .or(f("dst.addr"))
        .unwrap_or("an unknown destination");
    // A connection to port 15008 is HBONE: to a waypoint or another node's ztunnel.
    let hop = match (f("dst.workload"), f("dst.addr")) {
        (Some(w), Some(a)) if a.ends_with(":15008") => format!(", over HBONE to {w}"),
        (Some(w), _) => format!(", to workload {w}"),
        (None, Some(a)) if a.ends_with(":15008") => {
            ", over HBONE (the line names no destination workload)".to_owned()
        }
        _ => ", straight to the destination (no waypoint)".to_owned(),
    };
    let outcome = match f("error") {
        Some(e) => format!("; failed: {e}"),
        None => format!(
            "; {} bytes sent, {} received",
            f("bytes_sent").unwrap_or("?"),
            f("bytes_recv").unwrap_or("?")
        ),
    };
    format!("ztunnel connection from {from} to {to}{hop}{outcome}")
}

fn write_text(r: &Reading, out: &mut impl std::io::Write) -> std::io::Result<()> {
    for m in &r.meaning {
        writeln!(out, "  - {m}")?;
    }
    writeln!(out, "  hops: {}", r.hops)?;
    for w in &r.warnings {
        writeln!(out, "  warning: {w}")?;
    }
    Ok(())
}

/// A JSON string: as it is when nothing in it needs escaping (nearly every log value),
/// else through serde_json.
fn json_str(v: &str, out: &mut Vec<u8>) {
    if needs_no_escape(v) {
        out.reserve(v.len() + 2);
        out.push(b'"');
        out.extend_from_slice(v.as_bytes());
        out.push(b'"');
    } else {
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, v);
    }
}

/// Whether JSON writes `v` as it is between quotes.
fn needs_no_escape(v: &str) -> bool {
    // Without early exit, so the compiler vectorises it: most values need no escape.
    v.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
    })
}

/// Each field's key as the record writes it, the first opening the object.
const JSON_KEYS: [&str; 24] = [
    "{\"start_time\":",
    ",\"method\":",
    ",\"path\":",
    ",\"protocol\":",
    ",\"response_code\":",
    ",\"response_flags\":",
    ",\"response_code_details\":",
    ",\"connection_termination_details\":",
    ",\"upstream_transport_failure_reason\":",
    ",\"bytes_received\":",
    ",\"bytes_sent\":",
    ",\"duration\":",
    ",\"upstream_service_time\":",
    ",\"x_forwarded_for\":",
    ",\"user_agent\":",
    ",\"request_id\":",
    ",\"authority\":",
    ",\"upstream_host\":",
    ",\"upstream_cluster\":",
    ",\"upstream_local_address\":",
    ",\"downstream_local_address\":",
    ",\"downstream_remote_address\":",
    ",\"requested_server_name\":",
    ",\"route_name\":",
];

/// The line's fields under Istio's JSON access-log names (numbers as numbers), and
/// its reading; written field by field into one buffer, with no tree built per line.
fn write_json(e: &Entry<'_>, r: &Reading, out: &mut Vec<u8>) {
    for (field, key) in Field::ALL.into_iter().zip(JSON_KEYS) {
        out.extend_from_slice(key.as_bytes());
        let numeric = matches!(
            field,
            Field::ResponseCode | Field::BytesReceived | Field::BytesSent | Field::Duration
        );
        match e.get(field) {
            None => out.extend_from_slice(b"null"),
            Some(v) if numeric && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                out.extend_from_slice(v.as_bytes());
            }
            Some(v) => json_str(v, out),
        }
    }
    // The reading as `Reading::to_json` has it, written without building the tree.
    out.extend_from_slice(if r.reached_upstream {
        b",\"reading\":{\"reached_upstream\":true,\"meaning\":["
    } else {
        b",\"reading\":{\"reached_upstream\":false,\"meaning\":["
    });
    for (i, m) in r.meaning.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match m {
            // This file's own sentences: nothing in them needs escaping.
            Cow::Borrowed(text) => {
                debug_assert!(needs_no_escape(text), "{text}");
                out.push(b'"');
                out.extend_from_slice(text.as_bytes());
                out.push(b'"');
            }
            Cow::Owned(text) => json_str(text, out),
        }
    }
    out.extend_from_slice(b"],\"hops\":");
    json_str(&r.hops, out);
    out.extend_from_slice(b",\"warnings\":[");
    for (i, w) in r.warnings.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(w, out);
    }
    out.extend_from_slice(b"]}}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::access_log::parse_line;

    fn read(line: &str) -> Reading {
        read_line(&parse_line(line).expect("a line"))
    }

    #[test]
    fn a_stream_reads_the_same_whatever_its_buffer_and_reads_bytes_that_are_not_utf8() {
        let http = r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/2" 200 - via_upstream - "-" 0 1450 57 57 "10.244.0.7" "curl/7.83.1-DEV" "51ed62d9-1da8-4250-9923-df406ca9fd57" "httpbin.org" "3.213.1.197:80" outbound|80||httpbin.org 10.244.0.6:41144 10.244.0.6:8080 10.244.0.7:55490 - -"#;
        let mut input = Vec::new();
        for i in 0..50 {
            // A user agent with a byte that is not UTF-8, a CRLF, no final newline.
            if i == 7 {
                input.extend_from_slice(&http.as_bytes()[..http.find("7.83").unwrap()]);
                input.push(0xff);
                input.extend_from_slice(&http.as_bytes()[http.find("7.83").unwrap()..]);
                input.extend_from_slice(b"\r\nnot a line\n");
            } else {
                input.extend_from_slice(http.as_bytes());
                if i < 49 {
                    input.push(b'\n');
                }
            }
        }
        let run = |capacity: usize| {
            let mut out = Vec::new();
            let counts = stream(
                std::io::BufReader::with_capacity(capacity, &input[..]),
                &mut out,
                true,
            )
            .unwrap();
            (counts, String::from_utf8(out).unwrap())
        };
        let (counts, whole) = run(1 << 16);
        assert_eq!((counts.lines, counts.recognised), (51, 50));
        assert!(whole.contains("\u{fffd}"), "the byte read as U+FFFD");
        // Lines cut across every buffer boundary read the same.
        for capacity in [7, 64, 255] {
            assert_eq!(run(capacity).1, whole, "capacity {capacity}");
        }
        // Read for a terminal, a CRLF line's CR is its end, not a shown character.
        let mut text = Vec::new();
        stream(format!("{http}\r\n").as_bytes(), &mut text, false).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(!text.contains("{d}") && !text.contains('\r'), "{text}");
    }

    #[test]
    fn a_value_is_written_as_it_is_only_when_json_needs_no_escape_in_it() {
        for b in 0u8..=255 {
            for at in [0, 3, 7, 8, 12, 15] {
                let mut bytes = vec![b'a'; 16];
                bytes[at] = b;
                let Ok(text) = std::str::from_utf8(&bytes) else {
                    continue;
                };
                let plain = b >= 0x20 && b != b'"' && b != b'\\';
                assert_eq!(needs_no_escape(text), plain, "byte {b:#x} at {at}");
            }
        }
        assert!(needs_no_escape("caf\u{e9} \u{1f600}"));
    }

    #[test]
    fn blocks_on_several_threads_write_what_one_thread_writes() {
        let http = r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/2" 200 - via_upstream - "-" 0 1450 57 57 "10.244.0.7" "curl/7.83.1-DEV" "51ed62d9-1da8-4250-9923-df406ca9fd57" "httpbin.org" "3.213.1.197:80" outbound|80||httpbin.org 10.244.0.6:41144 10.244.0.6:8080 10.244.0.7:55490 - -"#;
        let mut input = Vec::new();
        for i in 0..30_000 {
            match i % 97 {
                0 => input.extend_from_slice(b"not a line\n"),
                1 => input.extend_from_slice(b"# a comment\n\n"),
                _ => {
                    input.extend_from_slice(http.as_bytes());
                    input.push(b'\n');
                }
            }
        }
        let mut one = Vec::new();
        let serial = stream_lines(&input[..], &mut one, true).unwrap();
        for workers in [2, 3] {
            let mut many = Vec::new();
            let parallel = stream_blocks(&input[..], &mut many, workers).unwrap();
            assert_eq!(parallel, serial);
            assert!(many == one, "{workers} workers wrote other bytes");
        }
        assert!(input.len() > 2 * BLOCK, "the input spans blocks");
        // A read error: the whole lines before it are written, then the error is told.
        struct FailsAfter<'a>(&'a [u8]);
        impl std::io::Read for FailsAfter<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("disk gone"));
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let cut = &input[..input.len() / 2 + 17];
        let mut before = Vec::new();
        let lines_before = stream_lines(
            &cut[..=memchr::memrchr(b'\n', cut).unwrap()],
            &mut before,
            true,
        )
        .unwrap();
        let mut many = Vec::new();
        let failed = stream_blocks(std::io::BufReader::new(FailsAfter(cut)), &mut many, 2);
        assert!(failed.is_err_and(|e| e.to_string() == "disk gone"));
        assert!(many == before, "{} records", lines_before.lines);
        // A block ends before a line that starts fresh, never inside a wrapped one.
        assert_eq!(block_end(b"a\nb\nc\n"), 4, "before the last whole line");
        assert_eq!(
            block_end(b"a\nb\nsrc.addr=1 dst.addr=2\n"),
            2,
            "before b, not inside"
        );
        assert_eq!(block_end(b"one line without its end"), 0);
    }

    #[test]
    fn each_json_key_is_its_field_s_name() {
        for (i, (field, key)) in Field::ALL.into_iter().zip(JSON_KEYS).enumerate() {
            let open = if i == 0 { "{" } else { "," };
            assert_eq!(key, format!("{open}\"{}\":", field.name()));
        }
        // A record is the line's JSON and its reading, as to_json would write them.
        let line = r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/2" 200 - via_upstream - "-" 0 1450 57 57 "10.244.0.7" "curl/7.83.1-DEV" "51ed62d9-1da8-4250-9923-df406ca9fd57" "httpbin.org" "3.213.1.197:80" outbound|80||httpbin.org 10.244.0.6:41144 10.244.0.6:8080 10.244.0.7:55490 - -"#;
        let entry = parse_line(line).unwrap();
        let reading = read_line(&entry);
        let mut out = Vec::new();
        write_json(&entry, &reading, &mut out);
        let written: Value = serde_json::from_slice(&out).unwrap();
        let mut want = entry.to_json();
        want["reading"] = reading.to_json();
        assert_eq!(written, want);
    }

    #[test]
    fn json_with_del_or_a_c1_control_is_escaped_and_other_text_passes_as_is() {
        let emitted = |text: &str| {
            let mut out = Vec::new();
            let mut explainer = Explainer::new(true, Vec::new(), FLUSH_AT);
            explainer
                .emit_json(&mut out, |buf| {
                    json_str(text, buf);
                    Ok(())
                })
                .unwrap();
            out.extend_from_slice(&explainer.pending);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(emitted("a\u{7f}b"), "\"a\\u007fb\"");
        assert_eq!(emitted("a\u{9b}2Jb"), "\"a\\u009b2Jb\"");
        // Latin-1 letters share the lead byte 0xC2 with C1 controls, and stay.
        assert_eq!(emitted("\u{a9} caf\u{e9}"), "\"\u{a9} caf\u{e9}\"");
        assert!(!may_drive_a_terminal(b"{\"plain\":\"ascii\"}"));
        assert!(may_drive_a_terminal("\u{85}".as_bytes()));
    }

    #[test]
    fn lines_that_never_left_the_proxy_say_so() {
        let blackhole = read(
            r#"[2024-06-21T19:50:33.667Z] "- - -" 0 UH no_healthy_upstream - "-" 0 0 0 - "-" "-" "-" "-" "-" BlackHoleCluster - 10.96.0.1:443 10.244.0.7:5555 - -"#,
        );
        assert!(!blackhole.reached_upstream);
        assert!(blackhole.meaning[0].starts_with("BlackHoleCluster: no ServiceEntry"));
        assert!(blackhole.meaning.iter().any(|m| m.contains("(UH)")));
        assert!(
            blackhole.hops.ends_with("stopped here"),
            "{}",
            blackhole.hops
        );

        let blocked = read(
            r#"[2024-06-21T19:50:33.667Z] "GET /headers HTTP/1.1" 502 - direct_response - "-" 0 0 0 - "-" "curl/8" "id" "httpbin.org" "-" - - 10.96.0.1:80 10.244.0.7:5555 - block_all"#,
        );
        assert!(!blocked.reached_upstream);
        assert!(
            blocked.meaning[0].contains("route block_all"),
            "{:?}",
            blocked.meaning
        );

        let no_chain = read(
            r#"[2024-06-21T19:50:33.667Z] "- - -" 0 NR filter_chain_not_found - "-" 0 0 0 - "-" "-" "-" "-" "-" - - 10.244.0.6:8443 10.244.0.7:5555 - -"#,
        );
        assert!(!no_chain.reached_upstream);
        assert!(
            no_chain
                .meaning
                .iter()
                .any(|m| m.contains("no filter chain"))
        );
        assert!(
            no_chain
                .meaning
                .iter()
                .any(|m| m.starts_with("no route (NR)"))
        );
    }

    #[test]
    fn tls_is_claimed_only_where_the_line_shows_it() {
        let plain = read(
            r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/2" 200 - via_upstream - "-" 0 1450 57 57 "10.244.0.7" "curl/7.83.1-DEV" "51ed62d9-1da8-4250-9923-df406ca9fd57" "httpbin.org" "3.213.1.197:80" outbound|80||httpbin.org 10.244.0.6:41144 10.244.0.6:8080 10.244.0.7:55490 - -"#,
        );
        assert!(plain.reached_upstream);
        assert_eq!(
            plain.hops,
            "client -> [plain HTTP] -> this proxy (listener :8080) -> [HTTP; whether the proxy wrapped it in TLS is not in the line] -> outbound|80||httpbin.org (3.213.1.197:80)"
        );
        let passthrough = read(
            r#"[2024-06-21T19:42:17.330Z] "- - -" 0 - - - "-" 839 5356 218 - "-" "-" "-" "-" "3.211.196.247:443" outbound|443||httpbin.org 10.244.0.6:49404 10.244.0.6:8443 10.244.0.7:38690 httpbin.org -"#,
        );
        assert!(
            passthrough
                .hops
                .contains("[TLS, SNI httpbin.org, not terminated here]")
        );
        assert!(passthrough.hops.contains("passthrough"));
        let terminated = read(
            r#"[2024-06-21T19:50:33.667Z] "GET /headers HTTP/1.1" 200 - via_upstream - "-" 0 2997 109 108 "10.244.0.7" "curl/7.83.1-DEV" "0db0a05e-6c1e-4a8a-b932-0f582340d36e" "httpbin.org" "3.211.196.247:443" outbound|443||httpbin.org 10.244.0.6:42264 10.244.0.6:8443 10.244.0.7:54554 httpbin.org -"#,
        );
        assert!(
            terminated
                .hops
                .contains("[TLS terminated here, SNI httpbin.org]")
        );
        assert!(!terminated.hops.contains("origination"));
    }

    #[test]
    fn a_ztunnel_line_says_whether_it_went_through_a_waypoint() {
        let via = r#"2026-12-01T12:00:00Z info access connection complete src.addr=10.244.0.7:55490 src.workload="curl" src.namespace="a" dst.addr=10.244.0.12:15008 dst.hbone_addr=240.240.0.3:80 dst.service="httpbin.org" dst.workload="waypoint-x" direction="outbound" bytes_sent=84 bytes_recv=612"#;
        let direct = r#"2026-12-01T12:00:00Z info access connection complete src.workload="curl" src.namespace="a" dst.addr=172.18.0.9:80 direction="outbound" bytes_sent=84 bytes_recv=612"#;
        let mut out = Vec::new();
        let counts = stream(format!("{via}\n{direct}\n").as_bytes(), &mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(counts.recognised, 2, "{text}");
        assert!(text.contains("from curl in a to httpbin.org, over HBONE to waypoint-x; 84 bytes sent, 612 received"), "{text}");
        assert!(
            text.contains("to 172.18.0.9:80, straight to the destination (no waypoint)"),
            "{text}"
        );
        let mut json = Vec::new();
        stream(via.as_bytes(), &mut json, true).unwrap();
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["ztunnel"]["dst.workload"], "waypoint-x");
    }

    #[test]
    fn a_wrapped_tab_separated_ztunnel_line_is_read_as_one_connection() {
        // As ztunnel writes it (tabs) and as a doc wraps it (indented continuations),
        // between two other lines.
        let input = "not a line\n2024-04-11T15:38:42.182974Z\tinfo\taccess\tconnection complete\tsrc.addr=10.244.0.24:46238 src.workload=\"shell\" src.namespace=\"default\"\n    dst.addr=10.244.0.42:15008 dst.hbone_addr=10.96.108.116:80\n    direction=\"outbound\" bytes_sent=67 bytes_recv=490\n[2024-06-21T19:42:17.330Z] \"- - -\" 0 - - - \"-\" 839 5356 218 - \"-\" \"-\" \"-\" \"-\" \"3.211.196.247:443\" outbound|443||httpbin.org 10.244.0.6:49404 10.244.0.6:8443 10.244.0.7:38690 httpbin.org -\n";
        let mut out = Vec::new();
        let counts = stream(input.as_bytes(), &mut out, true).unwrap();
        assert_eq!((counts.lines, counts.recognised), (3, 2));
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines[0]["error"].is_string());
        let z = &lines[1]["ztunnel"];
        assert_eq!(z["src.workload"], "shell");
        assert_eq!(z["dst.hbone_addr"], "10.96.108.116:80");
        assert_eq!(z["bytes_recv"], "490");
        assert!(
            lines[1]["meaning"][0]
                .as_str()
                .unwrap()
                .contains("over HBONE (the line names no destination workload)"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2]["upstream_cluster"], "outbound|443||httpbin.org");
    }

    #[test]
    fn the_stream_writes_what_the_line_reader_reads() {
        let input = "# pasted\n\n[2024-06-21T19:24:00.453Z] \"GET /headers HTTP/2\" 200 - via_upstream - \"-\" 0 1450 57 57 \"10.244.0.7\" \"curl/7.83.1-DEV\" \"51ed62d9-1da8-4250-9923-df406ca9fd57\" \"httpbin.org\" \"3.213.1.197:80\" outbound|80||httpbin.org 10.244.0.6:41144 10.244.0.6:8080 10.244.0.7:55490 - -\nnot a line\n";
        let mut out = Vec::new();
        let counts = stream(input.as_bytes(), &mut out, true).expect("stream");
        assert_eq!(
            counts,
            Counts {
                lines: 2,
                recognised: 1
            }
        );
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        let entry = crate::evidence::access_log::parse_line(input.lines().nth(2).expect("line"))
            .expect("parses");
        let mut expected = entry.to_json();
        expected["reading"] = read_line(&entry).to_json();
        assert_eq!(lines[0], expected, "the same as the tree form");
        assert!(lines[1]["error"].is_string());
    }

    #[test]
    fn a_wrong_hash_and_a_malformed_peer_id_are_warnings() {
        let explained = serde_json::json!({
            "peer_metadata_id": null,
            "peer_metadata": null,
            "xfcc": [{"hash_matches": false}],
            "headers": {"X-Envoy-Peer-Metadata-Id": "router-10.0.0.1", "X-Forwarded-Client-Cert": "Hash=00"},
        });
        let warnings = header_warnings(&explained);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("`router-10.0.0.1` is malformed"));
        assert!(warnings[1].contains("Hash is not the SHA-256 of its Cert"));
    }
}
