package agent

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/consensus"
	"github.com/turnout/turnout/policy"
)

func TestAdmitReport(t *testing.T) {
	received := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	peers := map[string]string{"a1": "h1:7000", "a2": "h2:7000", "a3": "h3:7000"}
	pol := &policy.Policy{Routes: []policy.Route{{Name: "r", Primary: "k1", Standby: "k2"}}}
	view := func(agent, domain string, at time.Time) consensus.Command {
		return consensus.ReportView{View: policy.View{Agent: agent, Domain: domain, ConsecutiveFailures: 5, At: at}}
	}
	lag := func(agent, route string, at time.Time) consensus.Command {
		return consensus.ReportLag{Lag: policy.Lag{Agent: agent, Route: route, Known: true, At: at}}
	}
	tests := []struct {
		name   string
		cmd    consensus.Command
		at     time.Time // the time committed
		status int
		msg    string // a part of the refusal
	}{
		{"a view", view("a2", "k1", received.Add(-300*time.Millisecond)), received.Add(-300 * time.Millisecond), 0, ""},
		{"a view a little ahead is dated when received", view("a2", "k1", received.Add(3*time.Second)), received, 0, ""},
		{"a view from a clock an hour fast", view("a2", "k1", received.Add(time.Hour)), time.Time{}, http.StatusUnprocessableEntity,
			"the report is dated 2026-12-08T13:00:00Z, 1h0m0s from the leader's clock (2026-12-08T12:00:00Z); more than 10s apart"},
		{"a view from a clock an hour slow", view("a2", "k1", received.Add(-time.Hour)), time.Time{}, http.StatusUnprocessableEntity, "-1h0m0s from the leader's clock"},
		{"a view at the skew bound", view("a2", "k1", received.Add(maxClockSkew)), received, 0, ""},
		{"a view from no peer", view("mallory", "k1", received), time.Time{}, http.StatusForbidden, `agent "mallory" is not one of the Raft peers (a1, a2, a3)`},
		{"a view in the leader's name", view("a1", "k1", received), time.Time{}, http.StatusForbidden, `agent "a1" is this leader, which commits its own reports itself`},
		{"a view of a domain in no route", view("a2", "k9", received), time.Time{}, http.StatusBadRequest, `domain "k9" is in no route of the policy`},
		{"a lag", lag("a3", "r", received.Add(-time.Second)), received.Add(-time.Second), 0, ""},
		{"a lag of 0 from a clock ahead", lag("a3", "r", received.Add(5*time.Second)), received, 0, ""},
		{"a lag from a clock an hour fast", lag("a3", "r", received.Add(time.Hour)), time.Time{}, http.StatusUnprocessableEntity, "1h0m0s from the leader's clock"},
		{"a lag with no agent", lag("", "r", received), time.Time{}, http.StatusForbidden, `agent "" is not one of the Raft peers`},
		{"a lag of a route not in the policy", lag("a3", "s", received), time.Time{}, http.StatusBadRequest, `route "s" is not in the policy`},
		{"a flip", consensus.StartFlip{Route: "r", From: "k1", To: "k2", Epoch: 1, At: received, Leader: "a2"}, time.Time{}, http.StatusForbidden,
			"the leader takes only views and lag reports from other agents, not a consensus.StartFlip: it commits everything else itself"},
		{"a finish", consensus.FinishFlip{Route: "r", Epoch: 1, Outcome: consensus.OutcomeDone}, time.Time{}, http.StatusForbidden, "not a consensus.FinishFlip"},
		{"a step", consensus.RecordStep{Route: "r", Epoch: 1, Step: "config-written"}, time.Time{}, http.StatusForbidden, "not a consensus.RecordStep"},
		{"a resume", consensus.ResumeFlip{Route: "r", Epoch: 1}, time.Time{}, http.StatusForbidden, "not a consensus.ResumeFlip"},
		{"a route", consensus.InitRoute{Route: "r", Active: "k2"}, time.Time{}, http.StatusForbidden, "not a consensus.InitRoute"},
		{"an address", consensus.RegisterAgent{Agent: consensus.Agent{ID: "a1", HTTP: "http://evil:8081"}}, time.Time{}, http.StatusForbidden,
			"not a consensus.RegisterAgent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, r := admitReport(tt.cmd, received, time.Time{}, "a1", peers, pol)
			if tt.status != 0 {
				if r == nil || r.status != tt.status || !strings.Contains(r.msg, tt.msg) {
					t.Fatalf("refusal %+v, want %d ...%s...", r, tt.status, tt.msg)
				}
				return
			}
			if r != nil {
				t.Fatalf("refused: %+v", r)
			}
			var at time.Time
			switch c := cmd.(type) {
			case consensus.ReportView:
				at = c.At
			case consensus.ReportLag:
				at = c.At
			}
			if !at.Equal(tt.at) {
				t.Errorf("committed at %s, want %s", at, tt.at)
			}
		})
	}
}

// TestAdmitReportDatedByAge: a report whose sender says when it sent it is
// dated by its age on the sender's clock, so a clock off by any amount
// neither freshens nor ages it, and one held up on its way is refused.
func TestAdmitReportDatedByAge(t *testing.T) {
	received := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	peers := map[string]string{"a1": "h1:7000", "a2": "h2:7000"}
	pol := &policy.Policy{Routes: []policy.Route{{Name: "r", Primary: "k1", Standby: "k2"}}}
	tests := []struct {
		name     string
		offset   time.Duration // the sender's clock minus the leader's
		age      time.Duration // sent - at, on the sender's clock
		want     time.Time
		refusedS int
	}{
		{"in step", 0, 300 * time.Millisecond, received.Add(-300 * time.Millisecond), 0},
		{"an hour fast", time.Hour, 300 * time.Millisecond, received.Add(-300 * time.Millisecond), 0},
		{"an hour slow", -time.Hour, 2 * time.Second, received.Add(-2 * time.Second), 0},
		{"dated after it was sent", time.Hour, -time.Second, received, 0},
		{"held up before it was sent", time.Hour, maxReportAge + time.Second, time.Time{}, http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := received.Add(tt.offset)
			at := sent.Add(-tt.age)
			for _, cmd := range []consensus.Command{
				consensus.ReportView{View: policy.View{Agent: "a2", Domain: "k1", At: at}},
				consensus.ReportLag{Lag: policy.Lag{Agent: "a2", Route: "r", Known: true, At: at}},
			} {
				got, r := admitReport(cmd, received, sent, "a1", peers, pol)
				if tt.refusedS != 0 {
					if r == nil || r.status != tt.refusedS || r.reason != "stale" {
						t.Fatalf("%T: refusal %+v, want %d stale", cmd, r, tt.refusedS)
					}
					continue
				}
				if r != nil {
					t.Fatalf("%T refused: %+v", cmd, r)
				}
				var gotAt time.Time
				switch c := got.(type) {
				case consensus.ReportView:
					gotAt = c.At
				case consensus.ReportLag:
					gotAt = c.At
				}
				if !gotAt.Equal(tt.want) {
					t.Errorf("%T committed at %s, want %s", cmd, gotAt, tt.want)
				}
			}
		})
	}
}
