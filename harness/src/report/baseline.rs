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
    pub now: Status,
}

pub fn changes(baseline: &Results, now: &Results) -> Vec<Change> {
    let mut out = Vec::new();
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
                now: case.status,
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
                    now: Status::Fail
                },
                Change {
                    scenario: "c".into(),
                    was_on: "1.28.2".into(),
                    now_on: "1.28.3".into(),
                    was: Status::KnownFailure,
                    now: Status::UnexpectedPass
                },
            ]
        );
    }
}
