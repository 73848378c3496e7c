//! `cargo test` entry of the conformance suite. See the README and `--help`.

fn main() -> std::process::ExitCode {
    egress_harness::conformance::main()
}
