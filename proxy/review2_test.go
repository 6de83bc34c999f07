package proxy_test

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReviewFirstProduceOverOneMiB: a client connection whose first request
// after ApiVersions is a Produce of about 1.4 MiB (two batches of 700 KiB,
// each under the broker's message.max.bytes) gets no answer: the gateway
// closes it for a frame over the pre-authentication cap.
func TestReviewFirstProduceOverOneMiB(t *testing.T) {
	b := newBed(t)
	c := b.rawConn()
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
	c.write(c.frame(av))
	avResp := kmsg.NewPtrApiVersionsResponse()
	avResp.Version = 3
	c.read(avResp)

	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks = 1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p := range int32(2) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = batch(t, strings.Repeat("x", 700<<10))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	frame := c.frame(req)
	t.Logf("Produce frame of %d bytes", len(frame))
	// Control: the same Produce after a Metadata is answered.
	ctl := b.rawConn()
	ctl.metadata()
	ctl.write(ctl.frame(req))
	ctlResp := kmsg.NewPtrProduceResponse()
	ctlResp.Version = 7
	ctl.read(ctlResp)
	t.Logf("after a Metadata the same Produce is answered: %+v", ctlResp.Topics[0].Partitions[0].ErrorCode)

	c.write(frame)
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 7
	c.read(resp) // fails the test if the gateway closed the connection
}

// batch encodes one record batch holding value.
func batch(t *testing.T, value string) []byte {
	rb := kmsg.RecordBatch{Magic: 2, NumRecords: 1, FirstTimestamp: 1, MaxTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1}
	r := kmsg.Record{Value: []byte(value), OffsetDelta: 0}
	var recs []byte
	recs = r.AppendTo(recs)
	_ = kgo.Record{}
	rb.Records = recs
	rb.Length = 0
	out := rb.AppendTo(nil)
	return out
}
