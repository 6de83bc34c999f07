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
// before its reports are refused. NTP keeps clocks within milliseconds, so
// more is a broken clock or a report held up on its way; either would
// misdate what the decision relies on.
const maxClockSkew = 10 * time.Second

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
// name a domain or route of the policy. Its time is the sender's clock,
// which the leader trusts no further than its own: a time ahead of
// received is set back to it, so a fast clock cannot keep a view fresh or
// a lag current, and one further than maxClockSkew either way is refused.
// A time behind is kept: it can only make the report count as older.
func admitReport(cmd consensus.Command, received time.Time, self string, peers map[string]string, pol *policy.Policy) (consensus.Command, *refusal) {
	var r *refusal
	switch c := cmd.(type) {
	case consensus.ReportView:
		if r := checkReporter(c.Agent, self, peers); r != nil {
			return nil, r
		}
		if !slices.ContainsFunc(pol.Routes, func(r policy.Route) bool { return r.Primary == c.Domain || r.Standby == c.Domain }) {
			return nil, &refusal{http.StatusBadRequest, "unknown-domain", fmt.Sprintf("domain %q is in no route of the policy", c.Domain)}
		}
		c.At, r = leaderTime(c.At, received)
		return c, r
	case consensus.ReportLag:
		if r := checkReporter(c.Agent, self, peers); r != nil {
			return nil, r
		}
		if pol.Route(c.Route) == nil {
			return nil, &refusal{http.StatusBadRequest, "unknown-route", fmt.Sprintf("route %q is not in the policy", c.Route)}
		}
		c.At, r = leaderTime(c.At, received)
		return c, r
	default:
		return nil, &refusal{http.StatusForbidden, "command", fmt.Sprintf(
			"the leader takes only views and lag reports from other agents, not a %T: it commits everything else itself", cmd)}
	}
}

// leaderTime is a report's time by the leader's clock: the sender's, or
// when the leader received it if that is earlier.
func leaderTime(sent, received time.Time) (time.Time, *refusal) {
	skew := sent.Sub(received)
	if skew > maxClockSkew || skew < -maxClockSkew {
		return sent, &refusal{http.StatusUnprocessableEntity, "clock-skew", fmt.Sprintf(
			"the report is dated %s, %s from the leader's clock (%s); more than %s apart, one of the clocks is wrong: check NTP on both",
			sent.UTC().Format(time.RFC3339Nano), skew.Round(time.Millisecond), received.UTC().Format(time.RFC3339Nano), maxClockSkew)}
	}
	if skew > 0 {
		return received, nil
	}
	return sent, nil
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
