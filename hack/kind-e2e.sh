#!/usr/bin/env bash
# Runs the integration suites against a kind cluster instead of the embedded control plane, for machines with
# Docker (or podman) and kind. CI here has neither; it runs the same suites on the local control plane.
#   hack/kind-e2e.sh            # creates (or reuses) the kind cluster "diego-e2e", runs the suites
#   KEEP_CLUSTER=1 hack/kind-e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v kind >/dev/null || { echo "kind is required: go install sigs.k8s.io/kind@latest" >&2; exit 1; }
name=${KIND_CLUSTER:-diego-e2e}
kind get clusters | grep -qx "$name" || kind create cluster --name "$name" --wait 120s
kubeconfig=$(mktemp)
trap 'rm -f "$kubeconfig"; [ -n "${KEEP_CLUSTER:-}" ] || kind delete cluster --name "$name"' EXIT
kind get kubeconfig --name "$name" >"$kubeconfig"
# The apiserver runs in a container: it reaches this host's webhook server through the kind network's gateway.
gateway=$(docker network inspect kind -f '{{range .IPAM.Config}}{{if .Gateway}}{{.Gateway}} {{end}}{{end}}' | awk '{print $1}')
export DIEGO_TEST_KUBECONFIG=$kubeconfig DIEGO_TEST_WEBHOOK_HOST=${DIEGO_TEST_WEBHOOK_HOST:-$gateway}
make test-integration
