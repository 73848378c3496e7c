//! `summary.md`: fits a CI job summary. The scenario × version table first, then what
//! changed since the baseline, then every case that needs a look, expected vs observed.

use std::fmt::Write;

use super::baseline::Change;
use super::results::{Case, Outcome, Results, Status};

pub fn render(results: &Results, changes: Option<&[Change]>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Istio egress conformance · {}\n",
        cell(&results.run_id)
    );
    let _ = writeln!(out, "{}\n", totals(results));
    if let Some(t) = &results.timing {
        let _ = writeln!(out, "{}\n", time_split(t));
    }
    if let Some(notice) = results.mode_notice() {
        let _ = writeln!(out, "**{notice}**\n");
    }
    if results.interrupted {
        let _ = writeln!(
            out,
            "**The run was interrupted**: cases still running are errors.\n"
        );
    }
    for problem in &results.problems {
        let _ = writeln!(out, "> **Problem:** {}\n", cell(problem));
    }
    matrix(&mut out, results);
    if let Some(changes) = changes {
        let _ = writeln!(out, "\n## Changed since the baseline\n");
        if changes.is_empty() {
            let _ = writeln!(out, "No verdict changed.");
        } else {
            let _ = writeln!(out, "| Scenario | Was | Now |\n|---|---|---|");
            for c in changes {
                let now = match c.now {
                    Some(now) => format!("{} {} on {}", now.mark(), now.label(), c.now_on),
                    None => "not run (disappeared)".into(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} {} on {} | {now} |",
                    cell(&c.scenario),
                    c.was.mark(),
                    c.was.label(),
                    c.was_on,
                );
            }
        }
    }
    // The page's rule too (Results::needing_a_look); known failures are listed after
    // it, as expected, so they are not read as needing a look.
    let attention = results.needing_a_look_grouped();
    if !attention.is_empty() {
        let _ = writeln!(out, "\n## Needs a look\n");
    }
    for group in attention {
        match group.as_slice() {
            [case] => detail(&mut out, case),
            cases => same_cause(&mut out, cases),
        }
    }
    let known: Vec<&Case> = results
        .cases
        .iter()
        .filter(|c| c.status == Status::KnownFailure)
        .collect();
    if !known.is_empty() {
        let _ = writeln!(out, "\n## Known failures (expected)\n");
    }
    for case in known {
        detail(&mut out, case);
    }
    out
}

/// Where the run's time went, in one line.
pub fn time_split(t: &crate::model::RunTiming) -> String {
    let phases = format!(
        "cluster setup {} · Istio install {} · scenarios {} (of which requests becoming consistent {}, waiting out deadlines {}) · downloads and pulls {} · teardown {}",
        duration(t.cluster_setup_seconds),
        duration(t.istio_install_seconds),
        duration(t.scenario_seconds),
        duration(t.consistency_seconds),
        duration(t.deadline_wait_seconds),
        duration(t.host_seconds),
        duration(t.teardown_seconds),
    );
    let wall = duration(t.wall_seconds);
    if t.virtual_clock {
        // CPU against virtual time would be a meaningless share.
        return format!(
            "**Time** on the simulated cluster's virtual clock (its waits cost no real time): {wall} · {phases} · the harness's own CPU {:.1} s",
            t.harness_cpu_seconds.max(0.0),
        );
    }
    // A share of the wall time is at most 100 %: CPU time beyond the wall time was
    // spent on several cores at once, and is said so.
    let share = t.overhead_share();
    let cpu = if share > 1.0 {
        format!(
            "{} s, more than the wall time (several cores at once)",
            format_args!("{:.1}", t.harness_cpu_seconds)
        )
    } else {
        format!(
            "{:.1} s, {:.1} % of the wall time",
            t.harness_cpu_seconds.max(0.0),
            share * 100.0
        )
    };
    format!(
        "**Time** {wall} wall · {phases} · the harness's own CPU {cpu} (phases of clusters set up at once overlap)"
    )
}

/// `1h 2m`, `3m 4s`, `5.6 s`.
pub fn duration(secs: f64) -> String {
    // A negative or non-finite span (a merged report's clocks) is no span at all.
    let secs = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
    let whole = secs.round() as u64;
    match whole {
        0..60 => format!("{secs:.1} s"),
        60..3600 => format!("{}m {}s", whole / 60, whole % 60),
        _ => format!("{}h {}m", whole / 3600, (whole % 3600) / 60),
    }
}

pub fn totals(results: &Results) -> String {
    let parts: Vec<String> = Status::ALL
        .iter()
        .map(|s| (s, results.count(*s)))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{} {n} {}", s.mark(), s.label()))
        .collect();
    if parts.is_empty() {
        "No cases ran.".into()
    } else {
        format!("**{}**", parts.join(" · "))
    }
}

