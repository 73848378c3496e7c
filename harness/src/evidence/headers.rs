//! Request headers an echo server sent back: httpbin.org (`"Name": "value"`),
//! go-httpbin and the Gateway API echo server (`"Name": ["value", ...]`).

use serde_json::Value;

/// Echoed headers in the order the server gave them; names compare ignoring case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EchoedHeaders {
    pairs: Vec<(String, String)>,
}

impl EchoedHeaders {
    /// Reads a JSON body with a `headers` object (httpbin, go-httpbin, echo-basic).
    pub fn parse(body: &str) -> Result<Self, String> {
        let json: Value =
            serde_json::from_str(body.trim()).map_err(|e| format!("the body is not JSON: {e}"))?;
        let headers = json
            .get("headers")
            .or_else(|| json.get("request").and_then(|r| r.get("headers")))
            .and_then(Value::as_object)
            .ok_or("the body has no `headers` object")?;
        let mut pairs = Vec::new();
        for (name, value) in headers {
            match value {
                Value::String(s) => pairs.push((name.clone(), s.clone())),
                Value::Array(values) => {
                    for v in values {
                        let text = v
                            .as_str()
                            .ok_or_else(|| format!("header {name} has a non-text value"))?;
                        pairs.push((name.clone(), text.to_owned()));
                    }
                }
                other => {
                    return Err(format!(
                        "header {name} is {other}, neither text nor a list of text"
                    ));
                }
            }
        }
        Ok(Self { pairs })
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// All values of a header joined with `,` (as HTTP folds repeated headers).
    pub fn get(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .pairs
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Names lower-cased, values of repeated headers joined: for reports and `explain`.
    pub fn normalised(&self) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        for (name, _) in &self.pairs {
            let key = name.to_ascii_lowercase();
            if !out.contains_key(&key) {
                out.insert(key, Value::String(self.get(name).unwrap_or_default()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_httpbin_and_go_httpbin_shapes() {
        let httpbin = EchoedHeaders::parse(
            r#"{"headers": {"Host": "httpbin.org", "X-Envoy-Internal": "true"}}"#,
        )
        .unwrap();
        assert_eq!(httpbin.get("x-envoy-internal").as_deref(), Some("true"));
        let go =
            EchoedHeaders::parse(r#"{"headers": {"Host": ["httpbin.org"], "Via": ["a", "b"]}}"#)
                .unwrap();
        assert_eq!(go.get("VIA").as_deref(), Some("a,b"));
        assert_eq!(go.get("X-Missing"), None);
        assert_eq!(go.normalised()["via"], "a,b");
    }

    #[test]
    fn rejects_what_is_not_an_echo() {
        for body in [
            "",
            "<html>",
            r#"{"args": {}}"#,
            r#"{"headers": {"A": 1}}"#,
            r#"{"headers": {"A": [1]}}"#,
        ] {
            assert!(EchoedHeaders::parse(body).is_err(), "{body}");
        }
    }
}
