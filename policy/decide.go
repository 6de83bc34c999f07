package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// View is what one agent last saw of one domain.
type View struct {
	Agent               string `json:"agent"`
	Domain              string `json:"domain"`
	Healthy             bool   `json:"healthy"`
	ConsecutiveFailures int    `json:"consecutiveFailures"`
	Brokers             int    `json:"brokers"`
	LatencyMillis       int64  `json:"latencyMillis"`
	Error               string `json:"error,omitempty"`
	// At is when the probe finished, by the prober's clock. The leader
	// sets it back to when it received the view if that clock is ahead of
	// its own, so no view is fresher by the leader's clock than it is.
	// A report from a clock further off is refused.
	At time.Time `json:"at"`
}

// Lag is how far a route's target domain is behind its active one.
type Lag struct {
	Route   string `json:"route"`
	Agent   string `json:"agent,omitempty"` // who measured it
	Records int64  `json:"records"`
	Known   bool   `json:"known"`
	// At is when it was measured, set back like View.At.
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
}

// RouteState is what the decision needs of a route's replicated state.
type RouteState struct {
	Name   string
	Active string
	Epoch  int32
	// LastAutoFlipAt is when the route last failed over automatically;
	// zero if it never did. Manual flips do not count: the cooldown stops
	// automatic flapping, and must not hold back a failover after a
	// person's failback.
	LastAutoFlipAt time.Time
	InProgress     bool
	// Unfinished: the last flip, to Active, stopped at a gateway that did
	// not come back, which may still serve the old domain.
	Unfinished bool
}

// Input is everything a decision about one route depends on.
type Input struct {
	Now    time.Time
	Agents int    // voters in the Raft group
	Views  []View // the latest per agent and domain
	Route  RouteState
	Lag    Lag
}

// Code is the outcome of a decision, for metrics, status and tests; the
// Reason says the same for people.
type Code string

const (
	CodeOK               Code = "ok"                // the active domain is serving; nothing to do
	CodeFlip             Code = "flip"              // switch the route From -> To
	CodeNoQuorum         Code = "no-quorum"         // a breach seen by fewer than a quorum of agents
	CodeInProgress       Code = "in-progress"       // a flip of the route is not finished
	CodeNotPrimary       Code = "not-primary"       // the route is on its standby: no automatic failback
	CodeAutomaticOff     Code = "automatic-off"     // failover.automatic is false
	CodeCooldown         Code = "cooldown"          // the route flipped less than failover.cooldown ago
	CodeStandbyUnhealthy Code = "standby-unhealthy" // too few agents see the standby healthy
	CodeTargetUnhealthy  Code = "target-unhealthy"  // manual: too few agents see the target healthy
	CodeLagUnknown       Code = "lag-unknown"       // replication lag is unknown or older than failover.maxLagAge
	CodeLagTooHigh       Code = "lag-too-high"      // replication lag is above failover.maxLagRecords
	CodeAlreadyActive    Code = "already-active"    // manual: the route already serves the target
	CodeResume           Code = "resume"            // manual: finish the failed flip to the target (restart the gateways it did not)
	CodeBadRequest       Code = "bad-request"       // manual: the request names no route or domain of the policy
	CodeNotInPolicy      Code = "not-in-policy"     // the route or its active domain is not in the policy (was it edited?)
)

// Decision is what the leader should do about one route, and why.
type Decision struct {
	Route    string
	Code     Code
	Flip     bool
	From, To string
	Epoch    int32  // the epoch the flip commits: the route's epoch + 1
	Reason   string // one sentence with the facts behind Code
	Breached []string
	Healthy  []string // agents whose fresh views show the target healthy
	// Quiesce asks for a planned switch: hold producers at the gateways
	// and flip only once replication has every acknowledged record, for
	// at most failover.plannedPause.
	Quiesce bool
}

