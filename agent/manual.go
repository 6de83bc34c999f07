package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/turnout/turnout/consensus"
	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/adminapi"
)

// FailoverRequest is the body of POST /failover, and what the signal file
// and `turnout failover` ask for.
type FailoverRequest struct {
	Action string `json:"action,omitempty"` // failover (default) or failback
	Route  string `json:"route,omitempty"`
	To     string `json:"to,omitempty"`
	Force  bool   `json:"force,omitempty"`
	// ID names the request. A request flips its route at most once: sent
	// again under the same id, to any agent, it is answered from the
	// replicated state. Empty: the agent that receives it gives it one.
	ID string `json:"id,omitempty"`
}

// Code is the outcome of a manual request: a policy.Code, or one of these.
type Code string

const (
	CodeDone       Code = "done"        // the route serves the target on every gateway
	CodeFailed     Code = "failed"      // the request was not carried out, or its flip stopped (the message says where)
	CodeBadRequest Code = "bad-request" // the request names no route or domain of the policy, or is malformed
	CodeRefused    Code = "refused"     // a signal file that must not be acted on
	// CodeNotCaughtUp: a planned switch found replication still behind
	// with producers paused, or a gateway it could not pause; nothing flipped.
	CodeNotCaughtUp Code = "not-caught-up"
	// CodeInDoubt: the flip was committed, or may have been, and the agent
	// that led it can no longer see it through; the next leader finishes
	// it. Ask the status, or send the request again under the same id.
	CodeInDoubt   Code = "in-doubt"
	CodeNotLeader Code = "not-leader" // the agent lost the leadership before acting; send again
	CodeNoLeader  Code = "no-leader"  // the agents have no leader to hand the request to; send again
	CodeShutdown  Code = "shutdown"   // the leader is stopping; send again
	CodeCanceled  Code = "canceled"   // the caller stopped waiting
)

// Retry reports whether the request should be sent again, under the same
// id, for its final outcome.
func (c Code) Retry() bool {
	switch c {
	case CodeInDoubt, CodeNotLeader, CodeNoLeader, CodeShutdown:
		return true
	}
	return false
}

// Outcome is the answer to a manual request.
type Outcome struct {
	OK      bool   `json:"ok"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
	ID      string `json:"id,omitempty"` // the request's
	Route   string `json:"route,omitempty"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Epoch   int32  `json:"epoch,omitempty"`
	Leader  string `json:"leader,omitempty"`
}

// NewRequestID returns a fresh id for a manual request.
func NewRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// manualRequest is a manual request the leader loop is working on.
type manualRequest struct {
	req      policy.Request // its ID set, and pinned when the leader loop took it
	received time.Time
	done     chan struct{}
	result   Outcome
}

// answer gives a request its outcome, once, and forgets it: a request sent
// again later is answered from the replicated state if it flipped the
// route, and decided again if it did not.
func (a *Agent) answer(r *manualRequest, o Outcome) {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-r.done:
	default:
		o.ID = r.req.ID
		o.Route, o.To = cmpOr(o.Route, r.req.Route), cmpOr(o.To, r.req.To)
		r.result = o
		close(r.done)
		if a.pending[r.req.ID] == r {
			delete(a.pending, r.req.ID)
		}
	}
}

func (r FailoverRequest) policyRequest() policy.Request {
	action := policy.Action(r.Action)
	if action == "" {
		action = policy.ActionFailover
	}
	return policy.Request{Action: action, Route: r.Route, To: r.To, Force: r.Force, ID: r.ID}
}

