package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/agent"
	"github.com/turnout/turnout/internal/testnet"
	"github.com/turnout/turnout/proxy"
)

// secondGateway is a second gateway on the route, serving the primary from
// a file of its own, its admin API behind a door a test can shut.
type secondGateway struct {
	gw      *proxy.Gateway
	metrics *proxy.Metrics
	port    int
	door    *httptest.Server
	shut    atomic.Bool
}

func (h *harness) secondGateway() *secondGateway {
	h.t.Helper()
	s := &secondGateway{metrics: proxy.NewMetrics(), port: testnet.FreePorts(h.t, 4)}
	path := filepath.Join(h.dir, "gateway-2.yaml")
	h.writeGatewayConfig(path, s.port)
	s.gw = proxy.New(path, quietLogger(h.t, "gw-2"), s.metrics)
	if err := s.gw.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { s.gw.Close(context.Background()) })
	admin := proxy.AdminHandler(s.gw, s.metrics, false)
	s.door = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.shut.Load() {
			panic(http.ErrAbortHandler) // the connection is cut, as to a dead admin endpoint
		}
		admin.ServeHTTP(w, r)
	}))
	h.t.Cleanup(s.door.Close)
	return s
}

func (s *secondGateway) policyEntry() string {
	return fmt.Sprintf("  - name: gw-2\n    admin: %s\n    timeout: 1s\n", s.door.URL)
}

func (s *secondGateway) client(t *testing.T) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:"+strconv.Itoa(s.port)), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// held is how many Produce requests the gateway has held.
func (s *secondGateway) held(t *testing.T) float64 {
	mfs, err := s.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "turnout_gateway_produce_held_total" {
			var n float64
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
			return n
		}
	}
	return 0
}

// TestPlannedSwitchNeedsEveryGatewayPaused: with replication caught up, a
// planned switch still does not flip while a gateway cannot pause its
// producers: they would keep writing to the cluster being left.
func TestPlannedSwitchNeedsEveryGatewayPaused(t *testing.T) {
	deadAddr := "127.0.0.1:" + strconv.Itoa(testnet.FreePorts(t, 1))
	h := newHarness(t, policyOpts{gatewayExtras: fmt.Sprintf("  - name: gw-2\n    admin: http://%s\n    timeout: 1s\n", deadAddr)})
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.leader(ctx)
	waitFor(t, ctx, "the leader measured no lag, and a quorum sees both clusters healthy", func() bool {
		st := h.status(leader)
		l := st.Lag[route]
		return l.Known && l.Records == 0 && st.Domain[primary].Healthy && st.Domain[standby].Healthy
	})
	o := h.failover(ctx, leader, agent.FailoverRequest{To: standby})
	if o.OK || !strings.Contains(o.Message, "gw-2") {
		t.Errorf("a planned failover with gw-2 unpausable answered %+v; want it refused naming gw-2", o)
	}
	if r := h.route(leader); r.ActiveDomain != primary || r.Epoch != 0 {
		t.Errorf("the route moved to %s at epoch %d; want it left on %s", r.ActiveDomain, r.Epoch, primary)
	}
	if st := h.gw.Status(); st[0].Domain != primary || st[0].ProducePausedUntil != nil {
		t.Errorf("gw-1 serves %+v; want %s with producers resumed", st[0], primary)
	}
}

