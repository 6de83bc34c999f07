package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrUnsupportedVersion is returned for a request version the gateway cannot
// parse although it must rewrite the message; clients that negotiate with
// ApiVersions never send one, because the gateway caps those versions.
var ErrUnsupportedVersion = errors.New("request version is newer than the gateway can rewrite")

// RewriteRequest translates a request frame for the cluster. It patches the
// frame in place and returns nil, or returns a new frame to send instead.
func RewriteRequest(h RequestHeader, frame []byte, t Translator) ([]byte, error) {
	n, ok := keyTable[h.Key]
	if !ok || h.Key == kmsg.ApiVersions && h.Version < 5 { // only v5+ carries a cluster id
		return nil, nil
	}
	if h.Version > MaxVersion(h.Key) {
		return nil, fmt.Errorf("%s v%d: %w", h.Key.Name(), h.Version, ErrUnsupportedVersion)
	}
	base := t.EpochBase()
	body := frame[h.BodyOffset:]
	if h.Key == kmsg.Produce {
		return nil, patchProduceRequest(body, h.Version, t)
	}
	epochs := n.reqEpochs && base != 0
	if !n.reqTopicIDs && !epochs && !n.reqClusterID {
		return nil, nil
	}
	req := h.Key.Request()
	req.SetVersion(h.Version)
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding %s v%d request: %w", h.Key.Name(), h.Version, err)
	}
	w := walker{t: t, dir: toUpstream, epochs: epochs, base: base, clusterIDs: n.reqClusterID}
	w.walk(reflect.ValueOf(req).Elem())
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		if r.ClusterID == nil {
			r.NodeID = -1 // the broker refuses a node id without a cluster id
		}
	case *kmsg.OffsetForLeaderEpochRequest:
		if epochs {
			askCurrentEpoch(r)
		}
	}
	return reframe(frame[:h.BodyOffset], req.AppendTo), nil
}

// askCurrentEpoch handles a client validating its position after a switch
// (KIP-320) with the epoch of a record it read from the other cluster. That
// epoch means nothing here and became -1, which the broker answers with an
// undefined offset, which the client takes for a truncated log and resets
// to auto.offset.reset (re-reading or skipping a whole partition). Asking
// for the current epoch instead answers with the log end, so the client
// keeps its position, and its group's rejoin moves it to the committed
// offsets that MirrorMaker 2 translated.
func askCurrentEpoch(r *kmsg.OffsetForLeaderEpochRequest) {
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			p := &r.Topics[i].Partitions[j]
			if p.LeaderEpoch < 0 && p.CurrentLeaderEpoch >= 0 {
				p.LeaderEpoch = p.CurrentLeaderEpoch
			}
		}
	}
}

// Acks returns a Produce request's acks; a Produce with acks=0 gets no
// response, so the gateway must not wait for one.
func Acks(h RequestHeader, frame []byte) (int16, error) {
	r := reader{src: frame[h.BodyOffset:]}
	if h.Version >= 3 {
		r.skipString(RequestFlexible(h.Key, h.Version))
	}
	acks := r.int16()
	return acks, r.err
}

