package consensus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/policy"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// flipping is route r at epoch 1, flipping from k1 to k2.
var flipping = []Command{
	InitRoute{Route: "r", Active: "k1"},
	StartFlip{Route: "r", From: "k1", To: "k2", Epoch: 1, Reason: "k1 breached", At: t0, Leader: "a1"},
}

// failed is route r after its flip to k2 at epoch 1 stopped at gw-2, with
// gw-1 done.
var failed = append(flipping[:2:2],
	RecordStep{Route: "r", Epoch: 1, Step: "gateway-restarted", ConfigWritten: true, GatewayDone: "gw-1"},
	FinishFlip{Route: "r", Epoch: 1, Outcome: OutcomeFailed, Error: "gateway gw-2: timeout", At: t0.Add(time.Minute)})

// asked is route r after a manual request, q1, flipped it to k2 at epoch 1.
var asked = []Command{
	InitRoute{Route: "r", Active: "k1"},
	StartFlip{Route: "r", From: "k1", To: "k2", Epoch: 1, Manual: true, RequestID: "q1", At: t0, Leader: "a1"},
	FinishFlip{Route: "r", Epoch: 1, Outcome: OutcomeDone, At: t0.Add(3 * time.Second)},
}

// flipped is route r after its flip to k2 at epoch 1 finished.
var flipped = append(flipping[:2:2], FinishFlip{Route: "r", Epoch: 1, Outcome: OutcomeDone, At: t0.Add(3 * time.Second)})

