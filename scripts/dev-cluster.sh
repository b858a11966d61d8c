#!/usr/bin/env bash
# The end-to-end tests' cluster, by hand: etcd + kube-apiserver + kube-controller-manager +
# kube-scheduler + kwok with the "general" pool of 3 fake on-demand nodes, exactly as
# tests/controlplane/cluster.rs starts it (it runs the `dev_cluster` entry of the
# cluster_e2e test binary, so there is one definition of the cluster).
#   scripts/dev-cluster.sh up      start it; prints the KUBECONFIG to use
#   scripts/dev-cluster.sh down    stop it (every component, the data is gone)
#   scripts/dev-cluster.sh status
# Files in target/dev-cluster/: admin.kubeconfig (system:masters), controller.kubeconfig
# (the service account of deploy/rbac.yaml), logs/ (each component's log).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${WASMSCALER_DEV_CLUSTER:-$here/target/dev-cluster}
pidfile=$out/pid

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case ${1:-} in
  up)
    if running; then echo "already up: export KUBECONFIG=$out/admin.kubeconfig"; exit 0; fi
    "$here/scripts/build-control-plane.sh" etcd kube-apiserver kube-controller-manager kube-scheduler kwok >/dev/null
    mkdir -p "$out"
    rm -f "$out/ready" "$out/stop"
    cd "$here"
    cargo test --release --locked -p wasmscaler-tests --test cluster_e2e --no-run
    WASMSCALER_DEV_CLUSTER=$out nohup cargo test --release --locked -p wasmscaler-tests --test cluster_e2e \
      -- --ignored --exact dev_cluster --nocapture > "$out/dev-cluster.log" 2>&1 &
    echo $! > "$pidfile"
    for _ in $(seq 1 240); do
      [ -f "$out/ready" ] && break
      if ! running; then echo "dev cluster failed to start:" >&2; tail -n 30 "$out/dev-cluster.log" >&2; exit 1; fi
      sleep 0.5
    done
    [ -f "$out/ready" ] || { echo "dev cluster not up after 120 s; see $out/dev-cluster.log" >&2; exit 1; }
    echo "up. export KUBECONFIG=$out/admin.kubeconfig   (logs: $out/logs/)"
    ;;
  down)
    if ! running; then echo "not running"; rm -f "$pidfile"; exit 0; fi
    touch "$out/stop"
    pid=$(cat "$pidfile")
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill "$pid" 2>/dev/null || true
    rm -f "$pidfile" "$out/ready"
    echo "down"
    ;;
  status)
    if running; then echo "up: export KUBECONFIG=$out/admin.kubeconfig"; else echo "down"; fi
    ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
