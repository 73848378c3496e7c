//! What the live engine asks of Kubernetes, through kube (never kubectl): clients
//! from the harness's own kubeconfig, readiness by watching, server-side apply,
//! exec, logs and the Envoy config dump.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod};
use kube::api::{
    Api, AttachParams, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::runtime::wait::{Condition, await_condition, conditions};
use kube::{Client, Config, ResourceExt};
use tokio::io::AsyncReadExt;

use crate::manifest::Object;
pub use crate::seams::{Applied, Exec};

/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "egress-conformance";

/// A client for the cluster behind `kubeconfig`, or for the current context when
/// `None` (only with `--cluster existing`, where the user asked for it). An exec
/// credential plugin of the kubeconfig runs under a guard that kills it after
/// `plugin_deadline` (`credential`).
pub async fn client(
    kubeconfig: Option<&Path>,
    plugin_deadline: Duration,
) -> Result<Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let mut kc = Kubeconfig::read_from(path)
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
            super::credential::guard_plugins(&mut kc, plugin_deadline)?;
            let named_proxy = kc
                .clusters
                .iter()
                .any(|c| c.cluster.as_ref().is_some_and(|c| c.proxy_url.is_some()));
            let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
            // kube takes HTTPS_PROXY from the environment when the kubeconfig names no
            // proxy (kube-client src/config/file_loader.rs), and this build has no
            // proxy support: a kind API server on 127.0.0.1 is reached directly, as
            // kind and istioctl reach it.
            if !named_proxy {
                config.proxy_url = None;
            }
            config
        }
        // The user's kubeconfig (KUBECONFIG or ~/.kube/config), its plugins guarded;
        // without one, what kube infers (in-cluster).
        None => match Kubeconfig::read() {
            Ok(kc) => return current_context_client(kc, plugin_deadline).await,
            Err(_) => Config::infer()
                .await
                .map_err(|e| format!("current kube context: {e}"))?,
        },
    };
    Client::try_from(config).map_err(|e| format!("kube client: {e}"))
}

/// A client for `kc`'s current context, its plugins guarded.
async fn current_context_client(
    mut kc: Kubeconfig,
    plugin_deadline: Duration,
) -> Result<Client, String> {
    super::credential::guard_plugins(&mut kc, plugin_deadline)?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("current kube context: {e}"))?;
    Client::try_from(config).map_err(|e| format!("kube client: {e}"))
}

/// The current context of a kubeconfig and its cluster's server, as errors name them
/// (kubectl: "the connection to the server … was refused").
pub fn current_context_at(kc: &Kubeconfig) -> Option<(String, String)> {
    let context = kc.current_context.clone()?;
    let server = kc
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| kc.clusters.iter().find(|cl| cl.name == c.cluster))
        .and_then(|cl| cl.cluster.as_ref())
        .and_then(|cl| cl.server.clone())?;
    Some((context, server))
}

/// The API server's version (`v1.33.1`), for reports; `None` if it does not answer in time.
pub async fn server_version(client: &Client) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(10), client.apiserver_version())
        .await
        .ok()?
        .ok()
        .map(|info| info.git_version)
}

/// A Deployment whose current generation is fully rolled out and ready.
pub fn deployment_ready(d: Option<&Deployment>) -> bool {
    let Some(d) = d else { return false };
    let (Some(spec), Some(status)) = (&d.spec, &d.status) else {
        return false;
    };
    let wanted = spec.replicas.unwrap_or(1).max(1);
    let observed = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    // As `kubectl rollout status` waits: no pod of an older template left ("old
    // replicas are pending termination", kubernetes kubectl/pkg/polymorphichelpers/
    // rollout_status.go), else a restart's old, ready pod counts as the new one.
    let old_pods_gone = status.replicas.unwrap_or(0) <= status.updated_replicas.unwrap_or(0);
    observed
        && old_pods_gone
        && status.updated_replicas.unwrap_or(0) >= wanted
        && status.ready_replicas.unwrap_or(0) >= wanted
        && status.unavailable_replicas.unwrap_or(0) == 0
}

