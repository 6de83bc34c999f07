package wire

import "encoding/binary"

const consumerGroupHeartbeatKey = 68

// Kafka error codes the gateway rewrites.
const (
	errGroupIDNotFound   = 69
	errFencedMemberEpoch = 110
)

// HeartbeatMemberEpoch reads the member epoch of a ConsumerGroupHeartbeat
// request (group id, member id, then the epoch), or 0.
func HeartbeatMemberEpoch(h RequestHeader, frame []byte) int32 {
	if h.Key != consumerGroupHeartbeatKey {
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
	off, err := ResponseBodyOffset(frame, consumerGroupHeartbeatKey, version)
	if err != nil || len(frame) < off+6 {
		return
	}
	code := frame[off+4 : off+6] // after the throttle time
	if int16(binary.BigEndian.Uint16(code)) == errGroupIDNotFound {
		binary.BigEndian.PutUint16(code, errFencedMemberEpoch)
	}
}
