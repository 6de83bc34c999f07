// Package policy reads policy.yaml, the rules every agent follows, and
// holds the pure decisions made from it: whether a route fails over on what
// the agents observe, and whether a manual request may go ahead. Nothing in
// it does I/O apart from Load.
package policy

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// Policy is the whole policy file.
type Policy struct {
	Routes        []Route     `yaml:"routes"`
	Probe         Probe       `yaml:"probe"`
	Health        Health      `yaml:"health"`
	Failover      Failover    `yaml:"failover"`
	Replication   Replication `yaml:"replication"`
	Gateways      []Gateway   `yaml:"gateways"` // restarted in this order
	Fencing       Fencing     `yaml:"fencing"`
	GatewayConfig string      `yaml:"gatewayConfig"`
	SignalFile    string      `yaml:"signalFile"`

	// File is the path the policy was read from, for messages.
	File string `yaml:"-"`
}

// Route is a gateway route the agents own and the two domains it may serve.
type Route struct {
	Name    string `yaml:"name"`
	Primary string `yaml:"primary"`
	Standby string `yaml:"standby"`

	Line int `yaml:"-"`
}

// Other returns the route's domain that is not domain.
func (r *Route) Other(domain string) string {
	if domain == r.Primary {
		return r.Standby
	}
	return r.Primary
}

// Probe says how often and how patiently agents probe each domain.
type Probe struct {
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"`
	// CanaryTopic, when set, makes every probe also produce a record to this
	// topic, which proves the cluster takes writes, not only that it answers.
	CanaryTopic string `yaml:"canaryTopic"`
}

// Health says when a domain counts as failed.
type Health struct {
	FailuresToBreach int `yaml:"failuresToBreach"`
	MinBrokers       int `yaml:"minBrokers"`
}

// Failover bounds automatic failovers.
type Failover struct {
	Automatic     bool          `yaml:"automatic"`
	MaxLagRecords int64         `yaml:"maxLagRecords"`
	Cooldown      time.Duration `yaml:"cooldown"`
	// MaxLagAge is how long a measured lag is trusted: an older one counts
	// as never measured. Lag stops being measured when the active cluster
	// dies, so this is also how long after that an automatic failover may
	// still rely on the last measure.
	MaxLagAge time.Duration `yaml:"maxLagAge"`
	// PlannedPause bounds how long a planned switch (manual, not forced,
	// from a cluster a quorum sees healthy) holds producers at the
	// gateways while replication catches up to the last acknowledged
	// record; 0 switches within MaxLagRecords without pausing, and can
	// leave the records not yet replicated behind.
	PlannedPause time.Duration `yaml:"plannedPause"`
}

// Fencing is how the agents keep a gateway they cannot reach from taking
// writes for a cluster they switched away from. The leader leases each
// route to every gateway with an admin URL for Lease, renewed every third
// of it, and only for the epoch committed; a gateway whose lease lapsed
// holds the route's Produce requests. Before any gateway serves a route's
// new cluster, every other one has either confirmed it holds the route or
// had its lease lapse. 0 turns fencing off: a gateway that cannot be
// reached during a switch then keeps sending its clients' writes to the
// old cluster, and what it acknowledges there is lost.
type Fencing struct {
	Lease time.Duration `yaml:"lease"`
}

// Replication modes: how the agents measure how far the standby is behind.
const (
	ModeMirrorMaker2 = "mirrormaker2"
	ModeOffsets      = "offsets" // offset-preserving links: end offsets compared partition by partition
	ModeNone         = "none"    // no lag check
)

// Replication says what is replicated between the domains and how to
// measure its lag.
type Replication struct {
	Mode   string   `yaml:"mode"`
	Topics []string `yaml:"topics"`

	// Patterns are Topics compiled, each anchored to match whole topic
	// names, so that a plain name matches only itself.
	Patterns []*regexp.Regexp `yaml:"-"`
}

