# Turnout: the two commands a newcomer needs are `make demo` (when it lands)
# and `make test`; everything else is for developers.
GO      ?= go
BIN     := bin/turnout
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

.PHONY: build test test-short vet bench fuzz clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/turnout

vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# Unit tests, fuzz seed corpora, and the kfake integration tests (two
# in-process clusters behind a real gateway), with the race detector.
test-short: build vet
	$(GO) test -race -count=1 ./...

test: test-short

# Prints direct vs through-gateway throughput, latency and memory figures.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./proxy/wire/
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 20m ./proxy/bench/

# Each fuzz target for FUZZTIME (go test runs one target at a time).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./proxy/config/
	$(GO) test -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZTIME) ./proxy/wire/
	$(GO) test -run '^$$' -fuzz '^FuzzResponse$$' -fuzztime $(FUZZTIME) ./proxy/wire/
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME) ./proxy/wire/

clean:
	rm -rf bin
