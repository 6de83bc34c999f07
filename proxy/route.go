package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/clientopts"
	"github.com/turnout/turnout/proxy/config"
	"github.com/turnout/turnout/proxy/wire"
)

// Route is a route as served: its configuration and what the gateway has
// learned of the cluster behind it. A restart that switches the route's
// domain builds a new Route; connections keep the Route they started with.
type Route struct {
	Name              string
	Endpoint          string
	Domain            string
	BootstrapServerID string
	Epoch             int32
	Auth              string // passthrough or swap

	// swap is the route's users and secret store under auth swap, nil
	// otherwise; a restart that keeps the route reloads them.
	swap atomic.Pointer[swapAuth]

	// resync holds the fetches of consumers that crossed the switch to
	// this route until they fetched their committed offsets; nil when the
	// route did not switch clusters.
	resync *resyncGate
	// pause holds Produce requests while the agents prepare a planned
	// switch away from this route's cluster.
	pause producePause
	// fence is shared by the Routes that serve this route one after
	// another: what the agents said about its epochs (lease.go).
	fence *routeFence

	plan      config.PortPlan
	host      string   // advertised to clients
	bootstrap []string // upstream bootstrap servers
	// conf is the route's configuration; with the host strategy it names
	// the brokers.
	conf     *config.Route
	upstream *config.BootstrapServer
	dialTLS  *tls.Config // nil for plaintext to the cluster
	base     int32
	log      *slog.Logger
	metrics  *routeMetrics
	client   *kgo.Client // the gateway's own metadata requests

	refreshMu   sync.Mutex // one metadata refresh at a time
	lastRefresh time.Time

	// foreign holds the producer ids issued by the clusters that served
	// the route before; read-only once the route is built.
	foreign map[int64]bool
	pmu     sync.Mutex
	issued  map[int64]bool // producer ids this cluster issued
	mapped  map[producerKey]*mappedProducer

	mu         sync.RWMutex
	clusterID  string
	brokers    map[int32]string // node id -> upstream host:port
	unmapped   map[int32]bool   // node ids already reported as outside the ranges
	byUpstream map[[16]byte]string
	byClient   map[[16]byte]string
	upstreamID map[string][16]byte
}

// maxIssuedProducers bounds the producer ids a route remembers for the next.
const maxIssuedProducers = 100_000

func newRoute(g *config.Gateway, rc *config.Route, prev *Route, sw *swapAuth, fs fenceStart, log *slog.Logger, m *routeMetrics) (*Route, error) {
	d := g.Domain(rc.StreamingDomain.Name)
	bs := d.BootstrapServer(rc.StreamingDomain.BootstrapServerID)
	r := &Route{
		Name:              rc.Name,
		Endpoint:          rc.Endpoint,
		Domain:            d.Name,
		BootstrapServerID: bs.ID,
		Epoch:             rc.Epoch,
		Auth:              rc.Security.Auth,
		plan:              g.PortPlan(rc),
		host:              rc.AdvertisedHost(),
		bootstrap:         bs.Hosts(),
		conf:              rc,
		upstream:          bs,
		dialTLS:           bs.SSL.TLS(),
		base:              wire.EpochBase(rc.Epoch),
		log:               log.With("route", rc.Name, "domain", d.Name),
		metrics:           m,
		brokers:           map[int32]string{},
		unmapped:          map[int32]bool{},
		byUpstream:        map[[16]byte]string{},
		byClient:          map[[16]byte]string{},
		upstreamID:        map[string][16]byte{},
		foreign:           map[int64]bool{},
		issued:            map[int64]bool{},
		mapped:            map[producerKey]*mappedProducer{},
	}
	r.swap.Store(sw)
	if prev != nil {
		r.fence = prev.fence
	} else {
		r.fence = newRouteFence(m, log.With("route", rc.Name), fs)
	}
	if prev != nil && prev.Domain != d.Name {
		prev.pmu.Lock()
		for id := range prev.issued {
			r.foreign[id] = true
		}
		prev.pmu.Unlock()
		for id := range prev.foreign {
			r.foreign[id] = true
		}
	}
	cl, err := kgo.NewClient(append(clientopts.Cluster(bs, nil),
		kgo.DialTimeout(5*time.Second),
		kgo.RequestRetries(1),
	)...)
	if err != nil {
		return nil, fmt.Errorf("route %s: metadata client for %s: %w", rc.Name, d.Name, err)
	}
	r.client = cl
	return r, nil
}

func (r *Route) close() { r.client.Close() }

// ClusterID is the id of the cluster behind the route, once known.
func (r *Route) ClusterID() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.clusterID
}

