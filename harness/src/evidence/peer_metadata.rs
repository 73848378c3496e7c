//! Istio's metadata-exchange headers.
//!
//! X-Envoy-Peer-Metadata is base64 (standard alphabet) of a serialised
//! google.protobuf.Struct (istio/proxy source/extensions/filters/http/peer_metadata/filter.cc).
//! X-Envoy-Peer-Metadata-Id is the Envoy node id `<type>~<ip>~<pod>.<ns>~<domain>`
//! (istio/istio pkg/istio-agent/agent.go, pkg/model/proxy.go).

use base64::Engine;
use prost::Message;
use prost_types::value::Kind;
use serde_json::{Map, Value};

/// X-Envoy-Peer-Metadata-Id split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerId {
    /// `sidecar`, `router` (gateways), `waypoint` or `ztunnel`.
    pub proxy_type: String,
    pub ip: String,
    pub pod: String,
    pub namespace: String,
    pub domain: String,
}

impl PeerId {
    pub fn parse(id: &str) -> Result<Self, String> {
        let parts: Vec<&str> = id.trim().split('~').collect();
        let [proxy_type, ip, pod_ns, domain] = parts[..] else {
            return Err(format!(
                "`{id}` is not <type>~<ip>~<pod>.<namespace>~<domain>"
            ));
        };
        let (pod, namespace) = pod_ns
            .rsplit_once('.')
            .ok_or_else(|| format!("`{pod_ns}` is not <pod>.<namespace>"))?;
        if [proxy_type, ip, pod, namespace]
            .iter()
            .any(|p| p.is_empty())
        {
            return Err(format!("`{id}` has an empty part"));
        }
        Ok(Self {
            proxy_type: proxy_type.into(),
            ip: ip.into(),
            pod: pod.into(),
            namespace: namespace.into(),
            domain: domain.into(),
        })
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({"proxy_type": self.proxy_type, "ip": self.ip, "pod": self.pod, "namespace": self.namespace, "domain": self.domain})
    }
}

/// Decodes X-Envoy-Peer-Metadata into a JSON object.
pub fn decode(header: &str) -> Result<Map<String, Value>, String> {
    let text = header.trim();
    // The reader side decodes without padding, so accept both.
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim_end_matches('='))
        })
        .map_err(|e| format!("not base64: {e}"))?;
    let s = prost_types::Struct::decode(bytes.as_slice())
        .map_err(|e| format!("not a protobuf Struct: {e}"))?;
    Ok(struct_to_json(&s))
}

fn struct_to_json(s: &prost_types::Struct) -> Map<String, Value> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), value_to_json(v)))
        .collect()
}

fn value_to_json(v: &prost_types::Value) -> Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::NumberValue(n)) => {
            serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
        }
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StructValue(s)) => Value::Object(struct_to_json(s)),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(value_to_json).collect()),
    }
}

/// A value by `KEY` or `KEY.inner` (one level down, where `inner` may itself hold dots,
/// as label keys do), as text.
pub fn lookup(metadata: &Map<String, Value>, key: &str) -> Option<String> {
    let value = match metadata.get(key) {
        Some(v) => v,
        None => {
            let (top, inner) = key.split_once('.')?;
            metadata.get(top)?.get(inner)?
        }
    };
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sidecar_and_gateway_ids() {
        let gw = PeerId::parse("router~10.244.0.6~istio-egressgateway-75c5457c56-htpvz.istio-system~istio-system.svc.cluster.local").unwrap();
        assert_eq!(
            (
                gw.proxy_type.as_str(),
                gw.pod.as_str(),
                gw.namespace.as_str()
            ),
            (
                "router",
                "istio-egressgateway-75c5457c56-htpvz",
                "istio-system"
            )
        );
        let sc =
            PeerId::parse("sidecar~10.244.0.7~curl.default~default.svc.cluster.local").unwrap();
        assert_eq!(
            (sc.ip.as_str(), sc.domain.as_str()),
            ("10.244.0.7", "default.svc.cluster.local")
        );
        for bad in ["", "sidecar~1.2.3.4~curl~d", "a~b~c.d", "~~.~"] {
            assert!(PeerId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decodes_a_struct_round_trip() {
        let mut labels = prost_types::Struct::default();
        labels.fields.insert(
            "service.istio.io/canonical-name".into(),
            prost_types::Value {
                kind: Some(Kind::StringValue("curl".into())),
            },
        );
        let mut s = prost_types::Struct::default();
        s.fields.insert(
            "NAME".into(),
            prost_types::Value {
                kind: Some(Kind::StringValue("curl".into())),
            },
        );
        s.fields.insert(
            "LABELS".into(),
            prost_types::Value {
                kind: Some(Kind::StructValue(labels)),
            },
        );
        let header = base64::engine::general_purpose::STANDARD.encode(s.encode_to_vec());
        let json = decode(&header).unwrap();
        assert_eq!(lookup(&json, "NAME").as_deref(), Some("curl"));
        assert_eq!(
            lookup(&json, "LABELS.service.istio.io/canonical-name").as_deref(),
            Some("curl")
        );
        assert_eq!(lookup(&json, "LABELS.app"), None);
        assert!(decode("not base64!").is_err());
        assert!(decode("////").is_err());
    }
}
