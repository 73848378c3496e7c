//! What changed since an earlier run (`--baseline results.json`): each scenario ×
//! version whose status differs. A version the baseline lacks is compared with the
//! baseline's newest patch of the same minor, so the nightly's "1.28.2 → 1.28.3" shows.

use super::results::{Case, Results, Status};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub scenario: String,
    /// The version in the baseline the case was compared with.
    pub was_on: String,
    pub now_on: String,
    pub was: Status,
    /// `None`: the case disappeared (no case of the scenario on that minor now).
    pub now: Option<Status>,
}

pub fn changes(baseline: &Results, now: &Results) -> Vec<Change> {
    let mut out = Vec::new();
    // What the baseline ran and this run did not: a scenario renamed, removed or
    // filtered out must not look like "nothing changed".
    for before in &baseline.cases {
        let Some(istio) = &before.istio else { continue };
        let minor = |v: &str| semver::Version::parse(v).ok().map(|v| (v.major, v.minor));
        let still = now.cases.iter().any(|c| {
            c.scenario == before.scenario
                && c.istio
                    .as_deref()
                    .is_some_and(|v| v == istio || (minor(v).is_some() && minor(v) == minor(istio)))
        });
        if !still {
            out.push(Change {
                scenario: before.scenario.clone(),
                was_on: istio.clone(),
                now_on: String::new(),
                was: before.status,
                now: None,
            });
        }
    }
    for case in &now.cases {
        let Some(istio) = &case.istio else { continue };
        let Some(before) = counterpart(baseline, case, istio) else {
            continue;
        };
        if before.status != case.status {
            out.push(Change {
                scenario: case.scenario.clone(),
                was_on: before.istio.clone().unwrap_or_default(),
                now_on: istio.clone(),
                was: before.status,
                now: Some(case.status),
            });
        }
    }
    out
}

fn counterpart<'a>(baseline: &'a Results, case: &Case, istio: &str) -> Option<&'a Case> {
    if let Some(exact) = baseline.case(&case.scenario, Some(istio)) {
        return Some(exact);
    }
    let version = semver::Version::parse(istio).ok()?;
    baseline
        .cases
        .iter()
        .filter(|c| c.scenario == case.scenario)
        .filter_map(|c| {
            let v = semver::Version::parse(c.istio.as_deref()?).ok()?;
            (v.major == version.major && v.minor == version.minor).then_some((v, c))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(scenario: &str, istio: &str, status: Status) -> Case {
        Case::example(scenario, istio, status)
    }

    fn results(cases: Vec<Case>) -> Results {
        Results::example("r", cases)
    }

    #[test]
    fn lists_only_verdicts_that_changed() {
        let before = results(vec![
            case("a", "1.22.1", Status::Pass),
            case("b", "1.22.1", Status::Pass),
            case("c", "1.28.1", Status::Pass),
            case("c", "1.28.2", Status::KnownFailure),
        ]);
        let now = results(vec![
            case("a", "1.22.1", Status::Pass),
            case("b", "1.22.1", Status::Fail),
            case("c", "1.28.3", Status::UnexpectedPass),
            case("d", "1.29.0", Status::Fail),
        ]);
        assert_eq!(
            changes(&before, &now),
            vec![
                Change {
                    scenario: "b".into(),
                    was_on: "1.22.1".into(),
                    now_on: "1.22.1".into(),
                    was: Status::Pass,
                    now: Some(Status::Fail)
                },
                Change {
                    scenario: "c".into(),
                    was_on: "1.28.2".into(),
                    now_on: "1.28.3".into(),
                    was: Status::KnownFailure,
                    now: Some(Status::UnexpectedPass)
                },
            ]
        );
    }

    #[test]
    fn cases_that_disappeared_are_listed() {
        let before = results(vec![
            case("a", "1.22.1", Status::Pass),
            case("gone", "1.22.1", Status::Fail),
            case("c", "1.28.2", Status::Pass),
        ]);
        let now = results(vec![
            case("a", "1.22.1", Status::Pass),
            case("c", "1.28.3", Status::Pass),
        ]);
        assert_eq!(
            changes(&before, &now),
            vec![Change {
                scenario: "gone".into(),
                was_on: "1.22.1".into(),
                now_on: String::new(),
                was: Status::Fail,
                now: None,
            }],
            "a newer patch of the same minor is not a disappearance"
        );
    }
}
