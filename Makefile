# chatbackend: operator + chat API server.
# `make dev` runs the platform locally; `make test` runs every test.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMG ?= ghcr.io/chatbackend/chatbackend:$(VERSION)
LDFLAGS := -X github.com/chatbackend/chatbackend/internal/version.Version=$(VERSION)
# chat-apiserver's build tags: internal/version.APIServerTags says why
# (a test keeps this line, the Dockerfile's and that constant equal).
APISERVER_TAGS := nomsgpack,grpcnotrace
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
fmt: tools-golangci-lint ## gofmt + goimports (module imports grouped last) the tree.
	$(BIN)/golangci-lint fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: lint
lint: lint-go lint-api ## golangci-lint on every package, kube-api-linter on api/.

# --allow-parallel-runners: without it a second run on the machine (another
# checkout's make lint) fails this one after 5 s ("parallel golangci-lint is
# running"), which failed a CI run; each run's results are its own, and the
# analysis cache they share is safe for concurrent use.
.PHONY: lint-go
lint-go: tools-golangci-lint ## golangci-lint with .golangci.yml (formatting, vet, staticcheck, ...; e2e suites included).
	$(BIN)/golangci-lint run --allow-parallel-runners ./...

.PHONY: lint-api
lint-api: tools-kube-api-linter ## Kubernetes API conventions on the CRD types (kube-api-linter, .golangci-kal.yml).
	$(BIN)/kube-api-linter run --allow-parallel-runners --config .golangci-kal.yml ./api/...

.PHONY: manifests
manifests: tools-controller-gen ## Generate the CRD and RBAC from kubebuilder markers into config/.
	$(BIN)/controller-gen rbac:roleName=manager-role crd webhook paths="./api/...;./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	$(MAKE) chart-sync

.PHONY: generate
generate: tools-controller-gen ## Generate DeepCopy methods.
	$(BIN)/controller-gen object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

