package wire

import (
	"reflect"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Translator is what the gateway knows about the cluster behind a route: the
// addresses it advertises for brokers, and the stable topic ids and leader
// epochs it shows clients in place of the cluster's own.
//
// Topic ids and leader epochs are translated because the two clusters of a
// route give the same topic different ids and unrelated epochs. A client that
// crossed from one to the other would otherwise see its topic "recreated"
// (franz-go stalls on UNKNOWN_TOPIC_ID) or its metadata go back in time.
type Translator interface {
	// Advertise returns the gateway address clients use for a broker, and
	// false when the broker has no gateway port.
	Advertise(nodeID int32) (host string, port int32, ok bool)
	// LearnBroker records a broker's upstream address.
	LearnBroker(nodeID int32, host string, port int32)
	// LearnTopic records a topic's upstream id.
	LearnTopic(name string, upstreamID [16]byte)
	// ClientTopicID maps an upstream topic id to the one clients see.
	ClientTopicID(upstreamID [16]byte) [16]byte
	// UpstreamTopicID maps a client's topic id back; the zero id when the
	// topic is unknown, which the broker answers with UNKNOWN_TOPIC_ID.
	UpstreamTopicID(clientID [16]byte) [16]byte
	// EpochBase is added to every partition leader epoch clients see.
	EpochBase() int32
	// ClusterIDs are the cluster id clients see and the cluster's own, or
	// "" while it is not known. Clients that check it (KIP-1242) would
	// otherwise take a switched route for a misrouted connection.
	ClusterIDs() (client, upstream string)

	// LearnProducerID records a producer id the cluster issued.
	LearnProducerID(id int64)
	// MapsProducers is false when Producer would leave every batch alone.
	MapsProducers() bool
	// Producer maps the idempotent producer of a batch written for a
	// cluster that no longer serves the route, so that the new cluster,
	// which never heard of it, accepts its batches in sequence; ok is false
	// to leave the batch as it is.
	Producer(topic []byte, partition int32, p BatchProducer) (mapped BatchProducer, ok bool)
}

// BatchProducer is the idempotent producer state a record batch carries.
type BatchProducer struct {
	ID       int64
	Epoch    int16
	Sequence int32
}

// EpochShift sizes the room each route epoch gives upstream leader epochs:
// the base of route epoch n is n<<EpochShift, so epochs clients see only grow
// across switches as long as a partition's upstream epoch stays below 2^20
// and the route has switched fewer than 2048 times.
const EpochShift = 20

// EpochBase is the leader-epoch base for a route epoch.
func EpochBase(routeEpoch int32) int32 { return routeEpoch << EpochShift }

// ClientEpoch maps an upstream leader epoch to the one clients see. Negative
// epochs mean "unknown" and pass unchanged.
func ClientEpoch(e, base int32) int32 {
	if e < 0 {
		return e
	}
	return e + base
}

// UpstreamEpoch maps a client's leader epoch back. An epoch from before the
// last switch describes the other cluster; it becomes -1 (unknown), so the
// broker neither fences the client forever nor validates against history it
// never had.
func UpstreamEpoch(e, base int32) int32 {
	switch {
	case e < 0:
		return e
	case e < base:
		return -1
	default:
		return e - base
	}
}

type direction bool

const (
	toClient   direction = true
	toUpstream direction = false
)

// errCoordinatorNotAvailable makes a client retry FindCoordinator when the
// coordinator's node id has no gateway port.
var errCoordinatorNotAvailable = int64(kerr.CoordinatorNotAvailable.Code)

// epochKeys are the APIs whose LeaderEpoch-like fields are partition leader
// epochs. Elsewhere the same names mean controller-quorum epochs, which are
// not the route's to translate.
var epochKeys = map[kmsg.Key]bool{
	kmsg.Produce: true, kmsg.Fetch: true, kmsg.ListOffsets: true, kmsg.Metadata: true, kmsg.OffsetCommit: true,
	kmsg.OffsetFetch: true, kmsg.OffsetForLeaderEpoch: true, kmsg.TxnOffsetCommit: true,
	kmsg.DescribeTopicPartitions: true, kmsg.ShareFetch: true, kmsg.ShareAcknowledge: true, kmsg.DescribeShareGroupOffsets: true,
}

// clusterIDKeys are the APIs whose ClusterID is the cluster's identity as a
// client sees it: Metadata, ApiVersions and DescribeCluster. (Elsewhere it is
// controller-quorum business.)
var clusterIDKeys = map[kmsg.Key]bool{kmsg.Metadata: true, kmsg.ApiVersions: true, kmsg.DescribeCluster: true}

var epochFields = map[string]bool{
	"LeaderEpoch": true, "CurrentLeaderEpoch": true, "LastFetchedEpoch": true,
}

// plan lists, for one struct type, the fields the walker touches.
type plan struct {
	topicID   int // index of TopicID [16]byte, or -1
	topicName int // index of Topic (string or *string), or -1
	clusterID int // index of ClusterID (string or *string), or -1
	epochs    []int
	records   int // index of a []byte of record batches, or -1
	// endpoint fields: a struct describing a broker address.
	nodeID, host, port, errorCode int
	children                      []int // structs, slices and pointers that lead to something
}

func (p *plan) endpoint() bool { return p.nodeID >= 0 && p.host >= 0 && p.port >= 0 }

func (p *plan) empty() bool {
	return p.topicID < 0 && p.clusterID < 0 && len(p.epochs) == 0 && p.records < 0 && !p.endpoint() && len(p.children) == 0
}

var plans sync.Map // reflect.Type -> *plan

var (
	uuidType   = reflect.TypeFor[[16]byte]()
	int32Type  = reflect.TypeFor[int32]()
	stringType = reflect.TypeFor[string]()
	strPtrType = reflect.TypeFor[*string]()
	bytesType  = reflect.TypeFor[[]byte]()
)

func planFor(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	p := &plan{topicID: -1, topicName: -1, clusterID: -1, records: -1, nodeID: -1, host: -1, port: -1, errorCode: -1}
	// Store early so recursive types terminate.
	plans.Store(t, p)
	for i := range t.NumField() {
		f := t.Field(i)
		switch {
		case f.Name == "TopicID" && f.Type == uuidType:
			p.topicID = i
		case f.Name == "Topic" && (f.Type == stringType || f.Type == strPtrType):
			p.topicName = i
		case f.Name == "ClusterID" && (f.Type == stringType || f.Type == strPtrType):
			p.clusterID = i
		case f.Type == int32Type && (epochFields[f.Name] || f.Name == "Epoch" && isDivergingEpoch(t)):
			p.epochs = append(p.epochs, i)
		case f.Name == "NodeID" && f.Type == int32Type:
			p.nodeID = i
		case f.Name == "Host" && f.Type == stringType:
			p.host = i
		case f.Name == "Port" && f.Type == int32Type:
			p.port = i
		case f.Name == "ErrorCode":
			p.errorCode = i
		case (f.Name == "Records" || f.Name == "RecordBatches") && f.Type == bytesType:
			p.records = i
		default:
			if et := elemStruct(f.Type); et != nil && !planFor(et).empty() {
				p.children = append(p.children, i)
			}
		}
	}
	return p
}

func isDivergingEpoch(t reflect.Type) bool {
	n := t.Name()
	return len(n) > len("DivergingEpoch") && n[len(n)-len("DivergingEpoch"):] == "DivergingEpoch"
}

// elemStruct is the struct type reached through t, if any.
func elemStruct(t reflect.Type) reflect.Type {
	switch t.Kind() {
	case reflect.Struct:
		return t
	case reflect.Slice, reflect.Pointer:
		if e := t.Elem(); e.Kind() == reflect.Struct {
			return e
		}
	}
	return nil
}

// needs reports which kinds of translation a message type can need.
func needs(msg any) (topicIDs, epochs, endpoints, clusterID bool) {
	var visit func(t reflect.Type, seen map[reflect.Type]bool)
	visit = func(t reflect.Type, seen map[reflect.Type]bool) {
		if seen[t] {
			return
		}
		seen[t] = true
		p := planFor(t)
		topicIDs = topicIDs || p.topicID >= 0
		epochs = epochs || len(p.epochs) > 0 || p.records >= 0
		endpoints = endpoints || p.endpoint()
		clusterID = clusterID || p.clusterID >= 0
		for _, i := range p.children {
			visit(elemStruct(t.Field(i).Type), seen)
		}
	}
	visit(reflect.TypeOf(msg).Elem(), map[reflect.Type]bool{})
	return
}

// walker applies a translation to a decoded kmsg message.
type walker struct {
	t      Translator
	dir    direction
	epochs bool // translate leader epochs
	base   int32
	// endpointsOnly is set when ids and epochs were already patched in place.
	endpointsOnly bool
	clusterIDs    bool // translate ClusterID fields
}

func (w *walker) walk(v reflect.Value) {
	p := planFor(v.Type())
	if p.empty() {
		return
	}
	if p.topicID >= 0 && !w.endpointsOnly {
		id := v.Field(p.topicID)
		cur := id.Interface().([16]byte)
		if w.dir == toClient && p.topicName >= 0 && cur != ([16]byte{}) {
			if name := topicName(v.Field(p.topicName)); name != "" {
				w.t.LearnTopic(name, cur)
			}
		}
		if cur != ([16]byte{}) {
			if w.dir == toClient {
				id.Set(reflect.ValueOf(w.t.ClientTopicID(cur)))
			} else {
				id.Set(reflect.ValueOf(w.t.UpstreamTopicID(cur)))
			}
		}
	}
	if w.clusterIDs && p.clusterID >= 0 {
		w.clusterID(v.Field(p.clusterID))
	}
	if w.epochs && !w.endpointsOnly && p.records >= 0 && w.dir == toClient {
		patchBatchEpochs(v.Field(p.records).Bytes(), w.base)
	}
	if w.epochs && !w.endpointsOnly {
		for _, i := range p.epochs {
			f := v.Field(i)
			e := int32(f.Int())
			if w.dir == toClient {
				f.SetInt(int64(ClientEpoch(e, w.base)))
			} else {
				f.SetInt(int64(UpstreamEpoch(e, w.base)))
			}
		}
	}
	if p.endpoint() && w.dir == toClient {
		w.endpoint(v, p)
	}
	for _, i := range p.children {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Struct:
			w.walk(f)
		case reflect.Pointer:
			if !f.IsNil() {
				w.walk(f.Elem())
			}
		case reflect.Slice:
			ep := planFor(f.Type().Elem())
			if ep.endpoint() && ep.errorCode < 0 && w.dir == toClient {
				w.brokers(f, ep)
				continue
			}
			for j := range f.Len() {
				w.walk(f.Index(j))
			}
		}
	}
}

