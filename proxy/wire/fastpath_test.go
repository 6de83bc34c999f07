package wire_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// view says how to build one side of a fixture: as the cluster sends it
// (upstream), or as the client must receive it (expected). Building both from
// one function makes the expected frame the full kmsg re-encode of exactly
// the translation the fast path must perform.
type view struct {
	id    func([16]byte) [16]byte
	epoch func(int32) int32
	// brokers is the endpoint list; nil means none on the wire.
	brokers []endpoint
}

func upstreamView(withBrokers bool) view {
	v := view{id: func(id [16]byte) [16]byte { return id }, epoch: func(e int32) int32 { return e }}
	if withBrokers {
		for _, b := range upstreamBrokers {
			v.brokers = append(v.brokers, endpoint{b.Node, b.Host, b.Port, rack(b.Rack)})
		}
	}
	return v
}

func clientView(withBrokers bool, base int32) view {
	v := view{id: toClientID, epoch: func(e int32) int32 { return toClientEpoch(e, base) }}
	if withBrokers {
		v.brokers = wantEndpoints(true)
	}
	return v
}

func rackPtr(r string) *string {
	if r == "<nil>" {
		return nil
	}
	return &r
}

// fetchFixture: three topics, partitions with and without records, aborted
// transactions, KIP-320 diverging epochs, KIP-951 current leaders, a snapshot
// id (a KRaft epoch, never translated), unknown tags at every level, and
// batches whose leader epoch is 5 upstream.
func fetchFixture(version int16, vw view) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = version
	resp.ThrottleMillis, resp.SessionID = 11, 77
	part := func(p int32) kmsg.FetchResponseTopicPartition {
		fp := kmsg.NewFetchResponseTopicPartition()
		fp.Partition, fp.HighWatermark, fp.LastStableOffset, fp.LogStartOffset = p, 1000+int64(p), 990, 3
		return fp
	}
	withBatches := part(0)
	withBatches.RecordBatches = batches(vw.epoch(5), true)
	withBatches.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{
		{ProducerID: 9, FirstOffset: 101}, {ProducerID: 10, FirstOffset: 104},
	}
	withBatches.UnknownTags.Set(9, []byte{0xde, 0xad})

	diverged := part(1)
	diverged.DivergingEpoch.Epoch, diverged.DivergingEpoch.EndOffset = vw.epoch(3), 500
	diverged.CurrentLeader.LeaderID, diverged.CurrentLeader.LeaderEpoch = 2, vw.epoch(9)
	diverged.RecordBatches = []byte{} // empty, not null

	moved := part(2)
	moved.ErrorCode = 6 // NOT_LEADER_OR_FOLLOWER
	moved.CurrentLeader.LeaderID, moved.CurrentLeader.LeaderEpoch = 3, vw.epoch(0)
	moved.SnapshotID.EndOffset, moved.SnapshotID.Epoch = 40, 2
	moved.AbortedTransactions = nil // null array

	leaderless := part(3)
	leaderless.CurrentLeader.LeaderID = 1 // epoch unknown: -1 stays -1
	leaderless.PreferredReadReplica = 3
	leaderless.RecordBatches = batches(vw.epoch(5), false)

	orders := kmsg.NewFetchResponseTopic()
	orders.Topic, orders.TopicID = "orders", vw.id(upA)
	orders.Partitions = []kmsg.FetchResponseTopicPartition{withBatches, diverged, moved}
	orders.UnknownTags.Set(4, []byte{1, 2, 3})

	payments := kmsg.NewFetchResponseTopic()
	payments.Topic, payments.TopicID = "payments", vw.id(upB)
	payments.Partitions = []kmsg.FetchResponseTopicPartition{leaderless}

	mystery := kmsg.NewFetchResponseTopic()
	mystery.Topic, mystery.TopicID = "mystery", vw.id(upUnknown)
	p := part(0)
	p.ErrorCode = 100 // UNKNOWN_TOPIC_ID
	mystery.Partitions = []kmsg.FetchResponseTopicPartition{p}

	resp.Topics = []kmsg.FetchResponseTopic{orders, payments, mystery}
	for _, b := range vw.brokers {
		resp.Brokers = append(resp.Brokers, kmsg.FetchResponseBroker{NodeID: b.Node, Host: b.Host, Port: b.Port, Rack: rackPtr(b.Rack)})
	}
	resp.UnknownTags.Set(5, []byte{7})
	return resp
}

