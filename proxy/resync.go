package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/wire"
)

// resyncWait bounds how long a consumer's fetches are held after a switch
// while it has not fetched its group's committed offsets: a consumer outside
// any group never does.
var resyncWait = 10 * time.Second

// resyncGate holds the fetches of consumers that crossed a switch until each
// has fetched its group's committed offsets on the new cluster.
//
// A consumer keeps its fetch positions in memory, and those are the old
// cluster's offsets: MirrorMaker 2 does not preserve offsets. Fetching at
// them from the new cluster reads the wrong records, and committing after
// that moves the group past records it never read. Once the member rejoins
// (its old group is unknown on the new cluster) and fetches its committed
// offsets, which MirrorMaker 2 translated, its positions are right again;
// until then its fetches wait.
//
// A held fetch is not sent to the cluster: the gateway sends a harmless
// ApiVersions in its place, to keep the connection's requests and responses
// in step, and answers the fetch, after a pause as a broker's long poll
// would, with an empty response, so that the client asks again and its
// other requests on the connection go on meanwhile.
//
// Past the window, a consumer that still has not fetched its committed
// offsets keeps the old cluster's positions, and the new cluster would
// serve it other records at those offsets without anyone noticing. The
// gateway refuses its fetches instead, partition by partition, with
// OFFSET_OUT_OF_RANGE: the client then resets each position on the new
// cluster as its auto.offset.reset says (or, set to none, tells its
// application), and its ListOffsets for a partition lets that partition's
// fetches through again. Its offset commits, which would store the old
// offsets on the new cluster, are refused likewise (refuseCommit), from the
// switch on. Resetting may skip or repeat records, where
// going on would have read the wrong ones; the refusals are counted and
// logged once per client, so that someone can look.
type resyncGate struct {
	until time.Time
	route string // whose client topic ids the fetches carry
	// pending counts the clients waiting or stale: with none, a fetch
	// passes on one atomic load.
	pending atomic.Int32

	mu      sync.Mutex
	waiting map[string]time.Time // client key -> when its first fetch was held
	// stale: clients past the window, with the partitions each has reset
	// since (by ListOffsets).
	stale       map[string]map[topicPartition]bool
	commitNoted map[string]bool // clients whose refused commits were logged
}

// topicPartition names a partition by the topic id clients see.
type topicPartition struct {
	topic     [16]byte
	partition int32
}

// fetchVerdict is what the gate makes of a client's Fetch.
type fetchVerdict int

const (
	fetchPass  fetchVerdict = iota
	fetchHold               // answer it empty, after heldFetchPause
	fetchStale              // refuse the partitions the client has not reset
)

// heldFetchPause is how long a held fetch is answered after, as a broker's
// long poll would answer when it has nothing.
const heldFetchPause = 250 * time.Millisecond

func newResyncGate(route string, clients []string, until time.Time) *resyncGate {
	g := &resyncGate{until: until, route: route, waiting: map[string]time.Time{}, stale: map[string]map[topicPartition]bool{},
		commitNoted: map[string]bool{}}
	for _, c := range clients {
		g.waiting[c] = time.Time{}
	}
	g.pending.Store(int32(len(g.waiting)))
	return g
}

// active says whether any client still waits or is stale: if none, a
// fetch passes without the client's key being worked out.
func (g *resyncGate) active() bool { return g != nil && g.pending.Load() > 0 }

