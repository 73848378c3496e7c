//! `egress`: list, validate and plan Istio egress conformance scenarios.

use std::process::ExitCode;

fn main() -> ExitCode {
    egress_harness::cli::main()
}