// clusterID swaps the cluster's id for the route's, and back. A client id
// that is not the route's is left alone, so the broker rejects a connection
// that really is misrouted; an unknown upstream id clears the field.
func (w *walker) clusterID(f reflect.Value) {
	client, upstream := w.t.ClusterIDs()
	from, to := upstream, client
	if w.dir == toUpstream {
		from, to = client, upstream
	}
	if f.Kind() == reflect.String {
		if f.String() != "" && (f.String() == from || w.dir == toClient) {
			f.SetString(to)
		}
		return
	}
	if f.IsNil() || (*f.Interface().(*string) != from && w.dir == toUpstream) {
		return
	}
	if to == "" {
		f.SetZero()
		return
	}
	f.Set(reflect.ValueOf(&to))
}

func topicName(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	return v.String()
}

// endpoint rewrites one coordinator-like address; one without a gateway port
// becomes a retriable error rather than an address the client cannot reach.
func (w *walker) endpoint(v reflect.Value, p *plan) {
	// No host: an error, or fields a newer version no longer sends (as
	// FindCoordinator's single coordinator from v4 on).
	if (p.errorCode >= 0 && v.Field(p.errorCode).Int() != 0) || v.Field(p.host).String() == "" {
		return
	}
	node := int32(v.Field(p.nodeID).Int())
	if node < 0 {
		return
	}
	w.t.LearnBroker(node, v.Field(p.host).String(), int32(v.Field(p.port).Int()))
	host, port, ok := w.t.Advertise(node)
	if !ok {
		if p.errorCode >= 0 {
			v.Field(p.errorCode).SetInt(errCoordinatorNotAvailable)
			v.Field(p.nodeID).SetInt(-1)
		}
		host, port = "", -1
	}
	v.Field(p.host).SetString(host)
	v.Field(p.port).SetInt(int64(port))
}

