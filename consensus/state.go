// Package consensus is the agents' replicated memory: a hashicorp/raft
// group, stored with raft-boltdb, whose state machine holds each route's
// active domain and epoch, the flip in progress and the last one, and the
// latest views, lag and addresses the agents report. Its commands are
// deterministic so every agent's copy is the same; the epoch rule of
// StartFlip is what keeps a stale leader from ever moving a route back.
package consensus

import (
	"maps"
	"slices"
	"time"

	"github.com/turnout/turnout/policy"
)

// State is the replicated state.
type State struct {
	Routes map[string]*Route                 `json:"routes"` // by name
	Views  map[string]map[string]policy.View `json:"views"`  // agent -> domain -> latest view
	Lag    map[string]policy.Lag             `json:"lag"`    // by route: the last known lag
	Agents map[string]Agent                  `json:"agents"` // by id
	// Requests are the manual requests that committed a flip, by id, so
	// that a request sent again (to a new leader, or from a signal file
	// claim taken up again) is answered from here instead of flipping the
	// route a second time. StartFlip keeps the newest maxRequests.
	Requests map[string]Request `json:"requests,omitempty"`
}

// Request is a manual request whose flip was committed.
type Request struct {
	ID    string `json:"id"`
	Route string `json:"route"`
	From  string `json:"from"`
	To    string `json:"to"`
	Epoch int32  `json:"epoch"`
	// At is when its flip was committed, by the leader's clock.
	At time.Time `json:"at"`
	// Seq orders the requests as their flips were committed, which the
	// state keeps the newest of.
	Seq     uint64 `json:"seq,omitempty"`
	Outcome string `json:"outcome,omitempty"` // that of its flip; "" while it runs
	Error   string `json:"error,omitempty"`
}

// Route is one route's replicated state.
type Route struct {
	Name   string `json:"name"`
	Active string `json:"active"`
	// Epoch grows by one with every flip; the gateway config carries it so
	// a stale writer is refused there too.
	Epoch    int32 `json:"epoch"`
	LastFlip *Flip `json:"lastFlip,omitempty"` // the last finished flip
	// LastAutoFlipAt is when the last automatic flip was committed, which
	// the cooldown counts from: a manual flip since does not reset it.
	LastAutoFlipAt time.Time `json:"lastAutoFlipAt,omitzero"`
	InProgress     *Flip     `json:"inProgress,omitempty"` // committed but not finished: a new leader resumes it
}

// Flip is one switch of a route, from its commit to its outcome.
type Flip struct {
	Route  string `json:"route"`
	From   string `json:"from"`
	To     string `json:"to"`
	Epoch  int32  `json:"epoch"`
	Reason string `json:"reason"`
	Manual bool   `json:"manual,omitempty"`
	Force  bool   `json:"force,omitempty"`
	// RequestID is the manual request that asked for the flip, if any.
	RequestID string `json:"requestId,omitempty"`
	// StartedAt is when the flip was committed, by the leader's clock.
	StartedAt time.Time `json:"startedAt"`
	// Leader is the agent that committed the flip.
	Leader        string    `json:"leader"`
	ConfigWritten bool      `json:"configWritten,omitempty"`
	GatewaysDone  []string  `json:"gatewaysDone,omitempty"` // in the order they were restarted
	Step          string    `json:"step"`                   // the last step recorded
	StepAt        time.Time `json:"stepAt"`                 // when it was recorded
	FinishedAt    time.Time `json:"finishedAt,omitzero"`
	Outcome       string    `json:"outcome,omitempty"` // OutcomeDone or OutcomeFailed, once finished
	Error         string    `json:"error,omitempty"`
}

// Flip outcomes.
const (
	OutcomeDone   = "done"
	OutcomeFailed = "failed"
)

// StepCommitted is the step of a flip StartFlip has just committed.
const StepCommitted = "committed"

// Agent says how to reach an agent's HTTP API, so that a follower can hand
// a request to the leader.
type Agent struct {
	ID   string `json:"id"`
	HTTP string `json:"http"` // base URL, e.g. http://127.0.0.1:8081
}

// NewState returns an empty state.
func NewState() State {
	return State{
		Routes:   map[string]*Route{},
		Views:    map[string]map[string]policy.View{},
		Lag:      map[string]policy.Lag{},
		Agents:   map[string]Agent{},
		Requests: map[string]Request{},
	}
}

// Clone returns a deep copy of s, which the caller may keep and change.
func (s State) Clone() State {
	c := NewState()
	for name, r := range s.Routes {
		r := *r
		r.LastFlip, r.InProgress = r.LastFlip.clone(), r.InProgress.clone()
		c.Routes[name] = &r
	}
	for agent, byDomain := range s.Views {
		c.Views[agent] = maps.Clone(byDomain)
	}
	maps.Copy(c.Lag, s.Lag)
	maps.Copy(c.Agents, s.Agents)
	maps.Copy(c.Requests, s.Requests)
	return c
}

func (f *Flip) clone() *Flip {
	if f == nil {
		return nil
	}
	c := *f
	c.GatewaysDone = slices.Clone(f.GatewaysDone)
	return &c
}

// Input gathers what policy.Decide and policy.DecideManual need about a
// route: its state, every agent's views and its lag. agents is the number
// of voters in the group. The cooldown counts from when the last automatic
// flip was committed.
func (s State) Input(route string, now time.Time, agents int) policy.Input {
	in := policy.Input{Now: now, Agents: agents, Lag: s.Lag[route]}
	if r := s.Routes[route]; r != nil {
		in.Route = policy.RouteState{Name: r.Name, Active: r.Active, Epoch: r.Epoch, InProgress: r.InProgress != nil,
			LastAutoFlipAt: r.LastAutoFlipAt}
		if r.LastFlip != nil {
			in.Route.Unfinished = r.LastFlip.Outcome == OutcomeFailed && r.LastFlip.Epoch == r.Epoch
		}
	} else {
		in.Route.Name = route
	}
	// Sorted, so that the input, like the decision, does not depend on map
	// order.
	for _, agent := range slices.Sorted(maps.Keys(s.Views)) {
		for _, domain := range slices.Sorted(maps.Keys(s.Views[agent])) {
			in.Views = append(in.Views, s.Views[agent][domain])
		}
	}
	return in
}
