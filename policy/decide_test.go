package policy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// testPolicy has the defaults: views go stale after 3*1s+2s = 5s, a breach
// is 3 failures, the lag limit 10000 records, a lag is trusted for a minute
// and the cooldown is 10 minutes.
func testPolicy() *Policy {
	return &Policy{
		Routes:      []Route{{Name: "r", Primary: "k1", Standby: "k2"}},
		Probe:       Probe{Interval: time.Second, Timeout: 2 * time.Second},
		Health:      Health{FailuresToBreach: 3, MinBrokers: 1},
		Failover:    Failover{Automatic: true, MaxLagRecords: 10000, Cooldown: 10 * time.Minute, MaxLagAge: time.Minute},
		Replication: Replication{Mode: ModeMirrorMaker2, Topics: []string{"orders"}},
	}
}

// up and down are fresh views: agent sees domain healthy, or failing for n
// consecutive probes.
func up(agent, domain string) View {
	return View{Agent: agent, Domain: domain, Healthy: true, Brokers: 3, At: now}
}

func down(agent, domain string, n int) View {
	return View{Agent: agent, Domain: domain, ConsecutiveFailures: n, Error: "dial tcp: connection refused", At: now}
}

func aged(v View, age time.Duration) View {
	v.At = now.Add(-age)
	return v
}

// outage is three agents seeing k1 down for 5 probes and k2 healthy.
func outage() []View {
	return []View{down("a1", "k1", 5), down("a2", "k1", 4), down("a3", "k1", 3), up("a1", "k2"), up("a2", "k2"), up("a3", "k2")}
}

func lagAt(n int64, age time.Duration) Lag {
	return Lag{Route: "r", Records: n, Known: true, At: now.Add(-age)}
}

func lag(n int64) Lag { return Lag{Route: "r", Records: n, Known: true, At: now.Add(-time.Second)} }

// input is route r on k1 at epoch 4, never flipped, seen by three agents
// through views, with 12 records of lag.
func input(views ...View) Input {
	return Input{Now: now, Agents: 3, Views: views, Route: RouteState{Name: "r", Active: "k1", Epoch: 4}, Lag: lag(12)}
}

