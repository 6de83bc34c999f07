package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/wire"
)

// maxInFlight bounds the requests a connection may have outstanding at the
// cluster; past it the gateway stops reading the client (back-pressure).
// Kafka clients keep a handful in flight per connection.
const maxInFlight = 32

// readBufferSize keeps an idle connection small: large frames bypass the
// buffered reader and go straight into a pooled frame buffer.
const readBufferSize = 8 << 10

// writeBufferSize lets frames that arrive together leave together, in one
// write; a frame larger than it is written straight through.
const writeBufferSize = 4 << 10

// authMaxFrame bounds a client's frames while it authenticates: on a route
// that swaps credentials, until the gateway has authenticated it; on one
// that passes SASL through to a cluster Turnout itself logs in to with SASL
// (so the cluster requires it), until the cluster accepted the client's
// exchange or answered it a request past the set-up, whether or not it
// began one; on other passthrough routes, from its SaslHandshake until
// then. Kafka caps frames read during SASL likewise
// (sasl.server.max.receive.size, 512 KiB); 1 MiB leaves room for large
// tokens. Nothing else is capped below the configured limit: a PLAINTEXT
// cluster has no authentication to wait for (and without Turnout's own
// identity on it the gateway cannot tell it from one that has), and a
// producer's first request may well be a Produce larger than 1 MiB
// (max.request.size, franz-go's dedicated produce connections, a producer
// reconnecting after a drain). What keeps a client that has not been
// answered yet from making the gateway allocate a large declared size it
// never sends is that its frames are read growing as the bytes arrive
// (wire.ReadFrameGrowing), until the cluster has answered it.
const authMaxFrame = 1 << 20

// inflight is a forwarded request awaiting its response.
type inflight struct {
	key           kmsg.Key
	version       int16
	correlationID int32
	start         time.Time
	// memberEpoch is a ConsumerGroupHeartbeat's member epoch.
	memberEpoch int32
	// answer, when set, is sent instead of the cluster's response (to the
	// placeholder sent in the request's stead), not before notBefore.
	answer    []byte
	notBefore time.Time
	// internal, when set, takes the response to the gateway's own request
	// (see roundTrip); the client never sees it.
	internal chan<- []byte
}

// longPoll says whether a request may be left unanswered by a drain: its
// response can wait on the broker for seconds, and nothing is lost if the
// client sends it again on its next connection.
func longPoll(key kmsg.Key) bool {
	switch key {
	case kmsg.Fetch, kmsg.JoinGroup, kmsg.SyncGroup, kmsg.ShareFetch:
		return true
	}
	return false
}

// session is one client connection and its connection to the cluster.
//
// Two goroutines serve it. The request loop reads the client, translates and
// forwards each request and queues what the response will need; the response
// loop reads the cluster, takes the queued entry (always queued before the
// request was written, so there is one) and answers the client. Each loop
// waits only on its own socket.
type session struct {
	route    *Route
	swap     *swapSession // nil unless the route swaps credentials
	client   net.Conn
	upstream net.Conn
	maxFrame int32
	log      *slog.Logger

	pending  chan inflight
	upw      *bufio.Writer          // to the cluster; the request loop's alone
	cw       *bufio.Writer          // to the client; under wmu
	clientID atomic.Pointer[string] // from the first request's header
	fetched  atomic.Bool            // the client is a consumer
	// working: the client sent a request past the connection's set-up
	// (ApiVersions and SASL), so it counts the connection as up.
	working atomic.Bool
	// trusted: the cluster answered a request past the set-up, so the
	// client is authenticated (or the cluster needs no authentication) and
	// its frames are read in buffers of the size they declare.
	trusted atomic.Bool
	// saslPassing: a client on a route that passes SASL through sent a
	// SaslHandshake, and the cluster has not yet accepted the
	// SaslAuthenticate rounds that complete its mechanism (saslLeft, set
	// before saslPassing); saslDone: it has since.
	saslPassing atomic.Bool
	saslLeft    atomic.Int32
	saslDone    atomic.Bool
	wmu         sync.Mutex    // client writes: the response loop's, and the gateway's own answers
	inFlight    atomic.Int32  // requests forwarded and not yet answered
	enqueued    uint64        // entries ever queued; the request loop's alone
	answered    atomic.Uint64 // entries ever taken off the queue by the response loop
	owed        atomic.Int32  // of those, the ones a drain waits for (not long polls)
	// producing counts the Produce requests that passed the route's hold
	// and are not yet answered (or dropped): counted before the check, so
	// that a pause or fence raised just after it waits for them (settle).
	producing atomic.Int32
	draining  chan struct{}
	linger    atomic.Pointer[func()] // set by drain
	respDone  chan struct{}          // closed when the response loop has ended
	done      chan struct{}          // closed when both loops have ended (the client may linger)
	once      sync.Once
}

