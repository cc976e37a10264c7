#!/usr/bin/env bash
# Builds the operator's image without Docker or a registry: the same layout as the Dockerfile (/app/dist,
# /app/node_modules with production dependencies only, /app/package.json, node on PATH, user 65532, entrypoint
# `node /app/dist/main.js`), from parts these machines can get:
# * a Debian bookworm root filesystem from Debian's packages (mmdebstrap, minbase) with the runtime tools the cell
#   agent needs: runc, busybox-static, the CNI plugins, iproute2, iptables, util-linux, mount, containerd (ctr),
#   socat, tar, unzip, openssl, ca-certificates, mmdebstrap (the cflinuxfs rootfs, built on the node at first use);
# * Node 24 from the npm `node` package (node_modules/node/bin/node);
# * dist/ compiled here and `npm ci --omit=dev --ignore-scripts` into the image's /app.
# The result is an OCI archive (src/lib/node/oci-archive.ts: sorted, zero-time, so the same inputs give the same
# digests) tagged with its config digest: docker.io/library/diego-operator:<first 12 hex of the digest> (what the
# chart's default image.repository, diego-operator, means to a container runtime). The Debian part is cached
# (keyed by its package list); the rest is rebuilt each time (seconds).
#   hack/build-image.sh [OUT_DIR]     (default: $HOME/.cache/diego-operator/images)
# Prints the archive's path and the image's name on its last line: "<archive> <name>".
# Import it into a node's containerd with: ctr -n k8s.io images import <archive>
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
cache=${DIEGO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/diego-operator}
out=${1:-$cache/images}
mkdir -p "$out" "$cache/rootfs"

PACKAGES="ca-certificates openssl runc busybox-static containernetworking-plugins iproute2 iptables tar unzip util-linux mount containerd mmdebstrap debian-archive-keyring socat"
SUITE=bookworm
MIRROR=${DIEGO_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DIEGO_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
key=$(echo "v1 $SUITE $PACKAGES" | sha256sum | cut -c1-12)
base="$cache/rootfs/image-base-$key"
debs="$cache/rootfs/debian-debs"

if [ ! -d "$base" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "building the image's Debian base needs root (mmdebstrap --mode=root)" >&2; exit 1; }
  exec 9>"$cache/rootfs/image-base.lock"
  flock 9
  if [ ! -d "$base" ]; then
    echo "[image] building the Debian base ($SUITE: $PACKAGES) ..." >&2
    tmp="$base.tmp-$$"
    trap 'rm -rf --one-file-system "$tmp"' EXIT
    mkdir -p "$debs"
    mmdebstrap --mode=root --format=directory --variant=minbase --include="${PACKAGES// /,}" \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --dpkgopt=force-unsafe-io \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --setup-hook='mkdir -p "$1/var/cache/apt/archives" && find "'"$debs"'" -maxdepth 1 -name "*.deb" -exec cp -t "$1/var/cache/apt/archives/" {} +' \
      --customize-hook='find "$1/var/cache/apt/archives" -maxdepth 1 -name "*.deb" -exec cp -n -t "'"$debs"'/" {} +' \
      "$SUITE" "$tmp" \
      "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main" >&2
    # What differs from build to build without meaning anything: caches, logs, apt's lists, ids.
    rm -rf "$tmp"/var/cache/apt/* "$tmp"/var/lib/apt/lists/* "$tmp"/var/log/* "$tmp"/var/cache/ldconfig/aux-cache
    : > "$tmp/etc/machine-id"
    rm -f "$tmp/etc/resolv.conf" "$tmp/etc/hostname"
    mv "$tmp" "$base"
    trap - EXIT
  fi
  flock -u 9
fi

echo "[image] compiling dist/ and installing production dependencies ..." >&2
npm run -s build
stage=$(mktemp -d "${TMPDIR:-/tmp}/diego-image-XXXXXX")
trap 'rm -rf --one-file-system "$stage"' EXIT
cp -a "$base" "$stage/rootfs"
app="$stage/rootfs/app"
mkdir -p "$app"
cp package.json package-lock.json "$app/"
(cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -f "$app/package-lock.json"
cp -a dist "$app/dist"
install -m 0755 node_modules/node/bin/node "$stage/rootfs/usr/local/bin/node"
chown -R 0:0 "$app"

archive="$out/diego-operator.oci.tar"
# Named as the CRI normalizes the chart's default `image.repository: diego-operator`.
read -r _ name < <(node hack/oci-archive.ts --rootfs "$stage/rootfs" --out "$archive.tmp" --name docker.io/library/diego-operator \
  --tag-from-digest --entrypoint '["node","/app/dist/main.js"]' --cmd '["help"]' --user 65532:65532 --workdir /app \
  --env NODE_ENV=production)
mv "$archive.tmp" "$archive"
echo "[image] $name ($(du -h "$archive" | cut -f1))" >&2
echo "$archive $name"
