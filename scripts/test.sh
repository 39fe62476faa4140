#!/usr/bin/env bash
# The whole test suite (what .ci/run calls). Runs as root: tests create namespaces and cgroups.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo build --workspace --all-targets
cargo clippy --workspace --all-targets -- -D warnings
cargo check --quiet --manifest-path fuzz/Cargo.toml
# Two cores: two tests at a time. Each test starts its own `hearth serve` on port 0 with its
# own data directory and cgroup prefix.
cargo test --workspace -- --test-threads=2
