package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/internal/testcerts"
)

// NodeID is the broker (and controller) node id of every test cluster; the
// gateway's nodeIdRanges cover it.
const NodeID = 1

// Cluster is a single-node KRaft cluster: one JVM that is broker and
// controller, on loopback ports of its own, with its data in the test's
// folder. Stop, Kill and Start may be called in any order; Start after either
// brings the same cluster back on the same ports with its data.
type Cluster struct {
	Name           string
	ID             string // the cluster id it was formatted with
	Port           int    // the broker listener
	ControllerPort int
	Dir            string

	// Sec, when set, makes the client listener SASL_SSL (see Security);
	// Certs are then the broker's certificate and stores: Certs.CA (PEM)
	// and Certs.TrustP12 are what a client trusts.
	Sec   *Security
	Certs testcerts.Files
	// Formatted is how long StorageTool format took; Started how long the
	// last start took, from launching the JVM to the broker answering.
	Formatted, Started time.Duration

	bed   *Bed
	props string

	mu     sync.Mutex
	proc   *Process
	starts int
	admin  *kadm.Client
}

// NewCluster lays out and formats a cluster; Start runs it.
func (b *Bed) NewCluster(name string) *Cluster {
	b.T.Helper()
	return b.NewClusterSpec(ClusterSpec{Name: name})
}

// ClusterSpec describes a cluster to lay out: its name and, for a SASL_SSL
// client listener, its Security.
type ClusterSpec struct {
	Name string
	Sec  *Security
}

// NewClusterSpec is NewCluster for a spec.
func (b *Bed) NewClusterSpec(spec ClusterSpec) *Cluster {
	b.T.Helper()
	c, err := b.newCluster(spec)
	if err != nil {
		b.T.Fatal(err)
	}
	return c
}

func (b *Bed) newCluster(spec ClusterSpec) (*Cluster, error) {
	name := spec.Name
	if spec.Sec != nil {
		if err := spec.Sec.check(); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", name, err)
		}
	}
	port := FreePorts(b.T, 2)
	c := &Cluster{
		Name: name, ID: newClusterID(), Port: port, ControllerPort: port + 1,
		Dir: b.Path(name), Sec: spec.Sec, bed: b,
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	if c.Sec != nil {
		if err := c.writeCerts(); err != nil {
			return nil, fmt.Errorf("cluster %s: certificates: %w", name, err)
		}
	}
	c.props = b.Path(name, "server.properties")
	if err := os.WriteFile(c.props, []byte(c.serverProperties()), 0o600); err != nil {
		return nil, err
	}
	args := []string{"format", "--standalone", "--cluster-id", c.ID, "--config", c.props}
	if c.Sec != nil {
		args = append(args, c.Sec.scramArgs()...)
	}
	start := time.Now()
	cmd := b.Java(name+"/format", JVM{Heap: "128m"}, "kafka.tools.StorageTool", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("formatting cluster %s: %v\n%s", name, err, out)
	}
	c.Formatted = time.Since(start)
	return c, nil
}

// newClusterID is a random Kafka Uuid in its base64 form. Kafka never uses
// one whose text starts with '-'.
func newClusterID() string {
	for {
		var b [16]byte
		rand.Read(b[:])
		id := base64.RawURLEncoding.EncodeToString(b[:])
		if id[0] != '-' {
			return id
		}
	}
}

func (c *Cluster) serverProperties() string {
	listener := "PLAINTEXT"
	if c.Sec != nil {
		listener = secureListener
	}
	lines := []string{
		"process.roles=broker,controller",
		"node.id=" + strconv.Itoa(NodeID),
		"controller.quorum.bootstrap.servers=127.0.0.1:" + strconv.Itoa(c.ControllerPort),
		fmt.Sprintf("listeners=%s://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", listener, c.Port, c.ControllerPort),
		fmt.Sprintf("advertised.listeners=%s://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", listener, c.Port, c.ControllerPort),
		"controller.listener.names=CONTROLLER",
		fmt.Sprintf("listener.security.protocol.map=%s:%s,CONTROLLER:PLAINTEXT", listener, listener),
	}
	if c.Sec != nil {
		lines = append(lines, c.securityProperties()...)
	} else {
		lines = append(lines, "inter.broker.listener.name=PLAINTEXT")
	}
	lines = append(lines,
		"log.dirs="+c.Dir+"/data",
		"num.partitions=1",
		"default.replication.factor=1",
		// Topics are created by the tests (and MirrorMaker) on purpose: a
		// client asking for a topic that is not there is a bug to see.
		"auto.create.topics.enable=false",
		"offsets.topic.replication.factor=1",
		"offsets.topic.num.partitions=3",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"transaction.state.log.num.partitions=3",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
		// A killed broker's old registration expires in seconds, so that it
		// restarts quickly.
		"broker.session.timeout.ms=3000",
		"broker.heartbeat.interval.ms=500",
		// Classic and KIP-848 ("consumer") groups both; 4.x's default.
		"group.coordinator.rebalance.protocols=classic,consumer",
		"group.consumer.heartbeat.interval.ms=1000",
		"group.consumer.min.heartbeat.interval.ms=1000",
		"log.flush.interval.messages=9223372036854775807",
		"num.network.threads=2",
		"num.io.threads=2",
		"num.replica.fetchers=1",
		"background.threads=2",
		"log.cleaner.threads=1",
		"log.cleaner.dedupe.buffer.size=4194304",
		"num.recovery.threads.per.data.dir=1",
	)
	return strings.Join(lines, "\n") + "\n"
}

