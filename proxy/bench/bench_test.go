package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/internal/testnet"
)

// forwardEnv, when set to "listenaddr,target", turns the test binary into
// the plain forwarding proxy: see TestMain.
const forwardEnv = "TURNOUT_BENCH_FORWARD"

// gatewayEnv may name a gateway binary to measure instead of building
// ./cmd/turnout; it is run as BIN gateway --config FILE --admin ADDR.
const gatewayEnv = "TURNOUT_BENCH_GATEWAY"

const (
	recordSize    = 1024
	partitions    = 3
	rounds        = 5           // max-throughput runs per path, the paths taking turns
	fixedRounds   = 5           // fixed-rate runs per path, the paths taking turns
	throughputRun = time.Second // one max-throughput run; 5 s per path in all
	// maxRecordsPerRun bounds the in-process cluster's memory on a fast
	// machine: every record of a run is held until the run's topic is deleted.
	maxRecordsPerRun = 1_500_000
	maxFixedRate     = 30000           // records/s
	fixedFor         = 5 * time.Second // the fixed-rate phase per path, over all rounds
	idleConns        = 500
	phaseTimeout     = 90 * time.Second
	mb               = 1e6 // a MB in the figures is 10^6 bytes of record value
	targetRatio      = 0.95
	targetAddedP99   = time.Millisecond
	targetKiB        = 64
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(forwardEnv); spec != "" {
		if err := forward(spec); err != nil {
			fmt.Fprintln(os.Stderr, "forwarder:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// forward is the plain Go forwarding proxy: accept, dial the target, io.Copy
// both ways. It prints "listening ADDR" on stdout once it accepts, and exits
// when its stdin closes (the benchmark's end, or its death).
func forward(spec string) error {
	listen, target, ok := strings.Cut(spec, ",")
	if !ok {
		return fmt.Errorf("%s=%q: want listenaddr,target", forwardEnv, spec)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				return
			}
			go func() {
				io.Copy(up, c)
				up.Close()
				c.Close()
			}()
			io.Copy(c, up)
			c.Close()
			up.Close()
		}()
	}
}

// proc is a subprocess whose CPU time and memory are measured.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the exit status, once exited is closed
	log    string
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) dead() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// mustLive fails the benchmark if the process has died.
func (p *proc) mustLive(b testing.TB) {
	b.Helper()
	if p != nil && p.dead() {
		b.Fatalf("%s (pid %d) died: %v\n%s", p.name, p.pid(), p.err, tail(p.log))
	}
}

// start runs cmd, stops it at cleanup (SIGTERM, then SIGKILL after 5 s), and
// notes when it exits.
func start(b testing.TB, name string, cmd *exec.Cmd, logPath string) *proc {
	b.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = logf
	// Killed with us even if we die without running cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		b.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	b.Cleanup(func() {
		// A chance to stop cleanly (and write what it writes at exit),
		// then no more.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// procStat returns the process's user+system CPU time.
func (p *proc) cpu(b testing.TB) time.Duration {
	b.Helper()
	p.mustLive(b)
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		b.Fatalf("%s: %v", p.name, err)
	}
	// The command name, in parentheses, may hold spaces: count fields after it.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("%s: cannot read /proc/%d/stat: %q", p.name, p.pid(), s)
	}
	return time.Duration(ut+st) * time.Second / time.Duration(clockTicks())
}

// rssKiB returns the process's resident set size.
func (p *proc) rssKiB(b testing.TB) int64 {
	b.Helper()
	p.mustLive(b)
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		b.Fatalf("%s: %v", p.name, err)
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				break
			}
			return n
		}
	}
	b.Fatalf("%s: no VmRSS in /proc/%d/status", p.name, p.pid())
	return 0
}

var clockTicks = sync.OnceValue(func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
})

func tail(path string) string {
	raw, _ := os.ReadFile(path)
	if len(raw) > 4000 {
		raw = raw[len(raw)-4000:]
	}
	return string(raw)
}

