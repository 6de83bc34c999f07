// Package agent is a Turnout agent: it probes every domain, shares what it
// sees through the Raft group, and, while it leads, decides by the policy on
// a quorum of agents' views and carries out failovers: commit the flip, write
// the gateway config, restart the gateways one by one.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/consensus"
	"github.com/turnout/turnout/internal/ctlsec"
	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/config"
)

// Config is one agent's identity and files.
type Config struct {
	ID         string
	PolicyFile string
	RaftAddr   string
	Peers      map[string]string // id -> raft address, this agent included
	DataDir    string
	// Bootstrap forms a new Raft group if DataDir is empty (see
	// consensus.Config.Bootstrap): only when the group first forms.
	Bootstrap bool
	HTTPAddr  string
	// AdvertiseHTTP is the HTTP address other agents use to reach this
	// one; default HTTPAddr, or, when that listens on all interfaces, the
	// Raft address's host with HTTPAddr's port.
	AdvertiseHTTP string
	// GatewayConfig and SignalFile override the policy's paths when set.
	GatewayConfig string
	SignalFile    string
	Logger        *slog.Logger
	// Dial, when set, is used for every connection to a cluster.
	Dial Dialer
	// GatewayRetry is how long after a flip stopped at a gateway the
	// leader tries the gateways not restarted again; default 30s.
	GatewayRetry time.Duration

	// TokenFile holds the bearer token the HTTP API needs for calls that
	// change state (/failover, /v1/apply), and that this agent sends to
	// the leader when it hands a call on: the agents share one token.
	// Required when HTTPAddr is not a loopback address.
	TokenFile string
	// HTTPCertFile and HTTPKeyFile (PEM) serve the HTTP API over HTTPS.
	HTTPCertFile, HTTPKeyFile string
	// CAFile (PEM) is the CA to trust for the other agents' HTTPS; empty
	// means the system's roots.
	CAFile string
	// RaftTLS, when set, secures Raft with mutual TLS (see ctlsec.RaftTLS).
	RaftTLS *tls.Config
	// FaultClockOffset sets the clock this agent dates the reports it
	// hands the leader by that far off the real one, as a follower with a
	// wrong clock would: for drills only (TURNOUT_FAULT_CLOCK_OFFSET).
	FaultClockOffset time.Duration
	// OnEvent, when set, is told what the agent does (see Event). It must
	// not block.
	OnEvent func(Event)
}

// Agent is a running agent.
type Agent struct {
	cfg           Config
	policy        *policy.Policy
	gatewayConfig string
	signalFile    string
	log           *slog.Logger
	metrics       *metrics
	node          *consensus.Node
	clusters      *clusters
	prober        *prober
	lagger        *lagger
	http          *http.Server
	httpLn        net.Listener
	// client calls the other agents' HTTP APIs, with the token.
	client *http.Client
	// gatewayClients call the gateways' admin APIs, by gateway name.
	gatewayClients map[string]*http.Client

	requests chan *manualRequest // manual requests for the leader loop
	// leased are the gateways that took a route lease from this agent:
	// only a gateway that has been leased (or requires leases from start)
	// holds its producers when its lease lapses.
	leased nameSet
	// quiescing are the routes this leader is pausing for a planned switch.
	quiescing nameSet
	// caughtUp is the Raft term in which this agent, leading, completed a
	// Barrier: from then its state holds every flip committed before.
	caughtUp atomic.Uint64

	mu        sync.Mutex
	decisions map[string]policy.Decision // the leader's latest, by route
	decidedAt map[string]time.Time       // when each was last logged
	pending   map[string]*manualRequest  // manual requests in flight, by id
}

// New reads the policy and the gateway config, opens the Raft node and the
// HTTP listener. Run starts the agent's work.
func New(cfg Config) (*Agent, error) {
	pol, err := policy.Load(cfg.PolicyFile)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:           cfg,
		policy:        pol,
		gatewayConfig: cmpOr(cfg.GatewayConfig, pol.GatewayConfig),
		signalFile:    cmpOr(cfg.SignalFile, pol.SignalFile),
		log:           cfg.Logger.With("agent", cfg.ID),
		requests:      make(chan *manualRequest),
		decisions:     map[string]policy.Decision{},
		decidedAt:     map[string]time.Time{},
		pending:       map[string]*manualRequest{},
	}
	if a.gatewayConfig == "" {
		return nil, fmt.Errorf("%s: no gatewayConfig, and no --gateway-config given", pol.File)
	}
	gw, err := config.LoadClusters(a.gatewayConfig)
	if err != nil {
		return nil, err
	}
	servers, err := CheckConfigs(pol, gw)
	if err != nil {
		return nil, err
	}
	a.clusters = &clusters{servers: servers, dial: cfg.Dial, timeout: pol.Probe.Timeout, clients: map[string]*kgo.Client{}}
	a.prober = &prober{agent: cfg.ID, policy: pol, clusters: a.clusters, failures: map[string]int{}, clusterIDs: map[string]string{}}
	a.lagger = &lagger{policy: pol, clusters: a.clusters, log: a.log, mm2: map[string]*mm2Progress{}, sources: map[string]source{}}
	a.metrics = newMetrics(cfg.ID)

	if a.client, err = ctlsec.NewClient(cfg.TokenFile, cfg.CAFile); err != nil {
		return nil, fmt.Errorf("agent HTTP client: %w", err)
	}
	if a.gatewayClients, err = gatewayClients(pol); err != nil {
		return nil, err
	}
	sec := ctlsec.Server{TokenFile: cfg.TokenFile, CertFile: cfg.HTTPCertFile, KeyFile: cfg.HTTPKeyFile,
		TokenSetting: "--token-file (TURNOUT_TOKEN_FILE)"}
	ln, token, err := sec.Listen(cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("agent HTTP listener: %w", err)
	}
	a.httpLn = ln
	a.node, err = consensus.Open(consensus.Config{
		ID: cfg.ID, Addr: cfg.RaftAddr, Peers: cfg.Peers, DataDir: cfg.DataDir, Bootstrap: cfg.Bootstrap, Logger: a.log, TLS: cfg.RaftTLS,
	})
	if err != nil {
		a.httpLn.Close()
		return nil, err
	}
	a.http = ctlsec.AdminLimits.Server(ctlsec.Guard(token, a.handler()))
	return a, nil
}

