//! `egress explain --format json` end to end, beside `grep -c` on the same file:
//! `cargo run --release -p egress-harness --example bench_explain [LINES]`.
//! The input is a file of Istio's default TEXT format, HTTP and TCP lines mixed; it is
//! read through the same buffered stream the command uses and written to /dev/null;
//! each side's best of three runs. It fails when explain takes more than 5x grep's time
//! (a ratio measured in one run: absolute rates do not carry between machines) or more
//! than 64 MiB.

use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

const LINES: [&str; 4] = [
    r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/2" 200 - via_upstream - "-" 0 1450 57 57 "10.244.0.7" "curl/7.83.1-DEV" "51ed62d9-1da8-4250-9923-df406ca9fd57" "httpbin.org" "3.213.1.197:80" outbound|80||httpbin.org 10.244.0.6:41144 10.244.0.6:8080 10.244.0.7:55490 - -"#,
    r#"[2024-06-21T21:22:27.560Z] "- - -" 0 - - - "-" 940 5946 156 - "-" "-" "-" "-" "18.211.234.122:443" outbound|443||httpbin.org 10.244.0.6:50356 10.244.0.6:8443 10.244.0.7:51628 httpbin.org -"#,
    r#"[2024-06-21T19:50:33.667Z] "GET /headers HTTP/1.1" 200 - via_upstream - "-" 0 2997 109 108 "10.244.0.7" "curl/7.83.1-DEV" "0db0a05e-6c1e-4a8a-b932-0f582340d36e" "httpbin.org" "3.211.196.247:443" outbound|443||httpbin.org 10.244.0.6:42264 10.244.0.6:8443 10.244.0.7:54554 httpbin.org -"#,
    r#"[2024-06-21T19:50:34.001Z] "GET /headers HTTP/1.1" 502 - direct_response - "-" 0 0 0 - "-" "curl/8.5.0" "8a3f2c1e-0b7d-4e6a-9c5f-1d2e3f4a5b6c" "httpbin.org" "-" - - 10.96.0.1:80 10.244.0.7:5555 - block_all"#,
];

fn main() -> Result<(), String> {
    let count: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|_| format!("{n}: not a line count"))?,
        None => 1_000_000,
    };
    let path =
        std::env::temp_dir().join(format!("egress-bench-explain-{}.log", std::process::id()));
    {
        let file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
        let mut w = BufWriter::new(file);
        for i in 0..count {
            writeln!(w, "{}", LINES[i % LINES.len()]).map_err(|e| e.to_string())?;
        }
        w.flush().map_err(|e| e.to_string())?;
    }

    // Written out before timing, so the disk's writeback is not measured; best of 3.
    std::fs::File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(|e| e.to_string())?;
    let mut explain = f64::MAX;
    let mut counts = egress_harness::explain::Counts::default();
    for _ in 0..3 {
        let start = Instant::now();
        let input = BufReader::with_capacity(
            1 << 16,
            std::fs::File::open(&path).map_err(|e| e.to_string())?,
        );
        let sink = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|e| e.to_string())?;
        let mut out = BufWriter::with_capacity(1 << 16, sink);
        counts =
            egress_harness::explain::stream(input, &mut out, true).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        explain = explain.min(start.elapsed().as_secs_f64());
    }

    // The share of reading and parsing, to say where explain's time goes.
    let mut parse_secs = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let mut input = BufReader::with_capacity(
            1 << 16,
            std::fs::File::open(&path).map_err(|e| e.to_string())?,
        );
        // As `explain::stream` reads: each line a slice of the buffer.
        let mut parsed = 0usize;
        let mut spill: Vec<u8> = Vec::new();
        let mut parse = |bytes: &[u8]| {
            if let Ok(text) = std::str::from_utf8(bytes) {
                parsed +=
                    usize::from(egress_harness::evidence::access_log::parse_line(text).is_ok());
            }
        };
        loop {
            let available = std::io::BufRead::fill_buf(&mut input).map_err(|e| e.to_string())?;
            if available.is_empty() {
                break;
            }
            let used = match memchr::memchr(b'\n', available) {
                Some(at) if spill.is_empty() => {
                    parse(&available[..at]);
                    at + 1
                }
                Some(at) => {
                    spill.extend_from_slice(&available[..at]);
                    parse(&spill);
                    spill.clear();
                    at + 1
                }
                None => {
                    spill.extend_from_slice(available);
                    available.len()
                }
            };
            std::io::BufRead::consume(&mut input, used);
        }
        std::hint::black_box(parsed);
        parse_secs = parse_secs.min(start.elapsed().as_secs_f64());
    }

    let mut grep_secs = f64::MAX;
    let mut grep = None;
    for _ in 0..3 {
        let start = Instant::now();
        let out = std::process::Command::new("grep")
            .args(["-c", "httpbin"])
            .arg(&path)
            .output()
            .map_err(|e| format!("grep: {e}"))?;
        grep_secs = grep_secs.min(start.elapsed().as_secs_f64());
        grep = Some(out);
    }
    let grep = grep.ok_or("grep did not run")?;
    if counts.recognised as usize != count {
        return Err(format!("{} of {count} lines recognised", counts.recognised));
    }
    let rate = count as f64 / explain / 1e6;
    println!(
        "egress explain --format json: {count} lines in {explain:.3}s, {rate:.2} million lines/s"
    );
    let ratio = explain / grep_secs;
    println!(
        "grep -c on the same file: {grep_secs:.3}s ({} matched); explain takes {ratio:.1}x grep's time",
        String::from_utf8_lossy(&grep.stdout).trim(),
    );
    // explain runs its JSON on every core; this share is one thread's.
    println!(
        "reading and parsing the lines alone, on one thread: {parse_secs:.3}s ({:.0} % of explain's time on {} thread(s))",
        100.0 * parse_secs / explain,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    // Streaming: the peak memory is that of a few blocks of lines, not of the input.
    let peak_kib: u64 = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let input_mib = std::fs::metadata(&path).map(|m| m.len() >> 20).unwrap_or(0);
    println!(
        "peak memory of this process: {} MiB for a {input_mib} MiB input",
        peak_kib >> 10
    );
    if peak_kib >> 10 > 64 {
        return Err(format!(
            "{} MiB at peak: the input is not streamed",
            peak_kib >> 10
        ));
    }
    let _ = std::fs::remove_file(&path);
    // A ratio, not a rate: absolute rates do not carry between machines (issue 25).
    if ratio > 5.0 {
        return Err(format!(
            "explain takes {ratio:.1}x grep -c's time on the same file; the bound is 5x"
        ));
    }
    Ok(())
}