// Addr is the broker's own address (not the gateway's).
func (c *Cluster) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)) }

// StartClusters lays out and starts clusters in parallel.
func (b *Bed) StartClusters(ctx context.Context, names ...string) []*Cluster {
	b.T.Helper()
	specs := make([]ClusterSpec, len(names))
	for i, name := range names {
		specs[i] = ClusterSpec{Name: name}
	}
	return b.StartClusterSpecs(ctx, specs...)
}

// StartClusterSpecs is StartClusters for specs, secure or not.
func (b *Bed) StartClusterSpecs(ctx context.Context, specs ...ClusterSpec) []*Cluster {
	b.T.Helper()
	cs := make([]*Cluster, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, spec := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := b.newCluster(spec)
			if err == nil {
				err = c.start(ctx)
			}
			cs[i], errs[i] = c, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.T.Fatal(err)
	}
	return cs
}

// Start runs the cluster and waits until it answers metadata requests.
func (c *Cluster) Start(ctx context.Context) {
	c.bed.T.Helper()
	if err := c.start(ctx); err != nil {
		c.bed.T.Fatal(err)
	}
}

// StartErr is Start for a caller other than the test that made the cluster
// (a subtest), which must report the error itself.
func (c *Cluster) StartErr(ctx context.Context) error { return c.start(ctx) }

func (c *Cluster) start(ctx context.Context) error {
	c.mu.Lock()
	if c.proc != nil && !c.proc.Exited() {
		c.mu.Unlock()
		return fmt.Errorf("cluster %s is already running", c.Name)
	}
	c.starts++
	name := fmt.Sprintf("%s/broker", c.Name)
	if c.starts > 1 {
		name = fmt.Sprintf("%s/broker-%d", c.Name, c.starts)
	}
	cmd := c.bed.Java(name, JVM{Heap: "384m", MinHeap: "128m"}, "kafka.Kafka", c.props)
	launched := time.Now()
	p, err := c.bed.Start(name, cmd)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.proc = p
	c.mu.Unlock()
	if err := c.waitReady(ctx, p, 90*time.Second); err != nil {
		return err
	}
	c.mu.Lock()
	c.Started = time.Since(launched)
	c.mu.Unlock()
	return nil
}

// opts are the options of every client of the cluster's own: the seed, and
// for a secure cluster TLS and SASL as Admin.
func (c *Cluster) opts(more ...kgo.Opt) []kgo.Opt {
	return append(append([]kgo.Opt{kgo.SeedBrokers(c.Addr())}, c.AdminAuth().MustKgo()...), more...)
}

// waitReady polls the broker until it lists itself as a live broker. Each
// attempt uses a new client, so no client back-off stretches the wait.
func (c *Cluster) waitReady(ctx context.Context, p *Process, timeout time.Duration) error {
	start := time.Now()
	err := Poll(timeout, 100*time.Millisecond, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("cluster %s exited: %v\n%s", c.Name, p.Err(), tailFile(c.bed.Path(p.Name+".log"), 30))
		}
		cl, err := kgo.NewClient(c.opts(kgo.RequestRetries(0), kgo.DialTimeout(time.Second))...)
		if err != nil {
			return false, err
		}
		defer cl.Close()
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		m, err := kadm.NewClient(cl).BrokerMetadata(rctx)
		if err != nil {
			return false, err
		}
		return len(m.Brokers) == 1 && m.Cluster == c.ID, nil
	})
	if err != nil {
		return fmt.Errorf("cluster %s never answered: %w", c.Name, err)
	}
	c.bed.T.Logf("cluster %s (%s) up on %s after %v", c.Name, c.ID, c.Addr(), time.Since(start).Round(time.Millisecond))
	return nil
}

// Stop shuts the broker down gracefully (SIGTERM, controlled shutdown).
func (c *Cluster) Stop() error {
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Stop(60 * time.Second)
}

