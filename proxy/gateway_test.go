package proxy_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
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

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/internal/testnet"
	"github.com/turnout/turnout/proxy"
	"github.com/turnout/turnout/proxy/adminapi"
	"github.com/turnout/turnout/proxy/config"
)

const topic = "orders"

// bed is two kfake clusters and a gateway serving one route in front of them.
type bed struct {
	t        *testing.T
	clusters [2]*kfake.Cluster
	path     string
	port     int // the route's bootstrap port
	gw       *proxy.Gateway
	admin    *httptest.Server
	metrics  *proxy.Metrics
	setup    bedSetup
}

// bedSetup varies a bed: options for each cluster, the route's security
// settings and more gateway settings, as YAML indented for their place.
type bedSetup struct {
	clusterOpts [2][]kfake.Opt
	security    string // under the route
	bootstrap   string // under each cluster's bootstrap server
	gateway     string // under gateway
	log         *logBuffer
	dir         string // the swap bed's users file, template and secrets
}

// logBuffer keeps what the gateway logs, at debug level.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) Len() int { return len(l.String()) }

func newBed(t *testing.T) *bed { return newBedWith(t, bedSetup{}) }

func newBedWith(t *testing.T, setup bedSetup) *bed {
	t.Helper()
	b := &bed{t: t, path: filepath.Join(t.TempDir(), "gateway.yaml"), setup: setup}
	for i := range b.clusters {
		c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(3, topic),
			kfake.ClusterID(fmt.Sprintf("cluster-%d", i+1))}, setup.clusterOpts[i]...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		b.clusters[i] = c
	}
	b.port = testnet.FreePorts(t, 4)
	b.writeConfig(0, 0)
	b.metrics = proxy.NewMetrics()
	log := testLogger(t)
	if setup.log != nil {
		log = slog.New(slog.NewTextHandler(io.MultiWriter(setup.log, logOutput()), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b.gw = proxy.New(b.path, log, b.metrics)
	if err := b.gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.gw.Close(context.Background()) })
	b.admin = httptest.NewServer(proxy.AdminHandler(b.gw, b.metrics, true))
	t.Cleanup(b.admin.Close)
	return b
}

func (b *bed) endpoint() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

// writeConfig points the route at cluster i (0 or 1) with the given epoch.
func (b *bed) writeConfig(i int, epoch int32) {
	b.t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "gateway:\n  name: test\n  streamingDomains:\n")
	for j, c := range b.clusters {
		fmt.Fprintf(&sb, "    - name: kafka%d-domain\n      type: kafka\n      kafkaCluster:\n        name: cluster-%d\n", j+1, j+1)
		fmt.Fprintf(&sb, "        bootstrapServers:\n          - id: plain\n            endpoint: %q\n", strings.Join(c.ListenAddrs(), ","))
		sb.WriteString(b.setup.bootstrap)
		fmt.Fprintf(&sb, "        nodeIdRanges:\n          - name: all\n            start: 0\n            end: 2\n")
	}
	fmt.Fprintf(&sb, "  routes:\n    - name: switchover-route\n      endpoint: %q\n      bind: 127.0.0.1\n", b.endpoint())
	fmt.Fprintf(&sb, "      epoch: %d\n      streamingDomain:\n        name: kafka%d-domain\n        bootstrapServerId: plain\n", epoch, i+1)
	sb.WriteString(b.setup.security)
	fmt.Fprintf(&sb, "  limits:\n    drainTimeout: 2s\n")
	sb.WriteString(b.setup.gateway)
	if err := os.WriteFile(b.path, []byte(sb.String()), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// restart posts /restart and returns the status it answers with.
func (b *bed) restart() (int, adminapi.StatusResponse) { return b.post("/restart", "") }

// post sends an admin call and returns the status it answers with.
func (b *bed) post(path, body string) (int, adminapi.StatusResponse) {
	b.t.Helper()
	resp, err := http.Post(b.admin.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st adminapi.StatusResponse
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, st
}

func (b *bed) client(opts ...kgo.Opt) *kgo.Client {
	b.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.endpoint())}, opts...)...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(cl.Close)
	return cl
}

// dialed records every broker address a client connects to.
type dialed struct {
	mu    sync.Mutex
	addrs map[string]bool
}

func (d *dialed) OnBrokerConnect(m kgo.BrokerMetadata, _ time.Duration, _ net.Conn, _ error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs[net.JoinHostPort(m.Host, strconv.Itoa(int(m.Port)))] = true
}

// clientDialing makes a client and returns the record of where it connected.
func (b *bed) clientDialing(opts ...kgo.Opt) (*kgo.Client, *dialed) {
	d := &dialed{addrs: map[string]bool{}}
	return b.client(append(opts, kgo.WithHooks(d))...), d
}

