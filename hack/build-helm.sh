#!/usr/bin/env bash
# Builds helm (helm.sh/helm/v4) from the Go module proxy into the same cache as the control plane
# (hack/build-control-plane.sh), keyed by hack/tools/helmbin/go.sum. The chart test (test/integration/chart.test.ts)
# lints and renders charts/diego-operator with it. First build on 2 cores: a few minutes; later runs are instant.
# Prints the path of the helm binary on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

HELM_VERSION=$(awk '$1=="helm.sh/helm/v4"{print $2}' "$here/tools/helmbin/go.mod")
# Bump RECIPE when the build flags change; go.sum covers the versions.
RECIPE="v1 static trimpath ldflags=-s,-w,version"
key=$( (cat "$here/tools/helmbin/go.sum"; echo "$RECIPE") | sha256sum | cut -c1-16)
cache=${DIEGO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/diego-operator}
bin="$cache/bin/helm$HELM_VERSION-$key"

if [ -x "$bin/helm" ]; then echo "$bin/helm"; exit 0; fi
mkdir -p "$cache/bin"
exec 9>"$cache/build-helm.lock"
flock 9 # one build at a time; a second caller waits, then finds the binary
if [ -x "$bin/helm" ]; then echo "$bin/helm"; exit 0; fi
command -v go >/dev/null || { echo "go is required to build helm (Go >= 1.26)" >&2; exit 1; }
rm -rf "$bin.tmp"; mkdir -p "$bin.tmp"
start=$(date +%s)
echo "[helm] building helm $HELM_VERSION (first build on 2 cores: a few minutes; cached afterwards)" >&2
ldf="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
if ! (cd "$here/tools/helmbin" && nice go build -trimpath -ldflags "$ldf" -o "$bin.tmp/helm" helm.sh/helm/v4/cmd/helm) \
  >"$bin.tmp/build.log" 2>&1; then
  cat "$bin.tmp/build.log" >&2; exit 1
fi
rm -rf "$bin"; mv "$bin.tmp" "$bin"
echo "[helm] built in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin/helm"