// Decide says whether a route fails over automatically, or why not. It
// trusts only fresh views and acts only when a quorum of agents agree, so
// one agent cut off from a healthy cluster never moves a route. The checks
// run in the order that makes the reason name the most relevant blocker.
func Decide(in Input, p *Policy) Decision {
	d := Decision{Route: in.Route.Name, From: in.Route.Active}
	r := p.Route(in.Route.Name)
	if r == nil || (in.Route.Active != r.Primary && in.Route.Active != r.Standby) {
		return notInPolicy(d, in.Route, r)
	}
	d.To = r.Other(d.From)
	views := freshViews(in, p)
	in.Agents = voters(in, views)
	q := p.Quorum(in.Agents)
	failing := matching(views[d.From], func(v View) bool { return v.ConsecutiveFailures > 0 })
	breached := matching(views[d.From], func(v View) bool { return v.ConsecutiveFailures >= p.Health.FailuresToBreach })
	d.Breached = agents(breached)
	d.Healthy = agents(matching(views[d.To], func(v View) bool { return v.Healthy }))

	switch {
	case len(views[d.From]) == 0:
		return d.is(CodeOK, "no agent has a fresh view of %s (views older than %s are ignored), so nothing moves", d.From, p.StaleAfter())
	case len(breached) == 0 && len(failing) == 0:
		return d.is(CodeOK, "%s is healthy for %s (%d of %d agents with fresh views)",
			d.From, strings.Join(agents(views[d.From]), ", "), len(views[d.From]), in.Agents)
	case len(breached) == 0:
		return d.is(CodeOK, "%s is serving: %s failed fewer than the %d consecutive probes that make a breach",
			d.From, failures(failing), p.Health.FailuresToBreach)
	case len(breached) < q:
		return d.is(CodeNoQuorum, "%s breached for %s only: %d of %d agents, a quorum is %d, so no failover",
			d.From, failures(breached), len(breached), in.Agents, q)
	}
	breach := fmt.Sprintf("%s breached for %s (%d of %d agents, %d+ consecutive failed probes)",
		d.From, failures(breached), len(breached), in.Agents, p.Health.FailuresToBreach)
	switch {
	case in.Route.InProgress:
		return d.is(CodeInProgress, "%s; a flip of route %s is still in progress", breach, d.Route)
	case d.From != r.Primary:
		return d.is(CodeNotPrimary, "%s; the route is on its standby and fails back to %s only on request (turnout failback)", breach, d.To)
	case !p.Failover.Automatic:
		return d.is(CodeAutomaticOff, "%s; automatic failover is off, run turnout failover to switch to %s", breach, d.To)
	}
	if left := cooldownLeft(in, p); left > 0 {
		return d.is(CodeCooldown, "%s; the route failed over automatically at %s and the %s cooldown has %s left",
			breach, in.Route.LastAutoFlipAt.UTC().Format(time.RFC3339), p.Failover.Cooldown, (left + time.Second - 1).Truncate(time.Second))
	}
	if len(d.Healthy) < q {
		return d.is(CodeStandbyUnhealthy, "%s; but %s", breach, unhealthy(d.To, d.Healthy, in.Agents, q))
	}
	if code, why := lagBlocks(in, p, d.To); code != "" {
		return d.is(code, "%s; %s", breach, why)
	}
	return d.flip(in, "%s; %s healthy for %s; %s: failing over to %s at epoch %d",
		breach, d.To, strings.Join(d.Healthy, ", "), lagFacts(in.Lag, p), d.To, in.Route.Epoch+1)
}

func (d Decision) is(code Code, format string, args ...any) Decision {
	d.Code, d.Reason = code, fmt.Sprintf(format, args...)
	return d
}

// flip decides to move the route to d.To at the next epoch.
func (d Decision) flip(in Input, format string, args ...any) Decision {
	d.Flip, d.Epoch = true, in.Route.Epoch+1
	return d.is(CodeFlip, format, args...)
}

func notInPolicy(d Decision, s RouteState, r *Route) Decision {
	if r == nil {
		return d.is(CodeNotInPolicy, "route %s is not in the policy; it stays on %s", s.Name, s.Active)
	}
	return d.is(CodeNotInPolicy, "route %s is on %s, which the policy names neither primary (%s) nor standby (%s)",
		s.Name, s.Active, r.Primary, r.Standby)
}

// voters is the number of agents a quorum is taken of. Every agent with a
// fresh view is one, so that an Agents count too low can never let one
// agent decide alone.
func voters(in Input, views map[string][]View) int {
	seen := map[string]bool{}
	for _, vs := range views {
		for _, v := range vs {
			seen[v.Agent] = true
		}
	}
	return max(in.Agents, len(seen))
}

