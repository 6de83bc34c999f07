package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/clientopts"
	"github.com/turnout/turnout/proxy/config"
)

// Dialer opens network connections; tests give one agent a dialer that
// cannot reach a cluster, to make that agent alone blind.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// clusters holds one client per domain, shared by probes and lag checks, so
// that connections are reused from one probe to the next.
type clusters struct {
	servers map[string]*config.BootstrapServer // by domain
	dial    Dialer
	timeout time.Duration

	mu      sync.Mutex
	clients map[string]*kgo.Client
}

func (c *clusters) client(domain string) (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[domain]; ok {
		return cl, nil
	}
	opts, err := c.opts(domain)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.DialTimeout(c.timeout),
		kgo.RequestRetries(0),
		kgo.RetryTimeout(c.timeout),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.ProducerLinger(0),
		kgo.DisableIdempotentWrite(), // canaries need no producer id
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", domain, err)
	}
	c.clients[domain] = cl
	return cl, nil
}

// opts are the options of every agent client of domain's cluster: where it
// is, and its TLS and SASL, as the gateway reaches it.
func (c *clusters) opts(domain string) ([]kgo.Opt, error) {
	bs, ok := c.servers[domain]
	if !ok {
		return nil, fmt.Errorf("domain %s is not in the gateway configuration", domain)
	}
	var dial clientopts.DialFunc
	if c.dial != nil {
		dial = clientopts.DialFunc(c.dial)
	}
	return clientopts.Cluster(bs, dial), nil
}

func (c *clusters) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.clients {
		cl.Close()
	}
	c.clients = map[string]*kgo.Client{}
}

// prober probes domains and counts each one's consecutive failures.
type prober struct {
	agent    string
	policy   *policy.Policy
	clusters *clusters

	mu         sync.Mutex
	failures   map[string]int
	clusterIDs map[string]string // the last cluster id each domain answered with
}

// probe asks a domain for its metadata (and, if the policy names a canary
// topic, takes a write) within the policy's timeout.
func (p *prober) probe(ctx context.Context, domain string) policy.View {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.policy.Probe.Timeout)
	defer cancel()
	brokers, clusterID, err := p.check(ctx, domain)
	v := policy.View{
		Agent:         p.agent,
		Domain:        domain,
		Brokers:       brokers,
		LatencyMillis: time.Since(start).Milliseconds(),
		At:            time.Now(),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failures[domain]++
		v.Error = err.Error()
	} else {
		p.failures[domain] = 0
		v.Healthy = true
		p.clusterIDs[domain] = clusterID
	}
	v.ConsecutiveFailures = p.failures[domain]
	return v
}

func (p *prober) check(ctx context.Context, domain string) (int, string, error) {
	cl, err := p.clusters.client(domain)
	if err != nil {
		return 0, "", err
	}
	// Asked directly: kadm would answer from the client's metadata cache.
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	md, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, "", fmt.Errorf("metadata: %w", probeErr(ctx, err))
	}
	n, cluster := len(md.Brokers), ""
	if md.ClusterID != nil {
		cluster = *md.ClusterID
	}
	if n < p.policy.Health.MinBrokers {
		return n, cluster, fmt.Errorf("%d live brokers, the policy wants at least %d", n, p.policy.Health.MinBrokers)
	}
	if topic := p.policy.Probe.CanaryTopic; topic != "" {
		rec := &kgo.Record{Topic: topic, Key: []byte(p.agent), Value: []byte(strconv.FormatInt(time.Now().UnixMilli(), 10))}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return n, cluster, fmt.Errorf("canary produce to %s: %w", topic, probeErr(ctx, err))
		}
	}
	return n, cluster, nil
}

// probeErr names a timeout as one, rather than as whatever the client was
// doing when the deadline passed.
func probeErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within the probe timeout: %w", err)
	}
	return err
}

// clusterID is the id a domain last answered a probe with, or "".
func (p *prober) clusterID(domain string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clusterIDs[domain]
}
