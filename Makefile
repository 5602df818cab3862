# ejbca-issuer — see README.md. Everything here works on a machine with only Go:
# the control plane (kube-apiserver, etcd) and controller-gen are built from the
# Go module proxy into bin/.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

BIN := $(CURDIR)/bin
export GOFLAGS ?= -buildvcs=false

MODULE := github.com/certctl-io/ejbca-issuer

CONTROLLER_GEN_VERSION := v0.21.0
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(BIN)/staticcheck-$(STATICCHECK_VERSION)
GOIMPORTS_VERSION := v0.52.0
GOIMPORTS := $(BIN)/goimports-$(GOIMPORTS_VERSION)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/certctl-io/ejbca-issuer/internal/version.Version=$(VERSION) -X github.com/certctl-io/ejbca-issuer/internal/version.Commit=$(COMMIT)

# Test settings: the envtest binaries come from bin/, never from a download.
export KUBEBUILDER_ASSETS := $(BIN)
GO_TEST_FLAGS ?= -count=1 -timeout 30m
GO_TEST_PKGS ?= ./...
# The envtest packages mostly wait on the API server and the simulator, so
# they run more tests at once than the 2 cores go test would allow.
GO_TEST_PARALLEL ?= -parallel 8
# The packages of GO_TEST_PKGS that make test runs with the race detector, in a
# second go test alongside the first (the others run without, and none runs
# twice): the controllers and the EJBCA client, where the concurrency is.
RACE_PKGS ?= ./controllers ./controllers/signing ./controllers/issuers ./controllers/revocation ./internal/ejbca
# make test-fuzz (and make soak) runs every fuzz target of FUZZ_PKGS for
# FUZZTIME; make test runs each target's seed corpus as a plain test. FUZZMINIMIZETIME bounds the minimisation of each new
# input, whose default (60s) would eat a short run.
FUZZ_PKGS ?= ./internal/...
FUZZTIME ?= 10s
FUZZMINIMIZETIME ?= 1s
FUZZ_FLAGS ?= $(filter -v,$(GO_TEST_FLAGS))

.PHONY: all
all: build

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Regenerate CRDs and RBAC from the API types and markers.
	$(CONTROLLER_GEN) crd rbac:roleName=manager-role paths=./api/... paths=./controllers/... paths=./internal/manager/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@if [ -d charts/ejbca-issuer ]; then $(MAKE) --no-print-directory chart-crds; fi
	go run ./hack/monitoringgen

.PHONY: verify-generated
verify-generated: $(CONTROLLER_GEN) ## Fail when committed generated code or manifests are stale.
	hack/verify-generated.sh

.PHONY: lint
lint: $(STATICCHECK) $(GOIMPORTS) ## gofmt, goimports grouping (standard, others, this module), go vet and staticcheck (pinned, built into bin/).
	@files=$$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*'); \
	out=$$(gofmt -l $$files); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi; \
	out=$$($(GOIMPORTS) -local $(MODULE) -l $$(grep -v zz_generated <<<"$$files")); \
	if [ -n "$$out" ]; then echo "imports not grouped (standard, others, $(MODULE)); run $(GOIMPORTS) -local $(MODULE) -w on:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(STATICCHECK) ./...

.PHONY: control-plane
control-plane: ## Build kube-apiserver and etcd into bin/ (cached; ~7 min cold).
	hack/build-control-plane.sh

.PHONY: test
test: control-plane lint verify-generated test-chart test-image test-monitoring ## Run every test against a real API server (envtest) and the EJBCA simulator, RACE_PKGS with -race; fuzz targets on their seed corpus.
	@all="$$(go list $(GO_TEST_PKGS))"; race="$$(go list $(RACE_PKGS))"; \
	plain="$$(grep -vxF -f <(echo "$$race") <<<"$$all" || true)"; \
	racy="$$(grep -xF -f <(echo "$$race") <<<"$$all" || true)"; \
	status=0; pid=""; log="$$(mktemp)"; \
	if [ -n "$$racy" ]; then \
		go test -race $(GO_TEST_FLAGS) $(GO_TEST_PARALLEL) $$racy >"$$log" 2>&1 & pid=$$!; \
	fi; \
	if [ -n "$$plain" ]; then \
		echo "go test $(GO_TEST_FLAGS) $(GO_TEST_PARALLEL) <$$(wc -l <<<"$$plain") packages: GO_TEST_PKGS except RACE_PKGS>"; \
		go test $(GO_TEST_FLAGS) $(GO_TEST_PARALLEL) $$plain || status=$$?; \
	fi; \
	if [ -n "$$pid" ]; then \
		echo "go test -race $(GO_TEST_FLAGS) $(GO_TEST_PARALLEL)" $$racy "(ran alongside; its output follows)"; \
		wait "$$pid" || status=$$?; \
		cat "$$log"; \
	fi; \
	rm -f "$$log"; \
	exit $$status

# The long suites: every leader failover round (20 per mode; make test runs
# 5) and every fuzz target for FUZZTIME.
SOAK_FAILOVER_ROUNDS ?= 20

.PHONY: soak
soak: control-plane ## Run the long suites: 20 leader failover rounds per mode, then every fuzz target for FUZZTIME.
	EJBCA_ISSUER_FAILOVER_ROUNDS=$(SOAK_FAILOVER_ROUNDS) go test $(GO_TEST_FLAGS) -run '^TestLeaderFailover$$' ./test/failover
	@$(MAKE) --no-print-directory test-fuzz

