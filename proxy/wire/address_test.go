package wire_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// endpoint is the comparable part of a broker address in any response.
type endpoint struct {
	Node int32
	Host string
	Port int32
	Rack string
}

func rack(r *string) string {
	if r == nil {
		return "<nil>"
	}
	return *r
}

// Upstream brokers used by every address test: two with gateway ports and
// node 42, which has none and must never reach a client.
type upstreamBroker struct {
	Node int32
	Host string
	Port int32
	Rack *string
}

var upstreamBrokers = []upstreamBroker{
	{1, "b1.upstream", 9092, strp("r1")},
	{42, "b42.upstream", 9094, nil},
	{3, "b3.upstream", 9093, strp("r3")},
}

// wantEndpoints is the broker list a client must see: node 42 dropped, the
// others at the gateway, racks kept (when the version carries them).
func wantEndpoints(withRack bool) []endpoint {
	r := func(s string) string {
		if withRack {
			return s
		}
		return "<nil>"
	}
	return []endpoint{{1, gwHost, 20001, r("r1")}, {3, gwHost, 20003, r("r3")}}
}

// checkLearnedUpstream asserts every upstream broker was learned with its
// upstream address.
func checkLearnedUpstream(t *testing.T, tr *fakeTranslator) {
	t.Helper()
	for _, b := range upstreamBrokers {
		if !tr.learned(b.Node, b.Host, b.Port) {
			t.Errorf("LearnBroker(%d, %q, %d) was not called; calls: %v", b.Node, b.Host, b.Port, tr.brokers)
		}
	}
}

func TestMetadataResponseEveryVersion(t *testing.T) {
	for v := int16(0); v <= new(kmsg.MetadataResponse).MaxVersion(); v++ {
		for _, base := range testBases {
			t.Run(fmt.Sprintf("v%d/base=%d", v, base), func(t *testing.T) {
				tr := newFake(base)
				resp := kmsg.NewPtrMetadataResponse()
				for _, b := range upstreamBrokers {
					resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: b.Node, Host: b.Host, Port: b.Port, Rack: b.Rack})
				}
				resp.ClusterID = strp(upstreamCluster)
				resp.ControllerID = 3
				topic := func(name string, id [16]byte, epochs ...int32) kmsg.MetadataResponseTopic {
					tp := kmsg.NewMetadataResponseTopic()
					tp.Topic, tp.TopicID = strp(name), id
					for i, e := range epochs {
						p := kmsg.NewMetadataResponseTopicPartition()
						p.Partition, p.Leader, p.LeaderEpoch = int32(i), 1, e
						p.Replicas, p.ISR = []int32{1, 3}, []int32{1}
						tp.Partitions = append(tp.Partitions, p)
					}
					return tp
				}
				errored := topic("errored", [16]byte{})
				errored.ErrorCode = 3
				resp.Topics = []kmsg.MetadataResponseTopic{
					topic("orders", upA, 7, -1, 0),
					topic("payments", upB, 1<<19),
					topic("mystery", upUnknown, 2),
					errored,
				}
				frame := encodeResponse(resp, v)

				out, _ := rewriteResponse(t, kmsg.Metadata, v, frame, tr)
				got := kmsg.NewPtrMetadataResponse()
				decodeResponse(t, out, got, v)

				var eps []endpoint
				for _, b := range got.Brokers {
					eps = append(eps, endpoint{b.NodeID, b.Host, b.Port, rack(b.Rack)})
				}
				if want := wantEndpoints(v >= 1); !reflect.DeepEqual(eps, want) {
					t.Errorf("brokers %v, want %v", eps, want)
				}
				checkLearnedUpstream(t, tr)
				if v >= 1 && got.ControllerID != 3 {
					t.Errorf("ControllerID %d, want 3", got.ControllerID)
				}
				if v >= 2 && rack(got.ClusterID) != routeCluster {
					t.Errorf("ClusterID %q, want the route's %q", rack(got.ClusterID), routeCluster)
				}

				wantIDs := [][16]byte{{}, {}, {}, {}}
				var wantLearned []learnedTopic
				if v >= 10 {
					wantIDs = [][16]byte{cliA, cliB, {}, {}}
					wantLearned = []learnedTopic{{"orders", upA}, {"payments", upB}, {"mystery", upUnknown}}
				}
				for i, tp := range got.Topics {
					if tp.TopicID != wantIDs[i] {
						t.Errorf("topic %s: id %x, want %x", rack(tp.Topic), tp.TopicID, wantIDs[i])
					}
				}
				if !reflect.DeepEqual(tr.topics, wantLearned) {
					t.Errorf("LearnTopic calls %v, want %v", tr.topics, wantLearned)
				}

				wantEpochs := [][]int32{{7, -1, 0}, {1 << 19}, {2}, nil}
				for i, tp := range got.Topics {
					var es []int32
					for _, p := range tp.Partitions {
						es = append(es, p.LeaderEpoch)
						if p.Leader != 1 {
							t.Errorf("leader %d changed", p.Leader)
						}
					}
					want := append([]int32(nil), wantEpochs[i]...)
					for j := range want {
						switch {
						case v < 7:
							want[j] = -1 // not on the wire: kmsg's default
						default:
							want[j] = toClientEpoch(want[j], base)
						}
					}
					if !reflect.DeepEqual(es, want) {
						t.Errorf("topic %s: leader epochs %v, want %v", rack(tp.Topic), es, want)
					}
				}
			})
		}
	}
}

