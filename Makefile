# consentd — see README.md. Every target works on a fresh Debian machine with Go;
# `make test` also needs Node.js/npm (tsc), Chromium, PostgreSQL, bubblewrap, systemd and caddy,
# which .ci/run installs.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.Version=$(VERSION)
ADDR     ?= 127.0.0.1:8080
# The name of the transparency log of `make run`'s store, which keeps it for good.
ORIGIN   ?= localhost/consentd-dev

.PHONY: run build test typecheck lint fuzz bench screenshots clean

## run: start consentd with the shipped sites.yaml, demo pages on, records in data/, in the log
## named $(ORIGIN)
run: build
	./bin/consentd serve --demo --addr $(ADDR) --config sites.yaml --db data/consent.db --origin $(ORIGIN)

## build: the consentd binary in bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/consentd ./cmd/consentd

## test: type-check the banner, the visitor's page and the console, then every Go test with the race detector, the
## headless-Chromium end-to-end tests included (CONSENTD_SKIP_BROWSER=1 opts out), the PostgreSQL
## tests on a throwaway cluster of Debian's postgresql (CONSENTD_SKIP_POSTGRES=1 opts out) and the
## deployment tests with Debian's bubblewrap, systemd-analyze, caddy and promtool (CONSENTD_SKIP_DEPLOY=1
## opts out)
test: typecheck
	$(GO) test -race -count=1 -timeout 30m ./...

typecheck: node_modules/.package-lock.json
	npx --no-install tsc --noEmit -p .

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## fuzz: run each fuzzer for FUZZTIME (default 30s): the consent request decoder, the
## stored record's and the log's leaf and proof decoders that verification meets on a
## tampered file, the canonical JSON of decisions against another encoder, the sitemaps
## a scan reads from the sites, and the cookie lifetimes of sites.yaml
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./server -run '^$$' -fuzz '^FuzzDecodeConsentRequest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./store/bolt -run '^$$' -fuzz '^FuzzStoredRecord$$' -fuzztime $(FUZZTIME)
	$(GO) test ./translog -run '^$$' -fuzz '^FuzzLeaf$$' -fuzztime $(FUZZTIME)
	$(GO) test ./translog -run '^$$' -fuzz '^FuzzProof$$' -fuzztime $(FUZZTIME)
	$(GO) test ./translog -run '^$$' -fuzz '^FuzzDecision$$' -fuzztime $(FUZZTIME)
	$(GO) test ./scan/browser -run '^$$' -fuzz '^FuzzSitemapPages$$' -fuzztime $(FUZZTIME)
	$(GO) test . -run '^$$' -fuzz '^FuzzCookieMaxAge$$' -fuzztime $(FUZZTIME)

## bench: store, handler and proof benchmarks, reloads of sites.yaml, 300 SIGKILL
## cycles of the crash test, the loopback load test (needs wrk), banner sizes against
## vanilla-cookieconsent, time to banner visible in Chromium, and the DPO side at one
## million records
bench: node_modules/.package-lock.json
	$(GO) test ./store/... ./server -run '^$$' -skip '^BenchmarkLoad$$' -bench . -benchtime 2000x
	$(GO) test ./translog -run '^$$' -bench . -benchtime 2000x
	$(GO) test ./durability -run '^TestCrash$$' -count 1 -timeout 60m -v -args -cycles 300
	$(GO) test ./server -run '^$$' -bench '^BenchmarkLoad$$' -benchtime 20x
	$(GO) run ./bench/load
	$(GO) run ./bench/load -instances
	$(GO) run ./bench/banner
	$(GO) run ./bench/dpo
	$(GO) run ./bench/dpo -store postgres

## screenshots: the banner of every site, language, desktop/mobile and layer, and the DPO
## console's pages, as PNGs in docs/screenshots (consentd in-process, headless Chromium)
screenshots:
	$(GO) run ./tools/screenshots -config sites.yaml -out docs/screenshots
	$(GO) test ./e2e -run '^TestConsoleScreenshots$$' -count 1 -args -console-screenshots $(CURDIR)/docs/screenshots

clean:
	rm -rf bin data node_modules
