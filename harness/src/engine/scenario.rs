//! One scenario's planned steps on a ready mesh: namespace, client, clean slate,
//! manifests, requests judged until consistent, evidence, recording, cleanup. A
//! failed step stops the scenario's work but never its cleanup.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::converge::{self, Attempt, Converged};
use super::ctx::{Mesh, RunCtx, command_line};
use super::evidence::{self, Bundle, EvidenceMode};
use super::outcome::{RequestRun, ScenarioRun, StatusRun, StepError, Timing};
use super::wait::{poll, retry, secs};
use crate::judge;
use crate::model::Environment;
use crate::model::{ATTEMPT_ID, CONSISTENT_PASSES, mesh};
use crate::plan::{Condition, PlannedStep, Proxies, Step, Workload};
use crate::recording::{self, Context, Observation, Recording};
use crate::scenario::{Presence, Request, Scenario};
use crate::seams::{Applied, InfraError, KubeApi};

pub(super) struct ScenarioExec<'a> {
    ctx: &'a RunCtx,
    mesh: &'a Mesh,
    scenario: &'a Scenario,
    context: Context,
    applied: BTreeMap<PathBuf, Vec<Applied>>,
    requests: Vec<RequestRun>,
    status: Option<StatusRun>,
    timings: Vec<Timing>,
    error: Option<StepError>,
    cleanup_error: Option<StepError>,
    evidence: Option<Bundle>,
    sidecar: Option<bool>,
    started: Timestamp,
}

impl<'a> ScenarioExec<'a> {
    pub(super) fn new(ctx: &'a RunCtx, mesh: &'a Mesh, scenario: &'a Scenario) -> Self {
        Self {
            ctx,
            mesh,
            scenario,
            context: Context {
                namespace: scenario.name().to_owned(),
                client_pod: mesh::CLIENT_POD.into(),
                service_account: mesh::CLIENT_SERVICE_ACCOUNT.into(),
                upstream: Some(ctx.options.plan.upstream.as_str().into()),
            },
            applied: BTreeMap::new(),
            requests: Vec::new(),
            status: None,
            timings: Vec::new(),
            error: None,
            cleanup_error: None,
            evidence: None,
            sidecar: None,
            started: ctx.now(),
        }
    }

    fn kube(&self) -> &dyn KubeApi {
        &*self.mesh.kube
    }

    fn environment(&self) -> Environment {
        Environment {
            install: install_text(&self.scenario.install.value, &self.mesh.install),
            upstream: Some(self.ctx.options.plan.upstream.as_str().to_owned()),
            kubernetes: self.mesh.kubernetes.clone(),
            node_image: self.mesh.node_image.clone(),
            cluster: self.mesh.cluster.clone(),
            recording: None,
        }
    }

    fn needs_evidence(&self) -> bool {
        self.error.is_some()
            || self.ctx.options.evidence == EvidenceMode::Always
            || self
                .requests
                .iter()
                .any(|r| !r.passed() || !r.converged.relapses().is_empty())
            || self.status.as_ref().is_some_and(|s| !s.passed())
    }

