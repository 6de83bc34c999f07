package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/proxy"
	"github.com/turnout/turnout/proxy/adminapi"
)

// status reads GET /status.
func (b *bed) status() adminapi.StatusResponse {
	b.t.Helper()
	resp, err := http.Get(b.admin.URL + "/status")
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st adminapi.StatusResponse
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		b.t.Fatal(err)
	}
	return st
}

// answered waits for a held produce's result after it was released.
func answered(t *testing.T, ctx context.Context, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: the held produce failed: %v", what, err)
		}
	case <-ctx.Done():
		t.Fatalf("%s: the held produce was never acknowledged", what)
	}
}

// TestLeaseLapseHoldsProduce: once the agents lease a route, its producers
// are forwarded only while the lease is live; a lapsed lease holds them (no
// record reaches the cluster, none is acknowledged) and a renewal lets them
// go on.
func TestLeaseLapseHoldsProduce(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := b.client()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("unleased")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if code, st := b.post("/lease", `{"route":"switchover-route","domain":"kafka1-domain","epoch":0,"ttl":"300ms"}`); code != http.StatusOK ||
		st.Routes[0].Lease == nil || !st.Routes[0].Lease.Live {
		t.Fatalf("lease answered %d %+v", code, st)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("leased")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the lease to lapse", func() bool { return b.counter("turnout_gateway_lease_lapses_total") >= 1 })
	done := produceAsync(ctx, cl)
	b.held(ctx, done, 1)
	if n := b.records(b.clusters[0]); n != 2 {
		t.Fatalf("cluster 1 has %d records with the lease lapsed, want 2", n)
	}
	if st := b.status(); st.Routes[0].Lease == nil || !st.Routes[0].Lease.ProduceHeld {
		t.Errorf("status does not show the route held: %+v", st.Routes[0].Lease)
	}
	if code, st := b.post("/lease", `{"route":"switchover-route","domain":"kafka1-domain","epoch":0,"ttl":"30s"}`); code != http.StatusOK {
		t.Fatalf("renewal answered %d %+v", code, st)
	}
	answered(t, ctx, done, "renewed")
	if n := b.records(b.clusters[0]); n != 3 {
		t.Fatalf("cluster 1 has %d records after the renewal, want 3", n)
	}
}

// TestLeaseForAnotherEpochFences: a lease is granted only for the domain and
// epoch the route serves. One for a newer epoch means the agents switched
// the route: it is refused, and the route's producers are held, even past a
// live lease, a resume or the end of a pause, until the route is switched;
// then they go to the new cluster.
func TestLeaseForAnotherEpochFences(t *testing.T) {
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
		{`{"route":"switchover-route","domain":"kafka2-domain","epoch":0,"ttl":"30s"}`, http.StatusConflict},
		{`{"route":"switchover-route","domain":"kafka1-domain","epoch":0,"ttl":"2m"}`, http.StatusBadRequest},
		{`{"route":"nope","domain":"kafka1-domain","epoch":0,"ttl":"30s"}`, http.StatusBadRequest},
	} {
		if code, st := b.post("/lease", bad.body); code != bad.code || st.Routes[0].Lease != nil {
			t.Errorf("lease %s answered %d %+v; want %d and no lease", bad.body, code, st.Routes[0].Lease, bad.code)
		}
	}
	b.post("/lease", `{"route":"switchover-route","domain":"kafka1-domain","epoch":0,"ttl":"30s"}`)
	if code, _ := b.post("/pause", `{"route":"switchover-route","epoch":0,"ttl":"300ms"}`); code != http.StatusOK {
		t.Fatalf("pause answered %d", code)
	}
	code, st := b.post("/lease", `{"route":"switchover-route","domain":"kafka2-domain","epoch":1,"ttl":"30s"}`)
	if code != http.StatusConflict || st.Routes[0].Lease == nil || st.Routes[0].Lease.CommittedEpoch != 1 || !st.Routes[0].Lease.ProduceHeld {
		t.Fatalf("a lease for a newer epoch answered %d %+v; want 409 and the route held", code, st.Routes[0].Lease)
	}
	done := produceAsync(ctx, cl)
	b.held(ctx, done, 1)
	// Neither the pause's end nor a resume nor the old epoch's lease lets
	// it through.
	waitFor(t, ctx, "the pause to end", func() bool {
		st := b.status()
		return st.Routes[0].ProducePausedUntil == nil
	})
	b.post("/resume", `{"route":"switchover-route","epoch":0}`)
	b.post("/lease", `{"route":"switchover-route","domain":"kafka1-domain","epoch":0,"ttl":"30s"}`)
	if code, st := b.post("/restart", `{"routes":[{"name":"switchover-route","domain":"kafka2-domain","epoch":1}]}`); code != http.StatusOK {
		t.Fatalf("switch answered %d %+v", code, st)
	}
	answered(t, ctx, done, "switched")
	if n1, n2 := b.records(b.clusters[0]), b.records(b.clusters[1]); n1 != 1 || n2 != 1 {
		t.Fatalf("cluster 1 has %d records and cluster 2 %d; want 1 and 1 (the fenced one on cluster 2)", n1, n2)
	}
	// The switch carried the lease over to the new epoch; the old one is
	// refused now.
	if st := b.status(); st.Routes[0].Lease == nil || st.Routes[0].Lease.Epoch != 1 || !st.Routes[0].Lease.Live {
		t.Errorf("after the switch the lease is %+v; want live at epoch 1", st.Routes[0].Lease)
	}
	if code, _ := b.post("/lease", `{"route":"switchover-route","domain":"kafka1-domain","epoch":0,"ttl":"30s"}`); code != http.StatusConflict {
		t.Errorf("a lease for the old epoch answered %d, want 409", code)
	}
}