##@ Build
.PHONY: build
build: ## Build bin/chat-apiserver and bin/manager.
	go build -tags $(APISERVER_TAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/chat-apiserver ./apiserver/cmd/chat-apiserver
	go build -ldflags '$(LDFLAGS)' -o $(BIN)/manager .

.PHONY: run
run: manifests ## Run the operator against the current kubeconfig.
	go run -ldflags '$(LDFLAGS)' . --default-apiserver-image=$(IMG)

.PHONY: dev
dev: build test-deps-apiserver tools-cluster ## The whole platform on a local node: operator by Helm, a ChatBackend, PostgreSQL, BetterAuth, docs (root; Ctrl-C stops all).
	hack/dev-cluster.sh

.PHONY: dev-api
dev-api: build test-deps-apiserver ## Only PostgreSQL, BetterAuth and chat-apiserver on loopback (Ctrl-C stops all).
	hack/dev.sh

##@ Test
.PHONY: test
test: lint verify-generated web-verify test-deps ## Run every test (installs what they need).
	go test $(GO_TEST_FLAGS) ./...
	$(MAKE) test-alerts
	$(MAKE) test-chart

.PHONY: test-unit
test-unit: ## Only the tests that need no PostgreSQL, node or kube-apiserver (hack/unit-packages.sh): seconds.
	go test -timeout 5m $$(hack/unit-packages.sh)

# The one check that generated files are current: it regenerates them and
# asks git whether any generated path changed, including files that appeared
# or vanished (a new CRD, a stale chart copy). Hand-written files are not
# looked at, so local edits elsewhere do not trip it.
GENERATED := ':(glob)api/**/zz_generated.*.go' config/crd/bases config/rbac/role.yaml \
	charts/chatbackend-operator/files charts/chatbackend-operator-crds/files
.PHONY: verify-generated
verify-generated: manifests generate ## Fail when the CRD, RBAC, deepcopy or chart copies are stale.
	@out=$$(git status --porcelain --untracked-files=all -- $(GENERATED)); \
	if [ -n "$$out" ]; then git --no-pager diff -- $(GENERATED); echo "$$out"; \
	  echo "generated files are stale or not committed: run 'make manifests generate' and commit"; exit 1; fi

.PHONY: test-deps
test-deps: test-deps-apiserver tools-envtest tools-prometheus tools-helm ## Install what the tests need.

.PHONY: test-deps-apiserver
test-deps-apiserver:
	hack/tools.sh postgres node
	cd hack/betterauth && (npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error)
	cd hack/embedserver && (npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error)

.PHONY: test-alerts
test-alerts: tools-prometheus ## promtool check + unit tests of the alert rules the operator installs.
	hack/test-alerts.sh

##@ Web (apiserver/web: the widget, the browser client, the Docusaurus plugin)
# npm ci only when node_modules is missing or older than the lockfile: the
# install is the slow part, and the lockfile pins every byte of it.
WEB := apiserver/web
.PHONY: web
web: ## Regenerate the client's API types from openapi.yaml, type-check, build dist/ (prints gzip sizes).
	hack/tools.sh node
	cd $(WEB) && if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
	  npm ci --no-audit --no-fund --loglevel=error; fi
	cd $(WEB) && npm run --silent gen && npm run --silent typecheck && npm run --silent build

.PHONY: web-verify
web-verify: web ## Fail when the committed dist/ or API types differ from a fresh build; run the client's unit tests.
	cd $(WEB) && npm test --silent
	@out=$$(git status --porcelain --untracked-files=all -- $(WEB)/dist $(WEB)/src/api.gen.ts); \
	if [ -n "$$out" ]; then git --no-pager diff --stat -- $(WEB)/dist $(WEB)/src/api.gen.ts; echo "$$out"; \
	  echo "apiserver/web/dist or src/api.gen.ts is stale or not committed: run 'make web' and commit"; exit 1; fi

##@ End to end
.PHONY: e2e
e2e: e2e-prometheus e2e-browser ## End-to-end tests: real Prometheus + alerts, browser frontend.

.PHONY: e2e-browser
e2e-browser: build test-deps-apiserver tools-chromium ## A docs page on its own origin signs in with BetterAuth and streams chat in headless Chromium.
	hack/e2e/run.sh

.PHONY: e2e-prometheus
e2e-prometheus: build tools-prometheus test-deps-apiserver ## A real Prometheus scrapes chat-apiserver; alerts go pending and firing.
	CHAT_APISERVER=$(BIN)/chat-apiserver go test -tags e2e -count=1 -timeout 10m -v ./hack/e2e/prometheus/

.PHONY: chaos
chaos: test-deps-apiserver ## Fault-injection and slow-client suite against the real serve, PostgreSQL and BetterAuth; prints a results table (about 2 min).
	go test -tags chaos -count=1 -timeout 15m -run '^TestChaos$$' -v ./apiserver/cli/ | grep -v '^=== '

.PHONY: eval
eval: test-deps-apiserver ## Answer quality, offline and hybrid (local sentence encoder): the labelled questions of hack/eval through the real serve; prints hit@1/hit@3/MRR, abstention, facts.
	go test -tags eval -count=1 -timeout 10m -run '^TestEval$$' -v ./hack/eval/ | grep -v '^=== '

# Opt-in, not in make test or CI: it downloads a 56 MB module the first time.
.PHONY: eval-corpus
eval-corpus: test-deps-apiserver ## Answer quality on a real docs tree: Argo CD's (its Go module, via the proxy), ingested twice and asked hack/eval/corpus-argocd.yaml through the real serve, offline (EVAL_CORPUS_HYBRID=1 adds hybrid: about 11 min more; EVAL_CORPUS_SET=corpus-argocd-dev.yaml asks the development set instead and diagnoses its misses).
	EVAL_CORPUS=1 go test -tags eval -count=1 -timeout 30m -run '^TestCorpus$$' -v ./hack/eval/ | grep -v '^=== '

FUZZTIME ?= 10s
.PHONY: fuzz
fuzz: ## Run every fuzz target (func FuzzXxx, found by hack/fuzz.sh) for FUZZTIME each (make test runs their seeds).
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: bench
bench: test-deps-apiserver ## Run the benchmarks (BenchmarkEmbedQuestion needs the local encoder's npm deps).
	go test -run '^$$' -bench . -benchmem ./...

##@ Performance (hack/bench-http; the figures are in README.md's Performance section)
# BENCH_FLAGS go to the harness, e.g. BENCH_FLAGS='-duration 5s -scenarios list,rejected -profile /tmp/prof'.
BENCH_FLAGS ?=
.PHONY: bench-http
bench-http: ## chat-apiserver side by side with a plain Go floor under load (real PostgreSQL, RS256 JWKS): req/s, p50/p99, CPU per request (about 3 min).
	hack/tools.sh postgres
	go test -tags bench -count=1 -timeout 30m -run '^TestBenchHTTP$$' -v ./hack/bench-http -args $(BENCH_FLAGS) | grep -v -e '^=== ' -e '^--- PASS' -e '^PASS' -e '^ok '

.PHONY: bench-stream
bench-stream: ## Concurrent answer streams (SSE) one chat-apiserver holds with the fake model at 30 tokens/s, side by side with a plain Go streaming floor: TTFB, added latency, memory, goroutines and CPU per stream (about 5 min; BENCH_FLAGS=-pin: the server alone on one core; -floor=false: no floor).
	hack/tools.sh postgres
	go test -tags bench -count=1 -timeout 30m -run '^TestBenchStream$$' -v ./hack/bench-http -args $(BENCH_FLAGS) | grep -v -e '^=== ' -e '^--- PASS' -e '^PASS' -e '^ok '

.PHONY: bench-growth
bench-growth: bench-retrieval bench-ingest ## How a page of messages (100 to 100,000 messages), a question's retrieval (1k to 100k chunks) and an ingest run (100 to 10,000 pages) grow (about 15 min).
	hack/tools.sh postgres
	go test -run '^$$' -bench 'BenchmarkListMessagesHistory' -benchtime 200x ./apiserver/store/

.PHONY: bench-retrieval
bench-retrieval: ## A question's retrieval through the PostgreSQL store, 1k to 100k chunks, offline and 1536-d; the index's load time and heap (about 6 min).
	hack/tools.sh postgres
	go test -run '^$$' -bench '^BenchmarkRetrievalGrowth$$' -benchtime 2s -timeout 60m ./apiserver/rag/vectorstore/pgstore/

.PHONY: bench-ingest
bench-ingest: ## An offline ingest run into PostgreSQL, 100 to 10,000 pages: into an empty index, unchanged, one page changed (about 6 min).
	hack/tools.sh postgres
	go test -run '^$$' -bench '^BenchmarkIngestGrowth$$' -benchtime 2s -timeout 60m ./apiserver/rag/ingest/

# The operator on a fleet (hack/bench-operator): minutes, a control plane of
# its own, so not part of `make bench` or `make test` (build tag).
BENCH_CHATBACKENDS ?= 200
BENCH_NAMESPACES ?= 50
BENCH_UNRELATED_SECRETS ?= 2000
BENCH_UNRELATED_DEPLOYMENTS ?= 500
BENCH_REST_WINDOW ?= 1m
.PHONY: bench-operator
bench-operator: tools-envtest ## The operator on BENCH_CHATBACKENDS ChatBackends (+ unrelated objects) in envtest: convergence, heap, API requests.
	go test -tags benchoperator -run '^$$' -bench Fleet -benchtime 1x -timeout 90m ./hack/bench-operator/ -args \
	  -chatbackends=$(BENCH_CHATBACKENDS) -namespaces=$(BENCH_NAMESPACES) -unrelated-secrets=$(BENCH_UNRELATED_SECRETS) \
	  -unrelated-deployments=$(BENCH_UNRELATED_DEPLOYMENTS) -rest-window=$(BENCH_REST_WINDOW)

##@ Tools (cached per machine, linked into bin/)
.PHONY: tools-envtest tools-prometheus tools-helm tools-controller-gen tools-chromium tools-golangci-lint tools-kube-api-linter
tools-envtest: ; hack/tools.sh envtest
tools-prometheus: ; hack/tools.sh prometheus
tools-helm: ; hack/tools.sh helm
tools-controller-gen: ; hack/tools.sh controller-gen
tools-golangci-lint: ; hack/tools.sh golangci-lint
tools-kube-api-linter: ; hack/tools.sh kube-api-linter
tools-chromium: ; hack/tools.sh chromium

##@ Deployment
# (maintained with the chart: charts/chatbackend-operator, hack/test-chart.sh)
CHART := charts/chatbackend-operator
CRDS_CHART := charts/chatbackend-operator-crds
RELEASE ?= chatbackend-operator
NAMESPACE ?= chatbackend-system
CONTAINER_TOOL ?= docker
KUBECTL ?= kubectl

.PHONY: chart-sync
chart-sync: ## Copy the generated CRD and RBAC rules into the charts (run after manifests).
	# files/crds/ holds exactly the generated CRDs: a removed one must go too.
	for dir in $(CHART)/files/crds $(CRDS_CHART)/files/crds; do \
	  mkdir -p $$dir && rm -f $$dir/*.yaml && cp config/crd/bases/*.yaml $$dir/; done
	cp config/rbac/role.yaml $(CHART)/files/manager-role.yaml

.PHONY: install
install: manifests ## Install the ChatBackend CRD into the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -f config/crd/bases

.PHONY: uninstall
uninstall: manifests ## Remove the CRD (and with it every ChatBackend!) from the cluster.
	$(KUBECTL) delete --ignore-not-found -f config/crd/bases

.PHONY: deploy
deploy: manifests chart-sync tools-helm ## Install or upgrade the operator with Helm (IMG=..., NAMESPACE=...).
	img='$(IMG)'; $(BIN)/helm upgrade --install $(RELEASE) $(CHART) --namespace $(NAMESPACE) --create-namespace \
	  --set image.repository="$${img%:*}" --set image.tag="$${img##*:}" --wait

.PHONY: undeploy
undeploy: tools-helm ## Uninstall the operator release (the CRD and ChatBackends stay).
	$(BIN)/helm uninstall $(RELEASE) --namespace $(NAMESPACE) --ignore-not-found

.PHONY: docker-build
docker-build: ## Build the image holding manager and chat-apiserver (IMG=...).
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the image.
	$(CONTAINER_TOOL) push $(IMG)

.PHONY: test-chart
test-chart: tools-helm ## Chart checks: lint, template, refused values (drift: verify-generated).
	hack/test-chart.sh

##@ Local cluster (hack/cluster.sh; root)
IMAGE_TAG ?= $(VERSION)
IMAGE_REF ?= localhost/chatbackend:$(IMAGE_TAG)
IMAGE_ARCHIVE ?= $(BIN)/image/chatbackend-$(IMAGE_TAG).oci.tar
IMAGE_GOFLAGS := -trimpath -ldflags '-s -w -buildid= -X github.com/chatbackend/chatbackend/internal/version.Version=$(VERSION)'

.PHONY: image
image: ## The image of the Dockerfile as a reproducible OCI archive, no Docker ($(IMAGE_ARCHIVE)).
	CGO_ENABLED=0 go build -tags $(APISERVER_TAGS) $(IMAGE_GOFLAGS) -o $(BIN)/image/chat-apiserver ./apiserver/cmd/chat-apiserver
	CGO_ENABLED=0 go build $(IMAGE_GOFLAGS) -o $(BIN)/image/manager .
	go run ./hack/image app --tag $(IMAGE_REF) --out $(IMAGE_ARCHIVE) --version $(VERSION) \
	  --manager $(BIN)/image/manager --apiserver $(BIN)/image/chat-apiserver
	@echo "import: ctr --address <containerd socket> -n k8s.io images import $(IMAGE_ARCHIVE)"

.PHONY: tools-cluster tools-prometheus-operator
tools-cluster: ; hack/tools.sh cluster
tools-prometheus-operator: ; hack/tools.sh prometheus-operator

.PHONY: cluster-up cluster-down cluster-status
cluster-up: tools-cluster ## A single-node cluster on this machine (KUBECONFIG=/tmp/chatbackend-cluster/kubeconfig).
	hack/cluster.sh up
cluster-down: ## Stop it and remove everything it made.
	hack/cluster.sh down
cluster-status: ## What of it runs.
	hack/cluster.sh status

.PHONY: e2e-cluster
e2e-cluster: tools-cluster tools-prometheus-operator test-deps-apiserver ## The chart, a ChatBackend, its day-2 paths and its alerts (prometheus-operator) on a real single-node cluster (root).
	hack/e2e/cluster/run.sh