func TestFindCoordinatorResponseEveryVersion(t *testing.T) {
	type coord struct {
		Node    int32
		Host    string
		Port    int32
		ErrCode int16
	}
	cases := []struct {
		name string
		in   coord
		want coord
	}{
		{"reachable", coord{1, "b1.upstream", 9092, 0}, coord{1, gwHost, 20001, 0}},
		{"no gateway port", coord{42, "b42.upstream", 9094, 0}, coord{-1, "", -1, 15}},
		{"error left alone", coord{-1, "", -1, 15}, coord{-1, "", -1, 15}},
		{"other error left alone", coord{5, "b5.upstream", 9095, 16}, coord{5, "b5.upstream", 9095, 16}},
	}
	for v := int16(0); v <= new(kmsg.FindCoordinatorResponse).MaxVersion(); v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			if v < 4 {
				for _, c := range cases {
					t.Run(c.name, func(t *testing.T) {
						tr := newFake(0)
						resp := kmsg.NewPtrFindCoordinatorResponse()
						resp.NodeID, resp.Host, resp.Port, resp.ErrorCode = c.in.Node, c.in.Host, c.in.Port, c.in.ErrCode
						out, _ := rewriteResponse(t, kmsg.FindCoordinator, v, encodeResponse(resp, v), tr)
						got := kmsg.NewPtrFindCoordinatorResponse()
						decodeResponse(t, out, got, v)
						if g := (coord{got.NodeID, got.Host, got.Port, got.ErrorCode}); g != c.want {
							t.Errorf("coordinator %+v, want %+v", g, c.want)
						}
						checkCoordinatorLearned(t, tr, c.in.Node, c.in.Host, c.in.Port, c.in.ErrCode)
					})
				}
				return
			}
			tr := newFake(base3)
			resp := kmsg.NewPtrFindCoordinatorResponse()
			for i, c := range cases {
				resp.Coordinators = append(resp.Coordinators, kmsg.FindCoordinatorResponseCoordinator{
					Key: fmt.Sprintf("group-%d", i), NodeID: c.in.Node, Host: c.in.Host, Port: c.in.Port, ErrorCode: c.in.ErrCode,
				})
			}
			out, _ := rewriteResponse(t, kmsg.FindCoordinator, v, encodeResponse(resp, v), tr)
			got := kmsg.NewPtrFindCoordinatorResponse()
			decodeResponse(t, out, got, v)
			if len(got.Coordinators) != len(cases) {
				t.Fatalf("%d coordinators, want %d", len(got.Coordinators), len(cases))
			}
			for i, c := range cases {
				g := got.Coordinators[i]
				if g.Key != fmt.Sprintf("group-%d", i) {
					t.Errorf("%s: key %q", c.name, g.Key)
				}
				if g := (coord{g.NodeID, g.Host, g.Port, g.ErrorCode}); g != c.want {
					t.Errorf("%s: coordinator %+v, want %+v", c.name, g, c.want)
				}
				checkCoordinatorLearned(t, tr, c.in.Node, c.in.Host, c.in.Port, c.in.ErrCode)
			}
		})
	}
}

