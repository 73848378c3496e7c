//! `egress doctor`: everything a live run needs from this host, checked at once.

use std::process::ExitCode;

use crate::doctor::{self, Verdict};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Clusters the run will keep alive at once (memory and inotify depend on it).
    #[arg(long, default_value_t = 2)]
    clusters: usize,
    /// Skip the reachability of GitHub, Docker Hub and registry.k8s.io.
    #[arg(long)]
    offline: bool,
    /// The run's `--cluster`: `existing` makes no kind cluster here.
    #[arg(long, default_value = "kind", value_parser = ["kind", "existing"])]
    cluster: String,
    /// The run's `--upstream`: `internet` starts no container here.
    #[arg(long, default_value = "local", value_parser = ["local", "internet"])]
    upstream: String,
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let needs = doctor::Needs::of(
        crate::model::ClusterMode::parse(&args.cluster)?,
        crate::model::UpstreamMode::parse(&args.upstream)?,
        args.clusters,
        !args.offline,
    );
    let mut checks = doctor::checks_for(&doctor::RealHost, needs);
    if needs.clusters == 0 {
        checks.extend(existing_cluster());
    }
    for c in &checks {
        println!("{c}");
    }
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    if failed > 0 {
        println!("\n{failed} check(s) failed: a live run cannot work here until they are fixed.");
        return Ok(ExitCode::from(1));
    }
    println!("\nready for a live run (warnings, if any, say what may hurt).");
    Ok(ExitCode::SUCCESS)
}

/// `--cluster existing`: the current kube context opened as a run opens it — its
/// name and server, whether it answers, the Istio it runs, its egress gateway and
/// mesh config — each a check naming the context and the server.
fn existing_cluster() -> Vec<doctor::Check> {
    use doctor::{fail, ok};
    let kc = match kube::config::Kubeconfig::read() {
        Ok(kc) => kc,
        Err(e) => {
            let path = std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into());
            return vec![fail(
                "kube context",
                format!("no kubeconfig to read at {path}: {e}"),
                "point KUBECONFIG at the cluster's kubeconfig (kubectl config current-context shows which), or run on the harness's own clusters (--cluster kind)",
            )];
        }
    };
    let context = kc.current_context.clone().unwrap_or_default();
    let Some((context, server)) = crate::live::k8s::current_context_at(&kc) else {
        return vec![fail(
            "kube context",
            format!("the current context `{context}` names no cluster with a server"),
            "kubectl config use-context NAME, or set KUBECONFIG",
        )];
    };
    let at = format!("context {context}, server {server}");
    let mut out = vec![ok("kube context", at.clone())];
    let timeouts = crate::model::Timeouts::default();
    let found = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(async {
                let kube = crate::live::k8s::KubeConnect {
                    call: timeouts.kube_call,
                };
                let found = crate::engine::existing::discover(&kube, timeouts.existing_istio_ready)
                    .await
                    .map_err(|e| e.to_string())?;
                let api = crate::seams::KubeConnector::connect(&kube, None)
                    .await
                    .map_err(|e| e.to_string())?;
                let gateway = api
                    .deployment_images(crate::model::mesh::ISTIO_NAMESPACE, "istio-egressgateway")
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((found, gateway.is_some()))
            })
        });
    match found {
        Ok((found, gateway)) => {
            out.push(ok(
                "Istio",
                format!(
                    "{} (istiod image {})",
                    found
                        .version
                        .as_ref()
                        .map_or_else(|| "a release the image does not name".into(), ToString::to_string),
                    found.istiod_image
                ),
            ));
            out.push(ok("mesh config", found.config.to_string()));
            out.push(if gateway {
                ok("egress gateway", "Deployment istio-system/istio-egressgateway".into())
            } else {
                fail(
                    "egress gateway",
                    format!("{at}: no Deployment istio-system/istio-egressgateway"),
                    "install one (istioctl install with egressGateways enabled), or run on the harness's own clusters (--cluster kind)",
                )
            });
        }
        Err(e) => out.push(fail(
            "cluster answers",
            format!("{at}: {}", crate::model::terminal_safe(&e)),
            "check that the server is up and reachable from here (kubectl --context CONTEXT get ns), or run on the harness's own clusters (--cluster kind)",
        )),
    }
    out
}
