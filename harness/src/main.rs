//! `egress`: list, validate and plan Istio egress conformance scenarios.

use std::process::ExitCode;

fn main() -> ExitCode {
    if let Some(code) = egress_harness::live::credential::guard_if_asked() {
        return code;
    }
    egress_harness::cli::main()
}
