#!/usr/bin/env bash
# Builds the real control plane the tests start, from the Go module proxy, into
# $WASMSCALER_CP_BIN (default: target/controlplane/bin):
#  - etcd (go.etcd.io/etcd/server/v3);
#  - kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes, one
#    version for all three, one Go module: tools/controlplane/kube-apiserver);
#  - kwok (sigs.k8s.io/kwok): fake nodes whose pods go through lifecycle stages;
#  - helm (helm.sh/helm/v3), for the chart tests (helm lint / template).
# Idempotent: a binary already built for the pinned version is kept (a stamp file
# .<name>-<version> next to it). Usage: build-control-plane.sh [binary...] (default: all).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0
bin=${WASMSCALER_CP_BIN:-$here/target/controlplane/bin}
mkdir -p "$bin"
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

fresh() { [ -x "$bin/$1" ] && [ -f "$bin/.$1-$2" ]; }

# The tools module requires k8s.io/kubernetes with a replace for every staging module
# (k/k's own go.mod points them at ./staging, which only applies inside k/k).
k8s_module() {
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
    go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION"
  fi
}

build_k8s() {
  local name=$1
  fresh "$name" "$K8S_VERSION" && return 0
  k8s_module
  local minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  done
  go build -trimpath -tags selinux,notest -ldflags "$ld" -o "$bin/$name" "k8s.io/kubernetes/cmd/$name"
  touch "$bin/.$name-$K8S_VERSION"
}

build_etcd() {
  fresh etcd "$ETCD_VERSION" && return 0
  cd "$here/tools/controlplane/etcd"
  if [ ! -f go.mod ]; then
    printf 'module wasmscaler.dev/tools/etcd\n\ngo 1.25.0\n' > go.mod
    go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  fi
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
  touch "$bin/.etcd-$ETCD_VERSION"
}

# kwok in its own module: it requires newer k8s.io/* than k/k pins, and MVS would raise
# the control plane's dependencies if both shared a go.mod.
build_kwok() {
  fresh kwok "$KWOK_VERSION" && return 0
  cd "$here/tools/controlplane/kwok"
  if [ ! -f go.mod ]; then
    printf 'module wasmscaler.dev/tools/kwok\n\ngo 1.26.0\n' > go.mod
    go get -tool "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  fi
  go build -trimpath -ldflags "-s -w" -o "$bin/kwok" sigs.k8s.io/kwok/cmd/kwok
  touch "$bin/.kwok-$KWOK_VERSION"
}

build_helm() {
  fresh helm "$HELM_VERSION" && return 0
  cd "$here/tools/controlplane/helm"
  if [ ! -f go.mod ]; then
    printf 'module wasmscaler.dev/tools/helm\n\ngo 1.25.0\n' > go.mod
    go get -tool "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  fi
  go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" -o "$bin/helm" helm.sh/helm/v3/cmd/helm
  touch "$bin/.helm-$HELM_VERSION"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok helm)
for b in "${want[@]}"; do
  case $b in
    etcd) build_etcd ;;
    kube-apiserver | kube-controller-manager | kube-scheduler) build_k8s "$b" ;;
    kwok) build_kwok ;;
    helm) build_helm ;;
    *) echo "build-control-plane.sh: unknown binary '$b' (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, helm)" >&2; exit 2 ;;
  esac
done
echo "control plane binaries in $bin"
ls -la "$bin"
