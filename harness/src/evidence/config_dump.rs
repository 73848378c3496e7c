//! Reading Envoy config dumps for what scenarios leave behind: the hosts of a
//! scenario's ServiceEntries must be gone from the proxies before the next scenario
//! starts, or one scenario's routes could make another pass.

use serde_json::Value;

use crate::manifest::Object;

/// The hosts a scenario brings into the mesh: its ServiceEntries' `spec.hosts`
/// (wildcards left out: they cannot be looked for literally).
pub fn scenario_hosts(objects: &[Object]) -> Vec<String> {
    let mut hosts: Vec<String> = objects
        .iter()
        .filter(|o| o.kind == "ServiceEntry")
        .flat_map(|o| o.spec()["hosts"].as_array().cloned().unwrap_or_default())
        .filter_map(|h| h.as_str().map(str::to_owned))
        .filter(|h| !h.contains('*'))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The hosts of `hosts` that the dump still mentions outside its bootstrap section
/// (clusters `outbound|443||httpbin.org`, listeners, route domains, secrets).
/// The bootstrap is left out: it is fixed at proxy start and names no scenario host.
pub fn leftover_hosts(dump: &str, hosts: &[String]) -> Result<Vec<String>, String> {
    let value: Value =
        serde_json::from_str(dump).map_err(|e| format!("config dump is not JSON: {e}"))?;
    let configs = value["configs"]
        .as_array()
        .ok_or("config dump has no `configs` list")?;
    let dynamic: Vec<&Value> = configs
        .iter()
        .filter(|c| {
            !c["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with(".BootstrapConfigDump"))
        })
        .collect();
    // Listeners being drained (Envoy keeps them for its drain time, 45 s in Istio's
    // proxies: --drain-time-s, istio/istio pkg/envoy/proxy.go) no longer serve traffic,
    // and a route config no active listener names is an orphan waiting for removal:
    // a host seen only there is gone (envoy api/envoy/admin/v3/config_dump_shared.proto,
    // DynamicListener.draining_state, RoutesConfigDump).
    let mut active: Vec<Value> = dynamic.iter().map(|c| (*c).clone()).collect();
    for c in &mut active {
        if let Some(listeners) = c.get_mut("dynamic_listeners").and_then(Value::as_array_mut) {
            for l in listeners.iter_mut() {
                if let Some(map) = l.as_object_mut() {
                    map.remove("draining_state");
                }
            }
        }
    }
    let listeners_text = serde_json::to_string(
        &active
            .iter()
            .filter_map(|c| c.get("dynamic_listeners"))
            .collect::<Vec<_>>(),
    )
    .map_err(|e| e.to_string())?;
    for c in &mut active {
        if let Some(routes) = c
            .get_mut("dynamic_route_configs")
            .and_then(Value::as_array_mut)
        {
            routes.retain(|r| {
                r["route_config"]["name"].as_str().is_none_or(|name| {
                    listeners_text.contains(&format!("\"route_config_name\":\"{name}\""))
                })
            });
        }
    }
    let text = serde_json::to_string(&active).map_err(|e| e.to_string())?;
    Ok(hosts
        .iter()
        .filter(|h| mentions_host(&text, h))
        .cloned()
        .collect())
}

/// `host` as a whole name in `text`: `outbound|80||httpbin.org` names httpbin.org,
/// `en.wikipedia.org` does not name wikipedia.org, so another scenario's config on the
/// same gateway is not taken for this one's leftovers.
fn mentions_host(text: &str, host: &str) -> bool {
    let part_of_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    !host.is_empty()
        && text.match_indices(host).any(|(at, _)| {
            !text[..at].chars().next_back().is_some_and(part_of_name)
                && !text[at + host.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(cluster: &str) -> String {
        serde_json::json!({"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
             "bootstrap": {"node": {"id": "router~10.244.0.6~gw.istio-system~istio-system.svc.cluster.local",
                                    "metadata": {"NOTE": "httpbin.org in the bootstrap is not scenario config"}}}},
            {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
             "dynamic_active_clusters": [{"cluster": {"name": cluster}}]}
        ]})
        .to_string()
    }

    #[test]
    fn a_cluster_left_for_a_host_is_found_and_the_bootstrap_ignored() {
        let hosts = vec!["httpbin.org".to_owned()];
        assert_eq!(
            leftover_hosts(&dump("outbound|443||httpbin.org"), &hosts).unwrap(),
            hosts
        );
        assert!(
            leftover_hosts(
                &dump("outbound|80||kubernetes.default.svc.cluster.local"),
                &hosts
            )
            .unwrap()
            .is_empty()
        );
        assert!(leftover_hosts("<html>", &hosts).is_err());
        assert!(
            leftover_hosts(&dump("outbound|443||myhttpbin.org"), &hosts)
                .unwrap()
                .is_empty()
        );
        assert!(
            leftover_hosts(&dump("outbound|443||httpbin.org-mirror"), &hosts)
                .unwrap()
                .is_empty()
        );
        let family = vec!["wikipedia.org".to_owned()];
        assert!(
            leftover_hosts(&dump("outbound|443||en.wikipedia.org"), &family)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            leftover_hosts(&dump("outbound|443||wikipedia.org"), &family).unwrap(),
            family
        );
        let listener = |state: &str| {
            serde_json::json!({"name": "0.0.0.0_443", state: {"listener": {
                "filter_chains": [{"filter_chain_match": {"server_names": ["httpbin.org"]},
                    "filters": [{"typed_config": {"rds": {"route_config_name": "http.8080"}}}]}]}}})
        };
        let dump = |listeners: Vec<serde_json::Value>, route: &str| {
            serde_json::json!({"configs": [
                {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                 "dynamic_listeners": listeners},
                {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                 "dynamic_route_configs": [{"route_config": {"name": route,
                     "virtual_hosts": [{"domains": ["httpbin.org"]}]}}]}
            ]})
            .to_string()
        };
        assert!(
            leftover_hosts(&dump(vec![listener("draining_state")], "orphan"), &hosts)
                .unwrap()
                .is_empty(),
            "a draining listener and an orphaned route are gone"
        );
        assert_eq!(
            leftover_hosts(&dump(vec![listener("active_state")], "orphan"), &hosts).unwrap(),
            hosts,
            "an active listener still counts"
        );
        assert_eq!(
            leftover_hosts(&dump(vec![], "http.8080"), &hosts).unwrap(),
            Vec::<String>::new(),
            "a route no listener names is an orphan"
        );
    }

    #[test]
    fn hosts_come_from_service_entries_only() {
        let text = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\nspec: {hosts: [httpbin.org, \"*.example.com\"]}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\nspec: {hosts: [other.org]}\n";
        let objects = crate::manifest::parse_str(text, std::path::Path::new("x.yaml")).unwrap();
        assert_eq!(scenario_hosts(&objects), vec!["httpbin.org"]);
    }
}
