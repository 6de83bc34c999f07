package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/wire"
)

// The seed corpora live in testdata/fuzz/<Name>/: frames built with kmsg for
// the keys the gateway rewrites, at old, flexible and newest versions.

// FuzzRequest: any frame a client sends goes through ParseRequestHeader and
// RewriteRequest without a panic; a new frame keeps the header, has a right
// size prefix and decodes.
func FuzzRequest(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, err := wire.ParseRequestHeader(frame)
		if err != nil {
			return
		}
		if h.BodyOffset < 14 || h.BodyOffset > len(frame) {
			t.Fatalf("BodyOffset %d in a %d-byte frame", h.BodyOffset, len(frame))
		}
		// The third translator maps every idempotent producer.
		translators := []*fakeTranslator{newFake(0), newFake(base3), newFake(base3)}
		translators[2].mapProducer = func(p wire.BatchProducer) (wire.BatchProducer, bool) {
			return wire.BatchProducer{ID: p.ID + 1, Epoch: 0, Sequence: p.Sequence}, true
		}
		for _, tr := range translators {
			in := bytes.Clone(frame)
			out, err := wire.RewriteRequest(h, in, tr)
			if err != nil {
				if out != nil {
					t.Fatalf("both a frame and an error: %v", err)
				}
				continue
			}
			if h.Key == kmsg.Produce {
				_, _ = wire.Acks(h, in)
			}
			if out == nil {
				continue
			}
			if n := binary.BigEndian.Uint32(out); int(n) != len(out)-4 {
				t.Fatalf("size prefix %d for %d bytes", n, len(out)-4)
			}
			if !bytes.Equal(out[4:h.BodyOffset], frame[4:h.BodyOffset]) {
				t.Fatalf("header changed")
			}
			req := h.Key.Request()
			req.SetVersion(h.Version)
			if err := req.ReadFrom(out[h.BodyOffset:]); err != nil {
				t.Fatalf("rewritten %s v%d does not decode: %v", h.Key.Name(), h.Version, err)
			}
		}
	})
}

// FuzzResponse: any body the cluster sends for a key and version goes
// through RewriteResponse without a panic; a new frame keeps the correlation
// id, has a right size prefix and decodes. The frame is built the way
// ReadFrame delivers one (size prefix and correlation id, at least 8 bytes);
// the response header tags, if any, are part of the fuzzed bytes.
func FuzzResponse(f *testing.F) {
	f.Add(int16(3), int16(12), []byte{0})
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		for _, base := range testBases {
			frame := make([]byte, 8, 8+len(body))
			binary.BigEndian.PutUint32(frame[4:], uint32(testCorr))
			frame = append(frame, body...)
			binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
			out, err := wire.RewriteResponse(kmsg.Key(key), version, frame, newFake(base))
			if err != nil || out == nil {
				continue
			}
			checkFrame(t, out)
			resp := kmsg.ResponseForKey(key)
			off, err := wire.ResponseBodyOffset(out, kmsg.Key(key), version)
			if err != nil {
				t.Fatalf("rewritten frame: %v", err)
			}
			resp.SetVersion(version)
			err = resp.ReadFrom(out[off:])
			if err != nil && kmsg.Key(key) == kmsg.ApiVersions { // answered in v0, whatever was asked
				resp.SetVersion(0)
				err = resp.ReadFrom(out[off:])
			}
			if err != nil {
				t.Fatalf("rewritten %s v%d does not decode: %v", kmsg.Key(key).Name(), version, err)
			}
		}
	})
}

// FuzzReadFrame: a byte stream reads as whole frames, each exactly as sent,
// until a known error.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, stream []byte) {
		const limit = 1 << 16
		r := bytes.NewReader(stream)
		pos := 0
		for {
			bp, err := wire.ReadFrame(r, limit)
			if err != nil {
				switch {
				case errors.Is(err, io.EOF):
					if pos != len(stream) {
						t.Fatalf("io.EOF at %d of %d bytes", pos, len(stream))
					}
				case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, wire.ErrFrameTooSmall):
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			frame := *bp
			n := int(binary.BigEndian.Uint32(frame))
			if len(frame) != n+4 || n < 4 || n > limit {
				t.Fatalf("frame of %d bytes with size %d", len(frame), n)
			}
			if !bytes.Equal(frame, stream[pos:pos+len(frame)]) {
				t.Fatalf("frame at %d differs from the stream", pos)
			}
			pos += len(frame)
			wire.PutBuffer(bp)
		}
	})
}