// Failover carries out a manual request: on the leader it is queued for the
// leader loop, elsewhere it is handed to the leader. It returns when the
// request is done or refused, or ctx ends.
//
// The first agent to receive the request pins its target (see policy.Pin)
// from its copy of the replicated state, and hands it on pinned; every
// answer names the target, and the request is sent again with it. So a
// request sent again after an in-doubt answer, by when a new leader may
// have switched the route on its own, never turns the route back.
func (a *Agent) Failover(ctx context.Context, fr FailoverRequest) Outcome {
	if fr.ID == "" {
		fr.ID = NewRequestID()
	}
	pinned := a.pin(fr.policyRequest())
	fr.Route, fr.To = pinned.Route, pinned.To
	if !a.node.IsLeader() {
		return a.forwardFailover(ctx, fr)
	}
	a.mu.Lock()
	// The same request twice at once is carried out once: both wait for
	// the one outcome.
	r, dup := a.pending[fr.ID]
	if !dup {
		r = &manualRequest{req: fr.policyRequest(), received: time.Now(), done: make(chan struct{})}
		a.pending[fr.ID] = r
	}
	a.mu.Unlock()
	if !dup {
		select {
		case a.requests <- r:
		case <-ctx.Done():
			a.mu.Lock()
			delete(a.pending, fr.ID)
			a.mu.Unlock()
			return Outcome{Code: CodeCanceled, Message: ctx.Err().Error(), ID: fr.ID, Route: fr.Route, To: fr.To}
		}
	}
	select {
	case <-r.done:
		return r.result
	case <-ctx.Done():
		return Outcome{Code: CodeCanceled, Message: "stopped waiting for the outcome: " + ctx.Err().Error(), ID: fr.ID, Route: fr.Route, To: fr.To}
	}
}

// pin resolves a request's target against this agent's state (see
// policy.Pin); a request pinned already keeps its target.
func (a *Agent) pin(req policy.Request) policy.Request {
	route, err := a.policy.ResolveRoute(req.Route)
	if err != nil {
		return req
	}
	return policy.Pin(req, a.node.State().Input(route.Name, time.Now(), len(a.cfg.Peers)).Route, a.policy)
}

// retryManual decides every waiting manual request again; those that are
// done or refused are answered and dropped, those waiting for replication
// to catch up stay, up to maxManualWait.
func (a *Agent) retryManual(ctx context.Context, waiting []*manualRequest) []*manualRequest {
	var still []*manualRequest
	for _, r := range waiting {
		o, wait := a.tryManual(ctx, r)
		if wait && time.Since(r.received) < maxManualWait {
			still = append(still, r)
			continue
		}
		if wait {
			o.Message = fmt.Sprintf("gave up after %v: %s", maxManualWait, o.Message)
		}
		a.log.Log(ctx, outcomeLevel(o), "manual request answered", "id", r.req.ID, "action", string(r.req.Action),
			"route", o.Route, "to", o.To, "force", r.req.Force, "ok", o.OK, "code", string(o.Code), "message", o.Message)
		a.answer(r, o)
	}
	return still
}

