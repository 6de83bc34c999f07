// Package wire is the gateway's view of the Kafka protocol: frames, headers,
// and the rewrites that make a cluster look like the gateway. Record batches
// are never decoded; messages that carry them are patched in place, and only
// small control messages are decoded and re-encoded with kmsg.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Frame errors close the one connection that sent the frame.
var (
	ErrFrameTooLarge = errors.New("frame exceeds the gateway's maximum frame size")
	ErrFrameTooSmall = errors.New("frame is too short for a Kafka header")
)

// ReadFrame reads one size-prefixed frame into a buffer from the pool and
// returns it with the prefix included. The caller returns it with PutBuffer.
func ReadFrame(r io.Reader, max int32) (*[]byte, error) {
	size, n, err := readSize(r, max)
	if err != nil {
		return nil, err
	}
	bp := GetBuffer(int(n) + 4)
	copy(*bp, size[:])
	if err := readBody(r, *bp, 4); err != nil {
		PutBuffer(bp)
		return nil, err
	}
	return bp, nil
}

// growFrom is the buffer ReadFrameGrowing starts a frame in.
const growFrom = 64 << 10

// ReadFrameGrowing reads a frame as ReadFrame does, but grows its buffer
// (doubling it) as the bytes arrive instead of allocating the size the
// prefix declares: a peer not yet trusted makes the gateway hold about what
// it actually sent, not what it claims it will. The copies cost about one
// more pass over the frame.
func ReadFrameGrowing(r io.Reader, max int32) (*[]byte, error) {
	size, n, err := readSize(r, max)
	if err != nil {
		return nil, err
	}
	total := int(n) + 4
	have := min(total, growFrom)
	bp := GetBuffer(have)
	copy(*bp, size[:])
	filled := 4
	for {
		if err := readBody(r, *bp, filled); err != nil {
			PutBuffer(bp)
			return nil, err
		}
		if have == total {
			return bp, nil
		}
		filled, have = have, min(total, 2*have)
		next := GetBuffer(have)
		copy(*next, (*bp)[:filled])
		PutBuffer(bp)
		bp = next
	}
}

// readSize reads a frame's size prefix and checks it against max.
func readSize(r io.Reader, max int32) ([4]byte, int32, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return size, 0, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	switch {
	case n < 0 || n > max:
		return size, 0, fmt.Errorf("%w: %d bytes (limit %d)", ErrFrameTooLarge, uint32(n), max)
	case n < 4:
		return size, 0, fmt.Errorf("%w: %d bytes", ErrFrameTooSmall, n)
	}
	return size, n, nil
}