// freshViews returns, per domain, each agent's latest view if it is
// Fresh. A view stamped in the future is no fresher than one as far in the
// past: it comes from a clock that cannot be trusted. Input should already
// hold one view per agent and domain; keeping the latest makes a duplicate
// harmless rather than a second vote.
func freshViews(in Input, p *Policy) map[string][]View {
	latest := map[[2]string]View{}
	for _, v := range in.Views {
		k := [2]string{v.Domain, v.Agent}
		if old, ok := latest[k]; (!ok || v.At.After(old.At)) && p.Fresh(v, in.Now) {
			latest[k] = v
		}
	}
	byDomain := map[string][]View{}
	for k, v := range latest {
		byDomain[k[0]] = append(byDomain[k[0]], v)
	}
	for _, vs := range byDomain {
		slices.SortFunc(vs, func(a, b View) int { return cmp.Compare(a.Agent, b.Agent) })
	}
	return byDomain
}

func matching(vs []View, ok func(View) bool) []View {
	var out []View
	for _, v := range vs {
		if ok(v) {
			out = append(out, v)
		}
	}
	return out
}

func agents(vs []View) []string {
	ids := make([]string, len(vs))
	for i, v := range vs {
		ids[i] = v.Agent
	}
	return ids
}

// failures lists agents with their counts of consecutive failed probes,
// e.g. "a1 (5), a2 (3)".
func failures(vs []View) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%s (%d)", v.Agent, v.ConsecutiveFailures)
	}
	return strings.Join(parts, ", ")
}

func unhealthy(domain string, healthy []string, total, q int) string {
	if len(healthy) == 0 {
		return fmt.Sprintf("no agent sees %s healthy; a quorum of %d of %d must", domain, q, total)
	}
	verb := "see"
	if len(healthy) == 1 {
		verb = "sees"
	}
	return fmt.Sprintf("only %s %s %s healthy; a quorum of %d of %d must", strings.Join(healthy, ", "), verb, domain, q, total)
}

// cooldownLeft is how long the route must still wait; an automatic flip is
// allowed again exactly Cooldown after the last one.
func cooldownLeft(in Input, p *Policy) time.Duration {
	if in.Route.LastAutoFlipAt.IsZero() {
		return 0
	}
	return in.Route.LastAutoFlipAt.Add(p.Failover.Cooldown).Sub(in.Now)
}

// lagBlocks says why replication lag forbids moving the route to target,
// or returns "" when it allows it. A lag older than failover.maxLagAge (or
// as far in the future) counts as unknown: records written since it was
// measured are not in it.
func lagBlocks(in Input, p *Policy, target string) (Code, string) {
	l := in.Lag
	switch {
	case p.Replication.Mode == ModeNone:
		return "", ""
	case !l.Known && l.At.IsZero():
		return CodeLagUnknown, fmt.Sprintf("the %s lag of %s was never measured, so it may miss records%s", p.Replication.Mode, target, detail(l))
	case !l.Known:
		return CodeLagUnknown, fmt.Sprintf("the %s lag of %s is unknown since %s, so it may miss records%s",
			p.Replication.Mode, target, l.At.UTC().Format(time.RFC3339), detail(l))
	case age(in.Now, l.At) > p.Failover.MaxLagAge:
		return CodeLagUnknown, fmt.Sprintf("the %s lag of %s was last measured at %s, %s from now, beyond failover.maxLagAge (%s), so it may miss records written since%s",
			p.Replication.Mode, target, l.At.UTC().Format(time.RFC3339), age(in.Now, l.At).Round(time.Second), p.Failover.MaxLagAge, detail(l))
	case l.Records > p.Failover.MaxLagRecords:
		return CodeLagTooHigh, fmt.Sprintf("%s is %d records behind (limit %d, measured %s)%s",
			target, l.Records, p.Failover.MaxLagRecords, l.At.UTC().Format(time.RFC3339), detail(l))
	}
	return "", ""
}

// Fresh says whether a view is recent enough at now to trust: no further
// than StaleAfter from now, either way.
func (p *Policy) Fresh(v View, now time.Time) bool {
	return age(now, v.At) <= p.StaleAfter()
}

// age is how far t is from now, either way.
func age(now, t time.Time) time.Duration {
	if d := now.Sub(t); d >= 0 {
		return d
	}
	return t.Sub(now)
}

func lagFacts(l Lag, p *Policy) string {
	if p.Replication.Mode == ModeNone {
		return "lag not checked (replication mode none)"
	}
	return fmt.Sprintf("lag %d records (limit %d)", l.Records, p.Failover.MaxLagRecords)
}

func detail(l Lag) string {
	if l.Detail == "" {
		return ""
	}
	return ": " + l.Detail
}