// refresh asks the cluster for its brokers and topics. Misses on the data path
// call it, so it is rate limited: a burst of misses costs one request.
func (r *Route) refresh(ctx context.Context) error {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	if time.Since(r.lastRefresh) < 250*time.Millisecond {
		return nil
	}
	r.lastRefresh = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = nil // all topics
	resp, err := req.RequestWith(ctx, r.client)
	if err != nil {
		return fmt.Errorf("metadata from %s (%v): %w", r.Domain, r.bootstrap, err)
	}
	for _, b := range resp.Brokers {
		r.LearnBroker(b.NodeID, b.Host, b.Port)
	}
	for _, t := range resp.Topics {
		if t.Topic != nil && t.TopicID != ([16]byte{}) {
			r.LearnTopic(*t.Topic, t.TopicID)
		}
	}
	if resp.ClusterID != nil {
		r.mu.Lock()
		r.clusterID = *resp.ClusterID
		r.mu.Unlock()
	}
	return nil
}

// upstreamAddr is where a client connection to port should go: any
// bootstrap server for the route port, the broker itself for a broker port.
func (r *Route) upstreamAddrs(ctx context.Context, node int32, bootstrap bool) ([]string, error) {
	if bootstrap {
		return r.bootstrap, nil
	}
	r.mu.RLock()
	addr, ok := r.brokers[node]
	r.mu.RUnlock()
	if !ok {
		// A client that reconnects to a broker port right after a restart
		// arrives before anyone asked for metadata: learn it now.
		if err := r.refresh(ctx); err != nil {
			return nil, err
		}
		r.mu.RLock()
		addr, ok = r.brokers[node]
		r.mu.RUnlock()
	}
	if !ok {
		return nil, fmt.Errorf("cluster behind domain %s has no broker with node id %d", r.Domain, node)
	}
	return []string{addr}, nil
}

// Advertise implements wire.Translator.
func (r *Route) Advertise(node int32) (string, int32, bool) {
	if r.conf.HostStrategy() {
		host, port := r.conf.BrokerAddress(node)
		return host, int32(port), true
	}
	if port, ok := r.plan.Port(node); ok {
		return r.host, int32(port), true
	}
	r.mu.Lock()
	first := !r.unmapped[node]
	r.unmapped[node] = true
	r.mu.Unlock()
	if first {
		r.metrics.unmapped.Inc()
		r.log.Error("broker node id is outside every nodeIdRanges entry; clients will not be told about it",
			"node_id", node, "mapped_node_ids", mappedNodes(r.plan))
	}
	return "", 0, false
}

// LearnBroker implements wire.Translator.
func (r *Route) LearnBroker(node int32, host string, port int32) {
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	r.mu.RLock()
	same := r.brokers[node] == addr
	r.mu.RUnlock()
	if same {
		return
	}
	r.mu.Lock()
	r.brokers[node] = addr
	r.mu.Unlock()
}

// LearnTopic implements wire.Translator.
func (r *Route) LearnTopic(name string, upstream [16]byte) {
	r.mu.RLock()
	same := r.upstreamID[name] == upstream
	r.mu.RUnlock()
	if same {
		return
	}
	client := StableTopicID(r.Name, name)
	r.mu.Lock()
	if old, ok := r.upstreamID[name]; ok {
		delete(r.byUpstream, old) // the topic was deleted and recreated
	}
	r.upstreamID[name] = upstream
	r.byUpstream[upstream] = name
	r.byClient[client] = name
	r.mu.Unlock()
}

// ClientTopicID implements wire.Translator.
func (r *Route) ClientTopicID(upstream [16]byte) [16]byte {
	name, ok := r.topicName(r.byUpstream, upstream)
	if !ok {
		return [16]byte{}
	}
	return StableTopicID(r.Name, name)
}

