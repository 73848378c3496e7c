//! The four formats rendered from one result set holding every status: each status
//! must be visible, and told apart, in each format.

use quick_junit::{NonSuccessKind, Report, TestCaseStatus};

use super::baseline;
use super::results::{
    Case, Environment, FORMAT, KnownIssueRef, Outcome, RequestResult, Results, Source, Status,
    VerdictRecord,
};
use super::{html, junit, markdown};

fn case(scenario: &str, status: Status) -> Case {
    let failed = matches!(status, Status::Fail | Status::KnownFailure);
    Case {
        scenario: scenario.into(),
        description: format!("{scenario} <described>"),
        section: None,
        tags: vec!["mtls".into()],
        istio: Some("1.22.1".into()),
        source: Source::Live,
        environment: Environment {
            install: "registry-only".into(),
            upstream: Some("local".into()),
            kubernetes: Some("v1.30.0".into()),
            node_image: Some("kindest/node:v1.30.0".into()),
            cluster: Some("egc-1-22-1-registry-only".into()),
            recording: None,
        },
        status,
        message: matches!(status, Status::Fail | Status::Error | Status::KnownFailure)
            .then(|| format!("{scenario}: what went wrong")),
        known_issue: matches!(status, Status::KnownFailure | Status::UnexpectedPass).then(|| {
            KnownIssueRef {
                url: "https://github.com/istio/istio/issues/12345".into(),
                mode: "xfail".into(),
                note: None,
            }
        }),
        requests: vec![RequestResult {
            name: "r".into(),
            url: "http://httpbin.org/headers".into(),
            passed: !failed,
            verdicts: vec![VerdictRecord {
                subject: "gateway_log.upstream_cluster".into(),
                expected: "equals \"outbound|443||httpbin.org\"".into(),
                observed: Some(if failed {
                    "outbound|80||httpbin.org".into()
                } else {
                    "outbound|443||httpbin.org".into()
                }),
                outcome: if failed { Outcome::Fail } else { Outcome::Pass },
                evidence: "a log line".into(),
            }],
            attempts: 4,
            inconclusive: 0,
            consistent_after_seconds: (!failed).then_some(1.5),
            elapsed_seconds: 3.0,
            relapses: u32::from(status == Status::Flaky),
            first_relapse: vec![],
            hops: vec![],
        }],
        timings: vec![],
        evidence: vec![format!("evidence/{scenario}@1.22.1/gateway.log")],
        duration_seconds: 12.0,
    }
}

fn every_status() -> Results {
    Results {
        format: FORMAT.into(),
        run_id: "t".into(),
        started: "2026-11-26T00:00:00Z".into(),
        finished: "2026-11-26T00:10:00Z".into(),
        harness: "0.1.0".into(),
        shard: None,
        merged_from: vec![],
        problems: vec![],
        interrupted: false,
        timing: None,
        cases: Status::ALL
            .iter()
            .map(|s| case(&format!("s-{}", s.label().replace(' ', "-")), *s))
            .collect(),
    }
}

#[test]
fn junit_has_one_case_per_scenario_and_version_with_the_right_kind() {
    let results = every_status();
    let xml = junit::render(&results).expect("render");
    let report = Report::deserialize_from_str(&xml).expect("junit.xml parses");
    let cases: Vec<_> = report
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .collect();
    assert_eq!(cases.len(), results.cases.len());
    let status_of = |name: &str| {
        &cases
            .iter()
            .find(|c| c.name.as_str() == name)
            .expect(name)
            .status
    };
    let kind = |name: &str| match status_of(name) {
        TestCaseStatus::Success { flaky_runs } => format!("success+{}", flaky_runs.len()),
        TestCaseStatus::NonSuccess { kind, ty, .. } => format!(
            "{}:{}",
            match kind {
                NonSuccessKind::Failure => "failure",
                NonSuccessKind::Error => "error",
            },
            ty.as_ref().map(|t| t.as_str()).unwrap_or("")
        ),
        TestCaseStatus::Skipped { message, .. } => format!(
            "skipped:{}",
            message.as_ref().map(|m| m.as_str()).unwrap_or("")
        ),
    };
    assert_eq!(kind("s-pass"), "success+0");
    assert_eq!(kind("s-flaky"), "success+1");
    assert_eq!(kind("s-fail"), "failure:failure");
    assert_eq!(kind("s-error"), "error:error");
    assert_eq!(kind("s-unexpectedly-passing"), "failure:unexpected-pass");
    assert_eq!(
        kind("s-known-failure"),
        "skipped:known failure: https://github.com/istio/istio/issues/12345"
    );
    let props: Vec<(String, String)> = cases[0]
        .properties
        .iter()
        .map(|p| (p.name.to_string(), p.value.to_string()))
        .collect();
    for name in [
        "istio.version",
        "kubernetes.version",
        "node.image",
        "install.profile",
        "upstream.mode",
    ] {
        assert!(props.iter().any(|(n, _)| n == name), "{name} in {props:?}");
    }
}