// checkCoordinatorLearned: a coordinator without error is learned at its
// upstream address; an error response teaches nothing.
func checkCoordinatorLearned(t *testing.T, tr *fakeTranslator, node int32, host string, port int32, errCode int16) {
	t.Helper()
	if errCode == 0 && !tr.learned(node, host, port) {
		t.Errorf("LearnBroker(%d, %q, %d) not called; calls %v", node, host, port, tr.brokers)
	}
	if errCode != 0 {
		for _, b := range tr.brokers {
			if b.Node == node {
				t.Errorf("error coordinator was learned: %v", b)
			}
		}
	}
}

func TestDescribeClusterResponseEveryVersion(t *testing.T) {
	for v := int16(0); v <= new(kmsg.DescribeClusterResponse).MaxVersion(); v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			tr := newFake(base3)
			resp := kmsg.NewPtrDescribeClusterResponse()
			resp.ClusterID, resp.ControllerID = upstreamCluster, 42
			for _, b := range upstreamBrokers {
				resp.Brokers = append(resp.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: b.Node, Host: b.Host, Port: b.Port, Rack: b.Rack, IsFenced: b.Node == 3})
			}
			out, inPlace := rewriteResponse(t, kmsg.DescribeCluster, v, encodeResponse(resp, v), tr)
			if inPlace {
				t.Errorf("addresses change length: the frame cannot be patched in place")
			}
			got := kmsg.NewPtrDescribeClusterResponse()
			decodeResponse(t, out, got, v)
			var eps []endpoint
			for _, b := range got.Brokers {
				eps = append(eps, endpoint{b.NodeID, b.Host, b.Port, rack(b.Rack)})
				if want := v >= 2 && b.NodeID == 3; b.IsFenced != want {
					t.Errorf("node %d: IsFenced %v, want %v", b.NodeID, b.IsFenced, want)
				}
			}
			if want := wantEndpoints(true); !reflect.DeepEqual(eps, want) {
				t.Errorf("brokers %v, want %v", eps, want)
			}
			if got.ClusterID != routeCluster || got.ControllerID != 42 {
				t.Errorf("cluster id %q (want %q), controller %d (want 42)", got.ClusterID, routeCluster, got.ControllerID)
			}
			checkLearnedUpstream(t, tr)
		})
	}
}