// CheckConfigs checks that the policy and the gateway config agree, and
// returns the bootstrap server of every domain the policy's routes use: the
// one the route's bootstrap server id names, else the domain's first. The
// agents reach each cluster through it, with its TLS and SASL settings.
func CheckConfigs(pol *policy.Policy, gw *config.Gateway) (map[string]*config.BootstrapServer, error) {
	servers := map[string]*config.BootstrapServer{}
	for _, r := range pol.Routes {
		gr := gw.Route(r.Name)
		if gr == nil {
			return nil, fmt.Errorf("%s: route %s of the policy is not in %s", pol.File, r.Name, gw.File)
		}
		if gr.StreamingDomain.Name != r.Primary && gr.StreamingDomain.Name != r.Standby {
			return nil, fmt.Errorf("%s: route %s serves %s, which is neither its primary nor its standby in %s",
				gw.File, r.Name, gr.StreamingDomain.Name, pol.File)
		}
		for _, name := range []string{r.Primary, r.Standby} {
			d := gw.Domain(name)
			if d == nil {
				return nil, fmt.Errorf("%s: route %s names domain %s, which %s lacks", pol.File, r.Name, name, gw.File)
			}
			bs := d.BootstrapServer(gr.StreamingDomain.BootstrapServerID)
			if bs == nil {
				bs = &d.KafkaCluster.BootstrapServers[0]
			}
			servers[name] = bs
		}
	}
	return servers, nil
}

// HTTPAddr is the address the agent's HTTP API listens on.
func (a *Agent) HTTPAddr() string { return a.httpLn.Addr().String() }

// advertisedHTTP is how the other agents reach this one's HTTP API: an
// address, or an https:// URL when the API serves TLS (so a caller need not
// know how the leader is configured).
func (a *Agent) advertisedHTTP() string {
	addr := a.cfg.AdvertiseHTTP
	if addr == "" {
		host, port, _ := net.SplitHostPort(a.HTTPAddr())
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			if raftHost, _, err := net.SplitHostPort(a.cfg.Peers[a.cfg.ID]); err == nil {
				host = raftHost
			}
		}
		addr = net.JoinHostPort(host, port)
	}
	if a.cfg.HTTPCertFile != "" && !strings.Contains(addr, "://") {
		return "https://" + addr
	}
	return addr
}

// Run works until ctx ends, then stops every goroutine it started and closes
// the Raft node.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	start := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	start("http", func(ctx context.Context) error {
		go func() { <-ctx.Done(); a.http.Close() }()
		if err := a.http.Serve(a.httpLn); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	start("probes", a.probeLoop)
	start("leader", a.leaderLoop)
	if a.policy.Fencing.Lease > 0 {
		start("route leases", a.leaseLoop)
	}
	if a.signalFile != "" {
		start("signal file", a.watchSignal)
	}
	a.log.Info("agent running", "raft", a.cfg.RaftAddr, "http", a.HTTPAddr(), "policy", a.policy.File,
		"gateway_config", a.gatewayConfig, "signal_file", a.signalFile,
		"bootstrapped", a.node.Bootstrapped()) // false: it rejoined from its data dir, or waits to be sent the state
	<-ctx.Done()
	wg.Wait()
	a.lagger.close()
	a.clusters.close()
	err := a.node.Close()
	select {
	case e := <-errc:
		return e
	default:
		return err
	}
}

// probeLoop probes every domain on the policy's interval, shares each view
// through the Raft group, and measures the replication lag.
func (a *Agent) probeLoop(ctx context.Context) error {
	tick := time.NewTicker(a.policy.Probe.Interval)
	defer tick.Stop()
	for {
		var wg sync.WaitGroup
		for domain := range a.clusters.servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := a.prober.probe(ctx, domain)
				if ctx.Err() != nil {
					return
				}
				a.metrics.observeProbe(v)
				if err := a.apply(ctx, consensus.ReportView{View: v}); err != nil {
					a.log.Debug("view not shared", "domain", domain, "err", err)
				}
			}()
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.measureLag(ctx) }()
		wg.Wait()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
