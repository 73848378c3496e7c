//! The library behind the Istio egress conformance suite: scenario files, the evidence
//! Istio shows, the judge, the plan of a live run, and the runner that turns it all into
//! libtest trials.

pub mod cli;
pub mod conformance;
pub mod curl;
pub mod evidence;
pub mod judge;
pub mod live;
pub mod manifest;
pub mod plan;
pub mod prereq;
pub mod recording;
pub mod replay;
pub mod report;
pub mod repro;
pub mod run_args;
pub mod scenario;
pub mod suite;
pub mod upstream;
pub mod validate;
pub mod versions;
