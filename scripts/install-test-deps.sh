#!/usr/bin/env bash
# Installs what the test suite needs on a fresh machine, idempotently:
#  - the wasm32-wasip2 Rust target (policies are compiled to it);
#  - Debian's prometheus and redis-server (real servers for the signal tests);
#  - kubectl (the machine's own if present, else Debian's kubernetes-client), openssl;
#  - etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and helm built from
#    their Go modules (scripts/build-control-plane.sh; cached under target/);
#  - the conformance tests' upstream references (scripts/build-conformance.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v openssl >/dev/null 2>&1 || need+=(openssl)   # the control-plane test harness makes its certificates
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian packages start system services; the tests start their own servers on
# loopback ports, so stop the system ones if they came up.
for svc in prometheus redis-server; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
done

"$here/scripts/build-control-plane.sh" >/dev/null

# The upstream references of the conformance tests (knative.dev/serving, KEDA; cached
# under target/conformance/).
"$here/scripts/build-conformance.sh" >/dev/null
