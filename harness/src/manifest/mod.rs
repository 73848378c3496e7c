//! Kubernetes and Istio objects in the YAML files scenarios apply, and the offline
//! checks on them: known kinds and fields, and consistent hosts, gateways and ports.

mod consistency;
pub mod kinds;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use consistency::{EGRESS_GATEWAY_HOST, MeshService, check_consistency};
pub use kinds::{GATEWAY_API_GROUP, KINDS, Kind, check_kind};

/// One object from a manifest file.
#[derive(Debug, Clone)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub body: Value,
    pub file: PathBuf,
    /// Line where the object's document starts.
    pub line: u64,
}

impl Object {
    pub fn spec(&self) -> &Value {
        &self.body["spec"]
    }

    /// Whether the object is a Gateway API one (`gateway.networking.k8s.io`).
    pub fn is_gateway_api(&self) -> bool {
        self.api_version
            .split('/')
            .next()
            .is_some_and(|group| group == kinds::GATEWAY_API_GROUP)
    }

    /// `Kind/name` as kubectl prints it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// A problem with a manifest, located at its object's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: u64,
    pub object: Option<String>,
    pub message: String,
}

impl Problem {
    pub fn on(object: &Object, message: impl Into<String>) -> Self {
        Self {
            file: object.file.clone(),
            line: object.line,
            object: Some(object.id()),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Reads a multi-document YAML file into objects.
pub fn parse_file(path: &Path) -> Result<Vec<Object>, Problem> {
    parse_str(&read(path)?, path)
}

fn read(path: &Path) -> Result<String, Problem> {
    std::fs::read_to_string(path).map_err(|e| Problem {
        file: path.to_owned(),
        line: 1,
        object: None,
        message: format!("cannot read: {e}"),
    })
}

/// Reads a scenario's manifest, `${namespace}` replaced by the namespace it is applied
/// in (an AuthorizationPolicy in istio-system naming the client's principal needs it).
pub fn parse_file_in(path: &Path, namespace: &str) -> Result<Vec<Object>, Problem> {
    parse_str(&in_namespace(&read(path)?, path, namespace)?, path)
}

/// `text` with `${namespace}` filled; any other `${…}` is an error at its line, since
/// Kubernetes would take it literally.
pub fn in_namespace(text: &str, path: &Path, namespace: &str) -> Result<String, Problem> {
    let filled = text.replace(NAMESPACE_VARIABLE, namespace);
    if let Some((i, line)) = filled
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("${") && !l.trim_start().starts_with('#'))
    {
        return Err(Problem {
            file: path.to_owned(),
            line: i as u64 + 1,
            object: None,
            message: format!(
                "`{}`: a manifest may use only {NAMESPACE_VARIABLE}",
                line.trim()
            ),
        });
    }
    Ok(filled)
}

/// The one template value manifests may use.
pub const NAMESPACE_VARIABLE: &str = "${namespace}";

/// Parses multi-document YAML text; `path` is only used in messages.
pub fn parse_str(text: &str, path: &Path) -> Result<Vec<Object>, Problem> {
    let problem = |line: u64, message: String| Problem {
        file: path.to_owned(),
        line,
        object: None,
        message,
    };
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line());
        problem(line, format!("not valid YAML: {}", e.without_snippet()))
    })?;
    let starts = document_lines(text);
    let mut objects = Vec::new();
    // Empty documents are skipped by the parser; pair the rest with their start lines.
    let mut non_empty_starts = starts
        .into_iter()
        .filter(|(_, empty)| !empty)
        .map(|(line, _)| line);
    for doc in docs {
        let line = non_empty_starts.next().unwrap_or(1);
        if doc.is_null() {
            continue;
        }
        let text_field = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
        let Some(api_version) = text_field("apiVersion") else {
            return Err(problem(line, "a document without apiVersion".into()));
        };
        let Some(kind) = text_field("kind") else {
            return Err(problem(line, "a document without kind".into()));
        };
        let metadata = &doc["metadata"];
        let Some(name) = metadata
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return Err(problem(line, format!("{kind} without metadata.name")));
        };
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        objects.push(Object {
            api_version,
            kind,
            name,
            namespace,
            body: doc,
            file: path.to_owned(),
            line,
        });
    }
    if objects.is_empty() {
        return Err(problem(1, "no Kubernetes objects in the file".into()));
    }
    Ok(objects)
}

