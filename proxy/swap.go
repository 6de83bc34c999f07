package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/auth"
	"github.com/turnout/turnout/proxy/config"
	"github.com/turnout/turnout/proxy/wire"
)

// swapAuth is how a route with auth swap authenticates: its users, the
// store of their cluster credentials, and the cluster's login.
type swapAuth struct {
	users     *auth.Users
	store     auth.Store
	storeName string
	mechanism string // the cluster's SASL mechanism; "" logs in to no one
	template  auth.Template
	lifetime  time.Duration // of a client's session; 0 for no limit
}

// newSwapAuth reads the files a route with auth swap needs; nil for a
// passthrough route.
func newSwapAuth(g *config.Gateway, rc *config.Route) (*swapAuth, error) {
	sc := rc.Security.SwapConfig
	if rc.Security.Auth != "swap" || sc == nil {
		return nil, nil
	}
	cs := sc.ClientAuth.SASL
	users, err := auth.LoadUsers(cs.JaasConfig.File, sc.ClientMechanisms())
	if err != nil {
		return nil, fmt.Errorf("route %s: users file: %w", rc.Name, err)
	}
	st := g.SecretStore(sc.SecretStore)
	store, err := auth.NewStore(st.Provider.Type, st.Provider.Config.Path, st.Provider.Config.PrefixPath, st.Provider.Config.Separator)
	if err != nil {
		return nil, fmt.Errorf("route %s: secret store %s: %w", rc.Name, st.Name, err)
	}
	sw := &swapAuth{users: users, store: store, storeName: st.Name, template: auth.DefaultTemplate,
		lifetime: time.Duration(cs.ConnectionsMaxReauthMs) * time.Millisecond}
	if cl := sc.ClusterAuth.SASL; cl != nil {
		sw.mechanism = cl.Mechanism
		if cl.JaasConfig.File != "" {
			if sw.template, err = auth.LoadTemplate(cl.JaasConfig.File); err != nil {
				return nil, fmt.Errorf("route %s: cluster login template: %w", rc.Name, err)
			}
		}
	}
	return sw, nil
}

