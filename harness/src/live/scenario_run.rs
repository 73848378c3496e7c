//! One scenario on one ready mesh: namespace, client, manifests, requests judged until
//! consistent, evidence, recording, and cleanup that waits until the proxies forgot
//! the scenario.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use semver::Version;

use super::config_dump;
use super::converge::{self, Attempt, Converged};
use super::evidence::{self, Bundle, EvidenceMode};
use super::k8s::{self, Applied};
use crate::judge::{self, Verdict};
use crate::manifest::Object;
use crate::recording::{self, Context, Observation, Recording};
use crate::report::results::Environment;
use crate::scenario::{Presence, Request, Scenario, Template};
use crate::suite::Workspace;
use crate::upstream::{self, Certs, UpstreamMode};

/// The egress gateway's pods, as istio's istio-egress chart labels them.
pub const GATEWAY_NAMESPACE: &str = "istio-system";
pub const GATEWAY_SELECTOR: &str = "istio=egressgateway";
const CLIENT_POD: &str = "curl";
const CLIENT_CONTAINER: &str = "curl";
const PROXY_CONTAINER: &str = "istio-proxy";
/// How long a log line may take to show up after the request returned. Envoy flushes
/// file access logs every second by default (envoy AccessLogManager, file_flush_interval).
const LOG_DEADLINE: Duration = Duration::from_secs(10);
/// How long to keep looking before believing a line is really absent.
const ABSENCE_SETTLE: Duration = Duration::from_secs(3);

/// A mesh ready for scenarios: a cluster with Istio installed and its client.
#[derive(Clone)]
pub struct Mesh {
    pub client: Client,
    pub istio: Version,
    pub install: String,
    /// The kind cluster, if the harness made it.
    pub cluster: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    pub node_image: Option<String>,
    /// The API server's version, as it reports it.
    pub kubernetes: Option<String>,
}

impl Mesh {
    /// Where scenarios on this mesh run, as reports state it.
    pub fn environment(&self, upstream: UpstreamMode) -> Environment {
        Environment {
            install: self.install.clone(),
            upstream: Some(upstream.as_str().to_owned()),
            kubernetes: self.kubernetes.clone(),
            node_image: self.node_image.clone(),
            cluster: self.cluster.clone(),
            recording: None,
        }
    }
}

/// How the engine runs scenarios.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub deadline: Duration,
    pub evidence: EvidenceMode,
    /// `reports/<run-id>`.
    pub run_dir: PathBuf,
    pub run_id: String,
    pub upstream: UpstreamMode,
    /// The run's certificates, handed to Istio as Secrets (local upstream only).
    pub certs: Option<Certs>,
    /// Leave the scenario's namespace and objects for a person to look at.
    pub keep_objects: bool,
}

/// A step and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub step: String,
    pub elapsed: Duration,
}

/// One request's result.
#[derive(Debug, Clone)]
pub struct RequestRun {
    pub name: String,
    /// The verdicts of the last judged attempt.
    pub verdicts: Vec<Verdict>,
    pub converged: Converged<Observation>,
    /// The verdicts of the first failure after a pass (see `Converged::relapses`).
    pub first_relapse: Vec<Verdict>,
}

impl RequestRun {
    pub fn passed(&self) -> bool {
        self.converged.consistent()
    }
}

/// What running a scenario on a mesh gave.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    pub scenario: String,
    pub istio: String,
    pub requests: Vec<RequestRun>,
    /// Trouble with the cluster or the harness (an error, not a failure of Istio).
    pub error: Option<String>,
    /// Trouble while cleaning up (reported, and the cluster is not trusted further).
    pub cleanup_error: Option<String>,
    pub timings: Vec<Timing>,
    pub evidence: Option<Bundle>,
    pub recording: Option<PathBuf>,
    pub environment: Environment,
    /// Whether the client pod has a sidecar; `None` if the run stopped before knowing.
    pub sidecar: Option<bool>,
}