fn matrix(out: &mut String, results: &Results) {
    let versions = results.versions();
    if versions.is_empty() {
        return;
    }
    let header: Vec<String> = versions
        .iter()
        .map(|v| {
            v.as_deref()
                .map_or("no version".into(), |v| format!("Istio {}", cell(v)))
        })
        .collect();
    let _ = writeln!(out, "| Scenario | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(versions.len()));
    for scenario in results.scenarios() {
        let cells: Vec<String> = versions
            .iter()
            .map(|v| match results.case(scenario, v.as_deref()) {
                Some(c) => format!("{} {}", c.status.mark(), c.status_text()),
                None => "·".into(),
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", cell(scenario), cells.join(" | "));
    }
}

/// Errors of one cause, once: the cases, the message, how to rerun each.
fn same_cause(out: &mut String, cases: &[&Case]) {
    let names: Vec<String> = cases
        .iter()
        .map(|c| {
            let on = c
                .istio
                .as_deref()
                .map_or_else(String::new, |v| format!(" on Istio {}", cell(v)));
            format!("{}{on}", cell(&c.scenario))
        })
        .collect();
    let _ = writeln!(
        out,
        "### {} {} cases, one cause: {}\n\nCases: {}\n",
        Status::Error.mark(),
        cases.len(),
        Status::Error.label(),
        names.join(", ")
    );
    let message = cases[0].message.as_deref().unwrap_or("no message");
    let _ = writeln!(out, "```text\n{}\n```\n", message.replace("```", "\'\'\'"));
    for c in cases {
        let _ = writeln!(out, "Rerun: {}\n", code(&c.rerun()));
    }
}

fn detail(out: &mut String, case: &Case) {
    let on = case
        .istio
        .as_deref()
        .map_or_else(String::new, |v| format!(" on Istio {}", cell(v)));
    let _ = writeln!(
        out,
        "### {} {}{on}: {}\n",
        case.status.mark(),
        cell(&case.scenario),
        case.status_text()
    );
    if case.needs_a_look() {
        let _ = writeln!(out, "Rerun: {}\n", code(&case.rerun()));
    }
    if let Some(k) = &case.known_issue {
        let _ = writeln!(out, "Known issue ({}): {}\n", cell(&k.mode), cell(&k.url));
    }
    match case.status {
        Status::Error => {
            let message = case.message.as_deref().unwrap_or("no message");
            let _ = writeln!(out, "```text\n{}\n```\n", message.replace("```", "'''"));
        }
        Status::UnexpectedPass => {
            let _ = writeln!(
                out,
                "Every expectation held: the known issue may be fixed on this version.\n"
            );
        }
        _ => {}
    }
    for r in &case.requests {
        let shown: Vec<_> = r
            .verdicts
            .iter()
            .filter(|v| v.outcome == Outcome::Fail)
            .collect();
        let relapse: Vec<_> = r
            .first_relapse
            .iter()
            .filter(|v| v.outcome == Outcome::Fail)
            .collect();
        if shown.is_empty() && relapse.is_empty() {
            continue;
        }
        let _ = writeln!(out, "Request {} ({}):\n", code(&r.name), cell(&r.url));
        let _ = writeln!(out, "| Expectation | Expected | Observed |\n|---|---|---|");
        let rows = shown
            .iter()
            .map(|v| (v, ""))
            .chain(relapse.iter().map(|v| (v, " (first failure after a pass)")));
        for (v, when) in rows {
            let _ = writeln!(
                out,
                "| {}{when} | {} | {} |",
                code(&v.subject),
                cell(&v.expected),
                v.observed.as_deref().map_or("nothing".into(), cell)
            );
        }
        out.push('\n');
    }
    if !case.evidence.is_empty() {
        let files: Vec<String> = case.evidence.iter().map(|e| code(e)).collect();
        let _ = writeln!(out, "Evidence: {}\n", files.join(", "));
    }
}

/// Text from outside (headers, log lines, merged files) safe inside a Markdown table
/// cell or line: one line, clipped, and nothing a renderer would read as HTML,
/// emphasis, a link or a code span (GitHub keeps tags such as `<img>` and `</table>`).
fn cell(text: &str) -> String {
    let one_line = crate::model::terminal_safe(&text.replace(['\n', '\r'], " ")).into_owned();
    let clipped: String = one_line.chars().take(300).collect();
    let clipped = if clipped.len() < one_line.len() {
        clipped + "…"
    } else {
        clipped
    };
    let mut out = String::with_capacity(clipped.len());
    for c in clipped.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\''),
            '|' | '\\' | '*' | '_' | '[' | ']' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text from outside as an inline code span: no backtick to close it early, one line.
fn code(text: &str) -> String {
    let one_line = crate::model::terminal_safe(&text.replace(['\n', '\r'], " ")).into_owned();
    // GitHub splits table cells on `|` even inside a code span.
    format!("`{}`", one_line.replace('`', "'").replace('|', "\\|"))
}
