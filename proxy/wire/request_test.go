package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/wire"
)

func identityID(id [16]byte) [16]byte { return id }
func identityEpoch(e int32) int32     { return e }

// clientEpochs are leader epochs a client sends after the route switched to
// base: one from this route epoch, one from before the switch, one unknown.
func clientEpochs(base int32) [3]int32 { return [3]int32{base + 4, 2, -1} }

// A request builder makes the client's request (id and epoch the identity)
// or the request the cluster must receive (the translations).
type requestBuilder func(version int16, base int32, id func([16]byte) [16]byte, epoch func(int32) int32) kmsg.Request

func fetchRequest(version int16, base int32, id func([16]byte) [16]byte, epoch func(int32) int32) kmsg.Request {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.IsolationLevel = 500, 1, 50<<20, 1
	req.SessionID, req.SessionEpoch = 0, 12 // a fetch session epoch, not a leader epoch
	req.ReplicaState.Epoch = 5              // a broker epoch, not a leader epoch
	req.Rack = "r1"
	ce := clientEpochs(base)
	topic := func(name string, cid [16]byte, parts int) kmsg.FetchRequestTopic {
		tp := kmsg.NewFetchRequestTopic()
		tp.Topic, tp.TopicID = name, id(cid)
		for i := range parts {
			p := kmsg.NewFetchRequestTopicPartition()
			p.Partition, p.FetchOffset, p.PartitionMaxBytes = int32(i), 1000, 1<<20
			p.CurrentLeaderEpoch = epoch(ce[i%3])
			p.LastFetchedEpoch = epoch(ce[(i+1)%3])
			tp.Partitions = append(tp.Partitions, p)
		}
		return tp
	}
	req.Topics = []kmsg.FetchRequestTopic{topic("orders", cliA, 3), topic("payments", cliB, 1), topic("stale", cliUnknown, 1)}
	req.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{
		{Topic: "payments", TopicID: id(cliB), Partitions: []int32{1, 2}},
		{Topic: "stale", TopicID: id(cliUnknown), Partitions: []int32{0}},
	}
	return req
}

func offsetCommitRequest(version int16, base int32, id func([16]byte) [16]byte, epoch func(int32) int32) kmsg.Request {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = version
	req.Group, req.Generation, req.MemberID = "g", 7, "m-1" // a member epoch at v9+, untouched
	ce := clientEpochs(base)
	tp := kmsg.NewOffsetCommitRequestTopic()
	tp.Topic, tp.TopicID = "orders", id(cliA)
	for i, e := range ce {
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch, p.Metadata = int32(i), 500, epoch(e), strp("meta")
		tp.Partitions = append(tp.Partitions, p)
	}
	other := kmsg.NewOffsetCommitRequestTopic()
	other.Topic, other.TopicID = "stale", id(cliUnknown)
	other.Partitions = []kmsg.OffsetCommitRequestTopicPartition{kmsg.NewOffsetCommitRequestTopicPartition()}
	req.Topics = []kmsg.OffsetCommitRequestTopic{tp, other}
	return req
}

func offsetFetchRequest(version int16, _ int32, id func([16]byte) [16]byte, _ func(int32) int32) kmsg.Request {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = version
	req.Group = "g"
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0, 1}}}
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group, g.MemberID, g.MemberEpoch = "g", strp("m-1"), 9
	g.Topics = []kmsg.OffsetFetchRequestGroupTopic{
		{Topic: "orders", TopicID: id(cliA), Partitions: []int32{0, 1}},
		{Topic: "payments", TopicID: id(cliB), Partitions: []int32{3}},
	}
	req.Groups = []kmsg.OffsetFetchRequestGroup{g}
	return req
}

func consumerGroupHeartbeatRequest(version int16, _ int32, id func([16]byte) [16]byte, _ func(int32) int32) kmsg.Request {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = version
	req.Group, req.MemberID, req.MemberEpoch = "g", "m-1", 4
	req.SubscribedTopicNames = []string{"orders", "payments"}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{
		{TopicID: id(cliA), Partitions: []int32{0, 2}},
		{TopicID: id(cliB), Partitions: []int32{1}},
		{TopicID: id(cliUnknown), Partitions: []int32{0}},
	}
	return req
}