func view(agent, domain string, failures int, at time.Time) policy.View {
	return policy.View{Agent: agent, Domain: domain, Healthy: failures == 0, ConsecutiveFailures: failures, Brokers: 3, At: at}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name   string
		before []Command // applied first, each must succeed
		cmd    Command
		reject string // a part of the rejection, or "" if cmd applies
		check  func(s State) bool
	}{
		{"init route", nil, InitRoute{Route: "r", Active: "k1"}, "",
			func(s State) bool { r := s.Routes["r"]; return r.Name == "r" && r.Active == "k1" && r.Epoch == 0 }},
		{"init route at the gateway config's epoch", nil, InitRoute{Route: "r", Active: "k2", Epoch: 7}, "",
			func(s State) bool { return s.Routes["r"].Active == "k2" && s.Routes["r"].Epoch == 7 }},
		{"init route twice", flipped, InitRoute{Route: "r", Active: "k1"}, `route "r" already exists: it serves k2 at epoch 1`, nil},
		{"init route without a name", nil, InitRoute{Active: "k1"}, "a route needs a name", nil},
		{"init route without a domain", nil, InitRoute{Route: "r"}, `route "r" needs an active domain`, nil},
		{"init route at a negative epoch", nil, InitRoute{Route: "r", Active: "k1", Epoch: -1}, "epoch -1 is negative", nil},

		{"start flip", flipping[:1], flipping[1], "", func(s State) bool {
			r := s.Routes["r"]
			f := r.InProgress
			return r.Active == "k2" && r.Epoch == 1 && r.LastFlip == nil && f != nil && f.From == "k1" && f.To == "k2" &&
				f.Reason == "k1 breached" && f.Leader == "a1" && f.StartedAt.Equal(t0) && f.Step == StepCommitted
		}},
		{"start flip forgets the lag", []Command{flipping[0], ReportLag{policy.Lag{Route: "r", Records: 5, Known: true, At: t0}}}, flipping[1], "",
			func(s State) bool { _, ok := s.Lag["r"]; return !ok }},
		{"start flip back after a flip", flipped, StartFlip{Route: "r", From: "k2", To: "k1", Epoch: 2, Manual: true, Force: true, At: t0}, "",
			func(s State) bool {
				r := s.Routes["r"]
				return r.Active == "k1" && r.Epoch == 2 && r.InProgress.Manual && r.InProgress.Force && r.LastFlip.Epoch == 1
			}},
		{"start flip records its request", asked[:1], asked[1], "", func(s State) bool {
			q := s.Requests["q1"]
			return s.Routes["r"].InProgress.RequestID == "q1" && q.Route == "r" && q.From == "k1" && q.To == "k2" && q.Epoch == 1 &&
				q.At.Equal(t0) && q.Outcome == ""
		}},
		{"finish flip records the request's outcome", asked[:2], asked[2], "",
			func(s State) bool { return s.Requests["q1"].Outcome == OutcomeDone }},
		{"a request flips once", asked, StartFlip{Route: "r", From: "k2", To: "k1", Epoch: 2, Manual: true, RequestID: "q1", At: t0.Add(time.Minute)},
			`request q1 already flipped route "r" from k1 to k2 at epoch 1`, nil},
		{"a request is kept whatever the next one's date", asked, StartFlip{Route: "r", From: "k2", To: "k1", Epoch: 2, Manual: true, RequestID: "q2", At: t0.Add(25 * time.Hour)}, "",
			func(s State) bool { return len(s.Requests) == 2 && s.Requests["q1"].Seq < s.Requests["q2"].Seq }},
		{"an automatic flip records no request", flipped[:1], flipped[1], "",
			func(s State) bool { return len(s.Requests) == 0 }},
		{"resume a request's failed flip", append(asked[:2:2], FinishFlip{Route: "r", Epoch: 1, Outcome: OutcomeFailed, Error: "gw-2: timeout"}),
			ResumeFlip{Route: "r", Epoch: 1, At: t0.Add(time.Minute)}, "",
			func(s State) bool { q := s.Requests["q1"]; return q.Outcome == "" && q.Error == "" }},
		{"stale epoch", flipped, StartFlip{Route: "r", From: "k2", To: "k1", Epoch: 1}, `stale epoch: route "r" is at epoch 1, so a flip must carry 2, not 1`, nil},
		{"epoch from the future", flipped, StartFlip{Route: "r", From: "k2", To: "k1", Epoch: 3}, "stale epoch", nil},
		{"stale leader replays the same flip", flipping, flipping[1], "stale epoch", nil},
		{"wrong from", flipped, StartFlip{Route: "r", From: "k1", To: "k2", Epoch: 2}, `route "r" serves k2, not k1`, nil},
		{"flip in progress", flipping, StartFlip{Route: "r", From: "k2", To: "k1", Epoch: 2}, `a flip of route "r" to k2 at epoch 1 is in progress`, nil},
		{"flip to itself", flipping[:1], StartFlip{Route: "r", From: "k1", To: "k1", Epoch: 1}, "needs a domain other than k1", nil},
		{"flip of an unknown route", nil, StartFlip{Route: "r", From: "k1", To: "k2", Epoch: 1}, `unknown route "r"`, nil},

		{"record a step", flipping, RecordStep{Route: "r", Epoch: 1, Step: "config-written", ConfigWritten: true, At: t0.Add(time.Second)}, "",
			func(s State) bool {
				f := s.Routes["r"].InProgress
				return f.Step == "config-written" && f.ConfigWritten && f.StepAt.Equal(t0.Add(time.Second)) && len(f.GatewaysDone) == 0
			}},
		{"record gateways in order, once each", append(flipping[:2:2],
			RecordStep{Route: "r", Epoch: 1, Step: "config-written", ConfigWritten: true},
			RecordStep{Route: "r", Epoch: 1, Step: "gateway-restarted", GatewayDone: "gw-2"},
			RecordStep{Route: "r", Epoch: 1, Step: "gateway-restarted", GatewayDone: "gw-1"}),
			RecordStep{Route: "r", Epoch: 1, Step: "gateway-restarted", GatewayDone: "gw-2"}, "",
			func(s State) bool {
				f := s.Routes["r"].InProgress
				return f.ConfigWritten && strings.Join(f.GatewaysDone, ",") == "gw-2,gw-1"
			}},
		{"record a step of a stale epoch", flipping, RecordStep{Route: "r", Epoch: 0, Step: "x"}, `stale epoch: the flip of route "r" in progress is at epoch 1, not 0`, nil},
		{"record a step with no flip", flipped, RecordStep{Route: "r", Epoch: 1, Step: "x"}, `no flip of route "r" is in progress`, nil},
		{"record a step of an unknown route", nil, RecordStep{Route: "r", Epoch: 1, Step: "x"}, `unknown route "r"`, nil},
		{"record a nameless step", flipping, RecordStep{Route: "r", Epoch: 1}, "a step needs a name", nil},

		{"finish a flip", flipping, FinishFlip{Route: "r", Epoch: 1, Outcome: OutcomeDone, At: t0.Add(3 * time.Second)}, "",
			func(s State) bool {
				r := s.Routes["r"]
				return r.InProgress == nil && r.LastFlip.Outcome == OutcomeDone && r.LastFlip.FinishedAt.Equal(t0.Add(3*time.Second)) && r.Active == "k2"
			}},
		{"finish a failed flip", flipping, FinishFlip{Route: "r", Epoch: 1, Outcome: OutcomeFailed, Error: "gw-1 did not restart"}, "",
			func(s State) bool {
				r := s.Routes["r"]
				return r.LastFlip.Outcome == OutcomeFailed && r.LastFlip.Error == "gw-1 did not restart" && r.Active == "k2" && r.Epoch == 1
			}},
		{"finish twice", flipped, FinishFlip{Route: "r", Epoch: 1, Outcome: OutcomeDone}, `no flip of route "r" is in progress`, nil},
		{"finish a stale epoch", flipping, FinishFlip{Route: "r", Epoch: 2, Outcome: OutcomeDone}, "stale epoch", nil},
		{"finish with no outcome", flipping, FinishFlip{Route: "r", Epoch: 1}, `outcome "" is neither done nor failed`, nil},

		{"resume a failed flip", failed, ResumeFlip{Route: "r", Epoch: 1, At: t0.Add(2 * time.Minute), Leader: "a2"}, "",
			func(s State) bool {
				r := s.Routes["r"]
				f := r.InProgress
				return f != nil && f.To == "k2" && f.Epoch == 1 && f.Step == StepResumed && f.Leader == "a2" && f.Outcome == "" &&
					f.Error == "" && f.FinishedAt.IsZero() && f.ConfigWritten && strings.Join(f.GatewaysDone, ",") == "gw-1" &&
					r.LastFlip.Outcome == OutcomeFailed && r.Active == "k2" && r.Epoch == 1
			}},
		{"resume a flip that succeeded", flipped, ResumeFlip{Route: "r", Epoch: 1}, `route "r" has no failed flip to resume`, nil},
		{"resume while a flip is in progress", flipping, ResumeFlip{Route: "r", Epoch: 1}, "is in progress", nil},
		{"resume a stale epoch", failed, ResumeFlip{Route: "r", Epoch: 0}, "stale epoch", nil},
		{"resume after a newer flip", append(failed[:len(failed):len(failed)],
			StartFlip{Route: "r", From: "k2", To: "k1", Epoch: 2, Force: true},
			FinishFlip{Route: "r", Epoch: 2, Outcome: OutcomeFailed}), ResumeFlip{Route: "r", Epoch: 1}, "stale epoch", nil},
		{"resume an unknown route", nil, ResumeFlip{Route: "r", Epoch: 1}, `unknown route "r"`, nil},

		{"report a view", nil, ReportView{view("a1", "k1", 2, t0)}, "",
			func(s State) bool { return s.Views["a1"]["k1"].ConsecutiveFailures == 2 }},
		{"a newer view replaces", []Command{ReportView{view("a1", "k1", 2, t0)}}, ReportView{view("a1", "k1", 3, t0.Add(time.Second))}, "",
			func(s State) bool { return s.Views["a1"]["k1"].ConsecutiveFailures == 3 }},
		{"the last view reported replaces one a clock ahead stamped", []Command{ReportView{view("a1", "k1", 2, t0.Add(time.Hour))}},
			ReportView{view("a1", "k1", 0, t0)}, "",
			func(s State) bool {
				return s.Views["a1"]["k1"].ConsecutiveFailures == 0 && s.Views["a1"]["k1"].At.Equal(t0)
			}},
		{"a view without an agent", nil, ReportView{view("", "k1", 0, t0)}, `a view needs an agent and a domain, got agent "", domain "k1"`, nil},

		{"report lag", nil, ReportLag{policy.Lag{Route: "r", Records: 12, Known: true, At: t0}}, "",
			func(s State) bool { return s.Lag["r"].Records == 12 }},
		{"unknown lag replaces a known one", []Command{ReportLag{policy.Lag{Route: "r", Records: 0, Known: true, At: t0}}},
			ReportLag{policy.Lag{Route: "r", At: t0.Add(time.Second), Detail: "orders[0]: position beyond the end"}}, "",
			func(s State) bool {
				return !s.Lag["r"].Known && s.Lag["r"].Detail == "orders[0]: position beyond the end"
			}},
		{"unknown lag when none is known", nil, ReportLag{policy.Lag{Route: "r", At: t0, Detail: "no offset syncs"}}, "",
			func(s State) bool { return !s.Lag["r"].Known && s.Lag["r"].Detail == "no offset syncs" }},
		{"the last lag reported replaces one a clock ahead stamped", []Command{ReportLag{policy.Lag{Route: "r", Records: 0, Known: true, At: t0.Add(time.Hour)}}},
			ReportLag{policy.Lag{Route: "r", Records: 99, Known: true, At: t0}}, "",
			func(s State) bool { return s.Lag["r"].Records == 99 }},
		{"lag without a route", nil, ReportLag{policy.Lag{Known: true}}, "a lag report needs a route", nil},

		{"register an agent", nil, RegisterAgent{Agent{ID: "a1", HTTP: "http://127.0.0.1:8081"}}, "",
			func(s State) bool { return s.Agents["a1"].HTTP == "http://127.0.0.1:8081" }},
		{"register an agent without an id", nil, RegisterAgent{Agent{HTTP: "http://x"}}, "an agent needs an id", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState()
			for _, c := range tt.before {
				if err := s.Apply(c); err != nil {
					t.Fatalf("before: %T: %v", c, err)
				}
			}
			was := encodeState(t, s)
			err := s.Apply(tt.cmd)
			if tt.reject != "" {
				var rej *Rejected
				if !errors.As(err, &rej) || !strings.Contains(rej.Reason, tt.reject) {
					t.Fatalf("err = %v, want a rejection containing %q", err, tt.reject)
				}
				if now := encodeState(t, s); now != was {
					t.Errorf("a rejected command changed the state:\nbefore %s\nafter  %s", was, now)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(s) {
				t.Errorf("state after %T: %s", tt.cmd, encodeState(t, s))
			}
		})
	}
}