#[test]
fn markdown_and_html_show_every_status_apart() {
    let results = every_status();
    let md = markdown::render(&results, None);
    let page = html::render(&results, None);
    for status in Status::ALL {
        assert!(md.contains(status.label()), "{status:?} in summary.md");
        assert!(page.contains(status.label()), "{status:?} in index.html");
    }
    assert!(md.contains("### ❗ s-unexpectedly-passing on Istio 1.22.1: unexpectedly passing"));
    assert!(page.contains("the known issue may be fixed"));
    // Failures show expected vs observed; passes are not listed as needing a look.
    assert!(md.contains("| `gateway_log.upstream_cluster` | equals \"outbound\\|443\\|\\|httpbin.org\" | outbound\\|80\\|\\|httpbin.org |"));
    assert!(!md.contains("### ✅"));
    // User text is escaped in the page.
    assert!(page.contains("s-pass &lt;described&gt;") && !page.contains("<described>"));
}

#[test]
fn summary_and_page_agree_on_what_needs_a_look() {
    let results = every_status();
    let md = markdown::render(&results, None);
    let page = html::render(&results, None);
    let section = |text: &str, from: &str, to: &str| {
        let start = text.find(from).expect(from);
        let rest = &text[start..];
        rest[..rest[from.len()..]
            .find(to)
            .map_or(rest.len(), |e| e + from.len())]
            .to_owned()
    };
    let md_look = section(&md, "## Needs a look", "\n## ");
    let page_look = section(&page, "id=\"needs-a-look\"", "</section>");
    for case in &results.cases {
        let in_md = md_look.contains(&format!(" {} on Istio", case.scenario));
        let in_page = page_look.contains(&format!(">{} on ", case.scenario));
        assert_eq!(
            in_md, in_page,
            "{} ({:?}): summary {in_md}, page {in_page}",
            case.scenario, case.status
        );
        assert_eq!(in_md, case.needs_a_look(), "{}", case.scenario);
    }
}

#[test]
fn errors_of_one_cause_are_one_row() {
    let mut results = every_status();
    let error = results
        .cases
        .iter()
        .find(|c| c.status == Status::Error)
        .cloned()
        .expect("an error case");
    for (scenario, version) in [("s-other", "1.22.1"), ("s-third", "1.30.3")] {
        let mut same = error.clone();
        same.scenario = scenario.into();
        same.istio = Some(version.into());
        results.cases.push(same);
    }
    let groups = results.needing_a_look_grouped();
    let errors: Vec<&Vec<&Case>> = groups
        .iter()
        .filter(|g| g[0].status == Status::Error)
        .collect();
    assert_eq!(errors.len(), 1, "one cause, one group");
    assert_eq!(errors[0].len(), 3);
    let md = markdown::render(&results, None);
    assert!(md.contains("3 cases, one cause: error"), "{md}");
    assert_eq!(
        md.matches(error.message.as_deref().unwrap()).count(),
        1,
        "{md}"
    );
    let page = html::render(&results, None);
    assert!(
        page.contains("3 cases, one cause"),
        "the page groups them too"
    );
}

#[test]
fn the_summary_lists_what_changed_since_the_baseline() {
    let before = every_status();
    let mut now = every_status();
    now.cases[0].status = Status::Pass; // was Fail
    let changes = baseline::changes(&before, &now);
    let md = markdown::render(&now, Some(&changes));
    assert!(md.contains("## Changed since the baseline"));
    assert!(
        md.contains("| s-fail | ❌ fail on 1.22.1 | ✅ pass on 1.22.1 |"),
        "{md}"
    );
    let same = markdown::render(&before, Some(&baseline::changes(&before, &before)));
    assert!(same.contains("No verdict changed."));
}

