# Recipes for egress-conformance. `just` lists them.

default:
    @just --list

# The project's own tests (no cluster needed).
test:
    cargo test --workspace

# Live run of the scenarios with these names or tags (needs Docker).
e2e SCENARIOS="mtls" ISTIO="":
    EGRESS_ISTIO="{{ISTIO}}" cargo test -- --scenario {{SCENARIOS}}

# One scenario, live.
scenario NAME:
    cargo test -- --scenario {{NAME}}

# The steps a live run would take.
plan SCENARIOS="" ISTIO="1.22.1,1.30.3":
    cargo run -q -p egress-harness -- plan --istio {{ISTIO}} {{ if SCENARIOS != "" { "--scenario " + SCENARIOS } else { "" } }}

# One report from several report folders (shards, versions).
report +DIRS:
    cargo run -q -p egress-harness -- report merge {{DIRS}}

# A scenario from a bug report's YAML: just new-scenario NAME report.yaml
new-scenario NAME +FILES:
    cargo run -q -p egress-harness -- new-scenario {{NAME}} $(for f in {{FILES}}; do printf -- '--from %s ' "$f"; done)

# One scenario on versions, clusters kept, evidence archived (A,B) or bisected (A..B).
repro NAME ISTIO:
    cargo run -q -p egress-harness -- repro {{NAME}} --istio {{ISTIO}}

# Remove the kind clusters the harness left behind (egc-*).
prune:
    cargo run -q -p egress-harness -- prune

# Strict checks of every scenario file.
validate:
    cargo run -q -p egress-harness -- validate

# Formatting and lints as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