func newSession(ctx context.Context, r *Route, client net.Conn, node int32, bootstrap bool, maxFrame int32, log *slog.Logger) (*session, error) {
	addrs, err := r.upstreamAddrs(ctx, node, bootstrap)
	if err != nil {
		return nil, err
	}
	var up net.Conn
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	// The TLS dialer checks each broker's certificate against the host
	// dialled.
	var dial func(ctx context.Context, network, addr string) (net.Conn, error) = d.DialContext
	if r.dialTLS != nil {
		dial = (&tls.Dialer{NetDialer: d, Config: r.dialTLS}).DialContext
	}
	var errs []error
	for _, a := range addrs {
		if up, err = dial(ctx, "tcp", a); err == nil {
			break
		}
		errs = append(errs, err)
	}
	if up == nil {
		r.metrics.dialErrors.Inc()
		return nil, fmt.Errorf("connecting to domain %s: %w", r.Domain, errors.Join(errs...))
	}
	s := &session{
		route:    r,
		client:   client,
		upstream: up,
		maxFrame: maxFrame,
		log:      log.With("client", client.RemoteAddr().String(), "upstream", up.RemoteAddr().String()),
		pending:  make(chan inflight, maxInFlight),
		upw:      bufio.NewWriterSize(up, writeBufferSize),
		cw:       bufio.NewWriterSize(client, writeBufferSize),
		draining: make(chan struct{}),
		respDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
	if sw := r.swap.Load(); sw != nil {
		s.swap = &swapSession{swapAuth: sw}
	}
	return s, nil
}

// clientKey tells one client's connections from another's: its address and
// client id.
func (s *session) clientKey() string {
	host, _, _ := net.SplitHostPort(s.client.RemoteAddr().String())
	if id := s.clientID.Load(); id != nil {
		return host + "|" + *id
	}
	return host + "|"
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
	s.upstream.Close()
	close(s.done)
	if linger := s.linger.Load(); linger != nil {
		(*linger)()
	}
	s.client.Close()
}

// drain stops taking requests, lets the responses already owed arrive (up to
// the deadline), then closes both connections. Long polls are not waited
// for: their clients ask again on their next connection. If linger is not
// nil, the client's connection is closed only when it returns, although
// nothing more is read from it.
//
// drain returns by the deadline, plus drainGrace, whatever the peers do: a
// client that stops reading, or a cluster that stops reading, meets the
// write deadline; should anything still hold the session past that, both
// connections are closed under it.
func (s *session) drain(deadline time.Time, linger func()) {
	s.startDrain(deadline, linger)
	past := time.NewTimer(time.Until(deadline) + drainGrace)
	defer past.Stop()
	select {
	case <-s.done:
		return
	case <-past.C:
	}
	s.log.Warn("closing connection: not drained by the drain deadline")
	s.client.Close()
	s.upstream.Close()
	<-s.done
}

// drainGrace is how long past its deadline a drain waits for the session's
// loops to notice their deadlines before it closes the connections.
const drainGrace = time.Second

// startDrain makes the session drain and returns at once; run ends it, by the
// deadline. A session switched away from before it runs is drained this way
// and then run: it must not wait for itself.
func (s *session) startDrain(deadline time.Time, linger func()) {
	s.once.Do(func() {
		if linger != nil {
			s.linger.Store(&linger)
		}
		close(s.draining)
	})
	// Unblock a read of the next request; one half-read is dropped, and the
	// client resends it on its next connection since it was never answered.
	s.client.SetReadDeadline(time.Now())
	// Responses owed still go out, but to a client that reads them only by
	// the deadline; likewise requests buffered for the cluster.
	s.client.SetWriteDeadline(deadline)
	s.upstream.SetWriteDeadline(deadline)
	if s.owed.Load() == 0 {
		s.upstream.Close()
	} else {
		s.upstream.SetReadDeadline(deadline)
	}
}

// cut ends the session at once, answered or not. Once it returns, nothing
// more reaches the client: a write to a closed connection fails, and Close
// waits for a write under way. A held Produce is dropped (draining), for the
// client to send again on its next connection.
func (s *session) cut() {
	s.once.Do(func() { close(s.draining) })
	// A TLS connection's own Close first sends a close_notify, which may
	// wait seconds on a client that does not read: close what it runs on.
	client := s.client
	if tc, ok := client.(*tls.Conn); ok {
		client = tc.NetConn()
	}
	client.Close()
	s.upstream.Close()
}

func (s *session) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
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
	defer func() {
		// Without a client nothing more can be answered; while draining,
		// the response loop still delivers what is owed.
		if !s.isDraining() {
			s.upstream.Close()
		}
	}()
	in := bufio.NewReaderSize(s.client, readBufferSize)
	trusted := false
	for {
		// Trust may come while the loop waits for the next frame: look
		// once its length has arrived.
		if !trusted {
			if _, err := in.Peek(4); err == nil {
				trusted = s.trusted.Load()
			}
		}
		var bp *[]byte
		var err error
		if trusted {
			bp, err = wire.ReadFrame(in, s.maxFrame)
		} else {
			bp, err = s.readUntrusted(in)
		}
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
			s.upstream.Close()
			return
		}
		// Requests that came in together go out together; the last one
		// before the client pauses sends them.
		if keep && !frameReady(in) {
			keep = s.flushUpstream()
		}
		if !keep {
			return
		}
	}
}

