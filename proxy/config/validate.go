package config

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	defaultMaxFrameBytes = 100 << 20
	minMaxFrameBytes     = 1 << 20
	defaultDrainTimeout  = 5 * time.Second
	defaultUpstreamWait  = 10 * time.Second
	defaultAdminPort     = 9190
	defaultAdminBind     = "127.0.0.1"
	maxPort              = 65535
)

// validate fills in defaults and reports every problem in g.
func (p *parser) validate(g *Gateway) {
	if len(g.StreamingDomains) == 0 {
		p.Errorf("streamingDomains", "at least one streaming domain is required")
	}
	if len(g.Routes) == 0 {
		p.Errorf("routes", "at least one route is required")
	}
	p.validateSecretStores(g)
	seen := map[string]int{}
	for i := range g.StreamingDomains {
		p.validateDomain(&g.StreamingDomains[i], fmt.Sprintf("streamingDomains[%d]", i), seen)
	}
	clear(seen)
	for i := range g.Routes {
		p.validateRoute(g, &g.Routes[i], fmt.Sprintf("routes[%d]", i), seen)
	}
	p.validateAdmin(&g.Admin)
	p.validatePorts(g)
	p.validateLimits(&g.Limits)
}

func (p *parser) validateDomain(d *StreamingDomain, path string, seen map[string]int) {
	switch first, dup := seen[d.Name]; {
	case d.Name == "":
		p.Errorf(path+".name", "missing; every streaming domain needs a name")
	case dup:
		p.Errorf(path+".name", "streaming domain %q is already defined on line %d", d.Name, first)
	default:
		seen[d.Name] = d.Line
	}
	switch d.Type {
	case "":
		d.Type = "kafka"
	case "kafka":
	default:
		p.Errorf(path+".type", "type %q is not supported; the only type is kafka", d.Type)
	}

	path += ".kafkaCluster"
	c := &d.KafkaCluster
	if len(c.BootstrapServers) == 0 {
		p.Errorf(path+".bootstrapServers", "at least one bootstrap server is required")
	}
	ids := map[string]int{}
	for i, b := range c.BootstrapServers {
		bpath := fmt.Sprintf("%s.bootstrapServers[%d]", path, i)
		switch first, dup := ids[b.ID]; {
		case b.ID == "":
			p.Errorf(bpath+".id", "missing; routes name a bootstrap server by its id")
		case dup:
			p.Errorf(bpath+".id", "bootstrap server %q is already defined on line %d", b.ID, first)
		default:
			ids[b.ID] = b.Line
		}
		hosts := b.Hosts()
		if len(hosts) == 0 {
			p.Errorf(bpath+".endpoint", "missing; want a comma-separated list of host:port")
		}
		for _, h := range hosts {
			if _, _, err := splitHostPort(h); err != nil {
				p.Errorf(bpath+".endpoint", "%v", err)
			}
		}
	}

	if len(c.NodeIDRanges) == 0 {
		c.NodeIDRanges = []NodeIDRange{{Name: "default", Start: 0, End: 15}}
		return
	}
	var good []int // indexes of the well-formed ranges
	for i, r := range c.NodeIDRanges {
		rpath := fmt.Sprintf("%s.nodeIdRanges[%d]", path, i)
		switch {
		case r.Start < 0:
			p.Errorf(rpath+".start", "node ids cannot be negative, got %d", r.Start)
		case r.Start > r.End:
			p.Errorf(rpath, "node id range %q is empty or reversed: start %d is after end %d", r.Name, r.Start, r.End)
		default:
			good = append(good, i)
		}
	}
	// In start order, a range overlaps an earlier one if and only if it
	// overlaps the one reaching furthest.
	slices.SortStableFunc(good, func(a, b int) int { return cmp.Compare(c.NodeIDRanges[a].Start, c.NodeIDRanges[b].Start) })
	var far *NodeIDRange
	for _, i := range good {
		r := &c.NodeIDRanges[i]
		if far != nil && r.Start <= far.End {
			p.Errorf(fmt.Sprintf("%s.nodeIdRanges[%d]", path, i), "node id range %q (%d-%d) overlaps range %q (%d-%d) on line %d",
				r.Name, r.Start, r.End, far.Name, far.Start, far.End, far.Line)
		}
		if far == nil || r.End > far.End {
			far = r
		}
	}
}