func listOffsetsRequest(version int16, base int32, _ func([16]byte) [16]byte, epoch func(int32) int32) kmsg.Request {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = version
	req.ReplicaID, req.IsolationLevel = -1, 1
	tp := kmsg.NewListOffsetsRequestTopic()
	tp.Topic = "orders"
	for i, e := range clientEpochs(base) {
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition, p.Timestamp, p.CurrentLeaderEpoch = int32(i), -1, epoch(e)
		tp.Partitions = append(tp.Partitions, p)
	}
	req.Topics = []kmsg.ListOffsetsRequestTopic{tp}
	return req
}

func metadataRequest(version int16, _ int32, id func([16]byte) [16]byte, _ func(int32) int32) kmsg.Request {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	req.Topics = []kmsg.MetadataRequestTopic{{TopicID: id(cliA)}, {Topic: strp("payments")}, {TopicID: id(cliUnknown)}}
	if version < 10 {
		req.Topics[0].Topic, req.Topics[2].Topic = strp("orders"), strp("stale")
	}
	return req
}

// TestRequestTranslationEveryVersion compares each rewritten request with the
// kmsg encoding of the request the cluster must see: client topic ids mapped
// back (unknown ids become zero, which the broker answers with
// UNKNOWN_TOPIC_ID), and, when the route has an epoch base, leader epochs
// e >= base mapped to e-base, 0 <= e < base to -1, and -1 kept.
func TestRequestTranslationEveryVersion(t *testing.T) {
	cases := []struct {
		key   kmsg.Key
		build requestBuilder
		// inPlaceAtBase0: with no epoch base there is nothing to translate.
		inPlaceAtBase0 bool
	}{
		{kmsg.Fetch, fetchRequest, false},
		{kmsg.OffsetCommit, offsetCommitRequest, false},
		{kmsg.OffsetFetch, offsetFetchRequest, false},
		{kmsg.ConsumerGroupHeartbeat, consumerGroupHeartbeatRequest, false},
		{kmsg.ListOffsets, listOffsetsRequest, true},
		{kmsg.Metadata, metadataRequest, false},
	}
	for _, c := range cases {
		for v := int16(0); v <= wire.MaxVersion(c.key); v++ {
			for _, base := range testBases {
				t.Run(fmt.Sprintf("%s/v%d/base=%d", c.key.Name(), v, base), func(t *testing.T) {
					frame := requestFrame(c.build(v, base, identityID, identityEpoch), v)
					orig := bytes.Clone(frame)
					upEpoch := identityEpoch
					if base != 0 {
						upEpoch = func(e int32) int32 { return toUpstreamEpoch(e, base) }
					}
					want := requestFrame(c.build(v, base, toUpstreamID, upEpoch), v)

					out, inPlace := rewriteRequest(t, frame, newFake(base))
					if c.inPlaceAtBase0 && base == 0 {
						if !inPlace || !bytes.Equal(frame, orig) {
							t.Fatalf("nothing to translate: want the frame returned as is")
						}
					}
					if !bytes.Equal(out, want) {
						t.Fatalf("rewritten request differs from the translated request\n got %x\nwant %x", out, want)
					}
				})
			}
		}
	}
}