func TestShareFetchResponseEveryVersion(t *testing.T) {
	records := batches(5, false)
	for v := int16(0); v <= new(kmsg.ShareFetchResponse).MaxVersion(); v++ {
		for _, base := range testBases {
			t.Run(fmt.Sprintf("v%d/base=%d", v, base), func(t *testing.T) {
				tr := newFake(base)
				resp := kmsg.NewPtrShareFetchResponse()
				resp.AcquisitionLockTimeoutMillis = 30000
				for _, id := range [][16]byte{upA, upUnknown} {
					tp := kmsg.ShareFetchResponseTopic{TopicID: id}
					tp.Partitions = []kmsg.ShareFetchResponseTopicPartition{{
						Partition:       0,
						CurrentLeader:   kmsg.ShareFetchResponseTopicPartitionCurrentLeader{LeaderID: 1, LeaderEpoch: 7},
						Records:         records,
						AcquiredRecords: []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{{FirstOffset: 100, LastOffset: 104, DeliveryCount: 1}},
					}, {
						Partition:     1,
						CurrentLeader: kmsg.ShareFetchResponseTopicPartitionCurrentLeader{LeaderID: -1, LeaderEpoch: -1},
					}}
					resp.Topics = append(resp.Topics, tp)
				}
				for _, b := range upstreamBrokers {
					resp.NodeEndpoints = append(resp.NodeEndpoints, kmsg.ShareFetchResponseNodeEndpoint{NodeID: b.Node, Host: b.Host, Port: b.Port, Rack: b.Rack})
				}
				out, _ := rewriteResponse(t, kmsg.ShareFetch, v, encodeResponse(resp, v), tr)
				got := kmsg.NewPtrShareFetchResponse()
				decodeResponse(t, out, got, v)

				var eps []endpoint
				for _, b := range got.NodeEndpoints {
					eps = append(eps, endpoint{b.NodeID, b.Host, b.Port, rack(b.Rack)})
				}
				if want := wantEndpoints(true); !reflect.DeepEqual(eps, want) {
					t.Errorf("node endpoints %v, want %v", eps, want)
				}
				checkLearnedUpstream(t, tr)
				if want := [][16]byte{cliA, {}}; got.Topics[0].TopicID != want[0] || got.Topics[1].TopicID != want[1] {
					t.Errorf("topic ids %x %x, want %x %x", got.Topics[0].TopicID, got.Topics[1].TopicID, want[0], want[1])
				}
				p0, p1 := got.Topics[0].Partitions[0], got.Topics[0].Partitions[1]
				if p0.CurrentLeader.LeaderEpoch != toClientEpoch(7, base) || p0.CurrentLeader.LeaderID != 1 {
					t.Errorf("current leader %+v, want id 1 epoch %d", p0.CurrentLeader, toClientEpoch(7, base))
				}
				if p1.CurrentLeader.LeaderEpoch != -1 {
					t.Errorf("unknown leader epoch became %d", p1.CurrentLeader.LeaderEpoch)
				}
				if v >= 1 && got.AcquisitionLockTimeoutMillis != 30000 {
					t.Errorf("AcquisitionLockTimeoutMillis %d", got.AcquisitionLockTimeoutMillis)
				}
				if len(p0.AcquiredRecords) != 1 || p0.AcquiredRecords[0].LastOffset != 104 {
					t.Errorf("acquired records %+v", p0.AcquiredRecords)
				}
				// Whatever happens to the batch header epochs, the batches
				// must stay valid and the same length.
				if len(p0.Records) != len(records) {
					t.Fatalf("records changed length")
				}
				checkBatches(t, p0.Records, firstBatchEpoch(p0.Records))
			})
		}
	}
}

// firstBatchEpoch is the leader epoch of the first batch in records.
func firstBatchEpoch(records []byte) int32 {
	var b kmsg.RecordBatch
	_ = b.ReadFrom(records)
	return b.PartitionLeaderEpoch
}

func TestShareAcknowledgeResponseEveryVersion(t *testing.T) {
	for v := int16(0); v <= new(kmsg.ShareAcknowledgeResponse).MaxVersion(); v++ {
		for _, base := range testBases {
			t.Run(fmt.Sprintf("v%d/base=%d", v, base), func(t *testing.T) {
				tr := newFake(base)
				resp := kmsg.NewPtrShareAcknowledgeResponse()
				resp.Topics = []kmsg.ShareAcknowledgeResponseTopic{{
					TopicID: upB,
					Partitions: []kmsg.ShareAcknowledgeResponseTopicPartition{{
						Partition:     2,
						ErrorCode:     6,
						CurrentLeader: kmsg.ShareAcknowledgeResponseTopicPartitionCurrentLeader{LeaderID: 3, LeaderEpoch: 11},
					}},
				}}
				for _, b := range upstreamBrokers {
					resp.NodeEndpoints = append(resp.NodeEndpoints, kmsg.ShareAcknowledgeResponseNodeEndpoint{NodeID: b.Node, Host: b.Host, Port: b.Port, Rack: b.Rack})
				}
				out, _ := rewriteResponse(t, kmsg.ShareAcknowledge, v, encodeResponse(resp, v), tr)
				got := kmsg.NewPtrShareAcknowledgeResponse()
				decodeResponse(t, out, got, v)
				var eps []endpoint
				for _, b := range got.NodeEndpoints {
					eps = append(eps, endpoint{b.NodeID, b.Host, b.Port, rack(b.Rack)})
				}
				if want := wantEndpoints(true); !reflect.DeepEqual(eps, want) {
					t.Errorf("node endpoints %v, want %v", eps, want)
				}
				checkLearnedUpstream(t, tr)
				if got.Topics[0].TopicID != cliB {
					t.Errorf("topic id %x, want %x", got.Topics[0].TopicID, cliB)
				}
				p := got.Topics[0].Partitions[0]
				if p.CurrentLeader.LeaderID != 3 || p.CurrentLeader.LeaderEpoch != toClientEpoch(11, base) || p.ErrorCode != 6 {
					t.Errorf("partition %+v, want leader 3 epoch %d error 6", p, toClientEpoch(11, base))
				}
			})
		}
	}
}

