package proxy_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReviewFenceWaitsForProduceInFlight: POST /fence answers "no Produce
// is forwarded any more", and the agents then switch the other gateways.
// A Produce this gateway forwarded just before the fence, still awaiting
// the old cluster, is acknowledged from the old cluster after the fence
// answered: the gateway acknowledges a write to the old cluster after the
// agents were told it would not. (PauseProduce settles in-flight produces;
// FenceRoute does not.)
func TestReviewFenceWaitsForProduceInFlight(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := b.client()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	intercepted, release := make(chan struct{}), make(chan struct{})
	old := b.clusters[0]
	old.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		close(intercepted)
		old.SleepControl(func() { <-release })
		return nil, nil, false // the cluster then handles it as usual
	})
	done := produceAsync(ctx, cl)
	select {
	case <-intercepted:
	case <-ctx.Done():
		t.Fatal("the produce never reached the old cluster")
	}
	if code, _ := b.post("/fence", `{"route":"switchover-route","epoch":1}`); code != http.StatusOK {
		t.Fatalf("fence answered %d", code)
	}
	fenced := time.Now()
	// The agents now switch the other gateways to the new cluster; the old
	// cluster answers the produce it was sent before the fence.
	close(release)
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("a produce was acknowledged by the old cluster %v after POST /fence answered (old cluster now holds %d records)",
				time.Since(fenced).Round(time.Millisecond), b.records(old))
		}
	case <-ctx.Done():
	}
}
