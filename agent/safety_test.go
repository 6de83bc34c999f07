package agent_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout/agent"
)

// adminDoor stands before gw-1's admin API: it counts the calls by path,
// and stops the n-th call to one path until the test lets it through.
type adminDoor struct {
	srv     *httptest.Server
	next    http.Handler // set before the agents start
	path    string
	n       int
	arrived chan struct{} // closed when the call stopped arrives
	proceed chan struct{} // closed by the test to let it through

	mu    sync.Mutex
	calls map[string]int
}

func newAdminDoor(t *testing.T, path string, n int) *adminDoor {
	d := &adminDoor{path: path, n: n, arrived: make(chan struct{}), proceed: make(chan struct{}), calls: map[string]int{}}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.calls[r.URL.Path]++
		stop := r.URL.Path == d.path && d.calls[r.URL.Path] == d.n
		d.mu.Unlock()
		if stop {
			close(d.arrived)
			select {
			case <-d.proceed:
			case <-r.Context().Done():
				return
			}
		}
		d.next.ServeHTTP(w, r)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *adminDoor) count(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[path]
}

// cutOff waits for the stopped call, stops every agent but the leader, so
// that it loses its quorum, and lets the call through.
func (d *adminDoor) cutOff(ctx context.Context, h *harness, leader string) {
	h.t.Helper()
	select {
	case <-d.arrived:
	case <-ctx.Done():
		h.t.Fatalf("no call %d to %s arrived", d.n, d.path)
	}
	for _, id := range []string{"a1", "a2", "a3"} {
		if id != leader {
			h.stop(id)
		}
	}
	close(d.proceed)
}

// waitBothHealthy waits until the leader measured the lag records and a
// quorum sees both clusters healthy.
func waitBothHealthy(t *testing.T, ctx context.Context, h *harness, leader string, records int64) {
	t.Helper()
	waitFor(t, ctx, "the leader measured the lag, and a quorum sees both clusters healthy", func() bool {
		st := h.status(leader)
		l := st.Lag[route]
		return l.Known && l.Records == records && st.Domain[primary].Healthy && st.Domain[standby].Healthy
	})
}

// TestQuorumLostLeavesThePause: a leader that loses its quorum with
// producers paused for a planned switch never resumes them, as its flip may
// have been committed, or the next leader may have taken the pause over
// and be switching: while it commits the flip (the last pause renewal
// before the flip is where it is cut off) it answers in doubt; while it
// waits for replication it answers that the request should be sent again.
// Either way the answer carries the pinned target.
func TestQuorumLostLeavesThePause(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pauseN  int // the /pause call at which the leader is cut off
		records int // what replication has to catch up
		pause   time.Duration
		want    agent.Code
	}{
		{"while committing", 2, 0, 0, agent.CodeInDoubt},
		{"while waiting for replication", 1, 20, 4 * time.Second, agent.CodeNotLeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			door := newAdminDoor(t, "/pause", tc.pauseN)
			h := newHarness(t, policyOpts{gatewayAdmin: door.srv.URL, plannedPause: tc.pause})
			door.next = h.gwAdmin.Config.Handler
			produceTo(t, h.clusters[0], tc.records)
			h.startAll()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			leader := h.routeLeader(ctx)
			waitBothHealthy(t, ctx, h, leader, int64(tc.records))

			answered := make(chan agent.Outcome, 1)
			go func() { answered <- h.agents[leader].a.Failover(ctx, agent.FailoverRequest{ID: "q1"}) }()
			door.cutOff(ctx, h, leader)
			if o := <-answered; o.Code != tc.want || o.To != standby {
				t.Errorf("the leader that lost its quorum answered %+v; want %s, to %s", o, tc.want, standby)
			}
			if n := door.count("/resume"); n != 0 {
				t.Errorf("the leader resumed the producers (%d calls)", n)
			}
			if st := h.gw.Status(); st[0].ProducePausedUntil == nil {
				t.Errorf("gw-1 serves %+v; want its producers still paused", st[0])
			}
		})
	}
}

