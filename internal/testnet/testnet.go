// Package testnet finds loopback ports for tests that must name their ports
// before they listen (Raft peers, gateway port plans).
package testnet

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// Ports below Linux's ephemeral range (32768 and up by default), so that
// no outgoing connection takes one between the check and the listen.
const lo, hi = 20000, 32000

// FreePorts returns the first of n consecutive free loopback ports.
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	for range 200 {
		first := lo + rand.IntN(hi-lo-n)
		if free(first, n) {
			return first
		}
	}
	t.Fatalf("no run of %d free loopback ports in %d..%d", n, lo, hi)
	return 0
}

func free(first, n int) bool {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for p := first; p < first+n; p++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		lns = append(lns, ln)
	}
	return true
}
