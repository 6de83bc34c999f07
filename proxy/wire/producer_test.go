package wire_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/wire"
)

// producerBatch is a valid batch of an idempotent (or transactional)
// producer, as a client sends it.
func producerBatch(firstOffset int64, p wire.BatchProducer, transactional bool) []byte {
	var attrs int16
	if transactional {
		attrs = 0x10
	}
	r := kmsg.Record{Key: []byte("k"), Value: []byte("value")}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	return sealBatch(kmsg.RecordBatch{
		FirstOffset:          firstOffset,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           attrs,
		FirstTimestamp:       1_700_000_000_000,
		MaxTimestamp:         1_700_000_000_000,
		ProducerID:           p.ID,
		ProducerEpoch:        p.Epoch,
		FirstSequence:        p.Sequence,
		NumRecords:           1,
		Records:              r.AppendTo(nil),
	})
}

// Producers of the fixture: 77 crossed the switch and is mapped, 99 is one
// the translator declines, 88 is transactional, -1 is not idempotent.
var (
	crossed       = wire.BatchProducer{ID: 77, Epoch: 2, Sequence: 10}
	crossedLater  = wire.BatchProducer{ID: 77, Epoch: 2, Sequence: 11}
	declined      = wire.BatchProducer{ID: 99, Epoch: 0, Sequence: 5}
	transactional = wire.BatchProducer{ID: 88, Epoch: 1, Sequence: 0}
	plain         = wire.BatchProducer{ID: -1, Epoch: -1, Sequence: -1}
)

func mapCrossed(p wire.BatchProducer) (wire.BatchProducer, bool) {
	if p.ID != 77 {
		return p, false
	}
	return wire.BatchProducer{ID: 5077, Epoch: 0, Sequence: p.Sequence + 100}, true
}

// producerRequest: topic "orders" (client id cliA) partition 0 carries one
// batch of each kind, partition 3 a later batch of the crossed producer.
func producerRequest(version int16, id func([16]byte) [16]byte, mapped func(wire.BatchProducer) wire.BatchProducer) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	var p0 []byte
	p0 = append(p0, producerBatch(0, mapped(crossed), false)...)
	p0 = append(p0, producerBatch(0, transactional, true)...)
	p0 = append(p0, producerBatch(0, plain, false)...)
	p0 = append(p0, producerBatch(0, declined, false)...)
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic, tp.TopicID = "orders", id(cliA)
	tp.Partitions = []kmsg.ProduceRequestTopicPartition{
		{Partition: 0, Records: p0},
		{Partition: 3, Records: producerBatch(1, mapped(crossedLater), false)},
	}
	req.Topics = []kmsg.ProduceRequestTopic{tp}
	return req
}

func TestProduceRequestMapsProducers(t *testing.T) {
	same := func(p wire.BatchProducer) wire.BatchProducer { return p }
	mapped := func(p wire.BatchProducer) wire.BatchProducer { m, _ := mapCrossed(p); return m }
	for _, v := range []int16{3, 7, 8, 9, 12, 13} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			tr := newFake(base3)
			tr.mapProducer = mapCrossed
			frame := requestFrame(producerRequest(v, identityID, same), v)
			out, inPlace := rewriteRequest(t, frame, tr)
			if !inPlace {
				t.Fatalf("produce requests are patched in place")
			}
			upID := identityID
			if v >= 13 {
				upID = toUpstreamID
			}
			want := requestFrame(producerRequest(v, upID, mapped), v)
			if !bytes.Equal(out, want) {
				t.Fatalf("patched request differs from the request with mapped producers\n got %x\nwant %x", out, want)
			}
			got := kmsg.NewPtrProduceRequest()
			decodeRequest(t, out, got, v)
			for _, p := range got.Topics[0].Partitions {
				checkBatches(t, p.Records, -1) // CRCs resealed
			}
			var producers []wire.BatchProducer
			topics := map[string]bool{}
			for _, c := range tr.producerCalls {
				producers = append(producers, c.Producer)
				topics[c.Topic] = true
			}
			if w := []wire.BatchProducer{crossed, declined, crossedLater}; !reflect.DeepEqual(producers, w) {
				t.Errorf("Producer called for %+v, want %+v (never for transactional or non-idempotent batches)", producers, w)
			}
			if len(topics) != 1 {
				t.Errorf("one topic mapped under several keys: %v", topics)
			}
			for topic := range topics {
				if v >= 13 && topic != string(cliA[:]) {
					t.Errorf("v13 batches mapped under %x, want the client's topic id %x", topic, cliA)
				}
				if v < 13 && !strings.HasSuffix(topic, "orders") {
					t.Errorf("batches mapped under %q, want the topic name", topic)
				}
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		tr := newFake(0)
		frame := requestFrame(producerRequest(9, identityID, same), 9)
		orig := bytes.Clone(frame)
		rewriteRequest(t, frame, tr)
		if !bytes.Equal(frame, orig) || len(tr.producerCalls) != 0 {
			t.Errorf("MapsProducers false: frame changed or Producer called (%d calls)", len(tr.producerCalls))
		}
	})
}

