#!/usr/bin/env bash
# Builds the upstream references of the conformance tests (tests/conformance/) from the Go
# module proxy, at the versions pinned in each tool's go.mod / go.sum, into
# $WASMSCALER_CONFORMANCE_BIN (default: target/conformance/bin):
#  - knative-reference: tools/conformance/knative (knative.dev/serving);
#  - keda-reference:    tools/conformance/keda (github.com/kedacore/keda/v2);
#  - cron-reference:    tools/conformance/cron (github.com/ringtail/go-cron).
# The Go build and module caches live under target/conformance/ (CI caches target/).
# Idempotent: a binary whose stamp (a hash of its tool's sources and go.sum) matches is
# kept. Usage: build-conformance.sh [knative|keda|cron ...] (default: all).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${WASMSCALER_CONFORMANCE_BIN:-$here/target/conformance/bin}
mkdir -p "$bin"
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
export GOMODCACHE=${GOMODCACHE_CONFORMANCE:-$here/target/conformance/gomod}
export GOCACHE=${GOCACHE_CONFORMANCE:-$here/target/conformance/gocache}

build() {
  local tool=$1 src="$here/tools/conformance/$1" out="$bin/$1-reference"
  local stamp
  stamp=$(cat "$src"/go.mod "$src"/go.sum "$src"/*.go | sha256sum | cut -c1-16)
  if [ -x "$out" ] && [ "$(cat "$bin/.$tool-stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out" .)
  echo "$stamp" > "$bin/.$tool-stamp"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(knative keda cron)
for t in "${want[@]}"; do
  case $t in
    knative | keda | cron) [ -d "$here/tools/conformance/$t" ] && build "$t" ;;
    *) echo "build-conformance.sh: unknown reference '$t' (knative, keda, cron)" >&2; exit 2 ;;
  esac
done
echo "conformance references in $bin"