// UpstreamTopicID implements wire.Translator.
func (r *Route) UpstreamTopicID(client [16]byte) [16]byte {
	name, ok := r.topicName(r.byClient, client)
	if !ok {
		return [16]byte{}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.upstreamID[name]
}

// topicName looks an id up, refreshing metadata once on a miss: a client may
// name a topic it learned before a restart, or the cluster may have created
// one since.
func (r *Route) topicName(m map[[16]byte]string, id [16]byte) (string, bool) {
	r.mu.RLock()
	name, ok := m[id]
	r.mu.RUnlock()
	if ok {
		return name, true
	}
	if err := r.refresh(context.Background()); err != nil {
		r.log.Warn("topic id unknown and metadata refresh failed", "err", err)
		return "", false
	}
	r.mu.RLock()
	name, ok = m[id]
	r.mu.RUnlock()
	if !ok {
		r.metrics.unknownTopicIDs.Inc()
	}
	return name, ok
}

// ClusterIDs implements wire.Translator.
func (r *Route) ClusterIDs() (client, upstream string) {
	return StableClusterID(r.Name), r.ClusterID()
}

// EpochBase implements wire.Translator.
func (r *Route) EpochBase() int32 { return r.base }

// StableClusterID is the cluster id clients see on a route, whichever
// cluster serves it: to a client the route is one cluster.
func StableClusterID(route string) string {
	sum := sha256.Sum256([]byte("turnout cluster id\x00" + route))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// StableTopicID is the topic id clients see for a topic on a route: derived
// from the names alone, so it is the same on every gateway, across restarts,
// and whichever cluster serves the route.
func StableTopicID(route, topic string) [16]byte {
	sum := sha256.Sum256([]byte("turnout topic id\x00" + route + "\x00" + topic))
	var id [16]byte
	copy(id[:], sum[:])
	id[6] = id[6]&0x0f | 0x80 // RFC 9562 version 8: custom
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	// Kafka never issues ids whose base64 form starts with '-', and the
	// first byte below 0x80 guarantees that.
	id[0] &= 0x7f
	return id
}

func mappedNodes(p config.PortPlan) []int32 {
	ids := make([]int32, len(p.Brokers))
	for i, b := range p.Brokers {
		ids[i] = b.NodeID
	}
	return ids
}

// An idempotent producer keeps its producer id across a switch, and the new
// cluster has never heard of it: franz-go and the Java client then fail the
// batch, reset their producer state and refresh metadata, which the client's
// metadata back-off can hold up for seconds. The gateway instead gives each
// producer that crossed a switch a producer id of the new cluster and numbers
// its batches from zero per partition, so the producer never notices.
// Duplicate detection holds on the new cluster from the first mapped batch.

type producerKey struct {
	id    int64
	epoch int16
}

type mappedProducer struct {
	to wire.BatchProducer
	// base is the client's first sequence per topic and partition.
	base map[string]map[int32]int32
}

// LearnProducerID implements wire.Translator.
func (r *Route) LearnProducerID(id int64) {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	if len(r.issued) < maxIssuedProducers {
		r.issued[id] = true
	}
}

// MapsProducers implements wire.Translator.
func (r *Route) MapsProducers() bool { return len(r.foreign) > 0 }

// Producer implements wire.Translator.
func (r *Route) Producer(topic []byte, partition int32, p wire.BatchProducer) (wire.BatchProducer, bool) {
	if !r.foreign[p.ID] {
		return p, false
	}
	key := producerKey{p.ID, p.Epoch}
	// Held across the InitProducerID request, once per crossed producer,
	// so that concurrent connections of one producer agree on its new id.
	r.pmu.Lock()
	defer r.pmu.Unlock()
	// Clusters number producers alike, from 0: an id this cluster issued
	// belongs to one of its own producers, even if the old cluster issued
	// it too. A producer that crossed with that id is not mapped; it gets
	// OUT_OF_ORDER_SEQUENCE_NUMBER and resets itself, as without a gateway.
	if r.issued[p.ID] {
		return p, false
	}
	m := r.mapped[key]
	if m == nil {
		to, err := r.newProducerID()
		if err != nil {
			r.log.Warn("cannot map a producer that crossed the switch; it will reset itself", "producer_id", p.ID, "err", err)
			return p, false
		}
		m = &mappedProducer{to: to, base: map[string]map[int32]int32{}}
		r.mapped[key] = m
		r.log.Info("idempotent producer crossed the switch; mapped to a producer id of the new cluster",
			"producer_id", p.ID, "producer_epoch", p.Epoch, "mapped_id", to.ID, "mapped_epoch", to.Epoch)
	}
	parts := m.base[string(topic)]
	if parts == nil {
		parts = map[int32]int32{}
		m.base[string(topic)] = parts
	}
	base, ok := parts[partition]
	if !ok {
		base = p.Sequence
		parts[partition] = base
	}
	seq := int64(p.Sequence) - int64(base)
	if seq < 0 { // sequences wrap from MaxInt32 to 0
		seq += 1 << 31
	}
	return wire.BatchProducer{ID: m.to.ID, Epoch: m.to.Epoch, Sequence: int32(seq)}, true
}

func (r *Route) newProducerID() (wire.BatchProducer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	resp, err := req.RequestWith(ctx, r.client)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		return wire.BatchProducer{}, fmt.Errorf("InitProducerID on %s: %w", r.Domain, err)
	}
	return wire.BatchProducer{ID: resp.ProducerID, Epoch: resp.ProducerEpoch}, nil
}