/// A Pod that is Ready and, when `sidecar` is asked for, has an `istio-proxy`
/// container (as a container, or as a native sidecar among the init containers).
pub fn pod_ready(pod: Option<&Pod>, sidecar: bool) -> bool {
    let Some(pod) = pod else { return false };
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready && (!sidecar || has_sidecar(pod))
}

pub fn has_sidecar(pod: &Pod) -> bool {
    pod.spec.as_ref().is_some_and(|s| {
        s.containers.iter().any(|c| c.name == "istio-proxy")
            || s.init_containers
                .iter()
                .flatten()
                .any(|c| c.name == "istio-proxy")
    })
}

/// Watches `name` until `condition` holds or `timeout` passes; returns how long it took.
pub async fn wait_for<K>(
    api: Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    condition: impl Condition<K>,
) -> Result<Duration, String>
where
    K: Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned + kube::Resource + 'static,
{
    let started = Instant::now();
    match tokio::time::timeout(timeout, await_condition(api, name, condition)).await {
        Ok(Ok(_)) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(format!("watching {what}: {e}")),
        Err(_) => Err(format!("{what} not ready after {}s", timeout.as_secs())),
    }
}

pub async fn wait_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<Duration, String> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    wait_for(
        api,
        name,
        &format!("Deployment {namespace}/{name}"),
        timeout,
        deployment_ready,
    )
    .await
}

pub async fn wait_pod(
    client: &Client,
    namespace: &str,
    name: &str,
    sidecar: bool,
    timeout: Duration,
) -> Result<Duration, String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    wait_for(
        api,
        name,
        &format!("Pod {namespace}/{name}"),
        timeout,
        move |p: Option<&Pod>| pod_ready(p, sidecar),
    )
    .await
}

/// A namespace of the harness's, with sidecar injection and the scenario's label.
pub async fn create_namespace(
    client: &Client,
    name: &str,
    labels: &[(String, String)],
) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let body = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": name, "labels": labels },
    });
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("creating Namespace {name}: {}", super::caused(&e)))
}

/// Deletes a namespace and watches until it is gone.
pub async fn delete_namespace(
    client: &Client,
    name: &str,
    timeout: Duration,
) -> Result<Duration, String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let uid = match api.get_opt(name).await {
        Ok(Some(ns)) => ns.uid().unwrap_or_default(),
        Ok(None) => return Ok(Duration::ZERO),
        Err(e) => return Err(format!("reading Namespace {name}: {e}")),
    };
    api.delete(name, &DeleteParams::foreground())
        .await
        .map_err(|e| format!("deleting Namespace {name}: {}", super::caused(&e)))?;
    wait_for(
        api,
        name,
        &format!("deletion of Namespace {name}"),
        timeout,
        conditions::is_deleted(&uid),
    )
    .await
}

fn gvk_of_applied(a: &Applied) -> GroupVersionKind {
    let (group, version) = a
        .api_version
        .split_once('/')
        .unwrap_or(("", a.api_version.as_str()));
    GroupVersionKind::gvk(group, version, &a.kind)
}

fn gvk_of(object: &Object) -> GroupVersionKind {
    let (group, version) = object
        .api_version
        .split_once('/')
        .unwrap_or(("", object.api_version.as_str()));
    GroupVersionKind::gvk(group, version, &object.kind)
}

async fn dynamic_api(
    client: &Client,
    gvk: &GroupVersionKind,
    namespace: Option<&str>,
) -> Result<(Api<DynamicObject>, bool), String> {
    let (resource, caps) = kube::discovery::pinned_kind(client, gvk)
        .await
        .map_err(|e| {
            format!(
                "the cluster does not serve {}/{} {}: {e}",
                gvk.group, gvk.version, gvk.kind
            )
        })?;
    let namespaced = caps.scope == kube::discovery::Scope::Namespaced;
    let api = match (namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        _ => Api::all_with(client.clone(), &resource),
    };
    Ok((api, namespaced))
}

