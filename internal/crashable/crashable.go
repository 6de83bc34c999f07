// Package crashable makes listeners whose connections can all be cut at
// once, as a crashed process's would be. It exists for kfake, whose Close
// stops accepting connections but lets open ones carry on answering: pass
// (*Set).Listen as kfake.ListenFn, and Crash the set to kill the cluster.
package crashable

import (
	"net"
	"sync"
)

// Set is the listeners made by Listen and the connections they accepted.
type Set struct {
	mu      sync.Mutex
	lns     []net.Listener
	conns   []net.Conn
	crashed bool
}

// Listen listens like net.Listen, keeping the listener and what it accepts.
func (s *Set) Listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lns = append(s.lns, ln)
	return listener{ln, s}, nil
}

type listener struct {
	net.Listener
	s *Set
}

func (l listener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		l.s.mu.Lock()
		if l.s.crashed {
			conn.Close()
		} else {
			l.s.conns = append(l.s.conns, conn)
		}
		l.s.mu.Unlock()
	}
	return conn, err
}

// Crash closes every listener and connection, once, and reports how many of
// each it closed.
func (s *Set) Crash() (listeners, conns int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.crashed {
		return 0, 0
	}
	s.crashed = true
	for _, ln := range s.lns {
		ln.Close()
	}
	for _, conn := range s.conns {
		conn.Close()
	}
	listeners, conns = len(s.lns), len(s.conns)
	s.lns, s.conns = nil, nil
	return listeners, conns
}
