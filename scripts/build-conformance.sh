#!/usr/bin/env bash
# Builds the upstream references of the conformance tests (tests/conformance/) from the Go
# module proxy, at the versions pinned in each tool's go.mod / go.sum, into
# $WASMSCALER_CONFORMANCE_BIN (default: target/conformance/bin):
#  - knative-reference: tools/conformance/knative (knative.dev/serving);
#  - keda-reference:    tools/conformance/keda (github.com/kedacore/keda/v2);
#  - cron-reference:    tools/conformance/cron (github.com/ringtail/go-cron);
#  - hpa-reference:     tools/conformance/hpa (k8s.io/kubernetes
#    pkg/controller/podautoscaler), built with -overlay: the shim files of
#    tools/conformance/hpa/shim/ are added to that upstream package (thin exported
#    wrappers around the HorizontalController's unexported decision steps).
# The Go build and module caches live under target/conformance/ (CI caches target/).
# Idempotent: a binary whose stamp (a hash of its tool's sources and go.sum) matches is
# kept. Usage: build-conformance.sh [knative|keda|cron|hpa ...] (default: all).
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
  stamp=$(cat "$src"/go.mod "$src"/go.sum "$src"/*.go $(ls "$src"/shim/* 2>/dev/null) | sha256sum | cut -c1-16)
  if [ -x "$out" ] && [ "$(cat "$bin/.$tool-stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  local flags=()
  if [ -d "$src/shim" ]; then
    # The shim files join upstream packages (shim/packages.txt: "file module dir" a
    # line). Go refuses overlays inside the module cache, so the module is copied as
    # downloaded to target/conformance/<tool>-src/ and replaced by that copy in a
    # generated go.mod (-modfile); the overlay then adds the shim files to the copy.
    local work="$here/target/conformance/$tool-src" entries="" f mod sub dir ver copy
    mkdir -p "$work"
    cp "$src/go.mod" "$work/go.mod"
    cp "$src/go.sum" "$work/go.sum"
    while read -r f mod sub; do
      [ -n "$f" ] || continue
      ver=$(cd "$src" && go list -m -f '{{.Version}}' "$mod")
      copy="$work/$mod@$ver"
      if [ ! -f "$copy/.complete" ]; then
        dir=$(cd "$src" && go mod download -json "$mod" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
        [ -d "$dir" ] || { echo "build-conformance.sh: no module directory for $mod" >&2; exit 1; }
        rm -rf "$copy"
        mkdir -p "$copy"
        cp -r "$dir/." "$copy"
        chmod -R u+w "$copy"
        touch "$copy/.complete"
      fi
      grep -q "^replace $mod => " "$work/go.mod" || echo "replace $mod => $copy" >> "$work/go.mod"
      entries="$entries${entries:+,}\"$copy/$sub/$f\":\"$src/shim/$f\""
    done < "$src/shim/packages.txt"
    echo "{\"Replace\":{$entries}}" > "$work/overlay.json"
    flags=(-modfile "$work/go.mod" -overlay "$work/overlay.json")
  fi
  (cd "$src" && go build -trimpath "${flags[@]}" -ldflags "-s -w" -o "$out" .)
  echo "$stamp" > "$bin/.$tool-stamp"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(knative keda cron hpa)
for t in "${want[@]}"; do
  case $t in
    knative | keda | cron | hpa) [ -d "$here/tools/conformance/$t" ] && build "$t" ;;
    *) echo "build-conformance.sh: unknown reference '$t' (knative, keda, cron, hpa)" >&2; exit 2 ;;
  esac
done
echo "conformance references in $bin"
