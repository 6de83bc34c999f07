package consensus

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/turnout/turnout/policy"
)

// Command is one change to the State, committed through Raft. Applying it
// depends only on the state and the command, never on the clock or map
// order, so every agent's copy stays the same.
type Command interface {
	apply(s *State) error
}

// Rejected is the result of a command that does not fit the state, such as
// a flip that carries a stale epoch. The log keeps the command, but it
// changes nothing; Node.Apply returns the *Rejected as its error.
type Rejected struct{ Reason string }

func (r *Rejected) Error() string { return "rejected: " + r.Reason }

func reject(format string, args ...any) error {
	return &Rejected{Reason: fmt.Sprintf(format, args...)}
}

// Apply changes s by cmd, or returns a *Rejected and leaves s unchanged. s
// must come from NewState, Clone or a restore.
func (s *State) Apply(cmd Command) error { return cmd.apply(s) }

// InitRoute adds a route the policy names and the state does not have yet.
// Active and Epoch should be what the gateway config says now, so that the
// first flip's epoch is newer than the file's.
type InitRoute struct {
	Route  string `json:"route"`
	Active string `json:"active"`
	Epoch  int32  `json:"epoch"`
}

func (c InitRoute) apply(s *State) error {
	switch r := s.Routes[c.Route]; {
	case c.Route == "":
		return reject("a route needs a name")
	case c.Active == "":
		return reject("route %q needs an active domain", c.Route)
	case c.Epoch < 0:
		return reject("route %q: epoch %d is negative", c.Route, c.Epoch)
	case r != nil:
		return reject("route %q already exists: it serves %s at epoch %d", c.Route, r.Active, r.Epoch)
	}
	s.Routes[c.Route] = &Route{Name: c.Route, Active: c.Active, Epoch: c.Epoch}
	return nil
}

