package wire_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/wire"
)

// The gateway's own Fetch answer decodes at every version as an empty
// response with no fetch session, under the right correlation id.
func TestEmptyFetchResponse(t *testing.T) {
	for v := int16(0); v <= new(kmsg.FetchRequest).MaxVersion(); v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			frame := wire.EmptyFetchResponse(77, v)
			if int(binary.BigEndian.Uint32(frame)) != len(frame)-4 || wire.CorrelationID(frame) != 77 {
				t.Fatalf("bad frame %x", frame)
			}
			off, err := wire.ResponseBodyOffset(frame, 1, v)
			if err != nil {
				t.Fatal(err)
			}
			resp := kmsg.FetchResponse{Version: v}
			if err := resp.ReadFrom(frame[off:]); err != nil || len(resp.Topics) != 0 || resp.SessionID != 0 || resp.ErrorCode != 0 {
				t.Fatalf("decoded %+v, %v", resp, err)
			}
		})
	}
}

// The placeholder is an ApiVersions v0 request a broker can parse.
func TestPlaceholder(t *testing.T) {
	frame := wire.Placeholder(91)
	h, err := wire.ParseRequestHeader(frame)
	if err != nil || h.Key != kmsg.ApiVersions || h.Version != 0 || h.CorrelationID != 91 || h.BodyOffset != len(frame) {
		t.Fatalf("header %+v, %v", h, err)
	}
	if err := new(kmsg.ApiVersionsRequest).ReadFrom(frame[h.BodyOffset:]); err != nil {
		t.Fatal(err)
	}
}

// A joined member that meets an unknown group after a switch is fenced, so
// it rejoins; other errors and other members are left alone.
func TestFenceLostMember(t *testing.T) {
	for _, tc := range []struct {
		code, want int16
	}{{69, 110}, {0, 0}, {25, 25}} {
		resp := kmsg.ConsumerGroupHeartbeatResponse{Version: 0, ErrorCode: tc.code}
		frame := encodeHeartbeatResponse(resp)
		wire.FenceLostMember(frame, 0)
		got := kmsg.ConsumerGroupHeartbeatResponse{Version: 0}
		if err := got.ReadFrom(frame[9:]); err != nil || got.ErrorCode != tc.want {
			t.Errorf("error %d became %d (%v), want %d", tc.code, got.ErrorCode, err, tc.want)
		}
	}
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = "g", "m", 7
	frame := requestFrame(req, 0)
	h, _ := wire.ParseRequestHeader(frame)
	if e := wire.HeartbeatMemberEpoch(h, frame); e != 7 {
		t.Errorf("member epoch read as %d, want 7", e)
	}
}

func encodeHeartbeatResponse(resp kmsg.ConsumerGroupHeartbeatResponse) []byte {
	frame := []byte{0, 0, 0, 0, 0, 0, 0, 5, 0} // size, correlation id, no header tags
	frame = resp.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	return frame
}

// After a switch, a position check with an epoch from the other cluster
// asks about the current epoch instead, which the broker answers with the
// log end rather than an undefined offset.
func TestOffsetForLeaderEpochAfterSwitch(t *testing.T) {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = 4
	req.ReplicaID = -1
	topic := kmsg.NewOffsetForLeaderEpochRequestTopic()
	topic.Topic = "orders"
	const base = 2 << 20
	for _, e := range [][2]int32{{base + 3, 5}, {base + 3, base + 2}} { // current, last fetched
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		p.CurrentLeaderEpoch, p.LeaderEpoch = e[0], e[1]
		topic.Partitions = append(topic.Partitions, p)
	}
	req.Topics = append(req.Topics, topic)
	frame := requestFrame(req, 4)
	h, _ := wire.ParseRequestHeader(frame)
	out, err := wire.RewriteRequest(h, frame, newFake(base))
	if err != nil || out == nil {
		t.Fatalf("rewrite: %v", err)
	}
	got := kmsg.OffsetForLeaderEpochRequest{Version: 4}
	oh, _ := wire.ParseRequestHeader(out)
	if err := got.ReadFrom(out[oh.BodyOffset:]); err != nil {
		t.Fatal(err)
	}
	ps := got.Topics[0].Partitions
	if ps[0].CurrentLeaderEpoch != 3 || ps[0].LeaderEpoch != 3 {
		t.Errorf("an epoch from before the switch: %+v, want current 3 asked for epoch 3", ps[0])
	}
	if ps[1].CurrentLeaderEpoch != 3 || ps[1].LeaderEpoch != 2 {
		t.Errorf("an epoch from this cluster: %+v, want 3 and 2", ps[1])
	}
}