func TestFetchResponseFastPathEqualsFullPath(t *testing.T) {
	maxV := new(kmsg.FetchResponse).MaxVersion()
	for v := int16(0); v <= maxV; v++ {
		for _, base := range testBases {
			for _, withBrokers := range []bool{false, true} {
				if withBrokers && v < 16 {
					continue // node endpoints are v16+ (KIP-951)
				}
				t.Run(fmt.Sprintf("v%d/base=%d/endpoints=%v", v, base, withBrokers), func(t *testing.T) {
					tr := newFake(base)
					frame := encodeResponse(fetchFixture(v, upstreamView(withBrokers)), v)
					orig := bytes.Clone(frame)
					want := encodeResponse(fetchFixture(v, clientView(withBrokers, base)), v)

					out, inPlace := rewriteResponse(t, kmsg.Fetch, v, frame, tr)
					if inPlace == withBrokers {
						t.Errorf("patched in place: %v; want in place exactly when there are no node endpoints", inPlace)
					}
					if !bytes.Equal(out, want) {
						t.Fatalf("rewritten frame differs from the kmsg re-encode of the translated response\n got %x\nwant %x", out, want)
					}
					if v < 13 && base == 0 && !bytes.Equal(frame, orig) {
						t.Errorf("nothing to translate, yet the frame changed")
					}

					got := kmsg.NewPtrFetchResponse()
					decodeResponse(t, out, got, v)
					if v >= 13 {
						ids := [][16]byte{got.Topics[0].TopicID, got.Topics[1].TopicID, got.Topics[2].TopicID}
						if w := [][16]byte{cliA, cliB, {}}; !reflect.DeepEqual(ids, w) {
							t.Errorf("topic ids %x, want %x", ids, w)
						}
					}
					orders, payments := got.Topics[0].Partitions, got.Topics[1].Partitions
					checkBatches(t, orders[0].RecordBatches, 5+base)
					checkBatches(t, payments[0].RecordBatches, 5+base)
					// Only the leader epoch in each batch header changed.
					if w := batches(5+base, true); !bytes.Equal(orders[0].RecordBatches, w) {
						t.Errorf("record batches differ beyond the leader epoch")
					}
					if v >= 12 {
						if e := orders[1].DivergingEpoch; e.Epoch != 3+base || e.EndOffset != 500 {
							t.Errorf("diverging epoch %+v, want epoch %d", e, 3+base)
						}
						if l := orders[1].CurrentLeader; l.LeaderID != 2 || l.LeaderEpoch != 9+base {
							t.Errorf("current leader %+v, want 2 @ %d", l, 9+base)
						}
						if l := orders[2].CurrentLeader; l.LeaderID != 3 || l.LeaderEpoch != base {
							t.Errorf("current leader %+v, want 3 @ %d", l, base)
						}
						if s := orders[2].SnapshotID; s.Epoch != 2 || s.EndOffset != 40 {
							t.Errorf("snapshot id %+v changed", s)
						}
						if l := payments[0].CurrentLeader; l.LeaderID != 1 || l.LeaderEpoch != -1 {
							t.Errorf("current leader %+v, want 1 @ -1", l)
						}
					}
					if withBrokers {
						var eps []endpoint
						for _, b := range got.Brokers {
							eps = append(eps, endpoint{b.NodeID, b.Host, b.Port, rack(b.Rack)})
						}
						if w := wantEndpoints(true); !reflect.DeepEqual(eps, w) {
							t.Errorf("node endpoints %v, want %v", eps, w)
						}
						checkLearnedUpstream(t, tr)
					} else if len(tr.brokers) != 0 {
						t.Errorf("LearnBroker called without endpoints: %v", tr.brokers)
					}
					if len(tr.topics) != 0 {
						t.Errorf("LearnTopic called from a fetch response: %v", tr.topics)
					}
				})
			}
		}
	}
}