impl ScenarioRun {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.requests.iter().all(RequestRun::passed)
    }

    /// One paragraph per request that did not become consistent, with its verdicts.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.requests.iter().filter(|r| !r.passed()) {
            let c = &r.converged;
            let mut text = format!(
                "{}: not consistent after {} attempt(s) in {:.1}s ({} inconclusive)",
                r.name,
                c.attempts.len(),
                c.elapsed.as_secs_f64(),
                c.inconclusive()
            );
            for v in r
                .verdicts
                .iter()
                .filter(|v| v.outcome != judge::Outcome::Pass)
            {
                text.push_str(&format!("\n  {v}"));
            }
            if r.verdicts.is_empty() {
                text.push_str("\n  no attempt could be judged");
            }
            out.push(text);
        }
        out
    }
}

struct Timer<'a>(&'a mut Vec<Timing>);

impl Timer<'_> {
    async fn time<T>(&mut self, step: &str, f: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        let out = f.await;
        self.0.push(Timing {
            step: step.to_owned(),
            elapsed: started.elapsed(),
        });
        out
    }
}

/// Objects of a manifest file, relative to `manifests/`.
fn objects(ws: &Workspace, file: &str) -> Result<Vec<Object>, String> {
    crate::manifest::parse_file(&ws.manifests_dir().join(file)).map_err(|p| p.to_string())
}

/// The client manifest asks for no sidecar (`sidecar.istio.io/inject: "false"`).
pub fn wants_sidecar(client: &[Object]) -> bool {
    !client.iter().any(|o| {
        o.body["metadata"]["annotations"]["sidecar.istio.io/inject"].as_str() == Some("false")
    })
}

/// Runs `scenario` on `mesh`. Never panics, always cleans up, always returns a result.
pub async fn run(
    mesh: &Mesh,
    scenario: &Scenario,
    ws: &Workspace,
    settings: &RunSettings,
) -> ScenarioRun {
    let started = Timestamp::now();
    let mut timings = Vec::new();
    let mut applied: Vec<Applied> = Vec::new();
    let ns = scenario.name().to_owned();
    let mut run = ScenarioRun {
        scenario: ns.clone(),
        istio: mesh.istio.to_string(),
        requests: Vec::new(),
        error: None,
        cleanup_error: None,
        timings: Vec::new(),
        evidence: None,
        recording: None,
        environment: mesh.environment(settings.upstream),
        sidecar: None,
    };
    let mut hosts = Vec::new();
    let outcome = body(
        mesh,
        scenario,
        ws,
        settings,
        &mut timings,
        &mut applied,
        &mut hosts,
        &mut run.requests,
        &mut run.sidecar,
    )
    .await;
    if let Err(e) = outcome {
        run.error = Some(e);
    }
    // A pass that failed again after passing is flaky: its evidence is kept too,
    // with the observation of the first such failure.
    let relapsed = run
        .requests
        .iter()
        .any(|r| !r.converged.relapses().is_empty());
    if !run.passed() || relapsed || settings.evidence == EvidenceMode::Always {
        let mut bundle = collect_evidence(mesh, scenario, ws, settings, started).await;
        for r in &run.requests {
            if let Some(first) = r.converged.relapses().first()
                && let Ok(json) = serde_json::to_vec_pretty(first)
            {
                bundle.write(&format!("first-failure-{}.json", r.name), &json);
            }
        }
        run.evidence = Some(bundle);
    }
    run.recording = write_recording(mesh, scenario, settings, &run.requests);
    if settings.keep_objects {
        run.timings = timings;
        return run;
    }
    let cleanup = {
        let mut timer = Timer(&mut timings);
        timer
            .time(
                "cleanup",
                cleanup(mesh, &ns, &applied, &hosts, settings.deadline),
            )
            .await
    };
    if let Err(e) = cleanup {
        run.cleanup_error = Some(e);
    }
    run.timings = timings;
    run
}

