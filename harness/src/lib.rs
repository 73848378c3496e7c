//! The library behind the Istio egress conformance suite. Layers, each using only
//! those before it: `model` (shared modes, names, deadlines) ← `scenario`, `manifest`,
//! `evidence`, `recording` ← `judge` ← `plan` ← `seams` ← `engine` (the interpreter)
//! and `live` (the seams' real side) ← `report` ← `conformance`, `repro`, `cli`.

pub mod cli;
pub mod conformance;
pub mod curl;
pub mod doctor;
pub mod engine;
pub mod evidence;
pub mod explain;
pub mod judge;
pub mod live;
pub mod manifest;
pub mod mesh_config;
pub mod model;
pub mod plan;
pub mod prereq;
pub mod recording;
pub mod replay;
pub mod report;
pub mod repro;
pub mod run_args;
pub mod scenario;
pub mod seams;
pub mod suite;
pub mod upstream;
pub mod validate;
pub mod versions;
