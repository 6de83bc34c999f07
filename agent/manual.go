package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/turnout/turnout/consensus"
	"github.com/turnout/turnout/policy"
)

// FailoverRequest is the body of POST /failover, and what the signal file
// and `turnout failover` ask for.
type FailoverRequest struct {
	Action string `json:"action,omitempty"` // failover (default) or failback
	Route  string `json:"route,omitempty"`
	To     string `json:"to,omitempty"`
	Force  bool   `json:"force,omitempty"`
	// ID makes a request idempotent: the agents that all see one signal
	// file send it under one id, and the leader carries it out once.
	ID string `json:"id,omitempty"`
}

// Outcome is the answer to a manual request.
type Outcome struct {
	OK      bool   `json:"ok"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Route   string `json:"route,omitempty"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Epoch   int32  `json:"epoch,omitempty"`
	Leader  string `json:"leader,omitempty"`
}

// manualRequest is a manual request the leader loop is working on.
type manualRequest struct {
	id       string
	req      policy.Request
	received time.Time
	done     chan struct{}
	result   Outcome
	finished time.Time
}

// answer gives a request its outcome, once. An outcome that only says "not
// now" (this agent lost the leadership, or is stopping) is not kept for
// duplicates: the same request sent again must be tried again.
func (a *Agent) answer(r *manualRequest, o Outcome) {
	a.mu.Lock() // finished is read under it when pruning
	defer a.mu.Unlock()
	select {
	case <-r.done:
	default:
		r.result, r.finished = o, time.Now()
		close(r.done)
		if retryable(o.Code) && a.pending[r.id] == r {
			delete(a.pending, r.id)
		}
	}
}

func retryable(code string) bool {
	switch code {
	case "not-leader", "no-leader", "shutdown", "canceled":
		return true
	}
	return false
}

func (r FailoverRequest) policyRequest() policy.Request {
	action := policy.Action(r.Action)
	if action == "" {
		action = "failover"
	}
	return policy.Request{Action: action, Route: r.Route, To: r.To, Force: r.Force}
}

func (r FailoverRequest) id() string {
	if r.ID != "" {
		return r.ID
	}
	b, _ := json.Marshal(r)
	sum := sha256.Sum256(append(b, []byte(time.Now().String())...))
	return hex.EncodeToString(sum[:8])
}

// Failover carries out a manual request: on the leader it is queued for the
// leader loop, elsewhere it is handed to the leader. It returns when the
// request is done or refused, or ctx ends.
func (a *Agent) Failover(ctx context.Context, fr FailoverRequest) Outcome {
	if !a.node.IsLeader() {
		return a.forwardFailover(ctx, fr)
	}
	id := fr.id()
	a.mu.Lock()
	// Finished requests are kept a while, so late duplicates of a signal
	// file get the same outcome rather than a second failover.
	for k, p := range a.pending {
		if !p.finished.IsZero() && time.Since(p.finished) > maxManualWait {
			delete(a.pending, k)
		}
	}
	r, dup := a.pending[id]
	if !dup {
		r = &manualRequest{id: id, req: fr.policyRequest(), received: time.Now(), done: make(chan struct{})}
		a.pending[id] = r
	}
	a.mu.Unlock()
	if !dup {
		select {
		case a.requests <- r:
		case <-ctx.Done():
			a.mu.Lock()
			delete(a.pending, id)
			a.mu.Unlock()
			return Outcome{Code: "canceled", Message: ctx.Err().Error()}
		}
	}
	select {
	case <-r.done:
		return r.result
	case <-ctx.Done():
		return Outcome{Code: "canceled", Message: "stopped waiting for the outcome: " + ctx.Err().Error()}
	}
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
		a.log.Log(ctx, outcomeLevel(o), "manual request answered", "id", r.id, "action", string(r.req.Action),
			"route", o.Route, "to", o.To, "force", r.req.Force, "ok", o.OK, "code", o.Code, "message", o.Message)
		a.answer(r, o)
	}
	return still
}

func (a *Agent) tryManual(ctx context.Context, r *manualRequest) (Outcome, bool) {
	route, err := a.policy.ResolveRoute(r.req.Route)
	if err != nil {
		return Outcome{Code: "bad-request", Message: err.Error()}, false
	}
	st := a.node.State()
	d := policy.DecideManual(r.req, st.Input(route.Name, time.Now(), len(a.cfg.Peers)), a.policy)
	a.noteDecision(d)
	o := Outcome{Code: string(d.Code), Message: d.Reason, Route: d.Route, From: d.From, To: d.To, Leader: a.cfg.ID}
	if d.Code == policy.CodeResume {
		if err := a.resumeFlip(ctx, d.Route, st.Routes[d.Route].Epoch); err != nil {
			o.Code, o.Message = "failed", err.Error()
			return o, false
		}
		o.OK, o.Code = true, "done"
		o.Message = fmt.Sprintf("route %s now serves %s on every gateway: %s", d.Route, d.To, d.Reason)
		return o, false
	}
	if !d.Flip {
		// Waiting for replication to catch up (or to be measured at all,
		// as when MirrorMaker 2 has just started) or for a flip to end.
		return o, d.Code == policy.CodeLagTooHigh || d.Code == policy.CodeLagUnknown || d.Code == policy.CodeInProgress
	}
	if d.Quiesce {
		if o, ok := a.quiesce(ctx, d); !ok {
			return o, false
		}
	}
	if err := a.flip(ctx, d, r.req); err != nil {
		if d.Quiesce {
			a.resumeProducers(ctx, d.Route)
		}
		o.Code, o.Message = "failed", err.Error()
		return o, false
	}
	o.OK, o.Code = true, "done"
	if rs := a.node.State().Routes[d.Route]; rs != nil {
		o.Epoch = rs.Epoch
		o.Message = fmt.Sprintf("route %s now serves %s (epoch %d): %s", d.Route, d.To, rs.Epoch, d.Reason)
	}
	return o, false
}

// forwardFailover hands a request to the leader's HTTP API.
func (a *Agent) forwardFailover(ctx context.Context, fr FailoverRequest) Outcome {
	addr, err := a.leaderHTTP()
	if err != nil {
		return Outcome{Code: "no-leader", Message: err.Error()}
	}
	if fr.ID == "" {
		fr.ID = fr.id() // so that a retried forward is not carried out twice
	}
	var o Outcome
	if err := a.postJSON(ctx, apiURL(addr, "/failover"), fr, &o); err != nil {
		return Outcome{Code: "no-leader", Message: fmt.Sprintf("handing the request to the leader at %s: %v", addr, err)}
	}
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
	data, err := consensus.Encode(cmd)
	if err != nil {
		return err
	}
	return a.postJSON(ctx, apiURL(addr, "/v1/apply"), json.RawMessage(data), nil)
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
