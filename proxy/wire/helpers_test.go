package wire_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/wire"
)

// Topic ids. Upstream ids (the cluster's) and client ids (the gateway's) are
// disjoint, so translating an id twice gives the zero id and a translation
// applied in the wrong direction gives the zero id too: both show up.
var (
	upA, cliA             = uuid(0xa1), uuid(0xc1)
	upB, cliB             = uuid(0xa2), uuid(0xc2)
	upUnknown, cliUnknown = uuid(0xaf), uuid(0xcf) // known to neither map
)

func uuid(b byte) [16]byte {
	var u [16]byte
	for i := range u {
		u[i] = b ^ byte(i)
	}
	return u
}

type learnedBroker struct {
	Node int32
	Host string
	Port int32
}

type learnedTopic struct {
	Name string
	ID   [16]byte
}

// fakeTranslator is a map-based wire.Translator that records what it learns.
type fakeTranslator struct {
	base int32
	// clientCluster / upstreamCluster are what ClusterIDs returns.
	clientCluster, upstreamCluster string
	client                         map[[16]byte][16]byte // upstream id -> client id
	upstream                       map[[16]byte][16]byte // client id -> upstream id
	brokers                        []learnedBroker
	topics                         []learnedTopic
	// producerIDs records LearnProducerID calls.
	producerIDs []int64
	// mapProducer, when set, answers Producer (and MapsProducers is true);
	// producerCalls records the calls, topic copied.
	mapProducer   func(p wire.BatchProducer) (wire.BatchProducer, bool)
	producerCalls []producerCall
}

type producerCall struct {
	Topic     string
	Partition int32
	Producer  wire.BatchProducer
}

var _ wire.Translator = (*fakeTranslator)(nil)

const (
	gwHost          = "gw.example"
	routeCluster    = "route-cluster" // the cluster id clients see
	upstreamCluster = "cluster-x"     // the cluster's own
)

func newFake(base int32) *fakeTranslator {
	f := &fakeTranslator{
		base:            base,
		clientCluster:   routeCluster,
		upstreamCluster: upstreamCluster,
		client:          map[[16]byte][16]byte{},
		upstream:        map[[16]byte][16]byte{},
	}
	f.mapID(upA, cliA)
	f.mapID(upB, cliB)
	return f
}

func (f *fakeTranslator) mapID(up, cli [16]byte) {
	f.client[up] = cli
	f.upstream[cli] = up
}

func (f *fakeTranslator) Advertise(node int32) (string, int32, bool) {
	if node < 0 || node > 9 {
		return "", 0, false
	}
	return gwHost, 20000 + node, true
}

func (f *fakeTranslator) LearnBroker(node int32, host string, port int32) {
	f.brokers = append(f.brokers, learnedBroker{node, host, port})
}

func (f *fakeTranslator) LearnTopic(name string, id [16]byte) {
	f.topics = append(f.topics, learnedTopic{name, id})
}

func (f *fakeTranslator) ClientTopicID(up [16]byte) [16]byte    { return f.client[up] }
func (f *fakeTranslator) UpstreamTopicID(cli [16]byte) [16]byte { return f.upstream[cli] }
func (f *fakeTranslator) EpochBase() int32                      { return f.base }
func (f *fakeTranslator) ClusterIDs() (client, upstream string) {
	return f.clientCluster, f.upstreamCluster
}
func (f *fakeTranslator) LearnProducerID(id int64) { f.producerIDs = append(f.producerIDs, id) }
func (f *fakeTranslator) MapsProducers() bool      { return f.mapProducer != nil }
func (f *fakeTranslator) Producer(topic []byte, partition int32, p wire.BatchProducer) (wire.BatchProducer, bool) {
	f.producerCalls = append(f.producerCalls, producerCall{string(topic), partition, p})
	if f.mapProducer == nil {
		return p, false
	}
	return f.mapProducer(p)
}

// learned reports whether LearnBroker was called with exactly this address.
func (f *fakeTranslator) learned(node int32, host string, port int32) bool {
	for _, b := range f.brokers {
		if b == (learnedBroker{node, host, port}) {
			return true
		}
	}
	return false
}

// Test bases: none, and route epoch 3.
var (
	base3     = wire.EpochBase(3)
	testBases = []int32{0, base3}
)

// toClientEpoch is the expected client view of an upstream leader epoch,
// written out independently of wire.ClientEpoch.
func toClientEpoch(e, base int32) int32 {
	if e < 0 {
		return e
	}
	return e + base
}

