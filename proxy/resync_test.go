package proxy

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/wire"
)

// requestFrame encodes req as a client would and parses its header.
func requestFrame(t *testing.T, req kmsg.Request) (wire.RequestHeader, []byte) {
	t.Helper()
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("c")).AppendRequest(nil, req, 7)
	h, err := wire.ParseRequestHeader(frame)
	if err != nil {
		t.Fatal(err)
	}
	return h, frame
}

// TestResyncGateLifecycle: a consumer that crossed a switch is held, then
// past the window refused partition by partition until it lists each
// partition's offsets, and let go entirely once it fetches its committed
// offsets; other clients pass throughout.
func TestResyncGateLifecycle(t *testing.T) {
	g := newResyncGate("r", []string{"c1", "c2"}, time.Now().Add(time.Hour))
	if v, note := g.hold("c1"); v != fetchHold || note == "" {
		t.Fatalf("first fetch in the window: %v %q, want held and a note", v, note)
	}
	if v, note := g.hold("c1"); v != fetchHold || note != "" {
		t.Fatalf("second fetch in the window: %v %q, want held, no note", v, note)
	}
	if v, _ := g.hold("other"); v != fetchPass {
		t.Fatalf("a client that did not cross the switch: %v", v)
	}
	g.until = time.Now() // the window ends
	if v, note := g.hold("c1"); v != fetchStale || note == "" {
		t.Fatalf("first fetch past the window: %v %q, want stale and a note", v, note)
	}
	if v, note := g.hold("c1"); v != fetchStale || note != "" {
		t.Fatalf("second fetch past the window: %v %q, want stale, no second note", v, note)
	}

	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 12 // topics by name
	for _, p := range []int32{0, 1} {
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "orders"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset = p, 5
		ft.Partitions = append(ft.Partitions, fp)
		fetch.Topics = append(fetch.Topics, ft)
	}
	fh, fframe := requestFrame(t, fetch)
	refusedParts := func() []int32 {
		t.Helper()
		answer, n, err := g.refuse("c1", fh, fframe)
		if err != nil {
			t.Fatal(err)
		}
		if answer == nil {
			return nil
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = fh.Version
		if err := resp.ReadFrom(answer[4+4+1:]); err != nil { // size, correlation id, header tags
			t.Fatal(err)
		}
		var parts []int32
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != kerr.OffsetOutOfRange.Code {
					t.Fatalf("partition %d answered %d", rp.Partition, rp.ErrorCode)
				}
				parts = append(parts, rp.Partition)
			}
		}
		if len(parts) != n || resp.SessionID != 0 {
			t.Fatalf("%d partitions refused, %d counted, session %d", len(parts), n, resp.SessionID)
		}
		return parts
	}
	if got := refusedParts(); len(got) != 2 {
		t.Fatalf("refused %v, want both partitions", got)
	}

	list := kmsg.NewPtrListOffsetsRequest()
	list.Version = 7
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "orders"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition, lp.Timestamp = 1, -2
	lt.Partitions = append(lt.Partitions, lp)
	list.Topics = append(list.Topics, lt)
	lh, lframe := requestFrame(t, list)
	if err := g.listed("c1", lh, lframe); err != nil {
		t.Fatal(err)
	}
	if got := refusedParts(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("after partition 1 was reset, refused %v, want partition 0 only", got)
	}
	lp.Partition = 0
	list.Topics[0].Partitions[0] = lp
	lh, lframe = requestFrame(t, list)
	if err := g.listed("c1", lh, lframe); err != nil {
		t.Fatal(err)
	}
	if got := refusedParts(); got != nil {
		t.Fatalf("after both partitions were reset, refused %v", got)
	}

	g.resynced("c1")
	if v, _ := g.hold("c1"); v != fetchPass {
		t.Fatalf("after fetching its committed offsets: %v", v)
	}
	g.resynced("c2") // never fetched: let go as well
	if g.pending.Load() != 0 {
		t.Fatalf("%d clients still pending", g.pending.Load())
	}
}
