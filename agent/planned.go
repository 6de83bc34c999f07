package agent

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy"
)

// A planned switch leaves a cluster that still takes writes, so it can lose
// nothing: the leader pauses the route's producers at every gateway, waits
// until replication holds every record the old cluster acknowledged, and
// only then flips. The flip's gateway restarts end the pause: the held
// requests are dropped unanswered and the clients send them to the new
// cluster.

// quiesce pauses the route's producers and waits for the replication lag
// to reach zero, for at most failover.plannedPause. On failure the
// producers are resumed and the outcome says why.
func (a *Agent) quiesce(ctx context.Context, d policy.Decision) (Outcome, bool) {
	rs := a.node.State().Routes[d.Route]
	if rs == nil {
		return Outcome{Code: "failed", Message: fmt.Sprintf("route %s has no state", d.Route)}, false
	}
	fail := func(format string, args ...any) (Outcome, bool) {
		a.resumeProducers(ctx, d.Route)
		msg := fmt.Sprintf("planned switch of route %s from %s to %s not made: ", d.Route, d.From, d.To) + fmt.Sprintf(format, args...) +
			"; producers resumed on " + d.From + " (turnout failover --force switches without waiting)"
		return Outcome{Code: "not-caught-up", Message: msg, Route: d.Route, From: d.From, To: d.To, Leader: a.cfg.ID}, false
	}
	wait := a.policy.Failover.PlannedPause
	// The pause outlives the wait by the flip's gateway restarts; if this
	// agent dies meanwhile the gateways resume on their own.
	ttl := min(wait+a.gatewayBudget(), proxy.MaxPause)
	start := time.Now()
	var unpaused []string
	for _, gw := range a.policy.Gateways {
		if gw.Admin == "" {
			a.log.Warn("gateway restarted by a command cannot pause its producers: its clients write to the old cluster until it restarts",
				"route", d.Route, "gateway", gw.Name)
			continue
		}
		// A gateway that cannot be paused (it is down, say) does not
		// hold up the switch: the flip will stop at it and report it,
		// as it does for any gateway that does not come back.
		if err := a.admin(gw).pause(ctx, d.Route, rs.Epoch, ttl); err != nil {
			a.log.Warn("gateway did not pause its producers: its clients may write to the old cluster until it restarts",
				"route", d.Route, "gateway", gw.Name, "err", err)
			unpaused = append(unpaused, gw.Name)
		}
	}
	a.log.Warn("producers paused for a planned switch", "route", d.Route, "from", d.From, "to", d.To, "for", ttl,
		"took", time.Since(start).Round(time.Millisecond))

	deadline := start.Add(wait)
	var last policy.Lag
	var lastErr error
	for {
		mctx, cancel := context.WithTimeout(ctx, a.policy.Probe.Timeout)
		lag, err := a.lagger.measure(mctx, d.Route, d.From, d.To)
		cancel()
		if err == nil && lag.Records == 0 {
			a.metrics.step("drain", time.Since(start))
			a.log.Warn("replication caught up with producers paused", "route", d.Route, "to", d.To,
				"took", time.Since(start).Round(time.Millisecond))
			return Outcome{}, true
		}
		last, lastErr = lag, err
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	why := ""
	if len(unpaused) > 0 {
		why = fmt.Sprintf(" (gateways %s could not be paused: their clients may have kept writing)", strings.Join(unpaused, ", "))
	}
	if lastErr != nil {
		return fail("the replication lag could not be measured within failover.plannedPause (%v)%s: %v", wait, why, lastErr)
	}
	return fail("%s was still %d records behind after failover.plannedPause (%v)%s: %s", d.To, last.Records, wait, why, last.Detail)
}

// gatewayBudget is the time the flip may take to restart every gateway.
func (a *Agent) gatewayBudget() time.Duration {
	var total time.Duration
	for _, gw := range a.policy.Gateways {
		total += gw.Timeout
	}
	return total
}

// resumeProducers ends a pause at every gateway, best effort: a gateway
// that misses it resumes when its pause expires.
func (a *Agent) resumeProducers(ctx context.Context, route string) {
	for _, gw := range a.policy.Gateways {
		if gw.Admin == "" {
			continue
		}
		if err := a.admin(gw).resume(ctx, route); err != nil {
			a.log.Error("producers not resumed at a gateway; they resume when its pause expires", "route", route, "gateway", gw.Name, "err", err)
		}
	}
}

// pause asks a Turnout gateway to hold the route's Produce requests; it
// answers once those already sent are answered.
func (c adminClient) pause(ctx context.Context, route string, epoch int32, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, c.gw.Timeout)
	defer cancel()
	var st proxy.StatusResponse
	return c.call(ctx, http.MethodPost, "/pause", proxy.PauseRequest{Route: route, Epoch: epoch, TTL: ttl.String()}, &st)
}

// resume releases the route's held Produce requests.
func (c adminClient) resume(ctx context.Context, route string) error {
	ctx, cancel := context.WithTimeout(ctx, c.gw.Timeout)
	defer cancel()
	var st proxy.StatusResponse
	return c.call(ctx, http.MethodPost, "/resume", proxy.PauseRequest{Route: route}, &st)
}
