package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/e2e/kafkatest"
)

// TestCompat runs each kind of client through the turnout binary in front of
// one real Kafka cluster. Each subtest asserts that every record produced is
// consumed, exactly once, and that the client only ever learned and dialled
// gateway addresses; make e2e prints one COMPAT line per client.
func TestCompat(t *testing.T) {
	b := kafkatest.NewBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	c := b.StartClusters(ctx, "compat")[0]
	gw := b.StartGateway(ctx, []*kafkatest.Cluster{c}, 0)
	env := &compatEnv{bed: b, c: c, gw: gw}

	t.Run("java", func(t *testing.T) { t.Parallel(); env.java(ctx, t) })
	t.Run("kcat", func(t *testing.T) { t.Parallel(); env.kcat(ctx, t) })
	t.Run("franz-go", func(t *testing.T) { t.Parallel(); env.franz(ctx, t) })
}

type compatEnv struct {
	bed *kafkatest.Bed
	c   *kafkatest.Cluster
	gw  *kafkatest.Gateway
}

// compat reports a COMPAT line for client when t ends.
func compat(t *testing.T, client string, records *int) {
	t.Cleanup(func() {
		res := "PASS"
		if t.Failed() {
			res = "FAIL"
		} else if t.Skipped() {
			res = "SKIP"
		}
		kafkatest.Report("CLIENT COMPATIBILITY (through bin/turnout gateway, real Kafka)",
			fmt.Sprintf("COMPAT %-26s %s records=%d", client, res, *records))
	})
}