/// Server-side applies each object; objects without a namespace go into `namespace`.
pub async fn apply(
    client: &Client,
    objects: &[Object],
    namespace: &str,
) -> Result<Vec<Applied>, String> {
    let mut applied = Vec::new();
    for object in objects {
        let gvk = gvk_of(object);
        let wanted_ns = object
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.to_owned());
        let (api, namespaced) = dynamic_api(client, &gvk, Some(&wanted_ns)).await?;
        let mut body = object.body.clone();
        if namespaced {
            body["metadata"]["namespace"] = serde_json::Value::String(wanted_ns.clone());
        }
        api.patch(
            &object.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|e| {
            format!(
                "{}:{}: applying {}: {e}",
                object.file.display(),
                object.line,
                object.id()
            )
        })?;
        applied.push(Applied {
            api_version: object.api_version.clone(),
            kind: object.kind.clone(),
            name: object.name.clone(),
            namespace: namespaced.then_some(wanted_ns),
        });
    }
    Ok(applied)
}

/// Deletes what [`apply`] applied, newest first; already-gone objects are fine.
pub async fn delete(client: &Client, applied: &[Applied]) -> Result<(), String> {
    let mut problems = Vec::new();
    for a in applied.iter().rev() {
        let gvk = gvk_of_applied(a);
        let (api, _) = dynamic_api(client, &gvk, a.namespace.as_deref()).await?;
        match api.delete(&a.name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => problems.push(format!("deleting {}: {e}", a.id())),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The exit code in an exec's final Status: `Success` is 0, otherwise the
/// `ExitCode` cause (kubelet's remotecommand protocol, as kube-rs documents for
/// `AttachedProcess::take_status`).
pub fn exit_code(status: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> Option<i32> {
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    status
        .details
        .as_ref()?
        .causes
        .as_ref()?
        .iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))?
        .message
        .as_deref()?
        .parse()
        .ok()
}

/// Runs `argv` in a container and waits at most `timeout` for it.
pub async fn exec(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    argv: &[String],
    timeout: Duration,
) -> Result<Exec, String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let run = async {
        let params = AttachParams::default().container(container).stderr(true);
        let mut process = api
            .exec(pod, argv.to_vec(), &params)
            .await
            .map_err(|e| format!("exec in {namespace}/{pod}: {}", super::caused(&e)))?;
        let status = process.take_status();
        let mut stdout = process.stdout();
        let mut stderr = process.stderr();
        let read_out = async {
            let mut buf = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut buf).await;
            }
            buf
        };
        let read_err = async {
            let mut buf = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut buf).await;
            }
            buf
        };
        let (out, err) = tokio::join!(read_out, read_err);
        let status = match status {
            Some(s) => s.await,
            None => None,
        };
        let _ = process.join().await;
        Ok::<_, String>(Exec {
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            exit_code: status.as_ref().and_then(exit_code),
        })
    };
    tokio::time::timeout(timeout, run).await.map_err(|_| {
        format!(
            "exec in {namespace}/{pod} took longer than {}s",
            timeout.as_secs()
        )
    })?
}

/// Pod names matching a label selector.
pub async fn pods(client: &Client, namespace: &str, selector: &str) -> Result<Vec<String>, String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| {
            format!(
                "listing pods {selector} in {namespace}: {}",
                super::caused(&e)
            )
        })?;
    // Logs and dumps are read from Running pods only: a pod still starting or
    // terminating has no proxy to answer.
    Ok(list
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .map(ResourceExt::name_any)
        .collect())
}

/// A container's log lines since `since` (whole seconds, as the API takes them).
pub async fn logs(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    since: Option<k8s_openapi::jiff::Timestamp>,
    limit_bytes: Option<i64>,
) -> Result<Vec<String>, String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = LogParams {
        container: Some(container.to_owned()),
        since_time: since,
        limit_bytes,
        ..LogParams::default()
    };
    api.logs(pod, &params)
        .await
        .map(|text| text.lines().map(str::to_owned).collect())
        .map_err(|e| {
            format!(
                "logs of {namespace}/{pod}/{container}: {}",
                super::caused(&e)
            )
        })
}