.PHONY: test-fuzz
# Go 1.26's fuzz coordinator can report a bare "context deadline exceeded"
# as the target failing when -fuzztime ends while a worker is mid-input
# (golang/go#75804, fixed in Go 1.27). Such a run wrote no failing input; it
# is run once more, and any other failure counts at once.
test-fuzz: ## Run each fuzz target of FUZZ_PKGS for FUZZTIME, one at a time (make test-fuzz FUZZTIME=1m).
	@status=0; out="$$(mktemp)"; \
	for dir in $$(go list -f '{{.Dir}}' $(FUZZ_PKGS)); do \
		pkg="./$${dir#$(CURDIR)/}"; \
		for name in $$(cat "$$dir"/*_test.go 2>/dev/null | sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*\*testing\.F).*/\1/p'); do \
			for try in 1 2; do \
				echo "go test $(FUZZ_FLAGS) -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) $$pkg"; \
				rc=0; go test $(FUZZ_FLAGS) -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) "$$pkg" >"$$out" 2>&1 || rc=$$?; \
				cat "$$out"; \
				if [ $$rc -ne 0 ] && [ $$try -eq 1 ] && grep -q 'context deadline exceeded' "$$out" && \
					! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$$out"; then \
					echo "$$name: the fuzz coordinator's deadline race (golang/go#75804), no failing input: running it once more"; continue; \
				fi; \
				[ $$rc -eq 0 ] || status=$$rc; break; \
			done; \
		done; \
	done; \
	rm -f "$$out"; exit $$status

##@ Build

.PHONY: build
build: ## Build the manager binary into bin/.
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ejbca-issuer .

$(STATICCHECK):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(BIN)/staticcheck $(STATICCHECK)

$(GOIMPORTS):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) go install golang.org/x/tools/cmd/goimports@$(GOIMPORTS_VERSION)
	mv $(BIN)/goimports $(GOIMPORTS)

$(CONTROLLER_GEN):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(BIN)/controller-gen $(CONTROLLER_GEN)

.PHONY: help
help: ## Show targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Demo

ONCE ?=
DEMO_FLAGS := $(if $(ONCE),--once,)

.PHONY: demo
demo: ## Run the whole product on this machine: make demo (until Ctrl-C) or make demo ONCE=1.
	@hack/run-demo.sh $(DEMO_FLAGS)

.PHONY: kubectl
kubectl: ## Build bin/kubectl from the module proxy, to look around the demo.
	hack/build-control-plane.sh --kubectl

##@ Benchmarks

QUICK ?=
BENCH_FLAGS ?=

.PHONY: bench
bench: control-plane ## Measure throughput, EJBCA calls, CPU and memory of the real manager (make bench QUICK=1: a smoke run).
	go run ./hack/bench $(if $(QUICK),--quick,--plot docs/performance-scale.svg) $(BENCH_FLAGS)

##@ Packaging

IMG ?= ghcr.io/certctl-io/ejbca-issuer:$(VERSION)
CONTAINER_TOOL ?= docker

.PHONY: chart-crds
chart-crds: ## Regenerate the chart's CRDs and RBAC rules and config/default/crds from config/ (hack/chartgen; make manifests runs it).
	go run ./hack/chartgen

.PHONY: test-chart
test-chart: control-plane ## Test the Helm chart, config/default and the Dockerfile build against a real API server (hack/charttest).
	cd hack/charttest && go vet ./... && go test $(GO_TEST_FLAGS) ./...

# make image / image-push / release: hack/image (its own module, so
# go-containerregistry and Helm stay out of go.mod) builds the multi-arch
# image from Go, with no Docker engine; see docs/install.md.
IMAGE_DIR ?= $(CURDIR)/dist/image
RELEASE_DIR ?= $(CURDIR)/dist/release
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt
IMAGE_TOOL := go -C hack/image run .
IMAGE_BUILD_FLAGS = --repo $(CURDIR) --img $(IMG) --version $(VERSION) --commit $(COMMIT) \
	--ldflags '$(LDFLAGS)' --platforms $(IMAGE_PLATFORMS) --ca-certs $(IMAGE_CA_CERTS)

.PHONY: image
image: ## Build the image $(IMG) for IMAGE_PLATFORMS without Docker: OCI layout, docker tarballs and SBOM in IMAGE_DIR (dist/image).
	$(IMAGE_TOOL) build $(IMAGE_BUILD_FLAGS) --out $(IMAGE_DIR)

.PHONY: image-push
image-push: ## Push the image index of IMAGE_DIR (make image first) to $(IMG), with the credentials of docker login.
	$(IMAGE_TOOL) push --layout $(IMAGE_DIR)/oci --img $(IMG)

.PHONY: release
release: ## Cut release VERSION=vX.Y.Z into RELEASE_DIR (dist/release): image, chart, CRDs, install YAML, SBOM, SHA256SUMS.
	$(IMAGE_TOOL) release $(IMAGE_BUILD_FLAGS) --out $(RELEASE_DIR)

.PHONY: test-image
test-image: ## Test make image and make image-push (hack/image); the image run with runc, make release and the Dockerfile match are in test-chart.
	cd hack/image && go vet ./... && go test $(GO_TEST_FLAGS) ./...

.PHONY: test-monitoring
test-monitoring: ## Test the chart's alerts and dashboard with Prometheus's parser and rule engine (hack/promtest; UPDATE=1 rewrites controllers/testdata/monitoring-selectors.json).
	cd hack/promtest && go vet ./... && UPDATE=$(UPDATE) go test $(GO_TEST_FLAGS) ./...

.PHONY: docker-build
docker-build: ## Build the image $(IMG) with the Dockerfile (needs a Docker engine).
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the image $(IMG).
	$(CONTAINER_TOOL) push $(IMG)
