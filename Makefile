# rolegate: `make help` lists the targets.
GO      ?= go
BIN     := bin/rolegate
PKGS    := ./...

.DEFAULT_GOAL := help
.PHONY: help build run generate test lint bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/rolegate
	$(GO) build -o $(BIN) ./cmd/rolegate

run: build ## serve on 127.0.0.1:8080 (embedded PostgreSQL under ./.data unless DATABASE_URL is set)
	./$(BIN) serve

generate: ## regenerate gen/ from api/openapi.yaml, schema.sql and queries/
	$(GO) tool oapi-codegen -config oapi-codegen.yaml api/openapi.yaml
	$(GO) tool sqlc generate

lint: ## gofmt, go vet
	@out=$$(find . -name '*.go' -not -path './gen/*' -not -path '*/node_modules/*' | xargs gofmt -l); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet $(PKGS)

test: lint ## the whole suite, on one throwaway embedded PostgreSQL (or TEST_DATABASE_URL)
	$(GO) run ./testdb/withdb -- $(GO) test -count=1 $(PKGS)

bench: ## benchmarks
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