    pub(super) async fn run(mut self, steps: &[PlannedStep]) -> ScenarioRun {
        let cancel = self.ctx.cancel.clone();
        for step in steps {
            // A delete between requests is configuration, not cleanup: it is skipped
            // after a failure and its own failure fails the scenario.
            let cleanup = matches!(
                step.condition,
                Some(Condition::Always | Condition::OnFailureOrAlways)
            );
            if cancel.is_cancelled()
                && !matches!(
                    step.step,
                    Step::DeleteObjects { .. } | Step::DeleteNamespace { .. }
                )
            {
                // Said where it leaves the cluster changed: a kept cluster is not as
                // the release installs it.
                let why = match &step.step {
                    Step::SwapGatewayApiCrds { from, .. } => format!(
                        "interrupted: the cluster keeps Gateway API CRDs {from} and an istiod that read them; it is deleted unless kept, and a kept one should not be reused"
                    ),
                    _ => "interrupted".to_owned(),
                };
                self.ctx.skip(step, &why);
                if self.error.is_none() {
                    self.error = Some(self.ctx.interrupted_at(step));
                }
                continue;
            }
            if let Some(e) = &self.error
                && !cleanup
            {
                let why = format!("step {} failed", e.index);
                self.ctx.skip(step, &why);
                continue;
            }
            if step.condition == Some(Condition::OnFailureOrAlways) && !self.needs_evidence() {
                self.ctx.skip(step, "every request passed");
                continue;
            }
            let ctx = self.ctx;
            let (result, elapsed) = ctx.run_step(step, self.execute(&step.step)).await;
            self.timings.push(Timing {
                step: timing_name(&step.step),
                elapsed,
            });
            if let Err(e) = result {
                let error = self.ctx.error_of(step, e.message);
                if cleanup {
                    self.cleanup_error.get_or_insert(error);
                } else {
                    self.error = Some(error);
                }
            }
        }
        let never_judged: Vec<String> = self
            .requests
            .iter()
            .filter(|r| r.never_judged())
            .map(|r| {
                let why = r
                    .converged
                    .attempts
                    .last()
                    .and_then(|t| t.attempt.unjudged_why().map(str::to_owned))
                    .unwrap_or_default();
                format!("request {}: every attempt was inconclusive ({why})", r.name)
            })
            .collect();
        if self.error.is_none()
            && !never_judged.is_empty()
            && let Some(step) = steps
                .iter()
                .find(|s| matches!(s.step, Step::SendRequest { .. }))
        {
            self.error = Some(self.ctx.error_of(step, never_judged.join("; ")));
        }
        let recording = self.write_recording();
        let interrupted = cancel.is_cancelled();
        ScenarioRun {
            scenario: self.scenario.name().to_owned(),
            istio: self.mesh.istio.to_string(),
            mode: self.ctx.options.mode,
            environment: self.environment(),
            requests: self.requests,
            status: self.status,
            error: self.error,
            cleanup_error: self.cleanup_error,
            timings: self.timings,
            evidence: self.evidence,
            recording,
            sidecar: self.sidecar,
            interrupted,
            skipped: None,
        }
    }

