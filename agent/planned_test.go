package agent_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/agent"
)

// TestPlannedSwitchPausesProducers: a manual failover away from a healthy
// cluster holds producers at the gateway until the standby has every
// record, then flips, and the record sent during the pause is acknowledged
// by the standby alone. If replication does not catch up within
// failover.plannedPause, nothing flips and producers resume.
func TestPlannedSwitchPausesProducers(t *testing.T) {
	h, ctx, leader := startBehind(t, 2*time.Second)

	o := h.failover(ctx, leader, agent.FailoverRequest{})
	if o.OK || o.Code != agent.CodeNotCaughtUp || !strings.Contains(o.Message, "20 records behind") {
		t.Fatalf("a planned failover with replication stuck answered %+v; want not-caught-up naming the 20 records", o)
	}
	if st := h.gw.Status(); st[0].ProducePausedUntil != nil || st[0].Domain != primary {
		t.Fatalf("after the refused switch the gateway serves %+v; want %s and producers resumed", st[0], primary)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:"+strconv.Itoa(h.gwPort)), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	held, copied := make(chan error, 1), make(chan error, 1)
	go func() {
		// Once producers are paused, a record sent through the gateway
		// waits, and replication catches up.
		for h.gw.Status()[0].ProducePausedUntil == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		cl.Produce(ctx, kgo.StringRecord("sent during the pause"), func(_ *kgo.Record, err error) { held <- err })
		copied <- produceN(h.clusters[1], 20)
	}()
	o = h.failover(ctx, leader, agent.FailoverRequest{})
	if !o.OK || o.To != standby {
		t.Fatalf("planned failover: %+v", o)
	}
	if err := <-copied; err != nil {
		t.Fatal(err)
	}
	if err := <-held; err != nil {
		t.Fatalf("the record held during the pause: %v", err)
	}
	if n1, n2 := records(t, h.clusters[0]), records(t, h.clusters[1]); n1 != 20 || n2 != 21 {
		t.Fatalf("cluster 1 has %d records and cluster 2 %d; want 20 and 21 (the held record on cluster 2 only)", n1, n2)
	}
}

// records counts the topic's records on a cluster.
func records(t *testing.T, c *kfake.Cluster) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// TestPlannedPauseRenewed: while the leader waits for replication it renews
// the pause, so that it never ends on its own under a live leader, however
// long failover.plannedPause is.
func TestPlannedPauseRenewed(t *testing.T) {
	h, ctx, leader := startBehind(t, 8*time.Second)
	answered := make(chan agent.Outcome, 1)
	go func() { answered <- h.failover(ctx, leader, agent.FailoverRequest{}) }()
	var first time.Time
	waitFor(t, ctx, "the pause renewed", func() bool {
		until := h.gw.Status()[0].ProducePausedUntil
		if until != nil && first.IsZero() {
			first = *until
		}
		return until != nil && until.After(first)
	})
	if o := <-answered; o.OK || o.Code != agent.CodeNotCaughtUp {
		t.Fatalf("a planned failover with replication stuck answered %+v; want not-caught-up", o)
	}
}

// TestNoLeaseWhilePaused: while a planned switch holds a route's producers,
// the leader renews the route's pause but not its lease, so that the pause
// outlasts every lease at the old epoch however long the flip takes to
// commit, and once the switch is refused the lease is renewed again.
func TestNoLeaseWhilePaused(t *testing.T) {
	h, ctx, leader := startBehind(t, 6*time.Second)
	leaseUntil := func() time.Time {
		if l := h.gw.Status()[0].Lease; l != nil {
			return l.Until
		}
		return time.Time{}
	}
	answered := make(chan agent.Outcome, 1)
	go func() { answered <- h.failover(ctx, leader, agent.FailoverRequest{}) }()
	waitFor(t, ctx, "producers paused", func() bool { return h.gw.Status()[0].ProducePausedUntil != nil })
	// A renewal sent as the pause began may still land.
	time.Sleep(time.Second)
	before := leaseUntil()
	time.Sleep(3 * time.Second)
	if after := leaseUntil(); !after.Equal(before) || h.gw.Status()[0].ProducePausedUntil == nil {
		t.Fatalf("during the pause the lease moved from %v to %v (paused: %v); want no renewal", before, after,
			h.gw.Status()[0].ProducePausedUntil != nil)
	}
	if o := <-answered; o.Code != agent.CodeNotCaughtUp {
		t.Fatalf("a planned failover with replication stuck answered %+v; want not-caught-up", o)
	}
	waitFor(t, ctx, "the lease renewed after the refused switch", func() bool { return leaseUntil().After(before) })
}

// startBehind starts three agents whose standby is 20 records behind the
// active cluster, with replication stuck there, and waits until the leader
// has measured that lag and a quorum sees both clusters healthy: a planned
// switch's starting point.
func startBehind(t *testing.T, plannedPause time.Duration) (*harness, context.Context, string) {
	t.Helper()
	h := newHarness(t, policyOpts{plannedPause: plannedPause})
	produceTo(t, h.clusters[0], 20)
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	leader := h.leader(ctx)
	waitBothHealthy(t, ctx, h, leader, 20)
	return h, ctx, leader
}
