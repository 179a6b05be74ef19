# chatbackend: operator + chat API server.
# `make dev` runs the platform locally; `make test` runs every test.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMG ?= ghcr.io/chatbackend/chatbackend:$(VERSION)
LDFLAGS := -X github.com/chatbackend/chatbackend/internal/version.Version=$(VERSION)
BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
# envtest looks for kube-apiserver and etcd here.
export KUBEBUILDER_ASSETS := $(BIN)
GO_TEST_FLAGS ?= -count=1 -timeout 30m

.PHONY: all
all: build

##@ General
.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development
.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: lint
lint: ## gofmt check + go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^$$')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

.PHONY: manifests
manifests: tools-controller-gen ## Generate the CRD and RBAC from kubebuilder markers into config/.
	$(BIN)/controller-gen rbac:roleName=manager-role crd webhook paths="./api/...;./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@if [ -d charts/chatbackend-operator/crds ]; then cp config/crd/bases/*.yaml charts/chatbackend-operator/crds/; fi

.PHONY: generate
generate: tools-controller-gen ## Generate DeepCopy methods.
	$(BIN)/controller-gen object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

##@ Build
.PHONY: build
build: ## Build bin/chat-apiserver and bin/manager.
	go build -ldflags '$(LDFLAGS)' -o $(BIN)/chat-apiserver ./apiserver/cmd/chat-apiserver
	go build -ldflags '$(LDFLAGS)' -o $(BIN)/manager .

.PHONY: run
run: manifests ## Run the operator against the current kubeconfig.
	go run -ldflags '$(LDFLAGS)' . --default-apiserver-image=$(IMG)

.PHONY: dev
dev: build test-deps-apiserver ## Run PostgreSQL, BetterAuth and chat-apiserver locally (Ctrl-C stops all).
	hack/dev.sh

##@ Test
.PHONY: test
test: lint test-deps ## Run every test (installs what they need).
	go test $(GO_TEST_FLAGS) ./...
	$(MAKE) test-alerts

.PHONY: test-deps
test-deps: test-deps-apiserver tools-envtest tools-prometheus ## Install what the tests need.

.PHONY: test-deps-apiserver
test-deps-apiserver:
	cd hack/betterauth && (npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error)

.PHONY: test-alerts
test-alerts: tools-prometheus ## promtool check + unit tests of the alert rules the operator installs.
	hack/test-alerts.sh

.PHONY: bench
bench: ## Run the benchmarks.
	go test -run '^$$' -bench . -benchmem ./...

##@ Tools (cached per machine, linked into bin/)
.PHONY: tools-envtest tools-prometheus tools-helm tools-controller-gen tools-chromium
tools-envtest: ; hack/tools.sh envtest
tools-prometheus: ; hack/tools.sh prometheus
tools-helm: ; hack/tools.sh helm
tools-controller-gen: ; hack/tools.sh controller-gen
tools-chromium: ; hack/tools.sh chromium
