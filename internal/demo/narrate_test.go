package demo

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/agent"
	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy"
)

// TestDescribe: each event the components report has its line on the
// screen, told from the event's fields alone.
func TestDescribe(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	hdr := func(after time.Duration) agent.EventHeader { return agent.EventHeader{Agent: "a2", At: t0.Add(after)} }
	for _, tc := range []struct {
		ev   any
		want string // "" for no line
	}{
		{note{at: t0, text: "a note of the demo's"}, "a note of the demo's"},
		{&proxy.Holding{At: t0, Route: route, Domain: primary, Wait: 10 * time.Second, Err: errors.New("refused")},
			"gateway: kafka1-domain unreachable; new client connections are held (up to limits.upstreamWait, 10s here), not refused"},
		{&agent.Decided{EventHeader: hdr(0), Decision: policy.Decision{Route: route, Code: policy.CodeOK}}, ""},
		{&agent.Decided{EventHeader: hdr(time.Second), Decision: policy.Decision{Route: route, Code: policy.CodeFlip, Flip: true,
			From: primary, To: standby, Reason: "2 of 3 agents see kafka1-domain down"}},
			"decision by leader a2 [flip]: 2 of 3 agents see kafka1-domain down, 1.00s after the kill"},
		{&agent.FlipCommitted{EventHeader: hdr(1200 * time.Millisecond), Route: route, From: primary, To: standby, Epoch: 1},
			"Raft: a2 committed the flip kafka1-domain -> kafka2-domain at epoch 1 in 200ms"},
		{&agent.ConfigWritten{EventHeader: hdr(0), Route: route, Domain: standby, Epoch: 1, File: "/tmp/x/gateway.yaml", Took: 3 * time.Millisecond},
			"config: gateway.yaml now names kafka2-domain at epoch 1 (written atomically in"},
		{&agent.GatewayServing{EventHeader: hdr(0), Route: route, Gateway: "gw-1", ClusterID: "kafka-cluster-2", Took: 40 * time.Millisecond},
			"gateway gw-1 restarted (POST /restart) and confirmed on cluster kafka-cluster-2 by GET /status in"},
		{&agent.FlipDone{EventHeader: hdr(2 * time.Second), Route: route, From: primary, To: standby, Epoch: 1, Took: time.Second},
			"route switchover-route now on kafka2-domain: the flip took 1.00s from commit to the last gateway, 2.00s after the kill"},
		{&agent.FlipDone{EventHeader: hdr(time.Minute), Route: route, From: standby, To: primary, Epoch: 2, Took: time.Second},
			"route switchover-route now on kafka1-domain: the flip took 1.00s from commit to the last gateway"},
		{&agent.SignalClaimed{EventHeader: hdr(0), File: "/tmp/x/signal", Request: "failback"},
			`agent a2 claimed the signal file: "failback"`},
		{&agent.SignalAnswered{EventHeader: hdr(0), File: "/tmp/x/signal.done", Outcome: agent.Outcome{OK: true, Code: agent.CodeDone}},
			"agent a2 answered in signal.done: done"},
		{&agent.SignalAnswered{EventHeader: hdr(0), File: "/tmp/x/signal.failed", Outcome: agent.Outcome{Code: agent.CodeBadRequest, Message: "no such action"}},
			"agent a2 answered in signal.failed: bad-request: no such action"},
	} {
		d := &demo{}
		d.killedAt.Store(&t0)
		// The events come in the story's order: the flip's milestones
		// are noted as they pass.
		if _, ok := tc.ev.(*agent.FlipCommitted); ok {
			decided := t0.Add(time.Second)
			d.flipDecided.Store(&decided)
		}
		if f, ok := tc.ev.(*agent.FlipDone); ok && f.To == primary {
			done := t0.Add(2 * time.Second)
			d.failoverFinished.Store(&done)
		}
		at, line := d.describe(tc.ev)
		if tc.want == "" {
			if line != "" {
				t.Errorf("%T: %q, want no line", tc.ev, line)
			}
			continue
		}
		wantAt := t0
		if ev, ok := tc.ev.(agent.Event); ok {
			wantAt = ev.Header().At
		}
		if !strings.HasPrefix(line, tc.want) || !at.Equal(wantAt) {
			t.Errorf("%T: %q at %v, want %q at %v", tc.ev, line, at, tc.want, wantAt)
		}
	}
}

// TestDescribeNotesMilestones: the script waits on what the printer saw.
func TestDescribeNotesMilestones(t *testing.T) {
	t0 := time.Now()
	d := &demo{}
	d.killedAt.Store(&t0)
	d.describe(&agent.Decided{EventHeader: agent.EventHeader{At: t0.Add(time.Second)}, Decision: policy.Decision{Code: policy.CodeFlip, Flip: true}})
	if p := d.flipDecided.Load(); p == nil || !p.Equal(t0.Add(time.Second)) {
		t.Errorf("the decision to flip was not noted: %v", p)
	}
	d.describe(&agent.FlipDone{EventHeader: agent.EventHeader{At: t0.Add(2 * time.Second)}})
	if p := d.failoverFinished.Load(); p == nil || !p.Equal(t0.Add(2*time.Second)) {
		t.Errorf("the failover's end was not noted: %v", p)
	}
	if _, line := d.describe(&agent.FlipStopped{Err: errors.New("gateway gw-1: timeout")}); line != "FAILED failover stopped: gateway gw-1: timeout" {
		t.Errorf("a stopped flip reads %q", line)
	}
	if e := d.stepErr.Load(); e == nil || *e != "failover stopped: gateway gw-1: timeout" {
		t.Errorf("the stopped flip was not noted for the script: %v", e)
	}
	d.describe(&agent.FlipNotStarted{Err: errors.New("later")})
	if e := d.stepErr.Load(); *e != "failover stopped: gateway gw-1: timeout" {
		t.Errorf("a later failure replaced the first: %s", *e)
	}
}
