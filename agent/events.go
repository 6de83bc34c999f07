package agent

import (
	"time"

	"github.com/turnout/turnout/policy"
)

// Event is something an agent did that an observer may want to follow: a
// decision, a step of a flip, a signal file taken or answered. Events carry
// the same facts as the log line beside each, as typed fields, so that an
// observer (a UI, a test, `turnout demo`) never reads log text, and log
// lines can be reworded freely.
//
// The agent calls Config.OnEvent synchronously, on whichever of its
// goroutines did the thing, possibly several at once: the observer must
// return quickly, never block, and not call back into the agent. An
// observer that cannot keep up should drop events rather than wait.
//
// Each kind is a pointer to one of the structs below; switch on the type.
type Event interface {
	// Header is who emitted the event and when.
	Header() *EventHeader
}

// EventHeader is common to every event; the agent fills it in.
type EventHeader struct {
	Agent string // the emitting agent's ID
	At    time.Time
}

// Header returns h itself, so that every event embedding it is an Event.
func (h *EventHeader) Header() *EventHeader { return h }

// Decided: the leader's decision for a route changed, or is not "ok" and
// has not been repeated for a while (the same rule as its log line).
type Decided struct {
	EventHeader
	Decision policy.Decision
}

// FlipCommitted: the leader committed a flip to Raft, the point of no
// return.
type FlipCommitted struct {
	EventHeader
	Route, From, To string
	Epoch           int32
	Manual, Force   bool
	Request         string // the manual request's ID, if any
	Reason          string
}

// FlipNotStarted: an automatic flip the policy called for was not
// committed.
type FlipNotStarted struct {
	EventHeader
	Route string
	Err   error
}

// ConfigWritten: the leader wrote the route's new cluster and epoch to the
// gateway config.
type ConfigWritten struct {
	EventHeader
	Route, Domain string
	Epoch         int32
	File          string
	Changed       bool
	Took          time.Duration
}

// GatewayServing: a gateway was restarted and confirmed serving the new
// cluster.
type GatewayServing struct {
	EventHeader
	Route, Gateway string
	ClusterID      string
	Took           time.Duration
}

// FlipDone: every gateway serves the route from its new cluster.
type FlipDone struct {
	EventHeader
	Route, From, To string
	Epoch           int32
	Took            time.Duration // from the commit
}

// FlipStopped: a committed flip failed at a step; the agents retry the
// gateways not restarted later.
type FlipStopped struct {
	EventHeader
	Route, To string
	Epoch     int32
	Err       error
}

// SignalClaimed: this agent claimed the signal file and is carrying out
// its request.
type SignalClaimed struct {
	EventHeader
	File    string
	Request string
	Resumed bool // an earlier claim of this agent's, taken up again
}

// SignalAnswered: this agent wrote the signal file's outcome.
type SignalAnswered struct {
	EventHeader
	File    string // <signal file>.done or .failed
	Outcome Outcome
}

// emit hands e to the observer, if there is one.
func (a *Agent) emit(e Event) {
	if a.cfg.OnEvent == nil {
		return
	}
	h := e.Header()
	h.Agent, h.At = a.cfg.ID, time.Now()
	a.cfg.OnEvent(e)
}