// Kill ends the broker with SIGKILL, as a crash would.
func (c *Cluster) Kill() {
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// Signal sends sig to the broker's process group: SIGSTOP and SIGCONT pause
// and resume it, as a long GC pause or a frozen VM would.
func (c *Cluster) Signal(sig syscall.Signal) {
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	if p != nil {
		p.Signal(sig)
	}
}

// Running reports whether the broker process is alive.
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc != nil && !c.proc.Exited()
}

// Client is a franz-go client connected to the cluster directly (as Admin,
// on a secure cluster), closed when the test ends.
func (c *Cluster) Client(opts ...kgo.Opt) *kgo.Client {
	c.bed.T.Helper()
	cl, err := kgo.NewClient(c.opts(opts...)...)
	if err != nil {
		c.bed.T.Fatal(err)
	}
	c.bed.OnCleanup(cl.Close)
	return cl
}

// Admin is an admin client connected to the cluster directly.
func (c *Cluster) Admin() *kadm.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.admin == nil {
		cl, err := kgo.NewClient(c.opts(kgo.RequestRetries(2))...)
		if err != nil {
			panic(err) // only options can make this fail
		}
		c.bed.OnCleanup(cl.Close)
		c.admin = kadm.NewClient(cl)
	}
	return c.admin
}

// CreateTopic creates a topic with replication factor 1.
func (c *Cluster) CreateTopic(ctx context.Context, topic string, partitions int32, configs map[string]*string) {
	c.bed.T.Helper()
	resp, err := c.Admin().CreateTopic(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		c.bed.T.Fatalf("creating topic %s on %s: %v", topic, c.Name, err)
	}
}

// EndOffsets are the topic's end offsets by partition; an error if the
// topic is not there.
func (c *Cluster) EndOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	return c.offsets(ctx, topic, c.Admin().ListEndOffsets)
}

// StartOffsets are the topic's log start offsets by partition.
func (c *Cluster) StartOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	return c.offsets(ctx, topic, c.Admin().ListStartOffsets)
}

func (c *Cluster) offsets(ctx context.Context, topic string, list func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[int32]int64, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lo, err := list(rctx, topic)
	if err != nil {
		return nil, err
	}
	if err := lo.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %s not on %s", topic, c.Name)
	}
	return out, nil
}

// Records is how many records the topic holds (end minus start offsets; with
// transactions this counts control records too).
func (c *Cluster) Records(ctx context.Context, topic string) (int64, error) {
	end, err := c.EndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	start, err := c.StartOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for p, e := range end {
		n += e - start[p]
	}
	return n, nil
}

// GroupType is the type of a group as the cluster lists it: "classic" or
// "consumer" (KIP-848), or "" when the cluster has no such group.
func (c *Cluster) GroupType(ctx context.Context, group string) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, typ := range []string{"classic", "consumer"} {
		gs, err := c.Admin().ListGroupsByType(rctx, []string{typ})
		if err != nil {
			return "", err
		}
		if _, ok := gs[group]; ok {
			return typ, nil
		}
	}
	return "", nil
}

// CommittedOffsets are the group's committed offsets for topic by partition.
func (c *Cluster) CommittedOffsets(ctx context.Context, group, topic string) (map[int32]int64, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.Admin().FetchOffsetsForTopics(rctx, group, topic)
	if err != nil {
		return nil, err
	}
	if err := resp.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for p, o := range resp[topic] {
		if o.At >= 0 {
			out[p] = o.At
		}
	}
	return out, nil
}

// Values reads the whole topic directly from the cluster (read_committed)
// and returns every record value, in partition and offset order.
func (c *Cluster) Values(ctx context.Context, topic string) ([]Rec, error) {
	end, err := c.EndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(c.opts(kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers count towards the end offset: keep them to
		// see the position reach it.
		kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []Rec
	pos := map[int32]int64{}
	done := func() bool {
		for p, e := range end {
			if pos[p] < e {
				return false
			}
		}
		return true
	}
	for !done() {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cl.PollFetches(rctx)
		err := rctx.Err()
		cancel()
		if err != nil {
			return out, fmt.Errorf("reading %s from %s: positions %v, end offsets %v: %w", topic, c.Name, pos, end, err)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return out, fmt.Errorf("reading %s from %s: %v", topic, c.Name, errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			pos[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				out = append(out, Rec{Partition: r.Partition, Offset: r.Offset, Value: string(r.Value)})
			}
		})
	}
	return out, nil
}

// Rec is one record as a test saw it.
type Rec struct {
	Partition int32
	Offset    int64
	Value     string
	At        time.Time // when the client delivered it
}
