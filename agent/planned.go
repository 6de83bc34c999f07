package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/adminapi"
)

// A planned switch leaves a cluster that still takes writes, so it can lose
// nothing: the leader pauses the route's producers at every gateway, waits
// until replication holds every record the old cluster acknowledged, and
// only then flips. The leader renews the pause while it waits and once more
// just before the flip, whose fencing (fence.go) then holds the producers
// for good; the gateway restarts end the hold: the held requests are
// dropped unanswered and the clients send them to the new cluster.
//
// The pause belongs to the leader that paused, in its term, and only it
// resumes it, and only while no flip was committed and none may be: once
// the flip's commit was tried and its outcome is unknown, the pause is left
// to expire, by when a committed flip's fencing holds the producers, or,
// if nothing was committed, the old epoch's lease lets them go on.

// pauseCommitTime is how long a pause must last past its last renewal
// without fencing: long enough to outlast the flip's commit and config
// write. A third of it is how often the leader renews the pause.
const pauseCommitTime = 15 * time.Second

// pauseTTL is how long a pause lasts unrenewed. A gateway that was renewed
// the pause and then lost from sight may hold a route lease for the old
// epoch, granted as late as the flip's commit, until it lapses: its pause
// must outlast that lease, or it would forward its held producers to the
// old cluster under the lease while the others switch. Short enough that
// producers do not wait long on an agent that died.
func pauseTTL(lease time.Duration) time.Duration {
	if lease == 0 {
		return pauseCommitTime
	}
	return leaseLapse(lease) + pauseCommitTime
}