// brokers rewrites a broker list, dropping brokers with no gateway port: a
// client must never learn an address that bypasses the gateway.
func (w *walker) brokers(s reflect.Value, p *plan) {
	n := 0
	for j := range s.Len() {
		b := s.Index(j)
		node := int32(b.Field(p.nodeID).Int())
		w.t.LearnBroker(node, b.Field(p.host).String(), int32(b.Field(p.port).Int()))
		host, port, ok := w.t.Advertise(node)
		if !ok {
			continue
		}
		b.Field(p.host).SetString(host)
		b.Field(p.port).SetInt(int64(port))
		if n != j {
			s.Index(n).Set(b)
		}
		n++
	}
	s.SetLen(n)
}

// keySet says, per API key, whether its requests and responses can carry
// anything the gateway translates.
type keyNeeds struct {
	reqTopicIDs, reqEpochs, reqClusterID    bool
	respTopicIDs, respEpochs, respClusterID bool
	respEndpoints                           bool
}

var keyTable = func() map[kmsg.Key]keyNeeds {
	m := map[kmsg.Key]keyNeeds{}
	for k := kmsg.Key(0); int(k) < len(flexibleFrom); k++ {
		req := k.Request()
		if req == nil {
			continue
		}
		var n keyNeeds
		n.reqTopicIDs, n.reqEpochs, _, n.reqClusterID = needs(req)
		n.respTopicIDs, n.respEpochs, n.respEndpoints, n.respClusterID = needs(req.ResponseKind())
		n.reqEpochs = n.reqEpochs && epochKeys[k]
		n.respEpochs = n.respEpochs && epochKeys[k]
		n.reqClusterID = n.reqClusterID && clusterIDKeys[k]
		n.respClusterID = n.respClusterID && clusterIDKeys[k]
		if n != (keyNeeds{}) {
			m[k] = n
		}
	}
	return m
}()

// Rewrites reports whether the gateway may need to decode the key's requests
// or responses, and so must cap its versions to what it can parse.
func Rewrites(key kmsg.Key) bool {
	_, ok := keyTable[key]
	return ok || key == kmsg.ApiVersions || key == kmsg.InitProducerID
}
