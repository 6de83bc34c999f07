// Package bench holds BenchmarkGateway, which measures in one run what the
// gateway costs on the data path: one kfake cluster reached directly, through
// a plain Go TCP forwarder (a separate process), and through the turnout
// gateway binary (a separate process). It prints produce and consume
// throughput, latency at a fixed rate, CPU per MB forwarded and memory per
// idle connection, and the targets of "The data path must stay cheap" in
// DESIGN.md with PASS or MISS beside each. A miss does not fail the
// benchmark; lost records or a dead process do.
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 20m ./proxy/bench/
//
// The package has no non-test code; this file only documents it.
package bench