#[test]
fn results_round_trip_and_the_published_schema_is_current() {
    let results = every_status();
    let json = serde_json::to_string(&results).expect("json");
    let back: Results = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, results);
    let published = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../reports/results.schema.json"
    ))
    .unwrap_or_default();
    if published != super::results::schema() {
        if std::env::var_os("EGRESS_BLESS").is_some() {
            std::fs::write(
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../reports/results.schema.json"
                ),
                super::results::schema(),
            )
            .expect("write schema");
        } else {
            panic!(
                "reports/results.schema.json is out of date with report::results; regenerate it with `EGRESS_BLESS=1 cargo test -p egress-harness schema`"
            );
        }
    }
}

#[test]
fn a_simulated_pass_is_never_shown_as_a_live_one() {
    let mut results = every_status();
    results.cases = vec![Case {
        source: Source::Simulated,
        ..case("gateway-http", Status::Pass)
    }];
    let md = super::markdown::render(&results, None);
    let page = super::html::render(&results, None);
    let xml = junit::render(&results).expect("render");
    for (name, text) in [("summary.md", &md), ("index.html", &page)] {
        assert!(text.contains("pass (simulated)"), "{name}");
        assert!(text.contains("SIMULATED: 1 case(s)"), "{name}");
    }
    assert!(xml.contains(r#"name="source" value="simulated""#), "{xml}");
    let json = serde_json::to_value(&results).expect("json");
    assert_eq!(json["cases"][0]["source"], "simulated");
    // A live pass carries no such mark.
    results.cases[0].source = Source::Live;
    assert!(!super::markdown::render(&results, None).contains("(simulated)"));
    assert!(results.mode_notice().is_none());
}

#[test]
fn the_page_opens_with_what_needs_a_look_and_how_to_rerun_it() {
    let results = every_status();
    let page = super::html::render(&results, None);
    let look = page
        .find("id=\"needs-a-look\"")
        .expect("a Needs a look section");
    let matrix = page.find("id=\"matrix\"").expect("the matrix");
    assert!(look < matrix, "Needs a look comes before the matrix");
    let attention: Vec<&Case> = results.cases.iter().filter(|c| c.needs_a_look()).collect();
    assert_eq!(
        attention.iter().map(|c| c.status).collect::<Vec<_>>().len(),
        4,
        "fail, error, flaky, unexpectedly passing"
    );
    for case in &attention {
        let rerun = format!(
            "egress run --scenario {} --istio 1.22.1 --keep-on-failure",
            case.scenario
        );
        assert!(page.contains(&rerun), "{rerun}");
    }
    // Passing, known failures and skips are folded; the rest are open.
    let folded = page.matches("<details class=\"case-fold\">").count();
    assert_eq!(folded, results.cases.len() - attention.len());
    let md = super::markdown::render(&results, None);
    assert!(md.contains("Rerun: `egress run --scenario s-fail --istio 1.22.1 --keep-on-failure`"));
}

#[test]
fn a_case_that_disappeared_since_the_baseline_is_said() {
    let before = every_status();
    let mut now = every_status();
    now.cases.retain(|c| c.scenario != "s-fail");
    let changes = baseline::changes(&before, &now);
    let md = markdown::render(&now, Some(&changes));
    assert!(
        md.contains("| s-fail | ❌ fail on 1.22.1 | not run (disappeared) |"),
        "{md}"
    );
    let page = super::html::render(&now, Some(&changes));
    assert!(page.contains("not run: disappeared"));
}

#[test]
fn the_summary_splits_the_time_and_names_the_harness_share() {
    let mut results = every_status();
    results.timing = Some(crate::model::RunTiming {
        wall_seconds: 754.0,
        host_seconds: 30.0,
        cluster_setup_seconds: 181.0,
        istio_install_seconds: 100.0,
        scenario_seconds: 425.0,
        consistency_seconds: 41.2,
        deadline_wait_seconds: 120.0,
        teardown_seconds: 18.0,
        harness_cpu_seconds: 3.77,
        virtual_clock: false,
    });
    let md = markdown::render(&results, None);
    assert!(
        md.contains("**Time** 12m 34s wall · cluster setup 3m 1s · Istio install 1m 40s · scenarios 7m 5s (of which requests becoming consistent 41.2 s, waiting out deadlines 2m 0s)"),
        "{md}"
    );
    assert!(
        md.contains("the harness's own CPU 3.8 s, 0.5 % of the wall time"),
        "{md}"
    );
    // Never negative, never above 100 %: a merged report's odd clocks, several cores.
    let odd = crate::model::RunTiming {
        wall_seconds: 2.0,
        teardown_seconds: -5.0,
        harness_cpu_seconds: 7.5,
        ..Default::default()
    };
    let line = markdown::time_split(&odd);
    assert!(!line.contains('-'), "{line}");
    assert!(
        line.contains("7.5 s, more than the wall time (several cores at once)"),
        "{line}"
    );
    assert!(!line.contains(" %"), "{line}");
    let page = super::html::render(&results, None);
    assert!(page.contains("id=\"timing\""));
    // A simulated run's durations are virtual, and say so; no share of a virtual wall.
    let simulated = crate::model::RunTiming {
        wall_seconds: 426.0,
        harness_cpu_seconds: 0.6,
        virtual_clock: true,
        ..Default::default()
    };
    let line = markdown::time_split(&simulated);
    assert!(
        line.starts_with("**Time** on the simulated cluster's virtual clock (its waits cost no real time): 7m 6s · "),
        "{line}"
    );
    assert!(!line.contains(" wall") && !line.contains(" %"), "{line}");
}

#[test]
fn summary_md_shows_outside_text_and_never_renders_it() {
    let mut results = every_status();
    let hostile = "<img src=x onerror=alert(1)></table> *bold* [a](javascript:x) \u{1b}[31mred`";
    let failing = results
        .cases
        .iter_mut()
        .flat_map(|c| c.requests.iter_mut())
        .flat_map(|r| r.verdicts.iter_mut())
        .find(|v| v.outcome == crate::report::results::Outcome::Fail)
        .expect("a failing verdict");
    failing.observed = Some(hostile.into());
    failing.subject = "headers.X`evil|split".into();
    let md = markdown::render(&results, None);
    assert!(
        md.contains("&lt;img src=x onerror=alert(1)&gt;&lt;/table&gt;"),
        "{md}"
    );
    assert!(
        md.contains("\\*bold\\*") && md.contains("\\[a\\](javascript:x)"),
        "{md}"
    );
    assert!(!md.contains("<img") && !md.contains("</table>"), "{md}");
    assert!(
        !md.contains('\u{1b}') && md.contains("\\\\u{1b}\\[31mred"),
        "{md}"
    );
    assert!(md.contains("`headers.X'evil\\|split`"), "{md}");
}

#[test]
fn junit_xml_holds_only_characters_xml_allows() {
    let mut results = every_status();
    results.cases[0].message = Some("line with \u{1b}[31m and \u{0}\u{8} and \u{ffff}".into());
    let xml = super::junit::render(&results).expect("junit");
    assert!(
        !xml.chars()
            .any(|c| ((c as u32) < 0x20 && !"\t\n\r".contains(c)) || c == '\u{ffff}'),
        "{xml:?}"
    );
    assert!(xml.contains("line with "), "{xml}");
}

#[test]
fn a_simulated_case_says_so_in_its_trial_line_and_its_junit_name() {
    use crate::report::results::{Case, Source, Status};
    let case = Case {
        source: Source::Simulated,
        ..Case::example("gateway-http", "1.30.3", Status::Pass)
    };
    let line = super::case::trial_outcome(&case).expect("a pass");
    assert!(
        line.starts_with("passes (simulated) on Istio 1.30.3"),
        "{line}"
    );
    let live = Case {
        source: Source::Live,
        ..case.clone()
    };
    assert!(
        super::case::trial_outcome(&live)
            .expect("a pass")
            .starts_with("passes on Istio 1.30.3")
    );
    let results = crate::report::results::Results::example("t", vec![case]);
    let xml = super::junit::render(&results).expect("junit");
    assert!(xml.contains("name=\"gateway-http (simulated)\""), "{xml}");
}