// assertGatewayOnly checks that a client connected to gateway ports only.
func (b *bed) assertGatewayOnly(d *dialed) {
	b.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.addrs) < 2 {
		b.t.Errorf("client connected to %v: want the bootstrap and broker ports", d.addrs)
	}
	for a := range d.addrs {
		host, p, _ := net.SplitHostPort(a)
		port, _ := strconv.Atoi(p)
		if host != "127.0.0.1" || port < b.port || port > b.port+3 {
			b.t.Errorf("client connected to %s, not a gateway port (%d..%d)", a, b.port, b.port+3)
		}
	}
}

// TestSwitchoverKeepsClients is the gateway's reason to exist: a producer and
// a group consumer, each one client object, cross from cluster 1 to cluster 2
// when the route is switched mid-stream (a planned switch: the producer held
// at the gateway meanwhile); every acknowledged record is consumed, records
// acknowledged after the switch are on cluster 2, and the clients only ever
// connect to gateway ports.
func TestSwitchoverKeepsClients(t *testing.T) {
	for _, tc := range []struct {
		name     string
		producer []kgo.Opt
		consumer []kgo.Opt
		groupAPI string // an API the consumer must have used
	}{
		{name: "idempotent producer, classic group"},
		{name: "plain producer, KIP-848 group", producer: []kgo.Opt{kgo.DisableIdempotentWrite()},
			consumer: []kgo.Opt{kgo.ServerSideBalancer()}, groupAPI: "ConsumerGroupHeartbeat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testSwitchover(t, tc.producer, tc.consumer)
			if tc.groupAPI != "" && b.requests(tc.groupAPI) == 0 {
				t.Errorf("the consumer sent no %s through the gateway", tc.groupAPI)
			}
		})
	}
}

