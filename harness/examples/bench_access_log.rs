//! Access-log parsing throughput on one core:
//! `cargo run --release -p egress-harness --example bench_access_log`.

use std::time::Instant;

use egress_harness::evidence::access_log::parse_line;

const LINES: [&str; 2] = [
    r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/2" 200 - via_upstream - "-" 0 1450 57 57 "10.244.0.7" "curl/7.83.1-DEV" "51ed62d9-1da8-4250-9923-df406ca9fd57" "httpbin.org" "3.213.1.197:80" outbound|80||httpbin.org 10.244.0.6:41144 10.244.0.6:8080 10.244.0.7:55490 - -"#,
    r#"[2024-06-21T21:22:27.560Z] "- - -" 0 - - - "-" 940 5946 156 - "-" "-" "-" "-" "18.211.234.122:443" outbound|443||httpbin.org 10.244.0.6:50356 10.244.0.6:8443 10.244.0.7:51628 httpbin.org -"#,
];

fn main() {
    let log: Vec<&str> = (0..2_000_000).map(|i| LINES[i % 2]).collect();
    let start = Instant::now();
    let mut read = 0usize;
    for line in &log {
        read += usize::from(parse_line(std::hint::black_box(line)).is_ok());
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{read} of {} lines in {secs:.3}s: {:.2} million lines/s on one core",
        log.len(),
        log.len() as f64 / secs / 1e6
    );
}