#[allow(clippy::too_many_arguments)]
async fn body(
    mesh: &Mesh,
    scenario: &Scenario,
    ws: &Workspace,
    settings: &RunSettings,
    timings: &mut Vec<Timing>,
    applied: &mut Vec<Applied>,
    hosts: &mut Vec<String>,
    requests: &mut Vec<RequestRun>,
    has_sidecar: &mut Option<bool>,
) -> Result<(), String> {
    let ns = scenario.name();
    let client = &mesh.client;
    let mut timer = Timer(timings);
    let labels = vec![
        ("istio-injection".to_owned(), "enabled".to_owned()),
        ("egress-conformance/scenario".to_owned(), ns.to_owned()),
    ];
    timer
        .time("namespace", k8s::create_namespace(client, ns, &labels))
        .await?;
    if let Some(certs) = &settings.certs {
        timer
            .time(
                "secrets",
                k8s::apply_json(client, &upstream::secrets(certs, ns), ns),
            )
            .await?;
    }

    let client_objects = objects(ws, &format!("client/{}.yaml", scenario.client.value))?;
    let sidecar = wants_sidecar(&client_objects);
    *has_sidecar = Some(sidecar);
    applied.extend(
        timer
            .time("client", k8s::apply(client, &client_objects, ns))
            .await?,
    );
    timer
        .time(
            "client ready",
            k8s::wait_pod(client, ns, CLIENT_POD, sidecar, Duration::from_secs(180)),
        )
        .await?;

    let mut scenario_objects = Vec::new();
    for m in &scenario.manifests_for(settings.upstream) {
        scenario_objects.extend(objects(ws, &m.value)?);
    }
    *hosts = config_dump::scenario_hosts(&scenario_objects);
    // A clean slate: nothing of an earlier scenario on these hosts may linger.
    let mut proxies = gateway_proxies(client).await?;
    if sidecar {
        proxies.push((ns.to_owned(), CLIENT_POD.to_owned()));
    }
    timer
        .time(
            "clean slate",
            await_config_gone(client, &proxies, hosts, settings.deadline),
        )
        .await?;
    applied.extend(
        timer
            .time("apply", k8s::apply(client, &scenario_objects, ns))
            .await?,
    );

    let context = Context {
        namespace: ns.to_owned(),
        client_pod: CLIENT_POD.to_owned(),
        service_account: "default".to_owned(),
        upstream: Some(settings.upstream.as_str().to_owned()),
    };
    let extra_args = scenario.curl_args_for(settings.upstream);
    for request in &scenario.requests {
        let result = timer
            .time(
                &format!("request {}", request.name.value),
                converge_request(mesh, request, &context, &extra_args, settings.deadline),
            )
            .await;
        requests.push(result);
    }
    Ok(())
}

async fn converge_request(
    mesh: &Mesh,
    request: &Request,
    context: &Context,
    extra_args: &[String],
    deadline: Duration,
) -> RequestRun {
    let vars = |name: &str| context.var(name);
    let url = Template::parse(&request.url.value)
        .map(|t| t.render(&vars))
        .unwrap_or_else(|_| request.url.value.clone());
    let started = Instant::now();
    let converged = converge::converge(deadline, converge::CONSISTENT_PASSES, |_| {
        let remaining = deadline.saturating_sub(started.elapsed());
        attempt(mesh, request, &url, context, extra_args, remaining)
    })
    .await;
    let verdicts = converged
        .last_observed()
        .map(|obs| judge::judge(request, obs, context, &mesh.istio))
        .unwrap_or_default();
    let first_relapse = converged
        .relapses()
        .first()
        .map(|obs| judge::judge(request, obs, context, &mesh.istio))
        .unwrap_or_default();
    RequestRun {
        name: request.name.value.clone(),
        verdicts,
        converged,
        first_relapse,
    }
}

