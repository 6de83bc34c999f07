package demo

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func testClusters(t *testing.T) (*cluster, *cluster) {
	t.Helper()
	p := newPorts()
	var cs [2]*cluster
	for i, name := range []string{primary, standby} {
		ports, err := p.each(brokers)
		if err != nil {
			t.Fatal(err)
		}
		c, err := startCluster(name, name, ports)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.kill() })
		cs[i] = c
	}
	return cs[0], cs[1]
}

func client(t *testing.T, c *cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestCopierKeepsOffsets: the demo copier puts every record at the offset
// it had, copies the group's committed offsets but never past what it has
// copied, and resumes at the target's end when started again.
func TestCopierKeepsOffsets(t *testing.T) {
	src, dst := testClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	prod := client(t, src, kgo.DefaultProduceTopic(topic))
	produce := func(from, n int) {
		for i := from; i < from+n; i++ {
			if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i % 7)), Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 90)
	srcAdm := kadm.NewClient(client(t, src))
	dstAdm := kadm.NewClient(client(t, dst))
	commit := kadm.Offsets{}
	for p := range int32(partitions) {
		commit.Add(kadm.Offset{Topic: topic, Partition: p, At: 5, LeaderEpoch: -1})
	}
	if _, err := srcAdm.CommitOffsets(ctx, group, commit); err != nil {
		t.Fatal(err)
	}

	cp, err := startCopier(ctx, src, dst, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.caughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	cp.stop()
	produce(90, 30)
	cp, err = startCopier(ctx, src, dst, log) // resumes at the target's end
	if err != nil {
		t.Fatal(err)
	}
	defer cp.stop()
	if err := cp.caughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if n, errs, diverged := cp.stats(); n != 30 || errs != 0 || diverged != 0 {
		t.Errorf("second copier copied %d records (%d errors, %d shifted partitions); want 30, 0, 0", n, errs, diverged)
	}

	read := func(c *cluster) map[string]string { // "partition/offset" -> value
		cl := client(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := map[string]string{}
		for len(got) < 120 && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				got[strconv.Itoa(int(r.Partition))+"/"+strconv.FormatInt(r.Offset, 10)] = string(r.Value)
			})
		}
		return got
	}
	want, got := read(src), read(dst)
	if len(got) != 120 {
		t.Fatalf("target holds %d records, want 120", len(got))
	}
	for pos, v := range want {
		if got[pos] != v {
			t.Errorf("record at %s: target has %q, source %q", pos, got[pos], v)
		}
	}
	offsets, err := dstAdm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(partitions) {
		if o, ok := offsets.Lookup(topic, p); !ok || o.At != 5 {
			t.Errorf("group offset of partition %d on the target: %+v, want 5", p, o)
		}
	}
}

func TestLedgerTally(t *testing.T) {
	l := newLedger()
	for seq := range int64(5) {
		l.ack(seq, nil)
	}
	l.ack(5, context.Canceled)
	l.mu.Lock()
	l.seen[0] = &seenRecord{reads: 1}
	l.seen[1] = &seenRecord{reads: 2}
	l.seen[2] = &seenRecord{reads: 2, elsewhere: true}
	l.seen[3] = &seenRecord{reads: 1}
	l.mu.Unlock()
	tl := l.tally(time.Now())
	if tl.Acked != 5 || tl.Failed != 1 || tl.Lost != 1 || tl.LostBefore != 1 || tl.LostSample[0] != 4 || tl.Reread != 1 || tl.StoredTwice != 1 {
		t.Errorf("tally %+v; want 5 acked, 1 failed, 1 lost (4), 1 re-read, 1 stored twice", tl)
	}
	if l.allConsumed() {
		t.Error("allConsumed with record 4 unread")
	}
}