func (p *parser) validateRoute(g *Gateway, r *Route, path string, seen map[string]int) {
	switch first, dup := seen[r.Name]; {
	case r.Name == "":
		p.Errorf(path+".name", "missing; every route needs a name")
	case dup:
		p.Errorf(path+".name", "route %q is already defined on line %d", r.Name, first)
	default:
		seen[r.Name] = r.Line
	}
	if r.Endpoint == "" {
		p.Errorf(path+".endpoint", "missing; want the host:port clients bootstrap from")
	} else if _, _, err := splitHostPort(r.Endpoint); err != nil {
		p.Errorf(path+".endpoint", "%v", err)
	}
	switch r.BrokerIdentificationStrategy {
	case "":
		r.BrokerIdentificationStrategy = "port"
	case "port":
	case "host":
		p.Errorf(path+".brokerIdentificationStrategy", "host-based (SNI) broker identification needs TLS and is not supported yet; use port")
	default:
		p.Errorf(path+".brokerIdentificationStrategy", "unknown strategy %q; use port", r.BrokerIdentificationStrategy)
	}
	p.validateAuth(g, &r.Security, path+".security")
	if r.Epoch < 0 {
		p.Errorf(path+".epoch", "cannot be negative, got %d", r.Epoch)
	}

	path += ".streamingDomain"
	if r.StreamingDomain.Name == "" {
		p.Errorf(path+".name", "missing; name the streaming domain the route serves (known: %s)", domainNames(g))
		return
	}
	d := g.Domain(r.StreamingDomain.Name)
	if d == nil {
		p.Errorf(path+".name", "no streaming domain named %q (known: %s)", r.StreamingDomain.Name, domainNames(g))
		return
	}
	switch id := r.StreamingDomain.BootstrapServerID; {
	case id == "":
		p.Errorf(path+".bootstrapServerId", "missing; name one of the bootstrap servers of %q (known: %s)", d.Name, serverIDs(d))
	case d.BootstrapServer(id) == nil:
		p.Errorf(path+".bootstrapServerId", "no bootstrap server %q in streaming domain %q (known: %s)", id, d.Name, serverIDs(d))
	}
}

func (p *parser) validateAdmin(a *Admin) {
	if a.BindAddress == "" {
		a.BindAddress = defaultAdminBind
	}
	if a.Port == 0 {
		a.Port = defaultAdminPort
	}
	if a.Port < 1 || a.Port > maxPort {
		p.Errorf("admin.port", "port must be from 1 to %d, got %d", maxPort, a.Port)
	}
}

// validatePorts checks that every route's port plan fits below 65535 and
// that no two listeners want the same port.
func (p *parser) validatePorts(g *Gateway) {
	type span struct {
		r      *Route
		lo, hi int
	}
	n := g.nodeIDCount()
	var spans []span
	for i := range g.Routes {
		r := &g.Routes[i]
		_, port, err := splitHostPort(r.Endpoint)
		if err != nil {
			continue
		}
		path := fmt.Sprintf("routes[%d].endpoint", i)
		if int64(port)+n > maxPort {
			p.Errorf(path, "the route needs ports %d-%d, past %d: its bootstrap port and one per node id (%d across all streaming domains); lower the port or narrow nodeIdRanges",
				port, int64(port)+n, maxPort, n)
			continue
		}
		s := span{r, port, port + int(n)}
		for _, o := range spans {
			if s.lo <= o.hi && o.lo <= s.hi && sameListener(r.Bind, o.r.Bind) {
				p.Errorf(path, "port %d is used by both route %q and route %q (line %d); each route takes its bootstrap port and the next %d, one per node id",
					max(s.lo, o.lo), r.Name, o.r.Name, o.r.Line, n)
			}
		}
		spans = append(spans, s)
	}
	for _, s := range spans {
		if port := g.Admin.Port; s.lo <= port && port <= s.hi && sameListener(g.Admin.BindAddress, s.r.Bind) {
			p.Errorf("admin.port", "port %d is also used by route %q (ports %d-%d)", port, s.r.Name, s.lo, s.hi)
		}
	}
}

// sameListener reports whether listeners on hosts a and b can clash.
func sameListener(a, b string) bool {
	all := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return a == b || all(a) || all(b)
}

func (p *parser) validateLimits(l *Limits) {
	switch {
	case l.MaxFrameBytes == 0:
		l.MaxFrameBytes = defaultMaxFrameBytes
	case l.MaxFrameBytes < minMaxFrameBytes:
		p.Errorf("limits.maxFrameBytes", "must be at least %d (1 MiB), got %d", minMaxFrameBytes, l.MaxFrameBytes)
	}
	p.duration("limits.drainTimeout", &l.DrainTimeout, defaultDrainTimeout)
	p.duration("limits.upstreamWait", &l.UpstreamWait, defaultUpstreamWait)
}

// duration checks a duration setting and fills in its default.
func (p *parser) duration(path string, s *string, def time.Duration) {
	if *s == "" {
		*s = def.String()
	} else if d, err := time.ParseDuration(*s); err != nil {
		p.Errorf(path, "%q is not a duration such as 5s or 1m30s", *s)
	} else if d < 0 {
		p.Errorf(path, "cannot be negative, got %s", *s)
	}
}

// splitHostPort splits a host:port endpoint, with errors worded for the
// user.
func splitHostPort(s string) (host string, port int, err error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return "", 0, fmt.Errorf("%q is not host:port", s)
	}
	port, err = strconv.Atoi(ps)
	if err != nil || port < 1 || port > maxPort {
		return "", 0, fmt.Errorf("%q: the port must be a number from 1 to %d", s, maxPort)
	}
	return host, port, nil
}

func splitHosts(s string) []string {
	var hosts []string
	for h := range strings.SplitSeq(s, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

func domainNames(g *Gateway) string {
	names := make([]string, len(g.StreamingDomains))
	for i, d := range g.StreamingDomains {
		names[i] = d.Name
	}
	return strings.Join(names, ", ")
}

func serverIDs(d *StreamingDomain) string {
	ids := make([]string, len(d.KafkaCluster.BootstrapServers))
	for i, b := range d.KafkaCluster.BootstrapServers {
		ids[i] = b.ID
	}
	return strings.Join(ids, ", ")
}
