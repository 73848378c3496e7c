//! Envoy's admin `/stats` in its text form: one `name: value` per line
//! (envoy source/server/admin/stats_render.cc, StatsTextRender), e.g.
//! `cluster.outbound|443||www.wikipedia.org.upstream_cx_total: 2` as istio.io's
//! wildcard-egress-hosts task prints it. Histograms (`P0(...)` summaries) and
//! anything else that is not a whole number are left out.

use std::collections::BTreeMap;

/// Counters and gauges by name.
pub fn parse(text: &str) -> BTreeMap<String, i64> {
    text.lines()
        .filter_map(|line| {
            // Names hold `:` only as `::` never; the value follows the last ": ".
            let (name, value) = line.trim_end().rsplit_once(": ")?;
            let value = value.trim().parse::<i64>().ok()?;
            (!name.is_empty()).then(|| (name.trim().to_owned(), value))
        })
        .collect()
}

/// `name: value` lines for `stats`, as Envoy writes them (sorted by name).
pub fn render(stats: &BTreeMap<String, i64>) -> String {
    stats.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_and_histograms_skipped() {
        let text = "cluster.outbound|443||www.wikipedia.org.upstream_cx_total: 2\ncluster.outbound|443||www.wikipedia.org.upstream_cx_length_ms: P0(nan,1.0) P25(nan,1.025)\nserver.live: 1\n";
        let stats = parse(text);
        assert_eq!(
            stats["cluster.outbound|443||www.wikipedia.org.upstream_cx_total"],
            2
        );
        assert_eq!(stats["server.live"], 1);
        assert_eq!(stats.len(), 2);
        assert_eq!(parse(&render(&stats)), stats);
    }
}
