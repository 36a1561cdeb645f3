# veeksha-go developer targets. `make help` lists them.
GO ?= go
BIN := bin
CMDS := prefill decode stress
FUZZTIME ?= 30s

.PHONY: help build test cover lint fuzz e2e-ollama snapshot release-check install-test assets harness

GORELEASER ?= $(shell command -v goreleaser || echo $(HOME)/.cache/veeksha-tools/bin/goreleaser)
ECHARTS_VERSION ?= 5.6.0

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# Release flags, as goreleaser.yaml builds them (without its version
# stamp: --version then reads the module's build info): no symbol table
# or DWARF (-s -w), no local paths (-trimpath), no cgo.
RELEASE_FLAGS := -trimpath -ldflags="-s -w"

build: ## build the three release binaries (stripped, -trimpath, CGO_ENABLED=0) into bin/
	@mkdir -p $(BIN)
	@for c in $(CMDS); do CGO_ENABLED=0 $(GO) build $(RELEASE_FLAGS) -o $(BIN)/veeksha.microbench.$$c ./cmd/veeksha.microbench.$$c || exit 1; done

test: ## run every test with the race detector (the README's test command)
	$(GO) test -race ./...

cover: ## test coverage summary
	$(GO) test -cover ./...

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

fuzz: ## run each fuzz target for FUZZTIME
	$(GO) test ./pkg/client -run '^$$' -fuzz FuzzStream -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/decodewindow -run '^$$' -fuzz FuzzDecodeWindow -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/autoscan -run '^$$' -fuzz FuzzSweepPlan -fuzztime $(FUZZTIME)

e2e-ollama: ## end to end against Ollama v0.17.4 serving the tiny fixture model (builds Ollama on first use)
	scripts/ollama-e2e.sh

snapshot: ## goreleaser release --snapshot --clean: every release archive into dist/, nothing published
	$(GORELEASER) release --snapshot --clean

release-check: ## goreleaser check, snapshot of HEAD in a clean clone, smoke runs, go install test
	scripts/release-check.sh

install-test: ## go install the three binaries from the module path (CGO_ENABLED=0) and check --version
	scripts/install-test.sh

assets: ## refresh the vendored ECharts (npm pack echarts@$(ECHARTS_VERSION)) and its VERSIONS file
	sh pkg/report/chart/assets/update.sh $(ECHARTS_VERSION)

harness: ## the client-overhead load harness against the zero-cost engine in another process (~3 min)
	$(GO) run ./tools/loadharness
