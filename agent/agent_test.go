package agent_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/agent"
	"github.com/turnout/turnout/internal/crashable"
	"github.com/turnout/turnout/internal/testnet"
	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy"
	"github.com/turnout/turnout/proxy/config"
)

const (
	route   = "switchover-route"
	primary = "kafka1-domain"
	standby = "kafka2-domain"
	topic   = "orders"
)

// harness is two kfake clusters, a gateway in front of them, and three
// agents in this process, each with its own Raft node, data and HTTP API.
type harness struct {
	t        *testing.T
	dir      string
	clusters [2]*kfake.Cluster
	addrs    [2][]string // each cluster's, known after it is closed
	gwPath   string
	polPath  string
	signal   string
	gwPort   int
	gw       *proxy.Gateway
	gwAdmin  *httptest.Server
	peers    map[string]string
	agents   map[string]*runningAgent
	// dial gives each agent's dialer, so a test can blind one agent.
	dial  map[string]agent.Dialer
	conns [2]*crashable.Set
	// configure, when set, adds to each agent's configuration.
	configure func(*agent.Config)
}

// kill stops cluster i as a crash would: every connection ends.
func (h *harness) kill(i int) {
	h.conns[i].Crash()
	h.clusters[i].Close()
}

type runningAgent struct {
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan error
}

type policyOpts struct {
	interval      time.Duration
	maxLag        int64
	mode          string
	cooldown      time.Duration
	plannedPause  time.Duration
	lease         string // fencing.lease; the harness's default is short, for quick fencing
	gatewayAdmin  string // defaults to the harness gateway
	gatewayAuth   string // more keys of gw-1, YAML
	gatewayExtras string // more gateways, YAML list items
}

func newHarness(t *testing.T, po policyOpts) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), agents: map[string]*runningAgent{}, dial: map[string]agent.Dialer{}}
	for i := range h.clusters {
		h.startCluster(i, nil)
	}
	h.gwPath = filepath.Join(h.dir, "gateway.yaml")
	h.polPath = filepath.Join(h.dir, "policy.yaml")
	h.signal = filepath.Join(h.dir, "signal")
	h.gwPort = testnet.FreePorts(t, 4)
	h.writeGatewayConfig(h.gwPath, h.gwPort)
	h.gw = proxy.New(h.gwPath, quietLogger(t, "gateway"), proxy.NewMetrics())
	if err := h.gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.gw.Close(context.Background()) })
	h.gwAdmin = httptest.NewServer(proxy.AdminHandler(h.gw, proxy.NewMetrics(), false))
	t.Cleanup(h.gwAdmin.Close)
	h.writePolicy(po)
	h.peers = map[string]string{}
	for _, id := range []string{"a1", "a2", "a3"} {
		h.peers[id] = "127.0.0.1:" + strconv.Itoa(testnet.FreePorts(t, 1))
	}
	return h
}

