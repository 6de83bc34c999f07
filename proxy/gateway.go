// Package proxy is the Turnout gateway: a Kafka protocol proxy that serves
// each route from the streaming domain its configuration names, and switches
// a route to another domain on restart without clients changing anything.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnout/turnout/proxy/adminapi"
	"github.com/turnout/turnout/proxy/config"
)

// ErrInvalidConfig marks a restart refused because the file is not valid.
var ErrInvalidConfig = errors.New("invalid gateway configuration")

// ErrUnknownRoute is returned for a route the gateway does not serve.
var ErrUnknownRoute = errors.New("no such route in the gateway configuration")

// Gateway serves the routes of one configuration file.
type Gateway struct {
	path    string
	log     *slog.Logger
	metrics *Metrics
	observe func(Event) // set by Observe before Start

	mu        sync.Mutex        // serialises Start, Restart and Close
	listeners map[int]*listener // by port
	closed    bool
	epochs    *epochs        // the highest epoch served of each route
	wg        sync.WaitGroup // accept loops and sessions
	ready     atomic.Bool
	cfg       atomic.Pointer[config.Gateway]

	stop chan struct{} // closed by Close: held connections give up

	// routes is read by status and written by apply, which holds mu for a
	// whole drain; its own lock keeps status answering meanwhile.
	rmu    sync.RWMutex
	routes map[string]*routeServer
}

// routeServer holds the Route being served and the sessions using it.
type routeServer struct {
	route atomic.Pointer[Route]

	mu       sync.Mutex
	sessions map[*session]struct{}
	switched chan struct{} // closed when the route is swapped
	warned   time.Time     // when "cluster unreachable" was last logged
}

func newRouteServer() *routeServer {
	return &routeServer{sessions: map[*session]struct{}{}, switched: make(chan struct{})}
}

// swap serves r from now on and wakes the connections held for a switch.
func (rs *routeServer) swap(r *Route) *Route {
	old := rs.route.Swap(r)
	rs.mu.Lock()
	close(rs.switched)
	rs.switched = make(chan struct{})
	rs.mu.Unlock()
	return old
}

func (rs *routeServer) switchedCh() <-chan struct{} {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.switched
}

// warnUnreachable says so at most every few seconds: a dead cluster meets
// every client's retry.
func (rs *routeServer) warnUnreachable() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if time.Since(rs.warned) < 5*time.Second {
		return false
	}
	rs.warned = time.Now()
	return true
}

type listener struct {
	ln        net.Listener
	rs        *routeServer
	route     string
	node      int32
	bootstrap bool
}

// New makes a gateway for the configuration file at path; Start serves it.
func New(path string, log *slog.Logger, m *Metrics) *Gateway {
	return &Gateway{path: path, log: log, metrics: m, routes: map[string]*routeServer{}, listeners: map[int]*listener{},
		stop: make(chan struct{})}
}

// Config is the configuration being served.
func (g *Gateway) Config() *config.Gateway { return g.cfg.Load() }

// Ready is true once every route's listeners are up.
func (g *Gateway) Ready() bool { return g.ready.Load() }

