package config

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"time"
)

// Domain returns the streaming domain called name, or nil.
func (g *Gateway) Domain(name string) *StreamingDomain {
	for i := range g.StreamingDomains {
		if g.StreamingDomains[i].Name == name {
			return &g.StreamingDomains[i]
		}
	}
	return nil
}

// Route returns the route called name, or nil.
func (g *Gateway) Route(name string) *Route {
	for i := range g.Routes {
		if g.Routes[i].Name == name {
			return &g.Routes[i]
		}
	}
	return nil
}

// BootstrapServer returns the bootstrap server with the given id, or nil.
func (d *StreamingDomain) BootstrapServer(id string) *BootstrapServer {
	for i := range d.KafkaCluster.BootstrapServers {
		if d.KafkaCluster.BootstrapServers[i].ID == id {
			return &d.KafkaCluster.BootstrapServers[i]
		}
	}
	return nil
}

// MaxFrameBytes is the largest request or response frame to accept.
func (g *Gateway) MaxFrameBytes() int32 {
	return cmp.Or(g.Limits.MaxFrameBytes, defaultMaxFrameBytes)
}

// DrainTimeout bounds how long a restart waits for in-flight responses.
func (g *Gateway) DrainTimeout() time.Duration {
	return durationOr(g.Limits.DrainTimeout, defaultDrainTimeout)
}

// UpstreamWait bounds how long a new client connection is held while its
// cluster cannot be reached.
func (g *Gateway) UpstreamWait() time.Duration {
	return durationOr(g.Limits.UpstreamWait, defaultUpstreamWait)
}

func durationOr(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil {
		return d
	}
	return def
}

// AdminAddr is the host:port the admin HTTP server listens on.
func (g *Gateway) AdminAddr() string {
	return net.JoinHostPort(cmp.Or(g.Admin.BindAddress, defaultAdminBind), strconv.Itoa(cmp.Or(g.Admin.Port, defaultAdminPort)))
}

// MetricsEnabled reports whether the admin server serves /metrics.
func (g *Gateway) MetricsEnabled() bool {
	return g.Admin.Endpoints.Metrics == nil || *g.Admin.Endpoints.Metrics
}

// AdvertisedHost is the host clients are told to connect to, for the
// bootstrap and every broker port alike.
func (r *Route) AdvertisedHost() string {
	host, _, _ := net.SplitHostPort(r.Endpoint)
	return host
}

// ListenHost is the host the route's listeners bind; empty means all
// interfaces.
func (r *Route) ListenHost() string { return r.Bind }

// PortPlan is the ports one route listens on.
type PortPlan struct {
	Bootstrap int
	Brokers   []BrokerPort // sorted by NodeID
}

// BrokerPort is the gateway port that stands for one broker.
type BrokerPort struct {
	NodeID int32
	Port   int
}

// PortPlan returns the ports of route r: its endpoint's port for bootstrap,
// then one port per node id of every streaming domain in the file, in node id
// order. Counting every domain, not only the route's, keeps each port
// meaning the same broker id when the route switches domains, so reconnecting
// clients find the ports they knew; and the plan depends only on the file, so
// it survives restarts. A route with the host strategy has the bootstrap
// port alone. g must be valid, as Parse returns it.
func (g *Gateway) PortPlan(r *Route) PortPlan {
	_, port, _ := splitHostPort(r.Endpoint)
	plan := PortPlan{Bootstrap: port}
	if r.HostStrategy() {
		return plan // the one port serves every broker
	}
	for _, s := range g.nodeIDSpans() {
		// Parse rejects plans past the last port; stopping there also keeps an
		// unvalidated Gateway from counting through 2^31 node ids.
		for id := int64(s.Start); id <= int64(s.End) && port < maxPort; id++ {
			port++
			plan.Brokers = append(plan.Brokers, BrokerPort{NodeID: int32(id), Port: port})
		}
	}
	return plan
}

// Port returns the port serving the broker with the given node id.
func (p PortPlan) Port(nodeID int32) (int, bool) {
	i, ok := slices.BinarySearchFunc(p.Brokers, nodeID, func(b BrokerPort, id int32) int { return cmp.Compare(b.NodeID, id) })
	if !ok {
		return 0, false
	}
	return p.Brokers[i].Port, true
}

// nodeIDSpans merges the node id ranges of all streaming domains into
// sorted, disjoint ranges.
func (g *Gateway) nodeIDSpans() []NodeIDRange {
	var all []NodeIDRange
	for _, d := range g.StreamingDomains {
		for _, r := range d.KafkaCluster.NodeIDRanges {
			if r.Start <= r.End {
				all = append(all, NodeIDRange{Start: r.Start, End: r.End})
			}
		}
	}
	slices.SortFunc(all, func(a, b NodeIDRange) int { return cmp.Compare(a.Start, b.Start) })
	var spans []NodeIDRange
	for _, r := range all {
		if n := len(spans); n > 0 && r.Start <= spans[n-1].End {
			spans[n-1].End = max(spans[n-1].End, r.End)
			continue
		}
		spans = append(spans, r)
	}
	return spans
}

// nodeIDCount is the number of broker ports each route needs.
func (g *Gateway) nodeIDCount() int64 {
	var n int64
	for _, s := range g.nodeIDSpans() {
		n += int64(s.End) - int64(s.Start) + 1
	}
	return n
}