    async fn execute(&mut self, step: &Step) -> Result<(), InfraError> {
        let t = &self.ctx.options.plan.timeouts;
        let backoff = self.ctx.backoff();
        let cancel = &self.ctx.cancel;
        match step {
            Step::CreateNamespace { name, labels } => {
                retry(&backoff, t.kube_call, cancel, || {
                    self.kube().create_namespace(name, labels)
                })
                .await
            }
            Step::ApplySecrets { namespace, .. } => {
                self.ctx.apply_secrets(self.kube(), namespace).await
            }
            Step::ApplyManifest { file, namespace } => {
                let objects = crate::manifest::parse_file_in(file, namespace)
                    .map_err(|p| InfraError::new(p.to_string()))?;
                let applied = retry(&backoff, t.kube_call, cancel, || {
                    self.kube().apply(&objects, namespace)
                })
                .await?;
                self.applied.insert(file.clone(), applied);
                Ok(())
            }
            Step::PatchObject {
                file,
                namespace,
                object,
                merge,
            } => {
                let objects = crate::manifest::parse_file_in(file, namespace)
                    .map_err(|p| InfraError::new(p.to_string()))?;
                let Some(mut target) = objects
                    .into_iter()
                    .find(|o| format!("{}/{}", o.kind, o.name) == *object)
                else {
                    return Err(InfraError::new(format!(
                        "{} holds no {object} to patch",
                        file.display()
                    )));
                };
                crate::manifest::merge_patch(&mut target.body, merge);
                retry(&backoff, t.kube_call, cancel, || {
                    self.kube().apply(std::slice::from_ref(&target), namespace)
                })
                .await
                .map(|_| ())
            }
            Step::WaitReady {
                namespace,
                workload,
                name,
                timeout_secs,
            } => {
                if let Workload::Pod { sidecar } = workload {
                    self.sidecar = Some(*sidecar);
                }
                self.ctx
                    .wait(self.kube(), namespace, *workload, name, *timeout_secs)
                    .await
            }
            Step::AwaitCleanConfig {
                hosts,
                proxies,
                timeout_secs,
            } => self
                .await_config_gone(hosts, proxies, secs(*timeout_secs))
                .await
                .map(|_| ()),
            Step::AwaitStatus {
                objects,
                timeout_secs,
                ..
            } => {
                self.status = Some(self.await_status(objects, secs(*timeout_secs)).await?);
                Ok(())
            }
            Step::SendRequest {
                request,
                argv,
                deadline_secs,
                gateway,
                ztunnel,
                ..
            } => {
                let Some(r) = self
                    .scenario
                    .requests
                    .iter()
                    .find(|r| r.name.value == *request)
                else {
                    return Err(InfraError::new(format!(
                        "the scenario has no request {request}"
                    )));
                };
                let run = self
                    .converge_request(r, argv, gateway, ztunnel.as_ref(), secs(*deadline_secs))
                    .await;
                self.requests.push(run);
                Ok(())
            }
            Step::CollectEvidence { dir, gateway, .. } => {
                let mut bundle = self.collect_evidence(dir.clone(), gateway).await;
                if let Some(status) = &self.status
                    && let Ok(json) = serde_json::to_vec_pretty(&status.objects)
                {
                    bundle.write("status.json", &json);
                }
                for r in &self.requests {
                    if let Some(first) = r.converged.relapses().first()
                        && let Ok(json) = serde_json::to_vec_pretty(first)
                    {
                        bundle.write(&format!("first-failure-{}.json", r.name), &json);
                    }
                }
                self.evidence = Some(bundle);
                Ok(())
            }
            Step::DeleteObjects { file, .. } => {
                let Some(applied) = self.applied.remove(file) else {
                    return Ok(());
                };
                retry(&backoff, t.kube_call, cancel, || {
                    self.kube().delete(&applied)
                })
                .await
            }
            Step::SwapGatewayApiCrds {
                remove,
                files,
                crds,
                timeout_secs,
                ..
            } => {
                super::cluster_changes::swap_gateway_api_crds(
                    self.ctx,
                    self.kube(),
                    remove,
                    files,
                    crds,
                    *timeout_secs,
                )
                .await
            }
            Step::RestartDeployment {
                namespace,
                name,
                timeout_secs,
            } => {
                super::cluster_changes::restart_deployment(
                    self.ctx,
                    self.kube(),
                    namespace,
                    name,
                    *timeout_secs,
                )
                .await
            }
            Step::DeleteNamespace { name, timeout_secs } => {
                let timeout = secs(*timeout_secs);
                retry(&backoff, timeout, cancel, || {
                    self.kube().delete_namespace(name, timeout)
                })
                .await
            }
            // Named, not `_`: a new kind of step must be placed by every interpreter.
            other @ (Step::CheckDocker
            | Step::UseKind { .. }
            | Step::DownloadKind { .. }
            | Step::ResolveLatestIstio
            | Step::ReadInstalledMesh
            | Step::UseIstioctl { .. }
            | Step::DownloadIstioctl { .. }
            | Step::PullImage { .. }
            | Step::BuildImage { .. }
            | Step::CreateCluster { .. }
            | Step::LoadImages { .. }
            | Step::InstallIstio { .. }
            | Step::InstallGatewayApiCrds { .. }
            | Step::CheckExistingIstio { .. }
            | Step::StartUpstream { .. }
            | Step::DeleteSecrets { .. }
            | Step::DeleteCluster { .. }
            | Step::StopUpstream { .. }) => Err(InfraError::new(format!(
                "not a scenario step: {}",
                other.kind()
            ))),
        }
    }