// RewriteResponse translates a response frame for the client. It patches the
// frame in place and returns nil, or returns a new frame to send instead.
func RewriteResponse(key kmsg.Key, version int16, frame []byte, t Translator) ([]byte, error) {
	if key == kmsg.ApiVersions {
		return capApiVersions(version, frame)
	}
	if key == kmsg.InitProducerID {
		return nil, learnProducerID(frame, version, t)
	}
	n, ok := keyTable[key]
	if !ok {
		return nil, nil
	}
	off, err := ResponseBodyOffset(frame, key, version)
	if err != nil {
		return nil, err
	}
	body := frame[off:]
	base := t.EpochBase()
	// After an in-place patch only the node endpoints are left to rewrite.
	patched := false
	switch key {
	case kmsg.Fetch, kmsg.Produce:
		if key == kmsg.Produce && version < 10 {
			return nil, nil
		}
		patch := patchFetchResponse
		if key == kmsg.Produce {
			patch = patchProduceResponse
		}
		full, err := patch(body, version, t)
		if !full || err != nil {
			return nil, err
		}
		patched = true
	default:
		if !n.respTopicIDs && !n.respEndpoints && !n.respClusterID && !(n.respEpochs && base != 0) {
			return nil, nil
		}
	}
	resp := key.Response()
	resp.SetVersion(version)
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding %s v%d response: %w", key.Name(), version, err)
	}
	w := walker{t: t, dir: toClient, epochs: n.respEpochs && base != 0, base: base, endpointsOnly: patched, clusterIDs: n.respClusterID}
	w.walk(reflect.ValueOf(resp).Elem())
	return reframe(frame[:off], resp.AppendTo), nil
}

// learnProducerID tells the translator which producer ids the cluster issued,
// so that after a switch it knows which producers crossed it.
func learnProducerID(frame []byte, version int16, t Translator) error {
	off, err := ResponseBodyOffset(frame, kmsg.InitProducerID, version)
	if err != nil {
		return err
	}
	resp := kmsg.InitProducerIDResponse{Version: version}
	if err := resp.ReadFrom(frame[off:]); err != nil {
		return fmt.Errorf("decoding InitProducerID v%d response: %w", version, err)
	}
	if resp.ErrorCode == 0 && resp.ProducerID >= 0 {
		t.LearnProducerID(resp.ProducerID)
	}
	return nil
}

// capApiVersions lowers the versions the broker offers for every key the
// gateway rewrites to the versions it can parse, so that neither a newer
// broker nor a newer client ever makes it meet a version it cannot read.
func capApiVersions(version int16, frame []byte) ([]byte, error) {
	if len(frame) < 8 {
		return nil, ErrFrameTooSmall
	}
	body := frame[8:]
	resp := &kmsg.ApiVersionsResponse{Version: version}
	if err := resp.ReadFrom(body); err != nil {
		// A broker that does not support the request's version answers in
		// version 0, whatever was asked.
		resp = &kmsg.ApiVersionsResponse{Version: 0}
		if err0 := resp.ReadFrom(body); err0 != nil {
			return nil, fmt.Errorf("decoding ApiVersions v%d response: %w", version, err)
		}
	}
	keys := resp.ApiKeys[:0]
	for _, k := range resp.ApiKeys {
		// SaslHandshake stays offered from v0, although a v0 handshake
		// is refused (its SASL tokens come without Kafka framing):
		// librdkafka only uses SASL at all when the broker offers v0, and
		// then asks in v1.
		if key := kmsg.Key(k.ApiKey); Rewrites(key) || key == kmsg.SASLHandshake {
			k.MaxVersion = min(k.MaxVersion, MaxVersion(key))
			if k.MinVersion > k.MaxVersion {
				continue
			}
		}
		keys = append(keys, k)
	}
	resp.ApiKeys = keys
	return reframe(frame[:8], resp.AppendTo), nil
}

// ApiVersionsTooNew is the gateway's own answer to an ApiVersions request of
// a version it cannot parse: UNSUPPORTED_VERSION in version 0, which tells the
// client which ApiVersions versions to retry with.
func ApiVersionsTooNew(correlationID int32) []byte {
	resp := kmsg.ApiVersionsResponse{Version: 0, ErrorCode: 35}
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: kmsg.ApiVersions.Int16(), MaxVersion: MaxVersion(kmsg.ApiVersions)}}
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[4:], uint32(correlationID))
	return reframe(hdr[:], resp.AppendTo)
}

// reframe builds a frame from the original's size prefix and header and a
// new body, and fixes the size prefix.
func reframe(head []byte, appendBody func([]byte) []byte) []byte {
	out := make([]byte, len(head), len(head)+256)
	copy(out, head)
	out = appendBody(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}