// readUntrusted reads a frame of a client the cluster has not answered yet:
// growing, and capped at authMaxFrame while it authenticates.
func (s *session) readUntrusted(in *bufio.Reader) (*[]byte, error) {
	var authenticating bool
	if s.swap != nil {
		authenticating = s.swap.user == "" || s.swap.exchange != nil
	} else {
		authenticating = passthroughCapped(s.route.upstream.SASL != nil, s.saslPassing.Load(), s.saslDone.Load())
	}
	if !authenticating || s.maxFrame <= authMaxFrame {
		return wire.ReadFrameGrowing(in, s.maxFrame)
	}
	bp, err := wire.ReadFrameGrowing(in, authMaxFrame)
	if errors.Is(err, wire.ErrFrameTooLarge) {
		err = fmt.Errorf("%w, the limit while the client authenticates (SASL)", err)
	}
	return bp, err
}

// frameReady says whether a whole frame is buffered, to be read without
// waiting on the network.
func frameReady(in *bufio.Reader) bool {
	if in.Buffered() < 4 {
		return false
	}
	size, err := in.Peek(4)
	return err == nil && int(binary.BigEndian.Uint32(size))+4 <= in.Buffered()
}

func (s *session) flushUpstream() bool {
	if err := s.upw.Flush(); err != nil {
		s.log.Info("cluster connection failed", "err", err)
		return false
	}
	return true
}