// Start reads the configuration and opens every route's listeners. Either all
// listeners open or none stay open.
func (g *Gateway) Start(ctx context.Context) error {
	cfg, err := config.Load(g.path)
	if err != nil {
		return err
	}
	g.warn(cfg)
	e, err := loadEpochs(g.path, g.metrics.epochsWriteErrors)
	if err != nil {
		return err
	}
	if err := e.fence(cfg); err != nil {
		return fmt.Errorf("%w; not serving it: set the route's epoch (and domain) to what the agents last decided", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.epochs = e
	if err := g.apply(ctx, cfg); err != nil {
		return err
	}
	g.recordEpochs(cfg)
	g.ready.Store(true)
	return nil
}

// recordEpochs keeps what cfg serves for the next process too. A gateway
// whose state file cannot be written still serves: it then fences only
// within this process.
func (g *Gateway) recordEpochs(cfg *config.Gateway) {
	if err := g.epochs.record(cfg); err != nil {
		g.log.Warn("could not record the routes' epochs; a restarted gateway process would not know them", "file", g.epochs.path, "err", err)
	}
}

// warn logs the settings of cfg that weaken security, at every start and
// restart, so that they are not forgotten.
func (g *Gateway) warn(cfg *config.Gateway) {
	for _, w := range cfg.Warnings() {
		g.log.Warn("INSECURE: " + w)
	}
}

// Restart re-reads the configuration and serves it. Routes whose domain,
// bootstrap server or epoch changed get a new Route: new connections go to the
// new cluster at once, and existing ones are drained (in-flight responses
// delivered, bounded by the drain timeout) and closed, so clients reconnect
// through the gateway to the new cluster. Unchanged routes keep their
// connections. An invalid file changes nothing and is returned as the error;
// so does one that moves a route back to an older epoch, or to another
// domain at the epoch served (config.ErrStaleEpoch).
func (g *Gateway) Restart(ctx context.Context) error {
	cfg, err := config.Load(g.path)
	if err != nil {
		g.metrics.restarts.WithLabelValues("invalid_config").Inc()
		return fmt.Errorf("%w; still serving the previous configuration: %w", ErrInvalidConfig, err)
	}
	g.warn(cfg)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("gateway is shutting down")
	}
	if err := g.epochs.fence(cfg); err != nil {
		g.metrics.restarts.WithLabelValues("refused").Inc()
		g.log.Error("restart refused: the configuration file would move a route back", "file", g.path, "err", err)
		return fmt.Errorf("%w; still serving the previous configuration", err)
	}
	if err := g.apply(ctx, cfg); err != nil {
		g.metrics.restarts.WithLabelValues("failed").Inc()
		return err
	}
	g.recordEpochs(cfg)
	g.metrics.restarts.WithLabelValues("ok").Inc()
	return nil
}

// Switch writes route switches into the configuration file, atomically and
// refusing any older than the file (config.ErrStaleEpoch), then restarts.
// The agents send their switches this way, so that each gateway keeps its
// own file.
func (g *Gateway) Switch(ctx context.Context, switches []adminapi.RouteSwitch) error {
	for _, sw := range switches {
		changed, err := config.SwitchRoute(g.path, sw.Name, sw.Domain, sw.Epoch)
		if err != nil {
			g.metrics.restarts.WithLabelValues("refused").Inc()
			return fmt.Errorf("switching route %s to %s at epoch %d: %w", sw.Name, sw.Domain, sw.Epoch, err)
		}
		if changed {
			g.log.Info("route switched in the config file", "route", sw.Name, "domain", sw.Domain, "epoch", sw.Epoch, "file", g.path)
		}
	}
	return g.Restart(ctx)
}

// apply makes cfg the served configuration. Listeners are opened before
// anything is switched, so a port that cannot be bound leaves the old
// configuration serving untouched.
func (g *Gateway) apply(ctx context.Context, cfg *config.Gateway) error {
	want := map[int]*listener{}
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		plan := cfg.PortPlan(rc)
		want[plan.Bootstrap] = &listener{route: rc.Name, node: -1, bootstrap: true}
		for _, b := range plan.Brokers {
			want[b.Port] = &listener{route: rc.Name, node: b.NodeID}
		}
	}
	var opened []*listener
	for port, l := range want {
		if old, ok := g.listeners[port]; ok && old.route == l.route && old.node == l.node {
			continue
		}
		host := cfg.Route(l.route).ListenHost()
		if old, ok := g.listeners[port]; ok {
			// The port changes role and must be released before it can be
			// bound again; should a later step fail, it stays closed.
			old.ln.Close()
			delete(g.listeners, port)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			for _, o := range opened {
				o.ln.Close()
			}
			return fmt.Errorf("route %s: %w", l.route, err)
		}
		l.ln = ln
		opened = append(opened, l)
	}

	drainBy := time.Now().Add(cfg.DrainTimeout())
	fresh := map[string]*Route{}
	reload := map[*Route]*swapAuth{} // kept routes, with their users and store read again
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		g.rmu.RLock()
		rs := g.routes[rc.Name]
		g.rmu.RUnlock()
		var prev *Route
		if rs != nil {
			prev = rs.route.Load()
		}
		sw, err := newSwapAuth(cfg, rc)
		if err == nil && sameRoute(prev, cfg, rc) {
			reload[prev] = sw
			continue
		}
		var r *Route
		if err == nil {
			r, err = newRoute(cfg, rc, prev, sw, g.epochs.fenceStart(rc.Name, cfg.Admin.RequireLease), g.log, g.metrics.route(rc.Name))
		}
		if err != nil {
			for _, r := range fresh {
				r.close()
			}
			for _, o := range opened {
				o.ln.Close()
			}
			return err
		}
		// Learn the cluster before switching, so that the first clients
		// after the switch are answered from a warm route.
		learnStart := time.Now()
		err = r.refresh(ctx)
		r.log.Debug("learned cluster metadata", "took", time.Since(learnStart))
		if err != nil {
			// The gateway still serves: clients retry, and the first
			// connection that reaches the cluster learns it.
			r.log.Warn("cluster not reachable yet", "err", err)
		}
		fresh[rc.Name] = r
	}

	// Nothing can fail from here on: switch.
	g.cfg.Store(cfg)
	for r, sw := range reload {
		r.swap.Store(sw)
	}
	var drained []*routeServer
	var stale []*Route
	g.rmu.Lock()
	for name, r := range fresh {
		rs := g.routes[name]
		if rs == nil {
			rs = newRouteServer()
			g.routes[name] = rs
		}
		if cur := rs.route.Load(); cur != nil && cur.Domain != r.Domain {
			r.resync = newResyncGate(r.Name, rs.consumers(cur), time.Now().Add(resyncWait))
		}
		if old := rs.swap(r); old != nil {
			stale = append(stale, old)
			drained = append(drained, rs)
			g.metrics.configEpoch.DeleteLabelValues(old.Name, old.Domain)
		}
		g.metrics.configEpoch.WithLabelValues(r.Name, r.Domain).Set(float64(r.Epoch))
		g.log.Info("serving route", "route", r.Name, "endpoint", r.Endpoint, "domain", r.Domain,
			"bootstrap_server_id", r.BootstrapServerID, "epoch", r.Epoch, "cluster_id", r.ClusterID())
	}
	for name, rs := range g.routes {
		if cfg.Route(name) == nil {
			drained = append(drained, rs)
			if old := rs.swap(nil); old != nil {
				stale = append(stale, old)
			}
			delete(g.routes, name)
		}
	}
	for _, l := range opened {
		l.rs = g.routes[l.route]
	}
	g.rmu.Unlock()
	for port, l := range g.listeners {
		if _, ok := want[port]; !ok {
			l.ln.Close()
			delete(g.listeners, port)
		}
	}
	for _, l := range opened {
		g.listeners[l.ln.Addr().(*net.TCPAddr).Port] = l
		g.wg.Add(1)
		go g.accept(l)
	}
	// mu stays held while draining, so a second restart waits for this
	// switch to finish.
	drainStart := time.Now()
	var wg sync.WaitGroup
	for _, rs := range drained {
		wg.Add(1)
		go func() { defer wg.Done(); rs.drain(drainBy, rs.route.Load()) }()
	}
	wg.Wait()
	if len(drained) > 0 {
		g.log.Info("old connections drained", "routes", len(drained), "took", time.Since(drainStart))
	}
	for _, r := range stale {
		r.close()
	}
	return nil
}