// readBody fills b from offset from; a frame cut short is
// io.ErrUnexpectedEOF.
func readBody(r io.Reader, b []byte, from int) error {
	_, err := io.ReadFull(r, b[from:])
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Buffers come from power-of-two pools so that a connection holds no memory
// between frames and the forwarding path allocates nothing in steady state.
const minClass, maxClass = 9, 27 // 512 B .. 128 MiB

var pools [maxClass + 1]sync.Pool

func class(n int) int {
	c := minClass
	for 1<<c < n {
		c++
	}
	return c
}

// GetBuffer returns a buffer of length n.
func GetBuffer(n int) *[]byte {
	c := class(n)
	if c > maxClass {
		b := make([]byte, n)
		return &b
	}
	if bp, ok := pools[c].Get().(*[]byte); ok {
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, 1<<c)
	return &b
}

// PutBuffer returns a buffer obtained from GetBuffer or ReadFrame.
func PutBuffer(bp *[]byte) {
	c := class(cap(*bp))
	if c > maxClass || 1<<c != cap(*bp) {
		return
	}
	pools[c].Put(bp)
}

// RequestHeader is the part of a request header the gateway routes on.
type RequestHeader struct {
	Key           kmsg.Key
	Version       int16
	CorrelationID int32
	// BodyOffset is where the request body starts in the frame (after the
	// size prefix, header and any header tags).
	BodyOffset int
}

// ParseRequestHeader reads the header of a request frame (size prefix
// included). Unknown keys are fine: they are forwarded untouched, and their
// header is read as the non-flexible kind, which is all the gateway needs to
// match the response.
func ParseRequestHeader(frame []byte) (RequestHeader, error) {
	var h RequestHeader
	if len(frame) < 4+8+2 {
		return h, ErrFrameTooSmall
	}
	b := frame[4:]
	h.Key = kmsg.Key(binary.BigEndian.Uint16(b))
	h.Version = int16(binary.BigEndian.Uint16(b[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(b[4:]))
	clientID := int16(binary.BigEndian.Uint16(b[8:]))
	off := 10
	if clientID > 0 {
		off += int(clientID)
	}
	if off > len(b) {
		return h, fmt.Errorf("request header: client id of %d bytes overruns the %d-byte frame", clientID, len(b))
	}
	if RequestFlexible(h.Key, h.Version) {
		n, err := skipTags(b[off:])
		if err != nil {
			return h, fmt.Errorf("request header tags: %w", err)
		}
		off += n
	}
	h.BodyOffset = 4 + off
	return h, nil
}

// ClientID is the client id in a request frame's header, or "".
func ClientID(frame []byte) string {
	if len(frame) < 14 {
		return ""
	}
	n := int(int16(binary.BigEndian.Uint16(frame[12:])))
	if n <= 0 || 14+n > len(frame) {
		return ""
	}
	return string(frame[14 : 14+n])
}

// ResponseBodyOffset is where a response body starts in its frame. The
// response header is flexible when the request was, except for ApiVersions,
// whose response header is always version 0 so that any client can read it.
func ResponseBodyOffset(frame []byte, key kmsg.Key, version int16) (int, error) {
	if len(frame) < 8 {
		return 0, ErrFrameTooSmall
	}
	if key == kmsg.ApiVersions || !RequestFlexible(key, version) {
		return 8, nil
	}
	n, err := skipTags(frame[8:])
	if err != nil {
		return 0, fmt.Errorf("response header tags: %w", err)
	}
	return 8 + n, nil
}

// CorrelationID of a response frame (size prefix included).
func CorrelationID(frame []byte) int32 {
	return int32(binary.BigEndian.Uint32(frame[4:]))
}

// flexibleFrom[key] is the first flexible version of a key, or -1 when the
// key has none or kmsg does not know it.
var flexibleFrom = func() []int16 {
	var out []int16
	for k := int16(0); ; k++ {
		req := kmsg.RequestForKey(k)
		if req == nil {
			if k > 200 {
				return out
			}
			out = append(out, -1)
			continue
		}
		first := int16(-1)
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			if req.IsFlexible() {
				first = v
				break
			}
		}
		out = append(out, first)
	}
}()

// RequestFlexible says whether the request key at version uses the flexible
// (KIP-482) encoding.
func RequestFlexible(key kmsg.Key, version int16) bool {
	if key < 0 || int(key) >= len(flexibleFrom) {
		return false
	}
	f := flexibleFrom[key]
	return f >= 0 && version >= f
}

// maxVersions[key] is the highest version of a key kmsg can parse, or -1.
var maxVersions = func() []int16 {
	out := make([]int16, len(flexibleFrom))
	for k := range out {
		out[k] = -1
		if req := kmsg.RequestForKey(int16(k)); req != nil {
			out[k] = req.MaxVersion()
		}
	}
	return out
}()

// MaxVersion is the highest version of key the gateway can parse, or -1.
func MaxVersion(key kmsg.Key) int16 {
	if key < 0 || int(key) >= len(maxVersions) {
		return -1
	}
	return maxVersions[key]
}

// skipTags returns the length of a tagged-field section at the start of b.
func skipTags(b []byte) (int, error) {
	r := reader{src: b}
	r.skipTags()
	return r.off, r.err
}
