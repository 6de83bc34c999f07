# Turnout: the two commands a newcomer needs are `make demo` and `make test`;
# everything else is for developers.
GO      ?= go
BIN     := bin/turnout
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

.PHONY: build demo test test-short vet bench fuzz clean e2e e2e-deps drills faults

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/turnout

# The whole story on one machine, in under a minute, needing only Go: two
# in-process Kafka clusters, a gateway, three agents, a producer and a
# consumer; cluster 1 dies, the route fails over, comes back, fails back.
# DEMO_FLAGS passes flags on, e.g. DEMO_FLAGS=--keep.
DEMO_FLAGS ?=
demo: build
	$(BIN) demo $(DEMO_FLAGS)

vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# Unit tests, fuzz seed corpora, and the kfake integration tests (two
# in-process clusters behind a real gateway), with the race detector.
test-short: build vet
	$(GO) test -race -count=1 ./...

test: test-short e2e

# Java 17, Maven and kcat for the real-Kafka tests: the Kafka jars go to
# e2e/lib (fetched again only when e2e/pom.xml changes), kcat comes from apt.
e2e-deps:
	@bash e2e/deps.sh

# Real Apache Kafka (KRaft), MirrorMaker 2 and the Java, librdkafka (kcat) and
# franz-go clients through bin/turnout, then the disaster drills; prints the
# COMPAT, SWITCHOVER, DRILLS and FAULTS tables at the end. E2E_RUN narrows
# it to matching tests. About 20 minutes on 2 cores.
E2E_RUN ?= .
e2e: build e2e-deps
	TURNOUT_E2E=1 TURNOUT_BIN=$(abspath $(BIN)) \
		$(GO) test -count=1 -v -timeout 45m -run '$(E2E_RUN)' ./e2e/...

# The disaster drills alone (e2e/drills_test.go): two KRaft clusters,
# MirrorMaker 2, three agents, two gateways, Java and franz-go clients; a
# blind agent, a flapping cluster, a planned switchover, a leader killed
# mid-runbook, a gateway whose restart fails, kill -9 of cluster 1, the
# failback, and cluster 1 dying while the blind agent leads. The table goes
# to e2e/out/drills.md; a failed drill keeps every process's logs in
# e2e/out/TestDrills/. DRILL narrows the run to matching drills, e.g.
# make drills DRILL="unplanned|failback". About 4 minutes on 2 cores.
DRILL ?=
drills: build e2e-deps
	TURNOUT_E2E=1 TURNOUT_BIN=$(abspath $(BIN)) \
		$(GO) test -count=1 -v -timeout 20m -run '^TestDrills$$/($(DRILL))' ./e2e/
	@cat e2e/out/drills.md

# The fault drills alone (e2e/faults_test.go, issue 12): a restart storm
# under client churn, a retried failover after a leader change, a planned
# switch after a failback, a pause that outlives a gateway's longest, a
# failover with two agents' clocks an hour off, and a seeded random
# schedule of kills, SIGSTOPs and partitions (TURNOUT_FAULT_SEED replays
# one). The table goes to e2e/out/faults.md.
# FAULT narrows the run, e.g. make faults FAULT="storm|random".
FAULT ?=
faults: build e2e-deps
	TURNOUT_E2E=1 TURNOUT_BIN=$(abspath $(BIN)) \
		$(GO) test -count=1 -v -timeout 30m -run '^TestFaults$$/($(FAULT))' ./e2e/
	@cat e2e/out/faults.md

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
