package policy

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"regexp/syntax"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/turnout/turnout/internal/yamlstrict"
)

// Parse decodes a policy file strictly, fills in defaults and validates it.
// file names the source in error messages. Every problem is reported, each
// a *yamlstrict.Error with the file and line, joined with errors.Join.
func Parse(file string, data []byte) (*Policy, error) {
	d := yamlstrict.NewDecoder(file, data)
	p := parse(d)
	if err := d.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

func parse(d *yamlstrict.Decoder) *Policy {
	root := d.Document("want routes, probe, health, failover, replication and gateways")
	if root == nil {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		d.At(root.Line, "", "want a mapping of settings (routes, probe, gateways, ...), got %s", yamlstrict.DescribeNode(root))
		return nil
	}
	// Defaults go in first: the file overrides what it sets, so an explicit
	// zero is seen and checked rather than taken for a missing setting.
	p := &Policy{
		Probe:       Probe{Interval: DefaultProbeInterval, Timeout: DefaultProbeTimeout},
		Health:      Health{FailuresToBreach: DefaultFailuresToBreach, MinBrokers: DefaultMinBrokers},
		Failover:    Failover{Automatic: true, MaxLagRecords: DefaultMaxLagRecords, Cooldown: DefaultCooldown, MaxLagAge: DefaultMaxLagAge, PlannedPause: DefaultPlannedPause},
		Replication: Replication{Mode: ModeMirrorMaker2},
		Fencing:     Fencing{Lease: DefaultLease},
		File:        d.File(),
	}
	d.Decode(root, p, "")
	if d.Failed() {
		// Validating a file that did not decode would mostly repeat the
		// decoding errors (a misspelt key is also a missing one).
		return nil
	}
	v := validator{d}
	v.routes(p.Routes)
	v.probe(&p.Probe)
	v.health(&p.Health)
	v.failover(&p.Failover)
	v.maxLagAge(p)
	v.replication(&p.Replication)
	v.gateways(p.Gateways)
	v.fencing(&p.Fencing)
	return p
}

type validator struct{ *yamlstrict.Decoder }

func (v validator) routes(routes []Route) {
	if len(routes) == 0 {
		v.Errorf("routes", "at least one route is required: name a gateway route and its primary and standby domains")
	}
	seen := map[string]int{}
	for i, r := range routes {
		path := fmt.Sprintf("routes[%d]", i)
		v.Unique(seen, path+".name", "route", r.Name, r.Line, "name the gateway route the agents switch")
		if r.Primary == "" {
			v.Errorf(path+".primary", "missing; name the streaming domain the route normally serves")
		}
		if r.Standby == "" {
			v.Errorf(path+".standby", "missing; name the streaming domain the route fails over to")
		}
		if r.Primary != "" && r.Primary == r.Standby {
			v.Errorf(path+".standby", "the standby must differ from the primary, both are %q", r.Primary)
		}
	}
}

// topicRE is what Kafka accepts as a topic name.
var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func (v validator) probe(p *Probe) {
	v.positive("probe.interval", p.Interval)
	v.positive("probe.timeout", p.Timeout)
	if p.CanaryTopic != "" && !topicRE.MatchString(p.CanaryTopic) {
		v.Errorf("probe.canaryTopic", "%q is not a Kafka topic name (letters, digits, '.', '_' and '-', at most 249)", p.CanaryTopic)
	}
}

func (v validator) health(h *Health) {
	if h.FailuresToBreach < 1 {
		v.Errorf("health.failuresToBreach", "must be at least 1, got %d", h.FailuresToBreach)
	}
	if h.MinBrokers < 1 {
		v.Errorf("health.minBrokers", "must be at least 1, got %d", h.MinBrokers)
	}
}

func (v validator) failover(f *Failover) {
	if f.MaxLagRecords < 0 {
		v.Errorf("failover.maxLagRecords", "cannot be negative, got %d; 0 means the standby must have every record", f.MaxLagRecords)
	}
	if f.Cooldown < 0 {
		v.Errorf("failover.cooldown", "cannot be negative, got %s; 0s means no cooldown", f.Cooldown)
	}
	if f.PlannedPause < 0 || f.PlannedPause > MaxPlannedPause {
		v.Errorf("failover.plannedPause", "must be from 0s (no pause) to %s, got %s", MaxPlannedPause, f.PlannedPause)
	}
}

// maxLagAge must outlast the detection of a breach: the lag stops being
// measured when the active cluster dies, and a bound shorter than the
// breach takes to see would block every automatic failover.
func (v validator) maxLagAge(p *Policy) {
	v.positive("failover.maxLagAge", p.Failover.MaxLagAge)
	if breach := p.BreachTime(); p.Failover.MaxLagAge > 0 && p.Failover.MaxLagAge <= breach {
		v.Errorf("failover.maxLagAge", "%s is no longer than a breach can take to detect (%s: health.failuresToBreach × (probe.interval + probe.timeout)), so the lag would always be too old to fail over on",
			p.Failover.MaxLagAge, breach)
	}
}

func (v validator) fencing(f *Fencing) {
	if f.Lease != 0 && (f.Lease < MinLease || f.Lease > MaxLease) {
		v.Errorf("fencing.lease", "must be 0s (no fencing) or from %s to %s, got %s", MinLease, MaxLease, f.Lease)
	}
}

func (v validator) replication(r *Replication) {
	switch r.Mode {
	case ModeMirrorMaker2, ModeOffsets:
		if len(r.Topics) == 0 {
			v.Errorf("replication.topics", "at least one topic is required to measure %s lag: list names or regular expressions", r.Mode)
		}
	case ModeNone:
		if len(r.Topics) > 0 {
			v.Errorf("replication.topics", "mode none measures no lag, so topics would be ignored; remove them or use mode mirrormaker2 or offsets")
		}
	default:
		v.Errorf("replication.mode", "unknown mode %q; use mirrormaker2, offsets (offset-preserving links) or none", r.Mode)
	}
	for i, t := range r.Topics {
		path := fmt.Sprintf("replication.topics[%d]", i)
		if t == "" {
			v.Errorf(path, "empty; want a topic name or regular expression")
			continue
		}
		re, err := regexp.Compile(`^(?:` + t + `)$`)
		if err != nil {
			// Report the problem in the user's text rather than in the
			// anchored one, unless only the anchoring made it.
			if _, rawErr := regexp.Compile(t); rawErr != nil {
				err = rawErr
			}
			v.Errorf(path, "%q is not a regular expression: %v", t, unwrapRegexp(err))
			continue
		}
		r.Patterns = append(r.Patterns, re)
	}
}

// unwrapRegexp drops the "error parsing regexp: " prefix, which repeats the
// message around it.
func unwrapRegexp(err error) string {
	if se, ok := errors.AsType[*syntax.Error](err); ok {
		return fmt.Sprintf("%s: `%s`", se.Code, se.Expr)
	}
	return err.Error()
}

func (v validator) gateways(gws []Gateway) {
	if len(gws) == 0 {
		v.Errorf("gateways", "at least one gateway is required: give its admin URL or a restartCommand")
	}
	seen := map[string]int{}
	for i := range gws {
		g := &gws[i]
		path := fmt.Sprintf("gateways[%d]", i)
		v.Unique(seen, path+".name", "gateway", g.Name, g.Line, "every gateway needs a name for status and logs")
		switch {
		case g.Admin != "" && len(g.RestartCommand) > 0:
			v.Errorf(path, "set admin or restartCommand, not both")
		case g.Admin != "":
			if u, err := url.Parse(g.Admin); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.Errorf(path+".admin", "%q is not an http:// or https:// URL, e.g. http://127.0.0.1:9190", g.Admin)
			} else if g.CAFile != "" && u.Scheme != "https" {
				v.Errorf(path+".caFile", "is for an https:// admin URL; %s is plain HTTP", g.Admin)
			}
		case len(g.RestartCommand) > 0:
			if g.RestartCommand[0] == "" {
				v.Errorf(path+".restartCommand", "the program to run is empty")
			}
			if g.TokenFile != "" || g.CAFile != "" {
				v.Errorf(path, "tokenFile and caFile are for a gateway's admin URL, not a restartCommand")
			}
		default:
			v.Errorf(path, "set admin (the gateway's admin URL) or restartCommand (a command that restarts it)")
		}
		if !v.Has(path + ".timeout") {
			g.Timeout = DefaultGatewayTimeout
		}
		v.positive(path+".timeout", g.Timeout)
	}
}

func (v validator) positive(path string, d time.Duration) {
	if d <= 0 {
		v.Errorf(path, "must be more than 0, got %v", d)
	}
}
