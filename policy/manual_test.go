package policy

import (
	"strings"
	"testing"
	"time"
)

func TestParseSignal(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    Request
		wantErr string
	}{
		{"word", "failover", Request{Action: ActionFailover}, ""},
		{"word and newline", "failback\n", Request{Action: ActionFailback}, ""},
		{"word and spaces", "  failover \r\n\n", Request{Action: ActionFailover}, ""},
		{"YAML", "action: failover\nroute: r\nto: k2\nforce: true\n", Request{Action: ActionFailover, Route: "r", To: "k2", Force: true}, ""},
		{"JSON", `{"action": "failover", "route": "r", "force": false}`, Request{Action: ActionFailover, Route: "r"}, ""},
		{"flow YAML", "{action: failback, route: r}\n", Request{Action: ActionFailback, Route: "r"}, ""},

		{"empty", "", Request{}, "line 1: the file is empty; write failover, failback, or a mapping such as {action: failover, route: NAME, to: DOMAIN, force: false}"},
		{"blank", " \n\n", Request{}, "line 1: the file is empty"},
		{"other word", "switch\n", Request{}, `line 1: want failover, failback, or a mapping such as {action: failover, route: NAME, to: DOMAIN, force: false}; got "switch"`},
		{"capitalised", "Failover\n", Request{}, `got "Failover"`},
		{"two words", "failover\nfailback\n", Request{}, `got "failover failback"`},
		{"list", "[failover]\n", Request{}, "got a list"},
		{"unknown key", "action: failover\nrouet: r\n", Request{}, `line 2: unknown key "rouet" (allowed: action, route, to, force, id)`},
		{"JSON unknown key", `{"action": "failover", "target": "k2"}` + "\n", Request{}, `line 1: unknown key "target" (allowed: action, route, to, force, id)`},
		{"action missing", "route: r\n", Request{}, "line 1: action: missing; want failover or failback"},
		{"unknown action", "action: restart\n", Request{}, `line 1: action: unknown action "restart"; want failover or failback`},
		{"force not a bool", "action: failover\nforce: please\n", Request{}, `line 2: force: want true or false, got "please"`},
		{"failback with a target", "action: failback\nto: k2\n", Request{}, "line 2: to: a failback always returns to the route's primary; leave out to, or ask for a failover to k2"},
		{"invalid JSON", `{"action": "failover"` + "\n", Request{}, "invalid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSignal([]byte(tt.data))
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecideManual(t *testing.T) {
	healthy := []View{up("a1", "k1"), up("a2", "k1"), up("a3", "k1"), up("a1", "k2"), up("a2", "k2"), up("a3", "k2")}
	onStandby := func(in *Input) { in.Route.Active = "k2" }
	tests := []struct {
		name   string
		req    Request
		in     Input
		policy func(*Policy)
		code   Code
		to     string // the target, when the decision has one
		reason string // a part of the reason
	}{
		{"failover to the standby", Request{Action: ActionFailover}, input(healthy...), nil,
			CodeFlip, "k2", "manual failover of route r from k1 to k2 at epoch 5: k2 healthy for a1, a2, a3; lag 12 records (limit 10000)"},
		{"failover names the target", Request{Action: ActionFailover, Route: "r", To: "k2"}, input(healthy...), nil, CodeFlip, "k2", "to k2 at epoch 5"},
		{"failover from the standby goes to the primary", Request{Action: ActionFailover}, with(input(healthy...), onStandby), nil,
			CodeFlip, "k1", "manual failover of route r from k2 to k1"},
		{"failover to the active domain", Request{Action: ActionFailover, To: "k1"}, input(healthy...), nil,
			CodeAlreadyActive, "k1", "route r already serves k1"},
		{"failback", Request{Action: ActionFailback}, with(input(healthy...), onStandby), nil,
			CodeFlip, "k1", "manual failback of route r from k2 to k1 at epoch 5"},
		{"failback naming the primary", Request{Action: ActionFailback, To: "k1"}, with(input(healthy...), onStandby), nil, CodeFlip, "k1", "failback"},
		{"failback on the primary", Request{Action: ActionFailback}, input(healthy...), nil, CodeAlreadyActive, "k1", "route r already serves k1"},
		{"failover to where a failed flip went", Request{Action: ActionFailover, To: "k1"}, with(input(healthy...), func(in *Input) { in.Route.Unfinished = true }), nil,
			CodeResume, "k1", "manual failover of route r from k1 to k1: the last flip to k1 stopped before every gateway was restarted"},
		{"no cooldown for people", Request{Action: ActionFailback}, with(input(healthy...), func(in *Input) { onStandby(in); in.Route.LastAutoFlipAt = now }), nil,
			CodeFlip, "k1", "failback"},
		{"automatic off does not matter", Request{Action: ActionFailover}, input(healthy...), func(p *Policy) { p.Failover.Automatic = false }, CodeFlip, "k2", "failover"},

		{"target down", Request{Action: ActionFailover}, input(up("a1", "k1"), down("a1", "k2", 3), up("a2", "k2")), nil,
			CodeTargetUnhealthy, "k2", "manual failover of route r from k1 to k2 refused: only a2 sees k2 healthy; a quorum of 2 of 3 must"},
		{"target views stale", Request{Action: ActionFailback}, with(input(aged(up("a1", "k1"), time.Hour), aged(up("a2", "k1"), time.Hour)), onStandby), nil,
			CodeTargetUnhealthy, "k1", "no agent sees k1 healthy"},
		{"forced to a target down", Request{Action: ActionFailover, Force: true}, input(down("a1", "k2", 3)), nil,
			CodeFlip, "k2", "manual failover of route r from k1 to k2 at epoch 5, forced: health and lag not checked"},
		{"lag too high waits", Request{Action: ActionFailover}, with(input(healthy...), func(in *Input) { in.Lag = lag(20000) }), nil,
			CodeLagTooHigh, "k2", "manual failover of route r from k1 to k2 waits: k2 is 20000 records behind (limit 10000, measured 2026-11-26T11:59:59Z) (force skips this check)"},
		{"lag unknown waits", Request{Action: ActionFailover}, with(input(healthy...), func(in *Input) { in.Lag = Lag{} }), nil,
			CodeLagUnknown, "k2", "waits: the mirrormaker2 lag of k2 was never measured"},
		{"forced past the lag", Request{Action: ActionFailover, Force: true}, with(input(healthy...), func(in *Input) { in.Lag = lag(20000) }), nil,
			CodeFlip, "k2", "forced"},
		{"lag not checked", Request{Action: ActionFailover}, with(input(healthy...), func(in *Input) { in.Lag = Lag{} }), func(p *Policy) { p.Replication.Mode = ModeNone },
			CodeFlip, "k2", "lag not checked (replication mode none)"},

		{"in progress", Request{Action: ActionFailover, Force: true}, with(input(healthy...), func(in *Input) { in.Route.InProgress = true }), nil,
			CodeInProgress, "k2", "manual failover of route r from k1 to k2 waits: a flip of the route is still in progress"},
		{"unknown target", Request{Action: ActionFailover, To: "k3"}, input(healthy...), nil, CodeBadRequest, "k3", "route r switches between k1 and k2; k3 is neither"},
		{"failback elsewhere", Request{Action: ActionFailback, To: "k2"}, with(input(healthy...), onStandby), nil,
			CodeBadRequest, "k1", "a failback returns route r to its primary k1, not to k2"},
		{"unknown action", Request{Action: "restart"}, input(healthy...), nil, CodeBadRequest, "", `unknown action "restart"; want failover or failback`},
		{"unknown route", Request{Action: ActionFailover, Route: "s"}, input(healthy...), nil, CodeBadRequest, "", `the policy has no route "s" (routes: r)`},
		{"no route among two", Request{Action: ActionFailover}, input(healthy...), func(p *Policy) { p.Routes = append(p.Routes, Route{Name: "s", Primary: "k1", Standby: "k2"}) },
			CodeBadRequest, "", "the policy has 2 routes; name one (r, s)"},
		{"state of another route", Request{Action: ActionFailover, Route: "s"}, input(healthy...), func(p *Policy) { p.Routes = append(p.Routes, Route{Name: "s", Primary: "k1", Standby: "k2"}) },
			CodeBadRequest, "", "the request is for route s but the state given is of route r"},
		{"active domain not in the policy", Request{Action: ActionFailover, Force: true}, with(input(healthy...), func(in *Input) { in.Route.Active = "k0" }), nil,
			CodeNotInPolicy, "", "route r is on k0, which the policy names neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			if tt.policy != nil {
				tt.policy(p)
			}
			d := DecideManual(tt.req, tt.in, p)
			if d.Code != tt.code || d.To != tt.to || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("got %s to %q: %s\nwant %s to %q: ...%s...", d.Code, d.To, d.Reason, tt.code, tt.to, tt.reason)
			}
			if d.Flip != (d.Code == CodeFlip) || d.Flip && (d.Epoch != 5 || d.From != tt.in.Route.Active) {
				t.Errorf("flip %v from %s at epoch %d with code %s", d.Flip, d.From, d.Epoch, d.Code)
			}
		})
	}
}