// Every LearnBroker call must carry the broker's upstream address, once: a
// translator that learned the gateway's own advertised address for a broker
// would send the gateway's next connection to that broker back to itself.
func TestLearnBrokerNeverGetsGatewayAddress(t *testing.T) {
	meta := kmsg.NewPtrMetadataResponse()
	fetch := kmsg.NewPtrFetchResponse()
	produce := kmsg.NewPtrProduceResponse()
	share := kmsg.NewPtrShareFetchResponse()
	ack := kmsg.NewPtrShareAcknowledgeResponse()
	cluster := kmsg.NewPtrDescribeClusterResponse()
	var want []learnedBroker
	for _, b := range upstreamBrokers {
		want = append(want, learnedBroker{b.Node, b.Host, b.Port})
		meta.Brokers = append(meta.Brokers, kmsg.MetadataResponseBroker{NodeID: b.Node, Host: b.Host, Port: b.Port})
		fetch.Brokers = append(fetch.Brokers, kmsg.FetchResponseBroker{NodeID: b.Node, Host: b.Host, Port: b.Port})
		produce.Brokers = append(produce.Brokers, kmsg.ProduceResponseBroker{NodeID: b.Node, Host: b.Host, Port: b.Port})
		share.NodeEndpoints = append(share.NodeEndpoints, kmsg.ShareFetchResponseNodeEndpoint{NodeID: b.Node, Host: b.Host, Port: b.Port})
		ack.NodeEndpoints = append(ack.NodeEndpoints, kmsg.ShareAcknowledgeResponseNodeEndpoint{NodeID: b.Node, Host: b.Host, Port: b.Port})
		cluster.Brokers = append(cluster.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: b.Node, Host: b.Host, Port: b.Port})
	}
	cases := []struct {
		resp    kmsg.Response
		version int16
	}{
		{meta, 0}, {meta, 12}, {cluster, 1}, {fetch, 17}, {produce, 11}, {share, 1}, {ack, 1},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/v%d", kmsg.NameForKey(c.resp.Key()), c.version), func(t *testing.T) {
			tr := newFake(0)
			rewriteResponse(t, kmsg.Key(c.resp.Key()), c.version, encodeResponse(c.resp, c.version), tr)
			if !reflect.DeepEqual(tr.brokers, want) {
				t.Errorf("LearnBroker calls %v, want exactly %v", tr.brokers, want)
			}
		})
	}
}

// From v4 a FindCoordinator response carries its coordinators in a list; the
// v0-3 top-level NodeID/Host/Port are not on the wire and must teach nothing.
func TestFindCoordinatorV4LearnsNoPhantomBroker(t *testing.T) {
	for v := int16(4); v <= new(kmsg.FindCoordinatorResponse).MaxVersion(); v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			resp := kmsg.NewPtrFindCoordinatorResponse()
			resp.Coordinators = []kmsg.FindCoordinatorResponseCoordinator{{Key: "g", NodeID: 3, Host: "b3.upstream", Port: 9093}}
			tr := newFake(0)
			rewriteResponse(t, kmsg.FindCoordinator, v, encodeResponse(resp, v), tr)
			if want := []learnedBroker{{3, "b3.upstream", 9093}}; !reflect.DeepEqual(tr.brokers, want) {
				t.Errorf("LearnBroker calls %v, want exactly %v", tr.brokers, want)
			}
		})
	}
}
