package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"
	"testing/iotest"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/wire"
)

func sizePrefix(n uint32, body ...byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, n), body...)
}

func TestReadFrame(t *testing.T) {
	const limit = 1 << 20
	body := bytes.Repeat([]byte{7}, 40)
	cases := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"2 GiB length", sizePrefix(1 << 31), wire.ErrFrameTooLarge},
		{"negative length", sizePrefix(math.MaxUint32), wire.ErrFrameTooLarge},
		{"just over the limit", sizePrefix(limit + 1), wire.ErrFrameTooLarge},
		{"size 0", sizePrefix(0), wire.ErrFrameTooSmall},
		{"size 3", sizePrefix(3, 1, 2, 3), wire.ErrFrameTooSmall},
		{"truncated body", sizePrefix(40, body[:39]...), io.ErrUnexpectedEOF},
		{"no body", sizePrefix(40), io.ErrUnexpectedEOF},
		{"truncated size", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"nothing", nil, io.EOF},
		{"size 4", sizePrefix(4, 1, 2, 3, 4), nil},
		{"normal", sizePrefix(40, body...), nil},
		{"at the limit", sizePrefix(limit, bytes.Repeat([]byte{1}, limit)...), nil},
	}
	for _, read := range frameReaders {
		for _, c := range cases {
			t.Run(read.name+"/"+c.name, func(t *testing.T) {
				bp, err := read.read(bytes.NewReader(c.in), limit)
				if c.wantErr != nil {
					if !errors.Is(err, c.wantErr) || bp != nil {
						t.Fatalf("%s = %v, %v; want error %v", read.name, bp, err, c.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", read.name, err)
				}
				if !bytes.Equal(*bp, c.in) {
					t.Errorf("frame %x, want %x", *bp, c.in)
				}
				wire.PutBuffer(bp)
			})
		}
	}
}

var frameReaders = []struct {
	name string
	read func(io.Reader, int32) (*[]byte, error)
}{{"ReadFrame", wire.ReadFrame}, {"ReadFrameGrowing", wire.ReadFrameGrowing}}

// offered records the largest buffer a reader was asked to fill.
type offered struct {
	r       io.Reader
	largest int
}

func (o *offered) Read(p []byte) (int, error) {
	o.largest = max(o.largest, len(p))
	return o.r.Read(p)
}

// TestReadFrameGrowingHoldsWhatArrived: a peer that declares a 100 MiB
// frame and sends a few bytes gets no buffer of 100 MiB, only one about
// the size of what it sent; a large frame that does arrive is read whole.
func TestReadFrameGrowingHoldsWhatArrived(t *testing.T) {
	o := &offered{r: bytes.NewReader(sizePrefix(100<<20, bytes.Repeat([]byte{1}, 1000)...))}
	if _, err := wire.ReadFrameGrowing(o, 128<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if o.largest > 64<<10 {
		t.Errorf("a frame cut short after 1000 bytes was read into a buffer of %d bytes", o.largest)
	}
	in := sizePrefix(3<<20+5, bytes.Repeat([]byte{2}, 3<<20+5)...)
	bp, err := wire.ReadFrameGrowing(iotest.HalfReader(bytes.NewReader(in)), 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(*bp, in) {
		t.Error("a 3 MiB frame read growing differs from what was sent")
	}
	wire.PutBuffer(bp)
}

func TestReadFrameStream(t *testing.T) {
	var stream []byte
	var frames [][]byte
	for i := range 5 {
		f := sizePrefix(uint32(4+i*300), bytes.Repeat([]byte{byte(i + 1)}, 4+i*300)...)
		frames = append(frames, f)
		stream = append(stream, f...)
	}
	// One byte at a time, and buffers returned and reused between frames: no
	// frame may show another's bytes.
	r := iotest.OneByteReader(bytes.NewReader(stream))
	for i, want := range frames {
		bp, err := wire.ReadFrame(r, 1<<20)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(*bp, want) {
			t.Fatalf("frame %d differs", i)
		}
		wire.PutBuffer(bp)
	}
	if _, err := wire.ReadFrame(r, 1<<20); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
	// A reader's own error comes back as is.
	boom := errors.New("boom")
	if _, err := wire.ReadFrame(io.MultiReader(bytes.NewReader(sizePrefix(10, 1)), iotest.ErrReader(boom)), 100); !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
}

func TestBuffers(t *testing.T) {
	for _, n := range []int{0, 1, 100, 511, 512, 513, 4096, 70000, 1<<20 + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			for range 3 { // fresh, then (likely) reused
				bp := wire.GetBuffer(n)
				c := cap(*bp)
				if len(*bp) != n || c < n || c < 512 || c&(c-1) != 0 {
					t.Fatalf("GetBuffer(%d): len %d cap %d; want len %d and a power-of-two cap >= max(n, 512)", n, len(*bp), c, n)
				}
				for i := range *bp {
					(*bp)[i] = byte(i)
				}
				wire.PutBuffer(bp)
			}
		})
	}
	// A buffer that did not come from the pools is not taken into them.
	foreign := make([]byte, 1000)
	wire.PutBuffer(&foreign)
	for range 3 {
		bp := wire.GetBuffer(1000)
		if cap(*bp) != 1024 {
			t.Fatalf("GetBuffer(1000) returned a buffer of cap %d", cap(*bp))
		}
	}
}

func TestBufferRoundTripDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	allocs := testing.AllocsPerRun(100, func() {
		bp := wire.GetBuffer(4096)
		wire.PutBuffer(bp)
	})
	if allocs != 0 {
		t.Errorf("GetBuffer/PutBuffer: %v allocs per round trip, want 0", allocs)
	}
}

