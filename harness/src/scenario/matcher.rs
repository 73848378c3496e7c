//! One expectation on a string: `equals`, `matches`, `contains`, `present` or `absent`,
//! optionally limited to a range of Istio versions.

use std::fmt;

use regex::Regex;
use semver::VersionReq;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::template::Template;

/// What a matcher demands of an observed value.
#[derive(Debug, Clone)]
pub enum Rule {
    Equals(Template),
    Matches(Regex),
    Contains(Template),
    Present,
    Absent,
}

/// A rule plus the Istio versions it applies to (all when `istio` is unset).
#[derive(Debug, Clone)]
pub struct Matcher {
    pub rule: Rule,
    pub istio: Option<VersionReq>,
}

/// Why an observed value did not satisfy a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub expected: String,
}

impl Matcher {
    pub fn new(rule: Rule) -> Self {
        Self { rule, istio: None }
    }

    /// Whether this matcher is judged on the given Istio version.
    pub fn applies_to(&self, istio: &semver::Version) -> bool {
        self.istio
            .as_ref()
            .is_none_or(|req| crate::versions::matches_release(req, istio))
    }

    /// Judges an observed value (`None` when the thing is not there at all).
    pub fn check(
        &self,
        observed: Option<&str>,
        vars: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), Mismatch> {
        let ok = match (&self.rule, observed) {
            (Rule::Present, seen) => seen.is_some(),
            (Rule::Absent, seen) => seen.is_none(),
            (Rule::Equals(t), Some(seen)) => seen == t.render(vars),
            (Rule::Contains(t), Some(seen)) => seen.contains(&t.render(vars)),
            (Rule::Matches(re), Some(seen)) => re.is_match(seen),
            (_, None) => false,
        };
        if ok {
            Ok(())
        } else {
            Err(Mismatch {
                expected: self.describe(vars),
            })
        }
    }

    /// The rule in words, with template variables filled in.
    pub fn describe(&self, vars: &dyn Fn(&str) -> Option<String>) -> String {
        match &self.rule {
            Rule::Equals(t) => format!("equals {:?}", t.render(vars)),
            Rule::Contains(t) => format!("contains {:?}", t.render(vars)),
            Rule::Matches(re) => format!("matches /{}/", re.as_str()),
            Rule::Present => "present".to_owned(),
            Rule::Absent => "absent".to_owned(),
        }
    }

    /// Template variables this matcher refers to.
    pub fn variables(&self) -> Vec<&str> {
        match &self.rule {
            Rule::Equals(t) | Rule::Contains(t) => t.variables(),
            _ => Vec::new(),
        }
    }
}

const FORMS: &str = "`present`, `absent`, or a map with one of equals, matches, contains, present, absent (and optionally istio)";

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MatcherVisitor)
    }
}

struct MatcherVisitor;

impl<'de> Visitor<'de> for MatcherVisitor {
    type Value = Matcher;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(FORMS)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Matcher, E> {
        match v {
            "present" => Ok(Matcher::new(Rule::Present)),
            "absent" => Ok(Matcher::new(Rule::Absent)),
            other => Err(E::custom(format!(
                "`{other}` is not a matcher; write {FORMS} (for an exact value: {{equals: {other:?}}})"
            ))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Matcher, A::Error> {
        let mut rule: Option<Rule> = None;
        let mut istio = None;
        while let Some(key) = map.next_key::<String>()? {
            let next = match key.as_str() {
                "equals" => Rule::Equals(
                    Template::parse(&map.next_value::<Scalar>()?.0).map_err(de::Error::custom)?,
                ),
                "contains" => Rule::Contains(
                    Template::parse(&map.next_value::<Scalar>()?.0).map_err(de::Error::custom)?,
                ),
                "matches" => {
                    let pattern = map.next_value::<String>()?;
                    let regex = Regex::new(&pattern).map_err(|e| {
                        de::Error::custom(format!("invalid regular expression: {e}"))
                    })?;
                    vacuous(&pattern, &regex).map_err(de::Error::custom)?;
                    Rule::Matches(regex)
                }
                "present" | "absent" => {
                    if !map.next_value::<bool>()? {
                        return Err(de::Error::custom(format!(
                            "`{key}: false` is ambiguous; write the opposite rule instead"
                        )));
                    }
                    if key == "present" {
                        Rule::Present
                    } else {
                        Rule::Absent
                    }
                }
                "istio" => {
                    let text = map.next_value::<String>()?;
                    istio = Some(crate::versions::parse_range(&text).map_err(de::Error::custom)?);
                    continue;
                }
                other => {
                    return Err(de::Error::unknown_field(
                        other,
                        &[
                            "equals", "matches", "contains", "present", "absent", "istio",
                        ],
                    ));
                }
            };
            if rule.replace(next).is_some() {
                return Err(de::Error::custom(
                    "a matcher takes exactly one of equals, matches, contains, present, absent",
                ));
            }
        }
        let rule =
            rule.ok_or_else(|| de::Error::custom(format!("empty matcher; write {FORMS}")))?;
        Ok(Matcher { rule, istio })
    }
}

/// A pattern that checks nothing: an empty alternative (`outbound|443||httpbin.org`
/// is three alternatives, one of them empty, so it matches every text) or one that
/// matches any text at all (`.*`).
fn vacuous(pattern: &str, regex: &Regex) -> Result<(), String> {
    if has_empty_alternative(pattern) {
        return Err(format!(
            "`{pattern}` has an empty alternative (`|` separates alternatives in a regex), so it matches every text; for Envoy cluster names like outbound|443||host write {{equals: {pattern:?}}}, or escape each bar as \\|"
        ));
    }
    let any = ["", "x", "egress-conformance 0\n", "\u{1}"]
        .iter()
        .all(|t| regex.is_match(t));
    if any {
        return Err(format!(
            "`{pattern}` matches every text, so it checks nothing: write `present` to require the value, or {{equals: ...}} for an exact one"
        ));
    }
    Ok(())
}

/// An unescaped `|` outside a class with nothing on one side (start, `(`, `|`, `)`
/// or the end).
fn has_empty_alternative(pattern: &str) -> bool {
    // Per open group: whether its current alternative has anything yet, and whether
    // it has a bar at all.
    let mut groups = vec![(false, false)];
    let (mut escaped, mut class) = (false, false);
    let fill = |groups: &mut Vec<(bool, bool)>| {
        if let Some(g) = groups.last_mut() {
            g.0 = true;
        }
    };
    for c in pattern.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                fill(&mut groups);
            }
            '\\' => escaped = true,
            ']' if class => class = false,
            _ if class => {}
            '[' => {
                class = true;
                fill(&mut groups);
            }
            '(' => groups.push((false, false)),
            ')' => {
                if let Some((false, true)) = groups.pop() {
                    return true;
                }
                if groups.is_empty() {
                    groups.push((false, false));
                }
                fill(&mut groups);
            }
            '|' => match groups.last_mut() {
                Some((false, _)) => return true,
                Some(g) => *g = (false, true),
                None => {}
            },
            _ => fill(&mut groups),
        }
    }
    groups.last().is_some_and(|&(filled, bar)| bar && !filled)
}