func (s *session) request(frame []byte) (bool, error) {
	h, err := wire.ParseRequestHeader(frame)
	if err != nil {
		return false, err
	}
	if s.clientID.Load() == nil {
		id := wire.ClientID(frame)
		s.clientID.Store(&id)
	}
	if !s.working.Load() && !setupKey(h.Key) {
		s.working.Store(true)
	}
	s.route.metrics.bytesIn.Add(float64(len(frame)))
	counted := false // a Produce the response loop has not taken over
	if h.Key == kmsg.Produce {
		if !s.waitProduce() {
			return false, nil
		}
		counted = true
		defer func() {
			if counted {
				s.producing.Add(-1)
			}
		}()
		if parkProduce != nil {
			parkProduce()
		}
	}
	if h.Key == kmsg.ApiVersions && h.Version > wire.MaxVersion(kmsg.ApiVersions) {
		return s.answer(h, wire.ApiVersionsTooNew(h.CorrelationID))
	}
	if h.Key == kmsg.SASLHandshake && h.Version == 0 {
		return s.refuseRawSASL(h)
	}
	if h.Key == kmsg.SASLHandshake && s.swap == nil {
		// A handshake the gateway cannot read counts as a mechanism it
		// does not know: the cluster refuses it anyway.
		hs := kmsg.NewPtrSASLHandshakeRequest()
		if readRequest(h, frame, hs) != nil {
			hs.Mechanism = ""
		}
		s.saslLeft.Store(int32(saslRounds(hs.Mechanism)))
		s.saslPassing.Store(true)
	}
	if s.swap != nil {
		if handled, keep, err := s.swapRequest(h, frame); handled {
			return keep, err
		}
	}
	out, err := wire.RewriteRequest(h, frame, s.route)
	if err != nil {
		return false, err
	}
	if out == nil {
		out = frame
	}
	p := inflight{key: h.Key, version: h.Version, correlationID: h.CorrelationID, start: time.Now()}
	switch h.Key {
	case kmsg.Produce:
		acks, err := wire.Acks(h, frame)
		if err != nil {
			return false, fmt.Errorf("produce request: %w", err)
		}
		if acks == 0 {
			p.key = -1 // no response comes
		}
	case kmsg.ConsumerGroupHeartbeat:
		p.memberEpoch = wire.HeartbeatMemberEpoch(h, frame)
	case kmsg.Fetch:
		s.fetched.Store(true)
		if !s.route.resync.active() {
			break
		}
		verdict, note := s.route.resync.hold(s.clientKey())
		if note != "" {
			s.log.Info(note)
		}
		switch verdict {
		case fetchHold:
			p.answer = wire.EmptyFetchResponse(h.CorrelationID, h.Version)
			p.notBefore = time.Now().Add(heldFetchPause)
			out = wire.Placeholder(h.CorrelationID)
		case fetchStale:
			answer, refused, err := s.route.resync.refuse(s.clientKey(), h, frame)
			if err != nil {
				return false, err
			}
			if answer != nil {
				s.route.metrics.staleFetches.Add(float64(refused))
				p.answer = answer
				out = wire.Placeholder(h.CorrelationID)
			}
		}
	case kmsg.OffsetCommit:
		if !s.route.resync.active() {
			break
		}
		answer, refused, note, err := s.route.resync.refuseCommit(s.clientKey(), h, frame)
		if err != nil {
			return false, err
		}
		if note != "" {
			s.log.Warn(note)
		}
		if answer != nil {
			s.route.metrics.staleCommits.Add(float64(refused))
			p.answer = answer
			out = wire.Placeholder(h.CorrelationID)
		}
	case kmsg.ListOffsets:
		if !s.route.resync.active() {
			break
		}
		if err := s.route.resync.listed(s.clientKey(), h, frame); err != nil {
			return false, err
		}
	}
	// Queued before the write so the response always finds it.
	if p.key >= 0 && !s.enqueue(p) {
		return false, nil
	}
	// Once queued, the response loop uncounts a Produce when it answers it.
	// One with acks=0 is never answered, nor acknowledged: it is uncounted
	// once handed to the cluster's connection, and a pause or fence does
	// not wait for it.
	counted = counted && p.key < 0
	if _, err := s.upw.Write(out); err != nil {
		s.log.Info("cluster connection failed", "err", err)
		return false, nil
	}
	return true, nil
}

// waitProduce holds a Produce while the route is paused or fenced; it
// reports false when the session is drained meanwhile, and the request is
// dropped unanswered for the client to send again on its next connection.
// When it reports true, the Produce is counted in producing.
func (s *session) waitProduce() bool {
	held := false
	for {
		// Counted before the check: a pause or fence raised after the
		// check then finds it counted; one raised before it, the check
		// sees (the atomics are sequentially consistent).
		s.producing.Add(1)
		released := s.route.produceHold()
		if released == nil {
			return true
		}
		s.producing.Add(-1)
		if !held {
			// What came before the Produce still goes, and is answered.
			if !s.flushUpstream() {
				return false
			}
			s.route.metrics.produceHeld.Inc()
			held = true
		}
		select {
		case <-released:
		case <-s.draining:
			return false
		}
	}
}

