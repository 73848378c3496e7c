//! The Kubernetes API of a simulated cluster: namespaces and objects, Deployments
//! and pods that become ready, exec of curl, access logs and config dumps.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use async_trait::async_trait;
use egress_harness::manifest::Object;
use egress_harness::model::mesh;
use egress_harness::seams::{Applied, Exec, InfraError, KubeApi, KubeConnector};
use k8s_openapi::jiff::Timestamp;

use super::faults::FAILING_API_CALLS;
use super::gateway_api;
use super::{Cluster, Fault, LogLine, Sim};

pub struct Connector(pub Sim);

#[async_trait]
impl KubeConnector for Connector {
    async fn connect(&self, kubeconfig: Option<&Path>) -> Result<Arc<dyn KubeApi>, InfraError> {
        let Some(path) = kubeconfig else {
            if self
                .0
                .world()
                .clusters
                .contains_key(super::EXISTING_CLUSTER)
            {
                return Ok(Arc::new(Api {
                    sim: self.0.clone(),
                    cluster: super::EXISTING_CLUSTER.into(),
                }));
            }
            return Err(InfraError::new(
                "the simulation has no current kube context (add one with Sim::add_existing_cluster)",
            ));
        };
        let cluster = super::host::cluster_of(path).ok_or_else(|| {
            InfraError::new(format!(
                "kubeconfig {}: no simulated cluster",
                path.display()
            ))
        })?;
        Ok(Arc::new(Api {
            sim: self.0.clone(),
            cluster,
        }))
    }
}

struct Api {
    sim: Sim,
    cluster: String,
}

/// ztunnel's pod on the simulated cluster's one node.
const ZTUNNEL_POD: &str = "ztunnel-sim0";

/// Whether the cluster runs ztunnel (the ambient profile, or ambient beside sidecars).
fn ambient(c: &Cluster) -> bool {
    c.istio.is_some() && c.ztunnel
}

/// A gateway replica's pod name; the second exists under `gateway-logs-unreadable`.
fn gateway_pod(i: usize) -> String {
    format!("istio-egressgateway-7d9f5c6b8-sim{i}")
}

impl Api {
    /// Counts the call; the first few answer 503 under `apiserver-503`.
    fn call(&self) -> Result<(), InfraError> {
        let mut world = self.sim.world();
        world.api_calls += 1;
        if self.sim.faults.has(Fault::Apiserver503) && world.api_calls <= FAILING_API_CALLS {
            return Err(InfraError::from_api(
                "ApiError: the server is currently unable to handle the request: Service Unavailable (503)",
            ));
        }
        Ok(())
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Cluster) -> Result<T, InfraError>,
    ) -> Result<T, InfraError> {
        self.call()?;
        let mut world = self.sim.world();
        let cluster = world.clusters.get_mut(&self.cluster).ok_or_else(|| {
            InfraError::new(format!(
                "cluster {}: connection refused (it was deleted)",
                self.cluster
            ))
        })?;
        f(cluster)
    }

    /// The first readiness watch of the run ends with 410 Gone under `watch-gone-410`.
    fn watch(&self) -> Result<(), InfraError> {
        let mut world = self.sim.world();
        world.watches += 1;
        if self.sim.faults.has(Fault::WatchGone410) && world.watches == 1 {
            return Err(InfraError::from_api(
                "watch: ErrorResponse: 410 Gone: too old resource version",
            ));
        }
        Ok(())
    }

    fn gateway_pods(&self) -> Vec<String> {
        let replicas = if self.sim.faults.has(Fault::GatewayLogsUnreadable) {
            2
        } else {
            1
        };
        (0..replicas).map(gateway_pod).collect()
    }
}

