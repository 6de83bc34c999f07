package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/turnout/turnout/proxy/wire"
)

// maxInFlight bounds the requests a connection may have outstanding at the
// cluster; past it the gateway stops reading the client (back-pressure).
const maxInFlight = 128

// readBufferSize keeps an idle connection small: large frames bypass the
// buffered reader and go straight into a pooled frame buffer.
const readBufferSize = 8 << 10

// inflight is a forwarded request awaiting its response.
type inflight struct {
	key, version  int16
	correlationID int32
	start         time.Time
	// own is a response the gateway makes itself, sent in turn.
	own []byte
}

// session is one client connection and its connection to the cluster.
type session struct {
	route    *Route
	client   net.Conn
	upstream net.Conn
	maxFrame int32
	log      *slog.Logger

	pending  chan inflight
	draining chan struct{} // closed when the session must stop taking requests
	respDone chan struct{} // closed when the response loop has ended
	done     chan struct{} // closed when both loops have ended
	once     sync.Once
}

func newSession(ctx context.Context, r *Route, client net.Conn, node int32, bootstrap bool, maxFrame int32, log *slog.Logger) (*session, error) {
	addrs, err := r.upstreamAddrs(ctx, node, bootstrap)
	if err != nil {
		return nil, err
	}
	var up net.Conn
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	var errs []error
	for _, a := range addrs {
		if up, err = d.DialContext(ctx, "tcp", a); err == nil {
			break
		}
		errs = append(errs, err)
	}
	if up == nil {
		r.metrics.dialErrors.Inc()
		return nil, fmt.Errorf("connecting to domain %s: %w", r.Domain, errors.Join(errs...))
	}
	return &session{
		route:    r,
		client:   client,
		upstream: up,
		maxFrame: maxFrame,
		log:      log.With("client", client.RemoteAddr().String(), "upstream", up.RemoteAddr().String()),
		pending:  make(chan inflight, maxInFlight),
		draining: make(chan struct{}),
		respDone: make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// run forwards until either side closes or the session is drained.
func (s *session) run() {
	m := s.route.metrics
	m.connections.Inc()
	m.connectionsOpen.Inc()
	defer m.connections.Dec()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.requests() }()
	go func() { defer wg.Done(); s.responses() }()
	wg.Wait()
	s.client.Close()
	s.upstream.Close()
	close(s.done)
}

// drain stops taking requests, lets the responses already owed arrive (up to
// the deadline), then closes both connections.
func (s *session) drain(deadline time.Time) {
	s.once.Do(func() { close(s.draining) })
	// Unblock a read of the next request; one half-read is dropped, and the
	// client resends it on its next connection since it was never answered.
	s.client.SetReadDeadline(time.Now())
	s.upstream.SetReadDeadline(deadline)
	<-s.done
}

func (s *session) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// requests reads client requests, translates them and sends them on.
func (s *session) requests() {
	defer close(s.pending)
	in := bufio.NewReaderSize(s.client, readBufferSize)
	for {
		bp, err := wire.ReadFrame(in, s.maxFrame)
		if err != nil {
			s.readFailed("client", err)
			return
		}
		frame := *bp
		keep, err := s.request(frame)
		wire.PutBuffer(bp)
		if err != nil {
			s.route.metrics.frameErrors.Inc()
			s.log.Warn("closing client connection: bad request", "err", err)
			return
		}
		if !keep {
			return
		}
	}
}

func (s *session) request(frame []byte) (bool, error) {
	h, err := wire.ParseRequestHeader(frame)
	if err != nil {
		return false, err
	}
	s.route.metrics.bytesIn.Add(float64(len(frame)))
	if h.Key == apiVersionsKey && h.Version > wire.MaxVersion(apiVersionsKey) {
		return s.enqueue(inflight{key: h.Key, version: h.Version, correlationID: h.CorrelationID, own: wire.ApiVersionsTooNew(h.CorrelationID)}), nil
	}
	out, err := wire.RewriteRequest(h, frame, s.route)
	if err != nil {
		return false, err
	}
	if out == nil {
		out = frame
	}
	expectResponse := true
	if h.Key == produceKey {
		acks, err := wire.Acks(h, frame)
		if err != nil {
			return false, fmt.Errorf("produce request: %w", err)
		}
		expectResponse = acks != 0
	}
	if expectResponse {
		// Queued before the write so the response can never overtake it.
		if !s.enqueue(inflight{key: h.Key, version: h.Version, correlationID: h.CorrelationID, start: time.Now()}) {
			return false, nil
		}
	}
	if _, err := s.upstream.Write(out); err != nil {
		s.log.Info("cluster connection failed", "err", err)
		return false, nil
	}
	return true, nil
}

// enqueue waits for room in the in-flight queue, and fails once the
// response loop has ended and will never make room.
func (s *session) enqueue(p inflight) bool {
	select {
	case s.pending <- p:
		return true
	case <-s.respDone:
		return false
	}
}

// responses reads the cluster's responses in request order, translates them
// and sends them to the client.
func (s *session) responses() {
	defer close(s.respDone)
	defer s.client.Close() // the request loop is blocked on the client: wake it
	in := bufio.NewReaderSize(s.upstream, readBufferSize)
	for p := range s.pending {
		if p.own != nil {
			if !s.write(p.own, p) {
				return
			}
			continue
		}
		bp, err := wire.ReadFrame(in, s.maxFrame)
		if err != nil {
			s.readFailed("cluster", err)
			return
		}
		ok := s.response(*bp, p)
		wire.PutBuffer(bp)
		if !ok {
			return
		}
	}
}

func (s *session) response(frame []byte, p inflight) bool {
	if got := wire.CorrelationID(frame); got != p.correlationID {
		s.log.Error("closing connection: cluster answered out of order", "want_correlation_id", p.correlationID, "got", got)
		return false
	}
	out, err := wire.RewriteResponse(p.key, p.version, frame, s.route)
	if err != nil {
		s.route.metrics.frameErrors.Inc()
		s.log.Warn("closing connection: bad response from cluster", "api_key", p.key, "version", p.version, "err", err)
		return false
	}
	if out == nil {
		out = frame
	}
	return s.write(out, p)
}

func (s *session) write(out []byte, p inflight) bool {
	if _, err := s.client.Write(out); err != nil {
		return false
	}
	s.route.metrics.bytesOut.Add(float64(len(out)))
	c, o := s.route.metrics.api(p.key)
	c.Inc()
	if !p.start.IsZero() {
		o.Observe(time.Since(p.start).Seconds())
	}
	return true
}

// readFailed logs why a side stopped, quietly for ordinary closes.
func (s *session) readFailed(side string, err error) {
	switch {
	case s.isDraining() && errors.Is(err, os.ErrDeadlineExceeded):
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, wire.ErrFrameTooSmall):
		s.route.metrics.frameErrors.Inc()
		s.log.Warn("closing connection: bad frame from "+side, "err", err)
	default:
		s.log.Debug("connection ended", "side", side, "err", err)
	}
}

const (
	produceKey     = 0
	apiVersionsKey = 18
)
