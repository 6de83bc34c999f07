package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/agent"
)

// TestAskAgentRetriesInDoubt: an answer that is not final is followed by
// the same request under the same id, pinned to the target the agents
// chose, until the outcome is final.
func TestAskAgentRetriesInDoubt(t *testing.T) {
	var got []agent.FailoverRequest
	answers := []struct {
		status int
		o      agent.Outcome
	}{
		{http.StatusServiceUnavailable, agent.Outcome{Code: agent.CodeInDoubt, To: "k2", Message: "leadership lost"}},
		{http.StatusServiceUnavailable, agent.Outcome{Code: agent.CodeNoLeader, Message: "no leader"}},
		{http.StatusOK, agent.Outcome{OK: true, Code: agent.CodeDone, To: "k2", Epoch: 1}},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req agent.FailoverRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		a := answers[len(got)]
		got = append(got, req)
		w.WriteHeader(a.status)
		json.NewEncoder(w).Encode(a.o)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out strings.Builder
	o, err := askAgent(ctx, srv.Client(), srv.URL+"/failover", agent.FailoverRequest{Action: "failover", ID: "q1"}, &out)
	if err != nil || !o.OK || o.Code != agent.CodeDone {
		t.Fatalf("askAgent = %+v, %v; want done", o, err)
	}
	if len(got) != 3 {
		t.Fatalf("%d requests sent, want 3", len(got))
	}
	for i, req := range got {
		wantTo := "k2"
		if i == 0 {
			wantTo = ""
		}
		if req.ID != "q1" || req.To != wantTo {
			t.Errorf("request %d: id %q to %q; want id q1 to %q", i+1, req.ID, req.To, wantTo)
		}
	}
	if !strings.Contains(out.String(), "asking again with the same id q1") {
		t.Errorf("printed:\n%s", out.String())
	}
}
