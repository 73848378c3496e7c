//! The hop diagram of one request, as inline SVG: the parts of the path as boxes, each
//! hop an arrow coloured and labelled by the protocol seen on it, dashed where it was
//! inferred rather than seen. Hovering an arrow shows the evidence it was read from.

use maud::{Markup, html};

use super::results::{Hop, Protocol};

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 96.0;
const BOX_W: f64 = 124.0;
const BOX_H: f64 = 40.0;
const BOX_Y: f64 = 44.0;

/// The colour of a protocol, shared with the legend.
pub fn colour(p: Protocol) -> &'static str {
    match p {
        Protocol::Http => "#c2410c",
        Protocol::Tls => "#1d4ed8",
        Protocol::Mtls => "#15803d",
        Protocol::TlsOrigination => "#0e7490",
        Protocol::MtlsOrigination => "#047857",
        Protocol::Passthrough => "#7e22ce",
        Protocol::MtlsAroundTls => "#4d7c0f",
        Protocol::Blocked => "#b91c1c",
        Protocol::NotReached | Protocol::Unknown => "#6b7280",
    }
}

pub fn diagram(hops: &[Hop]) -> Markup {
    let Some(first) = hops.first() else {
        return html! { p.muted { "No path: nothing was observed." } };
    };
    let mut nodes = vec![first.from];
    nodes.extend(hops.iter().map(|h| h.to));
    let step = if nodes.len() > 1 {
        (WIDTH - 2.0 * 8.0 - BOX_W) / (nodes.len() - 1) as f64
    } else {
        0.0
    };
    let x = |i: usize| 8.0 + i as f64 * step;
    let summary: Vec<String> = hops
        .iter()
        .map(|h| {
            format!(
                "{} to {}: {}",
                h.from.label(),
                h.to.label(),
                h.protocol.label()
            )
        })
        .collect();
    html! {
        svg.hops xmlns="http://www.w3.org/2000/svg" role="img" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
            width=(WIDTH) height=(HEIGHT) aria-label=(summary.join("; ")) {
            @for (i, node) in nodes.iter().enumerate() {
                g.node {
                    rect x=(x(i)) y=(BOX_Y) width=(BOX_W) height=(BOX_H) rx="6"
                        fill="#f8fafc" stroke="#334155" stroke-width="1.5" {}
                    text x=(x(i) + BOX_W / 2.0) y=(BOX_Y + BOX_H / 2.0 + 5.0) text-anchor="middle"
                        font-size="14" fill="#0f172a" { (node.label()) }
                }
            }
            @for (i, hop) in hops.iter().enumerate() {
                @let (from, to) = (x(i) + BOX_W, x(i + 1));
                @let y = BOX_Y + BOX_H / 2.0;
                @let c = colour(hop.protocol);
                g.hop data-protocol=(serde_json::to_value(hop.protocol).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) {
                    title { (hop.protocol.label()) ": " (hop.evidence) @if hop.inferred { " (inferred)" } }
                    line x1=(from + 2.0) y1=(y) x2=(to - 9.0) y2=(y) stroke=(c) stroke-width="3"
                        stroke-dasharray=[hop.inferred.then_some("7 5")] {}
                    polygon points=(format!("{},{} {},{} {},{}", to - 2.0, y, to - 11.0, y - 6.0, to - 11.0, y + 6.0))
                        fill=(c) {}
                    text x=((from + to) / 2.0) y=(BOX_Y - 10.0) text-anchor="middle" font-size="13"
                        font-weight="600" fill=(c) { (hop.protocol.label()) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::results::Node;

    #[test]
    fn one_box_per_part_one_arrow_per_hop_dashed_when_inferred() {
        let hops = vec![
            Hop {
                from: Node::Client,
                to: Node::Sidecar,
                protocol: Protocol::Http,
                evidence: "curl http://httpbin.org/headers".into(),
                inferred: false,
            },
            Hop {
                from: Node::Sidecar,
                to: Node::Upstream,
                protocol: Protocol::Passthrough,
                evidence: "a <line> & more".into(),
                inferred: true,
            },
        ];
        let svg = diagram(&hops).into_string();
        assert_eq!(svg.matches("<rect").count(), 3);
        assert_eq!(svg.matches("<line").count(), 2);
        assert_eq!(svg.matches("stroke-dasharray").count(), 1);
        assert!(svg.contains("TLS passthrough"));
        assert!(
            svg.contains("a &lt;line&gt; &amp; more"),
            "evidence escaped: {svg}"
        );
    }
}