// startCluster starts cluster i (again, on its old ports if it had some).
func (h *harness) startCluster(i int, ports []int) {
	h.t.Helper()
	conns := &crashable.Set{}
	h.conns[i] = conns
	opts := []kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(3, topic), kfake.ClusterID(fmt.Sprintf("cluster-%d", i+1)),
		kfake.ListenFn(conns.Listen)}
	if ports != nil {
		opts = append(opts, kfake.Ports(ports...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(c.Close)
	h.clusters[i] = c
	h.addrs[i] = c.ListenAddrs()
}

// writeGatewayConfig writes a gateway config serving the route from the
// primary at epoch 0 on port.
func (h *harness) writeGatewayConfig(path string, port int) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "gateway:\n  name: test\n  streamingDomains:\n")
	for j, addrs := range h.addrs {
		fmt.Fprintf(&sb, "    - name: kafka%d-domain\n      kafkaCluster:\n        name: cluster-%d\n", j+1, j+1)
		fmt.Fprintf(&sb, "        bootstrapServers:\n          - id: plain\n            endpoint: %q\n", strings.Join(addrs, ","))
		fmt.Fprintf(&sb, "        nodeIdRanges: [{name: all, start: 0, end: 2}]\n")
	}
	fmt.Fprintf(&sb, "  routes:\n    - name: %s\n      endpoint: \"127.0.0.1:%d\"\n      bind: 127.0.0.1\n", route, port)
	fmt.Fprintf(&sb, "      streamingDomain:\n        name: %s\n        bootstrapServerId: plain\n", primary)
	fmt.Fprintf(&sb, "  limits:\n    drainTimeout: 1s\n")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) writePolicy(po policyOpts) {
	if po.interval == 0 {
		po.interval = 300 * time.Millisecond
	}
	if po.maxLag == 0 {
		po.maxLag = 10000
	}
	if po.mode == "" {
		po.mode = "offsets"
	}
	if po.cooldown == 0 {
		po.cooldown = time.Minute
	}
	if po.gatewayAdmin == "" {
		po.gatewayAdmin = h.gwAdmin.URL
	}
	if po.plannedPause == 0 {
		po.plannedPause = policy.DefaultPlannedPause
	}
	if po.lease == "" {
		po.lease = "2s"
	}
	yaml := fmt.Sprintf(`routes:
  - name: %s
    primary: %s
    standby: %s
probe:
  interval: %s
  timeout: 500ms
health:
  failuresToBreach: 3
  minBrokers: 1
failover:
  automatic: true
  maxLagRecords: %d
  cooldown: %s
  plannedPause: %s
replication:
  mode: %s
  topics: [%s]
gateways:
  - name: gw-1
    admin: %s
    timeout: 10s
%s%s
fencing:
  lease: %s
gatewayConfig: %s
signalFile: %s
`, route, primary, standby, po.interval, po.maxLag, po.cooldown, po.plannedPause, po.mode, topic, po.gatewayAdmin, po.gatewayAuth, po.gatewayExtras, po.lease, h.gwPath, h.signal)
	if err := os.WriteFile(h.polPath, []byte(yaml), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// start starts an agent, on its data dir from before if it ran already.
func (h *harness) start(id string) *agent.Agent {
	h.t.Helper()
	cfg := agent.Config{
		ID: id, PolicyFile: h.polPath, RaftAddr: h.peers[id], Peers: h.peers,
		DataDir: filepath.Join(h.dir, "data-"+id), Bootstrap: true, HTTPAddr: "127.0.0.1:0",
		Logger: quietLogger(h.t, id), Dial: h.dial[id],
	}
	if h.configure != nil {
		h.configure(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		h.t.Fatalf("agent %s: %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ra := &runningAgent{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { ra.done <- a.Run(ctx) }()
	h.agents[id] = ra
	h.t.Cleanup(func() { h.stop(id) })
	return a
}

func (h *harness) startAll() {
	for _, id := range []string{"a1", "a2", "a3"} {
		h.start(id)
	}
}

// stop stops an agent (as a kill would: its Raft node goes away).
func (h *harness) stop(id string) {
	ra := h.agents[id]
	if ra == nil {
		return
	}
	ra.cancel()
	if err := <-ra.done; err != nil {
		h.t.Errorf("agent %s stopped with %v", id, err)
	}
	delete(h.agents, id)
}

func (h *harness) status(id string) agent.Status {
	return h.agents[id].a.Status()
}

// leader waits until the running agents agree on a leader and returns it.
func (h *harness) leader(ctx context.Context) string {
	h.t.Helper()
	var leader string
	waitFor(h.t, ctx, "the agents agree on a leader", func() bool {
		leader = ""
		for _, ra := range h.agents {
			s := ra.a.Status()
			if s.Leader == "" || (leader != "" && s.Leader != leader) {
				return false
			}
			leader = s.Leader
		}
		_, running := h.agents[leader]
		return running
	})
	return leader
}

// routeLeader waits until the running agents agree on a leader and it has
// created the route, and returns it.
func (h *harness) routeLeader(ctx context.Context) string {
	h.t.Helper()
	leader := h.leader(ctx)
	waitFor(h.t, ctx, "the route exists", func() bool { return h.route(leader).Name == route })
	return leader
}

func (h *harness) route(id string) agent.RouteStatus {
	for _, r := range h.status(id).Routes {
		if r.Name == route {
			return r
		}
	}
	return agent.RouteStatus{}
}

// waitActive waits until every running agent sees the route on domain.
func (h *harness) waitActive(ctx context.Context, domain string) {
	h.t.Helper()
	waitFor(h.t, ctx, "every agent sees the route on "+domain, func() bool {
		for id := range h.agents {
			if r := h.route(id); r.ActiveDomain != domain || r.State != "serving" {
				return false
			}
		}
		return true
	})
}

func (h *harness) gatewayDomain() (string, int32) {
	h.t.Helper()
	cfg, err := config.Load(h.gwPath)
	if err != nil {
		h.t.Fatal(err)
	}
	r := cfg.Route(route)
	return r.StreamingDomain.Name, r.Epoch
}

func (h *harness) failover(ctx context.Context, id string, req agent.FailoverRequest) agent.Outcome {
	h.t.Helper()
	return h.agents[id].a.Failover(ctx, req)
}

// produceTo writes n records to partition 0 of a cluster directly, so that
// writing the same n to the other cluster is replicating them as an
// offset-preserving link would.
func produceTo(t *testing.T, c *kfake.Cluster, n int) {
	t.Helper()
	if err := produceN(c, n); err != nil {
		t.Fatal(err)
	}
}

func produceN(c *kfake.Cluster, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range n {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(strconv.Itoa(i))).FirstErr(); err != nil {
			return err
		}
	}
	return nil
}

// TestKillPrimaryFailsOver: cluster 1 dies; the agents agree, the route
// flips to cluster 2, the gateway config names cluster 2, and a producer
// through the gateway carries on. The time from the kill to the first
// acknowledged produce on cluster 2 is logged.
func TestKillPrimaryFailsOver(t *testing.T) {
	h := newHarness(t, policyOpts{})
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.leader(ctx)
	waitFor(t, ctx, "the leader measured the lag", func() bool { return h.status(leader).Lag[route].Known })

	producer, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:"+strconv.Itoa(h.gwPort)), kgo.DefaultProduceTopic(topic),
		kgo.RecordRetries(1000), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	if err := producer.ProduceSync(ctx, kgo.StringRecord("before")).FirstErr(); err != nil {
		t.Fatal(err)
	}

	killed := time.Now()
	h.kill(0)
	acked := make(chan time.Time, 1)
	go func() {
		// Each produce is tried until it is acknowledged; the first one
		// acknowledged after the kill is on cluster 2.
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			err := producer.ProduceSync(pctx, kgo.StringRecord("after")).FirstErr()
			pcancel()
			if err == nil {
				acked <- time.Now()
				return
			}
		}
	}()
	h.waitActive(ctx, standby)
	var first time.Time
	select {
	case first = <-acked:
	case <-ctx.Done():
		t.Fatal("no produce acknowledged after the failover")
	}
	t.Logf("kill -> first acknowledged produce on cluster 2: %v", first.Sub(killed))

	if d, epoch := h.gatewayDomain(); d != standby || epoch != 1 {
		t.Errorf("gateway config serves %s at epoch %d, want %s at 1", d, epoch, standby)
	}
	st := h.gw.Status()
	if st[0].Domain != standby || st[0].ClusterID != "cluster-2" {
		t.Errorf("gateway serves %+v, want cluster-2", st[0])
	}
	for id := range h.agents {
		r := h.route(id)
		if r.Flip == nil || r.Flip.Outcome != "done" || r.Flip.Manual || !slices.Contains(r.Flip.GatewaysDone, "gw-1") {
			t.Errorf("agent %s reports the flip as %+v", id, r.Flip)
		}
	}
	// The record is on cluster 2.
	direct, err := kgo.NewClient(kgo.SeedBrokers(h.clusters[1].ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	found := false
	waitFor(t, ctx, "the record produced after the failover is on cluster 2", func() bool {
		fctx, fcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer fcancel()
		direct.PollFetches(fctx).EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == "after" })
		return found
	})
}

// TestOneBlindAgentDoesNotFailOver: one agent cannot reach cluster 1 at all;
// the others can. The leader sees the breach reported by one agent only and
// does not fail over.
func TestOneBlindAgentDoesNotFailOver(t *testing.T) {
	h := newHarness(t, policyOpts{})
	blocked := map[string]bool{}
	for _, a := range h.clusters[0].ListenAddrs() {
		blocked[a] = true
	}
	h.dial["a3"] = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if blocked[addr] {
			return nil, errors.New("blocked for this test: a3 is cut off from cluster 1")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.routeLeader(ctx)
	waitFor(t, ctx, "a3's breach of cluster 1 reaches the leader", func() bool {
		v := h.status(leader).Domain[primary].ByAgent["a3"]
		return v.ConsecutiveFailures >= 6 // twice the breach count
	})
	r := h.route(leader)
	if r.ActiveDomain != primary || r.Epoch != 0 || r.Decision != policy.CodeNoQuorum || !strings.Contains(r.Reason, "a3") {
		t.Fatalf("with one blind agent the route is %+v, want %s at epoch 0, decision no-quorum naming a3", r, primary)
	}
	waitFor(t, ctx, "status says cluster 1 is healthy, as a quorum of agents sees it", func() bool {
		return h.status(leader).Domain[primary].Healthy
	})
}

// TestFlappingPrimaryDoesNotFailOver: cluster 1 fails every probe for one
// interval less than the breach count, then recovers, several times.
func TestFlappingPrimaryDoesNotFailOver(t *testing.T) {
	h := newHarness(t, policyOpts{})
	var mu sync.Mutex
	down := false
	h.clusters[0].ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		h.clusters[0].KeepControl()
		mu.Lock()
		defer mu.Unlock()
		if down {
			return nil, errors.New("flapping"), true
		}
		return nil, nil, false
	})
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	leader := h.leader(ctx)
	maxFailures := 0
	for range 4 {
		mu.Lock()
		down = true
		mu.Unlock()
		waitFor(t, ctx, "a quorum of agents sees 2 consecutive failures", func() bool {
			n := 0
			for _, v := range h.status(leader).Domain[primary].ByAgent {
				maxFailures = max(maxFailures, v.ConsecutiveFailures)
				if v.ConsecutiveFailures >= 2 {
					n++
				}
			}
			return n >= 2
		})
		mu.Lock()
		down = false
		mu.Unlock()
		waitFor(t, ctx, "every agent sees cluster 1 healthy again", func() bool {
			for _, v := range h.status(leader).Domain[primary].ByAgent {
				if !v.Healthy {
					return false
				}
			}
			return true
		})
	}
	if r := h.route(leader); r.ActiveDomain != primary || r.Epoch != 0 {
		t.Fatalf("after flapping (up to %d consecutive failures) the route is %+v; want it on %s", maxFailures, r, primary)
	}
	if maxFailures >= 3 {
		t.Logf("an agent saw %d consecutive failures, but never a quorum at once", maxFailures)
	}
}

// TestLagBlocksFailoverUntilForced: cluster 2 lacks records; with cluster 1
// gone the leader does not fail over and says why; a forced manual failover
// does.
func TestLagBlocksFailoverUntilForced(t *testing.T) {
	h := newHarness(t, policyOpts{maxLag: 10})
	produceTo(t, h.clusters[0], 50)
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.leader(ctx)
	waitFor(t, ctx, "the leader measured a lag of 50", func() bool {
		l := h.status(leader).Lag[route]
		return l.Known && l.Records == 50
	})
	h.kill(0)
	waitFor(t, ctx, "the decision says the lag blocks the failover", func() bool {
		r := h.route(leader)
		return r.Decision == policy.CodeLagTooHigh
	})
	if r := h.route(leader); r.ActiveDomain != primary || !strings.Contains(r.Reason, "50") {
		t.Fatalf("route %+v; want it on %s with a reason naming the lag of 50", r, primary)
	}
	// Unforced, a manual failover waits for the lag to come down.
	uctx, ucancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	o := h.failover(uctx, leader, agent.FailoverRequest{})
	ucancel()
	if o.OK || o.Code != "canceled" {
		t.Fatalf("unforced failover with a lag of 50 answered %+v; want it still waiting", o)
	}
	if r := h.route(leader); r.ActiveDomain != primary {
		t.Fatalf("an unforced failover flipped the route despite the lag: %+v", r)
	}
	o = h.failover(ctx, leader, agent.FailoverRequest{Force: true})
	if !o.OK {
		t.Fatalf("forced failover: %+v", o)
	}
	h.waitActive(ctx, standby)
}

// waitFile waits until a file exists and returns what it holds.
func waitFile(t *testing.T, ctx context.Context, path string) []byte {
	t.Helper()
	var data []byte
	waitFor(t, ctx, path+" is written", func() bool {
		var err error
		data, err = os.ReadFile(path)
		return err == nil
	})
	return data
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-tick.C:
		}
	}
}