// TestPlannedPauseOutlivesLease: a pause lasts, unrenewed, longer than a
// route lease granted as it was renewed, so a gateway lost from sight after
// the last renewal does not forward to the old cluster under its lease
// once its pause ends.
func TestPlannedPauseOutlivesLease(t *testing.T) {
	const lease = 60 * time.Second
	h := newHarness(t, policyOpts{plannedPause: time.Second, lease: lease.String()})
	produceTo(t, h.clusters[0], 20)
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.routeLeader(ctx)
	waitBothHealthy(t, ctx, h, leader, 20)

	answered := make(chan agent.Outcome, 1)
	go func() { answered <- h.failover(ctx, leader, agent.FailoverRequest{}) }()
	var left time.Duration
	waitFor(t, ctx, "the producers paused", func() bool {
		until := h.gw.Status()[0].ProducePausedUntil
		if until != nil {
			left = time.Until(*until)
		}
		return until != nil
	})
	// The lease, the renewal's timeout (a third of it) and the slack.
	if lapse := lease + lease/3 + time.Second; left < lapse {
		t.Errorf("the pause ends %v from when it was seen; want past the %v a lease for the old epoch may still run", left, lapse)
	}
	if o := <-answered; o.Code != agent.CodeNotCaughtUp {
		t.Errorf("the planned failover answered %+v; want not-caught-up", o)
	}
}

// TestRequestPinnedByTheFirstAgent: a request handed from a follower to the
// leader is pinned by the follower, so even the in-doubt answer it gives
// when the hand-over is cut names the target to send it again with; the
// leader, which may meanwhile have switched the route on its own, then does
// not turn it back.
func TestRequestPinnedByTheFirstAgent(t *testing.T) {
	h := newHarness(t, policyOpts{maxLag: 5})
	produceTo(t, h.clusters[0], 20)
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.routeLeader(ctx)
	waitBothHealthy(t, ctx, h, leader, 20)
	follower := "a1"
	if leader == follower {
		follower = "a2"
	}
	waitFor(t, ctx, "the follower knows the route", func() bool { return h.route(follower).ActiveDomain == primary })

	// Replication is too far behind: the leader keeps the request waiting,
	// and the follower stops waiting for it.
	fctx, fcancel := context.WithTimeout(ctx, time.Second)
	defer fcancel()
	o := h.failover(fctx, follower, agent.FailoverRequest{ID: "q1"})
	if !o.Code.Retry() || o.Route != route || o.To != standby || !strings.Contains(o.Message, "q1") {
		t.Errorf("the follower answered %+v; want an answer to send again naming route %s and target %s", o, route, standby)
	}
}

// TestDeposedLeaderSwitchesNoGateway: gw-2 cannot be reached, so the
// leader of a forced failover waits for its lease to lapse before it
// switches gw-1, and loses its quorum meanwhile. It switches no gateway:
// its successor may not yet have seen the flip and renewed gw-2's lease
// for the old epoch, and only it may go on.
func TestDeposedLeaderSwitchesNoGateway(t *testing.T) {
	door := newAdminDoor(t, "/fence", 1)
	h := newHarness(t, policyOpts{gatewayAdmin: door.srv.URL})
	door.next = h.gwAdmin.Config.Handler
	gw2 := h.secondGateway()
	h.writePolicy(policyOpts{gatewayAdmin: door.srv.URL, gatewayExtras: gw2.policyEntry()})
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.routeLeader(ctx)
	waitFor(t, ctx, "the leader leased the route to gw-2", func() bool {
		l := gw2.gw.Status()[0].Lease
		return l != nil && l.Live
	})
	gw2.shut.Store(true)

	answered := make(chan agent.Outcome, 1)
	go func() {
		answered <- h.agents[leader].a.Failover(ctx, agent.FailoverRequest{To: standby, Force: true, ID: "q1"})
	}()
	door.cutOff(ctx, h, leader)
	if o := <-answered; o.Code != agent.CodeInDoubt {
		t.Errorf("the deposed leader answered %+v; want in-doubt", o)
	}
	if n := door.count("/restart"); n != 0 {
		t.Errorf("the deposed leader switched gw-1 (%d restarts)", n)
	}
	if st := h.gw.Status(); st[0].ClusterID != "cluster-1" {
		t.Errorf("gw-1 serves %+v; want cluster-1", st[0])
	}
}