func encodeState(t *testing.T, s State) string {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// history is a log that uses every command, some of them rejected.
func history() []Command {
	return []Command{
		RegisterAgent{Agent{ID: "a2", HTTP: "http://127.0.0.1:8082"}},
		RegisterAgent{Agent{ID: "a1", HTTP: "http://127.0.0.1:8081"}},
		InitRoute{Route: "r", Active: "k1"},
		InitRoute{Route: "s", Active: "k2", Epoch: 4},
		ReportView{view("a1", "k1", 3, t0)},
		ReportView{view("a2", "k1", 4, t0)},
		ReportView{view("a1", "k2", 0, t0)},
		ReportView{view("a3", "k2", 0, t0.Add(time.Second))},
		ReportLag{policy.Lag{Route: "r", Records: 12, Known: true, At: t0, Detail: "orders: 12"}},
		ReportLag{policy.Lag{Route: "s", Records: 1, Known: true, At: t0}},
		StartFlip{Route: "r", From: "k1", To: "k2", Epoch: 1, Reason: "k1 breached", At: t0, Leader: "a1"},
		StartFlip{Route: "r", From: "k1", To: "k2", Epoch: 1, Reason: "stale", At: t0, Leader: "a2"}, // rejected
		RecordStep{Route: "r", Epoch: 1, Step: "config-written", ConfigWritten: true, At: t0.Add(time.Second)},
		RecordStep{Route: "r", Epoch: 1, Step: "gateway-restarted", GatewayDone: "gw-1", At: t0.Add(2 * time.Second)},
		FinishFlip{Route: "r", Epoch: 1, Outcome: OutcomeDone, At: t0.Add(3 * time.Second)},
		StartFlip{Route: "s", From: "k2", To: "k1", Epoch: 5, Manual: true, Force: true, At: t0, Leader: "a2", RequestID: "q1"},
	}
}

// The requests kept are bounded in number, and the oldest by log order go
// first, whatever the committing leaders' clocks said: here every leader's
// clock runs a second behind the last one's.
func TestRequestsBounded(t *testing.T) {
	s := NewState()
	if err := s.Apply(InitRoute{Route: "r", Active: "k1"}); err != nil {
		t.Fatal(err)
	}
	domains := [2]string{"k1", "k2"}
	for i := range maxRequests + 5 {
		at := t0.Add(-time.Duration(i) * time.Second)
		for _, c := range []Command{
			StartFlip{Route: "r", From: domains[i%2], To: domains[1-i%2], Epoch: int32(i + 1), Manual: true, RequestID: fmt.Sprint("q", i), At: at},
			FinishFlip{Route: "r", Epoch: int32(i + 1), Outcome: OutcomeDone, At: at},
		} {
			if err := s.Apply(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, oldest := s.Requests["q4"]
	_, first := s.Requests["q5"]
	if len(s.Requests) != maxRequests || oldest || !first {
		t.Errorf("%d requests kept (q4 %v, q5 %v); want the last %d", len(s.Requests), oldest, first, maxRequests)
	}
}

// TestRequestsKeptDespiteAClockAhead: a flip committed by a leader whose
// clock is days ahead forgets no request id, so a request sent again after
// an in-doubt answer is still answered from the state instead of flipping
// the route a second time.
func TestRequestsKeptDespiteAClockAhead(t *testing.T) {
	s := NewState()
	for _, c := range []Command{
		InitRoute{Route: "r", Active: "k1"},
		StartFlip{Route: "r", From: "k1", To: "k2", Epoch: 1, Manual: true, RequestID: "q1", At: t0},
		FinishFlip{Route: "r", Epoch: 1, Outcome: OutcomeDone, At: t0},
		StartFlip{Route: "r", From: "k2", To: "k1", Epoch: 2, Manual: true, RequestID: "q2", At: t0.Add(72 * time.Hour)},
	} {
		if err := s.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := s.Requests["q1"]; !ok {
		t.Fatalf("request q1 forgotten after a leader with a clock 3 days ahead committed q2: %v", s.Requests)
	}
	err := s.Apply(StartFlip{Route: "r", From: "k1", To: "k2", Epoch: 3, Manual: true, RequestID: "q1", At: t0})
	var rej *Rejected
	if !errors.As(err, &rej) {
		t.Errorf("request q1 sent again flipped the route a second time (err %v)", err)
	}
}

// The same log gives the same state, through Encode and Decode as in the
// Raft log, whatever the map order of the run.
func TestApplyDeterministic(t *testing.T) {
	var first string
	for run := range 20 {
		fsm := NewFSM()
		for i, c := range history() {
			data, err := Encode(c)
			if err != nil {
				t.Fatal(err)
			}
			res := fsm.Apply(raftLog(uint64(i+1), data))
			if _, rejected := res.(*Rejected); res != nil && !rejected {
				t.Fatalf("Apply(%T) = %#v", c, res)
			}
		}
		got := encodeState(t, fsm.State())
		if run == 0 {
			first = got
		} else if got != first {
			t.Fatalf("run %d differs:\n%s\n%s", run, first, got)
		}
	}
}

func TestDecode(t *testing.T) {
	for _, c := range history() {
		data, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := mustJSON(t, c), mustJSON(t, got); a != b {
			t.Errorf("%T: encoded %s, decoded %s", c, a, b)
		}
	}
	for data, want := range map[string]string{
		`{"type":"Reboot","cmd":{}}`:                 `unknown command type "Reboot"`,
		`{"type":"InitRoute","cmd":"r"}`:             "decoding a InitRoute command",
		`not json`:                                   "decoding a command",
		`{"type":"StartFlip","cmd":{"epoch":"one"}}`: "decoding a StartFlip command",
	} {
		if _, err := Decode([]byte(data)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%s) = %v, want an error containing %q", data, err, want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestStateInput(t *testing.T) {
	s := NewState()
	for _, c := range history() {
		_ = s.Apply(c) // the log holds one rejected flip
	}
	in := s.Input("r", t0.Add(time.Minute), 3)
	want := policy.RouteState{Name: "r", Active: "k2", Epoch: 1, LastAutoFlipAt: t0}
	if in.Route != want || in.Agents != 3 || !in.Now.Equal(t0.Add(time.Minute)) {
		t.Errorf("route %+v, agents %d, now %v; want %+v", in.Route, in.Agents, in.Now, want)
	}
	// A manual failback since leaves the cooldown counting from the
	// automatic failover, so an outage right after it still fails over.
	back := []Command{
		StartFlip{Route: "r", From: "k2", To: "k1", Epoch: 2, Manual: true, At: t0.Add(time.Hour), Leader: "a1"},
		FinishFlip{Route: "r", Epoch: 2, Outcome: OutcomeDone, At: t0.Add(time.Hour)},
	}
	for _, c := range back {
		if err := s.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	if r := s.Input("r", t0.Add(time.Hour), 3).Route; !r.LastAutoFlipAt.Equal(t0) || r.Active != "k1" {
		t.Errorf("after a manual failback the route is %+v; want its last automatic flip at %v", r, t0)
	}
	if r := s.Input("s", t0, 3).Route; !r.LastAutoFlipAt.IsZero() {
		t.Errorf("route s flipped only manually, yet its last automatic flip is at %v", r.LastAutoFlipAt)
	}
	f := NewState()
	for _, c := range failed {
		if err := f.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	if r := f.Input("r", t0, 3).Route; !r.Unfinished || r.Active != "k2" {
		t.Errorf("after a flip that stopped at a gateway the route is %+v; want it unfinished on k2", r)
	}
	if in.Lag.Known {
		t.Errorf("lag %+v survived the flip", in.Lag)
	}
	var order []string
	for _, v := range in.Views {
		order = append(order, v.Agent+"/"+v.Domain)
	}
	if got := strings.Join(order, " "); got != "a1/k1 a1/k2 a2/k1 a3/k2" {
		t.Errorf("views %s, want every view sorted by agent and domain", got)
	}
	if in := s.Input("s", t0, 3); !in.Route.InProgress || in.Lag.Known {
		t.Errorf("route s: %+v", in)
	}
	if in := s.Input("gone", t0, 3); in.Route != (policy.RouteState{Name: "gone"}) {
		t.Errorf("unknown route: %+v", in.Route)
	}
}

// A clone shares nothing with its original.
func TestClone(t *testing.T) {
	s := NewState()
	for _, c := range history() {
		_ = s.Apply(c)
	}
	if err := s.Apply(RecordStep{Route: "s", Epoch: 5, Step: "gateway-restarted", GatewayDone: "gw-1"}); err != nil {
		t.Fatal(err)
	}
	was := encodeState(t, s)
	c := s.Clone()
	c.Routes["r"].Active = "x"
	c.Routes["r"].LastFlip.Reason = "x"
	c.Routes["s"].InProgress.GatewaysDone[0] = "x"
	c.Views["a1"]["k1"] = policy.View{}
	c.Lag["s"] = policy.Lag{}
	c.Agents["a1"] = Agent{}
	c.Requests["q1"] = Request{}
	if now := encodeState(t, s); now != was {
		t.Errorf("changing the clone changed the original:\nbefore %s\nafter  %s", was, now)
	}
}