// target is one way of reaching the cluster.
type target struct {
	name string
	seed string // bootstrap address clients are given
	via  string // when set, every client connection is dialed here instead
	idle string // where idle connections are opened (proxies only)
	proc *proc  // the proxy process; nil for direct

	// results, one entry per round
	produceRates, produceMBs, consumeRates []float64
	maxCPU                                 time.Duration // proxy CPU over the throughput runs
	maxRecords                             int
	lat                                    []time.Duration // per record, all fixed-rate rounds
	fixedRecords                           int
	fixedTook                              time.Duration
	fixedCPU                               time.Duration
	roundP99                               []time.Duration
	kibPerConn                             float64
	liveConns                              int // the gateway's own count of open sessions
}

func (t *target) client(b testing.TB, opts ...kgo.Opt) *kgo.Client {
	b.Helper()
	// No compression: franz-go compresses with snappy by default, which
	// would leave the proxies little to carry and measure the client's CPU.
	opts = append([]kgo.Opt{kgo.SeedBrokers(t.seed), kgo.RecordDeliveryTimeout(phaseTimeout),
		kgo.ProducerBatchCompression(kgo.NoCompression())}, opts...)
	if t.via != "" {
		d := net.Dialer{Timeout: 5 * time.Second}
		opts = append(opts, kgo.Dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, t.via)
		}))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		b.Fatal(err)
	}
	return cl
}

// phaseContext ends at the timeout or when the proxy process dies.
func (t *target) phaseContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), phaseTimeout)
	if t.proc != nil {
		go func() {
			select {
			case <-t.proc.exited:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

func (t *target) cpu(b testing.TB) time.Duration {
	if t.proc == nil {
		return 0
	}
	return t.proc.cpu(b)
}

// values is random, so the record bytes are what a real 1 KiB record costs
// even if compression were on; records take 1 KiB windows of it.
var values = func() []byte {
	v := make([]byte, 4<<20)
	rand.Read(v)
	return v
}()

func value(i int) []byte {
	off := (i * 4099) % (len(values) - recordSize)
	return values[off : off+recordSize : off+recordSize]
}

// BenchmarkGateway compares direct, forwarder and gateway in one run. The
// machine may be shared, so the paths take turns: each phase runs in rounds,
// every round visiting every path, and throughput is the best round's.
func BenchmarkGateway(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc for the proxies' CPU and memory")
	}
	began := time.Now()
	load0 := loadavg()
	tmp := b.TempDir()

	bin := buildGateway(b, tmp)

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "warmup"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cluster.Close)
	kafka := cluster.ListenAddrs()[0]
	adm := newAdmin(b, kafka)

	direct := &target{name: "direct", seed: kafka}
	fwd := startForwarder(b, tmp, kafka)
	gw := startGateway(b, tmp, bin, kafka)
	targets := []*target{direct, fwd, gw}

	// c. Memory per idle connection first, on fresh processes, so that heap
	// freed by the load phases cannot hide what connections cost.
	for _, t := range targets[1:] {
		measureIdle(b, t)
	}
	if gw.liveConns != idleConns {
		b.Logf("the gateway's /status counted %d connections while %d were open", gw.liveConns, idleConns)
	}

	// a. Max throughput, each run for throughputRun, then read back. A short
	// lap first, not counted, lets every process grow its heap and buffers:
	// otherwise whichever path goes first pays for it.
	for _, t := range targets {
		maxThroughput(b, adm, t, -1)
	}
	for r := range rounds {
		for _, t := range targets {
			maxThroughput(b, adm, t, r)
		}
	}

	// b. Fixed rate: half the direct maximum, at most 30k records/s.
	rate := min(maxFixedRate, slices.Max(direct.produceRates)/2)
	for r := range fixedRounds {
		for _, t := range targets {
			fixedRate(b, adm, t, r, rate)
		}
	}
	for _, t := range targets {
		t.proc.mustLive(b)
	}

	report(b, targets, rate, time.Since(began), load0, loadavg())
}

// loadavg is the machine's 1-minute load average, to show when others
// shared the CPUs.
func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(raw))[0]
}

