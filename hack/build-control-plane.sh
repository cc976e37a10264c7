#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl (k8s.io/kubernetes) and etcd (go.etcd.io/etcd/server/v3)
# from the Go module proxy into a cache outside the repo, keyed by the helper modules' go.sum.
# The first build on 2 cores takes a long time (tens of minutes); later runs are instant.
# Prints the directory holding the binaries on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

K8S_VERSION=$(awk '$1=="k8s.io/kubernetes"{print $2}' "$here/tools/k8sbin/go.mod")
ETCD_VERSION=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2}' "$here/tools/etcdbin/go.mod")
# Bump RECIPE when the build flags or the set of binaries change; the go.sum files cover the versions.
RECIPE="v2 static trimpath tags=selinux,notest,grpcnotrace ldflags=-s,-w,version bins=etcd,kube-apiserver,kube-controller-manager,kubectl"
key=$( (cat "$here/tools/k8sbin/go.sum" "$here/tools/etcdbin/go.sum"; echo "$RECIPE") | sha256sum | cut -c1-16)
cache=${DIEGO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/diego-operator}
bin="$cache/bin/$K8S_VERSION-etcd$ETCD_VERSION-$key"

if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/kubectl" ] && [ -x "$bin/etcd" ]; then
  echo "$bin"; exit 0
fi
mkdir -p "$cache/bin"
exec 9>"$cache/build.lock"
flock 9 # one build at a time; a second caller waits, then finds the binaries
if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/kubectl" ] && [ -x "$bin/etcd" ]; then
  echo "$bin"; exit 0
fi
command -v go >/dev/null || { echo "go is required to build the control plane (Go >= 1.26)" >&2; exit 1; }
rm -rf "$bin.tmp"; mkdir -p "$bin.tmp"
start=$(date +%s)
# Ctrl-C (SIGINT) or SIGTERM (make passes it on; dev mode's stop sends it): stop the build running in the background
# too, not only this script. A background job of a script ignores SIGINT, so each build runs in its own process
# group (set -m) and the signal is passed on to that whole group: the subshell, go and the compilers it runs.
pid=
stop() { # stop <signal> <exit code>
  if [ -n "$pid" ]; then kill -"$1" -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  exit "$2"
}
trap 'stop INT 130' INT
trap 'stop TERM 143' TERM
progress() { # a progress line while a long step runs: in place on a terminal, once a minute in logs
  local what=$1 pid=$2 n=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ -t 2 ]; then
      printf '\r[control-plane] building %s ... %ds (first build on 2 cores: 5-40 min; cached afterwards)' "$what" $(( $(date +%s) - start )) >&2
    elif [ $(( n % 12 )) -eq 0 ]; then
      echo "[control-plane] building $what ... $(( $(date +%s) - start ))s (first build on 2 cores: 5-40 min; cached afterwards)" >&2
    fi
    n=$(( n + 1 )); sleep 5
  done
  if [ -t 2 ]; then printf '\n' >&2; fi
}

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldf="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldf="$ldf -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitVersion=$K8S_VERSION -X $p.gitTreeState=clean"
done

log="$bin.tmp/build.log"
set -m
( cd "$here/tools/etcdbin" && go build -trimpath -ldflags "-s -w" -o "$bin.tmp/etcd" go.etcd.io/etcd/server/v3 ) >"$log" 2>&1 &
pid=$!; set +m; progress "etcd $ETCD_VERSION" $pid
wait $pid || { cat "$log" >&2; exit 1; }
set -m
( cd "$here/tools/k8sbin" && go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$ldf" -o "$bin.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl ) >>"$log" 2>&1 &
pid=$!; set +m; progress "kube-apiserver, kube-controller-manager, kubectl $K8S_VERSION" $pid
wait $pid || { cat "$log" >&2; exit 1; }
rm -rf "$bin"; mv "$bin.tmp" "$bin"
echo "[control-plane] built in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin"