/// One curl, its logs, and the judge.
async fn attempt(
    mesh: &Mesh,
    request: &Request,
    url: &str,
    context: &Context,
    extra_args: &[String],
    remaining: Duration,
) -> Attempt<Observation> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let argv = crate::curl::argv(request, url, &request_id, extra_args);
    // The log API counts in whole seconds: start a second early, the request id or the
    // SNI picks the line.
    let since = Timestamp::now() - SignedDuration::from_secs(1);
    let timeout = Duration::from_secs(u64::from(request.max_time_seconds) + 15);
    let exec = match k8s::exec(
        &mesh.client,
        &context.namespace,
        CLIENT_POD,
        CLIENT_CONTAINER,
        &argv,
        timeout,
    )
    .await
    {
        Ok(exec) => exec,
        Err(why) => return Attempt::Inconclusive { why },
    };
    let (body, write_out) = crate::curl::split_output(&exec.stdout);
    let (Some(write_out), Some(exit_code)) = (write_out, exec.exit_code) else {
        return Attempt::Inconclusive {
            why: format!(
                "the exec's result was lost (write-out: {}, exit status: {})",
                if exec.stdout.contains(crate::curl::MARKER) {
                    "cut off"
                } else {
                    "missing"
                },
                exec.exit_code.map_or("missing".into(), |c| c.to_string())
            ),
        };
    };
    let mut obs = Observation {
        name: request.name.value.clone(),
        request_id: Some(request_id),
        exit_code: Some(exit_code),
        http_code: Some(write_out.http_code),
        body: Some(body.to_owned()),
        stderr: Some(exec.stderr),
        gateway_log: None,
        sidecar_log: None,
        time_total: write_out.time_total,
    };
    let host = judge::url_host(url);
    let log_deadline = LOG_DEADLINE.min(remaining);
    let gateway = Proxy::Gateway;
    let sidecar = Proxy::Client(context.namespace.clone());
    obs.gateway_log = log_lines(
        mesh,
        &gateway,
        log_wait(request.expect.gateway_log.as_ref(), log_deadline),
        &obs,
        &host,
        since,
    )
    .await;
    obs.sidecar_log = log_lines(
        mesh,
        &sidecar,
        log_wait(request.expect.sidecar_log.as_ref(), log_deadline),
        &obs,
        &host,
        since,
    )
    .await;
    let passed = judge::passed(&judge::judge(request, &obs, context, &mesh.istio));
    Attempt::Judged {
        passed,
        observed: obs,
    }
}

/// How long to read logs for an expectation: until the line shows up when it must be
/// there, a short settle when it must not, one read when nothing is asked.
fn log_wait<T>(expect: Option<&Presence<T>>, deadline: Duration) -> Duration {
    match expect {
        None => Duration::ZERO,
        Some(Presence::Absent) => ABSENCE_SETTLE.min(deadline),
        Some(_) => deadline,
    }
}

/// Whose access log to read.
enum Proxy {
    /// Every egress gateway pod.
    Gateway,
    /// The client's sidecar, in the scenario's namespace.
    Client(String),
}

async fn log_lines(
    mesh: &Mesh,
    proxy: &Proxy,
    wait: Duration,
    obs: &Observation,
    host: &str,
    since: Timestamp,
) -> Option<Vec<String>> {
    let client = &mesh.client;
    read_until_found(obs, host, wait, || async move {
        match proxy {
            Proxy::Gateway => {
                let mut lines = Vec::new();
                for pod in k8s::pods(client, GATEWAY_NAMESPACE, GATEWAY_SELECTOR).await? {
                    lines.extend(
                        k8s::logs(
                            client,
                            GATEWAY_NAMESPACE,
                            &pod,
                            PROXY_CONTAINER,
                            Some(since),
                            None,
                        )
                        .await?,
                    );
                }
                Ok(lines)
            }
            Proxy::Client(ns) => {
                k8s::logs(client, ns, CLIENT_POD, PROXY_CONTAINER, Some(since), None).await
            }
        }
    })
    .await
}

