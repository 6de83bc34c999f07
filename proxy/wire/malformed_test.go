package wire_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/wire"
)

// mustNotPanic runs fn and turns a panic into a test failure naming the input.
func mustNotPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: panic: %v", what, r)
		}
	}()
	fn()
}

// junkBodies are bodies that cannot be a valid response: a top-level array
// that claims more elements than there are bytes, a string that runs past the
// end, and (flexible versions) a length uvarint that overflows 32 bits. lead
// is the size of the fixed fields before the first array. A negative array
// length other than -1 is junk only to the gateway's own walker: kmsg reads
// it as an empty array, so it is left out for messages kmsg decodes.
func junkBodies(lead int, flexible, walked bool) map[string][]byte {
	z := make([]byte, lead)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	out := map[string][]byte{
		"empty":            {},
		"one byte":         {0x01},
		"array past end":   cat(z, []byte{0x7f, 0xff, 0xff, 0xff}, []byte{1, 2, 3}),
		"string past end":  cat(z, []byte{0, 0, 0, 1}, []byte{0x7f, 0xff}, []byte{'a', 'b'}),
		"negative array":   cat(z, []byte{0x80, 0, 0, 0}, bytes.Repeat([]byte{0}, 32)),
		"truncated fields": z[:max(lead-1, 0)],
	}
	if flexible {
		out = map[string][]byte{
			"empty":             {},
			"one byte":          {0x01},
			"array past end":    cat(z, []byte{0xff, 0xff, 0x03}, []byte{1, 2, 3}),
			"string past end":   cat(z, []byte{0x02}, []byte{0xff, 0x7f}, []byte{'a', 'b'}),
			"uvarint overflow":  cat(z, bytes.Repeat([]byte{0xff}, 12)),
			"truncated fields":  z[:max(lead-1, 0)],
			"tags past the end": cat(z, []byte{0x01, 0x05, 0x00, 0x7f, 0x01}),
		}
	}
	if lead == 0 {
		delete(out, "truncated fields")
	}
	if !walked {
		delete(out, "negative array")
	}
	return out
}

func TestMalformedResponses(t *testing.T) {
	cases := []struct {
		key      kmsg.Key
		versions []int16
		lead     func(v int16) int // bytes of fixed fields before the first array
		valid    func(v int16) []byte
	}{
		{kmsg.Metadata, []int16{0, 1, 3, 7, 9, 12, 13}, func(v int16) int {
			if v >= 3 {
				return 4
			}
			return 0
		}, func(v int16) []byte {
			resp := kmsg.NewPtrMetadataResponse()
			resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: "b1", Port: 9092}}
			tp := kmsg.NewMetadataResponseTopic()
			tp.Topic, tp.TopicID = strp("orders"), upA
			p := kmsg.NewMetadataResponseTopicPartition()
			p.LeaderEpoch, p.Replicas = 4, []int32{1}
			tp.Partitions = []kmsg.MetadataResponseTopicPartition{p}
			resp.Topics = []kmsg.MetadataResponseTopic{tp}
			return encodeResponse(resp, v)
		}},
		{kmsg.Fetch, []int16{0, 1, 4, 7, 11, 12, 13, 16, 17, 18}, func(v int16) int {
			switch {
			case v >= 7:
				return 10
			case v >= 1:
				return 4
			}
			return 0
		}, func(v int16) []byte {
			vw := upstreamView(v >= 16)
			return encodeResponse(fetchFixture(v, vw), v)
		}},
	}
	for _, c := range cases {
		for _, v := range c.versions {
			flexible := wire.RequestFlexible(c.key, v)
			for name, body := range junkBodies(c.lead(v), flexible, c.key == kmsg.Fetch) {
				t.Run(fmt.Sprintf("%s/v%d/%s", c.key.Name(), v, name), func(t *testing.T) {
					for _, base := range testBases {
						frame := responseFrame(c.key, v, body)
						var err error
						mustNotPanic(t, fmt.Sprintf("%x", frame), func() {
							_, err = wire.RewriteResponse(c.key, v, frame, newFake(base))
						})
						if err == nil {
							t.Errorf("base %d: no error for %x", base, body)
						}
					}
				})
			}
			// Every strict prefix of a valid response is malformed.
			t.Run(fmt.Sprintf("%s/v%d/every truncation", c.key.Name(), v), func(t *testing.T) {
				valid := c.valid(v)
				off, _ := wire.ResponseBodyOffset(valid, c.key, v)
				for n := off; n < len(valid); n++ {
					frame := bytes.Clone(valid[:n])
					var err error
					mustNotPanic(t, fmt.Sprintf("%x", frame), func() {
						_, err = wire.RewriteResponse(c.key, v, frame, newFake(base3))
					})
					if err == nil {
						t.Errorf("body truncated to %d of %d bytes: no error", n-off, len(valid)-off)
					}
				}
			})
		}
	}
}

// Random bytes, at every version of every key the gateway rewrites: errors
// are fine, panics are not.
func TestRandomResponsesDoNotPanic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, key := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.ListOffsets, kmsg.Metadata, kmsg.OffsetCommit, kmsg.OffsetFetch, kmsg.FindCoordinator, kmsg.ApiVersions, kmsg.DescribeCluster, kmsg.ConsumerGroupHeartbeat, kmsg.ShareFetch, kmsg.ShareAcknowledge} {
		for v := int16(0); v <= wire.MaxVersion(key); v++ {
			for range 30 {
				body := make([]byte, rng.IntN(200))
				for i := range body {
					// Small bytes make plausible lengths and counts.
					if rng.IntN(3) == 0 {
						body[i] = byte(rng.IntN(256))
					} else {
						body[i] = byte(rng.IntN(4))
					}
				}
				frame := responseFrame(key, v, body)
				mustNotPanic(t, fmt.Sprintf("%s v%d %x", key.Name(), v, frame), func() {
					_, _ = wire.RewriteResponse(key, v, frame, newFake(base3))
				})
			}
		}
	}
}

// RewriteResponse's other paths answer a frame too short for a response
// header with ErrFrameTooSmall; ApiVersions must not do worse. (Frames from
// ReadFrame are never this short, so the proxy itself cannot hit this.)
func TestShortResponseFrames(t *testing.T) {
	for _, key := range []kmsg.Key{kmsg.Metadata, kmsg.Fetch, kmsg.ApiVersions} {
		for n := range 8 {
			t.Run(fmt.Sprintf("%s/%d bytes", key.Name(), n), func(t *testing.T) {
				var err error
				mustNotPanic(t, "", func() { _, err = wire.RewriteResponse(key, 3, make([]byte, n), newFake(0)) })
				if err == nil {
					t.Errorf("no error")
				}
			})
		}
	}
}
