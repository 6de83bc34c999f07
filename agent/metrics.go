package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/turnout/turnout/policy"
)

// metrics are the agent's Prometheus metrics, on a registry of its own so
// that tests can run several agents in one process.
type metrics struct {
	registry *prometheus.Registry

	healthy       *prometheus.GaugeVec
	probeDuration *prometheus.HistogramVec
	probeFailures *prometheus.CounterVec
	lag           *prometheus.GaugeVec
	failovers     *prometheus.CounterVec
	isLeader      prometheus.Gauge
	term          prometheus.Gauge
	steps         *prometheus.HistogramVec
	// reportsRefused counts the followers' reports the leader did not
	// commit, by why.
	reportsRefused *prometheus.CounterVec
}

func newMetrics(agent string) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	constLabels := prometheus.Labels{"agent": agent}
	m := &metrics{registry: reg}
	m.healthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "turnout_agent_domain_healthy", Help: "1 if this agent's last probe of the domain succeeded.", ConstLabels: constLabels,
	}, []string{"domain"})
	m.probeDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "turnout_agent_probe_duration_seconds", Help: "How long probes of a domain took.", ConstLabels: constLabels,
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	}, []string{"domain"})
	m.probeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_agent_probe_failures_total", Help: "Failed probes of a domain.", ConstLabels: constLabels,
	}, []string{"domain"})
	m.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "turnout_agent_replication_lag_records", Help: "Records the route's other domain lacks, as this agent measured it.", ConstLabels: constLabels,
	}, []string{"route"})
	m.failovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_agent_failovers_total", Help: "Failovers carried out by this agent as leader, by outcome and trigger.", ConstLabels: constLabels,
	}, []string{"route", "outcome", "trigger"})
	m.isLeader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "turnout_agent_raft_leader", Help: "1 while this agent leads the Raft group.", ConstLabels: constLabels,
	})
	m.term = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "turnout_agent_raft_term", Help: "The Raft term this agent is in.", ConstLabels: constLabels,
	})
	m.steps = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "turnout_agent_runbook_step_duration_seconds", Help: "How long each failover step took: commit, config, gateway.", ConstLabels: constLabels,
		Buckets: prometheus.ExponentialBuckets(0.001, 3, 12),
	}, []string{"step"})
	m.reportsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "turnout_agent_reports_refused_total", Help: "Reports other agents handed this agent as leader that it refused, by reason.", ConstLabels: constLabels,
	}, []string{"reason"})
	reg.MustRegister(m.healthy, m.probeDuration, m.probeFailures, m.lag, m.failovers, m.isLeader, m.term, m.steps, m.reportsRefused)
	return m
}

func (m *metrics) observeProbe(v policy.View) {
	m.probeDuration.WithLabelValues(v.Domain).Observe(float64(v.LatencyMillis) / 1000)
	if v.Healthy {
		m.healthy.WithLabelValues(v.Domain).Set(1)
	} else {
		m.healthy.WithLabelValues(v.Domain).Set(0)
		m.probeFailures.WithLabelValues(v.Domain).Inc()
	}
}

func (m *metrics) leader(leading bool, term uint64) {
	if leading {
		m.isLeader.Set(1)
	} else {
		m.isLeader.Set(0)
	}
	m.term.Set(float64(term))
}

func (m *metrics) step(name string, d time.Duration) {
	m.steps.WithLabelValues(name).Observe(d.Seconds())
}
