package agent

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/turnout/turnout/consensus"
	"github.com/turnout/turnout/policy"
)

// maxClockSkew is how far a follower's clock may be from the leader's
// before its reports are refused, when the follower does not say when it
// sent them (an agent from before SentAtHeader).
const maxClockSkew = 10 * time.Second

// maxReportAge is how old a report may be when its sender hands it on:
// views go out right after their probe, lag right after its measure.
// Older, it was held up on its way and says nothing about now.
const maxReportAge = 10 * time.Second

// SentAtHeader carries, on POST /v1/apply, when the follower sent the
// report by its own clock. With the report's own time, on the same clock,
// it gives the report's age, which the leader subtracts from when it
// received it: the date committed is on the leader's clock whatever the
// follower's is off by.
const SentAtHeader = "Turnout-Sent-At"

// refusal is why the leader does not commit a report a follower handed it.
type refusal struct {
	status int
	reason string // the metric label
	msg    string
}

// admitReport checks a command a follower handed the leader (POST
// /v1/apply) and returns it as the leader commits it. Followers forward
// only their views and lag measures; flips, steps and addresses are the
// leader's own to commit, so a caller with the token cannot forge them.
// A report must come from a Raft peer other than the leader (self) and
// name a domain or route of the policy. Its time is made the leader's: see
// leaderTime.
func admitReport(cmd consensus.Command, received, sent time.Time, self string, peers map[string]string, pol *policy.Policy) (consensus.Command, *refusal) {
	var r *refusal
	switch c := cmd.(type) {
	case consensus.ReportView:
		if r := checkReporter(c.Agent, self, peers); r != nil {
			return nil, r
		}
		if !slices.ContainsFunc(pol.Routes, func(r policy.Route) bool { return r.Primary == c.Domain || r.Standby == c.Domain }) {
			return nil, &refusal{http.StatusBadRequest, "unknown-domain", fmt.Sprintf("domain %q is in no route of the policy", c.Domain)}
		}
		c.At, r = leaderTime(c.At, sent, received)
		return c, r
	case consensus.ReportLag:
		if r := checkReporter(c.Agent, self, peers); r != nil {
			return nil, r
		}
		if pol.Route(c.Route) == nil {
			return nil, &refusal{http.StatusBadRequest, "unknown-route", fmt.Sprintf("route %q is not in the policy", c.Route)}
		}
		c.At, r = leaderTime(c.At, sent, received)
		return c, r
	default:
		return nil, &refusal{http.StatusForbidden, "command", fmt.Sprintf(
			"the leader takes only views and lag reports from other agents, not a %T: it commits everything else itself", cmd)}
	}
}

// leaderTime is a report's time by the leader's clock. When the sender
// said when it sent the report, the report is dated its age (sent - at, both
// on the sender's clock) before it was received, so no clock offset, however
// large, makes a report look fresher or older than it is; only the time
// spent in transit, bounded by the request's deadline, goes uncounted. A
// report older than maxReportAge is refused. Without sent, the sender's time
// is trusted no further than the leader's clock: a time ahead of received
// is set back to it, and one further than maxClockSkew either way is
// refused.
func leaderTime(at, sent, received time.Time) (time.Time, *refusal) {
	if !sent.IsZero() {
		age := max(sent.Sub(at), 0)
		if age > maxReportAge {
			return at, &refusal{http.StatusUnprocessableEntity, "stale", fmt.Sprintf(
				"the report was %s old when it was sent, more than %s: it says nothing about now", age.Round(time.Millisecond), maxReportAge)}
		}
		return received.Add(-age), nil
	}
	skew := at.Sub(received)
	if skew > maxClockSkew || skew < -maxClockSkew {
		return at, &refusal{http.StatusUnprocessableEntity, "clock-skew", fmt.Sprintf(
			"the report is dated %s, %s from the leader's clock (%s); more than %s apart, one of the clocks is wrong: check NTP on both",
			at.UTC().Format(time.RFC3339Nano), skew.Round(time.Millisecond), received.UTC().Format(time.RFC3339Nano), maxClockSkew)}
	}
	if at.After(received) {
		return received, nil
	}
	return at, nil
}

// checkReporter refuses a report in the name of an agent that is not a
// peer, or of the leader itself, which commits its own reports directly.
func checkReporter(agent, self string, peers map[string]string) *refusal {
	if agent == self {
		return &refusal{http.StatusForbidden, "unknown-agent", fmt.Sprintf("agent %q is this leader, which commits its own reports itself", agent)}
	}
	if _, ok := peers[agent]; !ok {
		return &refusal{http.StatusForbidden, "unknown-agent", fmt.Sprintf("agent %q is not one of the Raft peers (%s)",
			agent, strings.Join(slices.Sorted(maps.Keys(peers)), ", "))}
	}
	return nil
}
