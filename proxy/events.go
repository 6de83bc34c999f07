package proxy

import "time"

// Event is something a gateway did that an observer may want to follow,
// with typed fields, so that an observer (a UI, a test, `turnout demo`)
// never reads log text. Each kind is a pointer to one of the structs below.
//
// The gateway calls its observer synchronously, on the goroutine of the
// connection concerned, possibly several at once: the observer must return
// quickly, never block, and not call back into the gateway.
type Event interface{ gatewayEvent() }

// Holding: a route's cluster does not answer, so new client connections are
// held, up to Wait, until it answers or the route is switched. Told at most
// as often as it is logged.
type Holding struct {
	At            time.Time
	Route, Domain string
	Wait          time.Duration
	Err           error
}

func (*Holding) gatewayEvent() {}

// Observe sets the function told of the gateway's events (see Event). Call
// it before Start.
func (g *Gateway) Observe(fn func(Event)) { g.observe = fn }

func (g *Gateway) emit(e Event) {
	if g.observe != nil {
		g.observe(e)
	}
}