// toUpstreamEpoch is the expected upstream view of a client's leader epoch.
func toUpstreamEpoch(e, base int32) int32 {
	switch {
	case e < 0:
		return e
	case e < base:
		return -1
	default:
		return e - base
	}
}

// toClientID / toUpstreamID: the expected id translations (zero for unknown
// ids, and the zero id stays zero).
func toClientID(id [16]byte) [16]byte {
	return map[[16]byte][16]byte{upA: cliA, upB: cliB}[id]
}

func toUpstreamID(id [16]byte) [16]byte {
	return map[[16]byte][16]byte{cliA: upA, cliB: upB}[id]
}

func strp(s string) *string { return &s }

// ---- frames ----------------------------------------------------------------

const (
	testCorr     int32 = 0x0a0b0c0d
	testClientID       = "turnout-test"
)

// responseFrame wraps a response body: size prefix, correlation id, and the
// empty tag section of a flexible response header (never for ApiVersions).
func responseFrame(key kmsg.Key, version int16, body []byte) []byte {
	f := make([]byte, 8, 9+len(body))
	binary.BigEndian.PutUint32(f[4:], uint32(testCorr))
	if key != kmsg.ApiVersions && wire.RequestFlexible(key, version) {
		f = append(f, 0)
	}
	f = append(f, body...)
	binary.BigEndian.PutUint32(f, uint32(len(f)-4))
	return f
}

func encodeResponse(resp kmsg.Response, version int16) []byte {
	resp.SetVersion(version)
	return responseFrame(kmsg.Key(resp.Key()), version, resp.AppendTo(nil))
}

// requestFrame builds a request frame with header v1, or v2 (an empty tag
// section) when the request is flexible.
func requestFrame(req kmsg.Request, version int16) []byte {
	req.SetVersion(version)
	f := make([]byte, 4, 64)
	f = binary.BigEndian.AppendUint16(f, uint16(kmsg.Key(req.Key())))
	f = binary.BigEndian.AppendUint16(f, uint16(version))
	f = binary.BigEndian.AppendUint32(f, uint32(testCorr))
	f = binary.BigEndian.AppendUint16(f, uint16(len(testClientID)))
	f = append(f, testClientID...)
	if wire.RequestFlexible(kmsg.Key(req.Key()), version) {
		f = append(f, 0)
	}
	f = req.AppendTo(f)
	binary.BigEndian.PutUint32(f, uint32(len(f)-4))
	return f
}

// checkFrame asserts the size prefix and the correlation id of a frame.
func checkFrame(t testing.TB, frame []byte) {
	t.Helper()
	if len(frame) < 8 {
		t.Fatalf("frame of %d bytes", len(frame))
	}
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
		t.Fatalf("size prefix %d, frame has %d bytes after it", n, len(frame)-4)
	}
	if c := wire.CorrelationID(frame); c != testCorr {
		t.Fatalf("correlation id %#x, want %#x", c, testCorr)
	}
}

// rewriteResponse runs wire.RewriteResponse and returns the frame to send
// and whether it was patched in place.
func rewriteResponse(t testing.TB, key kmsg.Key, version int16, frame []byte, tr wire.Translator) (out []byte, inPlace bool) {
	t.Helper()
	out, err := wire.RewriteResponse(key, version, frame, tr)
	if err != nil {
		t.Fatalf("RewriteResponse(%s v%d): %v", key.Name(), version, err)
	}
	if out == nil {
		return frame, true
	}
	return out, false
}

func decodeResponse(t testing.TB, frame []byte, resp kmsg.Response, version int16) {
	t.Helper()
	checkFrame(t, frame)
	off, err := wire.ResponseBodyOffset(frame, kmsg.Key(resp.Key()), version)
	if err != nil {
		t.Fatalf("ResponseBodyOffset: %v", err)
	}
	resp.SetVersion(version)
	if err := resp.ReadFrom(frame[off:]); err != nil {
		t.Fatalf("decoding %s v%d response: %v", kmsg.NameForKey(resp.Key()), version, err)
	}
}

func parseHeader(t testing.TB, frame []byte) wire.RequestHeader {
	t.Helper()
	h, err := wire.ParseRequestHeader(frame)
	if err != nil {
		t.Fatalf("ParseRequestHeader: %v", err)
	}
	return h
}