/// The first content line of every document, and whether it holds nothing but comments.
fn document_lines(text: &str) -> Vec<(u64, bool)> {
    let mut docs = Vec::new();
    let mut current: Option<(u64, bool)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let trimmed = raw.trim();
        if raw.starts_with("---") {
            if let Some(doc) = current.take() {
                docs.push(doc);
            }
            current = Some((line + 1, true));
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match &mut current {
            Some((start, empty)) if *empty => {
                *start = line;
                *empty = false;
            }
            Some(_) => {}
            None => current = Some((line, false)),
        }
    }
    docs.extend(current);
    docs
}

/// RFC 7386 JSON merge patch: maps merge key by key, `null` removes, anything else
/// replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(fields) = target {
        for (key, value) in changes {
            if value.is_null() {
                fields.remove(key);
            } else {
                merge_patch(
                    fields.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
    }
}

/// The containers of a Pod, or of a workload's pod template.
pub fn containers(object: &Object) -> impl Iterator<Item = &Value> {
    let spec = object.spec();
    let pod = if object.kind == "Pod" {
        spec
    } else {
        &spec["template"]["spec"]
    };
    pod["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(pod["initContainers"].as_array().into_iter().flatten())
}

/// Whether a client manifest lets Istio inject a sidecar: not when it says
/// `sidecar.istio.io/inject: "false"`.
pub fn wants_sidecar(client: &[Object]) -> bool {
    !client.iter().any(|o| {
        o.body["metadata"]["annotations"]["sidecar.istio.io/inject"].as_str() == Some("false")
    })
}

impl Object {
    /// An object made by the harness itself (a Secret), not read from a file.
    pub fn from_json(body: Value) -> Option<Self> {
        let meta = &body["metadata"];
        Some(Self {
            api_version: body["apiVersion"].as_str()?.to_owned(),
            kind: body["kind"].as_str()?.to_owned(),
            name: meta["name"].as_str()?.to_owned(),
            namespace: meta["namespace"].as_str().map(str::to_owned),
            file: PathBuf::from("<generated>"),
            line: 0,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_patch_merges_maps_removes_nulls_and_replaces_the_rest() {
        let mut body =
            serde_json::json!({"spec": {"hosts": ["a"], "http": [{"timeout": "5s"}], "keep": 1}});
        merge_patch(
            &mut body,
            &serde_json::json!({"spec": {"http": [{"timeout": "3s"}], "keep": null, "new": {"x": 1}}}),
        );
        assert_eq!(
            body,
            serde_json::json!({"spec": {"hosts": ["a"], "http": [{"timeout": "3s"}], "new": {"x": 1}}})
        );
    }

    #[test]
    fn a_manifest_may_name_its_namespace_and_nothing_else_unfilled() {
        let path = Path::new("manifests/authz/p.yaml");
        let text = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p-${namespace}, namespace: istio-system}\nspec:\n  rules:\n    - from:\n        - source: {principals: [\"cluster.local/ns/${namespace}/sa/default\"]}\n";
        let filled = in_namespace(text, path, "demo").unwrap();
        let objects = parse_str(&filled, path).unwrap();
        assert_eq!(objects[0].name, "p-demo");
        assert_eq!(
            objects[0].spec()["rules"][0]["from"][0]["source"]["principals"][0],
            "cluster.local/ns/demo/sa/default"
        );
        let other = in_namespace(
            &text.replace("${namespace}/sa", "${client_pod}/sa"),
            path,
            "demo",
        )
        .unwrap_err();
        assert_eq!(other.line, 7);
        assert!(
            other.message.contains("only ${namespace}"),
            "{}",
            other.message
        );
        // A comment may mention it.
        assert!(in_namespace("# uses ${other}\n", path, "demo").is_ok());
    }

    #[test]
    fn objects_carry_their_document_line() {
        let text = "# header\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n---\n# c\napiVersion: v1\nkind: Secret\nmetadata: {name: b, namespace: istio-system}\n";
        let objects = parse_str(text, Path::new("m.yaml")).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(
            (objects[0].line, objects[0].id()),
            (2, "Service/a".to_owned())
        );
        assert_eq!(
            (objects[1].line, objects[1].namespace.as_deref()),
            (8, Some("istio-system"))
        );
    }

    #[test]
    fn broken_documents_are_located() {
        let e = parse_str(
            "apiVersion: v1\nkind: Service\nmetadata: {}\n",
            Path::new("m.yaml"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("m.yaml:1: Service without metadata.name"),
            "{e}"
        );
        assert!(parse_str("kind: [\n", Path::new("m.yaml")).is_err());
        assert!(parse_str("", Path::new("m.yaml")).is_err());
    }
}