/// A YAML scalar read as text, so `equals: 200` and `equals: "200"` mean the same.
pub(crate) struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    fn parse(yaml: &str) -> Result<Matcher, String> {
        serde_saphyr::from_str::<Matcher>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn patterns_that_check_nothing_are_refused_with_what_to_write() {
        let e = parse(r#"{matches: "outbound|443||httpbin.org"}"#).expect_err("empty alternative");
        assert!(
            e.contains("empty alternative") && e.contains("equals"),
            "{e}"
        );
        for vacuous in ["|a", "a|", "(a|)", "(|a)", "x(a||b)"] {
            assert!(
                has_empty_alternative(vacuous),
                "{vacuous} has an empty alternative"
            );
        }
        for fine in [
            r"outbound\|443\|\|httpbin\.org",
            "a|b",
            "^(a|b)$",
            "[|]",
            r"a\|",
            "(?:a|b)c",
        ] {
            assert!(!has_empty_alternative(fine), "{fine}");
            assert!(parse(&format!("{{matches: '{fine}'}}")).is_ok(), "{fine}");
        }
        let e = parse(r#"{matches: ".*"}"#).expect_err("matches everything");
        assert!(e.contains("`present`"), "{e}");
        assert!(parse(r#"{matches: "^$"}"#).is_ok(), "only the empty text");
        assert!(parse(r#"{matches: "a*"}"#).is_err(), "a* matches anywhere");
    }

    #[test]
    fn each_rule_passes_and_fails() {
        let cases = [
            ("{equals: a}", Some("a"), Some("b")),
            ("{contains: b}", Some("abc"), Some("ac")),
            ("{matches: '^a+$'}", Some("aaa"), Some("aab")),
            ("present", Some(""), None),
            ("absent", None, Some("x")),
        ];
        for (yaml, good, bad) in cases {
            let m = parse(yaml).unwrap();
            assert!(
                m.check(good, &no_vars).is_ok(),
                "{yaml} should accept {good:?}"
            );
            assert!(
                m.check(bad, &no_vars).is_err(),
                "{yaml} should reject {bad:?}"
            );
        }
    }

    #[test]
    fn numbers_are_read_as_text() {
        let m = parse("{equals: 200}").unwrap();
        assert!(m.check(Some("200"), &no_vars).is_ok());
    }

    #[test]
    fn bad_forms_are_errors() {
        for yaml in [
            "{matches: '('}",
            "{}",
            "{equals: a, contains: b}",
            "{equal: a}",
            "maybe",
            "{present: false}",
            "{equals: a, istio: 'not a range'}",
        ] {
            assert!(parse(yaml).is_err(), "{yaml} should be rejected");
        }
    }

    #[test]
    fn version_limited() {
        let m = parse("{absent: true, istio: '>=1.24'}").unwrap();
        assert!(m.applies_to(&semver::Version::new(1, 24, 0)));
        assert!(!m.applies_to(&semver::Version::new(1, 22, 1)));
    }
}
