package wire

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka error codes the gateway rewrites.
const (
	errGroupIDNotFound   = 69
	errFencedMemberEpoch = 110
)

// HeartbeatMemberEpoch reads the member epoch of a ConsumerGroupHeartbeat
// request (group id, member id, then the epoch), or 0.
func HeartbeatMemberEpoch(h RequestHeader, frame []byte) int32 {
	if h.Key != kmsg.ConsumerGroupHeartbeat {
		return 0
	}
	r := reader{src: frame[h.BodyOffset:]}
	r.skipString(true)
	r.skipString(true)
	e := r.int32()
	if r.err != nil {
		return 0
	}
	return e
}

// FenceLostMember turns GROUP_ID_NOT_FOUND in a ConsumerGroupHeartbeat
// response frame into FENCED_MEMBER_EPOCH, which makes the member rejoin.
// The caller decides when that is right: for a member that had joined, on
// a route that switched clusters.
func FenceLostMember(frame []byte, version int16) {
	off, err := ResponseBodyOffset(frame, kmsg.ConsumerGroupHeartbeat, version)
	if err != nil || len(frame) < off+6 {
		return
	}
	code := frame[off+4 : off+6] // after the throttle time
	if int16(binary.BigEndian.Uint16(code)) == errGroupIDNotFound {
		binary.BigEndian.PutUint16(code, errFencedMemberEpoch)
	}
}

// EmptyFetchResponse is a Fetch response frame with no data and no fetch
// session, for a fetch the gateway holds back: the client fetches again
// (starting a new session), as after a broker's empty long poll.
func EmptyFetchResponse(correlationID int32, version int16) []byte {
	resp := kmsg.FetchResponse{Version: version}
	head := []byte{0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(head[4:], uint32(correlationID))
	if RequestFlexible(kmsg.Fetch, version) {
		head = append(head, 0) // no header tags
	}
	return reframe(head, resp.AppendTo)
}

// Placeholder is a request frame the gateway sends to the cluster in place
// of one it answers itself, so that responses stay in step with requests:
// an ApiVersions v0, which every broker answers at once and which changes
// nothing.
func Placeholder(correlationID int32) []byte {
	frame := make([]byte, 14)
	binary.BigEndian.PutUint32(frame, 10)
	binary.BigEndian.PutUint16(frame[4:], uint16(kmsg.ApiVersions))
	binary.BigEndian.PutUint32(frame[8:], uint32(correlationID))
	binary.BigEndian.PutUint16(frame[12:], 0xffff) // null client id
	return frame
}
