package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/e2e/kafkatest"
)

// TestClusterRestart checks the test bed itself: a cluster stopped gracefully
// or killed with SIGKILL comes back on the same ports with its records.
func TestClusterRestart(t *testing.T) {
	t.Parallel()
	b := kafkatest.NewBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := b.StartClusters(ctx, "restart")[0]
	c.CreateTopic(ctx, "kept", 1, nil)
	produce := func(n int, from int) {
		t.Helper()
		cl := c.Client(kgo.DefaultProduceTopic("kept"))
		defer cl.Close()
		for i := range n {
			if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(from+i))).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}
	check := func(want int64, after string) {
		t.Helper()
		got, err := c.Records(ctx, "kept")
		if err != nil || got != want {
			t.Fatalf("after %s: topic holds %d records (%v), want %d", after, got, err, want)
		}
	}
	produce(10, 0)
	port := c.Port

	if err := c.Stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if c.Running() {
		t.Fatal("cluster still running after Stop")
	}
	c.Start(ctx)
	if c.Port != port {
		t.Fatalf("restarted on port %d, want %d", c.Port, port)
	}
	check(10, "a graceful stop and restart")
	produce(10, 10)

	c.Kill()
	if c.Running() {
		t.Fatal("cluster still running after Kill")
	}
	c.Start(ctx)
	check(20, "kill -9 and restart")
	recs, err := c.Values(ctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Value != fmt.Sprint(i) {
			t.Fatalf("record %d is %q after restarts, want %q", i, r.Value, fmt.Sprint(i))
		}
	}
}