// Matches reports whether topic is one of the replicated topics.
func (r *Replication) Matches(topic string) bool {
	for _, re := range r.Patterns {
		if re.MatchString(topic) {
			return true
		}
	}
	return false
}

// Gateway is one gateway the leader restarts after switching a route, either
// through its admin API or with a command.
type Gateway struct {
	Name string `yaml:"name"`
	// Admin is the gateway's admin base URL: POST /restart, then GET /status
	// must show the new cluster id.
	Admin string `yaml:"admin"`
	// TokenFile holds the bearer token of the gateway's admin API (its
	// admin.tokenFile), sent with every call; needed when the gateway
	// binds its admin API to a non-loopback address.
	TokenFile string `yaml:"tokenFile"`
	// CAFile (PEM) is the CA to trust for an https:// admin URL; empty
	// means the system's roots.
	CAFile string `yaml:"caFile"`
	// RestartCommand is run (no shell) to restart a gateway Turnout does not
	// control, e.g. [systemctl, restart, gw]; it must exit 0.
	RestartCommand []string      `yaml:"restartCommand"`
	Timeout        time.Duration `yaml:"timeout"` // for the restart and its confirmation

	Line int `yaml:"-"`
}

// Defaults for settings the file leaves out.
const (
	DefaultProbeInterval    = time.Second
	DefaultProbeTimeout     = 2 * time.Second
	DefaultFailuresToBreach = 3
	DefaultMinBrokers       = 1
	DefaultMaxLagRecords    = 10000
	DefaultCooldown         = 10 * time.Minute
	DefaultMaxLagAge        = time.Minute
	DefaultPlannedPause     = 15 * time.Second
	// MaxPlannedPause bounds how long a planned switch waits with
	// producers paused: they must not wait beyond their timeouts. The
	// pause itself lasts a little longer unrenewed, to outlast a route
	// lease (within adminapi.MaxPause).
	MaxPlannedPause       = time.Minute
	DefaultGatewayTimeout = 30 * time.Second
	// DefaultLease is what a forced switch with a gateway unreachable
	// waits, at most, before the others serve the new cluster.
	DefaultLease = 10 * time.Second
	// MinLease and MaxLease bound a route lease: renewed every third of
	// it, over HTTP, a shorter one would lapse on a slow renewal; a
	// gateway refuses a longer one (adminapi.MaxLease).
	MinLease = time.Second
	MaxLease = time.Minute
)

// Load reads and parses the policy file at path.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the policy: %w", err)
	}
	return Parse(path, data)
}

// Route returns the route called name, or nil.
func (p *Policy) Route(name string) *Route {
	for i := range p.Routes {
		if p.Routes[i].Name == name {
			return &p.Routes[i]
		}
	}
	return nil
}

// ResolveRoute returns the route a request names; "" names the only route
// of a policy that has one.
func (p *Policy) ResolveRoute(name string) (*Route, error) {
	if name == "" {
		if len(p.Routes) == 1 {
			return &p.Routes[0], nil
		}
		return nil, fmt.Errorf("the policy has %d routes; name one (%s)", len(p.Routes), p.routeNames())
	}
	if r := p.Route(name); r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("the policy has no route %q (routes: %s)", name, p.routeNames())
}

func (p *Policy) routeNames() string {
	names := make([]string, len(p.Routes))
	for i, r := range p.Routes {
		names[i] = r.Name
	}
	return strings.Join(names, ", ")
}

// StaleAfter is the age past which an agent's view is ignored: that agent
// has missed three probes' worth of reports.
func (p *Policy) StaleAfter() time.Duration {
	return 3*p.Probe.Interval + p.Probe.Timeout
}

// BreachTime is the longest an agent can take to see a breach: the
// consecutive failed probes that make one, each taking up to its interval
// and its timeout.
func (p *Policy) BreachTime() time.Duration {
	return time.Duration(p.Health.FailuresToBreach) * (p.Probe.Interval + p.Probe.Timeout)
}

// Quorum is how many of agents must agree: a strict majority.
func (p *Policy) Quorum(agents int) int {
	return agents/2 + 1
}
