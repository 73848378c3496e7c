//! Expected values may name facts of the run that a scenario file cannot know,
//! e.g. `spiffe://cluster.local/ns/${namespace}/sa/default`.

/// Variables a template may use; the run supplies their values.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "namespace",
        "the scenario's namespace (where the client pod runs)",
    ),
    ("client_pod", "the client pod's name"),
    ("service_account", "the client pod's service account"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

/// Text with `${name}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
            let name = &after[..end];
            if !VARIABLES.iter().any(|(known, _)| *known == name) {
                let known: Vec<_> = VARIABLES.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown variable `${{{name}}}`; known: {}",
                    known.join(", ")
                ));
            }
            pieces.push(Piece::Var(name.to_owned()));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self { pieces })
    }

    /// Fills the placeholders; an unknown value stays as `${name}` so a diff shows it.
    pub fn render(&self, vars: &dyn Fn(&str) -> Option<String>) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Var(v) => vars(v).unwrap_or_else(|| format!("${{{v}}}")),
            })
            .collect()
    }

    pub fn variables(&self) -> Vec<&str> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Var(v) => Some(v.as_str()),
                Piece::Text(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_variables() {
        let t = Template::parse("spiffe://cluster.local/ns/${namespace}/sa/default").unwrap();
        let vars = |n: &str| (n == "namespace").then(|| "egress".to_owned());
        assert_eq!(
            t.render(&vars),
            "spiffe://cluster.local/ns/egress/sa/default"
        );
        assert_eq!(
            t.render(&|_| None),
            "spiffe://cluster.local/ns/${namespace}/sa/default"
        );
    }

    #[test]
    fn rejects_unknown_and_unclosed() {
        assert!(
            Template::parse("${nope}")
                .unwrap_err()
                .contains("known: namespace")
        );
        assert!(Template::parse("a ${namespace").is_err());
        assert_eq!(
            Template::parse("plain").unwrap().variables(),
            Vec::<&str>::new()
        );
    }
}