    async fn converge_request(
        &self,
        request: &Request,
        planned_argv: &[String],
        gateway: &Proxies,
        ztunnel: Option<&Proxies>,
        deadline: Duration,
    ) -> RequestRun {
        let started = tokio::time::Instant::now();
        let cancel = self.ctx.cancel.clone();
        let backoff = self.ctx.backoff();
        let converged: Converged<Observation> = converge::converge(
            deadline,
            CONSISTENT_PASSES,
            &backoff,
            &self.ctx.cancel,
            |_| {
                let remaining = deadline.saturating_sub(started.elapsed());
                let cancel = cancel.clone();
                async move {
                    if cancel.is_cancelled() {
                        return Attempt::Inconclusive {
                            why: "interrupted".into(),
                        };
                    }
                    self.attempt(request, planned_argv, gateway, ztunnel, remaining)
                        .await
                }
            },
        )
        .await;
        let istio = &self.mesh.istio;
        let context = judge::context_for(self.scenario, request, &self.context);
        let verdicts = converged
            .last_observed()
            .map(|obs| judge::judge(request, obs, &context, istio))
            .unwrap_or_default();
        let first_relapse = converged
            .relapses()
            .first()
            .map(|obs| judge::judge(request, obs, &context, istio))
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
        &self,
        request: &Request,
        planned_argv: &[String],
        gateway: &Proxies,
        ztunnel: Option<&Proxies>,
        remaining: Duration,
    ) -> Attempt<Observation> {
        let t = &self.ctx.options.plan.timeouts;
        let attempt_id = uuid::Uuid::new_v4().to_string();
        let argv: Vec<String> = planned_argv
            .iter()
            .map(|a| a.replace(ATTEMPT_ID, &attempt_id))
            .collect();
        // The log API counts in whole seconds: start a second early; the probe picks the line.
        let sent_at = self.ctx.now();
        let since = sent_at - SignedDuration::from_secs(1);
        let timeout = secs(u64::from(request.max_time_seconds)) + t.exec_slack;
        let context = judge::context_for(self.scenario, request, &self.context);
        let send = |argv: Vec<String>| {
            let context = &context;
            if self.ctx.options.verbose {
                // What the Kubernetes API exec runs, as the kubectl line that runs it too.
                let kubectl = [
                    "kubectl",
                    "exec",
                    "-n",
                    &context.namespace,
                    &context.client_pod,
                    "-c",
                    mesh::CLIENT_CONTAINER,
                    "--",
                ]
                .into_iter()
                .map(str::to_owned)
                .chain(argv.iter().cloned())
                .collect::<Vec<_>>();
                eprintln!(
                    "{}: {}",
                    self.ctx.voice(),
                    command_line(&kubectl, &format!("request {}", request.name.value))
                );
            }
            async move {
                self.kube()
                    .exec(
                        &context.namespace,
                        &context.client_pod,
                        mesh::CLIENT_CONTAINER,
                        &argv,
                        timeout,
                    )
                    .await
            }
        };
        // Counters before the send, to judge how much the request made them grow.
        let stats_before = match self.read_stats(request, gateway, &context).await {
            Ok(s) => s,
            Err(e) => return Attempt::Inconclusive { why: e.message },
        };
        // A burst: the first send is the one whose logs and headers are judged; the
        // others, each with an id of its own, only count in `share`.
        let (first, others) = match request.repeat {
            Some(repeat) => {
                let others: Vec<Vec<String>> = (1..repeat.count)
                    .map(|_| {
                        let id = uuid::Uuid::new_v4().to_string();
                        planned_argv
                            .iter()
                            .map(|a| a.replace(ATTEMPT_ID, &id))
                            .collect()
                    })
                    .collect();
                let mut sends =
                    futures::stream::iter(std::iter::once(argv.clone()).chain(others).map(send))
                        .buffered(repeat.concurrency.max(1) as usize);
                let mut results = Vec::new();
                while let Some(r) = sends.next().await {
                    results.push(r);
                }
                let mut results = results.into_iter();
                (results.next(), results.collect::<Vec<_>>())
            }
            None => (Some(send(argv.clone()).await), Vec::new()),
        };
        let exec = match first {
            Some(Ok(exec)) => exec,
            Some(Err(e)) if e.permanent => return Attempt::Hopeless { why: e.message },
            Some(Err(e)) => return Attempt::Inconclusive { why: e.message },
            None => {
                return Attempt::Inconclusive {
                    why: "nothing was sent".into(),
                };
            }
        };
        let mut statuses = Vec::new();
        for other in &others {
            match other {
                Ok(exec) => statuses.push(
                    crate::curl::split_output(&exec.stdout)
                        .1
                        .map_or(0, |w| w.http_code),
                ),
                Err(e) if e.permanent => {
                    return Attempt::Hopeless {
                        why: e.message.clone(),
                    };
                }
                Err(e) => {
                    return Attempt::Inconclusive {
                        why: format!("a send of the burst: {}", e.message),
                    };
                }
            }
        }
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
            request_id: Some(attempt_id.clone()),
            probe: Some(crate::curl::probe(&attempt_id)),
            sent_at: Some(sent_at.to_string()),
            exit_code: Some(exit_code),
            http_code: Some(write_out.http_code),
            body: Some(body.to_owned()),
            stderr: Some(exec.stderr),
            gateway_log: None,
            sidecar_log: None,
            ztunnel_log: None,
            time_total: write_out.time_total,
            response_headers: write_out.headers,
            stat_deltas: None,
            statuses: request.repeat.map(|_| {
                std::iter::once(write_out.http_code)
                    .chain(statuses)
                    .collect()
            }),
        };
        // The sidecar's line of a proxied request names the proxy; the gateway's (if the
        // tunnel goes through one) names the site.
        let sidecar_host = judge::log_host(request);
        let site_host = judge::url_host(&argv.last().cloned().unwrap_or_default());
        let log_deadline = t.log_line.min(remaining);
        let sidecar = Proxies::Pod {
            namespace: context.namespace.clone(),
            name: context.client_pod.clone(),
        };
        for (proxy, expect, which) in [
            (
                gateway,
                request.expect.gateway_log.as_ref().map(presence),
                "gateway",
            ),
            (
                &sidecar,
                request.expect.sidecar_log.as_ref().map(presence),
                "sidecar",
            ),
        ] {
            let wait = log_wait(expect.clone(), log_deadline, t.absence_settle);
            let host = if which == "sidecar" {
                &sidecar_host
            } else {
                &site_host
            };
            let found = |lines: &[String]| judge::find_line(lines, &obs, host).is_some();
            let read = self.read_until_found(proxy, wait, since, &found).await;
            if expect.is_some() && !read.complete() && !read.found {
                return Attempt::Inconclusive {
                    why: format!(
                        "the {which} access log could not be read in full: {}",
                        read.unreadable.join("; ")
                    ),
                };
            }
            // Nothing read at all is "not observed", not "no line".
            let lines = (read.any_read || read.complete()).then_some(read.lines);
            match which {
                "gateway" => obs.gateway_log = lines,
                _ => obs.sidecar_log = lines,
            }
        }
        if let Some(before) = stats_before {
            match self.read_stats(request, gateway, &context).await {
                Ok(Some(after)) => {
                    obs.stat_deltas = Some(
                        after
                            .iter()
                            .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
                            .collect(),
                    );
                }
                Ok(None) => {}
                Err(e) => return Attempt::Inconclusive { why: e.message },
            }
        }
        if let (Some(expect), Some(ztunnel)) = (&request.expect.ztunnel_log, ztunnel) {
            // Ambient: the node's ztunnel logged the connection, not a sidecar.
            let ns = self.context.namespace.clone();
            let found = |lines: &[String]| {
                crate::evidence::ztunnel_log::find(lines, &ns, &site_host).is_some()
            };
            let wait = log_wait(Some(presence(expect)), log_deadline, t.absence_settle);
            let read = self.read_until_found(ztunnel, wait, since, &found).await;
            if !read.complete() && !read.found {
                return Attempt::Inconclusive {
                    why: format!(
                        "ztunnel's log could not be read in full: {}",
                        read.unreadable.join("; ")
                    ),
                };
            }
            let mark = format!("src.namespace=\"{ns}\"");
            obs.ztunnel_log = (read.any_read || read.complete()).then(|| {
                read.lines
                    .into_iter()
                    .filter(|l| l.contains(&mark))
                    .collect()
            });
        }
        let passed = judge::passed(&judge::judge(request, &obs, &context, &self.mesh.istio));
        Attempt::Judged {
            passed,
            observed: obs,
        }
    }

    /// Reads a proxy's log until the attempt's line is there or `wait` passes.
    async fn read_until_found(
        &self,
        proxy: &Proxies,
        wait: Duration,
        since: Timestamp,
        found: &(dyn Fn(&[String]) -> bool + Sync),
    ) -> LogRead {
        let started = tokio::time::Instant::now();
        let backoff = self.ctx.backoff();
        let mut pause = backoff.initial;
        loop {
            let mut read = self.read_logs(proxy, since).await;
            read.found = found(&read.lines);
            if read.found || started.elapsed() + pause > wait || self.ctx.cancel.is_cancelled() {
                return read;
            }
            tokio::time::sleep(pause).await;
            pause = backoff.next(pause);
        }
    }

    /// Lines of every Running pod of `proxy`; a pod that cannot be read is noted, and
    /// the others still count.
    async fn read_logs(&self, proxy: &Proxies, since: Timestamp) -> LogRead {
        let mut read = LogRead::default();
        let pods = match self.pods_of(proxy).await {
            Ok(p) => p,
            Err(e) => {
                read.unreadable.push(e.message);
                return read;
            }
        };
        for (ns, pod) in pods {
            match self
                .kube()
                .logs(&ns, &pod, mesh::PROXY_CONTAINER, Some(since), None)
                .await
            {
                Ok(lines) => {
                    read.any_read = true;
                    read.lines.extend(lines);
                }
                Err(e) => read.unreadable.push(format!("{ns}/{pod}: {e}")),
            }
        }
        read
    }

    /// The counters `request` names, by `<proxy>:<name>`, summed over the proxy's
    /// pods (a stat a proxy has not made yet counts 0); `None` when it names none.
    async fn read_stats(
        &self,
        request: &Request,
        gateway: &Proxies,
        context: &crate::recording::Context,
    ) -> Result<Option<BTreeMap<String, i64>>, InfraError> {
        if request.expect.stats.is_empty() {
            return Ok(None);
        }
        let t = &self.ctx.options.plan.timeouts;
        let sidecar = Proxies::Pod {
            namespace: context.namespace.clone(),
            name: context.client_pod.clone(),
        };
        let mut out = BTreeMap::new();
        for stat in &request.expect.stats {
            let proxy = match stat.proxy {
                crate::scenario::StatProxy::Gateway => gateway,
                crate::scenario::StatProxy::Sidecar => &sidecar,
            };
            let mut sum = 0;
            for (namespace, pod) in self.pods_of(proxy).await? {
                let text = retry(&self.ctx.backoff(), t.config_dump, &self.ctx.cancel, || {
                    self.kube().envoy_stats(&namespace, &pod, t.config_dump)
                })
                .await
                .map_err(|e| e.context("reading Envoy stats"))?;
                sum += crate::evidence::envoy_stats::parse(&text)
                    .get(&stat.name)
                    .copied()
                    .unwrap_or(0);
            }
            out.insert(stat.key(), sum);
        }
        Ok(Some(out))
    }

    async fn pods_of(&self, proxy: &Proxies) -> Result<Vec<(String, String)>, InfraError> {
        let t = &self.ctx.options.plan.timeouts;
        match proxy {
            Proxies::Pod { namespace, name } => Ok(vec![(namespace.clone(), name.clone())]),
            Proxies::Selector {
                namespace,
                selector,
            } => {
                let pods = retry(&self.ctx.backoff(), t.kube_call, &self.ctx.cancel, || {
                    self.kube().pods(namespace, selector)
                })
                .await?;
                Ok(pods.into_iter().map(|p| (namespace.clone(), p)).collect())
            }
        }
    }

    /// Reads the Gateway API objects until the scenario's `status:` holds or the
    /// deadline passes. A status that never holds is a verdict, not an error; an
    /// object that cannot be read is.
    async fn await_status(
        &self,
        targets: &[crate::plan::gateway_api::StatusTarget],
        deadline: Duration,
    ) -> Result<StatusRun, InfraError> {
        let started = tokio::time::Instant::now();
        let t = &self.ctx.options.plan.timeouts;
        let backoff = self.ctx.backoff();
        let mut reads = 0;
        let read = || {
            reads += 1;
            let reads = reads;
            let backoff = &backoff;
            async move {
                let mut objects = BTreeMap::new();
                for target in targets {
                    let object = retry(backoff, t.kube_call, &self.ctx.cancel, || {
                        self.kube().get(
                            &target.api_version,
                            &target.kind,
                            Some(&target.namespace),
                            &target.name,
                        )
                    })
                    .await?;
                    objects.insert(target.id(), object);
                }
                let verdicts =
                    judge::judge_status(&self.scenario.status, &objects, &self.mesh.istio);
                Ok(StatusRun {
                    verdicts,
                    elapsed: started.elapsed(),
                    reads,
                    objects,
                })
            }
        };
        let (run, held) = poll(
            &backoff,
            deadline,
            &self.ctx.cancel,
            read,
            StatusRun::passed,
        )
        .await?;
        eprintln!(
            "egress: status {} after {:.1}s ({} read(s))",
            if held { "holds" } else { "never held" },
            run.elapsed.as_secs_f64(),
            run.reads
        );
        Ok(run)
    }

    /// Polls the proxies' config dumps until none mentions `hosts`, or the deadline.
    async fn await_config_gone(
        &self,
        hosts: &[String],
        proxies: &[Proxies],
        deadline: Duration,
    ) -> Result<Duration, InfraError> {
        let started = tokio::time::Instant::now();
        if hosts.is_empty() {
            return Ok(Duration::ZERO);
        }
        let t = &self.ctx.options.plan.timeouts;
        let backoff = self.ctx.backoff();
        let read = || async {
            let mut left = Vec::new();
            for proxy in proxies {
                for (ns, pod) in self.pods_of(proxy).await? {
                    let dump = retry(&backoff, t.config_dump, &self.ctx.cancel, || {
                        self.kube().config_dump(&ns, &pod, t.config_dump)
                    })
                    .await?;
                    for host in crate::evidence::config_dump::leftover_hosts(&dump, hosts)? {
                        left.push(format!("{host} in {ns}/{pod}"));
                    }
                }
            }
            Ok(left)
        };
        match poll(&backoff, deadline, &self.ctx.cancel, read, Vec::is_empty).await? {
            (_, true) => Ok(started.elapsed()),
            (left, false) => Err(InfraError::new(format!(
                "configuration of a scenario still present after {}s: {}",
                deadline.as_secs(),
                left.join(", ")
            ))),
        }
    }

    fn write_recording(&mut self) -> Option<PathBuf> {
        let observed: Vec<Observation> = self
            .requests
            .iter()
            .filter_map(|r| r.converged.last_observed().cloned())
            .collect();
        if observed.is_empty() {
            return None;
        }
        let options = &self.ctx.options;
        let recording = Recording {
            format: recording::FORMAT.into(),
            scenario: self.scenario.name().into(),
            istio: self.mesh.istio.to_string(),
            source: format!(
                "{} run {} on {}",
                match options.mode {
                    crate::model::RunMode::Live => "live",
                    crate::model::RunMode::Simulated =>
                        "SIMULATED (not evidence of Istio behaviour)",
                },
                options.run_id(),
                self.mesh
                    .cluster
                    .as_deref()
                    .unwrap_or("the current kube context")
            ),
            context: self.context.clone(),
            requests: observed,
            notes: vec![format!("install profile {}", self.mesh.install)],
        };
        let dir = options.run_dir().join("recordings");
        let path = dir.join(format!("{}@{}.json", self.scenario.name(), self.mesh.istio));
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| recording.write(&path).map_err(std::io::Error::other));
        match written {
            Ok(()) => Some(path),
            Err(e) => {
                if let Some(b) = self.evidence.as_mut() {
                    b.missing("recording", &e.to_string());
                }
                eprintln!(
                    "egress: could not write the recording {}: {e}",
                    path.display()
                );
                None
            }
        }
    }

    /// Everything worth keeping when a scenario fails; each piece that cannot be had is
    /// noted in the bundle's `problems.txt`, never fatal.
    async fn collect_evidence(&self, dir: PathBuf, gateway: &Proxies) -> Bundle {
        let ns = self.scenario.name();
        let mut bundle = Bundle::new(dir.clone());
        let ws = &self.ctx.ws;
        let upstream = self.ctx.options.plan.upstream;
        let files = std::iter::once(crate::plan::client_manifest(self.scenario))
            .chain(
                self.scenario
                    .clients
                    .iter()
                    .map(|c| format!("client/{}.yaml", c.manifest.value)),
            )
            .chain(
                self.scenario
                    .manifests_for(upstream)
                    .into_iter()
                    .chain(self.scenario.applied_later(upstream))
                    .map(|m| m.value),
            );
        for file in files {
            match std::fs::read(ws.manifests_dir().join(&file)) {
                Ok(bytes) => bundle.write(&format!("manifests/{file}"), &bytes),
                Err(e) => bundle.missing(&file, &e.to_string()),
            }
        }
        let kube = self.kube();
        // Every client, in its own namespace where it has one.
        let mut pods: Vec<(String, String, Vec<&str>)> =
            std::iter::once((ns.to_owned(), mesh::CLIENT_POD.to_owned()))
                .chain(
                    self.scenario
                        .clients
                        .iter()
                        .map(|c| (c.namespace_in(ns), c.name.value.clone())),
                )
                .map(|(namespace, pod)| {
                    (
                        namespace,
                        pod,
                        vec![mesh::CLIENT_CONTAINER, mesh::PROXY_CONTAINER],
                    )
                })
                .collect();
        match self.pods_of(gateway).await {
            Ok(found) => pods.extend(
                found
                    .into_iter()
                    .map(|(ns, p)| (ns, p, vec![mesh::PROXY_CONTAINER])),
            ),
            Err(e) => bundle.missing("egress gateway pods", &e.message),
        }
        if let Ok(found) = kube
            .pods(mesh::ISTIO_NAMESPACE, mesh::ZTUNNEL_SELECTOR)
            .await
        {
            pods.extend(found.into_iter().map(|p| {
                (
                    mesh::ISTIO_NAMESPACE.to_owned(),
                    p,
                    vec![mesh::PROXY_CONTAINER],
                )
            }));
        }
        match kube
            .pods(mesh::ISTIO_NAMESPACE, mesh::ISTIOD_SELECTOR)
            .await
        {
            Ok(found) => pods.extend(found.into_iter().map(|p| {
                (
                    mesh::ISTIO_NAMESPACE.to_owned(),
                    p,
                    vec![mesh::ISTIOD_CONTAINER],
                )
            })),
            Err(e) => bundle.missing("istiod pods", &e.message),
        }
        let t = &self.ctx.options.plan.timeouts;
        for (pod_ns, pod, containers) in &pods {
            for container in containers {
                let name = format!(
                    "logs/{}.log",
                    evidence::file_name(&[pod_ns, pod, container])
                );
                match kube
                    .logs(
                        pod_ns,
                        pod,
                        container,
                        Some(self.started),
                        // The whole log: the bundle keeps its newest 4 MiB (KC10).
                        None,
                    )
                    .await
                {
                    Ok(lines) => bundle.write(&name, (lines.join("\n") + "\n").as_bytes()),
                    Err(e) => bundle.missing(&name, &e.message),
                }
            }
            if containers.contains(&mesh::PROXY_CONTAINER) {
                let name = format!("config_dump/{}.json", evidence::file_name(&[pod_ns, pod]));
                match kube.config_dump(pod_ns, pod, t.config_dump).await {
                    Ok(dump) => bundle.write(&name, dump.as_bytes()),
                    Err(e) => bundle.missing(&name, &e.message),
                }
            }
        }
        for events_ns in [ns, mesh::ISTIO_NAMESPACE] {
            let name = format!("events/{events_ns}.txt");
            match kube.events(events_ns).await {
                Ok(lines) => bundle.write(&name, (lines.join("\n") + "\n").as_bytes()),
                Err(e) => bundle.missing(&name, &e.message),
            }
        }
        if let Some(export) = &self.mesh.export_logs {
            let target = dir.join("kind-logs");
            let mut argv = export.clone();
            argv.push(target.display().to_string());
            let ran = self
                .ctx
                .seams
                .host
                .run(crate::seams::Command {
                    argv,
                    timeout: t.export_logs,
                    what: "kind export logs".into(),
                })
                .await;
            match ran {
                Ok(ran) if ran.success() => bundle.cap_tree(&target),
                Ok(ran) => bundle.missing("kind export logs", &ran.failure()),
                Err(e) => bundle.missing("kind export logs", &e.message),
            }
        }
        bundle.finish()
    }
}

