package ctlsec

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTPLimits bound what clients can hold of a control-plane HTTP server:
// how long each part of a call may take, how large its header may be, and
// how many connections may be open at once.
type HTTPLimits struct {
	ReadHeader, Read, Write, Idle time.Duration
	MaxHeaderBytes                int
	MaxConns                      int
}

// AdminLimits are the limits of the gateway's admin API and the agents'
// HTTP API. Write bounds a whole call, answer included: a gateway's POST
// /restart and /pause wait for a drain (limits.drainTimeout, seconds) and
// an agent's POST /failover for a runbook that restarts every gateway in
// turn, so it is minutes. The bodies are small JSON, so reading one is
// quick. MaxConns is far above what the agents and an operator need, and
// low enough that a client opening connections without end cannot exhaust
// the process's file descriptors; a connection past it waits to be
// accepted.
var AdminLimits = HTTPLimits{
	ReadHeader:     10 * time.Second,
	Read:           30 * time.Second,
	Write:          10 * time.Minute,
	Idle:           2 * time.Minute,
	MaxHeaderBytes: 64 << 10,
	MaxConns:       64,
}

// Server is an HTTP server for h under these limits; serve it on a
// listener from Listen (or LimitListener), which caps its connections.
func (l HTTPLimits) Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		WriteTimeout:      l.Write,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// LimitListener accepts at most n connections open at once; Accept waits
// until one of them is closed.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), closed: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	slots     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
