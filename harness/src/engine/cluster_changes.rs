//! Changes to the whole cluster: the Gateway API CRDs installed before Istio, swapped
//! for a scenario that asks for another release of them and put back after it, and
//! istiod restarted so that it reads them as it would at a fresh install.

use super::ctx::RunCtx;
use super::wait::{poll, retry, secs};
use crate::plan::Workload;
use crate::plan::gateway_api::PinnedFile;
use crate::seams::{Applied, InfraError, KubeApi};

const CRD_API: &str = "apiextensions.k8s.io/v1";
const CRD_KIND: &str = "CustomResourceDefinition";

/// Fetches each pinned CRD file, applies it, and polls until every CRD is
/// Established (apiextensions.k8s.io/v1 CustomResourceDefinitionStatus).
pub(super) async fn install_gateway_api_crds(
    ctx: &RunCtx,
    kube: &dyn KubeApi,
    files: &[PinnedFile],
    crds: &[String],
    timeout_secs: u64,
) -> Result<(), InfraError> {
    let deadline = tokio::time::Instant::now() + secs(timeout_secs);
    apply_and_establish(ctx, kube, files, crds, deadline, timeout_secs).await
}

/// Deletes `remove`, polls until they are gone, then installs `files`. A CRD is
/// deleted rather than applied over: moving a CRD backwards may drop a version its
/// objects are stored in, which the API server refuses, and Gateway API's guide says
/// experimental CRDs may need an uninstall and reinstall between releases
/// (kubernetes-sigs/gateway-api site-src/guides/crd-management.md).
pub(super) async fn swap_gateway_api_crds(
    ctx: &RunCtx,
    kube: &dyn KubeApi,
    remove: &[String],
    files: &[PinnedFile],
    crds: &[String],
    timeout_secs: u64,
) -> Result<(), InfraError> {
    let deadline = tokio::time::Instant::now() + secs(timeout_secs);
    let t = &ctx.options.plan.timeouts;
    let applied: Vec<Applied> = remove
        .iter()
        .map(|name| Applied {
            api_version: CRD_API.into(),
            kind: CRD_KIND.into(),
            name: name.clone(),
            namespace: None,
        })
        .collect();
    retry(&ctx.backoff(), t.kube_call, &ctx.cancel, || {
        kube.delete(&applied)
    })
    .await?;
    let present = || pending_crds(ctx, kube, remove, |crd| crd.map(|_| String::new()));
    let budget = deadline.saturating_duration_since(tokio::time::Instant::now());
    if let (present, false) =
        poll(&ctx.backoff(), budget, &ctx.cancel, present, Vec::is_empty).await?
    {
        return Err(InfraError::new(format!(
            "Gateway API CRDs still present {timeout_secs}s after their deletion: {}",
            present.join(", ")
        )));
    }
    apply_and_establish(ctx, kube, files, crds, deadline, timeout_secs).await
}

async fn apply_and_establish(
    ctx: &RunCtx,
    kube: &dyn KubeApi,
    files: &[PinnedFile],
    crds: &[String],
    deadline: tokio::time::Instant,
    timeout_secs: u64,
) -> Result<(), InfraError> {
    let t = &ctx.options.plan.timeouts;
    let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
    for file in files {
        let bytes = ctx
            .seams
            .host
            .fetch_pinned(&file.url, &file.sha256, &file.dest, left())
            .await?;
        let text = String::from_utf8(bytes)
            .map_err(|e| InfraError::new(format!("{}: not UTF-8: {e}", file.url)))?;
        let objects = crate::manifest::parse_str(&text, &file.dest)
            .map_err(|p| InfraError::new(p.to_string()))?;
        retry(&ctx.backoff(), t.kube_call, &ctx.cancel, || {
            kube.apply(&objects, "default")
        })
        .await?;
    }
    let waiting = || {
        pending_crds(ctx, kube, crds, |crd| {
            let seen = crate::evidence::status::read(crd, "Established");
            (seen.value.as_deref() != Some("True")).then(|| format!(" ({})", seen.evidence))
        })
    };
    match poll(&ctx.backoff(), left(), &ctx.cancel, waiting, Vec::is_empty).await? {
        (_, true) => Ok(()),
        (waiting, false) => Err(InfraError::new(format!(
            "Gateway API CRDs not Established after {timeout_secs}s: {}",
            waiting.join(", ")
        ))),
    }
}

/// The CRDs of `names` not as wanted yet, each with what `pending` says of it
/// (`None`: as wanted).
async fn pending_crds(
    ctx: &RunCtx,
    kube: &dyn KubeApi,
    names: &[String],
    pending: impl Fn(Option<&serde_json::Value>) -> Option<String>,
) -> Result<Vec<String>, InfraError> {
    let t = &ctx.options.plan.timeouts;
    let mut out = Vec::new();
    for name in names {
        let crd = retry(&ctx.backoff(), t.kube_call, &ctx.cancel, || {
            kube.get(CRD_API, CRD_KIND, None, name)
        })
        .await?;
        if let Some(why) = pending(crd.as_ref()) {
            out.push(format!("{name}{why}"));
        }
    }
    Ok(out)
}

/// Restarts a Deployment's pods and waits for the rollout. istiod learns of a CRD
/// once: its watcher runs a kind's callbacks when the CRD first appears and then
/// forgets them ("Delete them so we do not run again", istio/istio
/// pkg/kube/kclient/crdwatcher.go, Reconcile), and checks a CRD's bundle version only
/// then; after a swap only a new istiod reads the CRDs as a fresh install's would.
pub(super) async fn restart_deployment(
    ctx: &RunCtx,
    kube: &dyn KubeApi,
    namespace: &str,
    name: &str,
    timeout_secs: u64,
) -> Result<(), InfraError> {
    let t = &ctx.options.plan.timeouts;
    retry(&ctx.backoff(), t.kube_call, &ctx.cancel, || {
        kube.restart_deployment(namespace, name)
    })
    .await?;
    ctx.wait(kube, namespace, Workload::Deployment, name, timeout_secs)
        .await
}
