//! `junit.xml`: one test suite per Istio version, one test case per scenario on it.
//! Infrastructure trouble is an `<error>`, wrong behaviour a `<failure>`, a known
//! failure `<skipped>` with its issue link, a flaky pass a success with its
//! `<flakyFailure>` (as cargo-nextest writes them).

use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use super::results::{Case, Results, Status};

pub fn render(results: &Results) -> Result<String, String> {
    let mut report = Report::new(format!("egress-conformance {}", results.run_id));
    for version in results.versions() {
        let name = version
            .as_deref()
            .map_or_else(|| "no Istio version".to_owned(), |v| format!("istio-{v}"));
        let mut suite = TestSuite::new(name);
        if let Some(v) = &version {
            suite.add_property(Property::new("istio.version", v.as_str()));
        }
        for case in results.cases.iter().filter(|c| c.istio == version) {
            suite.add_test_case(test_case(case));
        }
        report.add_test_suite(suite);
    }
    report
        .to_string()
        .map(|xml| xml_characters_only(&xml))
        .map_err(|e| format!("junit.xml: {e}"))
}

/// The document with every character XML 1.0 forbids (C0 but tab, newline and
/// carriage return; U+FFFE, U+FFFF) replaced by U+FFFD: log lines and headers quoted in
/// messages may hold them, and a CI's JUnit reader refuses the whole file for one. The
/// markup itself never holds them, so the replacement touches only quoted text.
fn xml_characters_only(xml: &str) -> String {
    xml.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect()
}

fn test_case(case: &Case) -> TestCase {
    let message = case.message.clone().unwrap_or_default();
    let link = case
        .known_issue
        .as_ref()
        .map(|k| k.url.clone())
        .unwrap_or_default();
    let status = match case.status {
        Status::Pass => TestCaseStatus::success(),
        Status::Flaky => {
            let mut status = TestCaseStatus::success();
            let mut rerun = TestRerun::new(NonSuccessKind::Failure);
            rerun.set_message("failed after having passed; passed in the end");
            rerun.set_description(message.as_str());
            status.add_rerun(rerun);
            status
        }
        Status::Fail => non_success(NonSuccessKind::Failure, "failure", &message),
        Status::UnexpectedPass => non_success(
            NonSuccessKind::Failure,
            "unexpected-pass",
            &format!("known-failing but passed: the issue {link} may be fixed"),
        ),
        Status::Error => non_success(NonSuccessKind::Error, "error", &message),
        Status::KnownFailure => {
            let mut status = TestCaseStatus::skipped();
            status.set_type("known-failure");
            status.set_message(format!("known failure: {link}"));
            status.set_description(message.as_str());
            status
        }
        Status::Skipped => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(message.as_str());
            status
        }
    };
    // A CI's test list never shows a simulated or replayed case as a live one.
    let name = match case.source {
        super::results::Source::Live => case.scenario.clone(),
        super::results::Source::Simulated => format!("{} (simulated)", case.scenario),
        super::results::Source::Recording => format!("{} (replayed)", case.scenario),
    };
    let mut test = TestCase::new(name, status);
    test.set_classname(format!(
        "egress.{}",
        case.istio.as_deref().unwrap_or("none").replace('.', "_")
    ));
    // A number from a merged results.json is not trusted to fit a Duration.
    test.set_time(
        std::time::Duration::try_from_secs_f64(case.duration_seconds.max(0.0)).unwrap_or_default(),
    );
    let env = &case.environment;
    let properties = [
        ("istio.version", case.istio.clone()),
        ("kubernetes.version", env.kubernetes.clone()),
        ("node.image", env.node_image.clone()),
        ("install.profile", Some(env.install.clone())),
        ("upstream.mode", env.upstream.clone()),
        ("source", Some(source_name(case).to_owned())),
        (
            "known.issue",
            case.known_issue.as_ref().map(|k| k.url.clone()),
        ),
    ];
    for (name, value) in properties {
        test.add_property(Property::new(
            name,
            value.unwrap_or_else(|| "unknown".into()).as_str(),
        ));
    }
    if !case.evidence.is_empty() {
        test.set_system_out(format!("evidence:\n{}", case.evidence.join("\n")));
    }
    test
}

fn non_success(kind: NonSuccessKind, ty: &str, message: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(kind);
    status.set_type(ty);
    status.set_message(message.lines().next().unwrap_or(message));
    status.set_description(message);
    status
}

fn source_name(case: &Case) -> &'static str {
    match case.source {
        super::results::Source::Live => "live",
        super::results::Source::Recording => "recording",
        super::results::Source::Simulated => "simulated",
    }
}
