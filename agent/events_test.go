package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout/agent"
	"github.com/turnout/turnout/policy"
)

// events records what the agents tell their observer.
type events struct {
	mu  sync.Mutex
	all []agent.Event
}

func (e *events) add(ev agent.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) list() []agent.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]agent.Event(nil), e.all...)
}

// TestEventsTellAFailover: with logs that go nowhere, an observer still
// follows a failover and a signal file step by step, with the facts in
// typed fields, so nothing that follows the agents has to read log text.
func TestEventsTellAFailover(t *testing.T) {
	h := newHarness(t, policyOpts{})
	var seen events
	h.configure = func(c *agent.Config) {
		c.Logger = slog.New(slog.DiscardHandler)
		c.OnEvent = seen.add
	}
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.leader(ctx)
	waitFor(t, ctx, "the leader measured the lag", func() bool { return h.status(leader).Lag[route].Known })
	h.kill(0)
	h.waitActive(ctx, standby)
	if err := os.WriteFile(h.signal, []byte("action: explode\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "an agent answered the signal file", func() bool {
		for _, ev := range seen.list() {
			if _, ok := ev.(*agent.SignalAnswered); ok {
				return true
			}
		}
		return false
	})

	// The steps, in order, each as the agent that took it saw it.
	var flipper string
	steps := []struct {
		what  string
		match func(agent.Event) bool
	}{
		{"the decision to flip", func(ev agent.Event) bool {
			d, ok := ev.(*agent.Decided)
			return ok && d.Decision.Code == policy.CodeFlip && d.Decision.To == standby
		}},
		{"the commit", func(ev agent.Event) bool {
			c, ok := ev.(*agent.FlipCommitted)
			if ok {
				flipper = c.Agent
			}
			return ok && c.Route == route && c.From == primary && c.To == standby && c.Epoch == 1 && !c.Manual
		}},
		{"the gateway config written", func(ev agent.Event) bool {
			c, ok := ev.(*agent.ConfigWritten)
			return ok && c.Agent == flipper && c.Domain == standby && c.Epoch == 1 && c.File == h.gwPath && c.Changed
		}},
		{"the gateway serving cluster 2", func(ev agent.Event) bool {
			g, ok := ev.(*agent.GatewayServing)
			return ok && g.Agent == flipper && g.Gateway == "gw-1" && g.ClusterID == "cluster-2"
		}},
		{"the flip done", func(ev agent.Event) bool {
			f, ok := ev.(*agent.FlipDone)
			return ok && f.Agent == flipper && f.To == standby && f.Epoch == 1 && f.Took > 0
		}},
		{"the signal file claimed", func(ev agent.Event) bool {
			c, ok := ev.(*agent.SignalClaimed)
			return ok && c.Request == "action: explode" && c.File == h.signal
		}},
		{"the signal file answered", func(ev agent.Event) bool {
			a, ok := ev.(*agent.SignalAnswered)
			return ok && !a.Outcome.OK && a.File == h.signal+".failed" && a.Outcome.Code == agent.CodeBadRequest
		}},
	}
	all := seen.list()
	i := 0
	for _, ev := range all {
		if h := ev.Header(); h.Agent == "" || h.At.IsZero() {
			t.Errorf("event %T without its agent or time: %+v", ev, h)
		}
		if i < len(steps) && steps[i].match(ev) {
			i++
		}
	}
	if i < len(steps) {
		var got []string
		for _, ev := range all {
			got = append(got, fmt.Sprintf("%T%+v", ev, ev))
		}
		t.Fatalf("no event for %s after the ones before it; the events:\n%s", steps[i].what, strings.Join(got, "\n"))
	}
}
