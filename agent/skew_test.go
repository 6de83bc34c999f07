package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/turnout/turnout/agent"
)

// TestSkewedClocksStillCount: followers whose clocks are an hour off either
// way hand the leader views it dates by its own clock, so all three count
// towards the quorum, and none is dated in the leader's future.
func TestSkewedClocksStillCount(t *testing.T) {
	h := newHarness(t, policyOpts{})
	h.configure = func(c *agent.Config) {
		c.FaultClockOffset = map[string]time.Duration{"a2": time.Hour, "a3": -time.Hour}[c.ID]
	}
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader := h.routeLeader(ctx)
	var last agent.DomainStatus
	waitFor(t, ctx, "every agent's view of both clusters on the leader, dated by its clock", func() bool {
		st := h.status(leader)
		now := time.Now()
		for _, d := range []string{primary, standby} {
			last = st.Domain[d]
			if len(last.ByAgent) != 3 {
				return false
			}
			for _, v := range last.ByAgent {
				if !v.Healthy || v.At.After(now) || now.Sub(v.At) > 5*time.Second {
					return false
				}
			}
		}
		return st.Domain[primary].Healthy && st.Domain[standby].Healthy
	})
}
