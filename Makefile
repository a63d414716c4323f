# Herald — the two commands that matter: `make run` and `make test`.
GO      ?= go
BIN     := bin/herald
COMPAT  := clients/compat

.PHONY: all build run test check test-go compat-deps test-compat test-browser fuzz bench clean

all: build

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

## build: bin/herald, the server (with its subcommands: herald --help).
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/herald

## run: Herald on :6001 with the embedded default app (app-id / app-key / app-secret). Logs are for
## people unless HERALD_LOG_FORMAT says otherwise; ARGS are passed on (make run ARGS="--config x.json").
run: build
	./$(BIN) $(if $(HERALD_LOG_FORMAT),,--log-format console) $(ARGS)

## test: every test — formatting and vet, Go unit and end-to-end tests (race detector on), a short
## fuzz pass over the decoders, the stock-SDK suite (npm ci installs pusher-js and pusher) and the
## browser tests (stock pusher-js and Laravel Echo in headless Chromium, /usr/bin/chromium).
test: check test-go fuzz test-compat test-browser

check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './$(COMPAT)/node_modules/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./... # the non-Linux socket code (poller_other.go, writenow_other.go) still builds
	@# The systemd unit, against this tree's binary (skipped where systemd-analyze is missing).
	@if command -v systemd-analyze >/dev/null; then $(GO) build -o $(BIN) ./cmd/herald && d=$$(mktemp -d) && \
		sed 's#/usr/local/bin/herald#$(CURDIR)/$(BIN)#g' docs/deploy/herald.service > $$d/herald.service && \
		out=$$(systemd-analyze verify $$d/herald.service 2>&1); rm -rf $$d; \
		if [ -n "$$out" ]; then echo "docs/deploy/herald.service: $$out"; exit 1; fi; fi

test-go:
	$(GO) test -race -count=1 -timeout 300s ./...

compat-deps:
	cd $(COMPAT) && npm ci --no-audit --no-fund --loglevel=error

## test-compat: the stock-SDK suite over WebSocket, then again with pusher-js on each HTTP fallback.
test-compat: build compat-deps
	cd $(COMPAT) && HERALD_BIN=$(CURDIR)/$(BIN) npm test
	cd $(COMPAT) && HERALD_BIN=$(CURDIR)/$(BIN) npm run test:xhr_streaming
	cd $(COMPAT) && HERALD_BIN=$(CURDIR)/$(BIN) npm run test:xhr_polling

## test-browser: the stock web builds in real headless Chromium (Debian's chromium package; set
## CHROMIUM_BIN for another binary), and the debug console in Firefox too (firefox-esr, or
## FIREFOX_BIN), about a minute.
test-browser: build compat-deps
	cd $(COMPAT) && HERALD_BIN=$(CURDIR)/$(BIN) npm run test:browser

## fuzz: a short run of every fuzz target, on top of the seed corpora every `go test` already runs.
## The budget is an execution count, not a duration: Go 1.26's fuzz coordinator can report a spurious
## "context deadline exceeded" when a duration runs out under load (golang/go#75804, fixed in 1.27).
FUZZTIME ?= 50000x
fuzz:
	$(GO) test ./pusher -run='^$$' -fuzz='^FuzzDecodeClientFrame$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./pusher -run='^$$' -fuzz='^FuzzAppendString$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./pusher -run='^$$' -fuzz='^FuzzDecodeFastPath$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./auth -run='^$$' -fuzz='^FuzzVerifyRequest$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./auth -run='^$$' -fuzz='^FuzzVerifyChannel$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./auth -run='^$$' -fuzz='^FuzzVerifyToken$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./channels/internal/ws -run='^$$' -fuzz='^FuzzNext$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./channels/redis -run='^$$' -fuzz='^FuzzParseEnvelope$$' -fuzztime=$(FUZZTIME)
	$(GO) test ./cmd/herald-bench -run='^$$' -fuzz='^FuzzParseCommandStats$$' -fuzztime=$(FUZZTIME)

## bench: the Go micro-benchmarks.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

## bench-load: the load benchmarks against a freshly built Herald pinned to core 0 (about 20 minutes;
## results in bin/bench-results.jsonl and .svg, see docs/BENCHMARKS.md).
.PHONY: bench-load
bench-load:
	./cmd/herald-bench/bench.sh

clean:
	rm -rf bin $(COMPAT)/node_modules
