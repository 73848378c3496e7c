//! Finding the first Istio release where a scenario's verdict changed. Short ranges
//! are walked release by release; longer ones are bisected between the two ends,
//! which must disagree (a change and a change back in between cannot be seen).

use semver::Version;

/// A judged run, reduced to what a bisect compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Passed => "passes",
            Verdict::Failed => "fails",
        }
    }
}

/// What the probes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// `first` is the first release whose verdict differs from `last`'s, its predecessor.
    Changed {
        last: Version,
        first: Version,
        before: Verdict,
        after: Verdict,
    },
    /// Both ends agree.
    Unchanged(Verdict),
    /// A probe could not judge (cluster trouble): the search stops there.
    Stopped { at: Version, error: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bisection {
    /// Every probe, in the order it ran.
    pub probes: Vec<(Version, Result<Verdict, String>)>,
    pub finding: Finding,
}

/// Up to this many releases are probed one by one, oldest first.
pub const WALK_AT_MOST: usize = 4;

/// Searches `releases` (oldest first) with `probe`, running each release at most once.
pub fn bisect(
    releases: &[Version],
    mut probe: impl FnMut(&Version) -> Result<Verdict, String>,
) -> Result<Bisection, String> {
    let (Some(oldest), Some(newest)) = (releases.first(), releases.last()) else {
        return Err("no release to probe in the range".into());
    };
    let mut probes: Vec<(Version, Result<Verdict, String>)> = Vec::new();
    let mut run = |i: usize, probes: &mut Vec<(Version, Result<Verdict, String>)>| {
        let v = &releases[i];
        let result = probe(v);
        probes.push((v.clone(), result.clone()));
        result
    };
    let stopped = |at: &Version, error: String, probes| Bisection {
        probes,
        finding: Finding::Stopped {
            at: at.clone(),
            error,
        },
    };

    if releases.len() <= WALK_AT_MOST {
        let first = match run(0, &mut probes) {
            Ok(v) => v,
            Err(e) => return Ok(stopped(oldest, e, probes)),
        };
        for i in 1..releases.len() {
            match run(i, &mut probes) {
                Err(e) => return Ok(stopped(&releases[i], e, probes)),
                Ok(v) if v != first => {
                    return Ok(Bisection {
                        probes,
                        finding: Finding::Changed {
                            last: releases[i - 1].clone(),
                            first: releases[i].clone(),
                            before: first,
                            after: v,
                        },
                    });
                }
                Ok(_) => {}
            }
        }
        return Ok(Bisection {
            probes,
            finding: Finding::Unchanged(first),
        });
    }

    let before = match run(0, &mut probes) {
        Ok(v) => v,
        Err(e) => return Ok(stopped(oldest, e, probes)),
    };
    let after = match run(releases.len() - 1, &mut probes) {
        Ok(v) => v,
        Err(e) => return Ok(stopped(newest, e, probes)),
    };
    if before == after {
        return Ok(Bisection {
            probes,
            finding: Finding::Unchanged(before),
        });
    }
    let (mut lo, mut hi) = (0, releases.len() - 1);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match run(mid, &mut probes) {
            Err(e) => return Ok(stopped(&releases[mid], e, probes)),
            Ok(v) if v == before => lo = mid,
            Ok(_) => hi = mid,
        }
    }
    Ok(Bisection {
        probes,
        finding: Finding::Changed {
            last: releases[lo].clone(),
            first: releases[hi].clone(),
            before,
            after,
        },
    })
}