// StartFlip commits a switch of a route to another domain. It is valid only
// at the route's next epoch, from its active domain, with no flip in
// progress: a leader that acts on an old state is refused, so a route
// never goes back to an older epoch. The route's lag is forgotten, as it
// was measured towards the domain the route has just left.
type StartFlip struct {
	Route  string    `json:"route"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Epoch  int32     `json:"epoch"`
	Reason string    `json:"reason"`
	Manual bool      `json:"manual,omitempty"`
	Force  bool      `json:"force,omitempty"`
	At     time.Time `json:"at"`
	Leader string    `json:"leader"`
	// RequestID names the manual request the flip carries out. A request
	// flips at most once: a second flip under the same id is refused.
	RequestID string `json:"requestId,omitempty"`
}

// maxRequests bounds the requests kept, so the state stays small. They are
// kept by number only, never by age: an age would be by the committing
// leader's clock, and one leader with a clock a day ahead would forget every
// id, so that a request sent again after an in-doubt answer flips twice.
const maxRequests = 1000

func (c StartFlip) apply(s *State) error {
	r := s.Routes[c.Route]
	prev, replayed := s.Requests[c.RequestID]
	switch {
	case c.RequestID != "" && replayed:
		return reject("request %s already flipped route %q from %s to %s at epoch %d", c.RequestID, prev.Route, prev.From, prev.To, prev.Epoch)
	case r == nil:
		return reject("unknown route %q", c.Route)
	case c.Epoch != r.Epoch+1:
		return reject("stale epoch: route %q is at epoch %d, so a flip must carry %d, not %d", c.Route, r.Epoch, r.Epoch+1, c.Epoch)
	case c.From != r.Active:
		return reject("route %q serves %s, not %s", c.Route, r.Active, c.From)
	case r.InProgress != nil:
		return reject("a flip of route %q to %s at epoch %d is in progress", c.Route, r.InProgress.To, r.InProgress.Epoch)
	case c.To == "" || c.To == c.From:
		return reject("a flip of route %q needs a domain other than %s to go to", c.Route, c.From)
	}
	r.Active, r.Epoch = c.To, c.Epoch
	if !c.Manual {
		r.LastAutoFlipAt = c.At
	}
	r.InProgress = &Flip{
		Route: c.Route, From: c.From, To: c.To, Epoch: c.Epoch, Reason: c.Reason, Manual: c.Manual, Force: c.Force,
		RequestID: c.RequestID, StartedAt: c.At, Leader: c.Leader, Step: StepCommitted, StepAt: c.At,
	}
	delete(s.Lag, c.Route)
	if c.RequestID != "" {
		s.Requests[c.RequestID] = Request{ID: c.RequestID, Route: c.Route, From: c.From, To: c.To, Epoch: c.Epoch, At: c.At,
			Seq: s.nextRequestSeq()}
		s.pruneRequests()
	}
	return nil
}

// nextRequestSeq numbers a request after every one kept, in log order.
func (s *State) nextRequestSeq() uint64 {
	var last uint64
	for _, q := range s.Requests {
		last = max(last, q.Seq)
	}
	return last + 1
}

// pruneRequests forgets the oldest requests, by log order, beyond
// maxRequests. Those from before the numbering (Seq 0) go first, by date.
func (s *State) pruneRequests() {
	if len(s.Requests) <= maxRequests {
		return
	}
	byAge := slices.SortedFunc(maps.Values(s.Requests), func(a, b Request) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), a.At.Compare(b.At), cmp.Compare(a.ID, b.ID))
	})
	for _, q := range byAge[:len(byAge)-maxRequests] {
		delete(s.Requests, q.ID)
	}
}

// noteOutcome records a flip's outcome in the request that asked for it.
func (s *State) noteOutcome(f *Flip) {
	if q, ok := s.Requests[f.RequestID]; ok {
		q.Outcome, q.Error = f.Outcome, f.Error
		s.Requests[f.RequestID] = q
	}
}

// RecordStep records the progress of the flip in progress, so that a new
// leader knows where to resume: the step, whether the gateway config is
// written, and one more gateway restarted.
type RecordStep struct {
	Route         string    `json:"route"`
	Epoch         int32     `json:"epoch"`
	Step          string    `json:"step"`
	ConfigWritten bool      `json:"configWritten,omitempty"`
	GatewayDone   string    `json:"gatewayDone,omitempty"`
	At            time.Time `json:"at"`
}

func (c RecordStep) apply(s *State) error {
	f, err := s.inProgress(c.Route, c.Epoch)
	if err != nil {
		return err
	}
	if c.Step == "" {
		return reject("route %q: a step needs a name", c.Route)
	}
	f.Step, f.StepAt = c.Step, c.At
	// What is done stays done, even if a resuming leader records less.
	f.ConfigWritten = f.ConfigWritten || c.ConfigWritten
	if c.GatewayDone != "" && !slices.Contains(f.GatewaysDone, c.GatewayDone) {
		f.GatewaysDone = append(f.GatewaysDone, c.GatewayDone)
	}
	return nil
}

// FinishFlip ends the flip in progress with its outcome and makes it the
// route's last flip. The route stays on the flip's target either way: a
// failed flip is reported, and a person or a new flip decides what next.
type FinishFlip struct {
	Route   string    `json:"route"`
	Epoch   int32     `json:"epoch"`
	Outcome string    `json:"outcome"` // OutcomeDone or OutcomeFailed
	Error   string    `json:"error,omitempty"`
	At      time.Time `json:"at"`
}

func (c FinishFlip) apply(s *State) error {
	f, err := s.inProgress(c.Route, c.Epoch)
	if err != nil {
		return err
	}
	if c.Outcome != OutcomeDone && c.Outcome != OutcomeFailed {
		return reject("route %q: outcome %q is neither %s nor %s", c.Route, c.Outcome, OutcomeDone, OutcomeFailed)
	}
	f.Outcome, f.Error, f.FinishedAt = c.Outcome, c.Error, c.At
	r := s.Routes[c.Route]
	r.LastFlip, r.InProgress = f, nil
	s.noteOutcome(f)
	return nil
}

// ResumeFlip takes up a flip that stopped at a gateway which did not come
// back: the route already serves the flip's target, and the gateways not
// restarted still serve the old one, so the runbook must go on from where
// it stopped rather than start a new flip. It is valid only for the
// route's last flip, at the route's epoch, when that flip failed and no
// other is in progress.
type ResumeFlip struct {
	Route  string    `json:"route"`
	Epoch  int32     `json:"epoch"`
	At     time.Time `json:"at"`
	Leader string    `json:"leader"`
}

// StepResumed is the step of a flip ResumeFlip has just taken up.
const StepResumed = "resumed"

func (c ResumeFlip) apply(s *State) error {
	r := s.Routes[c.Route]
	switch {
	case r == nil:
		return reject("unknown route %q", c.Route)
	case r.InProgress != nil:
		return reject("a flip of route %q to %s at epoch %d is in progress", c.Route, r.InProgress.To, r.InProgress.Epoch)
	case r.LastFlip == nil || r.LastFlip.Outcome != OutcomeFailed:
		return reject("route %q has no failed flip to resume", c.Route)
	case c.Epoch != r.Epoch || r.LastFlip.Epoch != r.Epoch:
		return reject("stale epoch: route %q is at epoch %d and its last flip at %d, not %d", c.Route, r.Epoch, r.LastFlip.Epoch, c.Epoch)
	}
	f := r.LastFlip.clone()
	f.Outcome, f.Error, f.FinishedAt = "", "", time.Time{}
	f.Step, f.StepAt, f.Leader = StepResumed, c.At, c.Leader
	r.InProgress = f
	s.noteOutcome(f) // running again
	return nil
}

// inProgress returns the route's flip in progress if it is at epoch.
func (s *State) inProgress(route string, epoch int32) (*Flip, error) {
	r := s.Routes[route]
	switch {
	case r == nil:
		return nil, reject("unknown route %q", route)
	case r.InProgress == nil:
		return nil, reject("no flip of route %q is in progress", route)
	case r.InProgress.Epoch != epoch:
		return nil, reject("stale epoch: the flip of route %q in progress is at epoch %d, not %d", route, r.InProgress.Epoch, epoch)
	}
	return r.InProgress, nil
}

// ReportView records an agent's latest view of a domain. The leader commits
// reports as it receives them, dated no later than that by its own clock,
// so the log's order is the reports' order and the latest replaces the one
// recorded: ordering by the dates instead would let a clock that ran ahead
// keep an old view in place.
type ReportView struct{ policy.View }

func (c ReportView) apply(s *State) error {
	if c.Agent == "" || c.Domain == "" {
		return reject("a view needs an agent and a domain, got agent %q, domain %q", c.Agent, c.Domain)
	}
	byDomain := s.Views[c.Agent]
	if byDomain == nil {
		byDomain = map[string]policy.View{}
		s.Views[c.Agent] = byDomain
	}
	byDomain[c.Domain] = c.View
	return nil
}

// ReportLag records a route's replication lag, replacing the one recorded
// as ReportView does. An unknown lag replaces a known one too: it is an
// agent's finding that the positions it read cannot be vouched for. A
// failed measure, such as when the active domain is gone, is not
// reported, so the last measure stays until failover.maxLagAge makes it
// too old to act on.
type ReportLag struct{ policy.Lag }

func (c ReportLag) apply(s *State) error {
	if c.Route == "" {
		return reject("a lag report needs a route")
	}
	s.Lag[c.Route] = c.Lag
	return nil
}

// RegisterAgent records how to reach an agent's HTTP API.
type RegisterAgent struct{ Agent }

func (c RegisterAgent) apply(s *State) error {
	if c.ID == "" {
		return reject("an agent needs an id")
	}
	s.Agents[c.ID] = c.Agent
	return nil
}

// commandTypes are the commands the log can hold, by the name Encode gives
// them.
var commandTypes = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, c := range []Command{InitRoute{}, StartFlip{}, RecordStep{}, FinishFlip{}, ResumeFlip{}, ReportView{}, ReportLag{}, RegisterAgent{}} {
		t := reflect.TypeOf(c)
		m[t.Name()] = t
	}
	return m
}()

// envelope is how a command is stored in the log: its type, then its
// fields.
type envelope struct {
	Type string          `json:"type"`
	Cmd  json.RawMessage `json:"cmd"`
}

// Encode returns cmd as stored in the log.
func Encode(cmd Command) ([]byte, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", cmd, err)
	}
	return json.Marshal(envelope{Type: reflect.Indirect(reflect.ValueOf(cmd)).Type().Name(), Cmd: body})
}

// Decode reads a command as Encode wrote it.
func Decode(data []byte) (Command, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("decoding a command: %w", err)
	}
	t, ok := commandTypes[env.Type]
	if !ok {
		return nil, fmt.Errorf("unknown command type %q; is this agent older than the one that wrote it?", env.Type)
	}
	v := reflect.New(t)
	if err := json.Unmarshal(env.Cmd, v.Interface()); err != nil {
		return nil, fmt.Errorf("decoding a %s command: %w", env.Type, err)
	}
	return v.Elem().Interface().(Command), nil
}