/// Reads logs until the request's line is among them or `wait` passes. `None` when
/// the logs could not be read at all (not observed, rather than "no line").
async fn read_until_found<F, Fut>(
    obs: &Observation,
    host: &str,
    wait: Duration,
    read: F,
) -> Option<Vec<String>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, String>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(200);
    loop {
        let lines = read().await.ok();
        let found = lines
            .as_ref()
            .is_some_and(|l| judge::find_line(l, obs.request_id.as_deref(), host).is_some());
        if found || started.elapsed() + pause > wait {
            return lines;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

async fn gateway_proxies(client: &Client) -> Result<Vec<(String, String)>, String> {
    Ok(k8s::pods(client, GATEWAY_NAMESPACE, GATEWAY_SELECTOR)
        .await?
        .into_iter()
        .map(|p| (GATEWAY_NAMESPACE.to_owned(), p))
        .collect())
}

/// Polls the proxies' config dumps until none mentions `hosts`, or the deadline.
pub async fn await_config_gone(
    client: &Client,
    proxies: &[(String, String)],
    hosts: &[String],
    deadline: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    if hosts.is_empty() {
        return Ok(Duration::ZERO);
    }
    let mut pause = Duration::from_millis(250);
    loop {
        let mut left = Vec::new();
        for (ns, pod) in proxies {
            let dump = k8s::config_dump(client, ns, pod, Duration::from_secs(20)).await?;
            for host in config_dump::leftover_hosts(&dump, hosts)? {
                left.push(format!("{host} in {ns}/{pod}"));
            }
        }
        if left.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() + pause > deadline {
            return Err(format!(
                "configuration of an earlier scenario still present after {}s: {}",
                deadline.as_secs(),
                left.join(", ")
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Deletes what the scenario applied (objects outside its namespace included), then
/// the namespace, then waits until the gateway forgot the scenario's hosts.
async fn cleanup(
    mesh: &Mesh,
    ns: &str,
    applied: &[Applied],
    hosts: &[String],
    deadline: Duration,
) -> Result<(), String> {
    let mut problems = Vec::new();
    if let Err(e) = k8s::delete(&mesh.client, applied).await {
        problems.push(e);
    }
    if let Err(e) = k8s::delete_namespace(&mesh.client, ns, Duration::from_secs(180)).await {
        problems.push(e);
    }
    match gateway_proxies(&mesh.client).await {
        Ok(proxies) => {
            if let Err(e) = await_config_gone(&mesh.client, &proxies, hosts, deadline).await {
                problems.push(e);
            }
        }
        Err(e) => problems.push(e),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn write_recording(
    mesh: &Mesh,
    scenario: &Scenario,
    settings: &RunSettings,
    requests: &[RequestRun],
) -> Option<PathBuf> {
    let observed: Vec<Observation> = requests
        .iter()
        .filter_map(|r| r.converged.last_observed().cloned())
        .collect();
    if observed.is_empty() {
        return None;
    }
    let recording = Recording {
        format: recording::FORMAT.into(),
        scenario: scenario.name().into(),
        istio: mesh.istio.to_string(),
        source: format!(
            "live run {} on {}",
            settings.run_id,
            mesh.cluster
                .as_deref()
                .unwrap_or("the current kube context")
        ),
        context: Context {
            namespace: scenario.name().into(),
            client_pod: CLIENT_POD.into(),
            service_account: "default".into(),
            upstream: Some(settings.upstream.as_str().into()),
        },
        requests: observed,
        notes: vec![format!("install profile {}", mesh.install)],
    };
    let dir = settings.run_dir.join("recordings");
    let path = dir.join(format!("{}@{}.json", scenario.name(), mesh.istio));
    std::fs::create_dir_all(&dir).ok()?;
    recording.write(&path).ok().map(|()| path)
}

/// Everything worth keeping when a scenario fails; each piece that cannot be had is
/// noted in the bundle's `problems.txt`, never fatal.
async fn collect_evidence(
    mesh: &Mesh,
    scenario: &Scenario,
    ws: &Workspace,
    settings: &RunSettings,
    since: Timestamp,
) -> Bundle {
    let ns = scenario.name();
    let dir = settings
        .run_dir
        .join("evidence")
        .join(format!("{}@{}", ns, mesh.istio));
    let mut bundle = Bundle::new(dir.clone());
    let client = &mesh.client;
    let files = std::iter::once(format!("client/{}.yaml", scenario.client.value)).chain(
        scenario
            .manifests_for(settings.upstream)
            .into_iter()
            .map(|m| m.value),
    );
    for file in files {
        match std::fs::read(ws.manifests_dir().join(&file)) {
            Ok(bytes) => bundle.write(&format!("manifests/{file}"), &bytes),
            Err(e) => bundle.missing(&file, &e.to_string()),
        }
    }
    let mut pods: Vec<(String, String, Vec<&str>)> = vec![(
        ns.to_owned(),
        CLIENT_POD.to_owned(),
        vec![CLIENT_CONTAINER, PROXY_CONTAINER],
    )];
    match k8s::pods(client, GATEWAY_NAMESPACE, GATEWAY_SELECTOR).await {
        Ok(gws) => pods.extend(
            gws.into_iter()
                .map(|p| (GATEWAY_NAMESPACE.to_owned(), p, vec![PROXY_CONTAINER])),
        ),
        Err(e) => bundle.missing("egress gateway pods", &e),
    }
    match k8s::pods(client, GATEWAY_NAMESPACE, "app=istiod").await {
        Ok(istiods) => pods.extend(
            istiods
                .into_iter()
                .map(|p| (GATEWAY_NAMESPACE.to_owned(), p, vec!["discovery"])),
        ),
        Err(e) => bundle.missing("istiod pods", &e),
    }
    for (pod_ns, pod, containers) in &pods {
        for container in containers {
            let name = format!(
                "logs/{}.log",
                evidence::file_name(&[pod_ns, pod, container])
            );
            match k8s::logs(
                client,
                pod_ns,
                pod,
                container,
                Some(since),
                Some(evidence::FILE_CAP as i64),
            )
            .await
            {
                Ok(lines) => bundle.write(&name, (lines.join("\n") + "\n").as_bytes()),
                Err(e) => bundle.missing(&name, &e),
            }
        }
        if containers.contains(&PROXY_CONTAINER) {
            let name = format!("config_dump/{}.json", evidence::file_name(&[pod_ns, pod]));
            match k8s::config_dump(client, pod_ns, pod, Duration::from_secs(30)).await {
                Ok(dump) => bundle.write(&name, dump.as_bytes()),
                Err(e) => bundle.missing(&name, &e),
            }
        }
    }
    for events_ns in [ns, GATEWAY_NAMESPACE] {
        let name = format!("events/{events_ns}.txt");
        match k8s::events(client, events_ns).await {
            Ok(lines) => bundle.write(&name, (lines.join("\n") + "\n").as_bytes()),
            Err(e) => bundle.missing(&name, &e),
        }
    }
    if let (Some(cluster), Some(kind)) = (&mesh.cluster, super::session::kind_binary()) {
        let target = dir.join("kind-logs");
        match super::command::run_async(kind.export_logs_command(cluster, &target)).await {
            Ok(ran) if ran.success() => bundle.cap_tree(&target),
            Ok(ran) => bundle.missing("kind export logs", &ran.failure()),
            Err(e) => bundle.missing("kind export logs", &e),
        }
    }
    bundle.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_no_sidecar_client_is_recognised_from_its_annotation() {
        let ws = Workspace::at(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        assert!(wants_sidecar(&objects(&ws, "client/curl.yaml").unwrap()));
        assert!(!wants_sidecar(
            &objects(&ws, "client/curl-no-sidecar.yaml").unwrap()
        ));
    }

    #[test]
    fn logs_are_awaited_only_as_long_as_the_expectation_needs() {
        let d = Duration::from_secs(10);
        assert_eq!(log_wait::<()>(None, d), Duration::ZERO);
        assert_eq!(log_wait::<()>(Some(&Presence::Absent), d), ABSENCE_SETTLE);
        assert_eq!(log_wait::<()>(Some(&Presence::Present), d), d);
        assert_eq!(
            log_wait::<()>(Some(&Presence::Present), Duration::from_secs(2)),
            Duration::from_secs(2)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn logs_are_read_again_until_the_request_line_shows_up() {
        let obs = Observation {
            request_id: Some("id-1".into()),
            ..Observation::default()
        };
        let calls = std::sync::atomic::AtomicU32::new(0);
        let line = r#"[2024-06-21T19:24:00.453Z] "GET /headers HTTP/2" 200 - via_upstream - "-" 0 1450 57 57 "10.244.0.7" "curl/7.83.1-DEV" "id-1" "httpbin.org" "3.213.1.197:80" outbound|80||httpbin.org 10.244.0.6:41144 10.244.0.6:8080 10.244.0.7:55490 - -"#;
        let got = read_until_found(&obs, "httpbin.org", Duration::from_secs(10), || {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::ready(Ok(if n < 2 { vec![] } else { vec![line.to_owned()] }))
        })
        .await;
        assert_eq!(got.map(|l| l.len()), Some(1));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);

        let never = read_until_found(&obs, "httpbin.org", Duration::from_secs(3), || {
            std::future::ready(Ok(vec![]))
        })
        .await;
        assert_eq!(
            never,
            Some(vec![]),
            "read, and nothing there: captured as empty"
        );
        let broken = read_until_found(&obs, "httpbin.org", Duration::ZERO, || {
            std::future::ready(Err("forbidden".into()))
        })
        .await;
        assert_eq!(broken, None, "unreadable logs are not observed, not empty");
    }
}