// A magic 0/1 message set has its CRC where a v2 batch has its leader epoch:
// it must never be patched.
func TestFetchResponseLeavesLegacyMessageSetsAlone(t *testing.T) {
	var set []byte
	for i := range 3 {
		m := kmsg.MessageV1{Offset: int64(i), Magic: 1, Timestamp: 1_700_000_000_000, Key: []byte("k"), Value: []byte("value")}
		m.MessageSize = int32(len(m.AppendTo(nil)) - 12)
		m.CRC = 0x1234567 + int32(i)
		set = m.AppendTo(set)
	}
	for _, v := range []int16{2, 3, 4, 11, 12, 13} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			resp := kmsg.NewPtrFetchResponse()
			tp := kmsg.NewFetchResponseTopic()
			tp.Topic, tp.TopicID = "legacy", upA
			p := kmsg.NewFetchResponseTopicPartition()
			p.RecordBatches = set
			tp.Partitions = []kmsg.FetchResponseTopicPartition{p}
			resp.Topics = []kmsg.FetchResponseTopic{tp}
			out, _ := rewriteResponse(t, kmsg.Fetch, v, encodeResponse(resp, v), newFake(base3))
			got := kmsg.NewPtrFetchResponse()
			decodeResponse(t, out, got, v)
			if !bytes.Equal(got.Topics[0].Partitions[0].RecordBatches, set) {
				t.Errorf("message set changed:\n got %x\nwant %x", got.Topics[0].Partitions[0].RecordBatches, set)
			}
		})
	}
}

// produceResponseFixture covers per-partition error records, messages and
// KIP-951 current leaders.
func produceResponseFixture(version int16, vw view) *kmsg.ProduceResponse {
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = version
	resp.ThrottleMillis = 12
	part := func(p int32) kmsg.ProduceResponseTopicPartition {
		pp := kmsg.NewProduceResponseTopicPartition()
		pp.Partition, pp.BaseOffset, pp.LogAppendTime, pp.LogStartOffset = p, 100*int64(p), 1_700_000_000_000, 7
		return pp
	}
	ok := part(0)
	failed := part(1)
	failed.ErrorCode = 87 // INVALID_RECORD
	failed.ErrorRecords = []kmsg.ProduceResponseTopicPartitionErrorRecord{{RelativeOffset: 2, ErrorMessage: strp("bad record")}, {RelativeOffset: 4}}
	failed.ErrorMessage = strp("batch rejected")
	moved := part(2)
	moved.ErrorCode = 6
	moved.UnknownTags.Set(8, []byte{1})
	unknownEpoch := part(3)
	unknownEpoch.ErrorCode = 6
	if version >= 10 { // KIP-951's current leader is a v10+ tag
		moved.CurrentLeader.LeaderID, moved.CurrentLeader.LeaderEpoch = 3, vw.epoch(12)
		unknownEpoch.CurrentLeader.LeaderID = 1
	}

	orders := kmsg.NewProduceResponseTopic()
	orders.Topic, orders.TopicID = "orders", vw.id(upA)
	orders.Partitions = []kmsg.ProduceResponseTopicPartition{ok, failed, moved}
	payments := kmsg.NewProduceResponseTopic()
	payments.Topic, payments.TopicID = "payments", vw.id(upB)
	payments.Partitions = []kmsg.ProduceResponseTopicPartition{unknownEpoch}
	payments.UnknownTags.Set(3, []byte{9, 9})
	mystery := kmsg.NewProduceResponseTopic()
	mystery.Topic, mystery.TopicID = "mystery", vw.id(upUnknown)
	mystery.Partitions = []kmsg.ProduceResponseTopicPartition{part(0)}
	resp.Topics = []kmsg.ProduceResponseTopic{orders, payments, mystery}
	for _, b := range vw.brokers {
		resp.Brokers = append(resp.Brokers, kmsg.ProduceResponseBroker{NodeID: b.Node, Host: b.Host, Port: b.Port, Rack: rackPtr(b.Rack)})
	}
	return resp
}

