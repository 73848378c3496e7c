pub mod docker_lock;
pub mod envoy;
pub mod runner;
