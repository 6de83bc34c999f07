package proxy

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metrics are the gateway's Prometheus metrics, on a registry of its own so
// that tests and embedders can run several gateways in one process.
type Metrics struct {
	Registry *prometheus.Registry

	connections     *prometheus.GaugeVec
	connectionsOpen *prometheus.CounterVec
	requests        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	bytesIn         *prometheus.CounterVec
	bytesOut        *prometheus.CounterVec
	dialErrors      *prometheus.CounterVec
	frameErrors     *prometheus.CounterVec
	unmapped        *prometheus.CounterVec
	unknownTopicIDs *prometheus.CounterVec
	restarts        *prometheus.CounterVec
	configEpoch     *prometheus.GaugeVec
	pauses          *prometheus.CounterVec
	produceHeld     *prometheus.CounterVec
	leaseLapses     *prometheus.CounterVec
	oldOffsets      *prometheus.CounterVec
	clusterLogins   *prometheus.CounterVec
	// epochsWriteErrors counts failed writes of NAME.epochs: while it
	// fails, a restarted process would not know what this one was told.
	epochsWriteErrors prometheus.Counter

	mu     sync.Mutex
	routes map[string]*routeMetrics
}

// NewMetrics registers the gateway's metrics and the Go runtime's.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{Registry: reg, routes: map[string]*routeMetrics{}}
	m.connections = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "turnout_gateway_connections", Help: "Client connections open, by route.",
	}, []string{"route"})
	m.connectionsOpen = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_connections_total", Help: "Client connections accepted, by route.",
	}, []string{"route"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_requests_total", Help: "Requests forwarded, by route and API.",
	}, []string{"route", "api"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "turnout_gateway_request_duration_seconds",
		Help:    "Time from a request's arrival to its response's delivery, by route and API.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
	}, []string{"route", "api"})
	m.bytesIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_received_bytes_total", Help: "Bytes received from clients, by route.",
	}, []string{"route"})
	m.bytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_sent_bytes_total", Help: "Bytes sent to clients, by route.",
	}, []string{"route"})
	m.dialErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_upstream_dial_errors_total", Help: "Failed connections to the cluster, by route.",
	}, []string{"route"})
	m.frameErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_frame_errors_total", Help: "Connections closed for a malformed or oversized frame, by route.",
	}, []string{"route"})
	m.unmapped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_unmapped_brokers_total", Help: "Brokers seen whose node id is outside nodeIdRanges, by route.",
	}, []string{"route"})
	m.unknownTopicIDs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_unknown_topic_ids_total", Help: "Topic ids the gateway could not translate, by route.",
	}, []string{"route"})
	m.restarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_restarts_total", Help: "Restarts (config reloads), by outcome.",
	}, []string{"outcome"})
	m.configEpoch = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "turnout_gateway_route_epoch", Help: "The route epoch being served, by route and domain.",
	}, []string{"route", "domain"})
	m.pauses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_produce_pauses_total", Help: "Produce pauses for planned switches, by route.",
	}, []string{"route"})
	m.produceHeld = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_produce_held_total", Help: "Produce requests held by a pause, a lapsed route lease or a fence, by route.",
	}, []string{"route"})
	m.leaseLapses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_lease_lapses_total", Help: "Route leases that lapsed unrenewed (the route's Produce requests are then held), by route.",
	}, []string{"route"})
	m.oldOffsets = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_old_offsets_refused_total",
		Help: "Partitions of Fetch and OffsetCommit requests the gateway refused because they carried the old cluster's offsets after a switch, by route and API.",
	}, []string{"route", "api"})
	m.clusterLogins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_gateway_cluster_logins_total",
		Help: "The gateway's own SASL logins to the cluster for swap clients, by route, kind (first, or again before the session lifetime ends) and outcome.",
	}, []string{"route", "kind", "outcome"})
	m.epochsWriteErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "turnout_gateway_epochs_write_errors_total",
		Help: "Failed writes of the gateway's fencing state file (NAME.epochs); each is retried at the next lease, fence or restart.",
	})
	for _, c := range []prometheus.Collector{m.epochsWriteErrors, m.connections, m.connectionsOpen, m.requests, m.latency, m.bytesIn,
		m.bytesOut, m.dialErrors, m.frameErrors, m.unmapped, m.unknownTopicIDs, m.restarts, m.configEpoch,
		m.pauses, m.produceHeld, m.leaseLapses, m.oldOffsets, m.clusterLogins} {
		f(c)
	}
	return m
}

// routeMetrics resolves a route's label values once, so the data path only
// touches atomics.
type routeMetrics struct {
	connections     prometheus.Gauge
	connectionsOpen prometheus.Counter
	bytesIn         prometheus.Counter
	bytesOut        prometheus.Counter
	dialErrors      prometheus.Counter
	frameErrors     prometheus.Counter
	unmapped        prometheus.Counter
	unknownTopicIDs prometheus.Counter
	pauses          prometheus.Counter
	produceHeld     prometheus.Counter
	leaseLapses     prometheus.Counter
	staleFetches    prometheus.Counter
	staleCommits    prometheus.Counter

	mu       sync.Mutex
	requests map[kmsg.Key]prometheus.Counter
	latency  map[kmsg.Key]prometheus.Observer

	route string
	m     *Metrics
}

func (m *Metrics) route(name string) *routeMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm, ok := m.routes[name]; ok {
		return rm
	}
	rm := &routeMetrics{
		connections:     m.connections.WithLabelValues(name),
		connectionsOpen: m.connectionsOpen.WithLabelValues(name),
		bytesIn:         m.bytesIn.WithLabelValues(name),
		bytesOut:        m.bytesOut.WithLabelValues(name),
		dialErrors:      m.dialErrors.WithLabelValues(name),
		frameErrors:     m.frameErrors.WithLabelValues(name),
		unmapped:        m.unmapped.WithLabelValues(name),
		unknownTopicIDs: m.unknownTopicIDs.WithLabelValues(name),
		pauses:          m.pauses.WithLabelValues(name),
		produceHeld:     m.produceHeld.WithLabelValues(name),
		leaseLapses:     m.leaseLapses.WithLabelValues(name),
		staleFetches:    m.oldOffsets.WithLabelValues(name, "Fetch"),
		staleCommits:    m.oldOffsets.WithLabelValues(name, "OffsetCommit"),
		requests:        map[kmsg.Key]prometheus.Counter{},
		latency:         map[kmsg.Key]prometheus.Observer{},
		route:           name,
		m:               m,
	}
	m.routes[name] = rm
	return rm
}

// api returns the per-API instruments for a key.
func (rm *routeMetrics) api(key kmsg.Key) (prometheus.Counter, prometheus.Observer) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	c, ok := rm.requests[key]
	if !ok {
		name := key.Name()
		if name == "" {
			name = "Unknown"
		}
		c = rm.m.requests.WithLabelValues(rm.route, name)
		rm.requests[key] = c
		rm.latency[key] = rm.m.latency.WithLabelValues(rm.route, name)
	}
	return c, rm.latency[key]
}

// clusterLogin counts one of the gateway's logins to the cluster for a swap
// client.
func (rm *routeMetrics) clusterLogin(again, ok bool) {
	kind, outcome := "first", "ok"
	if again {
		kind = "again"
	}
	if !ok {
		outcome = "failed"
	}
	rm.m.clusterLogins.WithLabelValues(rm.route, kind, outcome).Inc()
}