// rewriteRequest runs wire.RewriteRequest on a frame built by requestFrame.
func rewriteRequest(t testing.TB, frame []byte, tr wire.Translator) (out []byte, inPlace bool) {
	t.Helper()
	h := parseHeader(t, frame)
	out, err := wire.RewriteRequest(h, frame, tr)
	if err != nil {
		t.Fatalf("RewriteRequest(%s v%d): %v", h.Key.Name(), h.Version, err)
	}
	if out == nil {
		return frame, true
	}
	return out, false
}

func decodeRequest(t testing.TB, frame []byte, req kmsg.Request, version int16) {
	t.Helper()
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
		t.Fatalf("size prefix %d, frame has %d bytes after it", n, len(frame)-4)
	}
	h := parseHeader(t, frame)
	if h.Key != kmsg.Key(req.Key()) || h.Version != version || h.CorrelationID != testCorr {
		t.Fatalf("header says %d v%d corr %#x, want %d v%d corr %#x", h.Key, h.Version, h.CorrelationID, kmsg.Key(req.Key()), version, testCorr)
	}
	req.SetVersion(version)
	if err := req.ReadFrom(frame[h.BodyOffset:]); err != nil {
		t.Fatalf("decoding %s v%d request: %v", kmsg.NameForKey(req.Key()), version, err)
	}
}

// ---- record batches ----------------------------------------------------------

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// makeBatch builds a valid v2 record batch: length and CRC are computed. The
// CRC does not cover the partition leader epoch, so batches that differ only
// in epoch are otherwise byte-identical.
func makeBatch(firstOffset int64, epoch int32, nrec, valueSize int) []byte {
	var recs []byte
	for i := range nrec {
		r := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Key:              fmt.Appendf(nil, "key-%d", i),
			Value:            bytes.Repeat([]byte{byte('a' + i%26)}, valueSize),
			Headers:          []kmsg.Header{{Key: "h", Value: []byte{byte(i)}}},
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // everything after a one-byte zero length
		recs = r.AppendTo(recs)
	}
	return sealBatch(kmsg.RecordBatch{
		FirstOffset:          firstOffset,
		PartitionLeaderEpoch: epoch,
		Magic:                2,
		LastOffsetDelta:      int32(nrec - 1),
		FirstTimestamp:       1_700_000_000_000,
		MaxTimestamp:         1_700_000_000_000 + int64(nrec-1),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(nrec),
		Records:              recs,
	})
}

// sealBatch encodes a batch with its length and CRC computed.
func sealBatch(b kmsg.RecordBatch) []byte {
	raw := b.AppendTo(nil)
	b.Length = int32(len(raw) - 12)
	b.CRC = int32(crc32.Checksum(raw[21:], castagnoli))
	return b.AppendTo(nil)
}

// batches is the record set of one fetched partition: two complete batches
// and, when partial, the first part of a third (as brokers send at the end of
// a fetch that hit max bytes).
func batches(epoch int32, partial bool) []byte {
	out := makeBatch(100, epoch, 3, 20)
	out = append(out, makeBatch(103, epoch, 2, 50)...)
	if partial {
		out = append(out, makeBatch(105, epoch, 4, 40)[:45]...)
	}
	return out
}

// checkBatches asserts every complete batch in records has the given leader
// epoch and a valid CRC, and that the partial batch at the end (if its header
// is there) carries the epoch too.
func checkBatches(t testing.TB, records []byte, epoch int32) {
	t.Helper()
	pos := 0
	for pos+61 <= len(records) {
		length := int(binary.BigEndian.Uint32(records[pos+8:]))
		end := pos + 12 + length
		if end > len(records) {
			break
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(records[pos:end]); err != nil {
			t.Fatalf("batch at %d: %v", pos, err)
		}
		if b.PartitionLeaderEpoch != epoch {
			t.Errorf("batch at %d: PartitionLeaderEpoch %d, want %d", pos, b.PartitionLeaderEpoch, epoch)
		}
		if crc := int32(crc32.Checksum(records[pos+21:end], castagnoli)); crc != b.CRC {
			t.Errorf("batch at %d: CRC %#x, computed %#x", pos, b.CRC, crc)
		}
		pos = end
	}
	if pos+17 <= len(records) {
		if e := int32(binary.BigEndian.Uint32(records[pos+12:])); e != epoch {
			t.Errorf("partial batch at %d: epoch %d, want %d", pos, e, epoch)
		}
	}
}
