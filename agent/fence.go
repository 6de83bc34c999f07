package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/turnout/turnout/consensus"
	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/adminapi"
)

// Fencing (policy fencing.lease): the leader leases every route to every
// Turnout gateway for the route's committed epoch, and a gateway whose
// lease has lapsed holds the route's Produce requests (proxy/lease.go).
// After a flip is committed the leader renews only the new epoch, which a
// gateway still on the old one refuses; so once a lease and the slack below
// have passed since the commit, no gateway still forwards to the old
// cluster, reached or not.

// leaseSlack covers a leader that has lost its quorum but does not know it
// yet and still renews the old epoch: hashicorp/raft steps it down after
// its LeaderLeaseTimeout (500ms by default).
const leaseSlack = time.Second

// leaseRequestTimeout bounds one renewal. Its deadline is set before the
// epoch is read, and a gateway grants no lease for a request its agent gave
// up on, so a renewal that read an old epoch counts from before the commit.
func leaseRequestTimeout(lease time.Duration) time.Duration { return lease / 3 }

// leasesLapsedBy is when every lease for a route's old epoch has lapsed, for
// a flip this agent has seen committed at since.
func leasesLapsedBy(since time.Time, lease time.Duration) time.Time {
	return since.Add(leaseLapse(lease))
}

// leaseLapse is how long a lease granted by now may stay live at a gateway.
func leaseLapse(lease time.Duration) time.Duration {
	return lease + leaseRequestTimeout(lease) + leaseSlack
}

// leaseLoop renews, while this agent leads and has caught up with the log
// (see leadsCaughtUp), the leases of every gateway with
// an admin URL, each gateway on its own so that one that hangs does not let
// the others' leases lapse.
func (a *Agent) leaseLoop(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, gw := range a.policy.Gateways {
		if gw.Admin == "" {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.leaseGateway(ctx, gw) }()
	}
	wg.Wait()
	return nil
}

// nameSet is a set of names (gateways, routes) that goroutines share.
type nameSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (n *nameSet) add(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[string]bool{}
	}
	n.m[name] = true
}

func (n *nameSet) remove(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.m, name)
}

func (n *nameSet) has(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m[name]
}