func (a *Agent) tryManual(ctx context.Context, r *manualRequest) (Outcome, bool) {
	st := a.node.State()
	if q, ok := st.Requests[r.req.ID]; ok {
		// Sent again: its flip was committed already, perhaps by an
		// earlier leader. Answer for it; never flip a second time. If
		// that flip stopped at a gateway and is still the route's last,
		// finish it: the decision below resumes it.
		if rs := st.Routes[q.Route]; q.Outcome != consensus.OutcomeFailed || rs == nil || rs.Epoch != q.Epoch {
			return requestOutcome(q, a.cfg.ID), q.Outcome == ""
		}
		r.req.Route, r.req.To = q.Route, q.To
	}
	route, err := a.policy.ResolveRoute(r.req.Route)
	if err != nil {
		return Outcome{Code: CodeBadRequest, Message: err.Error()}, false
	}
	d := policy.DecideManual(r.req, st.Input(route.Name, time.Now(), len(a.cfg.Peers)), a.policy)
	a.noteDecision(d)
	o := Outcome{Code: Code(d.Code), Message: d.Reason, Route: d.Route, From: d.From, To: d.To, Leader: a.cfg.ID}
	if d.Code == policy.CodeResume {
		epoch := st.Routes[d.Route].Epoch
		if err := a.resumeFlip(ctx, d.Route, epoch); err != nil {
			o.Code, o.Message = a.flipError(ctx, "", err)
			if rs := a.node.State().Routes[d.Route]; !errors.As(err, new(*commitError)) && rs != nil && rs.InProgress == nil &&
				rs.LastFlip != nil && rs.LastFlip.Epoch == epoch && rs.LastFlip.Outcome == consensus.OutcomeFailed {
				o.Code, o.Message = CodeFailed, err.Error() // the run stopped again, and recorded it
			}
			return o, false
		}
		o.OK, o.Code = true, CodeDone
		o.Message = fmt.Sprintf("route %s now serves %s on every gateway: %s", d.Route, d.To, d.Reason)
		return o, false
	}
	if !d.Flip {
		// Waiting for replication to catch up (or to be measured at all,
		// as when MirrorMaker 2 has just started) or for a flip to end.
		return o, d.Code == policy.CodeLagTooHigh || d.Code == policy.CodeLagUnknown || d.Code == policy.CodeInProgress
	}
	// The pause is this leader's in the term it decided in.
	owner := adminapi.PauseOwner{ID: a.cfg.ID, Term: a.node.Term()}
	if d.Quiesce {
		a.quiescing.add(d.Route)
		defer a.quiescing.remove(d.Route)
		if o, ok := a.quiesce(ctx, d, owner); !ok {
			return o, false
		}
	}
	if err := a.flip(ctx, d, r.req); err != nil {
		if q, ok := a.node.State().Requests[r.req.ID]; ok && q.Outcome != "" {
			return requestOutcome(q, a.cfg.ID), false // the state says how it ended
		}
		o.Code, o.Message = a.flipError(ctx, r.req.ID, err)
		if d.Quiesce && o.Code == CodeFailed {
			// Nothing was committed and nothing will be: producers go on
			// where they were. In doubt, the pause is left to expire (see
			// planned.go).
			a.resumeProducers(ctx, d.Route, owner)
		}
		return o, false
	}
	o.OK, o.Code = true, CodeDone
	if rs := a.node.State().Routes[d.Route]; rs != nil {
		o.Epoch = rs.Epoch
		o.Message = fmt.Sprintf("route %s now serves %s (epoch %d): %s", d.Route, d.To, rs.Epoch, d.Reason)
	}
	return o, false
}

// flipError says what a flip that returned err, and that the state does
// not show finished, means for the request id ("" for a resumed flip):
// failed when nothing was committed and nothing will be, which the commit's
// refusal shows, or, for a request, the state once this agent, leading
// again, has applied all its log; in doubt otherwise, as the next leader
// may commit the flip, or finish it.
func (a *Agent) flipError(ctx context.Context, id string, err error) (Code, string) {
	switch {
	case commitRefused(err):
		return CodeFailed, err.Error()
	case errors.As(err, new(*commitError)) && id != "" && a.neverCommitted(ctx, id):
		return CodeFailed, fmt.Sprintf("%v; request %s is not recorded after the log was applied, so its flip will not happen", err, id)
	}
	retry := "send the request again"
	if id != "" {
		retry = "send the request again with the same id (" + id + ")"
	}
	return CodeInDoubt, fmt.Sprintf("%v; the next leader finishes the flip if it was committed: check turnout status, or %s", err, retry)
}

// neverCommitted reports whether the state proves that request id's flip,
// whose commit this agent tried, was not committed and never will be: this
// agent leads and has applied, through a Barrier, all of its log, which
// holds any entry of its earlier terms that may still commit, and records
// no flip of id.
func (a *Agent) neverCommitted(ctx context.Context, id string) bool {
	if ctx.Err() != nil || a.confirmLeading(ctx, a.node.Term()) != nil {
		return false
	}
	_, recorded := a.node.State().Requests[id]
	return !recorded
}

