package proxy

import (
	"sync"
	"time"
)

// resyncWait bounds how long a consumer's fetches are held after a switch
// while it has not fetched its group's committed offsets: a consumer outside
// any group never does.
const resyncWait = 10 * time.Second

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
type resyncGate struct {
	until time.Time

	mu      sync.Mutex
	waiting map[string]time.Time // client key -> when its first fetch was held
}

// heldFetchPause is how long a held fetch is answered after, as a broker's
// long poll would answer when it has nothing.
const heldFetchPause = 250 * time.Millisecond

func newResyncGate(clients []string, until time.Time) *resyncGate {
	g := &resyncGate{until: until, waiting: map[string]time.Time{}}
	for _, c := range clients {
		g.waiting[c] = time.Time{}
	}
	return g
}

// hold says whether to hold a fetch of the client, and, once per client,
// what to log about it.
func (g *resyncGate) hold(client string) (bool, string) {
	if g == nil {
		return false, ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	st, ok := g.waiting[client]
	switch {
	case !ok:
		return false, ""
	case time.Now().After(g.until):
		delete(g.waiting, client)
		return false, "the consumer did not fetch its committed offsets in time after the switch; " +
			"its fetches go on from its own positions, which may be the old cluster's offsets"
	case st.IsZero():
		g.waiting[client] = time.Now()
		return true, "holding the consumer's fetches until it fetches its committed offsets on the new cluster"
	}
	return true, ""
}

// resynced lets the client's fetches through, and reports how long they
// were held (zero if none was).
func (g *resyncGate) resynced(client string) time.Duration {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	since, ok := g.waiting[client]
	if !ok {
		return 0
	}
	delete(g.waiting, client)
	if since.IsZero() {
		return 0
	}
	return time.Since(since)
}