/// The Envoy config dump of a proxy, read as istioctl does: a port-forward to the
/// Envoy admin port 15000 and `GET /config_dump` over HTTP/1.1 (istio/istio
/// pkg/kube/client.go, `EnvoyDo` → `portForwardRequest`, Go's net/http).
pub async fn config_dump(
    client: &Client,
    namespace: &str,
    pod: &str,
    timeout: Duration,
) -> Result<String, String> {
    admin_get(client, namespace, pod, "/config_dump", timeout).await
}

/// `GET path` on a pod's Envoy admin port (15000), through a port-forward.
pub async fn admin_get(
    client: &Client,
    namespace: &str,
    pod: &str,
    path: &str,
    timeout: Duration,
) -> Result<String, String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let fetch = async {
        let mut forward = api.portforward(pod, &[15000]).await.map_err(|e| {
            format!(
                "port-forward to {namespace}/{pod}:15000: {}",
                super::caused(&e)
            )
        })?;
        let mut stream = forward
            .take_stream(15000)
            .ok_or_else(|| format!("port-forward to {namespace}/{pod}:15000 gave no stream"))?;
        let body = super::envoy_admin::get(&mut stream, path)
            .await
            .map_err(|e| format!("{path} of {namespace}/{pod}: {e}"));
        drop(stream);
        forward.abort();
        body
    };
    tokio::time::timeout(timeout, fetch).await.map_err(|_| {
        format!(
            "{path} of {namespace}/{pod} took longer than {}s",
            timeout.as_secs()
        )
    })?
}

/// The images of a Deployment's pod template (`None`: no such Deployment).
pub async fn deployment_images(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Vec<String>>, String> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let found = api.get_opt(name).await.map_err(|e| {
        format!(
            "reading deployment {namespace}/{name}: {}",
            super::caused(&e)
        )
    })?;
    Ok(found.map(|d| {
        d.spec
            .and_then(|s| s.template.spec)
            .map(|p| p.containers.into_iter().filter_map(|c| c.image).collect())
            .unwrap_or_default()
    }))
}

/// One key of a ConfigMap (`None`: no such ConfigMap or key).
pub async fn config_map_value(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<Option<String>, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let found = api.get_opt(name).await.map_err(|e| {
        format!(
            "reading configmap {namespace}/{name}: {}",
            super::caused(&e)
        )
    })?;
    Ok(found.and_then(|c| c.data).and_then(|mut d| d.remove(key)))
}

/// One object by kind and name, as the server holds it (`None`: not found).
pub async fn get(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<serde_json::Value>, String> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (api, _) = dynamic_api(client, &gvk, namespace).await?;
    let found = api.get_opt(name).await.map_err(|e| {
        format!(
            "reading {kind} {}{name}: {e}",
            namespace.map(|n| format!("{n}/")).unwrap_or_default()
        )
    })?;
    found
        .map(|o| serde_json::to_value(o).map_err(|e| format!("{kind} {name}: {e}")))
        .transpose()
}

/// Events of a namespace, oldest first, one line each.
pub async fn events(client: &Client, namespace: &str) -> Result<Vec<String>, String> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("events in {namespace}: {}", super::caused(&e)))?;
    let mut lines: Vec<(String, String)> = list
        .items
        .iter()
        .map(|e| {
            let when = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default();
            let object = format!(
                "{}/{}",
                e.involved_object.kind.clone().unwrap_or_default(),
                e.involved_object.name.clone().unwrap_or_default()
            );
            let line = format!(
                "{when} {} {object} {}: {}",
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default()
            );
            (when, line)
        })
        .collect();
    lines.sort();
    Ok(lines.into_iter().map(|(_, l)| l).collect())
}

/// The production [`crate::seams::KubeApi`]: kube-rs on the harness's kubeconfig.
pub struct KubeCluster {
    client: Client,
    /// The deadline of one API call (waits, execs and dumps carry their own).
    call: Duration,
    /// The user's context and server (`--cluster existing`), named in every error:
    /// the user must know which cluster did not answer. The harness's own clusters
    /// are named by the steps.
    at: Option<String>,
}