// admin is a direct client for creating and deleting topics.
type admin struct {
	b  testing.TB
	cl *kgo.Client
}

func newAdmin(b testing.TB, kafka string) *admin {
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return &admin{b, cl}
}

func (a *admin) create(topic string) {
	a.b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctx, a.cl)
	if err == nil && len(resp.Topics) == 1 && resp.Topics[0].ErrorCode != 0 {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		a.b.Fatalf("creating topic %s: %v", topic, err)
	}
}

// drop deletes a topic so that the in-process cluster's memory, and with it
// the benchmark process's GC work, stays the same from run to run.
func (a *admin) drop(topic string) {
	a.b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrDeleteTopicsRequest()
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.TopicNames = []string{topic}
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctx, a.cl)
	if err == nil && len(resp.Topics) == 1 && resp.Topics[0].ErrorCode != 0 {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		a.b.Fatalf("deleting topic %s: %v", topic, err)
	}
	runtime.GC()
}

// buildGateway builds cmd/turnout from the module root into dir, unless
// gatewayEnv names a binary to run instead.
func buildGateway(b testing.TB, dir string) string {
	b.Helper()
	if bin := os.Getenv(gatewayEnv); bin != "" {
		b.Logf("gateway binary from %s: %s", gatewayEnv, bin)
		return bin
	}
	_, file, _, ok := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if out, err := exec.Command(goTool(), "env", "GOMOD").Output(); err == nil && strings.TrimSpace(string(out)) != "" && strings.TrimSpace(string(out)) != os.DevNull {
		root = filepath.Dir(strings.TrimSpace(string(out)))
	} else if !ok {
		b.Fatal("cannot find the module root")
	}
	bin := filepath.Join(dir, "turnout")
	began := time.Now()
	cmd := exec.Command(goTool(), "build", "-o", bin, "./cmd/turnout")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/turnout in %s: %v\n%s", root, err, out)
	}
	b.Logf("built %s in %v", bin, time.Since(began).Round(time.Millisecond))
	return bin
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// startForwarder re-executes this test binary as the plain forwarding proxy.
func startForwarder(b testing.TB, dir, kafka string) *target {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), forwardEnv+"=127.0.0.1:0,"+kafka)
	stdin, err := cmd.StdinPipe() // closed when we exit: the forwarder then exits too
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close() })
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	p := start(b, "forwarder", cmd, filepath.Join(dir, "forwarder.log"))
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
		io.Copy(io.Discard, stdout)
	}()
	var addr string
	select {
	case s := <-line:
		var ok bool
		if addr, ok = strings.CutPrefix(strings.TrimSpace(s), "listening "); !ok {
			p.mustLive(b)
			b.Fatalf("forwarder said %q, want listening ADDR", s)
		}
	case <-time.After(20 * time.Second):
		b.Fatal("the forwarder did not start in 20 s")
	}
	return &target{name: "forward", seed: kafka, via: addr, idle: addr, proc: p}
}