// sameRoute says whether rc would be served exactly as r is, so that its
// connections can be kept across a restart.
func sameRoute(r *Route, cfg *config.Gateway, rc *config.Route) bool {
	if r == nil {
		return false
	}
	plan := cfg.PortPlan(rc)
	bs := cfg.Domain(rc.StreamingDomain.Name).BootstrapServer(rc.StreamingDomain.BootstrapServerID)
	return r.Domain == rc.StreamingDomain.Name && r.Auth == rc.Security.Auth && r.BootstrapServerID == rc.StreamingDomain.BootstrapServerID &&
		r.Epoch == rc.Epoch && r.Endpoint == rc.Endpoint && r.host == rc.AdvertisedHost() &&
		slices.Equal(r.bootstrap, bs.Hosts()) && r.plan.Bootstrap == plan.Bootstrap && slices.Equal(r.plan.Brokers, plan.Brokers) &&
		r.conf.BrokerIdentificationStrategy == rc.BrokerIdentificationStrategy && sameUpstream(r.upstream, bs) &&
		sameServerTLS(r.conf.Security.SSL.TLS(), rc.Security.SSL.TLS())
}

// sameServerTLS says whether a route's listeners admit clients alike under
// two TLS configurations: TLS on or off, the same certificates, the same
// clientAuth and the same CAs for client certificates. Connections admitted
// under the old one are drained otherwise, as by a switch: a route that now
// requires client certificates must not keep the clients that showed none.
func sameServerTLS(a, b *tls.Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.ClientAuth != b.ClientAuth || (a.ClientCAs == nil) != (b.ClientCAs == nil) || a.ClientCAs != nil && !a.ClientCAs.Equal(b.ClientCAs) {
		return false
	}
	return sameClientTLS(a, b) // the certificates (and RootCAs, unset on a server)
}