func (a *Agent) leaseGateway(ctx context.Context, gw policy.Gateway) {
	tick := time.NewTicker(a.policy.Fencing.Lease / 3)
	defer tick.Stop()
	var failing string
	for {
		if a.leadsCaughtUp() {
			err := a.renewLeases(ctx, gw)
			switch {
			case ctx.Err() != nil:
			case err != nil && err.Error() != failing:
				failing = err.Error()
				a.log.Warn("route lease not renewed at a gateway: unless it is being switched, its producers are held once the lease lapses",
					"gateway", gw.Name, "err", err)
			case err == nil && failing != "":
				failing = ""
				a.log.Info("route leases renewed at the gateway again", "gateway", gw.Name)
			}
			if err == nil {
				a.leased.add(gw.Name)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// renewLeases renews at one gateway every route's lease at the route's
// committed epoch.
func (a *Agent) renewLeases(ctx context.Context, gw policy.Gateway) error {
	lease := a.policy.Fencing.Lease
	var errs []error
	for _, r := range a.policy.Routes {
		rctx, cancel := context.WithTimeout(ctx, leaseRequestTimeout(lease))
		rs := a.node.State().Routes[r.Name]
		// A route being paused for a planned switch gets no new lease: the
		// pause, renewed and longer than a lease, then outlasts every lease
		// at the old epoch however long the flip takes to commit.
		if rs != nil && a.leadsCaughtUp() && !a.quiescing.has(r.Name) {
			if err := a.admin(gw).lease(rctx, r.Name, rs.Active, rs.Epoch, lease); err != nil {
				errs = append(errs, fmt.Errorf("route %s at epoch %d: %w", r.Name, rs.Epoch, err))
			}
		}
		cancel()
	}
	return errors.Join(errs...)
}

// fence makes sure, before any gateway serves the flip's new cluster, that
// no gateway still on the old epoch forwards the route's producers: every
// gateway with an admin URL confirms it holds them (POST /fence), or the
// leader waits until its lease has lapsed. since is when this agent saw the
// flip committed. Once a gateway serves the new cluster the others were
// fenced by the run that switched it, and nothing is waited for.
func (a *Agent) fence(ctx context.Context, f consensus.Flip, since time.Time) error {
	var pending []policy.Gateway
	for _, gw := range a.policy.Gateways {
		if slices.Contains(f.GatewaysDone, gw.Name) {
			continue
		}
		if gw.Admin == "" {
			a.log.Warn("a gateway restarted by a command cannot be fenced: its clients write to the old cluster until it restarts",
				"route", f.Route, "gateway", gw.Name)
			continue
		}
		pending = append(pending, gw)
	}
	if len(pending) == 0 {
		return nil
	}
	start := time.Now()
	lease := a.policy.Fencing.Lease
	errs := make([]error, len(pending))
	var wg sync.WaitGroup
	for i, gw := range pending {
		wg.Add(1)
		go func() {
			defer wg.Done()
			timeout := gw.Timeout
			if lease > 0 {
				// Past that, waiting for the lease is as quick.
				timeout = min(timeout, lease)
			}
			fctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			errs[i] = a.admin(gw).fence(fctx, f.Route, f.Epoch)
		}()
	}
	wg.Wait()
	var unfenced []string
	for i, err := range errs {
		if err != nil {
			unfenced = append(unfenced, pending[i].Name)
			a.log.Warn("gateway did not confirm it holds the route's producers", "route", f.Route, "gateway", pending[i].Name,
				"epoch", f.Epoch, "err", err)
		}
	}
	switch {
	case len(unfenced) == 0:
		a.log.Info("gateways fenced: none forwards producers to the old cluster", "route", f.Route, "epoch", f.Epoch,
			"took", time.Since(start).Round(time.Millisecond))
	case len(f.GatewaysDone) > 0:
		a.log.Warn("gateways not fenced now; they were fenced, or their leases lapsed, before the first gateway switched",
			"route", f.Route, "gateways", unfenced)
	case lease == 0:
		a.log.Error("fencing is off (policy fencing.lease 0s): gateways not reached keep sending their producers to the old cluster until they are switched, and what it acknowledges is lost",
			"route", f.Route, "from", f.From, "gateways", unfenced)
	default:
		by := leasesLapsedBy(since, lease)
		a.log.Warn("waiting for the route leases of gateways not reached to lapse before any gateway serves the new cluster",
			"route", f.Route, "gateways", unfenced, "wait", time.Until(by).Round(time.Millisecond))
		t := time.NewTimer(time.Until(by))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the leases of gateways %v to lapse: %w", unfenced, ctx.Err())
		case <-t.C:
		}
		a.log.Warn("route leases lapsed: gateways not reached hold their producers", "route", f.Route, "gateways", unfenced)
		for _, gw := range unfenced {
			if !a.leased.has(gw) {
				a.log.Error("gateway not reached never took a route lease from this agent: unless another agent leased it or its admin.requireLease is set, it does not hold its producers",
					"route", f.Route, "gateway", gw)
			}
		}
	}
	a.metrics.step("fence", time.Since(start))
	return nil
}

// lease grants a Turnout gateway the route's lease at epoch for ttl.
func (c adminClient) lease(ctx context.Context, route, domain string, epoch int32, ttl time.Duration) error {
	var st adminapi.StatusResponse
	return c.call(ctx, http.MethodPost, "/lease", adminapi.LeaseRequest{Route: route, Domain: domain, Epoch: epoch, TTL: ttl.String()}, &st)
}

// fence tells a Turnout gateway the agents committed epoch for the route; it
// answers once the route forwards no Produce unless it serves that epoch.
func (c adminClient) fence(ctx context.Context, route string, epoch int32) error {
	var st adminapi.StatusResponse
	return c.call(ctx, http.MethodPost, "/fence", adminapi.LeaseRequest{Route: route, Epoch: epoch}, &st)
}