// hold says what to do with a fetch of the client, and, once per client,
// what to log about it.
func (g *resyncGate) hold(client string) (fetchVerdict, string) {
	if !g.active() {
		return fetchPass, ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.stale[client]; ok {
		return fetchStale, ""
	}
	st, ok := g.waiting[client]
	switch {
	case !ok:
		return fetchPass, ""
	case time.Now().After(g.until):
		delete(g.waiting, client)
		g.stale[client] = map[topicPartition]bool{}
		return fetchStale, "the consumer did not fetch its committed offsets in time after the switch, so its positions are the old cluster's offsets; " +
			"its fetches are answered OFFSET_OUT_OF_RANGE until it resets each position on the new cluster (by its auto.offset.reset) or fetches its committed offsets"
	case st.IsZero():
		g.waiting[client] = time.Now()
		return fetchHold, "holding the consumer's fetches until it fetches its committed offsets on the new cluster"
	}
	return fetchHold, ""
}

// refuse answers a stale client's Fetch with OFFSET_OUT_OF_RANGE for each
// partition it has not reset, and no fetch session; the partitions it has
// reset are left out, to be fetched again. It returns nil, and the fetch
// goes to the cluster, once every partition asked for is reset.
func (g *resyncGate) refuse(client string, h wire.RequestHeader, frame []byte) (answer []byte, refused int, err error) {
	req := kmsg.NewPtrFetchRequest()
	if err := readRequest(h, frame, req); err != nil {
		return nil, 0, err
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			if !g.oldPosition(client, g.partition(t.Topic, t.TopicID, h.Version >= 13, p.Partition)) {
				continue
			}
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, kerr.OffsetOutOfRange.Code
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			resp.Topics = append(resp.Topics, rt)
			refused += len(rt.Partitions)
		}
	}
	if refused == 0 {
		return nil, 0, nil
	}
	return responseFrame(h, resp), refused, nil
}

// refuseCommit answers an OffsetCommit that would store the old cluster's
// offsets on the new one (a client waiting for its committed offsets, or
// past the window with partitions it has not reset) with UNKNOWN_MEMBER_ID
// for every partition (the new cluster does not know the member, and both
// Java consumers and franz-go take it as a failed commit, not a fatal
// error): nothing of it is committed, since the gateway answers in the
// cluster's stead, and the client's next commit, made from positions it has
// reset, goes through. It returns nil when the commit may go on, and
// once per client, what to log.
func (g *resyncGate) refuseCommit(client string, h wire.RequestHeader, frame []byte) (answer []byte, refused int, note string, err error) {
	req := kmsg.NewPtrOffsetCommitRequest()
	if err := readRequest(h, frame, req); err != nil {
		return nil, 0, "", err
	}
	old := false
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			old = old || g.oldPosition(client, g.partition(t.Topic, t.TopicID, h.Version >= 10, p.Partition))
		}
	}
	if !old {
		return nil, 0, "", nil
	}
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, kerr.UnknownMemberID.Code
			rt.Partitions = append(rt.Partitions, rp)
			refused++
		}
		resp.Topics = append(resp.Topics, rt)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.commitNoted[client] {
		g.commitNoted[client] = true
		note = "refusing the consumer's offset commits: they hold the old cluster's offsets, as it has not fetched its committed offsets " +
			"(or reset its positions) on the new cluster since the switch"
	}
	return responseFrame(h, resp), refused, note, nil
}

// partition names a partition by the topic id clients see, from a request
// that names topics by id, or by name.
func (g *resyncGate) partition(name string, id [16]byte, byID bool, partition int32) topicPartition {
	if !byID {
		id = StableTopicID(g.route, name)
	}
	return topicPartition{id, partition}
}

// oldPosition says whether the client's position on a partition is still
// the old cluster's offset: it has not fetched its committed offsets since
// the switch, nor (past the window) reset that partition.
func (g *resyncGate) oldPosition(client string, tp topicPartition) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.waiting[client]; ok {
		return true
	}
	reset, ok := g.stale[client]
	return ok && !reset[tp]
}

// listed notes the partitions a stale client listed offsets of: it is
// resetting their positions on the new cluster, and their fetches go on.
func (g *resyncGate) listed(client string, h wire.RequestHeader, frame []byte) error {
	if !g.active() {
		return nil
	}
	g.mu.Lock()
	_, ok := g.stale[client]
	g.mu.Unlock()
	if !ok {
		return nil
	}
	req := kmsg.NewPtrListOffsetsRequest()
	if err := readRequest(h, frame, req); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	reset, ok := g.stale[client]
	if !ok {
		return nil
	}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			reset[g.partition(t.Topic, [16]byte{}, false, p.Partition)] = true
		}
	}
	return nil
}

// resynced lets the client's fetches through, and reports how long they
// were held (zero if none was).
func (g *resyncGate) resynced(client string) time.Duration {
	if !g.active() {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.stale[client]; ok {
		delete(g.stale, client)
		g.pending.Add(-1)
		return 0
	}
	since, ok := g.waiting[client]
	if !ok {
		return 0
	}
	delete(g.waiting, client)
	g.pending.Add(-1)
	if since.IsZero() {
		return 0
	}
	return time.Since(since)
}
