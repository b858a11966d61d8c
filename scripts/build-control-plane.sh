#!/usr/bin/env bash
# Builds kube-apiserver (k8s.io/kubernetes) and etcd (go.etcd.io/etcd/server/v3) from the
# Go module proxy into $WASMSCALER_CP_BIN (default: target/controlplane/bin). Idempotent:
# a binary already built for the pinned version is kept. See tools/controlplane/README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.16
bin=${WASMSCALER_CP_BIN:-$here/target/controlplane/bin}
mkdir -p "$bin"
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

build_apiserver() {
  local stamp="$bin/.kube-apiserver-$K8S_VERSION"
  [ -x "$bin/kube-apiserver" ] && [ -f "$stamp" ] && return 0
  local mod="$here/tools/controlplane/kube-apiserver"
  cd "$mod"
  if [ ! -f go.mod ]; then
    local minor=${K8S_VERSION#v1.}
    {
      echo "module wasmscaler.dev/tools/kube-apiserver"
      echo
      echo "go 1.25.0"
      echo
      echo "godebug default=go1.25"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      echo "replace ("
      for m in $(cat ../staging.txt); do echo "	k8s.io/$m => k8s.io/$m v0.$minor"; done
      echo ")"
    } > go.mod
    go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION"
  fi
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=${K8S_VERSION#v1.}"
  done
  go build -trimpath -tags selinux,notest -ldflags "$ld" -o "$bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  touch "$stamp"
}

build_etcd() {
  local stamp="$bin/.etcd-$ETCD_VERSION"
  [ -x "$bin/etcd" ] && [ -f "$stamp" ] && return 0
  cd "$here/tools/controlplane/etcd"
  if [ ! -f go.mod ]; then
    printf 'module wasmscaler.dev/tools/etcd\n\ngo 1.25.0\n' > go.mod
    go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  fi
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
  touch "$stamp"
}

build_etcd
build_apiserver
echo "control plane binaries in $bin"
ls -la "$bin"
