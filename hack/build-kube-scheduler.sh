#!/usr/bin/env bash
# Builds kube-scheduler from the same pinned k8s.io/kubernetes module as the control plane (hack/tools/k8sbin), for
# the placement benchmark (npm run bench:place) only: tests do not need it. Cached outside the repo, keyed by the
# module's go.sum; the first build reuses the Go build cache of the control plane's and takes minutes.
# Prints the path of the binary on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

K8S_VERSION=$(awk '$1=="k8s.io/kubernetes"{print $2}' "$here/tools/k8sbin/go.mod")
RECIPE="v1 static trimpath tags=selinux,notest,grpcnotrace ldflags=-s,-w,version bins=kube-scheduler"
key=$( (cat "$here/tools/k8sbin/go.sum"; echo "$RECIPE") | sha256sum | cut -c1-16)
cache=${DIEGO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/diego-operator}
bin="$cache/bin/$K8S_VERSION-scheduler-$key"

if [ -x "$bin/kube-scheduler" ]; then echo "$bin/kube-scheduler"; exit 0; fi
mkdir -p "$cache/bin"
exec 9>"$cache/build-scheduler.lock"
flock 9
if [ -x "$bin/kube-scheduler" ]; then echo "$bin/kube-scheduler"; exit 0; fi
command -v go >/dev/null || { echo "go is required to build kube-scheduler (Go >= 1.26)" >&2; exit 1; }
rm -rf "$bin.tmp"; mkdir -p "$bin.tmp"
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldf="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldf="$ldf -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitVersion=$K8S_VERSION -X $p.gitTreeState=clean"
done
echo "[kube-scheduler] building $K8S_VERSION (minutes the first time) ..." >&2
start=$(date +%s)
( cd "$here/tools/k8sbin" && go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$ldf" -o "$bin.tmp/" \
    k8s.io/kubernetes/cmd/kube-scheduler ) >"$bin.tmp/build.log" 2>&1 || { cat "$bin.tmp/build.log" >&2; exit 1; }
rm -rf "$bin"; mv "$bin.tmp" "$bin"
echo "[kube-scheduler] built in $(( $(date +%s) - start ))s" >&2
echo "$bin/kube-scheduler"