// requests counts the requests of one API the gateway forwarded.
func (b *bed) requests(api string) float64 {
	b.t.Helper()
	mfs, err := b.metrics.Registry.Gather()
	if err != nil {
		b.t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "turnout_gateway_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "api" && l.GetValue() == api {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

func testSwitchover(t *testing.T, producerOpts, consumerOpts []kgo.Opt) *bed {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	producer, producerDialed := b.clientDialing(append([]kgo.Opt{kgo.DefaultProduceTopic(topic),
		kgo.RecordRetries(1000), kgo.ProducerLinger(0)}, producerOpts...)...)
	consumer, consumerDialed := b.clientDialing(append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumerGroup("g1"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}, consumerOpts...)...)

	var mu sync.Mutex
	seen := map[string]int{}
	go func() {
		for ctx.Err() == nil {
			consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				mu.Lock()
				seen[string(r.Value)]++
				mu.Unlock()
			})
		}
	}()

	// A steady producer, one record every 5 ms, each acknowledgement timed.
	var switchedAt time.Time
	acks := make(chan time.Time, 100000)
	stop := make(chan struct{})
	produced := make(chan int)
	go func() {
		i := 0
		defer func() { produced <- i }()
		for ; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if err := producer.ProduceSync(ctx, kgo.StringRecord(strconv.Itoa(i))).FirstErr(); err != nil {
				t.Errorf("record %d: %v", i, err)
				return
			}
			acks <- time.Now()
		}
	}()

	// Run long enough that the clients are in their steady state (past
	// franz-go's 5 s metadata min age), as a real producer would be.
	started := time.Now()
	waitFor(t, ctx, "the producer has run for 6 s and the consumer has caught up", func() bool {
		return time.Since(started) > 6*time.Second && len(acks) > 100 && countSeen(&mu, seen, 0, 100) == 100
	})
	// A planned switch, as the agents make it: nothing copies cluster 1
	// to cluster 2 here, so the producer is held at the gateway until the
	// consumer has read all cluster 1 acknowledged. The held record then
	// goes to cluster 2.
	if code, st := b.post("/pause", `{"route":"switchover-route","epoch":0,"ttl":"30s"}`); code != http.StatusOK {
		t.Fatalf("pause answered %d %+v", code, st)
	}
	waitFor(t, ctx, "the producer is held", func() bool { return b.counter("turnout_gateway_produce_held_total") >= 1 })
	beforePause := len(acks) // the held record is the next one
	waitFor(t, ctx, "the consumer has read every record cluster 1 acknowledged", func() bool {
		return countSeen(&mu, seen, 0, beforePause) == beforePause
	})
	b.writeConfig(1, 1)
	switchedAt = time.Now()
	code, st := b.restart()
	if code != http.StatusOK || st.Routes[0].Domain != "kafka2-domain" || st.Routes[0].ClusterID != "cluster-2" || st.Routes[0].ConfigEpoch != 1 {
		t.Fatalf("restart answered %d %+v, want 200 and kafka2-domain/cluster-2 at epoch 1", code, st)
	}
	restartTook := time.Since(switchedAt)
	before := len(acks)
	waitFor(t, ctx, "200 acknowledgements after the switch", func() bool { return len(acks) > before+200 })
	close(stop)
	total := <-produced

	// The longest silence between acknowledgements is the switch's cost.
	var gap time.Duration
	last := started
	for len(acks) > 0 {
		at := <-acks
		gap = max(gap, at.Sub(last))
		last = at
	}
	t.Logf("switch: restart took %v; longest gap between acknowledged produces %v; %d records", restartTook, gap, total)

	waitFor(t, ctx, "the consumer reads every acknowledged record", func() bool { return countSeen(&mu, seen, 0, total) == total })
	dups := 0
	mu.Lock()
	for _, n := range seen {
		dups += n - 1
	}
	mu.Unlock()
	t.Logf("consumer: %d records, %d read more than once", total, dups)

	// Records acknowledged after the switch must be on cluster 2.
	direct, err := kgo.NewClient(kgo.SeedBrokers(b.clusters[1].ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	onTwo := map[string]bool{}
	waitFor(t, ctx, "cluster 2 holds the records produced after the switch", func() bool {
		fctx, fcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer fcancel()
		direct.PollFetches(fctx).EachRecord(func(r *kgo.Record) { onTwo[string(r.Value)] = true })
		return len(onTwo) >= 200
	})
	b.assertGatewayOnly(producerDialed)
	b.assertGatewayOnly(consumerDialed)
	return b
}

func countSeen(mu *sync.Mutex, seen map[string]int, from, to int) int {
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for i := from; i < to; i++ {
		if seen[strconv.Itoa(i)] > 0 {
			n++
		}
	}
	return n
}

// TestRestartWithInvalidConfigKeepsServing: a bad file is refused with 422
// and the route keeps serving the old cluster.
func TestRestartWithInvalidConfigKeepsServing(t *testing.T) {
	b := newBed(t)
	if err := os.WriteFile(b.path, []byte("gateway:\n  routes: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, st := b.restart()
	if code != http.StatusUnprocessableEntity || !strings.Contains(st.Error, "gateway.yaml") {
		t.Fatalf("restart with a half-written file answered %d %q, want 422 naming the file", code, st.Error)
	}
	if st.Routes[0].Domain != "kafka1-domain" {
		t.Fatalf("route moved to %s after a refused restart", st.Routes[0].Domain)
	}
	cl := b.client(kgo.DefaultProduceTopic(topic))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, kgo.StringRecord("still-here")).FirstErr(); err != nil {
		t.Fatalf("produce after a refused restart: %v", err)
	}
}

// TestBadFramesCloseOnlyTheirConnection sends garbage, a 2 GiB length prefix,
// a negative size and a truncated header; each closes its own connection
// while a well-behaved client on the same gateway is unaffected.
func TestBadFramesCloseOnlyTheirConnection(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	good := b.client(kgo.DefaultProduceTopic(topic))
	if err := good.ProduceSync(ctx, kgo.StringRecord("before")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for name, payload := range map[string][]byte{
		"garbage":          []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"2 GiB prefix":     {0x7f, 0xff, 0xff, 0xff, 0, 1, 2, 3},
		"negative size":    {0xff, 0xff, 0xff, 0xfe},
		"truncated header": {0, 0, 0, 3, 0, 3, 0},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", b.endpoint())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(payload)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatalf("gateway answered %d bytes to a bad frame instead of closing", n)
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("gateway kept the connection open after a bad frame")
			}
		})
	}
	if err := good.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr(); err != nil {
		t.Fatalf("a good client failed after bad frames on other connections: %v", err)
	}
	resp, err := http.Get(b.admin.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz after bad frames: %v %v", resp, err)
	}
}

