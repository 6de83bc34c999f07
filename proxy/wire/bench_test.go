package wire_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/wire"
)

// flipTranslator makes repeated in-place patches of one frame do the same
// work every time: topic ids map upA <-> cliA in both directions, and the
// epoch base alternates between +base and -base, so every second call puts
// the frame back as it was. It allocates nothing.
type flipTranslator struct {
	base int32
	n    int
}

func (f *flipTranslator) swap(id [16]byte) [16]byte {
	switch id {
	case upA:
		return cliA
	case cliA:
		return upA
	case upB:
		return cliB
	case cliB:
		return upB
	}
	return [16]byte{}
}

func (*flipTranslator) Advertise(node int32) (string, int32, bool) { return gwHost, 20000 + node, true }
func (*flipTranslator) LearnBroker(int32, string, int32)           {}
func (*flipTranslator) LearnTopic(string, [16]byte)                {}
func (f *flipTranslator) ClientTopicID(id [16]byte) [16]byte       { return f.swap(id) }
func (f *flipTranslator) UpstreamTopicID(id [16]byte) [16]byte     { return f.swap(id) }
func (*flipTranslator) ClusterIDs() (string, string)               { return routeCluster, upstreamCluster }
func (*flipTranslator) LearnProducerID(int64)                      {}
func (*flipTranslator) MapsProducers() bool                        { return false }
func (*flipTranslator) Producer(_ []byte, _ int32, p wire.BatchProducer) (wire.BatchProducer, bool) {
	return p, false
}
func (f *flipTranslator) EpochBase() int32 {
	f.n++
	if f.n%2 == 1 {
		return f.base
	}
	return -f.base
}

var _ wire.Translator = (*flipTranslator)(nil)

// bigFetchResponse is a v17 fetch response carrying about 1 MiB of record
// batches of roughly batchSize bytes, over 2 topics of 4 partitions.
func bigFetchResponse(batchSize int) []byte {
	resp := kmsg.NewPtrFetchResponse()
	perPart := (1 << 20) / 8
	for _, id := range [][16]byte{upA, upB} {
		tp := kmsg.NewFetchResponseTopic()
		tp.TopicID = id
		for p := range 4 {
			fp := kmsg.NewFetchResponseTopicPartition()
			fp.Partition, fp.HighWatermark = int32(p), 1<<30
			fp.CurrentLeader.LeaderID, fp.CurrentLeader.LeaderEpoch = 1, 7
			var recs []byte
			for off := int64(0); len(recs) < perPart; off += 8 {
				recs = append(recs, makeBatch(off, 5, 8, batchSize/8-20)...)
			}
			fp.RecordBatches = recs
			tp.Partitions = append(tp.Partitions, fp)
		}
		resp.Topics = append(resp.Topics, tp)
	}
	return encodeResponse(resp, 17)
}

// bigProduceRequest is a v13 produce request carrying about 1 MiB of record
// batches, over 2 topics of 4 partitions.
func bigProduceRequest() []byte {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30000
	for _, id := range [][16]byte{cliA, cliB} {
		tp := kmsg.ProduceRequestTopic{TopicID: id}
		for p := range 4 {
			var recs []byte
			for len(recs) < (1<<20)/8 {
				recs = append(recs, makeBatch(0, -1, 16, 1000)...)
			}
			tp.Partitions = append(tp.Partitions, kmsg.ProduceRequestTopicPartition{Partition: int32(p), Records: recs})
		}
		req.Topics = append(req.Topics, tp)
	}
	return requestFrame(req, 13)
}

func BenchmarkFetchResponsePatch(b *testing.B) {
	for _, batchSize := range []int{16 << 10, 1 << 10} {
		b.Run(fmt.Sprintf("batch=%dB", batchSize), func(b *testing.B) {
			frame := bigFetchResponse(batchSize)
			tr := &flipTranslator{base: base3}
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := wire.RewriteResponse(1, 17, frame, tr)
				if err != nil || out != nil {
					b.Fatalf("RewriteResponse = %d bytes, %v; want an in-place patch", len(out), err)
				}
			}
		})
	}
}

func BenchmarkProduceRequestPatch(b *testing.B) {
	frame := bigProduceRequest()
	h, err := wire.ParseRequestHeader(frame)
	if err != nil {
		b.Fatal(err)
	}
	tr := &flipTranslator{}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		out, err := wire.RewriteRequest(h, frame, tr)
		if err != nil || out != nil {
			b.Fatalf("RewriteRequest = %d bytes, %v; want an in-place patch", len(out), err)
		}
	}
}

// The data path patches in place and must not allocate.
func TestInPlacePathsDoNotAllocate(t *testing.T) {
	fetchWithTags := encodeResponse(fetchFixture(17, upstreamView(false)), 17)
	fetchV11 := encodeResponse(fetchFixture(11, upstreamView(false)), 11)
	fetchV4 := encodeResponse(fetchFixture(4, upstreamView(false)), 4)
	produceResp := encodeResponse(produceResponseFixture(13, upstreamView(false)), 13)
	produceReq := requestFrame(produceRequestFixture(13, identityID), 13)
	produceReqV9 := requestFrame(produceRequestFixture(9, identityID), 9)
	big := bigFetchResponse(16 << 10)
	cases := []struct {
		name string
		run  func(tr wire.Translator) error
	}{
		{"Fetch v17 1 MiB", func(tr wire.Translator) error { return inPlace(wire.RewriteResponse(1, 17, big, tr)) }},
		{"Fetch v17 tags", func(tr wire.Translator) error { return inPlace(wire.RewriteResponse(1, 17, fetchWithTags, tr)) }},
		{"Fetch v11", func(tr wire.Translator) error { return inPlace(wire.RewriteResponse(1, 11, fetchV11, tr)) }},
		{"Fetch v4", func(tr wire.Translator) error { return inPlace(wire.RewriteResponse(1, 4, fetchV4, tr)) }},
		{"Produce response v13", func(tr wire.Translator) error {
			return inPlace(wire.RewriteResponse(0, 13, produceResp, tr))
		}},
		{"Produce request v13", func(tr wire.Translator) error {
			h, _ := wire.ParseRequestHeader(produceReq)
			if _, err := wire.Acks(h, produceReq); err != nil {
				return err
			}
			return inPlace(wire.RewriteRequest(h, produceReq, tr))
		}},
		{"Produce request v9", func(tr wire.Translator) error {
			h, _ := wire.ParseRequestHeader(produceReqV9)
			return inPlace(wire.RewriteRequest(h, produceReqV9, tr))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, base := range testBases {
				tr := &flipTranslator{base: base}
				if err := c.run(tr); err != nil {
					t.Fatal(err)
				}
				allocs := testing.AllocsPerRun(50, func() { _ = c.run(tr) })
				if allocs != 0 {
					t.Errorf("base %d: %v allocations per call, want 0", base, allocs)
				}
			}
		})
	}
}

func inPlace(out []byte, err error) error {
	if err != nil {
		return err
	}
	if out != nil {
		return fmt.Errorf("got a new frame of %d bytes, want an in-place patch", len(out))
	}
	return nil
}
