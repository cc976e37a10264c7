# syntax=docker/dockerfile:1
# One image for every role of diego-operator (controller, cell-agent, bbs; see charts/diego-operator).
# The runtime carries what the cell agent's runc backend runs on the host: runc, busybox-static (the preloaded
# busybox rootfs), the reference CNI plugins (/usr/lib/cni), iproute2 (ip netns), iptables (bridge masquerade and
# portmap), tar/unzip (streaming files in and out), util-linux (setpriv, nsenter, prlimit), mount (overlay), and
# containerd's `ctr` for the containerd backend (which drives the node's containerd through its socket),
# mmdebstrap (the Debian rootfs of cflinuxfs stacks, built on the node at first use) and socat (the container
# proxy).
#   docker build -t diego-operator:0.1.0 .

# Node 24 on Debian 12 (bookworm), the platform hack/install-deps.sh targets.
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the npm package `node` (Node 24 for a bare machine's `make run`) would fetch a second Node
# binary; the base image has one. No dependency needs an install script to compile TypeScript.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Run tsc with the image's node (node_modules/.bin/node is the npm `node` package, not installed here).
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

FROM node:${NODE_VERSION}-bookworm AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends \
    ca-certificates openssl runc busybox-static containernetworking-plugins iproute2 iptables \
    tar unzip util-linux mount containerd mmdebstrap debian-archive-keyring socat \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
ENV NODE_ENV=production
# The controller and the BBS run as this user (the chart also sets it); the cell agent runs as root, privileged.
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["help"]
