//! The live engine: kind clusters, istioctl, and the kube API, driven by the plan.
//!
//! - `command`: the one runner for external programs (timeouts, process groups).
//! - `download`: kind and istioctl release assets, checksums, the cache.
//! - `cluster`: kind clusters and images.
//! - `k8s`: apply, wait, exec, logs and config dumps through kube.
//! - `converge`: judging a request until it is consistently right.
//! - `config_dump`: what a scenario leaves in the proxies.
//! - `scenario_run`: one scenario on one mesh.
//! - `evidence`: what is kept when a scenario fails.
//! - `session`: clusters shared by the trials of one process.

pub mod cluster;
pub mod command;
pub mod config_dump;
pub mod converge;
pub mod download;
pub mod evidence;
pub mod k8s;
pub mod scenario_run;
pub mod session;
