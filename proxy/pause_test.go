package proxy_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// records counts the records of the topic on a cluster, read directly.
func (b *bed) records(c *kfake.Cluster) int64 {
	b.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		b.t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		b.t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// produceAsync produces one record and returns where its result will come.
func produceAsync(ctx context.Context, cl *kgo.Client) <-chan error {
	done := make(chan error, 1)
	cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte("held")}, func(_ *kgo.Record, err error) { done <- err })
	return done
}

// held waits until the gateway holds a Produce, and checks it was not
// acknowledged.
func (b *bed) held(ctx context.Context, done <-chan error, want float64) {
	b.t.Helper()
	waitFor(b.t, ctx, "the gateway holds the produce", func() bool { return b.counter("turnout_gateway_produce_held_total") >= want })
	select {
	case err := <-done:
		b.t.Fatalf("a produce was answered (%v) while the route was paused", err)
	default:
	}
}

// TestPauseHoldsProduceUntilSwitch is the planned switch: with producers
// paused, nothing more reaches the cluster being left; the held record is
// acknowledged by the cluster the route switches to, and only there.
func TestPauseHoldsProduceUntilSwitch(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := b.client()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []struct {
		body string
		code int
	}{
		{`{"route":"switchover-route","epoch":4,"ttl":"10s"}`, http.StatusConflict}, // not the served epoch
		{`{"route":"nope","epoch":0,"ttl":"10s"}`, http.StatusBadRequest},
		{`{"route":"switchover-route","epoch":0,"ttl":"3m"}`, http.StatusBadRequest}, // above adminapi.MaxPause
		{`{"route":"switchover-route","epoch":0,"ttl":"soon"}`, http.StatusBadRequest},
	} {
		if code, st := b.post("/pause", bad.body); code != bad.code || st.Routes[0].ProducePausedUntil != nil {
			t.Errorf("pause %s answered %d %+v; want %d and no pause", bad.body, code, st.Routes[0], bad.code)
		}
	}
	code, st := b.post("/pause", `{"route":"switchover-route","epoch":0,"ttl":"30s"}`)
	if code != http.StatusOK || st.Routes[0].ProducePausedUntil == nil {
		t.Fatalf("pause answered %d %+v", code, st)
	}
	done := produceAsync(ctx, cl)
	b.held(ctx, done, 1)
	if n := b.records(b.clusters[0]); n != 1 {
		t.Fatalf("cluster 1 has %d records while paused, want 1", n)
	}

	if code, st := b.post("/restart", `{"routes":[{"name":"switchover-route","domain":"kafka2-domain","epoch":1}]}`); code != http.StatusOK {
		t.Fatalf("switch answered %d %+v", code, st)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the held produce failed after the switch: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the held produce was never acknowledged after the switch")
	}
	if n1, n2 := b.records(b.clusters[0]), b.records(b.clusters[1]); n1 != 1 || n2 != 1 {
		t.Fatalf("after the switch cluster 1 has %d records and cluster 2 %d; want 1 and 1 (the held one on cluster 2)", n1, n2)
	}
	if _, st := b.post("/resume", `{"route":"switchover-route"}`); st.Routes[0].ProducePausedUntil != nil {
		t.Fatalf("the switched route is still paused: %+v", st.Routes[0])
	}
}

// TestPauseEnds: a pause ends by /resume, or by itself when its time is up
// (the agent that asked may have died), and the held records go to the
// cluster the route still serves.
func TestPauseEnds(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := b.client()

	b.post("/pause", `{"route":"switchover-route","epoch":0,"ttl":"30s"}`)
	done := produceAsync(ctx, cl)
	b.held(ctx, done, 1)
	if code, _ := b.post("/resume", `{"route":"switchover-route"}`); code != http.StatusOK {
		t.Fatalf("resume answered %d", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("the produce held until /resume failed: %v", err)
	}

	b.post("/pause", `{"route":"switchover-route","epoch":0,"ttl":"500ms"}`)
	done = produceAsync(ctx, cl)
	// Held (counted), then released by the clock: no /resume is sent.
	waitFor(t, ctx, "the gateway holds the produce", func() bool { return b.counter("turnout_gateway_produce_held_total") >= 2 })
	if err := <-done; err != nil {
		t.Fatalf("the produce held until the pause expired failed: %v", err)
	}
	if n := b.records(b.clusters[0]); n != 2 {
		t.Fatalf("cluster 1 has %d records, want 2", n)
	}
}

// stalledProduce produces one record, then another that cluster 1 holds
// unanswered until release is closed, and returns once it holds it.
func (b *bed) stalledProduce(ctx context.Context) (done <-chan error, release chan struct{}) {
	b.t.Helper()
	cl := b.client()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("first")}).FirstErr(); err != nil {
		b.t.Fatal(err)
	}
	seen, release := make(chan struct{}), make(chan struct{})
	c := b.clusters[0]
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		close(seen)
		c.SleepControl(func() { <-release })
		return nil, nil, false // then the cluster appends it as usual
	})
	done = produceAsync(ctx, cl)
	select {
	case <-seen:
	case <-ctx.Done():
		b.t.Fatal("the produce never reached cluster 1")
	}
	return done, release
}

// TestPauseWaitsForProduceInFlight: a pause answers only once the Produce
// requests forwarded before it are answered, so that the end offsets the
// agents read next hold every record acknowledged before the pause.
func TestPauseWaitsForProduceInFlight(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done, release := b.stalledProduce(ctx)

	paused := make(chan int, 1)
	go func() {
		code, _ := b.post("/pause", `{"route":"switchover-route","epoch":0,"ttl":"30s"}`)
		paused <- code
	}()
	waitFor(t, ctx, "the pause has started", func() bool { return b.counter("turnout_gateway_produce_pauses_total") >= 1 })
	select {
	case code := <-paused:
		t.Fatalf("the pause answered %d while a produce was in flight", code)
	default:
	}
	close(release)
	if code := <-paused; code != http.StatusOK {
		t.Fatalf("pause answered %d", code)
	}
	if n := b.records(b.clusters[0]); n != 2 {
		t.Fatalf("when the pause answered, cluster 1 had %d records; want 2 (the one in flight included)", n)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
