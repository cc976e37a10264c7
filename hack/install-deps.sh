#!/usr/bin/env bash
# Installs what diego-operator needs on a fresh Debian 12 machine: Debian packages (only the missing ones),
# npm dependencies (including Node 24 from the npm `node` package), and the Go-built control plane.
# `hack/install-deps.sh run` (make run) installs only what `diego-operator dev` needs: not the tests' nats-server,
# chromium and helm.
set -euo pipefail
for_tests=true; [ "${1:-}" = run ] && for_tests=false
cd "$(dirname "$0")/.."

# Debian packages: openssl (certificates), util-linux (setpriv: children die with their parent), git;
# runc, busybox-static, containernetworking-plugins, iproute2: the cell agent's runc backend and its tests;
# containerd (containerd, ctr, the runc shim): the containerd backend and its tests; mmdebstrap (with
# debian-archive-keyring): the Debian rootfs of preloaded stacks such as cflinuxfs4 (src/cell-agent/backends/rootfs.ts);
# socat: the container proxy (src/cell-agent/executor/proxy.ts); iptables: egress rules and CNI's portmap;
# unzip: zip downloads; tar: streaming files in and out; nats-server: the NATS bus the route emitter's tests
# register routes on (as gorouter reads them); chromium: the controller's web view is tested in headless Chromium.
pkgs=(openssl util-linux ca-certificates git runc busybox-static containernetworking-plugins iproute2 containerd
  mmdebstrap debian-archive-keyring socat iptables unzip tar)
if $for_tests; then pkgs+=(nats-server chromium); fi
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps] installing Debian packages: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "[deps] Go >= 1.26 is required to build the local control plane (https://go.dev/dl)" >&2; exit 1; }
command -v npm >/dev/null || { echo "[deps] npm is required (any Node.js >= 18 with npm; Node 24 itself comes from npm)" >&2; exit 1; }

# npm: reinstall only when package-lock.json changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[deps] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

# The builds run in the background so that a signal reaches them: bash runs a trap only between commands, and
# `wait` is one it interrupts. A background job of a script ignores SIGINT (Ctrl-C), so each build runs in its own
# process group (set -m), and Ctrl-C or a SIGTERM (make passes it on) is passed on to that whole group.
child=
build() { set -m; "$@" >/dev/null & child=$!; set +m; wait "$child"; child=; }
stop() { # stop <signal> <exit code>
  if [ -n "$child" ]; then kill -"$1" -- "-$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  exit "$2"
}
trap 'stop INT 130' INT
trap 'stop TERM 143' TERM
# The control plane (etcd, kube-apiserver, kube-controller-manager, kubectl), built once per machine.
build hack/build-control-plane.sh
# helm (for the chart test, test/integration/chart.test.ts), built once per machine into the same cache.
if $for_tests; then build hack/build-helm.sh; fi