// quiesce pauses the route's producers on behalf of owner (this leader in
// its term) and waits for the replication lag to reach zero, for at most
// failover.plannedPause. A gateway with an admin URL that cannot be paused
// ends it at once: its clients keep writing to the old cluster, and a
// forced switch, which fences it, is the way on. On failure the producers
// are resumed, if this agent still leads in the owner's term, and the
// outcome says why; a leader deposed meanwhile leaves the pause to its
// successor, or to expire.
func (a *Agent) quiesce(ctx context.Context, d policy.Decision, owner adminapi.PauseOwner) (Outcome, bool) {
	rs := a.node.State().Routes[d.Route]
	if rs == nil {
		return Outcome{Code: CodeFailed, Message: fmt.Sprintf("route %s has no state", d.Route)}, false
	}
	epoch := rs.Epoch
	ttl := pauseTTL(a.policy.Fencing.Lease)
	deposed := func() (Outcome, bool) {
		msg := fmt.Sprintf("planned switch of route %s from %s to %s not made: this agent lost the leadership while producers were paused; "+
			"the pause ends on its own within %v unless the next leader takes it over; send the request again with the same id", d.Route, d.From, d.To, ttl)
		return Outcome{Code: CodeNotLeader, Message: msg, Route: d.Route, From: d.From, To: d.To}, false
	}
	fail := func(format string, args ...any) (Outcome, bool) {
		if err := a.confirmLeading(ctx, owner.Term); err != nil {
			a.log.Warn("producers left paused: this agent no longer leads", "route", d.Route, "err", err)
			return deposed()
		}
		a.resumeProducers(ctx, d.Route, owner)
		msg := fmt.Sprintf("planned switch of route %s from %s to %s not made: ", d.Route, d.From, d.To) + fmt.Sprintf(format, args...) +
			"; producers resumed on " + d.From + " (turnout failover --force switches without waiting)"
		return Outcome{Code: CodeNotCaughtUp, Message: msg, Route: d.Route, From: d.From, To: d.To, Leader: a.cfg.ID}, false
	}
	wait := a.policy.Failover.PlannedPause
	start := time.Now()
	for _, gw := range a.policy.Gateways {
		if gw.Admin == "" {
			a.log.Warn("gateway restarted by a command cannot pause its producers: its clients write to the old cluster until it restarts",
				"route", d.Route, "gateway", gw.Name)
		}
	}
	if !a.leads(owner.Term) {
		return deposed()
	}
	if err := a.pauseProducers(ctx, d.Route, epoch, ttl, owner); err != nil {
		return fail("%v", err)
	}
	a.log.Warn("producers paused for a planned switch", "route", d.Route, "from", d.From, "to", d.To, "for", ttl,
		"took", time.Since(start).Round(time.Millisecond))

	deadline := start.Add(wait)
	renewed := time.Now()
	var last policy.Lag
	var lastErr error
	for {
		if !a.leads(owner.Term) {
			return deposed()
		}
		mctx, cancel := context.WithTimeout(ctx, a.policy.Probe.Timeout)
		lag, err := a.lagger.measure(mctx, d.Route, d.From, d.To)
		cancel()
		if err == nil && lag.Records == 0 {
			// The flip follows at once; this renewal covers it until its
			// fencing holds the producers for good.
			if err := a.pauseProducers(ctx, d.Route, epoch, ttl, owner); err != nil {
				return fail("%v", err)
			}
			a.metrics.step("drain", time.Since(start))
			a.log.Warn("replication caught up with producers paused", "route", d.Route, "to", d.To,
				"took", time.Since(start).Round(time.Millisecond))
			return Outcome{}, true
		}
		last, lastErr = lag, err
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		if time.Since(renewed) >= pauseCommitTime/3 {
			if err := a.pauseProducers(ctx, d.Route, epoch, ttl, owner); err != nil {
				return fail("%v", err)
			}
			renewed = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if lastErr != nil {
		return fail("the replication lag could not be measured within failover.plannedPause (%v): %v", wait, lastErr)
	}
	return fail("%s was still %d records behind after failover.plannedPause (%v): %s", d.To, last.Records, wait, last.Detail)
}

// pauseProducers pauses, or renews the pause of, the route's producers at
// every gateway with an admin URL, for ttl. It fails naming the gateways
// that did not pause: their clients may still be writing.
func (a *Agent) pauseProducers(ctx context.Context, route string, epoch int32, ttl time.Duration, owner adminapi.PauseOwner) error {
	var failed []string
	var errs []error
	for _, gw := range a.policy.Gateways {
		if gw.Admin == "" {
			continue
		}
		if err := a.admin(gw).pause(ctx, route, epoch, ttl, owner); err != nil {
			a.log.Warn("gateway did not pause its producers", "route", route, "gateway", gw.Name, "err", err)
			failed = append(failed, gw.Name)
			errs = append(errs, fmt.Errorf("%s: %w", gw.Name, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("gateways %s could not be paused, so their clients may keep writing to the cluster being left: %w",
			strings.Join(failed, ", "), errors.Join(errs...))
	}
	return nil
}

// resumeProducers ends owner's pause at every gateway, best effort: a
// gateway that misses it resumes when its pause expires. Call it only when
// no flip was committed and none will be: it names the route's epoch as
// committed now, and producers released go on to the cluster being left.
func (a *Agent) resumeProducers(ctx context.Context, route string, owner adminapi.PauseOwner) {
	rs := a.node.State().Routes[route]
	if rs == nil {
		return
	}
	epoch := rs.Epoch
	for _, gw := range a.policy.Gateways {
		if gw.Admin == "" {
			continue
		}
		if err := a.admin(gw).resume(ctx, route, epoch, owner); err != nil {
			a.log.Error("producers not resumed at a gateway: they resume when its pause expires",
				"route", route, "gateway", gw.Name, "epoch", epoch, "err", err)
		}
	}
}

// pause asks a Turnout gateway to hold the route's Produce requests; it
// answers once those already sent are answered.
func (c adminClient) pause(ctx context.Context, route string, epoch int32, ttl time.Duration, owner adminapi.PauseOwner) error {
	ctx, cancel := context.WithTimeout(ctx, c.gw.Timeout)
	defer cancel()
	var st adminapi.StatusResponse
	return c.call(ctx, http.MethodPost, "/pause", adminapi.PauseRequest{Route: route, Epoch: epoch, TTL: ttl.String(), Owner: owner.ID, Term: owner.Term}, &st)
}

// resume releases the route's Produce requests held by owner's pause at
// epoch.
func (c adminClient) resume(ctx context.Context, route string, epoch int32, owner adminapi.PauseOwner) error {
	ctx, cancel := context.WithTimeout(ctx, c.gw.Timeout)
	defer cancel()
	var st adminapi.StatusResponse
	return c.call(ctx, http.MethodPost, "/resume", adminapi.PauseRequest{Route: route, Epoch: epoch, Owner: owner.ID, Term: owner.Term}, &st)
}
