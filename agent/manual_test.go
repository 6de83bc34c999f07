package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/agent"
)

// TestManualRetriedAfterLeaderChange: the leader commits a manual failover
// and stops while it restarts the gateway. Its answer is in doubt, not
// failed, as the next leader finishes the switch; the request sent again
// under the same id, through a follower, is answered done, and the route
// switched exactly once.
func TestManualRetriedAfterLeaderChange(t *testing.T) {
	h, held := newSlowHarness(t)
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := h.routeLeader(ctx)

	req := agent.FailoverRequest{Force: true, ID: "q1"}
	leader := h.agents[first].a
	answered := make(chan agent.Outcome, 1)
	go func() { answered <- leader.Failover(ctx, req) }()
	held(ctx)
	h.stop(first)
	if o := <-answered; o.Code != agent.CodeInDoubt || o.ID != "q1" || o.OK {
		t.Fatalf("the leader stopped mid-switch answered %+v; want in-doubt for request q1", o)
	}
	next := h.leader(ctx)
	h.waitActive(ctx, standby)
	follower := "a1"
	for id := range h.agents {
		if id != next {
			follower = id
		}
	}
	o := h.failover(ctx, follower, req)
	if !o.OK || o.Code != agent.CodeDone || o.Epoch != 1 || o.To != standby {
		t.Errorf("request q1 sent again answered %+v; want done at epoch 1", o)
	}
	if r := h.route(next); r.ActiveDomain != standby || r.Epoch != 1 {
		t.Errorf("after request q1 was sent again the route is on %s at epoch %d; want %s at 1", r.ActiveDomain, r.Epoch, standby)
	}
	if d, epoch := h.gatewayDomain(); d != standby || epoch != 1 {
		t.Errorf("gateway config serves %s at epoch %d, want %s at 1", d, epoch, standby)
	}
}

// TestFailoverRetriedAfterSuccess: a failover that named no target, done,
// and sent again under its id to a new leader, is answered done; it does
// not switch the route back.
func TestFailoverRetriedAfterSuccess(t *testing.T) {
	h := newHarness(t, policyOpts{})
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := h.routeLeader(ctx)
	req := agent.FailoverRequest{Force: true, ID: "q2"}
	if o := h.failover(ctx, first, req); !o.OK || o.Epoch != 1 {
		t.Fatalf("failover: %+v", o)
	}
	h.stop(first)
	next := h.leader(ctx)
	o := h.failover(ctx, next, req)
	if !o.OK || o.Code != agent.CodeDone || o.Epoch != 1 || !strings.Contains(o.Message, "request q2 switched route") {
		t.Errorf("the failover sent again answered %+v; want done at epoch 1, from the record of q2", o)
	}
	if r := h.route(next); r.ActiveDomain != standby || r.Epoch != 1 {
		t.Errorf("the failover sent again left the route on %s at epoch %d; want %s at 1", r.ActiveDomain, r.Epoch, standby)
	}
}

// TestSignalFileRequests: the same words written twice are two requests;
// a claim left behind longer than a request may wait is answered as
// abandoned, not carried out.
func TestSignalFileRequests(t *testing.T) {
	h := newHarness(t, policyOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// a1 stopped an hour ago holding a claim.
	stale := h.signal + ".processing.a1.0123456789abcdef"
	if err := os.WriteFile(stale, []byte("failover\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stale, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	h.startAll()
	leader := h.leader(ctx)
	failed := waitFile(t, ctx, h.signal+".failed")
	if !strings.Contains(string(failed), "abandoned claim") || !strings.Contains(string(failed), "id: signal-0123456789abcdef") {
		t.Errorf("signal.failed for the stale claim says:\n%s", failed)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale claim is still there: %v", err)
	}
	waitFor(t, ctx, "the route exists", func() bool { return h.route(leader).Name == route })
	if r := h.route(leader); r.ActiveDomain != primary || r.Epoch != 0 {
		t.Fatalf("an abandoned claim moved the route: %+v", r)
	}

	for i, want := range []string{standby, primary} {
		os.Remove(h.signal + ".done")
		if err := os.WriteFile(h.signal, []byte("{action: failover, force: true}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		done := waitFile(t, ctx, h.signal+".done")
		if !strings.Contains(string(done), "to: "+want) {
			t.Errorf("failover %d: signal.done says:\n%s", i+1, done)
		}
		h.waitActive(ctx, want)
	}
	if r := h.route(leader); r.Epoch != 2 {
		t.Errorf("after two failovers written the route is at epoch %d, want 2", r.Epoch)
	}
}

// TestSignalClaimPinned: a claimed signal file that asks for "the other
// domain" is rewritten with the target pinned when it was claimed, so that
// an agent taking its claim up again after a restart asks for the same one.
func TestSignalClaimPinned(t *testing.T) {
	h, held := newSlowHarness(t)
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitBothHealthy(t, ctx, h, h.routeLeader(ctx), 0)
	if err := os.WriteFile(h.signal, []byte("{action: failover, force: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	held(ctx) // the flip is under way, its first restart held: the claim is still there
	var claim string
	waitFor(t, ctx, "a claim naming the pinned target", func() bool {
		matches, _ := filepath.Glob(h.signal + ".processing.*")
		for _, m := range matches {
			data, _ := os.ReadFile(m)
			claim = string(data)
			if strings.Contains(claim, "to: "+standby) && strings.Contains(claim, "id: signal-") {
				return true
			}
		}
		return false
	})
}