// sequence is n record values prefix-0 .. prefix-(n-1).
func sequence(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// sameRecords checks that got holds each of want exactly once and nothing
// else.
func sameRecords(t *testing.T, what string, want, got []string) {
	t.Helper()
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	var missing, dup []string
	for _, v := range want {
		switch n := seen[v]; {
		case n == 0:
			missing = append(missing, v)
		case n > 1:
			dup = append(dup, fmt.Sprintf("%s×%d", v, n))
		}
		delete(seen, v)
	}
	var extra []string
	for v := range seen {
		extra = append(extra, v)
	}
	if len(missing)+len(dup)+len(extra) > 0 || len(got) != len(want) {
		t.Errorf("%s: %d records, want %d; %d missing %s, %d duplicated %s, %d unexpected %s",
			what, len(got), len(want), len(missing), head(missing), len(dup), head(dup), len(extra), head(extra))
	}
}

func head(s []string) string {
	sort.Strings(s)
	if len(s) > 8 {
		return fmt.Sprint(s[:8], "...")
	}
	return fmt.Sprint(s)
}

// checkClusterHolds checks, directly on the cluster, that topic holds
// exactly the records want.
func (e *compatEnv) checkClusterHolds(ctx context.Context, t *testing.T, topic string, want []string) {
	t.Helper()
	checkHolds(ctx, t, e.c, topic, want)
}

// checkGroup checks on the cluster that group is of the given type and has
// committed the end of every partition of topic.
func (e *compatEnv) checkGroup(ctx context.Context, t *testing.T, group, typ, topic string) {
	t.Helper()
	got, err := e.c.GroupType(ctx, group)
	if err != nil || got != typ {
		t.Errorf("group %s on the cluster is of type %q (%v), want %q", group, got, err, typ)
	}
	end, err := e.c.EndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, o := range end {
		if o == 0 {
			delete(end, p) // nothing to commit there
		}
	}
	committed, err := e.c.CommittedOffsets(ctx, group, topic)
	for p := range committed {
		if _, ok := end[p]; !ok {
			delete(committed, p)
		}
	}
	if err != nil || fmt.Sprint(committed) != fmt.Sprint(end) {
		t.Errorf("group %s committed %v (%v), want the end offsets %v", group, committed, err, end)
	}
}

// checkAddrs checks the addresses a client dialled: gateway ports only, the
// broker port among them (so it learned it from metadata), and no cluster
// address anywhere in its log.
func (e *compatEnv) checkAddrs(t *testing.T, client string, dialled []string, log string) {
	t.Helper()
	if len(dialled) == 0 {
		t.Errorf("%s: found no connection in its log: cannot check which addresses it used", client)
	}
	if err := e.gw.CheckAddrs(dialled); err != nil {
		t.Errorf("%s: %v", client, err)
	}
	broker := false
	for _, a := range dialled {
		broker = broker || a == e.gw.BrokerAddr()
	}
	if !broker {
		t.Errorf("%s connected to %v, never to the gateway's broker port %s", client, dialled, e.gw.BrokerAddr())
	}
	if leak := e.gw.LeaksClusterAddr(log); len(leak) > 0 {
		t.Errorf("%s's log names the cluster's own address %v: it learned an address past the gateway", client, leak)
	}
}

var javaConnect = regexp.MustCompile(`Initiating connection to node (\S+) \(id: `)

// javaAddrs are the addresses a Java client's NetworkClient connected to.
func javaAddrs(log string) []string {
	var out []string
	for _, m := range javaConnect.FindAllStringSubmatch(log, -1) {
		out = append(out, m[1])
	}
	return uniq(out)
}

func uniq(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

var javaDebug = []string{"org.apache.kafka.clients.NetworkClient"}

// java: the Java client's own tools, ProducerPerformance (idempotent,
// acks=all) and the console consumer in a classic group and in a KIP-848
// group.
func (e *compatEnv) java(ctx context.Context, t *testing.T) {
	const topic, n = "compat-java", 5000
	b := e.bed.Sub(t)
	produced := 0
	compat(t, "java-producer-perf", &produced)
	e.c.CreateTopic(ctx, topic, 3, nil)

	// --payload-monotonic makes the values 0..n-1.
	want := sequence("", n)
	prod := b.Java("producer-perf", kafkatest.JVM{Debug: javaDebug}, "org.apache.kafka.tools.ProducerPerformance",
		"--bootstrap-server", e.gw.Bootstrap(), "--topic", topic, "--num-records", strconv.Itoa(n),
		"--payload-monotonic", "--throughput", "-1",
		"--command-property", "acks=all", "enable.idempotence=true", "client.id=compat-perf")
	out, err := prod.CombinedOutput()
	if err != nil {
		t.Fatalf("ProducerPerformance through the gateway: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("%d records sent", n)) {
		t.Fatalf("ProducerPerformance did not report %d records sent:\n%s", n, out)
	}
	if bytes.Contains(out, []byte("Exception")) {
		t.Errorf("ProducerPerformance printed an exception:\n%s", out)
	}
	e.checkClusterHolds(ctx, t, topic, want)
	log := readFile(t, b.Path("producer-perf.log"))
	e.checkAddrs(t, "ProducerPerformance", javaAddrs(log), log)
	if !t.Failed() {
		produced = n
	}

	for _, gc := range []struct{ client, group, protocol, typ string }{
		{"java-console-consumer", "compat-java-classic", "classic", "classic"},
		{"java-console-consumer-848", "compat-java-848", "consumer", "consumer"},
	} {
		t.Run(gc.protocol, func(t *testing.T) {
			consumed := 0
			compat(t, gc.client, &consumed)
			name := "console-consumer-" + gc.protocol
			cmd := b.Java(name, kafkatest.JVM{Debug: javaDebug}, "org.apache.kafka.tools.consumer.ConsoleConsumer",
				"--bootstrap-server", e.gw.Bootstrap(), "--topic", topic, "--group", gc.group,
				"--from-beginning", "--max-messages", strconv.Itoa(n), "--timeout-ms", "60000",
				"--command-property", "group.protocol="+gc.protocol)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("console consumer (group.protocol=%s): %v\n%s", gc.protocol, err, stderr.String())
			}
			got := strings.Fields(stdout.String())
			sameRecords(t, "console consumer (group.protocol="+gc.protocol+")", want, got)
			e.checkGroup(ctx, t, gc.group, gc.typ, topic)
			log := readFile(t, b.Path(name+".log"))
			e.checkAddrs(t, "console consumer", javaAddrs(log), log)
			if !t.Failed() {
				consumed = len(got)
			}
		})
	}
}

var (
	kcatConnect = regexp.MustCompile(`Connecting to ipv4#([0-9.]+:[0-9]+)`)
	kcatBroker  = regexp.MustCompile(`(?m)^\s*broker (-?\d+) at (\S+)`)
)

// kcat: librdkafka, as the Debian kcat ships it.
func (e *compatEnv) kcat(ctx context.Context, t *testing.T) {
	kcat := kafkatest.RequireKcat(t)
	const topic, group, n = "compat-kcat", "compat-kcat", 2000
	b := e.bed.Sub(t)
	e.c.CreateTopic(ctx, topic, 3, nil)
	run := func(name string, stdin string, args ...string) (stdout string, stderr string) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(rctx, kcat, append([]string{"-b", e.gw.Bootstrap()}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		os.WriteFile(b.Path(name+".log"), errb.Bytes(), 0o644)
		if err != nil {
			t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, tail(errb.String(), 20))
		}
		return out.String(), errb.String()
	}

	t.Run("metadata", func(t *testing.T) {
		brokers := 0
		compat(t, "kcat-metadata", &brokers)
		out, _ := run("metadata", "", "-L", "-t", topic)
		os.WriteFile(b.Path("metadata.txt"), []byte(out), 0o644)
		var addrs []string
		for _, m := range kcatBroker.FindAllStringSubmatch(out, -1) {
			addrs = append(addrs, m[2])
		}
		if len(addrs) != 1 || addrs[0] != e.gw.BrokerAddr() {
			t.Errorf("kcat -L listed brokers %v, want the gateway's broker address %s only:\n%s", addrs, e.gw.BrokerAddr(), out)
		}
		if leak := e.gw.LeaksClusterAddr(out); len(leak) > 0 {
			t.Errorf("kcat -L shows the cluster's own address %v:\n%s", leak, out)
		}
		if !strings.Contains(out, fmt.Sprintf(`topic "%s" with 3 partitions`, topic)) {
			t.Errorf("kcat -L does not show %s with 3 partitions:\n%s", topic, out)
		}
		if !t.Failed() {
			brokers = len(addrs)
		}
	})

	want := sequence("kcat-", n)
	produced := 0
	t.Run("produce", func(t *testing.T) {
		compat(t, "kcat-produce", &produced)
		_, errOut := run("produce", strings.Join(want, "\n")+"\n", "-P", "-t", topic,
			"-X", "enable.idempotence=true", "-X", "acks=all", "-d", "broker")
		if strings.Contains(errOut, "ERROR") {
			t.Errorf("kcat produce reported errors:\n%s", grepLines(errOut, "ERROR", 10))
		}
		e.checkClusterHolds(ctx, t, topic, want)
		e.checkAddrs(t, "kcat producer", kcatAddrs(errOut), errOut)
		if !t.Failed() {
			produced = n
		}
	})
	if produced == 0 {
		t.FailNow()
	}

	t.Run("consume-group", func(t *testing.T) {
		consumed := 0
		compat(t, "kcat-consume-group", &consumed)
		out, errOut := run("consume", "", "-G", group, topic, "-X", "auto.offset.reset=earliest",
			"-c", strconv.Itoa(n), "-f", "%s\n", "-u", "-d", "broker")
		got := strings.Fields(out)
		sameRecords(t, "kcat -G", want, got)
		e.checkGroup(ctx, t, group, "classic", topic)
		e.checkAddrs(t, "kcat consumer", kcatAddrs(errOut), errOut)
		if !t.Failed() {
			consumed = len(got)
		}
	})
}

func kcatAddrs(debug string) []string {
	var out []string
	for _, m := range kcatConnect.FindAllStringSubmatch(debug, -1) {
		out = append(out, m[1])
	}
	return uniq(out)
}

func grepLines(text, word string, max int) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) && len(out) < max {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dialled records every broker address a franz-go client connects to.
type dialled struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialled) OnBrokerConnect(m kgo.BrokerMetadata, _ time.Duration, _ net.Conn, _ error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = append(d.addrs, net.JoinHostPort(m.Host, strconv.Itoa(int(m.Port))))
}

func (d *dialled) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return uniq(append([]string(nil), d.addrs...))
}