// header builds a request frame header by hand: key, version, correlation id,
// client id (nil: null), optional raw tag bytes, then body.
func header(key kmsg.Key, version int16, clientID []byte, tags []byte, body ...byte) []byte {
	f := make([]byte, 4)
	f = binary.BigEndian.AppendUint16(f, uint16(key))
	f = binary.BigEndian.AppendUint16(f, uint16(version))
	f = binary.BigEndian.AppendUint32(f, uint32(testCorr))
	if clientID == nil {
		f = binary.BigEndian.AppendUint16(f, 0xffff)
	} else {
		f = binary.BigEndian.AppendUint16(f, uint16(len(clientID)))
		f = append(f, clientID...)
	}
	f = append(f, tags...)
	f = append(f, body...)
	binary.BigEndian.PutUint32(f, uint32(len(f)-4))
	return f
}

func TestParseRequestHeader(t *testing.T) {
	produceV3 := header(kmsg.Produce, 3, []byte("abc"), nil, 1, 2)
	metaV9 := header(kmsg.Metadata, 9, []byte("abc"), []byte{0}, 1, 2)
	cases := []struct {
		name       string
		frame      []byte
		wantErr    bool
		wantOffset int
		wantKey    kmsg.Key
		wantVer    int16
	}{
		{"v1 header", produceV3, false, 4 + 10 + 3, kmsg.Produce, 3},
		{"v2 header", metaV9, false, 4 + 10 + 3 + 1, kmsg.Metadata, 9},
		{"v2 header with a tag", header(kmsg.Metadata, 9, []byte("abc"), []byte{1, 5, 2, 0xaa, 0xbb}, 9), false, 4 + 10 + 3 + 5, kmsg.Metadata, 9},
		{"null client id", header(kmsg.Produce, 3, nil, nil, 1), false, 14, kmsg.Produce, 3},
		{"empty client id, flexible", header(kmsg.ApiVersions, 3, []byte{}, []byte{0}), false, 15, kmsg.ApiVersions, 3},
		{"ApiVersions v2 is not flexible", header(kmsg.ApiVersions, 2, []byte("x"), nil), false, 15, kmsg.ApiVersions, 2},
		{"unknown key reads as v1", header(kmsg.Key(999), 0, []byte("x"), nil, 0), false, 15, kmsg.Key(999), 0},
		{"client id longer than the frame", header(kmsg.Produce, 3, []byte("abc"), nil)[:14+2], true, 0, 0, 0},
		{"client id length past the end", func() []byte {
			f := header(kmsg.Produce, 3, []byte("abc"), nil)
			binary.BigEndian.PutUint16(f[12:], 500)
			return f
		}(), true, 0, 0, 0},
		{"flexible header without its tag section", header(kmsg.Metadata, 9, []byte("abc"), nil), true, 0, kmsg.Produce, 0},
		{"flexible header with a truncated tag", header(kmsg.Metadata, 9, []byte("abc"), []byte{1, 5, 9, 1}), true, 0, kmsg.Produce, 0},
	}
	for n := range 14 {
		cases = append(cases, struct {
			name       string
			frame      []byte
			wantErr    bool
			wantOffset int
			wantKey    kmsg.Key
			wantVer    int16
		}{fmt.Sprintf("truncated to %d bytes", n), produceV3[:n], true, 0, 0, 0})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := wire.ParseRequestHeader(c.frame)
			if c.wantErr {
				if err == nil {
					t.Fatalf("no error; header %+v", h)
				}
				if len(c.frame) < 14 && !errors.Is(err, wire.ErrFrameTooSmall) {
					t.Errorf("err = %v, want ErrFrameTooSmall", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRequestHeader: %v", err)
			}
			want := wire.RequestHeader{Key: c.wantKey, Version: c.wantVer, CorrelationID: testCorr, BodyOffset: c.wantOffset}
			if h != want {
				t.Errorf("header %+v, want %+v", h, want)
			}
		})
	}
}