// requestOutcome is the answer to a request whose flip was committed.
func requestOutcome(q consensus.Request, leader string) Outcome {
	o := Outcome{Route: q.Route, From: q.From, To: q.To, Epoch: q.Epoch, Leader: leader}
	switch q.Outcome {
	case consensus.OutcomeDone:
		o.OK, o.Code = true, CodeDone
		o.Message = fmt.Sprintf("request %s switched route %s from %s to %s at epoch %d", q.ID, q.Route, q.From, q.To, q.Epoch)
	case consensus.OutcomeFailed:
		o.Code = CodeFailed
		o.Message = fmt.Sprintf("request %s switched route %s to %s at epoch %d, but the switch stopped: %s", q.ID, q.Route, q.To, q.Epoch, q.Error)
	default:
		o.Code = Code(policy.CodeInProgress)
		o.Message = fmt.Sprintf("request %s: the switch of route %s to %s at epoch %d is still in progress", q.ID, q.Route, q.To, q.Epoch)
	}
	return o
}

// forwardFailover hands a request to the leader's HTTP API.
func (a *Agent) forwardFailover(ctx context.Context, fr FailoverRequest) Outcome {
	addr, err := a.leaderHTTP()
	if err != nil {
		return Outcome{Code: CodeNoLeader, Message: err.Error(), ID: fr.ID, Route: fr.Route, To: fr.To}
	}
	var o Outcome
	if err := a.postJSON(ctx, apiURL(addr, "/failover"), fr, &o, nil); err != nil {
		// The leader may have taken the request before the answer was
		// lost: only the same id and target are safe to send again.
		return Outcome{Code: CodeInDoubt, ID: fr.ID, Route: fr.Route, To: fr.To,
			Message: fmt.Sprintf("handing the request to the leader at %s: %v; send it again with the same id (%s)", addr, err, fr.ID)}
	}
	o.Route, o.To = cmpOr(o.Route, fr.Route), cmpOr(o.To, fr.To)
	return o
}

// apiURL is the URL of path on an agent's advertised HTTP address, which
// carries the https:// scheme when the agent serves TLS.
func apiURL(addr, path string) string {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/") + path
}

// leaderHTTP is the leader's HTTP address, which the leader registers in the
// replicated state when it takes over.
func (a *Agent) leaderHTTP() (string, error) {
	id, _ := a.node.Leader()
	if id == "" {
		return "", fmt.Errorf("the agents have no leader right now")
	}
	ag, ok := a.node.State().Agents[id]
	if !ok || ag.HTTP == "" {
		return "", fmt.Errorf("leader %s has not registered its HTTP address yet", id)
	}
	return ag.HTTP, nil
}

// apply commits a command: on the leader directly, elsewhere through the
// leader's HTTP API.
func (a *Agent) apply(ctx context.Context, cmd consensus.Command) error {
	if a.node.IsLeader() {
		return a.node.Apply(ctx, cmd)
	}
	addr, err := a.leaderHTTP()
	if err != nil {
		return err
	}
	skew := a.cfg.FaultClockOffset
	switch c := cmd.(type) {
	case consensus.ReportView:
		c.At = c.At.Add(skew)
		cmd = c
	case consensus.ReportLag:
		c.At = c.At.Add(skew)
		cmd = c
	}
	data, err := consensus.Encode(cmd)
	if err != nil {
		return err
	}
	// The leader dates the report by its age on this agent's clock, not by
	// this clock's time.
	sent := http.Header{SentAtHeader: {time.Now().Add(skew).Format(time.RFC3339Nano)}}
	return a.postJSON(ctx, apiURL(addr, "/v1/apply"), json.RawMessage(data), nil, sent)
}

func outcomeLevel(o Outcome) slog.Level {
	if o.OK {
		return slog.LevelWarn // a failover is always worth seeing
	}
	return slog.LevelInfo
}

func slogLevel(c policy.Code) slog.Level {
	switch c {
	case policy.CodeOK, policy.CodeNotPrimary:
		return slog.LevelInfo
	default:
		return slog.LevelWarn
	}
}
