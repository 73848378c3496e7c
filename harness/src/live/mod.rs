//! The production side of the seams: kind, istioctl and docker through one command
//! runner, the kube API through kube-rs, the upstream container through the Docker
//! API. The engine (`crate::engine`) drives them through `crate::seams`.
//!
//! - `command`: the one runner for external programs (timeouts, process groups).
//! - `download`: kind and istioctl release assets, checksums, the cache.
//! - `k8s`: apply, wait, exec, logs and config dumps through kube.
//! - `credential`: a deadline and a process-group kill for exec credential plugins.
//! - `docker`: the upstream echo server's container.
//! - `cluster`, `prune`: what `egress prune` removes.

pub mod cluster;
pub mod command;
pub mod credential;
pub mod docker;
pub mod download;
pub mod envoy_admin;
pub mod k8s;
pub mod prune;

use std::sync::Arc;

use crate::seams::Seams;

/// The real world: kube-rs, this host's programs, the Docker daemon.
pub fn production_seams(timeouts: &crate::model::Timeouts) -> Seams {
    Seams {
        kube: Arc::new(k8s::KubeConnect {
            call: timeouts.kube_call,
        }),
        host: Arc::new(command::Runner),
        docker: Arc::new(docker::DockerEngine),
    }
}

/// An error with the causes under it ("error sending request" says nothing; the DNS
/// or connection error under it does), each said once.
pub fn caused(e: &(dyn std::error::Error + 'static)) -> String {
    let mut said = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !said.contains(&text) {
            said.push_str(": ");
            said.push_str(&text);
        }
        source = cause.source();
    }
    said
}