// A client's batch whose length field is shorter than a batch header must
// neither be mapped nor crash the gateway.
func TestProduceRequestShortBatchLength(t *testing.T) {
	for _, length := range []int32{1, 4, 20, 44, 48} {
		t.Run(fmt.Sprintf("length=%d", length), func(t *testing.T) {
			records := producerBatch(0, crossed, false)
			binary.BigEndian.PutUint32(records[8:], uint32(length))
			req := kmsg.NewPtrProduceRequest()
			req.Acks = 1
			req.Topics = []kmsg.ProduceRequestTopic{{Topic: "orders", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: records}}}}
			frame := requestFrame(req, 9)
			tr := newFake(0)
			tr.mapProducer = mapCrossed
			mustNotPanic(t, fmt.Sprintf("%x", frame), func() {
				_, _ = wire.RewriteRequest(parseHeader(t, frame), frame, tr)
			})
		})
	}
}

func TestInitProducerIDResponseLearnsProducerID(t *testing.T) {
	for v := int16(0); v <= new(kmsg.InitProducerIDResponse).MaxVersion(); v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			for _, c := range []struct {
				errCode int16
				id      int64
				want    []int64
			}{
				{0, 1234, []int64{1234}},
				{15, -1, nil}, // COORDINATOR_NOT_AVAILABLE
				{47, 1234, nil},
			} {
				resp := kmsg.NewPtrInitProducerIDResponse()
				resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = c.errCode, c.id, 3
				frame := encodeResponse(resp, v)
				orig := bytes.Clone(frame)
				tr := newFake(base3)
				_, inPlace := rewriteResponse(t, kmsg.InitProducerID, v, frame, tr)
				if !inPlace || !bytes.Equal(frame, orig) {
					t.Errorf("InitProducerID response changed")
				}
				if !reflect.DeepEqual(tr.producerIDs, c.want) {
					t.Errorf("error %d id %d: learned %v, want %v", c.errCode, c.id, tr.producerIDs, c.want)
				}
			}
			frame := responseFrame(kmsg.InitProducerID, v, []byte{0, 0})
			if _, err := wire.RewriteResponse(22, v, frame, newFake(0)); err == nil {
				t.Errorf("truncated InitProducerID response: no error")
			}
		})
	}
}

// The gateway decodes InitProducerID responses with kmsg, so it must cap the
// versions clients negotiate to the ones kmsg can read.
func TestApiVersionsCapsInitProducerID(t *testing.T) {
	if !wire.Rewrites(22) {
		t.Errorf("Rewrites(22) = false")
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 22, MaxVersion: 99}}
	out, _ := rewriteResponse(t, kmsg.ApiVersions, 3, encodeResponse(resp, 3), newFake(0))
	got := kmsg.NewPtrApiVersionsResponse()
	decodeResponse(t, out, got, 3)
	if len(got.ApiKeys) != 1 || got.ApiKeys[0].MaxVersion != wire.MaxVersion(22) {
		t.Errorf("InitProducerID offered up to %+v, want %d", got.ApiKeys, wire.MaxVersion(22))
	}
}