func quietLogger(t *testing.T, name string) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("who", name)
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestLeaderDiesMidRunbook: the leader commits a flip and writes the gateway
// config, then dies while it restarts the gateway; the new leader finishes
// the same flip.
func TestLeaderDiesMidRunbook(t *testing.T) {
	h, held := newSlowHarness(t)
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := h.leader(ctx)
	waitFor(t, ctx, "the leader measured the lag", func() bool { return h.status(first).Lag[route].Known })

	h.kill(0)
	held(ctx)
	if r := h.route(first); r.State != "switching" || r.Flip == nil || !r.Flip.ConfigWritten {
		t.Fatalf("while the gateway restart hangs the route is %+v; want switching with the config written", r)
	}
	stopped := time.Now()
	h.stop(first)
	next := h.leader(ctx)
	t.Logf("leader %s stopped; %s leads after %v", first, next, time.Since(stopped))
	if next == first {
		t.Fatalf("leader %s still leads after it stopped", first)
	}
	h.waitActive(ctx, standby)
	r := h.route(next)
	if r.Epoch != 1 || r.Flip.Leader != first || r.Flip.Outcome != "done" || !slices.Contains(r.Flip.GatewaysDone, "gw-1") {
		t.Fatalf("after the new leader %s finished: %+v", next, r.Flip)
	}
	if st := h.gw.Status(); st[0].ClusterID != "cluster-2" || st[0].ConfigEpoch != 1 {
		t.Errorf("gateway serves %+v, want cluster-2 at epoch 1", st[0])
	}
}