// TestRestartWithSwitch: POST /restart can carry the switch, which the
// gateway writes into its own file; an older epoch than the file's is
// refused with 409 and changes nothing.
func TestRestartWithSwitch(t *testing.T) {
	b := newBed(t)
	post := func(body string) (int, adminapi.StatusResponse) { return b.post("/restart", body) }
	code, st := post(`{"routes":[{"name":"switchover-route","domain":"kafka2-domain","epoch":3}]}`)
	if code != http.StatusOK || st.Routes[0].Domain != "kafka2-domain" || st.Routes[0].ConfigEpoch != 3 || st.Routes[0].ClusterID != "cluster-2" {
		t.Fatalf("switch answered %d %+v", code, st)
	}
	cfg, err := config.Load(b.path)
	if err != nil || cfg.Routes[0].StreamingDomain.Name != "kafka2-domain" || cfg.Routes[0].Epoch != 3 {
		t.Fatalf("the file after the switch: %+v %v", cfg, err)
	}
	code, st = post(`{"routes":[{"name":"switchover-route","domain":"kafka1-domain","epoch":2}]}`)
	if code != http.StatusConflict || !strings.Contains(st.Error, "stale") || st.Routes[0].Domain != "kafka2-domain" {
		t.Fatalf("a stale switch answered %d %+v; want 409 and the route left on kafka2-domain", code, st)
	}
	if code, st = post(`{"routes":[{"name":"nope","domain":"kafka1-domain","epoch":9}]}`); code == http.StatusOK {
		t.Fatalf("a switch of an unknown route answered %d %+v", code, st)
	}
	if code, _ = post(`{"bogus":1}`); code != http.StatusBadRequest {
		t.Fatalf("an unknown field answered %d, want 400", code)
	}
}

// TestBrokerPortFirst: a client whose first connection after a gateway
// (re)start goes straight to a broker port, as a client with cached metadata
// does, is served by that broker.
func TestBrokerPortFirst(t *testing.T) {
	b := newBed(t)
	// A fresh gateway process has learned nothing from client traffic.
	b.gw.Close(context.Background())
	b.gw = proxy.New(b.path, testLogger(t), proxy.NewMetrics())
	if err := b.gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:"+strconv.Itoa(b.port+2)), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, kgo.StringRecord("via broker port")).FirstErr(); err != nil {
		t.Fatalf("produce bootstrapped from broker port %d: %v", b.port+2, err)
	}
}

// TestUnmappedBrokerIsReported: a broker whose node id is outside
// nodeIdRanges is left out of what clients learn, counted and logged, and
// the brokers inside the ranges keep serving.
func TestUnmappedBrokerIsReported(t *testing.T) {
	b := newBed(t)
	if _, _, err := b.clusters[0].AddNode(7, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := b.client()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []int32
	for _, br := range resp.Brokers {
		nodes = append(nodes, br.NodeID)
	}
	if len(nodes) != 3 || slices.Contains(nodes, 7) {
		t.Errorf("clients learned brokers %v; want 0, 1, 2 and not the unmapped 7", nodes)
	}
	if got := b.counter("turnout_gateway_unmapped_brokers_total"); got != 1 {
		t.Errorf("turnout_gateway_unmapped_brokers_total = %v, want 1", got)
	}
	// A partition the unmapped broker leads cannot be reached through the
	// gateway; the others must be.
	var served int32 = -1
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if tp.Topic != nil && *tp.Topic == topic && p.Leader != 7 && p.ErrorCode == 0 {
				served = p.Partition
			}
		}
	}
	if served < 0 {
		t.Fatalf("no partition of %s is led by a mapped broker: %+v", topic, resp.Topics)
	}
	producer := b.client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte("still served"), Partition: served}).FirstErr(); err != nil {
		t.Fatalf("produce to partition %d with an unmapped broker in the cluster: %v", served, err)
	}
}

// TestRestartKeepsUnchangedRoutes: a restart that does not change a route
// keeps its client connections.
func TestRestartKeepsUnchangedRoutes(t *testing.T) {
	b := newBed(t)
	c, err := net.Dial("tcp", b.endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	apiVersions := func() error {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 0
		body := req.AppendTo(nil)
		hdr := []byte{0, 0, 0, 0, 0, 18, 0, 0, 0, 0, 0, 7, 0, 0}
		frame := append(hdr, body...)
		binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
		if _, err := c.Write(frame); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return err
		}
		_, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(size[:])))
		return err
	}
	if err := apiVersions(); err != nil {
		t.Fatal(err)
	}
	if code, st := b.restart(); code != http.StatusOK || st.Routes[0].Connections != 1 {
		t.Fatalf("restart answered %d %+v; want 200 with the connection still counted", code, st)
	}
	if err := apiVersions(); err != nil {
		t.Fatalf("connection dropped by a restart that changed nothing: %v", err)
	}
}

// counter sums a counter's values across labels, or across those with the
// given label name and value pairs.
func (b *bed) counter(name string, labels ...string) float64 {
	b.t.Helper()
	mfs, err := b.metrics.Registry.Gather()
	if err != nil {
		b.t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				if hasLabels(m.GetLabel(), labels) {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
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

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// logOutput shows the gateway's logs under go test -v.
func logOutput() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

func hasLabels(have []*dto.LabelPair, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		if !slices.ContainsFunc(have, func(l *dto.LabelPair) bool { return l.GetName() == want[i] && l.GetValue() == want[i+1] }) {
			return false
		}
	}
	return true
}