// CheckAuth reads the files of every route with auth swap, as serving the
// configuration would, so that `turnout validate` finds a missing or bad
// users file, template or store.
func CheckAuth(g *config.Gateway) error {
	var errs []error
	for i := range g.Routes {
		if _, err := newSwapAuth(g, &g.Routes[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// swapSession is a session's authentication state on a route with auth
// swap; the request loop's alone.
type swapSession struct {
	// *swapAuth is the route's settings as of the client's last
	// SaslHandshake or the gateway's last login, whichever came later: a
	// restart that keeps the route reads its users file and store again,
	// and live connections use them from their next authentication on.
	*swapAuth
	exchange     *auth.Exchange // a client authentication in progress
	user         string         // the authenticated user; "" before
	clientExpiry time.Time      // when the client's session ends; zero for never
	reauthAt     time.Time      // when to log in to the cluster again; zero for never
	nextID       int32          // correlation ids of the gateway's own requests
}

// current takes the route's swap settings as they are now. It reports
// false when the route swaps no more, which a restart that keeps the route
// does not do; the session is then closed.
func (a *swapSession) current(r *Route) bool {
	sw := r.swap.Load()
	if sw == nil {
		return false
	}
	a.swapAuth = sw
	return true
}

// The keys the gateway answers for a route with auth swap.

// reauthShare is how much of the cluster's session lifetime passes before
// the gateway logs in again, as Kafka's Java client does at 85-95%.
const reauthShare = 0.85

// refuseRawSASL answers a SaslHandshake v0: after it, clients send SASL
// tokens without Kafka framing, which the gateway cannot match with
// responses. The gateway still offers v0 in ApiVersions, since librdkafka
// uses SASL only when v0 is offered and then asks in v1; every client since
// Kafka 1.0 negotiates v1, so only a client pinned to v0 gets here.
func (s *session) refuseRawSASL(h wire.RequestHeader) (bool, error) {
	s.log.Warn("closing connection: SaslHandshake v0 (SASL tokens without Kafka framing) is not supported through the gateway; " +
		"configure the client for SaslHandshake v1 (sarama: Net.SASL.Version = SASLHandshakeV1)")
	resp := kmsg.NewPtrSASLHandshakeResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	return s.answerLast(h, responseFrame(h, resp))
}

// answerLast answers a request and ends the session once the answer is
// out: it may wait behind responses still in flight.
func (s *session) answerLast(h wire.RequestHeader, resp []byte) (bool, error) {
	if keep, err := s.answer(h, resp); !keep || err != nil {
		return false, err
	}
	s.waitIdle()
	return false, nil
}

// swapRequest handles a request on a route with auth swap: it answers the
// SASL requests itself, refuses anything but ApiVersions before the client
// authenticated, and logs in to the cluster again when its session is
// running out. handled says the request must not be forwarded.
func (s *session) swapRequest(h wire.RequestHeader, frame []byte) (handled, keep bool, err error) {
	a := s.swap
	switch {
	case h.Key == kmsg.SASLHandshake:
		keep, err = s.saslHandshake(h, frame)
		return true, keep, err
	case h.Key == kmsg.SASLAuthenticate:
		keep, err = s.saslAuthenticate(h, frame)
		return true, keep, err
	case a.user == "" && h.Key == kmsg.ApiVersions:
		return false, true, nil
	case a.user == "" || a.exchange != nil:
		s.log.Info("closing connection: a request other than ApiVersions, SaslHandshake or SaslAuthenticate before the client authenticated",
			"api", h.Key.Name())
		return true, false, nil
	case !a.clientExpiry.IsZero() && time.Now().After(a.clientExpiry):
		s.log.Info("closing connection: the client's session expired and it did not re-authenticate", "user", a.user)
		return true, false, nil
	case !a.reauthAt.IsZero() && time.Now().After(a.reauthAt):
		if err := s.clusterLogin(a.user); err != nil {
			s.log.Warn("closing connection: logging in to the cluster again failed", "user", a.user, "err", err)
			return true, false, nil
		}
	}
	return false, true, nil
}

func (s *session) saslHandshake(h wire.RequestHeader, frame []byte) (bool, error) {
	req := kmsg.NewPtrSASLHandshakeRequest()
	if err := readRequest(h, frame, req); err != nil {
		return false, err
	}
	a := s.swap
	if a.exchange == nil && !a.current(s.route) {
		s.log.Info("closing connection: the route no longer swaps credentials")
		return false, nil
	}
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = a.users.Enabled()
	ex, err := a.users.Start(req.Mechanism)
	switch {
	case a.exchange != nil:
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case err != nil:
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	}
	if resp.ErrorCode != 0 {
		s.log.Info("closing connection: SASL handshake refused", "mechanism", req.Mechanism, "err", kerr.ErrorForCode(resp.ErrorCode))
		return s.answerLast(h, responseFrame(h, resp))
	}
	a.exchange = ex
	return s.answer(h, responseFrame(h, resp))
}

func (s *session) saslAuthenticate(h wire.RequestHeader, frame []byte) (bool, error) {
	req := kmsg.NewPtrSASLAuthenticateRequest()
	if err := readRequest(h, frame, req); err != nil {
		return false, err
	}
	a := s.swap
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	fail := func(msg string, logArgs ...any) (bool, error) {
		s.log.Info("closing connection: client authentication failed", logArgs...)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = &msg
		return s.answerLast(h, responseFrame(h, resp))
	}
	if a.exchange == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		s.log.Info("closing connection: SaslAuthenticate without a SaslHandshake")
		return s.answerLast(h, responseFrame(h, resp))
	}
	reply, done, err := a.exchange.Step(req.SASLAuthBytes)
	if err != nil {
		return fail(err.Error(), "mechanism", a.exchange.Mechanism())
	}
	resp.SASLAuthBytes = reply
	if !done {
		return s.answer(h, responseFrame(h, resp))
	}
	user := a.exchange.User()
	a.exchange = nil
	switch {
	case a.user != "" && user != a.user:
		return fail("authentication failed: re-authentication may not change the user", "user", a.user, "new_user", user)
	case a.user == "":
		if err := s.clusterLogin(user); err != nil {
			return fail("authentication failed: the gateway cannot log in to the active cluster for this user", "user", user, "err", err)
		}
		a.user = user
		s.log.Debug("client authenticated; logged in to the cluster", "user", user)
	}
	if a.lifetime > 0 {
		a.clientExpiry = time.Now().Add(a.lifetime)
		resp.SessionLifetimeMillis = a.lifetime.Milliseconds()
	}
	return s.answer(h, responseFrame(h, resp))
}

// clusterLogin finds the user's credentials for the route's
// cluster, with the route's settings as they are now, and logs in with
// them. Each login looks the secret up again, so that a password rotated in
// the store serves the next re-authentication.
func (s *session) clusterLogin(user string) error {
	a := s.swap
	if !a.current(s.route) {
		return errors.New("the route no longer swaps credentials")
	}
	if a.mechanism == "" {
		return nil
	}
	cred, err := a.store.Lookup(s.route.Domain, user)
	if err != nil {
		return fmt.Errorf("secret store %s: %w", a.storeName, err)
	}
	return s.login(a.template.Fill(cred))
}

// login authenticates the connection to the cluster with the user's
// credentials, with requests the gateway sends itself and whose responses
// it consumes. On an authenticated connection this is a re-authentication
// (KIP-368), which the broker allows once it gave the session a lifetime.
func (s *session) login(cred auth.Credential) (err error) {
	a := s.swap
	defer func() { s.route.metrics.clusterLogin(a.user != "", err == nil) }()
	mech := cred.Mechanism(a.mechanism)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 1
	hs.Mechanism = mech.Name()
	r, err := s.roundTrip(hs)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(r.(*kmsg.SASLHandshakeResponse).ErrorCode); err != nil {
		return fmt.Errorf("the cluster refused mechanism %s: %w", mech.Name(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), roundTripTimeout)
	defer cancel()
	sess, msg, err := mech.Authenticate(ctx, s.upstream.RemoteAddr().String())
	if err != nil {
		return fmt.Errorf("%s login to the cluster: %w", mech.Name(), err)
	}
	for {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version = 1
		req.SASLAuthBytes = msg
		r, err := s.roundTrip(req)
		if err != nil {
			return err
		}
		resp := r.(*kmsg.SASLAuthenticateResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			if resp.ErrorMessage != nil {
				return fmt.Errorf("the cluster refused the login: %w: %s", err, *resp.ErrorMessage)
			}
			return fmt.Errorf("the cluster refused the login: %w", err)
		}
		done, next, err := sess.Challenge(resp.SASLAuthBytes)
		if err != nil {
			return fmt.Errorf("%s login to the cluster: %w", mech.Name(), err)
		}
		if done {
			a.reauthAt = time.Time{}
			if ms := resp.SessionLifetimeMillis; ms > 0 {
				a.reauthAt = time.Now().Add(time.Duration(float64(ms)*reauthShare) * time.Millisecond)
			}
			return nil
		}
		msg = next
	}
}

// roundTripTimeout bounds the cluster's answer to one of the gateway's own
// requests, counted from when the request is the oldest in flight: the
// client's requests ahead of it may rightly take longer (a JoinGroup waits
// for the whole group), and are bounded by queueTimeout instead. A var for
// tests.
var roundTripTimeout = 10 * time.Second

// queueTimeout bounds how long the gateway's own request waits behind the
// client's requests sent before it: a JoinGroup can wait for the group's
// rebalance timeout, 5 minutes by default in Java clients (the poll
// interval). The request loop reads nothing from the client meanwhile, so
// the bound also frees a connection whose cluster stopped answering.
const queueTimeout = 5*time.Minute + 30*time.Second

var formatter = kmsg.NewRequestFormatter(kmsg.FormatterClientID("turnout-gateway"))

// roundTrip sends the gateway's own request to the cluster, in line with the
// client's, and returns the response, which the client never sees.
func (s *session) roundTrip(req kmsg.Request) (kmsg.Response, error) {
	a := s.swap
	a.nextID--
	ch := make(chan []byte, 1)
	p := inflight{key: kmsg.Key(req.Key()), version: req.GetVersion(), correlationID: a.nextID, start: time.Now(), internal: ch}
	if !s.enqueue(p) {
		return nil, errClusterClosed
	}
	seq := s.enqueued // the request's place in line
	if _, err := s.upw.Write(formatter.AppendRequest(nil, req, a.nextID)); err != nil || !s.flushUpstream() {
		return nil, errClusterClosed
	}
	frame, err := s.await(ch, seq, kmsg.NameForKey(req.Key()))
	if err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	off, err := wire.ResponseBodyOffset(frame, kmsg.Key(req.Key()), req.GetVersion())
	if err == nil {
		err = resp.ReadFrom(frame[off:])
	}
	if err != nil {
		return nil, fmt.Errorf("decoding %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// errClusterClosed is every failure of the gateway's own request because
// the connection to the cluster ended.
var errClusterClosed = errors.New("connection to the cluster closed")

// await waits for the response to the gateway's own request, the seq-th
// entry queued: roundTripTimeout from when every request ahead of it is
// answered, and no more than queueTimeout before that.
func (s *session) await(ch <-chan []byte, seq uint64, name string) ([]byte, error) {
	queued := time.NewTimer(queueTimeout)
	defer queued.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	pollC := poll.C
	var deadline <-chan time.Time
	for {
		if deadline == nil && s.answered.Load() >= seq-1 {
			deadline, pollC = time.After(roundTripTimeout), nil
			queued.Stop()
		}
		select {
		case frame := <-ch:
			return frame, nil
		case <-s.respDone:
			return nil, errClusterClosed
		case <-deadline:
			return nil, fmt.Errorf("no answer to %s within %v", name, roundTripTimeout)
		case <-queued.C:
			return nil, fmt.Errorf("no answer to %s: the client's requests ahead of it were not answered within %v", name, queueTimeout)
		case <-pollC:
		}
	}
}

// readRequest decodes a request frame's body.
func readRequest(h wire.RequestHeader, frame []byte, req kmsg.Request) error {
	if h.Version > wire.MaxVersion(h.Key) {
		return fmt.Errorf("%s v%d: %w", h.Key.Name(), h.Version, wire.ErrUnsupportedVersion)
	}
	req.SetVersion(h.Version)
	if err := req.ReadFrom(frame[h.BodyOffset:]); err != nil {
		return fmt.Errorf("decoding %s v%d request: %w", h.Key.Name(), h.Version, err)
	}
	return nil
}

// responseFrame encodes the gateway's own response to a request.
func responseFrame(h wire.RequestHeader, resp kmsg.Response) []byte {
	resp.SetVersion(h.Version)
	b := make([]byte, 8, 64)
	binary.BigEndian.PutUint32(b[4:], uint32(h.CorrelationID))
	if resp.IsFlexible() && h.Key != kmsg.ApiVersions {
		b = append(b, 0) // no header tags
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}