func TestResponseBodyOffset(t *testing.T) {
	withTags := func(key kmsg.Key, version int16, tags ...byte) []byte {
		f := make([]byte, 8)
		binary.BigEndian.PutUint32(f[4:], uint32(testCorr))
		f = append(f, tags...)
		f = append(f, 0xee) // body
		binary.BigEndian.PutUint32(f, uint32(len(f)-4))
		return f
	}
	cases := []struct {
		name    string
		frame   []byte
		key     kmsg.Key
		v       int16
		want    int
		wantErr bool
	}{
		{"Metadata v8", withTags(kmsg.Metadata, 8), kmsg.Metadata, 8, 8, false},
		{"Metadata v9", withTags(kmsg.Metadata, 9, 0), kmsg.Metadata, 9, 9, false},
		{"Metadata v9 with a header tag", withTags(kmsg.Metadata, 9, 1, 0, 2, 7, 7), kmsg.Metadata, 9, 13, false},
		{"ApiVersions v3 header is v0", withTags(kmsg.ApiVersions, 3), kmsg.ApiVersions, 3, 8, false},
		{"Fetch v12 without its tag section", withTags(kmsg.Fetch, 12)[:8], kmsg.Fetch, 12, 0, true},
		{"short frame", make([]byte, 7), kmsg.Metadata, 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := wire.ResponseBodyOffset(c.frame, c.key, c.v)
			if c.wantErr {
				if err == nil {
					t.Fatalf("no error; offset %d", got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ResponseBodyOffset = %d, %v; want %d", got, err, c.want)
			}
		})
	}
	if c := wire.CorrelationID(withTags(kmsg.Metadata, 8)); c != testCorr {
		t.Errorf("CorrelationID = %#x", c)
	}
}

func TestRequestFlexibleAndMaxVersion(t *testing.T) {
	for _, c := range []struct {
		key     kmsg.Key
		version int16
		want    bool
	}{
		{0, 8, false}, {0, 9, true}, {1, 11, false}, {1, 12, true}, {3, 8, false}, {3, 9, true},
		{10, 2, false}, {10, 3, true}, {18, 2, false}, {18, 3, true}, {68, 0, true},
		{-1, 5, false}, {999, 9, false}, {math.MaxInt16, 0, false},
	} {
		if got := wire.RequestFlexible(c.key, c.version); got != c.want {
			t.Errorf("RequestFlexible(%d, %d) = %v, want %v", c.key, c.version, got, c.want)
		}
	}
	// Agrees with kmsg for every key and version kmsg knows.
	for k := kmsg.Key(0); k < 200; k++ {
		req := k.Request()
		if req == nil {
			if wire.MaxVersion(k) != -1 {
				t.Errorf("MaxVersion(%d) = %d for a key kmsg does not know", k, wire.MaxVersion(k))
			}
			continue
		}
		if wire.MaxVersion(k) != req.MaxVersion() {
			t.Errorf("MaxVersion(%d) = %d, kmsg says %d", k, wire.MaxVersion(k), req.MaxVersion())
		}
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			if got := wire.RequestFlexible(k, v); got != req.IsFlexible() {
				t.Errorf("RequestFlexible(%d, %d) = %v, kmsg says %v", k, v, got, req.IsFlexible())
			}
		}
	}
}

func TestEpochs(t *testing.T) {
	if b := wire.EpochBase(0); b != 0 {
		t.Errorf("EpochBase(0) = %d", b)
	}
	if b := wire.EpochBase(3); b != 3<<wire.EpochShift {
		t.Errorf("EpochBase(3) = %d", b)
	}
	base := wire.EpochBase(2)
	for _, c := range []struct{ up, client int32 }{
		{0, base}, {7, base + 7}, {1<<wire.EpochShift - 1, base + 1<<wire.EpochShift - 1}, {-1, -1}, {-5, -5},
	} {
		if got := wire.ClientEpoch(c.up, base); got != c.client {
			t.Errorf("ClientEpoch(%d) = %d, want %d", c.up, got, c.client)
		}
		if got := wire.UpstreamEpoch(c.client, base); got != c.up {
			t.Errorf("UpstreamEpoch(%d) = %d, want %d", c.client, got, c.up)
		}
	}
	// Epochs from before the switch are unknown upstream.
	for _, e := range []int32{0, 1, base - 1} {
		if got := wire.UpstreamEpoch(e, base); got != -1 {
			t.Errorf("UpstreamEpoch(%d) = %d, want -1", e, got)
		}
	}
	// No base: the identity.
	for _, e := range []int32{-1, 0, 9, math.MaxInt32} {
		if wire.ClientEpoch(e, 0) != e || wire.UpstreamEpoch(e, 0) != e {
			t.Errorf("base 0 changed epoch %d", e)
		}
	}
}
