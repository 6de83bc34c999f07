package config

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/turnout/turnout/internal/ctlsec"
	"github.com/turnout/turnout/proxy/tlsconf"
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
		p.validateDomain(g, &g.StreamingDomains[i], fmt.Sprintf("streamingDomains[%d]", i), seen)
	}
	clear(seen)
	for i := range g.Routes {
		p.validateRoute(g, &g.Routes[i], fmt.Sprintf("routes[%d]", i), seen)
	}
	p.validateAdmin(&g.Admin)
	p.validatePorts(g)
	p.validateLimits(&g.Limits)
}

func (p *parser) validateDomain(g *Gateway, d *StreamingDomain, path string, seen map[string]int) {
	p.Unique(seen, path+".name", "streaming domain", d.Name, d.Line, "every streaming domain needs a name")
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
		p.Unique(ids, bpath+".id", "bootstrap server", b.ID, b.Line, "routes name a bootstrap server by its id")
		hosts := b.Hosts()
		if len(hosts) == 0 {
			p.Errorf(bpath+".endpoint", "missing; want a comma-separated list of host:port")
		}
		for _, h := range hosts {
			if proto, _, ok := strings.Cut(h, "://"); ok {
				p.Errorf(bpath+".endpoint", "%q: write host:port without the %s:// prefix; TLS comes from ssl, SASL from the clients (or sasl)", h, proto)
			} else if _, _, err := splitHostPort(h); err != nil {
				p.Errorf(bpath+".endpoint", "%v", err)
			}
		}
		if b.SSL != nil {
			p.validateSSL(b.SSL, bpath+".ssl", false)
			if b.SSL.IgnoreTrust {
				g.warnings = append(g.warnings, fmt.Sprintf("%s:%d: %s.ssl.ignoreTrust: the certificates of %s are not checked: "+
					"anyone between the gateway and the cluster can read and change its traffic; never in production",
					p.File(), p.Line(bpath+".ssl.ignoreTrust"), bpath, b.Endpoint))
			}
		}
		if b.SASL != nil {
			p.validateSASL(b.SASL, bpath+".sasl")
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
	p.Unique(seen, path+".name", "route", r.Name, r.Line, "every route needs a name")
	if r.Endpoint == "" {
		p.Errorf(path+".endpoint", "missing; want the host:port clients bootstrap from")
	} else if _, _, err := splitHostPort(r.Endpoint); err != nil {
		p.Errorf(path+".endpoint", "%v", err)
	}
	if r.Security.SSL != nil {
		p.validateSSL(r.Security.SSL, path+".security.ssl", true)
	}
	p.validateStrategy(r, path)
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

func (p *parser) validateStrategy(r *Route, path string) {
	path += ".brokerIdentificationStrategy"
	s := &r.BrokerIdentificationStrategy
	switch s.Type {
	case "":
		s.Type = "port"
		fallthrough
	case "port":
		if s.Pattern != "" {
			p.Errorf(path+".pattern", "a pattern is for the host strategy; the port strategy gives each broker a port")
		}
	case "host":
		if s.Pattern == "" {
			p.Errorf(path+".pattern", "missing; the host strategy needs the brokers' host names, e.g. broker-$(nodeId).kafka.example.com")
		} else if err := checkPattern(s.Pattern); err != nil {
			p.Errorf(path+".pattern", "%v", err)
		}
		if ssl := r.Security.SSL; ssl == nil || ssl.Keystore == nil {
			p.Errorf(path+".type", "the host strategy tells brokers apart by the TLS server name (SNI) clients ask for: set security.ssl with a keystore")
		}
	default:
		p.Errorf(path+".type", "unknown strategy %q; use port or host", s.Type)
	}
}

// checkPattern checks a host strategy pattern: a host name holding
// $(nodeId) once, optionally with a port.
func checkPattern(pattern string) error {
	if n := strings.Count(pattern, nodeIDPlaceholder); n != 1 {
		return fmt.Errorf("%q must hold %s exactly once, where each broker's node id goes", pattern, nodeIDPlaceholder)
	}
	host := strings.Replace(pattern, nodeIDPlaceholder, "0", 1)
	if strings.Contains(host, ":") {
		h, _, err := splitHostPort(host)
		if err != nil {
			return fmt.Errorf("pattern %q: %w", pattern, err)
		}
		host = h
	}
	if strings.ContainsAny(host, "/*$() ") || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") {
		return fmt.Errorf("%q is not a host name pattern such as broker-$(nodeId).kafka.example.com", pattern)
	}
	return nil
}

// validateSSL checks the TLS settings of a route (server side) or of a
// bootstrap server (client side).
func (p *parser) validateSSL(s *SSL, path string, route bool) {
	if s.Keystore != nil {
		p.validateStore(s.Keystore, path+".keystore")
	}
	if s.Truststore != nil {
		p.validateStore(s.Truststore, path+".truststore")
	}
	if !route {
		if s.ClientAuth != "" {
			p.Errorf(path+".clientAuth", "clientAuth is for routes, whose clients the gateway authenticates; toward a cluster the gateway presents the keystore, if any")
		}
		return
	}
	if s.Keystore == nil {
		p.Errorf(path+".keystore", "missing; a route's TLS listener needs a keystore with its certificate and key")
	}
	if s.IgnoreTrust {
		p.Errorf(path+".ignoreTrust", "ignoreTrust is for bootstrap servers; on a route it would accept any client certificate: remove it")
	}
	switch s.ClientAuth {
	case "":
		s.ClientAuth = tlsconf.ClientAuthNone
	case tlsconf.ClientAuthNone:
	case tlsconf.ClientAuthRequired, tlsconf.ClientAuthRequested:
		if s.Truststore == nil {
			p.Errorf(path+".truststore", "missing; clientAuth %s checks client certificates against a truststore", s.ClientAuth)
		}
	default:
		p.Errorf(path+".clientAuth", "unknown clientAuth %q; use required, requested or none", s.ClientAuth)
	}
}

func (p *parser) validateStore(s *Store, path string) {
	switch t := strings.ToUpper(s.Type); t {
	case "":
		s.Type = tlsconf.JKS // Confluent's and Kafka's default
	case tlsconf.JKS, tlsconf.PKCS12, tlsconf.PEM:
		s.Type = t
	default:
		p.Errorf(path+".type", "unknown store type %q; use JKS, PKCS12 or PEM", s.Type)
	}
	if s.Location == "" {
		p.Errorf(path+".location", "missing; want the path of the store file")
	}
	if s.Type == tlsconf.PEM {
		if s.Password != nil {
			p.Errorf(path+".password", "a PEM store has no password; remove it")
		}
		if s.KeyPassword != nil {
			p.Errorf(path+".keyPassword", "Turnout reads unencrypted PEM keys only; decrypt the key (openssl pkcs8 -topk8 -nocrypt), keep the file readable by the gateway alone, and remove keyPassword")
		}
		return
	}
	if s.Password == nil {
		p.Errorf(path+".password", "missing; a %s store needs its password, from a file or a value", s.Type)
	} else {
		p.validatePassword(s.Password, path+".password")
	}
	if s.KeyPassword != nil {
		p.validatePassword(s.KeyPassword, path+".keyPassword")
	}
}

func (p *parser) validatePassword(pw *Password, path string) {
	switch {
	case pw.File == "" && pw.Value == "":
		p.Errorf(path, "want file (the path of a file holding the password) or value (the password itself)")
	case pw.File != "" && pw.Value != "":
		p.Errorf(path, "give file or value, not both")
	}
}

func (p *parser) validateSASL(s *SASL, path string) {
	if m, ok := saslMechanism(s.Mechanism); ok {
		s.Mechanism = m
	} else if s.Mechanism == "" {
		p.Errorf(path+".mechanism", "missing; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	} else {
		p.Errorf(path+".mechanism", "unknown mechanism %q; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
	}
	if s.Username == "" {
		p.Errorf(path+".username", "missing")
	}
	if !p.Has(path + ".password") {
		p.Errorf(path+".password", "missing; from a file or a value")
	} else {
		p.validatePassword(&s.Password, path+".password")
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
	// The files are read when the gateway starts, not here: agents read
	// this file too, on hosts that need not hold the gateway's secrets.
	if a.TokenFile == "" && !ctlsec.IsLoopback(a.BindAddress) {
		p.Errorf("admin.bindAddress", "%s is not a loopback address, so POST /restart needs a bearer token: set admin.tokenFile to a file holding it", a.BindAddress)
	}
	if (a.TLS.CertFile == "") != (a.TLS.KeyFile == "") {
		p.Errorf("admin.tls", "set both certFile and keyFile (PEM), or neither for plain HTTP")
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
		n := n
		if r.HostStrategy() {
			n = 0 // one port serves every broker
		}
		if int64(port)+n > maxPort {
			p.Errorf(path, "the route needs ports %d-%d, past %d: its bootstrap port and one per node id (%d across all streaming domains); lower the port or narrow nodeIdRanges",
				port, int64(port)+n, maxPort, n)
			continue
		}
		s := span{r, port, port + int(n)}
		for _, o := range spans {
			if s.lo <= o.hi && o.lo <= s.hi && sameListener(r.Bind, o.r.Bind) {
				p.Errorf(path, "port %d is used by both route %q and route %q (line %d); each route with the port strategy takes its bootstrap port and the next %d, one per node id",
					max(s.lo, o.lo), r.Name, o.r.Name, o.r.Line, g.nodeIDCount())
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