impl KubeCluster {
    /// A client for `kc`'s current context, whose errors name it and its server.
    pub async fn of_current_context(kc: Kubeconfig, call: Duration) -> Result<Self, String> {
        let at = current_context_at(&kc)
            .map(|(context, server)| format!("on context {context} (server {server})"));
        Ok(Self {
            client: current_context_client(kc, call).await?,
            call,
            at,
        })
    }

    fn failed(&self, message: String) -> InfraError {
        self.named(InfraError::from_api(message))
    }

    fn named(&self, e: InfraError) -> InfraError {
        match &self.at {
            Some(at) => e.context(at),
            None => e,
        }
    }
}

/// Opens [`KubeCluster`]s whose single API calls end after `call`.
pub struct KubeConnect {
    pub call: Duration,
}

/// `work`, or an error saying what took longer than `limit`.
async fn within<T>(
    limit: Duration,
    what: &str,
    work: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(format!(
            "{what}: no answer within {}s (timed out)",
            limit.as_secs()
        ))
    })
}

#[async_trait::async_trait]
impl crate::seams::KubeConnector for KubeConnect {
    async fn connect(
        &self,
        kubeconfig: Option<&Path>,
    ) -> Result<std::sync::Arc<dyn crate::seams::KubeApi>, InfraError> {
        if kubeconfig.is_none()
            && let Ok(kc) = Kubeconfig::read()
        {
            let cluster = KubeCluster::of_current_context(kc, self.call)
                .await
                .map_err(InfraError::new)?;
            return Ok(std::sync::Arc::new(cluster));
        }
        let client = client(kubeconfig, self.call)
            .await
            .map_err(InfraError::new)?;
        Ok(std::sync::Arc::new(KubeCluster {
            client,
            call: self.call,
            at: None,
        }))
    }
}

use crate::seams::InfraError;

