# rolegate: `make help` lists the targets.
GO      ?= go
BIN     := bin/rolegate
# TAGS=cloudblob builds in s3://, gs:// and azblob:// buckets for ROLEGATE_BLOB_URL.
TAGS    ?=
PKGS    := ./...

.DEFAULT_GOAL := help
.PHONY: help build run generate test lint bench bench-http bench-scale fuzz swagger-ui

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build bin/rolegate (TAGS=cloudblob adds s3, gs and azblob buckets)
	$(GO) build -tags '$(TAGS)' -o $(BIN) ./cmd/rolegate

run: build ## serve on 127.0.0.1:8080 (embedded PostgreSQL under ./.data unless DATABASE_URL is set)
	./$(BIN) serve

# The TypeScript SDK's npm packages, installed again when its lockfile changes.
TS_DEPS := clients/ts/node_modules/.package-lock.json
$(TS_DEPS): clients/ts/package-lock.json
	npm --prefix clients/ts ci

generate: $(TS_DEPS) ## regenerate gen/ from api/openapi.yaml, schema.sql, queries/ and examples/*/openapi.yaml
	$(GO) tool oapi-codegen -config oapi-codegen.yaml api/openapi.yaml
	$(GO) tool oapi-codegen -config examples/reports/oapi-codegen.yaml examples/reports/openapi.yaml
	$(GO) tool sqlc generate
	npm --prefix clients/ts run generate

# Redocly CLI, pinned in tools/redocly's lockfile.
REDOCLY_DEPS := tools/redocly/node_modules/.package-lock.json
$(REDOCLY_DEPS): tools/redocly/package-lock.json
	npm --prefix tools/redocly ci

lint: $(REDOCLY_DEPS) ## gofmt, go vet, and the spec: kin-openapi, the access rules, Redocly's recommended rules
	@out=$$(find . -name '*.go' -not -path './gen/*' -not -path '*/node_modules/*' | xargs gofmt -l); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags cloudblob ./cmd/rolegate
	$(GO) run ./cmd/rolegate routes > /dev/null
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true tools/redocly/node_modules/.bin/redocly lint --format=stylish api/openapi.yaml

test: lint $(TS_DEPS) ## the whole suite, on one throwaway embedded PostgreSQL (or TEST_DATABASE_URL), then a short fuzzing pass
	$(GO) run ./internal/testdb/withdb -- $(GO) test -count=1 $(PKGS)
	$(MAKE) --no-print-directory fuzz FUZZTIME=10000x

swagger-ui: ## refresh internal/swaggerui/dist from the swagger-ui-dist pinned in tools/swagger-ui
	tools/swagger-ui/refresh.sh

bench: ## benchmarks
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# PROFILE=cpu.pprof also writes a CPU profile of rolegate under load (the
# binary is then built with TAGS=pprof, which serves /debug/pprof/ on an
# address of its own).
PROFILE ?=
bench-http: ## load test over loopback with wrk: bare handler, textbook stack, rolegate; then what a complete sign-in costs through the password grant and through the code flow; prints the README's tables
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(MAKE) --no-print-directory build $(if $(PROFILE),TAGS='$(TAGS) pprof')
	$(GO) run ./tools/benchhttp -bin $(BIN) $(if $(PROFILE),-cpuprofile $(PROFILE)) $(BENCHFLAGS)

# BENCHFLAGS passes flags to the program, e.g. -users 10000,200000 for a
# quicker run (go run ./tools/benchscale -help lists them).
bench-scale: ## reads as the database grows (10k, then 1M accounts with 10M notes, seeded with SQL): p50/p99 and their ratio per route, EXPLAIN of each list query
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(MAKE) --no-print-directory build
	$(GO) run ./tools/benchscale -bin $(BIN) $(BENCHFLAGS)

# How long each fuzz target runs (a duration, or a count of runs such as
# 10000x); and how long the fuzzer may spend making each new input smaller
# (a count of runs: left to the default, a minute, it stalls for seconds at
# every input that finds new code).
FUZZTIME     ?= 60s
FUZZMINIMIZE ?= 1000x

fuzz: ## run each fuzz target for FUZZTIME (60s), one after the other; corpora in */testdata/fuzz
	@for t in token:FuzzVerify token:FuzzVerifySigned internal/page:FuzzParse internal/documents:FuzzParseRanges gate:FuzzTokenForm gate:FuzzGate; do \
		echo "fuzz $${t#*:} ($(FUZZTIME))"; \
		GO=$(GO) tools/fuzz/run.sh ./$${t%%:*} $${t#*:} -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) || exit 1; \
	done