// startGateway runs the gateway binary with one route to the kfake broker.
func startGateway(b testing.TB, dir, bin, kafka string) *target {
	b.Helper()
	port := testnet.FreePorts(b, 2) // the bootstrap port and broker 0's port
	route := "127.0.0.1:" + strconv.Itoa(port)
	admin := "127.0.0.1:" + strconv.Itoa(testnet.FreePorts(b, 1))
	// kfake numbers its brokers from 0, so one broker is node 0.
	cfg := fmt.Sprintf(`gateway:
  name: bench
  streamingDomains:
    - name: kfake-domain
      type: kafka
      kafkaCluster:
        name: kfake
        bootstrapServers:
          - id: plain
            endpoint: %q
        nodeIdRanges:
          - name: all
            start: 0
            end: 0
  routes:
    - name: bench-route
      endpoint: %q
      bind: 127.0.0.1
      streamingDomain:
        name: kfake-domain
        bootstrapServerId: plain
`, kafka, route)
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "gateway", "--config", path, "--admin", admin)
	p := start(b, "gateway", cmd, filepath.Join(dir, "gateway.log"))
	t := &target{name: "gateway", seed: route, idle: route, proc: p}
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.mustLive(b)
		resp, err := http.Get("http://" + admin + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the gateway was not healthy in 20 s\n%s", tail(p.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	gwAdmin = admin
	return t
}

var gwAdmin string

