#!/usr/bin/env bash
# For machines with Docker and kind (CI here has neither and runs the same suites on clusters it builds from real
# parts: `make test`). Against a one-node kind cluster, it runs
#   1. the integration suites (the test process serves the webhook; the apiserver reaches it on the kind network);
#   2. the cluster suite (test/cluster): the image built from the Dockerfile, loaded into the node, installed with
#      `helm install`, then the same steps as `make test` runs on its own node (apps, webhook, Diego's Go BBS client
#      through `kubectl port-forward`, leader failover, agent kill and pod deletion, upgrade, drain, uninstall),
#      inspecting the node's host with `docker exec`. Needs Go (Diego's Go BBS client) and Linux (the suite reaches
#      the node's host ports on the kind network).
#   hack/kind-e2e.sh                 # both; creates (or reuses) the kind cluster "diego-e2e"
#   SUITES=cluster hack/kind-e2e.sh  # only the cluster suite (or SUITES=integration)
#   KEEP_CLUSTER=1 hack/kind-e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v kind >/dev/null || { echo "kind is required: go install sigs.k8s.io/kind@latest" >&2; exit 1; }
command -v docker >/dev/null || { echo "docker is required" >&2; exit 1; }
name=${KIND_CLUSTER:-diego-e2e}
suites=${SUITES:-integration cluster}
kind get clusters | grep -qx "$name" || kind create cluster --name "$name" --wait 120s
kubeconfig=$(mktemp)
trap 'rm -f "$kubeconfig"; [ -n "${KEEP_CLUSTER:-}" ] || kind delete cluster --name "$name"' EXIT
kind get kubeconfig --name "$name" >"$kubeconfig"
export PATH=$PWD/node_modules/.bin:$PATH

if [[ " $suites " == *" integration "* ]]; then
  # The apiserver runs in a container: it reaches this host's webhook server through the kind network's gateway.
  gateway=$(docker network inspect kind -f '{{range .IPAM.Config}}{{if .Gateway}}{{.Gateway}} {{end}}{{end}}' | awk '{print $1}')
  DIEGO_TEST_KUBECONFIG=$kubeconfig DIEGO_TEST_WEBHOOK_HOST=${DIEGO_TEST_WEBHOOK_HOST:-$gateway} make test-integration
fi

if [[ " $suites " == *" cluster "* ]]; then
  image=diego-operator:e2e-$(git rev-parse --short HEAD)
  docker build -t "$image" .
  kind load docker-image "$image" --name "$name"
  make deps
  # The suite's NATS listens on this machine's end of the kind network, which the pods reach.
  host_ip=$(docker network inspect kind -f '{{range .IPAM.Config}}{{if .Gateway}}{{.Gateway}} {{end}}{{end}}' | awk '{print $1}')
  DIEGO_CLUSTER_KUBECONFIG=$kubeconfig DIEGO_CLUSTER_IMAGE=$image DIEGO_CLUSTER_NODE_CONTAINER=$name-control-plane \
    DIEGO_CLUSTER_HOST_IP=$host_ip vitest run --project cluster
fi