func TestProduceResponseFastPathEqualsFullPath(t *testing.T) {
	for v := int16(0); v <= new(kmsg.ProduceResponse).MaxVersion(); v++ {
		for _, base := range testBases {
			for _, withBrokers := range []bool{false, true} {
				if withBrokers && v < 10 {
					continue
				}
				t.Run(fmt.Sprintf("v%d/base=%d/endpoints=%v", v, base, withBrokers), func(t *testing.T) {
					tr := newFake(base)
					frame := encodeResponse(produceResponseFixture(v, upstreamView(withBrokers)), v)
					orig := bytes.Clone(frame)
					want := encodeResponse(produceResponseFixture(v, clientView(withBrokers, base)), v)
					out, inPlace := rewriteResponse(t, kmsg.Produce, v, frame, tr)
					if inPlace == withBrokers {
						t.Errorf("patched in place: %v; want in place exactly when there are no node endpoints", inPlace)
					}
					if !bytes.Equal(out, want) {
						t.Fatalf("rewritten frame differs from the kmsg re-encode of the translated response\n got %x\nwant %x", out, want)
					}
					if v < 10 && !bytes.Equal(frame, orig) {
						t.Errorf("v%d has nothing to translate, yet the frame changed", v)
					}
					got := kmsg.NewPtrProduceResponse()
					decodeResponse(t, out, got, v)
					if v >= 13 {
						ids := [][16]byte{got.Topics[0].TopicID, got.Topics[1].TopicID, got.Topics[2].TopicID}
						if w := [][16]byte{cliA, cliB, {}}; !reflect.DeepEqual(ids, w) {
							t.Errorf("topic ids %x, want %x", ids, w)
						}
					}
					if v >= 10 {
						if l := got.Topics[0].Partitions[2].CurrentLeader; l.LeaderID != 3 || l.LeaderEpoch != 12+base {
							t.Errorf("current leader %+v, want 3 @ %d", l, 12+base)
						}
						if l := got.Topics[1].Partitions[0].CurrentLeader; l.LeaderID != 1 || l.LeaderEpoch != -1 {
							t.Errorf("current leader %+v, want 1 @ -1", l)
						}
					}
					if v >= 8 {
						f := got.Topics[0].Partitions[1]
						if len(f.ErrorRecords) != 2 || rack(f.ErrorMessage) != "batch rejected" {
							t.Errorf("error records/message changed: %+v", f)
						}
					}
					if withBrokers {
						var eps []endpoint
						for _, b := range got.Brokers {
							eps = append(eps, endpoint{b.NodeID, b.Host, b.Port, rack(b.Rack)})
						}
						if w := wantEndpoints(true); !reflect.DeepEqual(eps, w) {
							t.Errorf("node endpoints %v, want %v", eps, w)
						}
						checkLearnedUpstream(t, tr)
					}
				})
			}
		}
	}
}

// produceRequestFixture: the client's view (client ids); records carry the
// producer's leader epoch (-1), which requests never translate.
func produceRequestFixture(version int16, id func([16]byte) [16]byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.TransactionID = strp("txn-1")
	req.Acks, req.TimeoutMillis = -1, 30000
	topic := func(name string, cid [16]byte, parts ...int32) kmsg.ProduceRequestTopic {
		tp := kmsg.NewProduceRequestTopic()
		tp.Topic, tp.TopicID = name, id(cid)
		for _, p := range parts {
			tp.Partitions = append(tp.Partitions, kmsg.ProduceRequestTopicPartition{Partition: p, Records: makeBatch(0, -1, 2+int(p), 30)})
		}
		return tp
	}
	tp := topic("orders", cliA, 0, 1)
	tp.UnknownTags.Set(6, []byte{6})
	req.Topics = []kmsg.ProduceRequestTopic{tp, topic("payments", cliB, 4), topic("stale", cliUnknown, 0), topic("zero", [16]byte{}, 0)}
	return req
}

func TestProduceRequestFastPath(t *testing.T) {
	identity := func(id [16]byte) [16]byte { return id }
	for v := int16(0); v <= new(kmsg.ProduceRequest).MaxVersion(); v++ {
		for _, base := range testBases {
			t.Run(fmt.Sprintf("v%d/base=%d", v, base), func(t *testing.T) {
				frame := requestFrame(produceRequestFixture(v, identity), v)
				orig := bytes.Clone(frame)
				out, inPlace := rewriteRequest(t, frame, newFake(base))
				if !inPlace {
					t.Fatalf("a produce request must be patched in place")
				}
				if v < 13 {
					if !bytes.Equal(out, orig) {
						t.Errorf("v%d: produce request by topic name changed", v)
					}
					return
				}
				want := requestFrame(produceRequestFixture(v, toUpstreamID), v)
				if !bytes.Equal(out, want) {
					t.Fatalf("patched request differs from the kmsg encoding of the translated request\n got %x\nwant %x", out, want)
				}
				got := kmsg.NewPtrProduceRequest()
				decodeRequest(t, out, got, v)
				ids := [][16]byte{got.Topics[0].TopicID, got.Topics[1].TopicID, got.Topics[2].TopicID, got.Topics[3].TopicID}
				if w := [][16]byte{upA, upB, {}, {}}; !reflect.DeepEqual(ids, w) {
					t.Errorf("topic ids %x, want %x", ids, w)
				}
				checkBatches(t, got.Topics[0].Partitions[0].Records, -1)
			})
		}
	}
}