// gatewayConns is the gateway's own count of open client connections.
func gatewayConns(t *target) (int, bool) {
	resp, err := http.Get("http://" + gwAdmin + "/status")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var st struct {
		Routes []struct {
			Connections int `json:"connections"`
		} `json:"routes"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil || len(st.Routes) == 0 {
		return 0, false
	}
	return st.Routes[0].Connections, true
}

// measureIdle opens idleConns connections to the proxy, makes each carry one
// ApiVersions round trip (so the proxy holds a live upstream connection for
// it), and reads the proxy's resident memory before and after.
func measureIdle(b testing.TB, t *target) {
	b.Helper()
	// A few connections first, so one-time set-up is not counted.
	closeAll(openIdle(b, t, 20))
	time.Sleep(200 * time.Millisecond)
	before := t.proc.rssKiB(b)
	conns := openIdle(b, t, idleConns)
	defer closeAll(conns)
	time.Sleep(500 * time.Millisecond)
	after := t.proc.rssKiB(b)
	t.kibPerConn = float64(after-before) / idleConns
	if n, ok := gatewayConns(t); ok && t.name == "gateway" {
		t.liveConns = n
	}
	b.Logf("%s: RSS %d KiB with no clients, %d KiB with %d idle connections", t.name, before, after, idleConns)
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}

func openIdle(b testing.TB, t *target, n int) []net.Conn {
	b.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 2 // request header v1, no tagged fields
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("turnout-bench"))
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.DialTimeout("tcp", t.idle, 5*time.Second)
		if err != nil {
			closeAll(conns)
			t.proc.mustLive(b)
			b.Fatalf("%s: connection %d: %v", t.name, i, err)
		}
		conns = append(conns, c)
		if err := apiVersions(c, f, req, int32(i)); err != nil {
			closeAll(conns)
			t.proc.mustLive(b)
			b.Fatalf("%s: ApiVersions on connection %d: %v", t.name, i, err)
		}
	}
	return conns
}

func apiVersions(c net.Conn, f *kmsg.RequestFormatter, req *kmsg.ApiVersionsRequest, corr int32) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(f.AppendRequest(nil, req, corr)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return fmt.Errorf("response size %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.Version = req.Version
	if err := resp.ReadFrom(body[4:]); err != nil {
		return err
	}
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		return fmt.Errorf("error code %d, %d api keys", resp.ErrorCode, len(resp.ApiKeys))
	}
	return nil
}

// warm makes the client connect and learn metadata before a timed phase,
// writing to a topic no phase reads.
func warm(b testing.TB, ctx context.Context, t *target, cl *kgo.Client) {
	b.Helper()
	rs := make([]*kgo.Record, 30)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: "warmup", Value: value(i)}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.proc.mustLive(b)
		b.Fatalf("%s: warm-up produce: %v", t.name, err)
	}
}

// maxThroughput produces as fast as the client takes records for
// throughputRun, waits for every acknowledgement, then reads them all back
// with a fresh consumer; a record missing is a failure.
func maxThroughput(b testing.TB, adm *admin, t *target, round int) {
	run := throughputRun
	if round < 0 {
		run = throughputRun / 3 // the warm-up lap
	}
	b.Helper()
	ctx, cancel := t.phaseContext()
	defer cancel()
	topic := fmt.Sprintf("max-%s-%d", t.name, round)
	adm.create(topic)
	defer adm.drop(topic)

	cl := t.client(b, kgo.DefaultProduceTopic(topic))
	closeProducer := sync.OnceFunc(cl.Close)
	defer closeProducer()
	warm(b, ctx, t, cl)
	var failed atomic.Int64
	var firstErr atomic.Value
	promise := func(_ *kgo.Record, err error) {
		if err != nil && failed.Add(1) == 1 {
			firstErr.Store(err)
		}
	}
	cpu0 := t.cpu(b)
	began := time.Now()
	n := 0
	// Produce blocks while the client's buffer is full, so this loop runs
	// at the path's pace.
	for ; n < maxRecordsPerRun && time.Since(began) < run; n++ {
		cl.Produce(ctx, &kgo.Record{Value: value(n)}, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		t.proc.mustLive(b)
		b.Fatalf("%s: flush: %v", t.name, err)
	}
	took := time.Since(began)
	if k := failed.Load(); k > 0 {
		t.proc.mustLive(b)
		b.Fatalf("%s: %d of %d records failed: %v", t.name, k, n, firstErr.Load())
	}
	closeProducer()
	produceRate := float64(n) / took.Seconds()

	began = time.Now()
	cons := t.client(b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cons.Close()
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.proc.mustLive(b)
			b.Fatalf("%s: consumed %d of %d acknowledged records in %v: records lost", t.name, got, n, phaseTimeout)
		}
		fs.EachError(func(topic string, p int32, err error) {
			b.Logf("%s: fetch %s/%d: %v", t.name, topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			got++
			if len(r.Value) != recordSize {
				b.Fatalf("%s: a record of %d bytes read back, want %d", t.name, len(r.Value), recordSize)
			}
		})
	}
	consumed := time.Since(began)
	if got != n {
		b.Fatalf("%s: consumed %d records, %d were acknowledged", t.name, got, n)
	}
	if round < 0 {
		return
	}
	t.produceRates = append(t.produceRates, produceRate)
	t.produceMBs = append(t.produceMBs, produceRate*recordSize/mb)
	t.consumeRates = append(t.consumeRates, float64(n)/consumed.Seconds())
	// The records crossed the proxy twice, produced and consumed.
	t.maxCPU += t.cpu(b) - cpu0
	t.maxRecords += n
}

// fixedRate produces at rate records/s for fixedFor/fixedRounds, paced by a
// ticker, and times each record from the Produce call to its
// acknowledgement.
func fixedRate(b testing.TB, adm *admin, t *target, round int, rate float64) {
	b.Helper()
	ctx, cancel := t.phaseContext()
	defer cancel()
	topic := fmt.Sprintf("fixed-%s-%d", t.name, round)
	adm.create(topic)
	defer adm.drop(topic)
	// Linger 0 so that the latency is the path's, not the client's batching
	// timer (franz-go lingers 10 ms by default).
	cl := t.client(b, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	defer cl.Close()
	warm(b, ctx, t, cl)

	total := int(rate * fixedFor.Seconds() / fixedRounds)
	lat := make([]time.Duration, total)
	var failed atomic.Int64
	var firstErr atomic.Value
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	cpu0 := t.cpu(b)
	began := time.Now()
	for sent := 0; sent < total; {
		<-tick.C
		due := min(total, int(time.Since(began).Seconds()*rate))
		for ; sent < due; sent++ {
			i, at := sent, time.Now()
			cl.Produce(ctx, &kgo.Record{Value: value(i)}, func(_ *kgo.Record, err error) {
				lat[i] = time.Since(at)
				if err != nil && failed.Add(1) == 1 {
					firstErr.Store(err)
				}
			})
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.proc.mustLive(b)
		b.Fatalf("%s: flush: %v", t.name, err)
	}
	t.fixedTook += time.Since(began)
	t.fixedCPU += t.cpu(b) - cpu0
	if k := failed.Load(); k > 0 {
		t.proc.mustLive(b)
		b.Fatalf("%s: %d of %d records failed: %v", t.name, k, total, firstErr.Load())
	}
	t.fixedRecords += total
	t.lat = append(t.lat, lat...)
	slices.Sort(lat)
	t.roundP99 = append(t.roundP99, lat[total*99/100])
}

func msPerMB(cpu time.Duration, records int) float64 {
	return float64(cpu) / float64(time.Millisecond) / (float64(records) * recordSize / mb)
}

func report(b *testing.B, ts []*target, rate float64, took time.Duration, load0, load1 string) {
	direct, fwd, gw := ts[0], ts[1], ts[2]
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, t := range ts {
		slices.Sort(t.lat)
	}
	p50 := func(t *target) time.Duration { return t.lat[len(t.lat)/2] }
	p99 := func(t *target) time.Duration { return t.lat[len(t.lat)*99/100] }
	best := slices.Max[[]float64]
	dash := func(t *target, v float64, format string) string {
		if t.proc == nil {
			return "-"
		}
		return fmt.Sprintf(format, v)
	}
	cpuPerMB := func(cpu time.Duration, records int) float64 {
		return ms(cpu) / (float64(records) * recordSize / mb)
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "\nBenchmarkGateway: one kfake broker (in this process), %d partitions, %d B random records, no compression; %d CPUs; load average %s at start, %s at end\n",
		partitions, recordSize, runtime.NumCPU(), load0, load1)
	fmt.Fprintf(&sb, "  produce/consume: best of %d interleaved runs of %v per path, acks=all, default linger; consume = a fresh consumer reading them all\n", rounds, throughputRun)
	fmt.Fprintf(&sb, "  fixed rate: %.0f records/s (min of 30k and half the best direct) for %v per path in %d interleaved runs, linger 0; p50/p99 from Produce call to acknowledgement, over all runs\n", rate, fixedFor, fixedRounds)
	fmt.Fprintf(&sb, "  MB = 10^6 bytes of record value. CPU ms/MB = the proxy process's utime+stime per MB produced at the fixed rate (each byte crosses it once each way as request\n")
	fmt.Fprintf(&sb, "  and, for the ack, a small response); CPU@max = the same over the throughput runs, per MB produced there (each byte crossed it twice: produced, then consumed)\n\n")
	fmt.Fprintf(&sb, "  %-8s %13s %7s %6s %13s %7s %7s %7s %9s %13s %8s\n",
		"path", "produce rec/s", "MB/s", "ratio", "consume rec/s", "rate/s", "p50 ms", "p99 ms", "CPU ms/MB", "KiB/idle conn", "CPU@max")
	for _, t := range ts {
		fmt.Fprintf(&sb, "  %-8s %13.0f %7.1f %6.3f %13.0f %7.0f %7.3f %7.3f %9s %13s %8s\n",
			t.name, best(t.produceRates), best(t.produceMBs), best(t.produceRates)/best(direct.produceRates), best(t.consumeRates),
			float64(t.fixedRecords)/t.fixedTook.Seconds(), ms(p50(t)), ms(p99(t)),
			dash(t, cpuPerMB(t.fixedCPU, t.fixedRecords), "%.2f"), dash(t, t.kibPerConn, "%.1f"),
			dash(t, cpuPerMB(t.maxCPU, t.maxRecords), "%.2f"))
	}
	fmt.Fprintf(&sb, "\n  every run, produce rec/s | consume rec/s | fixed-rate p99 ms:\n")
	for _, t := range ts {
		fmt.Fprintf(&sb, "    %-8s", t.name)
		for _, r := range t.produceRates {
			fmt.Fprintf(&sb, " %8.0f", r)
		}
		fmt.Fprintf(&sb, " |")
		for _, r := range t.consumeRates {
			fmt.Fprintf(&sb, " %8.0f", r)
		}
		fmt.Fprintf(&sb, " |")
		for _, d := range t.roundP99 {
			fmt.Fprintf(&sb, " %7.3f", ms(d))
		}
		fmt.Fprintln(&sb)
	}

	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	ratio := best(gw.produceRates) / best(direct.produceRates)
	// The added p99 is judged on the runs paired by turn: the median over
	// turns of (path p99 - direct p99), which one disturbed run cannot swing.
	// The pooled difference is printed beside it.
	pairedAdded := func(t *target) time.Duration {
		d := make([]time.Duration, len(t.roundP99))
		for i := range d {
			d[i] = t.roundP99[i] - direct.roundP99[i]
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	added := pairedAdded(gw)
	gwCPU, fwdCPU := cpuPerMB(gw.fixedCPU, gw.fixedRecords), cpuPerMB(fwd.fixedCPU, fwd.fixedRecords)
	fmt.Fprintf(&sb, "\n  targets (a miss is reported, not failed):\n")
	fmt.Fprintf(&sb, "    gateway produce throughput >= %.2f of direct: %.3f %s (consume %.3f; forwarder produce %.3f, consume %.3f)\n",
		targetRatio, ratio, verdict(ratio >= targetRatio), best(gw.consumeRates)/best(direct.consumeRates),
		best(fwd.produceRates)/best(direct.produceRates), best(fwd.consumeRates)/best(direct.consumeRates))
	fmt.Fprintf(&sb, "    gateway added p99 at %.0f records/s <= %v: %+.3f ms %s (median of %d paired runs; pooled %+.3f ms; added p50 %+.3f ms)\n",
		rate, targetAddedP99, ms(added), verdict(added <= targetAddedP99), fixedRounds, ms(p99(gw)-p99(direct)), ms(p50(gw)-p50(direct)))
	fmt.Fprintf(&sb, "      forwarder, for comparison: added p99 %+.3f ms paired, %+.3f ms pooled; added p50 %+.3f ms\n",
		ms(pairedAdded(fwd)), ms(p99(fwd)-p99(direct)), ms(p50(fwd)-p50(direct)))
	fmt.Fprintf(&sb, "    gateway memory per idle connection <= %d KiB: %.1f KiB %s (forwarder %.1f KiB; the gateway's /status counted %d connections)\n",
		targetKiB, gw.kibPerConn, verdict(gw.kibPerConn <= targetKiB), fwd.kibPerConn, gw.liveConns)
	fmt.Fprintf(&sb, "    gateway CPU per MB <= the plain forwarder's (DESIGN.md): %.2f vs %.2f ms/MB, x%.2f %s\n",
		gwCPU, fwdCPU, gwCPU/fwdCPU, verdict(gwCPU <= fwdCPU))
	fmt.Fprintf(&sb, "  whole run %v\n", took.Round(time.Second))
	fmt.Print(sb.String())

	b.ReportMetric(best(direct.produceRates), "direct-rec/s")
	b.ReportMetric(ratio, "gw-produce-ratio")
	b.ReportMetric(best(fwd.produceRates)/best(direct.produceRates), "fwd-produce-ratio")
	b.ReportMetric(best(gw.consumeRates)/best(direct.consumeRates), "gw-consume-ratio")
	b.ReportMetric(ms(added), "gw-added-p99-ms")
	b.ReportMetric(ms(pairedAdded(fwd)), "fwd-added-p99-ms")
	b.ReportMetric(gwCPU, "gw-cpu-ms/MB")
	b.ReportMetric(fwdCPU, "fwd-cpu-ms/MB")
	b.ReportMetric(gw.kibPerConn, "gw-KiB/conn")
	b.ReportMetric(fwd.kibPerConn, "fwd-KiB/conn")
}