// TestForcedFlipFencesUnreachableGateway: gw-2's admin endpoint is cut while
// its clients write through it, and a forced failover stops at gw-2. No
// record is acknowledged through gw-2 once gw-1 was told to switch: its
// lease lapsed first, and it holds its producers until it is switched; then
// what it held goes to the new cluster.
func TestForcedFlipFencesUnreachableGateway(t *testing.T) {
	var restartAt atomic.Pointer[time.Time]
	var h *harness
	door1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/restart" {
			now := time.Now()
			restartAt.CompareAndSwap(nil, &now)
		}
		h.gwAdmin.Config.Handler.ServeHTTP(w, r)
	}))
	defer door1.Close()
	h = newHarness(t, policyOpts{gatewayAdmin: door1.URL})
	gw2 := h.secondGateway()
	h.writePolicy(policyOpts{gatewayAdmin: door1.URL, gatewayExtras: gw2.policyEntry()})
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.leader(ctx)
	waitFor(t, ctx, "the leader measured the lag and leased the route to gw-2", func() bool {
		l := gw2.gw.Status()[0].Lease
		return h.status(leader).Lag[route].Known && l != nil && l.Live
	})

	// gw-2's clients write on, one record after another.
	cl := gw2.client(t)
	var mu sync.Mutex
	var acked []time.Time
	pctx, stopProducing := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; pctx.Err() == nil; i++ {
			if err := cl.ProduceSync(pctx, kgo.StringRecord("via gw-2 "+strconv.Itoa(i))).FirstErr(); err == nil {
				mu.Lock()
				acked = append(acked, time.Now())
				mu.Unlock()
			}
		}
	}()
	defer func() { stopProducing(); wg.Wait() }()
	waitFor(t, ctx, "gw-2 forwards its clients' records", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) > 0 })

	gw2.shut.Store(true)
	o := h.failover(ctx, leader, agent.FailoverRequest{To: standby, Force: true})
	if o.OK || !strings.Contains(o.Message, "gw-2") {
		t.Fatalf("the forced failover answered %+v; want it stopped at gw-2", o)
	}
	if st := h.gw.Status(); st[0].ClusterID != "cluster-2" {
		t.Fatalf("gw-1 serves %+v, want cluster-2", st[0])
	}
	waitFor(t, ctx, "gw-2 holds its producers", func() bool { return gw2.held(t) >= 1 })
	n1 := records(t, h.clusters[0])
	mu.Lock()
	last := acked[len(acked)-1]
	mu.Unlock()
	if at := restartAt.Load(); at == nil || !last.Before(*at) {
		t.Errorf("gw-2 acknowledged a record at %v, after gw-1 was told to switch at %v", last, at)
	}

	gw2.shut.Store(false)
	if o := h.failover(ctx, h.leader(ctx), agent.FailoverRequest{To: standby}); !o.OK {
		t.Fatalf("with gw-2 back, the failover answered %+v; want the flip finished", o)
	}
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	waitFor(t, ctx, "gw-2's clients write to cluster 2", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) > before })
	if n := records(t, h.clusters[0]); n != n1 {
		t.Errorf("cluster 1 took %d more records after gw-2 was fenced", n-n1)
	}
	if n := records(t, h.clusters[1]); n == 0 {
		t.Errorf("cluster 2 has none of gw-2's records")
	}
}

// TestFlipGoesOnWithoutTheLeadersConfigFile: the leader cannot write its
// gateway config, which only gateways restarted by a command read; a
// gateway with an admin URL is sent the route and switched all the same.
func TestFlipGoesOnWithoutTheLeadersConfigFile(t *testing.T) {
	h := newHarness(t, policyOpts{})
	agentsFile := filepath.Join(h.dir, "agents", "gateway.yaml")
	if err := os.MkdirAll(filepath.Dir(agentsFile), 0o755); err != nil {
		t.Fatal(err)
	}
	h.writeGatewayConfig(agentsFile, h.gwPort)
	h.configure = func(c *agent.Config) { c.GatewayConfig = agentsFile }
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.leader(ctx)
	waitFor(t, ctx, "the leader measured the lag", func() bool { return h.status(leader).Lag[route].Known })
	if err := os.RemoveAll(filepath.Dir(agentsFile)); err != nil {
		t.Fatal(err)
	}
	h.kill(0)
	waitFor(t, ctx, "the flip to end", func() bool {
		f := h.route(h.leader(ctx)).Flip
		return f != nil && f.Outcome != ""
	})
	if f := h.route(h.leader(ctx)).Flip; f.Outcome != "done" || f.ConfigWritten {
		t.Errorf("with the agents' file gone the flip ended %+v; want done, the file not written", f)
	}
	if st := h.gw.Status(); st[0].ClusterID != "cluster-2" {
		t.Errorf("gw-1 serves %+v, want cluster-2", st[0])
	}
}
