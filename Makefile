# veeksha-go developer targets. `make help` lists them.
GO ?= go
BIN := bin
CMDS := prefill decode stress
FUZZTIME ?= 30s

.PHONY: help build test cover lint fuzz e2e-ollama snapshot release-check assets

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build the three binaries into bin/
	@mkdir -p $(BIN)
	@for c in $(CMDS); do CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/veeksha.microbench.$$c ./cmd/veeksha.microbench.$$c || exit 1; done

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
