pub mod envoy;
pub mod runner;
