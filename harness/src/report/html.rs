//! `index.html`: one self-contained page (no scripts, no external files). What needs a
//! look first (with the command that reruns it), then the scenario × version matrix;
//! then per scenario and version the path each request took (the hop diagram), its
//! expectations with their verdicts and links to the evidence, passing cases folded.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::baseline::Change;
use super::results::{Case, Outcome, Protocol, RequestResult, Results, Source, Status};
use super::svg;

const STYLE: &str = r#"
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #0f172a; margin: 0; background: #f1f5f9; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 4px; }
h3 { font-size: 16px; margin: 16px 0 6px; }
.muted { color: #64748b; }
.card { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e2e8f0; vertical-align: top; }
th { font-size: 13px; color: #475569; font-weight: 600; }
td code, .evidence code { font-size: 12.5px; word-break: break-all; }
.matrix td.status { text-align: center; font-weight: 600; }
.matrix a { color: inherit; text-decoration: none; }
.badge { display: inline-block; border-radius: 999px; padding: 1px 10px; font-size: 13px; font-weight: 600; }
.pass { background: #dcfce7; color: #166534; }
.fail { background: #fee2e2; color: #991b1b; }
.error { background: #fef3c7; color: #92400e; }
.unexpected-pass { background: #fce7f3; color: #9d174d; outline: 2px solid #db2777; }
.flaky { background: #ffedd5; color: #9a3412; }
.known-failure { background: #e0e7ff; color: #3730a3; }
.skipped, .none { background: #f1f5f9; color: #64748b; }
tr.verdict-fail td { background: #fef2f2; }
tr.verdict-not-observed td { color: #64748b; }
pre { background: #0f172a; color: #e2e8f0; padding: 10px 12px; border-radius: 6px; white-space: pre-wrap; font-size: 13px; }
.legend span { display: inline-block; margin: 2px 14px 2px 0; font-size: 13px; }
.legend i { display: inline-block; width: 22px; height: 4px; vertical-align: middle; margin-right: 6px; }
svg.hops { max-width: 100%; height: auto; display: block; margin: 6px 0; }
details summary { cursor: pointer; color: #475569; }
details.case-fold { margin: 8px 0; }
table.attention .rerun-line { margin-top: 4px; }
table.attention code.rerun { font-size: 12.5px; background: #f1f5f9; padding: 1px 4px; border-radius: 4px; }
"#;

pub fn render(results: &Results, changes: Option<&[Change]>) -> String {
    let versions = results.versions();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Istio egress conformance · " (results.run_id) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main {
                    header.card {
                        h1 { "Istio egress conformance" }
                        p.muted {
                            "Run " code { (results.run_id) } " · " (results.started) " to " (results.finished)
                            " · harness " (results.harness)
                            @if let Some(shard) = &results.shard { " · shard " (shard) }
                            @if !results.merged_from.is_empty() { " · merged from " (results.merged_from.join(", ")) }
                        }
                        p #totals {
                            @if results.cases.is_empty() { "No cases ran." }
                            @for status in Status::ALL {
                                @let n = results.count(status);
                                @if n > 0 { span.badge.(class(status)) { (n) " " (status.label()) } " " }
                            }
                        }
                        @if let Some(t) = &results.timing {
                            p.muted #timing { (super::markdown::time_split(t).replace("**", "")) }
                        }
                        @if let Some(notice) = results.mode_notice() {
                            p.mode { strong { (notice) } }
                        }
                        @if results.interrupted {
                            p.badge.error { "Interrupted: cases still running are errors." }
                        }
                        @if !results.problems.is_empty() {
                            // Many problems (e.g. evidence a merge could not copy) must not
                            // push the matrix out of sight.
                            details.problems open[results.problems.len() <= 2] {
                                summary { (results.problems.len()) " problem(s) with the run" }
                                @for problem in &results.problems { pre.problem { (problem) } }
                            }
                        }
                    }
                    (needs_a_look(results))
                    section.card #matrix {
                        h2 { "Scenarios × Istio versions" }
                        table.matrix {
                            thead { tr {
                                th { "Scenario" }
                                @for v in &versions {
                                    th { @match v { Some(v) => { "Istio " (v) }, None => { "no version" } } }
                                }
                            } }
                            tbody {
                                @for scenario in results.scenarios() {
                                    tr {
                                        th { a href=(format!("#{}", anchor(scenario, None))) { (scenario) } }
                                        @for v in &versions {
                                            @match results.case(scenario, v.as_deref()) {
                                                Some(case) => td.status.(class(case.status)) {
                                                    a href=(format!("#{}", anchor(scenario, v.as_deref()))) {
                                                        (case.status_text())
                                                    }
                                                },
                                                None => td.status.none { "·" },
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(changes) = changes {
                        section.card #changes {
                            h2 { "Changed since the baseline" }
                            @if changes.is_empty() { p.muted { "No verdict changed." } }
                            @else {
                                table { thead { tr { th { "Scenario" } th { "Was" } th { "Now" } } }
                                    tbody { @for c in changes { tr {
                                        td { (c.scenario) }
                                        td { span.badge.(class(c.was)) { (c.was.label()) } " on " (c.was_on) }
                                        td { @match c.now {
                                            Some(now) => { span.badge.(class(now)) { (now.label()) } " on " (c.now_on) },
                                            None => span.badge.none { "not run: disappeared" },
                                        } }
                                    } } }
                                }
                            }
                        }
                    }
                    section.card.legend {
                        h2 { "Reading the paths" }
                        p.muted { "Each arrow is a hop as the evidence shows it (hover it for the log line or header it was read from). Dashed: inferred from the scenario, not seen." }
                        @for p in LEGEND {
                            span { i style=(format!("background:{}", svg::colour(*p))) {} (p.label()) }
                        }
                    }
                    @for scenario in results.scenarios() {
                        (scenario_section(results, scenario, &versions))
                    }
                }
            }
        }
    };
    page.into_string()
}

const LEGEND: &[Protocol] = &[
    Protocol::Http,
    Protocol::Tls,
    Protocol::Mtls,
    Protocol::TlsOrigination,
    Protocol::MtlsOrigination,
    Protocol::Passthrough,
    Protocol::MtlsAroundTls,
    Protocol::Blocked,
    Protocol::Unknown,
];

fn scenario_section(results: &Results, scenario: &str, versions: &[Option<String>]) -> Markup {
    let cases: Vec<&Case> = versions
        .iter()
        .filter_map(|v| results.case(scenario, v.as_deref()))
        .collect();
    let Some(first) = cases.first() else {
        return html! {};
    };
    html! {
        section.card.scenario id=(anchor(scenario, None)) {
            h2 { (scenario) }
            p { (first.description) }
            p.muted {
                @if let Some(section) = &first.section { "Article section: " (section) }
                @if !first.tags.is_empty() { " · tags: " (first.tags.join(", ")) }
            }
            @for case in cases {
                @if case.needs_a_look() { (case_block(case)) }
                @else {
                    // Passing (and expected) cases folded: the page is about the rest.
                    details.case-fold {
                        summary { @match &case.istio { Some(v) => { "Istio " (v) }, None => { "No Istio version" } }
                            " " span.badge.(class(case.status)) { (case.status_text()) } }
                        (case_block(case))
                    }
                }
            }
        }
    }
}

/// Failures, errors, flaky and unexpectedly passing cases, each with the command
/// that reruns it and its evidence: what a nightly reader opens the page for.
fn needs_a_look(results: &Results) -> Markup {
    let groups = results.needing_a_look_grouped();
    html! {
        section.card #needs-a-look {
            h2 { "Needs a look" }
            @if groups.is_empty() {
                p.muted { "Nothing: every case passed, was skipped, or failed as a known issue expects." }
            } @else {
                table.attention {
                    thead { tr { th { "Case" } th { "Status" } th { "Why, and how to rerun it" } th { "Evidence" } } }
                    // Errors of one cause share a row: one problem, several cases.
                    tbody { @for group in &groups { @let case = group[0]; tr {
                        td { @for (i, c) in group.iter().enumerate() {
                            @if i > 0 { br; }
                            a href=(format!("#{}", anchor(&c.scenario, c.istio.as_deref()))) {
                                (c.scenario) @if let Some(v) = &c.istio { " on " (v) } }
                        } }
                        td { span.badge.(class(case.status)) { (case.status_text()) }
                            @if group.len() > 1 { " " span.muted { (group.len()) " cases, one cause" } } }
                        td { (first_line(case)) @for c in group { div.rerun-line { code.rerun { (c.rerun()) } } } }
                        td { @match case.evidence.first() {
                            Some(e) => a href=(safe_link(e)) { code { (e) } },
                            None => span.muted { "none kept" },
                        } }
                    } } }
                }
            }
        }
    }
}

/// The first line of a case's message, cut to fit a table cell.
fn first_line(case: &Case) -> String {
    let line = case
        .message
        .as_deref()
        .and_then(|m| m.lines().next())
        .unwrap_or(match case.status {
            Status::UnexpectedPass => "every expectation held: the known issue may be fixed",
            _ => "",
        });
    let cut: String = line.chars().take(160).collect();
    if cut.len() < line.len() {
        cut + "…"
    } else {
        cut
    }
}

fn case_block(case: &Case) -> Markup {
    let env = &case.environment;
    let source = match case.source {
        Source::Live => "live",
        Source::Recording => "recording",
        Source::Simulated => "simulated",
    };
    html! {
        div.case id=(anchor(&case.scenario, case.istio.as_deref())) {
            h3 {
                @match &case.istio { Some(v) => { "Istio " (v) }, None => { "No Istio version" } }
                " " span.badge.(class(case.status)) { (case.status_text()) }
            }
            p.muted {
                (source) " · install " (env.install)
                @if let Some(u) = &env.upstream { " · upstream " (u) }
                @if let Some(k) = &env.kubernetes { " · Kubernetes " (k) }
                @if let Some(n) = &env.node_image { " · node " code { (n) } }
                @if let Some(r) = &env.recording { " · " code { (r) } }
            }
            @if let Some(k) = &case.known_issue {
                p { "Known issue (" (k.mode) "): " a href=(safe_link(&k.url)) { (k.url) }
                    @if let Some(note) = &k.note { " — " (note) } }
            }
            @if case.status == Status::UnexpectedPass {
                p.badge.unexpected-pass { "Every expectation held: the known issue may be fixed on this version." }
            }
            @if let Some(m) = &case.message {
                @match case.status {
                    Status::Pass => {},
                    Status::Skipped => p.muted { (m) },
                    _ => pre { (m) },
                }
            }
            @for r in &case.requests { (request_block(r)) }
            @if !case.evidence.is_empty() {
                div.evidence { "Evidence: "
                    @for (i, e) in case.evidence.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href=(safe_link(e)) { code { (e) } }
                    }
                }
            }
            @if !case.timings.is_empty() {
                details { summary { "Step timings (" (format!("{:.1}", case.duration_seconds)) " s)" }
                    table { tbody { @for t in &case.timings {
                        tr { td { (t.step) } td { (format!("{:.2} s", t.seconds)) } }
                    } } }
                }
            }
        }
    }
}

fn request_block(r: &RequestResult) -> Markup {
    html! {
        div.request {
            p { "Request " strong { (r.name) } " " code { (r.url) }
                @if r.attempts > 1 || r.consistent_after_seconds.is_some() {
                    span.muted { " · " (r.attempts) " attempt(s)"
                        @if let Some(s) = r.consistent_after_seconds { (format!(", consistent after {s:.1} s")) }
                        @else { ", never consistent" }
                        @if r.relapses > 0 { ", " (r.relapses) " failure(s) after a pass" }
                    }
                }
            }
            (svg::diagram(&r.hops))
            @let failed = r.verdicts.iter().filter(|v| v.outcome == Outcome::Fail).count();
            @let unseen = r.verdicts.iter().filter(|v| v.outcome == Outcome::NotObserved).count();
            details.verdicts open[failed > 0 || !r.passed] {
                summary { (r.verdicts.len()) " expectation(s): " (r.verdicts.len() - failed - unseen) " pass"
                    @if failed > 0 { ", " strong { (failed) " fail" } }
                    @if unseen > 0 { ", " (unseen) " not observed" } }
            table.verdicts {
                thead { tr { th { "Expectation" } th { "Expected" } th { "Observed" } th { "Verdict" } } }
                tbody {
                    @for v in &r.verdicts {
                        @let (row, label) = match v.outcome {
                            Outcome::Pass => ("verdict-pass", "pass"),
                            Outcome::Fail => ("verdict-fail", "FAIL"),
                            Outcome::NotObserved => ("verdict-not-observed", "not observed"),
                        };
                        tr class=(row) {
                            td { code { (v.subject) } }
                            td { (v.expected) }
                            td { @match &v.observed { Some(o) => code { (o) }, None => span.muted { "nothing" } } }
                            td title=(v.evidence) { (label) }
                        }
                    }
                }
            }
            }
        }
    }
}

fn class(status: Status) -> &'static str {
    match status {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Error => "error",
        Status::UnexpectedPass => "unexpected-pass",
        Status::Flaky => "flaky",
        Status::KnownFailure => "known-failure",
        Status::Skipped => "skipped",
    }
}

fn anchor(scenario: &str, istio: Option<&str>) -> String {
    match istio {
        Some(v) => format!("case-{scenario}-{v}"),
        None => format!("scenario-{scenario}"),
    }
}

/// A link as the report may carry it: `https://` or a relative path with no scheme
/// (evidence). Anything else (`javascript:`, `file:`, `//host`) links nowhere.
fn safe_link(target: &str) -> &str {
    let relative = !target.starts_with('/') && !target.contains(':') && !target.contains('\\');
    if target.starts_with("https://") || relative {
        target
    } else {
        "#"
    }
}

#[cfg(test)]
mod link_tests {
    use super::*;

    #[test]
    fn only_https_and_relative_links_are_followed() {
        assert_eq!(
            safe_link("https://github.com/istio/istio/issues/1"),
            "https://github.com/istio/istio/issues/1"
        );
        assert_eq!(safe_link("r1/evidence/a.log"), "r1/evidence/a.log");
        for bad in [
            "javascript:alert(1)",
            "JAVASCRIPT:x",
            "file:///etc/passwd",
            "/etc/passwd",
            "//evil.example/x",
            "data:text/html,x",
        ] {
            assert_eq!(safe_link(bad), "#", "{bad}");
        }
    }
}