/// What reading one proxy's logs gave.
#[derive(Debug, Default)]
struct LogRead {
    lines: Vec<String>,
    /// Pods (or the pod list) that could not be read, and why.
    unreadable: Vec<String>,
    any_read: bool,
    found: bool,
}

impl LogRead {
    fn complete(&self) -> bool {
        self.unreadable.is_empty()
    }
}

fn presence<T>(p: &Presence<T>) -> Presence<()> {
    match p {
        Presence::Absent => Presence::Absent,
        _ => Presence::Present,
    }
}

/// How long to read logs for an expectation: until the line shows up when it must be
/// there, a short settle when it must not, one read when nothing is asked.
fn log_wait(expect: Option<Presence<()>>, deadline: Duration, settle: Duration) -> Duration {
    match expect {
        None => Duration::ZERO,
        Some(Presence::Absent) => settle.min(deadline),
        Some(_) => deadline,
    }
}

fn timing_name(step: &Step) -> String {
    match step {
        Step::SendRequest { request, .. } => format!("request {request}"),
        Step::ApplyManifest { file, .. } => format!(
            "apply {}",
            file.file_name().and_then(|f| f.to_str()).unwrap_or("?")
        ),
        other => other.kind().replace('_', " "),
    }
}

/// The install profile as the report states it: where the scenario's profile was had
/// inside its namespace, which mesh carried it.
pub(crate) fn install_text(scenario: &str, cluster: &str) -> String {
    if scenario == cluster {
        scenario.to_owned()
    } else {
        format!("{scenario} (in its namespace, on a {cluster} mesh)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_awaited_only_as_long_as_the_expectation_needs() {
        let d = Duration::from_secs(10);
        let settle = Duration::from_secs(3);
        assert_eq!(log_wait(None, d, settle), Duration::ZERO);
        assert_eq!(log_wait(Some(Presence::Absent), d, settle), settle);
        assert_eq!(log_wait(Some(Presence::Present), d, settle), d);
        assert_eq!(
            log_wait(Some(Presence::Present), Duration::from_secs(2), settle),
            Duration::from_secs(2)
        );
    }
}