/// The stable releases in `from..=to`, oldest first.
pub fn releases_between(all: &[Version], from: &Version, to: &Version) -> Vec<Version> {
    let mut out: Vec<Version> = all
        .iter()
        .filter(|v| v.pre.is_empty() && *v >= from && *v <= to)
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `A..B` (both ends included).
pub fn parse_range(text: &str) -> Option<Result<(Version, Version), String>> {
    let (a, b) = text.split_once("..")?;
    let parse = |s: &str| {
        crate::versions::parse_version(s.trim())
            .map_err(|e| format!("--istio {text}: {e}; a range is A..B, e.g. 1.22.0..1.24.3"))
    };
    Some((|| {
        let (a, b) = (parse(a)?, parse(b)?);
        if a >= b {
            return Err(format!(
                "--istio {text}: the range must go from older to newer"
            ));
        }
        Ok((a, b))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("version")
    }

    /// Recorded verdicts per release: the scenario broke in 1.23.3 (a table, as a
    /// nightly would have recorded it).
    const TABLE: &[(&str, Verdict)] = &[
        ("1.22.0", Verdict::Passed),
        ("1.22.1", Verdict::Passed),
        ("1.22.2", Verdict::Passed),
        ("1.22.3", Verdict::Passed),
        ("1.22.4", Verdict::Passed),
        ("1.22.5", Verdict::Passed),
        ("1.22.6", Verdict::Passed),
        ("1.23.0", Verdict::Passed),
        ("1.23.1", Verdict::Passed),
        ("1.23.2", Verdict::Passed),
        ("1.23.3", Verdict::Failed),
        ("1.23.4", Verdict::Failed),
        ("1.23.5", Verdict::Failed),
        ("1.24.0", Verdict::Failed),
        ("1.24.1", Verdict::Failed),
        ("1.24.2", Verdict::Failed),
        ("1.24.3", Verdict::Failed),
    ];

    fn table() -> Vec<Version> {
        TABLE.iter().map(|(s, _)| v(s)).collect()
    }

    fn recorded(version: &Version) -> Result<Verdict, String> {
        TABLE
            .iter()
            .find(|(s, _)| v(s) == *version)
            .map(|(_, verdict)| *verdict)
            .ok_or_else(|| format!("no recording for {version}"))
    }

    #[test]
    fn bisect_names_the_first_changed_release_in_few_probes() {
        let releases = table();
        let b = bisect(&releases, recorded).expect("bisect");
        assert_eq!(
            b.finding,
            Finding::Changed {
                last: v("1.23.2"),
                first: v("1.23.3"),
                before: Verdict::Passed,
                after: Verdict::Failed
            }
        );
        // Two ends, then at most ceil(log2(16)) = 4 halvings.
        assert!(b.probes.len() <= 6, "{} probes", b.probes.len());
        let mut seen: Vec<_> = b.probes.iter().map(|(v, _)| v.clone()).collect();
        seen.dedup();
        assert_eq!(seen.len(), b.probes.len(), "no release probed twice");
    }

    #[test]
    fn a_fix_is_found_the_same_way() {
        let releases = table();
        let flipped = |version: &Version| {
            recorded(version).map(|v| match v {
                Verdict::Passed => Verdict::Failed,
                Verdict::Failed => Verdict::Passed,
            })
        };
        let b = bisect(&releases, flipped).expect("bisect");
        assert!(
            matches!(b.finding, Finding::Changed { ref first, after: Verdict::Passed, .. } if *first == v("1.23.3"))
        );
    }

    #[test]
    fn short_ranges_are_walked_and_agreeing_ends_reported() {
        let short = [v("1.23.1"), v("1.23.2"), v("1.23.3"), v("1.23.4")];
        let b = bisect(&short, recorded).expect("bisect");
        assert_eq!(b.probes.len(), 3, "stops at the first change");
        assert!(matches!(b.finding, Finding::Changed { ref first, .. } if *first == v("1.23.3")));
        let b = bisect(&table()[..8], recorded).expect("bisect");
        assert_eq!(b.finding, Finding::Unchanged(Verdict::Passed));
        assert_eq!(b.probes.len(), 2);
    }

    #[test]
    fn a_probe_that_cannot_judge_stops_the_search_and_says_where() {
        let releases = table();
        let broken = |version: &Version| {
            if *version == v("1.23.3") {
                Err("kind create cluster failed".to_owned())
            } else {
                recorded(version)
            }
        };
        let b = bisect(&releases, broken).expect("bisect");
        assert!(matches!(b.finding, Finding::Stopped { ref at, .. } if *at == v("1.23.3")));
        assert!(bisect(&[], recorded).is_err());
    }

    #[test]
    fn ranges_parse_and_select_stable_releases() {
        let (a, b) = parse_range("1.22.0..1.24.3")
            .expect("a range")
            .expect("valid");
        assert_eq!((a.clone(), b.clone()), (v("1.22.0"), v("1.24.3")));
        assert!(parse_range("1.22.1,1.24.3").is_none());
        assert!(parse_range("1.24.3..1.22.0").expect("a range").is_err());
        let all = [
            v("1.21.6"),
            v("1.24.4"),
            v("1.23.0-rc.1"),
            v("1.23.0"),
            v("1.22.0"),
            v("1.24.3"),
        ];
        assert_eq!(
            releases_between(&all, &a, &b),
            vec![v("1.22.0"), v("1.23.0"), v("1.24.3")]
        );
    }
}