// answer sends the gateway's own response to a request. Responses go out in
// request order: behind requests in flight (a client re-authenticating on a
// busy connection) the cluster is sent a placeholder, whose response is
// replaced by this one. Before a swap client authenticated, the answer
// waits for those requests instead: the placeholder is an ApiVersions, and
// a broker takes only one before the SASL handshake (Kafka closes the
// connection on a second).
func (s *session) answer(h wire.RequestHeader, resp []byte) (bool, error) {
	if s.swap != nil && s.swap.user == "" && s.inFlight.Load() != 0 && !s.waitIdle() {
		return false, nil
	}
	if s.inFlight.Load() != 0 {
		if !s.enqueue(inflight{key: h.Key, version: h.Version, correlationID: h.CorrelationID, start: time.Now(), answer: resp}) {
			return false, nil
		}
		if _, err := s.upw.Write(wire.Placeholder(h.CorrelationID)); err != nil {
			return false, nil
		}
		return true, nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.cw.Write(resp); err != nil {
		return false, nil
	}
	return s.cw.Flush() == nil, nil
}

// waitIdle sends what is buffered for the cluster and waits until every
// request in flight is answered; false if the cluster connection ended or
// the answers took longer than roundTripTimeout.
func (s *session) waitIdle() bool {
	if !s.flushUpstream() {
		return false
	}
	deadline := time.After(roundTripTimeout)
	for s.inFlight.Load() > 0 {
		select {
		case <-s.respDone:
			return false
		case <-deadline:
			s.log.Info("closing connection: the cluster did not answer the requests in flight", "timeout", roundTripTimeout)
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// enqueue waits for room in the in-flight queue, and fails once the
// response loop has ended and will never make room.
func (s *session) enqueue(p inflight) bool {
	s.enqueued++
	s.inFlight.Add(1)
	if !longPoll(p.key) {
		s.owed.Add(1)
	}
	select {
	case s.pending <- p:
		return true
	default:
	}
	// The queue is full: send what is buffered, whose responses free it.
	if !s.flushUpstream() {
		return false
	}
	select {
	case s.pending <- p:
		return true
	case <-s.respDone:
		return false
	}
}

// responses reads the cluster's responses, translates them and sends them
// to the client, in the order of the requests.
func (s *session) responses() {
	defer close(s.respDone)
	// The request loop may be blocked reading the client: wake it.
	defer s.client.SetReadDeadline(time.Now())
	in := bufio.NewReaderSize(s.upstream, readBufferSize)
	for {
		bp, err := wire.ReadFrame(in, s.maxFrame)
		if err != nil {
			s.readFailed("cluster", err)
			return
		}
		var p inflight
		select {
		case p = <-s.pending:
			s.answered.Add(1)
			if !setupKey(p.key) && !s.trusted.Load() {
				s.trusted.Store(true)
			}
			if p.key == kmsg.SASLAuthenticate && s.saslPassing.Load() && saslAccepted(*bp, p.version) &&
				s.saslLeft.Load() > 0 && s.saslLeft.Add(-1) == 0 {
				s.saslDone.Store(true)
				s.saslPassing.Store(false)
			}
		default:
			wire.PutBuffer(bp)
			s.log.Error("closing connection: the cluster sent a response to no request")
			return
		}
		var ok bool
		if p.internal != nil {
			// The gateway's own request takes only its own response.
			if got := wire.CorrelationID(*bp); got != p.correlationID {
				s.log.Error("closing connection: cluster answered the gateway's own request out of order", "want_correlation_id", p.correlationID, "got", got)
			} else {
				ok = true
				p.internal <- slices.Clone(*bp)
			}
		} else {
			ok = s.response(*bp, p, !frameReady(in))
		}
		wire.PutBuffer(bp)
		if !ok {
			return
		}
		s.inFlight.Add(-1)
		if p.key == kmsg.Produce {
			s.producing.Add(-1)
		}
		if !longPoll(p.key) && s.owed.Add(-1) == 0 && s.isDraining() {
			return // everything owed is delivered
		}
	}
}

// response answers the client; flush says no other response is at hand to
// go out with this one.
func (s *session) response(frame []byte, p inflight, flush bool) bool {
	if got := wire.CorrelationID(frame); got != p.correlationID {
		s.log.Error("closing connection: cluster answered out of order", "want_correlation_id", p.correlationID, "got", got)
		return false
	}
	if p.answer != nil {
		select {
		case <-time.After(time.Until(p.notBefore)):
		case <-s.draining:
		}
		return s.deliver(p.answer, p, flush)
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
	// A member of a consumer group that heartbeats after a switch finds
	// its group unknown, or of the classic type (MirrorMaker 2 syncs its
	// offsets as one), and the Java client takes GROUP_ID_NOT_FOUND as
	// fatal. Fenced instead, the member rejoins from epoch 0.
	if p.key == kmsg.ConsumerGroupHeartbeat && p.memberEpoch > 0 && s.route.EpochBase() > 0 {
		wire.FenceLostMember(out, p.version)
	}
	if p.key == kmsg.OffsetFetch && s.route.resync.active() {
		if held := s.route.resync.resynced(s.clientKey()); held > 0 {
			s.log.Info("consumer resynced with its committed offsets after the switch; its fetches go on", "held", held)
		}
	}
	return s.deliver(out, p, flush)
}

// deliver writes a response to the client.
func (s *session) deliver(out []byte, p inflight, flush bool) bool {
	s.wmu.Lock()
	_, err := s.cw.Write(out)
	if err == nil && (flush || s.isDraining()) {
		err = s.cw.Flush()
	}
	s.wmu.Unlock()
	if err != nil {
		return false
	}
	s.route.metrics.bytesOut.Add(float64(len(out)))
	c, o := s.route.metrics.api(p.key)
	c.Inc()
	o.Observe(time.Since(p.start).Seconds())
	return true
}

// readFailed logs why a side stopped, quietly for ordinary closes.
func (s *session) readFailed(side string, err error) {
	switch {
	case s.isDraining() && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed)):
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, wire.ErrFrameTooSmall):
		s.route.metrics.frameErrors.Inc()
		s.log.Warn("closing connection: bad frame from "+side, "err", err)
	default:
		s.log.Debug("connection ended", "side", side, "err", err)
	}
}

// saslAccepted says whether a SaslAuthenticate response from the cluster
// carries no error.
func saslAccepted(frame []byte, version int16) bool {
	off, err := wire.ResponseBodyOffset(frame, kmsg.SASLAuthenticate, version)
	return err == nil && len(frame) >= off+2 && binary.BigEndian.Uint16(frame[off:]) == 0
}

// saslRounds is how many SaslAuthenticate rounds the cluster accepts in a
// successful exchange of mechanism: SCRAM's first answer carries no error
// yet proves nothing, its second is the server's proof. 0 when the gateway
// cannot tell (GSSAPI's rounds vary, and a mechanism it does not know): the
// exchange is then never counted as done, and the client is trusted only
// once the cluster answers a request past the set-up.
func saslRounds(mechanism string) int {
	switch mechanism {
	case "PLAIN", "OAUTHBEARER":
		return 1
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		return 2
	}
	return 0
}

// passthroughCapped says whether the frames of a client on a passthrough
// route that the cluster has not answered yet are capped at authMaxFrame.
// Where the cluster requires SASL (Turnout has its own identity on it) the
// client is capped until its exchange is done, whether or not it began
// one; elsewhere the gateway cannot tell a client that skips SASL from one
// of a cluster without it, and caps only during an exchange.
func passthroughCapped(clusterSASL, passing, done bool) bool {
	if clusterSASL {
		return !done
	}
	return passing
}

// setupKey says whether a request belongs to a connection's set-up, which
// a client sends before it is authenticated.
func setupKey(key kmsg.Key) bool {
	return key == kmsg.ApiVersions || key == kmsg.SASLHandshake || key == kmsg.SASLAuthenticate
}

// parkProduce, set only by tests, runs for each Produce between the
// route's hold and its forwarding.
var parkProduce func()