// newSlowHarness is a harness whose gateway's admin API is behind a door
// that keeps the first restart waiting, as a slow gateway would, until the
// caller goes away; held waits until that restart has arrived. Leases,
// pauses and fences go through.
func newSlowHarness(t *testing.T) (h *harness, held func(context.Context)) {
	var once sync.Once
	hold := make(chan struct{})
	arrived := make(chan struct{})
	door := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/restart" {
			first := false
			once.Do(func() { first = true })
			if first {
				close(arrived)
				select {
				case <-hold:
				case <-r.Context().Done():
				}
				http.Error(w, "the leader went away", http.StatusServiceUnavailable)
				return
			}
		}
		h.gwAdmin.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(door.Close)
	t.Cleanup(func() { close(hold) })
	return newHarness(t, policyOpts{gatewayAdmin: door.URL}), func(ctx context.Context) {
		t.Helper()
		select {
		case <-arrived:
		case <-ctx.Done():
			t.Fatal("the leader never restarted the gateway")
		}
	}
}

// TestStaleFlipIsRefused: a flip posted to the leader's /v1/apply, as a
// stale leader or anyone with the token could, is refused whatever its
// epoch, even the route's next, and changes nothing; the epoch rule a flip
// the leader commits must pass is consensus's (StartFlip). The gateway
// config refuses an older epoch too.
func TestStaleFlipIsRefused(t *testing.T) {
	h := newHarness(t, policyOpts{})
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader := h.routeLeader(ctx)
	for _, epoch := range []int32{0, 1, 2} {
		body := fmt.Sprintf(`{"type":"StartFlip","cmd":{"route":%q,"from":%q,"to":%q,"epoch":%d,"reason":"stale leader","at":"2020-01-01T00:00:00Z","leader":"old"}}`,
			route, primary, standby, epoch)
		if code, msg := postApply(t, h.agents[leader].a.HTTPAddr(), body); code != http.StatusForbidden || !strings.Contains(msg, "not a consensus.StartFlip") {
			t.Errorf("a flip at epoch %d answered %d %s; want 403 naming the command", epoch, code, msg)
		}
	}
	if r := h.route(leader); r.ActiveDomain != primary || r.Epoch != 0 {
		t.Fatalf("after flips posted to /v1/apply the route is %+v", r)
	}
	// The gateway config guards itself the same way.
	if _, err := config.SwitchRoute(h.gwPath, route, standby, 0); !errors.Is(err, config.ErrStaleEpoch) {
		t.Fatalf("a write at the file's own epoch for another domain: %v, want ErrStaleEpoch", err)
	}
	if _, err := config.SwitchRoute(h.gwPath, route, primary, -1); !errors.Is(err, config.ErrStaleEpoch) {
		t.Fatalf("a write with an older epoch than the file's: %v, want ErrStaleEpoch", err)
	}
}

