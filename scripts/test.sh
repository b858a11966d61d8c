#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, builds the guest
# policies (host/build.rs and tests/build.rs do that), and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
export WASMSCALER_CP_BIN=${WASMSCALER_CP_BIN:-$PWD/target/controlplane/bin}
cargo test --workspace --release --locked "$@"