/// The mesh settings the client in `namespace` runs with: the mesh config, a
/// namespace-wide Sidecar's outboundTrafficPolicy, the pod's proxy.istio.io/config.
fn effective(c: &Cluster, namespace: &str) -> super::data::Effective {
    let mesh = c
        .mesh_config
        .as_deref()
        .and_then(|m| egress_harness::mesh_config::MeshConfig::parse(m).ok());
    let mut allow_any = mesh
        .as_ref()
        .is_some_and(|m| m.outbound_traffic_policy == "ALLOW_ANY");
    let mut in_mesh_headers = mesh.as_ref().is_some_and(|m| m.metadata_exchange_in_mesh);
    if let Some(ns) = c.namespaces.get(namespace) {
        for ((kind, _), body) in &ns.objects {
            match kind.as_str() {
                "Sidecar" if body["spec"]["workloadSelector"].is_null() => {
                    if let Some(mode) = body["spec"]["outboundTrafficPolicy"]["mode"].as_str() {
                        allow_any = mode == "ALLOW_ANY";
                    }
                }
                "Pod" => {
                    let config = body["metadata"]["annotations"]["proxy.istio.io/config"]
                        .as_str()
                        .and_then(|t| {
                            egress_harness::mesh_config::MeshConfig::parse(&format!(
                                "defaultConfig:\n{}",
                                indent(t)
                            ))
                            .ok()
                        });
                    if let Some(c) = config
                        && c.metadata_exchange_in_mesh
                    {
                        in_mesh_headers = true;
                    }
                }
                _ => {}
            }
        }
    }
    super::data::Effective {
        allow_any,
        in_mesh_headers,
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

fn timed_out(what: &str, timeout: Duration) -> InfraError {
    InfraError::new(format!(
        "{what} not ready after {}s (simulated)",
        timeout.as_secs()
    ))
}

/// The hosts a ServiceEntry brings (`spec.hosts`).
fn hosts_of(body: &serde_json::Value) -> Vec<String> {
    body["spec"]["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str().map(str::to_owned))
        .collect()
}

/// Hosts of every ServiceEntry in the cluster.
fn mesh_hosts(cluster: &Cluster) -> Vec<String> {
    cluster
        .namespaces
        .values()
        .flat_map(|n| n.objects.iter())
        .filter(|((kind, _), _)| kind == "ServiceEntry")
        .flat_map(|(_, body)| hosts_of(body))
        .collect()
}

/// Proxies hold a deleted host for this many dump reads (Istio pushes asynchronously).
const LINGER_READS: u32 = 2;

fn forget(cluster: &mut Cluster, body: &serde_json::Value, kind: &str, keep: bool) {
    if kind == "ServiceEntry" {
        for host in hosts_of(body) {
            cluster
                .lingering
                .insert(host, if keep { u32::MAX } else { LINGER_READS });
        }
    }
}

#[async_trait]
impl KubeApi for Api {
    async fn server_version(&self) -> Option<String> {
        let world = self.sim.world();
        let image = world.clusters.get(&self.cluster)?.node_image.clone()?;
        image
            .split("kindest/node:")
            .nth(1)
            .and_then(|t| t.split('@').next())
            .map(|v| format!("{v} (simulated)"))
    }

    async fn create_namespace(
        &self,
        name: &str,
        labels: &[(String, String)],
    ) -> Result<(), InfraError> {
        self.with(|c| {
            let ns = c.namespaces.entry(name.to_owned()).or_default();
            ns.labels.extend(labels.iter().cloned());
            Ok(())
        })
    }

    async fn delete_namespace(&self, name: &str, _timeout: Duration) -> Result<(), InfraError> {
        let keep = self.sim.faults.has(Fault::ConfigDumpKeepsHost);
        self.with(|c| {
            if let Some(ns) = c.namespaces.remove(name) {
                for ((kind, _), body) in &ns.objects {
                    forget(c, body, kind, keep);
                }
            }
            c.logs.retain(|(ns, _), _| ns != name);
            Ok(())
        })
    }

    async fn apply(&self, objects: &[Object], namespace: &str) -> Result<Vec<Applied>, InfraError> {
        self.with(|c| {
            let mut applied = Vec::new();
            for o in objects {
                if o.kind == "CustomResourceDefinition" {
                    c.crds.insert(o.name.clone(), o.body.clone());
                    if c.istio.is_some() && !c.istiod_crds.contains_key(&o.name) {
                        c.istiod_crds.insert(o.name.clone(), o.body.clone());
                    }
                    applied.push(Applied {
                        api_version: o.api_version.clone(),
                        kind: o.kind.clone(),
                        name: o.name.clone(),
                        namespace: None,
                    });
                    continue;
                }
                // As discovery answers live (live::k8s dynamic_api).
                if o.is_gateway_api() && !gateway_api::served(c, &o.api_version, &o.kind) {
                    return Err(InfraError::new(format!(
                        "{}:{}: applying {}: the cluster does not serve {} {}: no such CRD version (simulated)",
                        o.file.display(),
                        o.line,
                        o.id(),
                        o.api_version,
                        o.kind
                    )));
                }
                let ns = o.namespace.clone().unwrap_or_else(|| namespace.to_owned());
                let Some(target) = c.namespaces.get_mut(&ns) else {
                    return Err(InfraError::new(format!(
                        "applying {}: namespaces \"{ns}\" not found",
                        o.id()
                    )));
                };
                target
                    .objects
                    .insert((o.kind.clone(), o.name.clone()), o.body.clone());
                if o.kind == "ServiceEntry" {
                    for host in hosts_of(&o.body) {
                        c.lingering.remove(&host);
                    }
                }
                applied.push(Applied {
                    api_version: o.api_version.clone(),
                    kind: o.kind.clone(),
                    name: o.name.clone(),
                    namespace: Some(ns),
                });
            }
            Ok(applied)
        })
    }

    async fn delete(&self, applied: &[Applied]) -> Result<(), InfraError> {
        let keep = self.sim.faults.has(Fault::ConfigDumpKeepsHost);
        let stuck = self.sim.faults.has(Fault::CrdStuckTerminating);
        self.with(|c| {
            for a in applied {
                if a.kind == "CustomResourceDefinition" && stuck {
                    continue;
                }
                if a.kind == "CustomResourceDefinition" {
                    // Objects of the kind go with it.
                    if c.crds.remove(&a.name).is_some() {
                        let (plural, group) = a.name.split_once('.').unwrap_or_default();
                        for n in c.namespaces.values_mut() {
                            n.objects.retain(|(k, _), body| {
                                let in_group = body["apiVersion"]
                                    .as_str()
                                    .is_some_and(|v| v.starts_with(&format!("{group}/")));
                                !(in_group && super::gateway_api::plural(k) == plural)
                            });
                        }
                    }
                    continue;
                }
                let ns = a.namespace.clone().unwrap_or_default();
                let removed = c
                    .namespaces
                    .get_mut(&ns)
                    .and_then(|n| n.objects.remove(&(a.kind.clone(), a.name.clone())));
                if let Some(body) = removed {
                    forget(c, &body, &a.kind, keep);
                }
            }
            Ok(())
        })
    }

    async fn restart_deployment(&self, namespace: &str, name: &str) -> Result<(), InfraError> {
        self.call()?;
        self.with(|c| {
            let known = match namespace {
                mesh::ISTIO_NAMESPACE => c.istio.is_some(),
                _ => c.namespaces.get(namespace).is_some_and(|n| {
                    n.objects
                        .contains_key(&("Deployment".to_owned(), name.to_owned()))
                }),
            };
            if !known {
                return Err(InfraError::new(format!(
                    "deployments.apps \"{name}\" not found (simulated)"
                )));
            }
            if (namespace, name) == (mesh::ISTIO_NAMESPACE, mesh::ISTIOD_DEPLOYMENT) {
                c.istiod_crds = c.crds.clone();
            }
            Ok(())
        })?;
        self.sim
            .world()
            .restarts
            .push((self.cluster.clone(), format!("{namespace}/{name}")));
        Ok(())
    }

    async fn wait_deployment(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Duration, InfraError> {
        self.watch()?;
        let never = self.sim.faults.has(Fault::IstiodNeverReady) && name == mesh::ISTIOD_DEPLOYMENT;
        self.with(|c| {
            let ready = match (namespace, name) {
                ("kube-system", "coredns") => true,
                (mesh::ISTIO_NAMESPACE, _) => c.istio.is_some() && !never,
                // Istio's deployment controller runs one for a Gateway it deploys; a
                // scenario's own Deployment is ready once applied.
                (ns, deployment) => {
                    gateway_api::deployed_gateway(c, ns).is_some_and(|g| g.deployment == deployment)
                        || c.namespaces.get(ns).is_some_and(|n| {
                            n.objects
                                .contains_key(&("Deployment".into(), deployment.into()))
                        })
                }
            };
            if ready {
                Ok(Duration::from_millis(20))
            } else {
                Err(timed_out(
                    &format!("Deployment {namespace}/{name}"),
                    timeout,
                ))
            }
        })
    }

    async fn wait_pod(
        &self,
        namespace: &str,
        name: &str,
        sidecar: bool,
        timeout: Duration,
    ) -> Result<Duration, InfraError> {
        self.watch()?;
        let faults = self.sim.faults.clone();
        self.with(|c| {
            let ns = c.namespaces.get(namespace);
            let exists = ns.is_some_and(|n| n.objects.contains_key(&("Pod".into(), name.into())));
            if !exists || faults.has(Fault::PodNeverReady) {
                return Err(timed_out(&format!("Pod {namespace}/{name}"), timeout));
            }
            let injected = ns.is_some_and(|n| {
                n.labels.get("istio-injection").map(String::as_str) == Some("enabled")
            }) && !faults.has(Fault::NoSidecarInjected);
            if sidecar && !injected {
                return Err(InfraError::new(format!(
                    "Pod {namespace}/{name} is ready without an istio-proxy container after {}s: is sidecar injection enabled? (simulated)",
                    timeout.as_secs()
                )));
            }
            Ok(Duration::from_millis(30))
        })
    }

    async fn pods(&self, namespace: &str, selector: &str) -> Result<Vec<String>, InfraError> {
        self.call()?;
        if let Some(name) = selector.strip_prefix("gateway.networking.k8s.io/gateway-name=") {
            return self.with(|c| {
                Ok(gateway_api::deployed_gateway(c, namespace)
                    .filter(|g| g.name == name)
                    .map(|g| g.pod())
                    .into_iter()
                    .collect())
            });
        }
        if (namespace, selector) == (mesh::ISTIO_NAMESPACE, mesh::ZTUNNEL_SELECTOR) {
            return self.with(|c| {
                Ok(ambient(c)
                    .then(|| ZTUNNEL_POD.to_owned())
                    .into_iter()
                    .collect())
            });
        }
        Ok(match (namespace, selector) {
            (mesh::ISTIO_NAMESPACE, mesh::GATEWAY_SELECTOR) => self.gateway_pods(),
            (mesh::ISTIO_NAMESPACE, mesh::ISTIOD_SELECTOR) => vec!["istiod-5c9f8d7b6-sim0".into()],
            _ => Vec::new(),
        })
    }

    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        _container: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<Exec, InfraError> {
        let exists = self.with(|c| {
            Ok(c.namespaces
                .get(namespace)
                .is_some_and(|n| n.objects.contains_key(&("Pod".into(), pod.into()))))
        })?;
        if !exists {
            // As the API server answers an exec into a pod that is not there.
            return Err(InfraError::new(format!(
                "pods \"{pod}\" not found (simulated)"
            )));
        }
        let hook = self
            .sim
            .on_first_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(hook) = hook {
            hook();
        }
        let faults = &self.sim.faults;
        if faults.has(Fault::Interrupt) {
            let first = {
                let mut world = self.sim.world();
                !std::mem::replace(&mut world.interrupted, true)
            };
            if first {
                // The real signal, so the harness's one handler is what reacts.
                // SAFETY: kill(2) on our own pid; no memory is shared.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGINT);
                }
                // Real time, blocking: the handler runs on a thread of its own, and a
                // virtual clock would jump past any wait for it.
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if faults.has(Fault::ExecTimeout) {
            return Err(InfraError::new(format!(
                "exec in {namespace}/{pod} took longer than {}s (simulated)",
                timeout.as_secs()
            )));
        }
        let (istio, gateway_pod_for_logs, effective) = {
            let world = self.sim.world();
            let cluster = world.clusters.get(&self.cluster);
            let istio = cluster
                .and_then(|c| c.istio.as_ref().map(|(v, _)| v.clone()))
                .ok_or_else(|| InfraError::new("exec: the cluster has no Istio"))?;
            let effective = cluster.map(|c| effective(c, namespace));
            let pods = self.gateway_pods();
            // The scenario's own Gateway API gateway, else istio-system's.
            let deployed = cluster
                .and_then(|c| gateway_api::deployed_gateway(c, namespace))
                .map(|g| (namespace.to_owned(), g.pod()));
            (
                istio,
                deployed.unwrap_or_else(|| {
                    (
                        mesh::ISTIO_NAMESPACE.to_owned(),
                        pods.last().cloned().unwrap_or_else(|| gateway_pod(0)),
                    )
                }),
                effective.unwrap_or(super::data::Effective {
                    allow_any: false,
                    in_mesh_headers: false,
                }),
            )
        };
        let sampled = {
            let mut world = self.sim.world();
            world.requests += 1;
            faults.has(Fault::TraceSampled) || world.requests.is_multiple_of(100)
        };
        // The scenario a namespace belongs to: its label, as the plan sets it.
        let scenario = self.with(|c| {
            Ok(c.namespaces
                .get(namespace)
                .and_then(|n| n.labels.get("egress-conformance/scenario").cloned())
                .unwrap_or_else(|| namespace.to_owned()))
        })?;
        let present = self.with(|c| {
            Ok(c.namespaces
                .iter()
                .flat_map(|(ns, n)| {
                    n.objects.iter().map(|((kind, name), body)| {
                        ((kind.clone(), ns.clone(), name.clone()), body.to_string())
                    })
                })
                .collect())
        })?;
        let answer = self.sim.data.answer(
            &super::data::Call {
                scenario: &scenario,
                namespace,
                pod,
                argv,
                present: &present,
            },
            &istio,
            sampled,
            effective,
        )?;
        if faults.has(Fault::ExecLost) {
            let cut: String = answer
                .stdout
                .chars()
                .take(answer.stdout.len() / 2)
                .collect();
            return Ok(Exec {
                stdout: cut,
                stderr: String::new(),
                exit_code: None,
            });
        }
        let visible = if faults.has(Fault::LogLineLate) {
            Instant::now() + Duration::from_secs(2)
        } else {
            Instant::now()
        };
        if !faults.has(Fault::LogLineNever) {
            self.with(|c| {
                for (proxy, text) in answer
                    .gateway_lines
                    .iter()
                    .map(|l| (gateway_pod_for_logs.clone(), l))
                    .chain(
                        answer
                            .sidecar_lines
                            .iter()
                            .map(|l| ((namespace.to_owned(), pod.to_owned()), l)),
                    )
                {
                    let cluster = egress_harness::evidence::access_log::parse_line(text)
                        .ok()
                        .and_then(|e| {
                            e.get(egress_harness::evidence::access_log::Field::UpstreamCluster)
                                .map(str::to_owned)
                        });
                    if let Some(cluster) = cluster {
                        *c.stats
                            .entry(proxy)
                            .or_default()
                            .entry(format!("cluster.{cluster}.upstream_cx_total"))
                            .or_default() += 1;
                    }
                }
                let line = |text: String| LogLine {
                    visible,
                    written: egress_harness::model::virtual_now(),
                    text,
                };
                for text in answer.gateway_lines {
                    c.logs
                        .entry(gateway_pod_for_logs.clone())
                        .or_default()
                        .push(line(text));
                }
                for text in answer.ztunnel_lines {
                    c.logs
                        .entry((mesh::ISTIO_NAMESPACE.into(), ZTUNNEL_POD.into()))
                        .or_default()
                        .push(line(text));
                }
                for text in answer.sidecar_lines {
                    c.logs
                        .entry((namespace.into(), pod.into()))
                        .or_default()
                        .push(line(text));
                }
                Ok(())
            })?;
        }
        Ok(Exec {
            stdout: answer.stdout,
            stderr: answer.stderr,
            exit_code: Some(answer.exit_code),
        })
    }

    async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        _container: &str,
        since: Option<Timestamp>,
        _limit_bytes: Option<i64>,
    ) -> Result<Vec<String>, InfraError> {
        if self.sim.faults.has(Fault::GatewayLogsUnreadable) && pod == gateway_pod(1) {
            return Err(InfraError::new(format!(
                "logs of {namespace}/{pod}/istio-proxy: container \"istio-proxy\" in pod \"{pod}\" is waiting to start: ContainerCreating (simulated)"
            )));
        }
        let now = Instant::now();
        self.with(|c| {
            Ok(c.logs
                .get(&(namespace.to_owned(), pod.to_owned()))
                .map(|lines| {
                    lines
                        .iter()
                        .filter(|l| l.visible <= now && since.is_none_or(|s| l.written >= s))
                        .map(|l| l.text.clone())
                        .collect()
                })
                .unwrap_or_default())
        })
    }

    async fn envoy_stats(
        &self,
        namespace: &str,
        pod: &str,
        _timeout: Duration,
    ) -> Result<String, InfraError> {
        self.with(|c| {
            Ok(egress_harness::evidence::envoy_stats::render(
                &c.stats
                    .get(&(namespace.to_owned(), pod.to_owned()))
                    .cloned()
                    .unwrap_or_default(),
            ))
        })
    }

    async fn config_dump(
        &self,
        _namespace: &str,
        pod: &str,
        _timeout: Duration,
    ) -> Result<String, InfraError> {
        self.with(|c| {
            let mut hosts = mesh_hosts(c);
            for (host, reads) in c.lingering.iter_mut() {
                if *reads > 0 {
                    hosts.push(host.clone());
                    *reads = reads.saturating_sub(1);
                }
            }
            c.lingering.retain(|_, reads| *reads > 0);
            let clusters: Vec<serde_json::Value> = hosts
                .iter()
                .map(|h| serde_json::json!({"cluster": {"name": format!("outbound|443||{h}")}}))
                .collect();
            Ok(serde_json::json!({"configs": [
                {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
                 "bootstrap": {"node": {"id": format!("simulated~{pod}")}}},
                {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
                 "dynamic_active_clusters": clusters}
            ]})
            .to_string())
        })
    }

    async fn events(&self, namespace: &str) -> Result<Vec<String>, InfraError> {
        self.call()?;
        Ok(vec![format!(
            "Normal Simulated {namespace}: a simulated cluster records no events"
        )])
    }

    async fn deployment_images(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Vec<String>>, InfraError> {
        self.with(|c| {
            Ok(match (&c.istio, namespace, name) {
                (Some((v, _)), mesh::ISTIO_NAMESPACE, mesh::ISTIOD_DEPLOYMENT) => {
                    Some(vec![format!("docker.io/istio/pilot:{v}")])
                }
                (Some((v, _)), mesh::ISTIO_NAMESPACE, mesh::GATEWAY_DEPLOYMENT) => {
                    Some(vec![format!("docker.io/istio/proxyv2:{v}")])
                }
                _ => None,
            })
        })
    }

    async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<serde_json::Value>, InfraError> {
        let never = self.sim.faults.has(Fault::RouteNeverAttached);
        self.with(|c| {
            if kind == "CustomResourceDefinition" {
                return Ok(c.crds.get(name).map(|crd| {
                    let mut crd = crd.clone();
                    crd["status"] = serde_json::json!({"conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}
                    ]});
                    crd
                }));
            }
            if api_version.starts_with(egress_harness::manifest::GATEWAY_API_GROUP)
                && !gateway_api::served(c, api_version, kind)
            {
                return Err(InfraError::new(format!(
                    "the cluster does not serve {api_version} {kind} (simulated)"
                )));
            }
            let ns = namespace.unwrap_or_default();
            Ok(gateway_api::with_status(c, ns, kind, name, never))
        })
    }

    async fn config_map_value(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<String>, InfraError> {
        self.with(|c| {
            Ok(match (namespace, name, key) {
                (mesh::ISTIO_NAMESPACE, "istio", "mesh") => c.mesh_config.clone(),
                _ => None,
            })
        })
    }
}