// The same translation spelled out on the decoded Fetch request.
func TestFetchRequestEpochsAndIDs(t *testing.T) {
	const v = 17
	base := base3
	out, _ := rewriteRequest(t, requestFrame(fetchRequest(v, base, identityID, identityEpoch), v), newFake(base))
	got := kmsg.NewPtrFetchRequest()
	decodeRequest(t, out, got, v)
	if got.Topics[0].TopicID != upA || got.Topics[1].TopicID != upB || got.Topics[2].TopicID != ([16]byte{}) {
		t.Errorf("topic ids %x %x %x", got.Topics[0].TopicID, got.Topics[1].TopicID, got.Topics[2].TopicID)
	}
	if got.ForgottenTopics[0].TopicID != upB || got.ForgottenTopics[1].TopicID != ([16]byte{}) {
		t.Errorf("forgotten topic ids %x %x", got.ForgottenTopics[0].TopicID, got.ForgottenTopics[1].TopicID)
	}
	ps := got.Topics[0].Partitions
	wantCur := []int32{4, -1, -1}  // base+4 -> 4, 2 (before the switch) -> -1, -1 -> -1
	wantLast := []int32{-1, -1, 4} // 2 -> -1, -1 -> -1, base+4 -> 4
	for i, p := range ps {
		if p.CurrentLeaderEpoch != wantCur[i] || p.LastFetchedEpoch != wantLast[i] {
			t.Errorf("partition %d: current %d last fetched %d, want %d %d", i, p.CurrentLeaderEpoch, p.LastFetchedEpoch, wantCur[i], wantLast[i])
		}
	}
	if got.SessionEpoch != 12 || got.ReplicaState.Epoch != 5 {
		t.Errorf("session epoch %d / replica epoch %d must not be translated", got.SessionEpoch, got.ReplicaState.Epoch)
	}
}

func TestRequestsWithNothingToTranslate(t *testing.T) {
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID = "g", 3, "m"
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "g", []string{"g"}
	cases := []struct {
		req     kmsg.Request
		version int16
	}{
		{hb, 0}, {hb, 4}, {fc, 2}, {fc, 6},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/v%d", kmsg.NameForKey(c.req.Key()), c.version), func(t *testing.T) {
			frame := requestFrame(c.req, c.version)
			orig := bytes.Clone(frame)
			out, err := wire.RewriteRequest(parseHeader(t, frame), frame, newFake(base3))
			if err != nil || out != nil {
				t.Fatalf("RewriteRequest = %x, %v; want nil, nil", out, err)
			}
			if !bytes.Equal(frame, orig) {
				t.Errorf("frame changed")
			}
		})
	}
}

func TestRequestVersionTooNew(t *testing.T) {
	for _, key := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.ListOffsets, kmsg.Metadata, kmsg.OffsetCommit, kmsg.OffsetFetch, kmsg.FindCoordinator, kmsg.ConsumerGroupHeartbeat} {
		req := key.Request()
		v := req.MaxVersion() + 1
		t.Run(fmt.Sprintf("%s/v%d", key.Name(), v), func(t *testing.T) {
			frame := requestFrame(req, v)
			_, err := wire.RewriteRequest(parseHeader(t, frame), frame, newFake(0))
			if !errors.Is(err, wire.ErrUnsupportedVersion) {
				t.Fatalf("err = %v, want ErrUnsupportedVersion", err)
			}
		})
	}
	// A key the gateway forwards untouched may be newer than kmsg knows.
	frame := requestFrame(kmsg.NewPtrHeartbeatRequest(), 99)
	if out, err := wire.RewriteRequest(parseHeader(t, frame), frame, newFake(0)); out != nil || err != nil {
		t.Errorf("Heartbeat v99: %x, %v; want nil, nil", out, err)
	}
}

func TestAcks(t *testing.T) {
	for _, v := range []int16{0, 3, 9, 13} {
		for _, acks := range []int16{0, -1, 1} {
			for _, txn := range []*string{nil, strp("txn-1")} {
				t.Run(fmt.Sprintf("v%d/acks=%d/txn=%v", v, acks, txn != nil), func(t *testing.T) {
					req := produceRequestFixture(v, identityID)
					req.Acks, req.TransactionID = acks, txn
					frame := requestFrame(req, v)
					got, err := wire.Acks(parseHeader(t, frame), frame)
					if err != nil || got != acks {
						t.Fatalf("Acks = %d, %v; want %d", got, err, acks)
					}
				})
			}
		}
	}
	// A body too short to hold acks is an error, not a guess.
	frame := requestFrame(kmsg.NewPtrProduceRequest(), 3)
	h := parseHeader(t, frame)
	if _, err := wire.Acks(h, frame[:h.BodyOffset+1]); err == nil {
		t.Errorf("Acks on a truncated body: no error")
	}
}