// drain closes every session that is not on the current route.
func (rs *routeServer) drain(deadline time.Time, current *Route) {
	rs.mu.Lock()
	clients := map[string][]*session{}
	for s := range rs.sessions {
		if s.route != current {
			clients[s.clientKey()] = append(clients[s.clientKey()], s)
		}
	}
	rs.mu.Unlock()
	var wg sync.WaitGroup
	for key, sessions := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); rs.drainClient(key, sessions, deadline, current) }()
	}
	wg.Wait()
}

// reconnectWait bounds how long a client's last old connection is kept
// while its others reconnect. Short, because a client may send requests on
// it that nobody reads (the Java client reuses it to bootstrap again).
const reconnectWait = 500 * time.Millisecond

// drainClient drains one client's old connections at once, but closes the
// last one only when the client has a connection on the new route (or after
// reconnectWait): librdkafka reports ALL_BROKERS_DOWN when every connection
// drops together, and some applications (kcat among them) exit on it.
// Nothing is read from the lingering connection, so no request of the
// client's reaches the old cluster after the drain.
func (rs *routeServer) drainClient(key string, sessions []*session, deadline time.Time, current *Route) {
	var linger func()
	if current != nil && len(sessions) > 1 {
		linger = func() {
			wait := time.NewTimer(reconnectWait)
			defer wait.Stop()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for !rs.hasClient(key, current) {
				select {
				case <-wait.C:
					return
				case <-tick.C:
				}
			}
		}
	}
	var wg sync.WaitGroup
	for i, s := range sessions {
		l := linger
		if i > 0 {
			l = nil
		}
		wg.Add(1)
		go func() { defer wg.Done(); s.drain(deadline, l) }()
	}
	wg.Wait()
}

// consumers are the clients that fetched through r.
func (rs *routeServer) consumers(r *Route) []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var keys []string
	for s := range rs.sessions {
		if s.route == r && s.fetched.Load() {
			keys = append(keys, s.clientKey())
		}
	}
	return keys
}

func (rs *routeServer) hasClient(key string, r *Route) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for s := range rs.sessions {
		// A connection still in its set-up is not one the client counts
		// as up (librdkafka: not before SASL is done), so it does not
		// end the old connection's linger.
		if s.route == r && s.working.Load() && s.clientKey() == key {
			return true
		}
	}
	return false
}

func (g *Gateway) accept(l *listener) {
	defer g.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				g.log.Error("accept failed; listener stopped", "route", l.route, "addr", l.ln.Addr().String(), "err", err)
			}
			return
		}
		g.wg.Add(1)
		go g.serve(l, c)
	}
}

func (g *Gateway) serve(l *listener, c net.Conn) {
	defer g.wg.Done()
	c, node, bootstrap, ok := g.handshake(l, c)
	if !ok {
		c.Close()
		return
	}
	s, r := g.connect(l, c, node, bootstrap)
	if s == nil {
		c.Close()
		return
	}
	rs := l.rs
	rs.mu.Lock()
	rs.sessions[s] = struct{}{}
	rs.mu.Unlock()
	// A restart may have switched the route while this session dialled.
	// The session still runs, to end at once: a restart's drain may have
	// found it registered, and waits for its end.
	if rs.route.Load() != r {
		s.startDrain(time.Now(), nil)
	}
	s.run()
	rs.mu.Lock()
	delete(rs.sessions, s)
	rs.mu.Unlock()
}

// handshakeTimeout bounds a client's TLS handshake, so that a client that
// connects and says nothing does not hold a goroutine for long.
const handshakeTimeout = 10 * time.Second