func postApply(t *testing.T, addr, body string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/v1/apply", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

// TestFastClockCannotKeepReportsCurrent: a3, not running, had a clock an
// hour fast. Its breach view and its lag of 0, dated by that clock, are
// refused; dated a few seconds ahead, they are taken as of when the leader
// received them, so they age like any other.
func TestFastClockCannotKeepReportsCurrent(t *testing.T) {
	h := newHarness(t, policyOpts{})
	h.start("a1")
	h.start("a2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader := h.leader(ctx)
	waitFor(t, ctx, "the route exists", func() bool { return h.route(leader).Name == route })
	addr := h.agents[leader].a.HTTPAddr()
	view := func(at time.Time) string {
		return fmt.Sprintf(`{"type":"ReportView","cmd":{"agent":"a3","domain":%q,"consecutiveFailures":9,"at":%q}}`, primary, at.Format(time.RFC3339Nano))
	}
	lag := func(at time.Time) string {
		return fmt.Sprintf(`{"type":"ReportLag","cmd":{"agent":"a3","route":%q,"records":0,"known":true,"at":%q}}`, route, at.Format(time.RFC3339Nano))
	}
	for what, body := range map[string]string{"view": view(time.Now().Add(time.Hour)), "lag": lag(time.Now().Add(time.Hour))} {
		if code, msg := postApply(t, addr, body); code != http.StatusUnprocessableEntity || !strings.Contains(msg, "check NTP") {
			t.Errorf("a %s an hour ahead answered %d %s; want 422 naming the clocks", what, code, msg)
		}
	}
	if v, ok := h.status(leader).Domain[primary].ByAgent["a3"]; ok {
		t.Fatalf("a3's view from an hour ahead is recorded: %+v", v)
	}
	for what, body := range map[string]string{"view": view(time.Now().Add(5 * time.Second)), "lag": lag(time.Now().Add(5 * time.Second))} {
		if code, msg := postApply(t, addr, body); code != http.StatusNoContent {
			t.Fatalf("a %s 5s ahead answered %d %s; want 204", what, code, msg)
		}
	}
	st := h.status(leader)
	if v := st.Domain[primary].ByAgent["a3"]; v.ConsecutiveFailures != 9 || v.At.After(time.Now()) {
		t.Errorf("a3's view is %+v; want it dated no later than now", v)
	}
	// Every agent measures the lag too, so a3's may be replaced already;
	// no report is dated ahead of the leader's clock.
	if l := st.Lag[route]; l.At.After(time.Now()) {
		t.Errorf("the lag is %+v; want it dated no later than now", l)
	}
}

// TestNoAutomaticFailbackButSignalFile: after a failover, cluster 1 comes
// back; the agents do not fail back on their own, and a failback written to
// the signal file is carried out and answered in signal.done.
func TestNoAutomaticFailbackButSignalFile(t *testing.T) {
	h := newHarness(t, policyOpts{})
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.leader(ctx)
	waitFor(t, ctx, "the leader measured the lag", func() bool { return h.status(leader).Lag[route].Known })
	ports := h.ports(0)
	h.kill(0)
	h.waitActive(ctx, standby)

	h.startCluster(0, ports)
	waitFor(t, ctx, "every agent sees cluster 1 healthy again for 3 probes", func() bool {
		st := h.status(h.leader(ctx))
		healthy := 0
		for _, v := range st.Domain[primary].ByAgent {
			if v.Healthy && v.At.After(time.Now().Add(-time.Second)) {
				healthy++
			}
		}
		return healthy == 3 && h.route(st.ID).Decision == policy.CodeOK
	})
	if r := h.route(leader); r.ActiveDomain != standby || r.Epoch != 1 {
		t.Fatalf("the route moved by itself: %+v", r)
	}

	if err := os.WriteFile(h.signal, []byte("failback\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.waitActive(ctx, primary)
	done := waitFile(t, ctx, h.signal+".done")
	if !strings.Contains(string(done), "outcome: done") || !strings.Contains(string(done), "request: failback") {
		t.Errorf("signal.done says:\n%s", done)
	}
	if _, err := os.Stat(h.signal); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the signal file is still there: %v", err)
	}
	if d, epoch := h.gatewayDomain(); d != primary || epoch != 2 {
		t.Errorf("gateway config serves %s at epoch %d, want %s at 2", d, epoch, primary)
	}
	if r := h.route(leader); !r.Flip.Manual {
		t.Errorf("the failback is not recorded as manual: %+v", r.Flip)
	}
}

// TestBadSignalFile: a signal file that asks for nothing sensible is
// answered in signal.failed, and nothing moves.
func TestBadSignalFile(t *testing.T) {
	h := newHarness(t, policyOpts{})
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader := h.routeLeader(ctx)
	if err := os.WriteFile(h.signal, []byte("action: explode\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	failed := waitFile(t, ctx, h.signal+".failed")
	if !strings.Contains(string(failed), "outcome: failed") || !strings.Contains(string(failed), "explode") {
		t.Errorf("signal.failed says:\n%s", failed)
	}
	if r := h.route(leader); r.ActiveDomain != primary || r.Epoch != 0 {
		t.Errorf("a bad signal file moved the route: %+v", r)
	}

	// A request anyone could have written is refused, and says why; so is
	// a symbolic link, even to a file the agent's user owns.
	for _, tc := range []struct {
		what, why string
		put       func() error
	}{
		{"a world-writable signal file", "writable by every user", func() error {
			tmp := filepath.Join(h.dir, "signal.tmp")
			if err := os.WriteFile(tmp, []byte("failover\n"), 0o666); err != nil {
				return err
			}
			if err := os.Chmod(tmp, 0o666); err != nil { // past the umask
				return err
			}
			return os.Rename(tmp, h.signal)
		}},
		{"a symbolic link as the signal file", "symbolic link", func() error {
			target := filepath.Join(h.dir, "elsewhere")
			if err := os.WriteFile(target, []byte("failover\n"), 0o600); err != nil {
				return err
			}
			return os.Symlink(target, h.signal)
		}},
	} {
		os.Remove(h.signal + ".failed")
		if err := tc.put(); err != nil {
			t.Fatal(err)
		}
		failed = waitFile(t, ctx, h.signal+".failed")
		if !strings.Contains(string(failed), tc.why) {
			t.Errorf("%s was answered:\n%s", tc.what, failed)
		}
		if r := h.route(leader); r.ActiveDomain != primary || r.Epoch != 0 {
			t.Errorf("%s moved the route: %+v", tc.what, r)
		}
	}
}

// TestGatewayRestartFails: the second gateway in the policy does not come
// back; the runbook stops there and the status says which gateways serve the
// new cluster and what failed.
func TestGatewayRestartFails(t *testing.T) {
	for _, tt := range []struct {
		name  string
		retry time.Duration // the agents' GatewayRetry; 0 leaves it to a person
		// manual: the flip is a manual failover, which the person sends
		// again under its id.
		manual bool
	}{
		{"resumed by hand", 0, false},
		{"retried by the leader", 500 * time.Millisecond, false},
		{"manual failover sent again", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) { testGatewayRestartFails(t, tt.retry, tt.manual) })
	}
}

// testGatewayRestartFails: the second gateway does not answer, so the flip
// stops there and is reported; once it is back, the flip is finished by a
// person (turnout failover to the route's domain, or the failed failover
// sent again under its id: either finishes the switch, neither turns the
// route around) or by the leader's retry.
func testGatewayRestartFails(t *testing.T, retry time.Duration, manual bool) {
	deadAddr := "127.0.0.1:" + strconv.Itoa(testnet.FreePorts(t, 1))
	h := newHarness(t, policyOpts{gatewayExtras: fmt.Sprintf("  - name: gw-2\n    admin: http://%s\n    timeout: 1s\n", deadAddr)})
	h.configure = func(c *agent.Config) { c.GatewayRetry = cmp.Or(retry, time.Hour) }
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.leader(ctx)
	again := agent.FailoverRequest{To: standby}
	if manual {
		waitFor(t, ctx, "the route exists", func() bool { return h.route(leader).Name == route })
		again = agent.FailoverRequest{Force: true, ID: "q1"}
		if o := h.failover(ctx, leader, again); o.OK || o.Code != agent.CodeFailed || !strings.Contains(o.Message, "gw-2") {
			t.Fatalf("a manual failover stopped at gw-2 answered %+v", o)
		}
	} else {
		waitFor(t, ctx, "the leader measured the lag", func() bool { return h.status(leader).Lag[route].Known })
		h.kill(0)
	}
	waitFor(t, ctx, "the flip is reported failed", func() bool { return h.route(h.leader(ctx)).State == "failed" })
	r := h.route(h.leader(ctx))
	if r.ActiveDomain != standby || r.Flip.Outcome != "failed" || !strings.Contains(r.Flip.Error, "gw-2") ||
		!slices.Equal(r.Flip.GatewaysDone, []string{"gw-1"}) {
		t.Fatalf("failed flip reported as %+v", r.Flip)
	}
	if st := h.gw.Status(); st[0].ClusterID != "cluster-2" {
		t.Errorf("gw-1 serves %+v, want cluster-2", st[0])
	}

	// gw-2 comes back, still serving the old cluster from its own file.
	path2 := filepath.Join(h.dir, "gateway-2.yaml")
	h.writeGatewayConfig(path2, testnet.FreePorts(t, 4))
	gw2 := proxy.New(path2, quietLogger(t, "gw-2"), proxy.NewMetrics())
	if err := gw2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw2.Close(context.Background()) })
	ln, err := net.Listen("tcp", deadAddr)
	if err != nil {
		t.Fatal(err)
	}
	admin2 := &http.Server{Handler: proxy.AdminHandler(gw2, proxy.NewMetrics(), false)}
	go admin2.Serve(ln)
	t.Cleanup(func() { admin2.Close() })

	if retry == 0 {
		if o := h.failover(ctx, h.leader(ctx), again); !o.OK || o.Code != agent.CodeDone {
			t.Fatalf("failover %+v after the failed flip answered %+v; want it to restart the rest", again, o)
		}
		if now := h.route(h.leader(ctx)); now.ActiveDomain != standby || now.Epoch != r.Epoch {
			t.Fatalf("after the failed flip was finished the route is on %s at epoch %d; want %s at %d", now.ActiveDomain, now.Epoch, standby, r.Epoch)
		}
	}
	waitFor(t, ctx, "gw-2 serves cluster 2 at the flip's epoch", func() bool {
		st := gw2.Status()
		return st[0].ClusterID == "cluster-2" && st[0].ConfigEpoch == r.Epoch
	})
	waitFor(t, ctx, "the flip is reported done", func() bool {
		f := h.route(h.leader(ctx)).Flip
		return f != nil && f.Outcome == "done" && slices.Equal(f.GatewaysDone, []string{"gw-1", "gw-2"})
	})
}

// ports returns the ports cluster i listens on.
func (h *harness) ports(i int) []int {
	var ports []int
	for _, a := range h.clusters[i].ListenAddrs() {
		_, p, _ := net.SplitHostPort(a)
		n, _ := strconv.Atoi(p)
		ports = append(ports, n)
	}
	return ports
}
