//! `cargo test` entry of the conformance suite. See the README and `--help`.
//! `--cluster simulated` runs the live trials through the real engine against the
//! test support's simulated cluster (tests/sim), reported as simulated.

fn main() -> std::process::ExitCode {
    egress_harness::conformance::main_with(Some(
        std::sync::Arc::new(egress_sim::FromEnv::default()),
    ))
}