// handshake serves TLS on a connection to a route that has ssl, and says
// which broker the connection is for: the listener's, or with the host
// strategy, the one the server name the client asked for stands for. The
// route's current configuration decides, so a restart that brings new
// certificates serves them to the next connection.
func (g *Gateway) handshake(l *listener, c net.Conn) (net.Conn, int32, bool, bool) {
	rc := g.cfg.Load().Route(l.route)
	if rc == nil || rc.Security.SSL == nil {
		return c, l.node, l.bootstrap, rc != nil
	}
	tc := tls.Server(c, rc.Security.SSL.TLS())
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		g.log.Info("client TLS handshake failed", "route", l.route, "client", c.RemoteAddr().String(), "err", err)
		return c, 0, false, false
	}
	if !rc.HostStrategy() {
		return tc, l.node, l.bootstrap, true
	}
	name := tc.ConnectionState().ServerName
	node, bootstrap, ok := rc.ServerName(name)
	if !ok {
		g.log.Warn("client asked for a server name that is neither the route's endpoint host nor a broker of its pattern",
			"route", l.route, "client", c.RemoteAddr().String(), "server_name", name, "pattern", rc.BrokerIdentificationStrategy.Pattern)
	}
	return tc, node, bootstrap, ok
}

// connect opens the session for a new client connection. While the route's
// cluster cannot be reached the connection is held, up to the configured
// wait, and tried again at once when the route is switched: a client whose
// cluster died then sees a slow connection rather than an error, and
// carries on as soon as the agents switch the route, without the metadata
// back-off an error costs it.
func (g *Gateway) connect(l *listener, c net.Conn, node int32, bootstrap bool) (*session, *Route) {
	cfg := g.cfg.Load()
	give := time.NewTimer(cfg.UpstreamWait())
	defer give.Stop()
	for {
		r := l.rs.route.Load()
		if r == nil { // the route was removed
			return nil, nil
		}
		switched := l.rs.switchedCh()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := newSession(ctx, r, c, node, bootstrap, cfg.MaxFrameBytes(), g.log.With("route", r.Name, "domain", r.Domain))
		cancel()
		if err == nil {
			return s, r
		}
		if l.rs.warnUnreachable() {
			g.log.Warn("cluster unreachable; holding client connections until it answers or the route is switched",
				"route", r.Name, "domain", r.Domain, "wait", cfg.UpstreamWait(), "err", err)
			g.emit(&Holding{At: time.Now(), Route: r.Name, Domain: r.Domain, Wait: cfg.UpstreamWait(), Err: err})
		}
		select {
		case <-switched:
		case <-time.After(250 * time.Millisecond):
		case <-give.C:
			return nil, nil
		case <-g.stop:
			return nil, nil
		}
	}
}

// Close stops accepting, drains every session and waits for all of the
// gateway's goroutines.
func (g *Gateway) Close(ctx context.Context) error {
	g.mu.Lock()
	if !g.closed {
		close(g.stop)
	}
	g.closed = true
	g.ready.Store(false)
	for port, l := range g.listeners {
		l.ln.Close()
		delete(g.listeners, port)
	}
	deadline := time.Now().Add(5 * time.Second)
	if cfg := g.cfg.Load(); cfg != nil {
		deadline = time.Now().Add(cfg.DrainTimeout())
	}
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	g.rmu.RLock()
	routes := maps.Clone(g.routes)
	g.rmu.RUnlock()
	var wg sync.WaitGroup
	for _, rs := range routes {
		wg.Add(1)
		go func() { defer wg.Done(); rs.drain(deadline, nil) }()
	}
	wg.Wait()
	for _, rs := range routes {
		if r := rs.route.Load(); r != nil {
			r.close()
		}
	}
	g.mu.Unlock()
	g.wg.Wait()
	return nil
}

// Status reports what each route serves.
func (g *Gateway) Status() []adminapi.RouteStatus {
	out := []adminapi.RouteStatus{}
	cfg := g.cfg.Load()
	if cfg == nil {
		return out
	}
	g.rmu.RLock()
	defer g.rmu.RUnlock()
	for _, rc := range cfg.Routes {
		rs := g.routes[rc.Name]
		if rs == nil {
			continue
		}
		r := rs.route.Load()
		rs.mu.Lock()
		n := len(rs.sessions)
		rs.mu.Unlock()
		st := adminapi.RouteStatus{
			Name: r.Name, Endpoint: r.Endpoint, Domain: r.Domain, BootstrapServerID: r.BootstrapServerID,
			ClusterID: r.ClusterID(), ConfigEpoch: r.Epoch, Connections: n,
		}
		if until := r.pause.pausedUntil(); !until.IsZero() {
			st.ProducePausedUntil = &until
		}
		st.Lease = r.fence.status(r.Epoch)
		out = append(out, st)
	}
	return out
}
