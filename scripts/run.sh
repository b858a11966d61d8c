#!/usr/bin/env bash
# Builds wasmscaler (adding the wasm32-wasip2 target if missing; host/build.rs compiles
# the standard policies) and runs it. With no arguments it runs the bundled default job.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
cargo build --release --locked -q -p wasmscaler
if [ $# -eq 0 ]; then
  set -- simulate
fi
exec target/release/wasmscaler "$@"