// TestFenceHoldsUntilSwitch: POST /fence with the epoch the agents committed
// holds a route still on an older one at once; one on that epoch is not
// held.
func TestFenceHoldsUntilSwitch(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := b.client()
	if code, _ := b.post("/fence", `{"route":"switchover-route","epoch":0}`); code != http.StatusOK {
		t.Fatalf("fence at the served epoch answered %d", code)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("not fenced")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if code, _ := b.post("/fence", `{"route":"switchover-route","epoch":1}`); code != http.StatusOK {
		t.Fatalf("fence answered %d", code)
	}
	done := produceAsync(ctx, cl)
	b.held(ctx, done, 1)
	b.post("/restart", `{"routes":[{"name":"switchover-route","domain":"kafka2-domain","epoch":1}]}`)
	answered(t, ctx, done, "switched")
	if n1, n2 := b.records(b.clusters[0]), b.records(b.clusters[1]); n1 != 1 || n2 != 1 {
		t.Fatalf("cluster 1 has %d records and cluster 2 %d; want 1 and 1", n1, n2)
	}
}

// TestResumeForAnotherEpochRefused: a resume carries the epoch its pause was
// for; an agent that no longer leads cannot release a pause meant for a
// newer epoch.
func TestResumeForAnotherEpochRefused(t *testing.T) {
	b := newBed(t)
	b.post("/pause", `{"route":"switchover-route","epoch":0,"ttl":"30s"}`)
	if code, st := b.post("/resume", `{"route":"switchover-route","epoch":3}`); code != http.StatusConflict || st.Routes[0].ProducePausedUntil == nil {
		t.Fatalf("a resume for epoch 3 answered %d %+v; want 409 and the pause on", code, st.Routes[0])
	}
	if code, st := b.post("/resume", `{"route":"switchover-route","epoch":0}`); code != http.StatusOK || st.Routes[0].ProducePausedUntil != nil {
		t.Fatalf("a resume for the epoch answered %d %+v; want 200 and no pause", code, st.Routes[0])
	}
}

// TestPauseHasAnOwner: only the agent that holds a pause may resume it; a
// leader of a later term takes a pause over, and one of an earlier term,
// deposed while it waited, can neither take it back nor end it.
func TestPauseHasAnOwner(t *testing.T) {
	b := newBed(t)
	pause := `{"route":"switchover-route","epoch":0,"ttl":"30s","owner":"%s","term":%d}`
	resume := `{"route":"switchover-route","epoch":0,"owner":"%s","term":%d}`
	for i, step := range []struct {
		path, owner string
		term        uint64
		code        int
		paused      bool
	}{
		{"/pause", "a1", 2, http.StatusOK, true},
		{"/resume", "a2", 1, http.StatusConflict, true}, // not the owner
		{"/resume", "", 0, http.StatusConflict, true},   // names no owner
		{"/pause", "a2", 3, http.StatusOK, true},        // the next leader takes over
		{"/pause", "a1", 2, http.StatusConflict, true},  // the deposed one cannot take it back
		{"/resume", "a1", 2, http.StatusConflict, true}, // nor end it
		{"/resume", "a2", 3, http.StatusOK, false},
		{"/resume", "a1", 2, http.StatusOK, false}, // nothing to resume
	} {
		body := fmt.Sprintf(resume, step.owner, step.term)
		if step.path == "/pause" {
			body = fmt.Sprintf(pause, step.owner, step.term)
		}
		code, st := b.post(step.path, body)
		if paused := st.Routes[0].ProducePausedUntil != nil; code != step.code || paused != step.paused {
			t.Fatalf("step %d: %s by %s (term %d) answered %d, paused %v; want %d, paused %v",
				i+1, step.path, step.owner, step.term, code, paused, step.code, step.paused)
		}
	}
}

// TestRequireLeaseHoldsFromStart: with admin.requireLease a gateway holds a
// route's producers from start until the agents first lease it, so one
// started from a file the agents have since switched away from never
// forwards to the old cluster.
func TestRequireLeaseHoldsFromStart(t *testing.T) {
	b := newBedWith(t, bedSetup{gateway: "  admin:\n    requireLease: true\n"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := produceAsync(ctx, b.client())
	b.held(ctx, done, 1)
	if n := b.records(b.clusters[0]); n != 0 {
		t.Fatalf("cluster 1 has %d records before any lease, want 0", n)
	}
	if code, st := b.post("/lease", `{"route":"switchover-route","domain":"kafka1-domain","epoch":0,"ttl":"30s"}`); code != http.StatusOK {
		t.Fatalf("lease answered %d %+v", code, st)
	}
	answered(t, ctx, done, "leased")
}

// TestFenceCutsProduceInFlight: a fence does not wait on the old cluster,
// which in a forced failover is usually hung: it closes the connection with
// a Produce in flight and answers OK while the cluster still holds it. The
// client never gets that acknowledgement, and its resend is held.
func TestFenceCutsProduceInFlight(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done, release := b.stalledProduce(ctx)
	if code, st := b.post("/fence", `{"route":"switchover-route","epoch":1}`); code != http.StatusOK {
		t.Fatalf("POST /fence with a produce the old cluster does not answer answered %d: %s", code, st.Error)
	}
	close(release) // the cluster answers, to a connection the gateway closed
	b.held(ctx, done, 1)
}

// TestFenceCutsProducePastTheHold: a Produce that passed the route's hold
// just before the fence, but is not forwarded yet, is cut likewise: it never
// reaches the client as acknowledged, and its resend is held.
func TestFenceCutsProducePastTheHold(t *testing.T) {
	parked, unpark := make(chan struct{}), make(chan struct{})
	var once sync.Once
	defer proxy.SetParkProduce(func() {
		once.Do(func() {
			close(parked)
			<-unpark
		})
	})()
	b := newBed(t)
	var unparked sync.Once
	unparkOnce := func() { unparked.Do(func() { close(unpark) }) }
	t.Cleanup(unparkOnce) // before the gateway closes, which waits for the produce
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := produceAsync(ctx, b.client())
	select {
	case <-parked:
	case <-ctx.Done():
		t.Fatal("the produce never reached the gateway")
	}
	if code, st := b.post("/fence", `{"route":"switchover-route","epoch":1}`); code != http.StatusOK {
		t.Fatalf("POST /fence with a produce past the hold answered %d: %s", code, st.Error)
	}
	unparkOnce()
	b.held(ctx, done, 1)
}

// TestAbandonedSwitchGrantsNoLease: like a lease (GrantLease), a /restart
// the agent gave up on must not carry the route's lease over to the new
// epoch: the agent does not count on that lease, and it would run a full
// ttl from when the switch ended.
func TestAbandonedSwitchGrantsNoLease(t *testing.T) {
	b := newBed(t)
	if code, st := b.post("/lease", `{"route":"switchover-route","domain":"kafka1-domain","epoch":0,"ttl":"30s"}`); code != http.StatusOK {
		t.Fatalf("lease answered %d: %s", code, st.Error)
	}
	h := proxy.AdminHandler(b.gw, b.metrics, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the agent gave up on the request
	req := httptest.NewRequest(http.MethodPost, "/restart",
		strings.NewReader(`{"routes":[{"name":"switchover-route","domain":"kafka2-domain","epoch":1}]}`)).WithContext(ctx)
	h.ServeHTTP(httptest.NewRecorder(), req)
	st := b.status().Routes[0]
	if st.ConfigEpoch != 1 {
		t.Fatalf("the switch was not made (epoch %d); the test needs it made", st.ConfigEpoch)
	}
	if l := st.Lease; l == nil || l.Live && l.Epoch == 1 || !l.ProduceHeld {
		t.Fatalf("an abandoned /restart carried the lease over to epoch 1: %+v", l)
	}
}

// restartProcess closes the gateway and starts another on the same files,
// as systemd restarts a crashed gateway process.
func (b *bed) restartProcess() {
	b.t.Helper()
	b.gw.Close(context.Background())
	b.admin.Close()
	b.gw = proxy.New(b.path, testLogger(b.t), b.metrics)
	if err := b.gw.Start(context.Background()); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { b.gw.Close(context.Background()) })
	b.admin = httptest.NewServer(proxy.AdminHandler(b.gw, b.metrics, true))
	b.t.Cleanup(b.admin.Close)
}

// TestFencingSurvivesGatewayRestart: a gateway process restarted while the
// agents cannot reach it (a crash, systemd) must not forward to the old
// cluster: a route the agents leased holds its producers until they grant
// a lease again, and one fenced at a newer epoch holds them until it is
// switched, whatever lease it is granted at the epoch it serves.
func TestFencingSurvivesGatewayRestart(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease := `{"route":"switchover-route","domain":"kafka1-domain","epoch":0,"ttl":"30s"}`
	if code, st := b.post("/lease", lease); code != http.StatusOK {
		t.Fatalf("lease answered %d: %s", code, st.Error)
	}
	b.restartProcess()
	if l := b.status().Routes[0].Lease; l == nil || !l.ProduceHeld {
		t.Fatalf("a leased route's producers are forwarded after a restart, before any lease: %+v", l)
	}
	cl := b.client()
	done := produceAsync(ctx, cl)
	b.held(ctx, done, 1)
	if code, st := b.post("/lease", lease); code != http.StatusOK {
		t.Fatalf("lease answered %d: %s", code, st.Error)
	}
	answered(t, ctx, done, "after a lease")

	if code, st := b.post("/fence", `{"route":"switchover-route","epoch":1}`); code != http.StatusOK {
		t.Fatalf("fence answered %d: %s", code, st.Error)
	}
	cl.Close()
	b.restartProcess()
	if code, st := b.post("/lease", lease); code != http.StatusOK {
		t.Fatalf("lease answered %d: %s", code, st.Error)
	}
	if l := b.status().Routes[0].Lease; l == nil || !l.ProduceHeld || l.CommittedEpoch != 1 {
		t.Fatalf("a fenced route restarted forgot the committed epoch: %+v", l)
	}
}
