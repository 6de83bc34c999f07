package demo

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// Loopback ports below Linux's ephemeral range (32768 and up by default):
// the demo must name its ports before it listens on them (the Raft peers,
// the gateway's port plan, a cluster that comes back on its old ports), and
// no outgoing connection takes a port from this range meanwhile.
const portLo, portHi = 20000, 32000

// ports hands out runs of free loopback ports, never the same port twice.
type ports struct {
	taken map[int]bool
}

func newPorts() *ports { return &ports{taken: map[int]bool{}} }

// run returns the first of n consecutive free ports.
func (p *ports) run(n int) (int, error) {
	for range 500 {
		first := portLo + rand.IntN(portHi-portLo-n)
		if p.free(first, n) {
			for q := first; q < first+n; q++ {
				p.taken[q] = true
			}
			return first, nil
		}
	}
	return 0, fmt.Errorf("no run of %d free loopback ports in %d..%d", n, portLo, portHi)
}

// each returns n free ports, not necessarily consecutive.
func (p *ports) each(n int) ([]int, error) {
	out := make([]int, n)
	for i := range out {
		port, err := p.run(1)
		if err != nil {
			return nil, err
		}
		out[i] = port
	}
	return out, nil
}

func (p *ports) free(first, n int) bool {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for q := first; q < first+n; q++ {
		if p.taken[q] {
			return false
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q))
		if err != nil {
			return false
		}
		lns = append(lns, ln)
	}
	return true
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