// franz: franz-go's producer, a classic and a KIP-848 group, and a
// transactional producer.
func (e *compatEnv) franz(ctx context.Context, t *testing.T) {
	const topic, n = "compat-franz", 2000
	e.c.CreateTopic(ctx, topic, 3, nil)
	client := func(t *testing.T, d *dialled, opts ...kgo.Opt) *kgo.Client {
		t.Helper()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.gw.Bootstrap()), kgo.WithHooks(d)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	want := sequence("franz-", n)

	produced := 0
	t.Run("producer", func(t *testing.T) {
		compat(t, "franz-go-producer", &produced)
		d := &dialled{}
		cl := client(t, d, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		recs := make([]*kgo.Record, n)
		for i, v := range want {
			recs[i] = kgo.StringRecord(v)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("producing through the gateway: %v", err)
		}
		e.checkClusterHolds(ctx, t, topic, want)
		e.checkAddrs(t, "franz-go producer", d.list(), "")
		if !t.Failed() {
			produced = n
		}
	})
	if produced == 0 {
		t.FailNow()
	}

	for _, gc := range []struct {
		client, group, typ string
		opts               []kgo.Opt
	}{
		{"franz-go-group-classic", "compat-franz-classic", "classic", nil},
		{"franz-go-group-848", "compat-franz-848", "consumer", []kgo.Opt{kgo.ServerSideBalancer()}},
	} {
		t.Run(gc.typ+"-group", func(t *testing.T) {
			consumed := 0
			compat(t, gc.client, &consumed)
			d := &dialled{}
			cl := client(t, d, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumerGroup(gc.group),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit()}, gc.opts...)...)
			got := consume(ctx, t, cl, n)
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Errorf("committing through the gateway: %v", err)
			}
			sameRecords(t, gc.client, want, got)
			e.checkGroup(ctx, t, gc.group, gc.typ, topic)
			e.checkAddrs(t, gc.client, d.list(), "")
			if !t.Failed() {
				consumed = len(got)
			}
		})
	}

	t.Run("transactions", func(t *testing.T) {
		const txTopic = "compat-franz-txn"
		committed := 0
		compat(t, "franz-go-transactions", &committed)
		e.c.CreateTopic(ctx, txTopic, 3, nil)
		d := &dialled{}
		cl := client(t, d, kgo.DefaultProduceTopic(txTopic), kgo.TransactionalID("compat-txn"),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		var want []string
		for i, tx := range []struct {
			n      int
			commit bool
		}{{500, true}, {200, false}, {500, true}} {
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			vals := sequence(fmt.Sprintf("txn%d-", i), tx.n)
			recs := make([]*kgo.Record, len(vals))
			for j, v := range vals {
				recs[j] = kgo.StringRecord(v)
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("producing in transaction %d: %v", i, err)
			}
			if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(tx.commit)); err != nil {
				t.Fatalf("ending transaction %d (commit=%v) through the gateway: %v", i, tx.commit, err)
			}
			if tx.commit {
				want = append(want, vals...)
			}
		}
		e.checkClusterHolds(ctx, t, txTopic, want)
		rd := &dialled{}
		rcl := client(t, rd, kgo.ConsumeTopics(txTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		got := consume(ctx, t, rcl, len(want))
		sameRecords(t, "read_committed consumer through the gateway", want, got)
		e.checkAddrs(t, "franz-go transactional producer", d.list(), "")
		e.checkAddrs(t, "franz-go read_committed consumer", rd.list(), "")
		if !t.Failed() {
			committed = len(got)
		}
	})
}

// consume polls cl until it has n records, then a little longer to catch any
// extra one, and returns their values.
func consume(ctx context.Context, t *testing.T, cl *kgo.Client, n int) []string {
	t.Helper()
	var got []string
	deadline := time.Now().Add(90 * time.Second)
	for len(got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d records in 90s, want %d", len(got), n)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if pctx.Err() == nil {
				t.Errorf("fetching %s/%d through the gateway: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	// Anything more (a duplicate) would arrive with the next fetch.
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	return got
}
