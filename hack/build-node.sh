#!/usr/bin/env bash
# Builds what a real node needs besides Debian's packages, for the cluster suite (test/cluster) and `make run-node`:
# * kubelet and kube-proxy from the same pinned k8s.io/kubernetes module as the control plane (hack/tools/kubeletbin:
#   k8sbin's go.mod with their extra go.sum entries, so the control plane's cache key does not change);
# * containerd 2.x, its runc shim and ctr from containerd's module (hack/tools/containerdbin): kubelet 1.36 asks
#   the runtime for its cgroup driver (the CRI RuntimeConfig call), which Debian's containerd 1.6 does not answer.
# Static (CGO off; containerd without btrfs/devmapper/zfs snapshotters: overlayfs and native are what it uses here).
# Cached outside the repo, keyed by the two go.sum files and the recipe; the first build takes minutes.
# Prints the directory holding the binaries on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

K8S_VERSION=$(awk '$1=="k8s.io/kubernetes"{print $2}' "$here/tools/kubeletbin/go.mod")
CONTAINERD_VERSION=$(awk '$1=="github.com/containerd/containerd/v2"{print $2}' "$here/tools/containerdbin/go.mod")
RECIPE="v1 static trimpath kubelet kube-proxy tags=selinux,notest,grpcnotrace containerd tags=no_btrfs,no_devmapper,no_zfs,no_aufs"
key=$( (cat "$here/tools/kubeletbin/go.sum" "$here/tools/containerdbin/go.sum"; echo "$RECIPE") | sha256sum | cut -c1-16)
cache=${DIEGO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/diego-operator}
bin="$cache/bin/$K8S_VERSION-node-$key"
want="kubelet kube-proxy containerd containerd-shim-runc-v2 ctr"

have() { for b in $want; do [ -x "$bin/$b" ] || return 1; done; }
if have; then echo "$bin"; exit 0; fi
mkdir -p "$cache/bin"
exec 9>"$cache/build-node.lock"
flock 9
if have; then echo "$bin"; exit 0; fi
command -v go >/dev/null || { echo "go is required to build the node's binaries (Go >= 1.26)" >&2; exit 1; }
rm -rf "$bin.tmp"; mkdir -p "$bin.tmp"
start=$(date +%s)

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldf="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldf="$ldf -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitVersion=$K8S_VERSION -X $p.gitTreeState=clean"
done
echo "[node] building kubelet and kube-proxy $K8S_VERSION (minutes the first time) ..." >&2
( cd "$here/tools/kubeletbin" && go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$ldf" -o "$bin.tmp/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy ) >"$bin.tmp/build.log" 2>&1 \
  || { cat "$bin.tmp/build.log" >&2; exit 1; }

echo "[node] building containerd $CONTAINERD_VERSION ..." >&2
cldf="-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
( cd "$here/tools/containerdbin" && go build -trimpath -tags=no_btrfs,no_devmapper,no_zfs,no_aufs -ldflags "$cldf" \
    -o "$bin.tmp/" github.com/containerd/containerd/v2/cmd/containerd \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/ctr ) \
  >>"$bin.tmp/build.log" 2>&1 || { cat "$bin.tmp/build.log" >&2; exit 1; }

rm -rf "$bin"; mv "$bin.tmp" "$bin"
echo "[node] built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
