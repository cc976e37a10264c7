# diego-operator — kubebuilder-style entry points. Node 24 runs from node_modules (npm package `node`).
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NODE := node

.PHONY: all deps control-plane build manifests check-manifests typecheck lint format test test-unit test-integration test-cluster chaos run clean

all: build

## deps: Debian packages, npm dependencies and the Go-built control plane (first build: ~5-40 min)
deps:
	@hack/install-deps.sh

control-plane:
	@hack/build-control-plane.sh

## build: compile TypeScript to dist/
build: deps
	npm run build

## manifests: regenerate config/crd and charts/diego-operator/crds from the zod schemas in src/crds
manifests:
	$(NODE) hack/generate-crds.ts

check-manifests:
	$(NODE) hack/generate-crds.ts --check

typecheck:
	tsc -p tsconfig.json --noEmit

## lint: ESLint (type-aware) and Prettier
lint: typecheck
	eslint .
	prettier --check .

format:
	prettier --write .

## test: install what is needed, then lint and run every test: unit + integration on a real apiserver, then the
## cluster suite (the chart on a real node; its kubelet, containerd and image are built the first time, ~20 min)
test: deps lint check-manifests
	@mkdir -p .tmp
	@rm -f .tmp/vitest.json .tmp/vitest-cluster.json
	vitest run --project unit --project integration --reporter=default --reporter=json --outputFile.json=.tmp/vitest.json; status=$$?; \
	  vitest run --project cluster --reporter=default --reporter=json --outputFile.json=.tmp/vitest-cluster.json || status=1; \
	  $(NODE) hack/test-summary.ts .tmp/vitest.json .tmp/vitest-cluster.json; exit $$status

test-unit: deps
	vitest run --project unit

test-integration: deps
	vitest run --project integration

## test-cluster: the cluster suite: a real node (kubelet, containerd, kube-proxy; built the first time, ~10 min)
test-cluster: deps
	vitest run --project cluster

## chaos: the long chaos suite (docs/chaos.md): faults injected into real processes, invariants checked on the host;
## about an hour on 2 cores. CHAOS_ARGS passes flags, e.g. CHAOS_ARGS="--scenarios agent-kill-tasks --scale 0.2"
chaos: deps
	$(NODE) test/chaos/main.ts $(CHAOS_ARGS)

## run: the whole system locally — control plane, CRDs, operator, a sample app. Ctrl-C, or SIGTERM to make (which
## make passes on), stops it all. Installs only what it needs (not the tests' helm, nats-server, chromium).
## RUN_ARGS passes flags, e.g. RUN_ARGS=--no-sample (diego-operator dev --help).
run:
	@hack/install-deps.sh run
	exec $(NODE) src/main.ts dev $(RUN_ARGS)

clean:
	rm -rf dist coverage .tmp
