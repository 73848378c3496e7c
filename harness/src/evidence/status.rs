//! Gateway API status as evidence: a condition's status on an object, or on each of
//! a route's parents (`status.parents[]`) or a policy's ancestors
//! (`status.ancestors[]`), and a Gateway listener's `attachedRoutes`
//! (kubernetes-sigs/gateway-api apis/v1 gateway_types.go, shared_types.go).

use serde_json::Value;

/// What one status key shows on an object: the value, and the text that explains it
/// (reason and message, per parent where there are several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub value: Option<String>,
    pub evidence: String,
}

/// Reads `key` from an object's status: a condition type (`Accepted`, `Programmed`,
/// `ResolvedRefs`) or `attachedRoutes.<listener>`. A condition on several parents
/// that differ reads as `Kind/name=True, Kind/name=False`.
pub fn read(object: Option<&Value>, key: &str) -> Seen {
    let Some(object) = object else {
        return Seen {
            value: None,
            evidence: "the object does not exist".into(),
        };
    };
    let status = &object["status"];
    if let Some(listener) = key.strip_prefix("attachedRoutes.") {
        let found = items(&status["listeners"]).find(|l| l["name"].as_str() == Some(listener));
        return Seen {
            value: found.and_then(|l| l["attachedRoutes"].as_u64().map(|n| n.to_string())),
            evidence: match found {
                Some(l) => format!("listener {listener}: {}", compact(l)),
                None => format!("no listener {listener} in status.listeners"),
            },
        };
    }
    let per_parent: Vec<(String, Option<&Value>)> = items(&status["parents"])
        .chain(items(&status["ancestors"]))
        .map(|p| {
            let r = p.get("parentRef").or_else(|| p.get("ancestorRef"));
            let kind = r.and_then(|r| r["kind"].as_str()).unwrap_or("Gateway");
            let name = r.and_then(|r| r["name"].as_str()).unwrap_or("?");
            (format!("{kind}/{name}"), condition(&p["conditions"], key))
        })
        .collect();
    if per_parent.is_empty() {
        let c = condition(&status["conditions"], key);
        return Seen {
            value: c.and_then(|c| c["status"].as_str().map(str::to_owned)),
            evidence: c.map_or_else(
                || format!("no {key} condition in status.conditions"),
                explain,
            ),
        };
    }
    let values: Vec<Option<&str>> = per_parent
        .iter()
        .map(|(_, c)| c.and_then(|c| c["status"].as_str()))
        .collect();
    let value = if values.iter().all(|v| *v == values[0]) {
        values[0].map(str::to_owned)
    } else {
        Some(
            per_parent
                .iter()
                .zip(&values)
                .map(|((p, _), v)| format!("{p}={}", v.unwrap_or("none")))
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
    let evidence = per_parent
        .iter()
        .map(|(p, c)| match c {
            Some(c) => format!("{p}: {}", explain(c)),
            None => format!("{p}: no {key} condition"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Seen { value, evidence }
}

fn condition<'a>(conditions: &'a Value, kind: &str) -> Option<&'a Value> {
    items(conditions).find(|c| c["type"].as_str() == Some(kind))
}

fn explain(c: &Value) -> String {
    format!(
        "{}={} ({}: {})",
        c["type"].as_str().unwrap_or("?"),
        c["status"].as_str().unwrap_or("?"),
        c["reason"].as_str().unwrap_or("no reason"),
        c["message"].as_str().unwrap_or("")
    )
}

fn compact(v: &Value) -> String {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("supportedKinds");
    }
    v.to_string()
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_gateway_condition_and_a_listeners_attached_routes_are_read() {
        let gw = json!({"status": {
            "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Resource accepted"},
                {"type": "Programmed", "status": "False", "reason": "Invalid", "message": "no addresses"}
            ],
            "listeners": [{"name": "tls", "attachedRoutes": 0, "supportedKinds": [{"kind": "TLSRoute"}]}]
        }});
        assert_eq!(read(Some(&gw), "Accepted").value.as_deref(), Some("True"));
        let programmed = read(Some(&gw), "Programmed");
        assert_eq!(programmed.value.as_deref(), Some("False"));
        assert!(programmed.evidence.contains("Invalid: no addresses"));
        let attached = read(Some(&gw), "attachedRoutes.tls");
        assert_eq!(attached.value.as_deref(), Some("0"));
        assert!(!attached.evidence.contains("supportedKinds"));
        assert_eq!(read(Some(&gw), "attachedRoutes.http").value, None);
        assert_eq!(read(Some(&gw), "ResolvedRefs").value, None);
        assert_eq!(read(None, "Accepted").evidence, "the object does not exist");
    }

    #[test]
    fn a_route_condition_is_read_on_every_parent() {
        let parent = |kind: &str, name: &str, status: &str| {
            json!({"parentRef": {"kind": kind, "name": name},
                   "conditions": [{"type": "Accepted", "status": status, "reason": "r", "message": "m"}]})
        };
        let agree = json!({"status": {"parents": [parent("ServiceEntry", "se", "True"), parent("Gateway", "gw", "True")]}});
        assert_eq!(
            read(Some(&agree), "Accepted").value.as_deref(),
            Some("True")
        );
        let differ = json!({"status": {"parents": [parent("ServiceEntry", "se", "True"), parent("Gateway", "gw", "False")]}});
        assert_eq!(
            read(Some(&differ), "Accepted").value.as_deref(),
            Some("ServiceEntry/se=True, Gateway/gw=False")
        );
        // A route no controller has looked at has no status at all.
        let unseen = json!({"spec": {}});
        assert_eq!(read(Some(&unseen), "Accepted").value, None);
    }
}