// TestPin: a failover without a target is pinned to the domain it leaves
// when it is received, so that deciding it again once the route has moved
// answers already-active rather than moving it back.
func TestPin(t *testing.T) {
	healthy := []View{up("a1", "k1"), up("a2", "k1"), up("a3", "k1"), up("a1", "k2"), up("a2", "k2"), up("a3", "k2")}
	tests := []struct {
		name  string
		req   Request
		state RouteState
		want  Request
	}{
		{"failover from the primary", Request{Action: ActionFailover}, RouteState{Active: "k1"}, Request{Action: ActionFailover, Route: "r", To: "k2"}},
		{"failover from the standby", Request{Action: ActionFailover, Force: true}, RouteState{Active: "k2"}, Request{Action: ActionFailover, Route: "r", To: "k1", Force: true}},
		{"a target named stays", Request{Action: ActionFailover, To: "k1"}, RouteState{Active: "k1"}, Request{Action: ActionFailover, Route: "r", To: "k1"}},
		{"failback has its own target", Request{Action: ActionFailback}, RouteState{Active: "k2"}, Request{Action: ActionFailback, Route: "r"}},
		{"failover after a flip that stopped finishes it", Request{Action: ActionFailover}, RouteState{Active: "k2", Unfinished: true},
			Request{Action: ActionFailover, Route: "r", To: "k2"}},
		{"active domain not in the policy", Request{Action: ActionFailover}, RouteState{Active: "k0"}, Request{Action: ActionFailover, Route: "r"}},
		{"unknown route", Request{Action: ActionFailover, Route: "s"}, RouteState{Active: "k1"}, Request{Action: ActionFailover, Route: "s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Pin(tt.req, tt.state, testPolicy()); got != tt.want {
				t.Errorf("Pin = %+v, want %+v", got, tt.want)
			}
		})
	}
	// Received on k1, done; decided again on k2, it is done already.
	req := Pin(Request{Action: ActionFailover}, RouteState{Active: "k1"}, testPolicy())
	if d := DecideManual(req, with(input(healthy...), func(in *Input) { in.Route.Active = "k2" }), testPolicy()); d.Code != CodeAlreadyActive || d.Flip {
		t.Errorf("a pinned failover decided again after its flip: %s (flip %v): %s", d.Code, d.Flip, d.Reason)
	}
}