func with(in Input, edit func(*Input)) Input {
	edit(&in)
	return in
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name     string
		in       Input
		policy   func(*Policy)
		code     Code
		reason   string // a part of the reason
		breached []string
	}{
		{"all healthy", input(up("a1", "k1"), up("a2", "k1"), up("a3", "k1"), up("a1", "k2")), nil,
			CodeOK, "k1 is healthy for a1, a2, a3 (3 of 3 agents with fresh views)", nil},
		{"no views at all", input(), nil, CodeOK, "no agent has a fresh view of k1 (views older than 5s are ignored), so nothing moves", nil},
		{"only stale views", input(aged(down("a1", "k1", 9), 6*time.Second), aged(down("a2", "k1", 9), time.Hour)), nil, CodeOK, "no agent has a fresh view of k1", nil},
		{"agents never fewer than those seen", with(input(down("a1", "k1", 5), up("a2", "k1"), up("a3", "k1"), up("a1", "k2"), up("a2", "k2")),
			func(in *Input) { in.Agents = 0 }), nil, CodeNoQuorum, "1 of 3 agents, a quorum is 2", []string{"a1"}},
		{"flapping below the threshold", input(down("a1", "k1", 2), down("a2", "k1", 2), down("a3", "k1", 1), up("a1", "k2"), up("a2", "k2")), nil,
			CodeOK, "k1 is serving: a1 (2), a2 (2), a3 (1) failed fewer than the 3 consecutive probes that make a breach", nil},
		{"one agent blind", input(down("a1", "k1", 9), up("a2", "k1"), up("a3", "k1"), up("a1", "k2"), up("a2", "k2"), up("a3", "k2")), nil,
			CodeNoQuorum, "k1 breached for a1 (9) only: 1 of 3 agents, a quorum is 2, so no failover", []string{"a1"}},
		{"one agent blind, the others silent", input(down("a1", "k1", 9), up("a1", "k2")), nil,
			CodeNoQuorum, "1 of 3 agents", []string{"a1"}},
		{"second breach view is stale", input(down("a1", "k1", 5), aged(down("a2", "k1", 5), 5*time.Second+time.Nanosecond), up("a1", "k2"), up("a2", "k2")), nil,
			CodeNoQuorum, "k1 breached for a1 (5) only", []string{"a1"}},
		{"a view exactly StaleAfter old counts", input(down("a1", "k1", 5), aged(down("a2", "k1", 5), 5*time.Second), up("a1", "k2"), up("a2", "k2")), nil,
			CodeFlip, "k1 breached for a1 (5), a2 (5) (2 of 3 agents, 3+ consecutive failed probes)", []string{"a1", "a2"}},
		{"a view from the future is not fresh", input(down("a1", "k1", 5), aged(down("a2", "k1", 5), -time.Hour), up("a1", "k2"), up("a2", "k2")), nil,
			CodeNoQuorum, "k1 breached for a1 (5) only", []string{"a1"}},
		{"a view StaleAfter ahead counts", input(down("a1", "k1", 5), aged(down("a2", "k1", 5), -5*time.Second), up("a1", "k2"), up("a2", "k2")), nil,
			CodeFlip, "k1 breached for a1 (5), a2 (5)", []string{"a1", "a2"}},
		{"a repeated view is one vote", input(down("a1", "k1", 5), aged(down("a1", "k1", 4), time.Second), up("a1", "k2"), up("a2", "k2")), nil,
			CodeNoQuorum, "k1 breached for a1 (5) only", []string{"a1"}},
		{"five agents need three", with(input(down("a1", "k1", 5), down("a2", "k1", 5), up("a1", "k2"), up("a2", "k2"), up("a3", "k2")),
			func(in *Input) { in.Agents = 5 }), nil, CodeNoQuorum, "2 of 5 agents, a quorum is 3", []string{"a1", "a2"}},

		{"failover", input(outage()...), nil,
			CodeFlip, "k1 breached for a1 (5), a2 (4), a3 (3) (3 of 3 agents, 3+ consecutive failed probes); k2 healthy for a1, a2, a3; lag 12 records (limit 10000): failing over to k2 at epoch 5",
			[]string{"a1", "a2", "a3"}},
		{"a quorum of two is enough", input(down("a1", "k1", 3), down("a2", "k1", 3), up("a3", "k1"), up("a1", "k2"), up("a2", "k2")), nil,
			CodeFlip, "k2 healthy for a1, a2;", []string{"a1", "a2"}},

		{"in progress", with(input(outage()...), func(in *Input) { in.Route.InProgress = true }), func(p *Policy) { p.Failover.Automatic = false },
			CodeInProgress, "; a flip of route r is still in progress", []string{"a1", "a2", "a3"}},
		{"no automatic failback", with(input(down("a1", "k2", 5), down("a2", "k2", 5), up("a1", "k1"), up("a2", "k1")), func(in *Input) { in.Route.Active = "k2" }), nil,
			CodeNotPrimary, "k2 breached for a1 (5), a2 (5) (2 of 3 agents, 3+ consecutive failed probes); the route is on its standby and fails back to k1 only on request", []string{"a1", "a2"}},
		{"automatic off", input(outage()...), func(p *Policy) { p.Failover.Automatic = false },
			CodeAutomaticOff, "automatic failover is off, run turnout failover to switch to k2", []string{"a1", "a2", "a3"}},
		{"automatic off before cooldown", with(input(outage()...), func(in *Input) { in.Route.LastAutoFlipAt = now }), func(p *Policy) { p.Failover.Automatic = false },
			CodeAutomaticOff, "automatic failover is off", []string{"a1", "a2", "a3"}},

		{"cooldown", with(input(outage()...), func(in *Input) { in.Route.LastAutoFlipAt = now.Add(-9*time.Minute - 30*time.Second) }), nil,
			CodeCooldown, "the route failed over automatically at 2026-11-26T11:50:30Z and the 10m0s cooldown has 30s left", []string{"a1", "a2", "a3"}},
		{"cooldown rounds the wait up", with(input(outage()...), func(in *Input) { in.Route.LastAutoFlipAt = now.Add(-10*time.Minute + time.Millisecond) }), nil,
			CodeCooldown, "cooldown has 1s left", []string{"a1", "a2", "a3"}},
		{"cooldown over exactly", with(input(outage()...), func(in *Input) { in.Route.LastAutoFlipAt = now.Add(-10 * time.Minute) }), nil,
			CodeFlip, "failing over to k2", []string{"a1", "a2", "a3"}},
		{"cooldown before standby health", with(input(down("a1", "k1", 5), down("a2", "k1", 5)), func(in *Input) { in.Route.LastAutoFlipAt = now.Add(-time.Minute) }), nil,
			CodeCooldown, "9m0s left", []string{"a1", "a2"}},
		{"no cooldown", with(input(outage()...), func(in *Input) { in.Route.LastAutoFlipAt = now }), func(p *Policy) { p.Failover.Cooldown = 0 },
			CodeFlip, "failing over to k2", []string{"a1", "a2", "a3"}},

		{"standby down", input(down("a1", "k1", 5), down("a2", "k1", 5), down("a1", "k2", 5), down("a2", "k2", 1)), nil,
			CodeStandbyUnhealthy, "; but no agent sees k2 healthy; a quorum of 2 of 3 must", []string{"a1", "a2"}},
		{"standby healthy for one agent", input(down("a1", "k1", 5), down("a2", "k1", 5), up("a1", "k2"), down("a2", "k2", 1)), nil,
			CodeStandbyUnhealthy, "; but only a1 sees k2 healthy; a quorum of 2 of 3 must", []string{"a1", "a2"}},
		{"standby views stale", input(down("a1", "k1", 5), down("a2", "k1", 5), aged(up("a1", "k2"), time.Minute), aged(up("a2", "k2"), 6*time.Second)), nil,
			CodeStandbyUnhealthy, "no agent sees k2 healthy", []string{"a1", "a2"}},
		{"standby before lag", with(input(down("a1", "k1", 5), down("a2", "k1", 5)), func(in *Input) { in.Lag = Lag{} }), nil,
			CodeStandbyUnhealthy, "no agent sees k2 healthy", []string{"a1", "a2"}},

		{"lag unknown", with(input(outage()...), func(in *Input) { in.Lag = Lag{Route: "r", Detail: "no MirrorMaker 2 offset syncs yet"} }), nil,
			CodeLagUnknown, "the mirrormaker2 lag of k2 was never measured, so it may miss records: no MirrorMaker 2 offset syncs yet", []string{"a1", "a2", "a3"}},
		{"lag found unknown", with(input(outage()...), func(in *Input) { in.Lag = Lag{Route: "r", At: now, Detail: "orders[0]: stale position"} }), nil,
			CodeLagUnknown, "the mirrormaker2 lag of k2 is unknown since 2026-11-26T12:00:00Z, so it may miss records: orders[0]: stale position", []string{"a1", "a2", "a3"}},
		{"lag of 0 too old", with(input(outage()...), func(in *Input) { in.Lag = lagAt(0, time.Minute+time.Nanosecond) }), nil,
			CodeLagUnknown, "the mirrormaker2 lag of k2 was last measured at 2026-11-26T11:58:59Z, 1m0s from now, beyond failover.maxLagAge (1m0s), so it may miss records written since", []string{"a1", "a2", "a3"}},
		{"lag exactly maxLagAge old counts", with(input(outage()...), func(in *Input) { in.Lag = lagAt(0, time.Minute) }), nil,
			CodeFlip, "lag 0 records (limit 10000)", []string{"a1", "a2", "a3"}},
		{"lag of 0 from an hour ahead", with(input(outage()...), func(in *Input) { in.Lag = lagAt(0, -time.Hour) }), nil,
			CodeLagUnknown, "was last measured at 2026-11-26T13:00:00Z, 1h0m0s from now, beyond failover.maxLagAge", []string{"a1", "a2", "a3"}},
		{"a high lag too old is unknown", with(input(outage()...), func(in *Input) { in.Lag = lagAt(10001, time.Hour) }), nil,
			CodeLagUnknown, "beyond failover.maxLagAge", []string{"a1", "a2", "a3"}},
		{"lag age not checked without replication", with(input(outage()...), func(in *Input) { in.Lag = lagAt(0, time.Hour) }), func(p *Policy) { p.Replication.Mode = ModeNone },
			CodeFlip, "lag not checked", []string{"a1", "a2", "a3"}},
		{"lag too high", with(input(outage()...), func(in *Input) { in.Lag = lag(10001) }), nil,
			CodeLagTooHigh, "k2 is 10001 records behind (limit 10000, measured 2026-11-26T11:59:59Z)", []string{"a1", "a2", "a3"}},
		{"lag at the limit", with(input(outage()...), func(in *Input) { in.Lag = lag(10000) }), nil,
			CodeFlip, "lag 10000 records (limit 10000)", []string{"a1", "a2", "a3"}},
		{"lag not checked", with(input(outage()...), func(in *Input) { in.Lag = Lag{} }), func(p *Policy) { p.Replication.Mode = ModeNone },
			CodeFlip, "lag not checked (replication mode none)", []string{"a1", "a2", "a3"}},

		{"route not in the policy", with(input(outage()...), func(in *Input) { in.Route.Name = "gone" }), nil,
			CodeNotInPolicy, "route gone is not in the policy; it stays on k1", nil},
		{"active domain not in the policy", with(input(outage()...), func(in *Input) { in.Route.Active = "k0" }), nil,
			CodeNotInPolicy, "route r is on k0, which the policy names neither primary (k1) nor standby (k2)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			if tt.policy != nil {
				tt.policy(p)
			}
			d := Decide(tt.in, p)
			if d.Code != tt.code || !strings.Contains(d.Reason, tt.reason) || !slices.Equal(d.Breached, tt.breached) {
				t.Fatalf("got %s %v: %s\nwant %s %v: ...%s...", d.Code, d.Breached, d.Reason, tt.code, tt.breached, tt.reason)
			}
			if d.Flip != (d.Code == CodeFlip) {
				t.Errorf("Flip = %v with code %s", d.Flip, d.Code)
			}
			if d.Flip && (d.From != "k1" || d.To != "k2" || d.Epoch != 5 || d.Route != "r") {
				t.Errorf("flip %s %s -> %s at epoch %d, want r k1 -> k2 at 5", d.Route, d.From, d.To, d.Epoch)
			}
		})
	}
}