#[async_trait::async_trait]
impl crate::seams::KubeApi for KubeCluster {
    async fn server_version(&self) -> Option<String> {
        server_version(&self.client).await
    }
    async fn create_namespace(
        &self,
        name: &str,
        labels: &[(String, String)],
    ) -> Result<(), InfraError> {
        within(
            self.call,
            "creating a namespace",
            create_namespace(&self.client, name, labels),
        )
        .await
        .map_err(|e| self.failed(e))
    }
    async fn delete_namespace(&self, name: &str, timeout: Duration) -> Result<(), InfraError> {
        delete_namespace(&self.client, name, timeout)
            .await
            .map(|_| ())
            .map_err(|e| self.failed(e))
    }
    async fn apply(&self, objects: &[Object], namespace: &str) -> Result<Vec<Applied>, InfraError> {
        within(
            self.call,
            "server-side apply",
            apply(&self.client, objects, namespace),
        )
        .await
        .map_err(|e| self.failed(e))
    }
    async fn delete(&self, applied: &[Applied]) -> Result<(), InfraError> {
        within(self.call, "deleting objects", delete(&self.client, applied))
            .await
            .map_err(|e| self.failed(e))
    }
    async fn restart_deployment(&self, namespace: &str, name: &str) -> Result<(), InfraError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        within(self.call, "restarting a Deployment", async {
            api.restart(name)
                .await
                .map(|_| ())
                .map_err(|e| format!("restarting Deployment {namespace}/{name}: {e}"))
        })
        .await
        .map_err(|e| self.failed(e))
    }
    async fn wait_deployment(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Duration, InfraError> {
        wait_deployment(&self.client, namespace, name, timeout)
            .await
            .map_err(|e| self.failed(e))
    }
    async fn wait_pod(
        &self,
        namespace: &str,
        name: &str,
        sidecar: bool,
        timeout: Duration,
    ) -> Result<Duration, InfraError> {
        wait_pod(&self.client, namespace, name, sidecar, timeout)
            .await
            .map_err(|e| self.failed(e))
    }
    async fn pods(&self, namespace: &str, selector: &str) -> Result<Vec<String>, InfraError> {
        within(
            self.call,
            "listing pods",
            pods(&self.client, namespace, selector),
        )
        .await
        .map_err(|e| self.failed(e))
    }
    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<Exec, InfraError> {
        // Not retried by the engine: a second curl is a second attempt.
        exec(&self.client, namespace, pod, container, argv, timeout)
            .await
            .map_err(|e| self.named(InfraError::new(e)))
    }
    async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        since: Option<k8s_openapi::jiff::Timestamp>,
        limit_bytes: Option<i64>,
    ) -> Result<Vec<String>, InfraError> {
        within(
            self.call,
            "reading logs",
            logs(&self.client, namespace, pod, container, since, limit_bytes),
        )
        .await
        .map_err(|e| self.failed(e))
    }
    async fn config_dump(
        &self,
        namespace: &str,
        pod: &str,
        timeout: Duration,
    ) -> Result<String, InfraError> {
        config_dump(&self.client, namespace, pod, timeout)
            .await
            .map_err(|e| self.failed(e))
    }

    async fn envoy_stats(
        &self,
        namespace: &str,
        pod: &str,
        timeout: Duration,
    ) -> Result<String, InfraError> {
        admin_get(&self.client, namespace, pod, "/stats", timeout)
            .await
            .map_err(|e| self.failed(e))
    }
    async fn deployment_images(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Vec<String>>, InfraError> {
        within(
            self.call,
            "reading a deployment",
            deployment_images(&self.client, namespace, name),
        )
        .await
        .map_err(|e| self.failed(e))
    }
    async fn config_map_value(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<String>, InfraError> {
        within(
            self.call,
            "reading a configmap",
            config_map_value(&self.client, namespace, name, key),
        )
        .await
        .map_err(|e| self.failed(e))
    }
    async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<serde_json::Value>, InfraError> {
        within(
            self.call,
            "reading an object",
            get(&self.client, api_version, kind, namespace, name),
        )
        .await
        .map_err(|e| self.failed(e))
    }
    async fn events(&self, namespace: &str) -> Result<Vec<String>, InfraError> {
        within(self.call, "listing events", events(&self.client, namespace))
            .await
            .map_err(|e| self.failed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_error_of_the_user_s_cluster_names_its_context_and_server() {
        // A port nothing listens on: the connection is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: team-prod\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: team-prod\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user: {{token: t}}\n"
        );
        let kc = Kubeconfig::from_yaml(&text).unwrap();
        assert_eq!(
            current_context_at(&kc),
            Some(("team-prod".into(), format!("https://127.0.0.1:{port}")))
        );
        let cluster = KubeCluster::of_current_context(kc, Duration::from_secs(5))
            .await
            .unwrap();
        let api: &dyn crate::seams::KubeApi = &cluster;
        let e = api.pods("istio-system", "app=x").await.unwrap_err();
        assert!(
            e.message.starts_with(&format!(
                "on context team-prod (server https://127.0.0.1:{port}): "
            )),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn a_restart_patches_the_pod_template_as_kubectl_rollout_restart_does() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // One API server answer: the request as it came, the Deployment back.
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = conn.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= length || n == 0 {
                        break;
                    }
                }
            }
            let answer = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"istiod","namespace":"istio-system"}}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            conn.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&seen).to_string()
        });
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: k\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: k\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user: {{token: t}}\n"
        );
        let cluster = KubeCluster::of_current_context(
            Kubeconfig::from_yaml(&text).unwrap(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let api: &dyn crate::seams::KubeApi = &cluster;
        api.restart_deployment("istio-system", "istiod")
            .await
            .unwrap();
        let request = server.await.unwrap();
        assert!(
            request.starts_with("PATCH /apis/apps/v1/namespaces/istio-system/deployments/istiod?"),
            "{request}"
        );
        // kube-rs names its annotation as kubectl names its own
        // (kubectl.kubernetes.io/restartedAt); a new value rolls the pods either way.
        assert!(
            request.contains(r#"{"spec":{"template":{"metadata":{"annotations":{"kube.kubernetes.io/restartedAt":""#),
            "{request}"
        );
    }

    #[tokio::test]
    async fn kc2_https_proxy_in_the_environment_does_not_break_the_harness_kubeconfig() {
        let dir = std::env::temp_dir().join(format!("egress-kc2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            "apiVersion: v1\nkind: Config\ncurrent-context: kind-egc\nclusters:\n- name: kind-egc\n  cluster:\n    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\ncontexts:\n- name: kind-egc\n  context: {cluster: kind-egc, user: kind-egc}\nusers:\n- name: kind-egc\n  user: {token: t}\n",
        )
        .unwrap();
        // SAFETY: this test alone reads the proxy variables; set for its duration.
        unsafe {
            std::env::set_var("HTTPS_PROXY", "http://proxy.invalid:3128");
        }
        let built = client(Some(&kubeconfig), Duration::from_secs(30)).await;
        unsafe {
            std::env::remove_var("HTTPS_PROXY");
        }
        assert!(built.is_ok(), "{:?}", built.err());
        let _ = std::fs::remove_dir_all(&dir);
    }
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};

    fn deployment(
        generation: i64,
        observed: i64,
        replicas: i32,
        ready: i32,
        updated: i32,
    ) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istiod", "generation": generation},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": {"observedGeneration": observed, "readyReplicas": ready, "updatedReplicas": updated}
        }))
        .unwrap()
    }

    #[test]
    fn a_deployment_is_ready_only_when_its_generation_is_rolled_out() {
        assert!(deployment_ready(Some(&deployment(2, 2, 1, 1, 1))));
        assert!(
            !deployment_ready(Some(&deployment(2, 1, 1, 1, 1))),
            "old generation"
        );
        assert!(
            !deployment_ready(Some(&deployment(1, 1, 2, 1, 2))),
            "one of two ready"
        );
        assert!(
            !deployment_ready(Some(&deployment(1, 1, 1, 1, 0))),
            "not updated"
        );
        assert!(!deployment_ready(None));
        // A restart: the new pod is not ready, the old one still is.
        let mut restarting = deployment(3, 3, 1, 1, 1);
        restarting.status.as_mut().unwrap().replicas = Some(2);
        assert!(
            !deployment_ready(Some(&restarting)),
            "old pod still serving"
        );
        restarting.status.as_mut().unwrap().replicas = Some(1);
        assert!(deployment_ready(Some(&restarting)));
    }

    fn pod(ready: &str, sidecar_in: &str) -> Pod {
        let mut spec = serde_json::json!({"containers": [{"name": "curl"}]});
        spec[sidecar_in] = match sidecar_in {
            "containers" => serde_json::json!([{"name": "curl"}, {"name": "istio-proxy"}]),
            _ => serde_json::json!([{"name": "istio-proxy", "restartPolicy": "Always"}]),
        };
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "curl"},
            "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": ready}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_client_pod_needs_readiness_and_a_sidecar() {
        assert!(pod_ready(Some(&pod("True", "containers")), true));
        assert!(
            pod_ready(Some(&pod("True", "initContainers")), true),
            "native sidecar"
        );
        assert!(!pod_ready(Some(&pod("False", "containers")), true));
        let mut no_sidecar = pod("True", "containers");
        if let Some(spec) = no_sidecar.spec.as_mut() {
            spec.containers.retain(|c| c.name != "istio-proxy");
        }
        assert!(!pod_ready(Some(&no_sidecar), true));
        assert!(pod_ready(Some(&no_sidecar), false));
    }

    #[test]
    fn exit_codes_come_from_the_exec_status() {
        let ok = Status {
            status: Some("Success".into()),
            ..Status::default()
        };
        assert_eq!(exit_code(&ok), Some(0));
        let failed = Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("28".into()),
                    ..StatusCause::default()
                }]),
                ..StatusDetails::default()
            }),
            ..Status::default()
        };
        assert_eq!(exit_code(&failed), Some(28));
        assert_eq!(
            exit_code(&Status::default()),
            None,
            "a lost status is not an exit code"
        );
    }
}
