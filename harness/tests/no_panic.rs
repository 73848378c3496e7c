//! Every parser takes arbitrary input without panicking: real Istio output, cut,
//! spliced and with random bytes flipped, many thousand times (deterministic seed).

use egress_harness::evidence::{access_log, headers::EchoedHeaders, peer_metadata, xfcc};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

fn seeds() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/recordings");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for o in r["requests"].as_array().unwrap() {
            out.extend(o["body"].as_str().map(str::to_owned));
            out.extend(
                o["gateway_log"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l.as_str().map(str::to_owned)),
            );
        }
    }
    out
}

#[test]
fn parsers_never_panic_on_mangled_input() {
    let seeds = seeds();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    const BYTES: &[u8] = b" \"[]{}\\;,=%~.-|:0aZ\n\t\x00\xff";
    for _ in 0..20_000 {
        let mut bytes = seeds[rng.below(seeds.len())].clone().into_bytes();
        for _ in 0..=rng.below(6) {
            match rng.below(4) {
                0 if !bytes.is_empty() => bytes.truncate(rng.below(bytes.len())),
                1 if !bytes.is_empty() => {
                    let at = rng.below(bytes.len());
                    bytes[at] = BYTES[rng.below(BYTES.len())];
                }
                2 => {
                    let other = seeds[rng.below(seeds.len())].as_bytes();
                    let at = rng.below(other.len());
                    bytes.extend_from_slice(&other[at..]);
                }
                _ => bytes.insert(rng.below(bytes.len() + 1), BYTES[rng.below(BYTES.len())]),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = access_log::parse_line(&text).map(|e| e.to_json());
        if let Ok(h) = EchoedHeaders::parse(&text) {
            let _ = egress_harness::judge::explain_headers(&h);
        }
        if let Ok(elements) = xfcc::parse(&text) {
            for e in &elements {
                let _ = (e.cert(), e.hash_matches());
            }
        }
        let _ = peer_metadata::decode(&text);
        let _ = peer_metadata::PeerId::parse(&text);
    }
}