// TestDecideManualQuiesce: only a planned switch, away from a cluster a
// quorum still sees healthy, pauses producers for replication to finish.
func TestDecideManualQuiesce(t *testing.T) {
	healthy := []View{up("a1", "k1"), up("a2", "k1"), up("a3", "k1"), up("a1", "k2"), up("a2", "k2"), up("a3", "k2")}
	sourceDown := []View{down("a1", "k1", 3), down("a2", "k1", 3), up("a3", "k1"), up("a1", "k2"), up("a2", "k2"), up("a3", "k2")}
	tests := []struct {
		name    string
		req     Request
		views   []View
		policy  func(*Policy)
		quiesce bool
	}{
		{"planned failover", Request{Action: ActionFailover}, healthy, nil, true},
		{"source lost", Request{Action: ActionFailover}, sourceDown, nil, false},
		{"forced", Request{Action: ActionFailover, Force: true}, healthy, nil, false},
		{"pause off", Request{Action: ActionFailover}, healthy, func(p *Policy) { p.Failover.PlannedPause = 0 }, false},
		{"nothing replicated to wait for", Request{Action: ActionFailover}, healthy, func(p *Policy) { p.Replication.Mode = ModeNone }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			p.Failover.PlannedPause = DefaultPlannedPause
			if tt.policy != nil {
				tt.policy(p)
			}
			d := DecideManual(tt.req, input(tt.views...), p)
			if !d.Flip || d.Quiesce != tt.quiesce {
				t.Fatalf("got %s (flip %v) quiesce %v, want a flip with quiesce %v: %s", d.Code, d.Flip, d.Quiesce, tt.quiesce, d.Reason)
			}
		})
	}
}
