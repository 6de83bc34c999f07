package policy

import (
	"cmp"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/turnout/turnout/internal/yamlstrict"
)

// Action is what a manual request asks for.
type Action string

const (
	ActionFailover Action = "failover" // to the route's other domain, or to To
	ActionFailback Action = "failback" // to the route's primary
)

// Request is a manual failover or failback, from the signal file or the
// agent's HTTP API.
type Request struct {
	Action Action `yaml:"action" json:"action"`
	Route  string `yaml:"route" json:"route,omitempty"` // "" for the only route
	To     string `yaml:"to" json:"to,omitempty"`       // failover only; "" for the other domain
	Force  bool   `yaml:"force" json:"force,omitempty"` // skip the health and lag checks
	// ID, optional, names the request, so that whoever wrote the signal
	// file can tell its answer from an earlier one.
	ID string `yaml:"id" json:"id,omitempty"`
}

const signalForms = "failover, failback, or a mapping such as {action: failover, route: NAME, to: DOMAIN, force: false}"

// ParseSignal reads a signal file: the single word failover or failback, or
// a YAML or JSON request. Unknown keys and values are errors with a line;
// the caller adds the file's name.
func ParseSignal(data []byte) (Request, error) {
	if word := Action(strings.TrimSpace(string(data))); word == ActionFailover || word == ActionFailback {
		return Request{Action: word}, nil
	}
	var req Request
	d := yamlstrict.NewDecoder("", data)
	switch root := d.Document("write " + signalForms); {
	case root == nil:
	case root.Kind != yaml.MappingNode:
		d.At(root.Line, "", "want %s; got %s", signalForms, yamlstrict.DescribeNode(root))
	default:
		d.Decode(root, &req, "")
		if !d.Failed() {
			checkRequest(d, req)
		}
	}
	if err := d.Err(); err != nil {
		return Request{}, err
	}
	return req, nil
}

func checkRequest(d *yamlstrict.Decoder, req Request) {
	switch req.Action {
	case ActionFailover, ActionFailback:
	case "":
		d.Errorf("action", "missing; want failover or failback")
	default:
		d.Errorf("action", "unknown action %q; want failover or failback", req.Action)
	}
	if req.Action == ActionFailback && req.To != "" {
		d.Errorf("to", "a failback always returns to the route's primary; leave out to, or ask for a failover to %s", req.To)
	}
}

// Pin resolves a request's target once, against the route's state when the
// request is received: a failover that names no target goes away from the
// active domain, or, if the last flip stopped before every gateway was
// restarted, finishes that flip rather than turn the route around. Decided
// again later, as it waits for replication or is sent again, the pinned
// request then finds the route already on its target instead of flipping
// it back. A request whose route is unknown is returned as it is, for
// DecideManual to refuse.
func Pin(req Request, s RouteState, p *Policy) Request {
	r, err := p.ResolveRoute(req.Route)
	if err != nil {
		return req
	}
	req.Route = r.Name
	switch {
	case req.Action != ActionFailover || req.To != "" || s.Active != r.Primary && s.Active != r.Standby:
	case s.Unfinished:
		req.To = s.Active
	default:
		req.To = r.Other(s.Active)
	}
	return req
}

// DecideManual says whether a manual request may flip its route now. in
// must be about the route the request names (see ResolveRoute), and req
// should be pinned (see Pin) when it was received. The
// cooldown does not apply: a person asked. Unless the request is forced,
// the target must be healthy for a quorum of agents and the lag within the
// policy's limit; CodeLagTooHigh and CodeLagUnknown then mean "wait", and
// the agent keeps the request pending. Force never overrides a flip in
// progress or the epoch rules.
func DecideManual(req Request, in Input, p *Policy) Decision {
	d := Decision{Route: in.Route.Name, From: in.Route.Active}
	r, err := p.ResolveRoute(req.Route)
	switch {
	case err != nil:
		return d.is(CodeBadRequest, "%v", err)
	case r.Name != in.Route.Name:
		return d.is(CodeBadRequest, "the request is for route %s but the state given is of route %s", r.Name, in.Route.Name)
	case in.Route.Active != r.Primary && in.Route.Active != r.Standby:
		return notInPolicy(d, in.Route, r)
	}
	switch req.Action {
	case ActionFailover:
		d.To = cmp.Or(req.To, r.Other(d.From))
	case ActionFailback:
		d.To = r.Primary
		if req.To != "" && req.To != r.Primary {
			return d.is(CodeBadRequest, "a failback returns route %s to its primary %s, not to %s", r.Name, r.Primary, req.To)
		}
	default:
		return d.is(CodeBadRequest, "unknown action %q; want failover or failback", req.Action)
	}
	if d.To != r.Primary && d.To != r.Standby {
		return d.is(CodeBadRequest, "route %s switches between %s and %s; %s is neither", r.Name, r.Primary, r.Standby, d.To)
	}
	views := freshViews(in, p)
	in.Agents = voters(in, views)
	q := p.Quorum(in.Agents)
	d.Healthy = agents(matching(views[d.To], func(v View) bool { return v.Healthy }))
	what := fmt.Sprintf("manual %s of route %s from %s to %s", req.Action, r.Name, d.From, d.To)
	switch {
	case in.Route.InProgress:
		return d.is(CodeInProgress, "%s waits: a flip of the route is still in progress", what)
	case d.To == d.From && in.Route.Unfinished:
		return d.is(CodeResume, "%s: the last flip to %s stopped before every gateway was restarted; restarting the rest", what, d.To)
	case d.To == d.From:
		return d.is(CodeAlreadyActive, "route %s already serves %s", r.Name, d.To)
	}
	if req.Force {
		return d.flip(in, "%s at epoch %d, forced: health and lag not checked", what, in.Route.Epoch+1)
	}
	if len(d.Healthy) < q {
		return d.is(CodeTargetUnhealthy, "%s refused: %s", what, unhealthy(d.To, d.Healthy, in.Agents, q))
	}
	if code, why := lagBlocks(in, p, d.To); code != "" {
		return d.is(code, "%s waits: %s (force skips this check)", what, why)
	}
	d = d.flip(in, "%s at epoch %d: %s healthy for %s; %s", what, in.Route.Epoch+1, d.To, strings.Join(d.Healthy, ", "), lagFacts(in.Lag, p))
	// The cluster being left still takes writes: pausing them lets
	// replication finish, so that the switch leaves nothing behind.
	sourceUp := len(matching(views[d.From], func(v View) bool { return v.Healthy })) >= q
	d.Quiesce = sourceUp && p.Failover.PlannedPause > 0 && p.Replication.Mode != ModeNone
	return d
}
