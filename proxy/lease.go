package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnout/turnout/proxy/adminapi"
	"github.com/turnout/turnout/proxy/config"
)

var errBadLease = errors.New("lease length out of range")

// Fencing: when the agents switch a route, a gateway they cannot reach
// would keep forwarding its producers to the old cluster, and every record
// it has acknowledged there after the new cluster took writes is lost. So
// the gateway forwards a route's Produce requests only while the agents
// vouch for the epoch it serves:
//
//   - once it has been granted a route lease (POST /lease), it holds the
//     route's Produce requests whenever no lease for the epoch it serves is
//     live. The agents' leader renews leases every third of their ttl and
//     only for the epoch committed in Raft; after it commits a flip it
//     renews only the new epoch, which a gateway still on the old one
//     refuses, so an unreachable gateway's lease lapses within a ttl and
//     the leader, having waited that long, may switch the others;
//   - whatever the lease, once it learns of a newer committed epoch (POST
//     /fence, or a lease for a newer epoch) it never forwards the route's
//     Produce requests again until it is switched.
//
// Held requests are never answered: a switch drains their connections and
// the clients send them again, unacknowledged, to the new cluster; a
// renewal lets them go on. Leases are opt-in (once granted, or from start
// with admin.requireLease), so a gateway run without agents is never held.

// routeFence is what the agents have told this gateway about one route's
// epochs. It outlives the Routes a switch replaces: a Route rebuilt at an
// old epoch is still held.
type routeFence struct {
	state   atomic.Pointer[fenceState] // nil until the agents first spoke
	metrics *routeMetrics
	log     *slog.Logger

	mu    sync.Mutex // orders updates
	timer *time.Timer
}

// fenceState is immutable; an update replaces it and closes changed, which
// wakes the Produce requests waiting on it to look again.
type fenceState struct {
	committed  int32 // newest epoch the agents committed, as far as known
	leased     bool  // a lease was ever granted: forward only under one
	leaseEpoch int32
	ttl        time.Duration
	// until is when the lease ends. Whether it is live is read off the
	// clock by each Produce, never off a flag a timer clears: a process
	// that stalls past the lease (GC, a stopped VM) must not wake and
	// forward before that timer has run.
	until   time.Time
	changed chan struct{}
}

// fenceStart is what a route's fence knows when the gateway process starts
// serving the route: from admin.requireLease, or from the epochs file, that
// the agents leased it to this gateway before, and the newest epoch they
// were heard to commit.
type fenceStart struct {
	leased    bool
	committed int32
}

// newRouteFence starts a route's fence. A route leased before holds its
// producers until the agents grant it a lease again, and one that knows of
// a newer committed epoch than it serves holds them until it is switched:
// a gateway process restarted while the agents cannot reach it must not
// forward to the cluster they switched away from.
func newRouteFence(m *routeMetrics, log *slog.Logger, start fenceStart) *routeFence {
	f := &routeFence{metrics: m, log: log}
	if start.leased || start.committed > 0 {
		f.update(func(st *fenceState) { st.leased, st.committed = start.leased, max(st.committed, start.committed) })
	}
	return f
}

// hold returns what a Produce on a Route at epoch must wait on, or nil when
// it may go on.
func (f *routeFence) hold(epoch int32) <-chan struct{} {
	st := f.state.Load()
	if st == nil {
		return nil
	}
	var now time.Time // read only when leases are on
	if st.leased {
		now = time.Now()
	}
	if !st.holds(epoch, now) {
		return nil
	}
	return st.changed
}

// holds says whether a Produce on a Route at epoch waits, at now.
func (st *fenceState) holds(epoch int32, now time.Time) bool {
	return epoch < st.committed || st.leased && !(st.leaseEpoch == epoch && st.liveAt(now))
}

// liveAt says whether the lease has not ended by now, by both the
// monotonic and the wall clock: the monotonic one does not jump with the
// wall clock, but on Linux it stands still while the machine is suspended,
// which the agents' clocks do not; the wall clock catches that up on
// resume. The lease ends by whichever reads it as over first.
func (st *fenceState) liveAt(now time.Time) bool {
	return now.Before(st.until) && now.Round(0).Before(st.until.Round(0))
}

// update applies change to a copy of the state and publishes it.
func (f *routeFence) update(change func(*fenceState)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updateLocked(change)
}

func (f *routeFence) updateLocked(change func(*fenceState)) {
	old := f.state.Load()
	next := fenceState{committed: -1}
	if old != nil {
		next = *old
	}
	change(&next)
	next.changed = make(chan struct{})
	f.state.Store(&next)
	if old != nil {
		close(old.changed)
	}
}

// commit records that the agents committed epoch.
func (f *routeFence) commit(epoch int32) {
	f.update(func(st *fenceState) { st.committed = max(st.committed, epoch) })
}

// grant makes a lease for epoch live for ttl from now.
func (f *routeFence) grant(epoch int32, ttl time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	until := time.Now().Add(ttl)
	f.updateLocked(func(st *fenceState) {
		st.committed = max(st.committed, epoch)
		st.leased, st.leaseEpoch, st.ttl, st.until = true, epoch, ttl, until
	})
	if f.timer != nil {
		f.timer.Stop()
	}
	f.timer = time.AfterFunc(ttl, f.lapse)
}

// lapse reports a lease whose time is up (the Produce requests already
// read its end off the clock); a timer that lost the race with a renewal
// finds the lease's end moved and says nothing.
func (f *routeFence) lapse() {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.state.Load()
	if st == nil || st.liveAt(time.Now()) {
		return
	}
	f.metrics.leaseLapses.Inc()
	f.log.Warn("route lease lapsed: producers held until the agents renew it or switch the route", "lease_epoch", st.leaseEpoch)
}

// renewAt carries a lease over to the epoch a switch by the agents moved the
// route to: the switch itself says the agents committed that epoch, and the
// route's producers need not wait for the next renewal.
func (f *routeFence) renewAt(epoch int32) {
	if st := f.state.Load(); st != nil && st.ttl > 0 && epoch >= st.committed {
		f.grant(epoch, st.ttl)
	}
}

func (f *routeFence) status(epoch int32) *adminapi.LeaseStatus {
	st := f.state.Load()
	if st == nil {
		return nil
	}
	now := time.Now()
	ls := &adminapi.LeaseStatus{CommittedEpoch: st.committed, ProduceHeld: st.holds(epoch, now)}
	if st.leased {
		ls.Epoch, ls.Until, ls.Live = st.leaseEpoch, st.until, st.liveAt(now)
	}
	return ls
}

// produceHold returns what a Produce on r must wait on: a pause, then the
// fence. nil means it may be forwarded.
func (r *Route) produceHold() <-chan struct{} {
	if c := r.pause.held(); c != nil {
		return c
	}
	return r.fence.hold(r.Epoch)
}

// GrantLease lets the route's Produce requests be forwarded for ttl from
// now, if the route serves domain at epoch. A lease for a newer epoch is
// refused and fences the route: the agents have switched it, and its
// producers are held until this gateway is switched too. Both refusals
// wrap config.ErrStaleEpoch.
func (g *Gateway) GrantLease(ctx context.Context, name, domain string, epoch int32, ttl time.Duration) error {
	if ttl <= 0 || ttl > adminapi.MaxLease {
		return fmt.Errorf("%w: %v; want more than 0 and at most %v", errBadLease, ttl, adminapi.MaxLease)
	}
	_, r, err := g.servedRoute(name)
	if err != nil {
		return err
	}
	if epoch > r.Epoch {
		g.fence(r, epoch)
		return fmt.Errorf("route %s serves epoch %d, and the agents committed epoch %d: its producers are held until it is switched: %w",
			name, r.Epoch, epoch, config.ErrStaleEpoch)
	}
	if epoch < r.Epoch || domain != r.Domain {
		return fmt.Errorf("route %s serves %s at epoch %d, not %s at epoch %d: %w", name, r.Domain, r.Epoch, domain, epoch, config.ErrStaleEpoch)
	}
	// A renewal that reaches the gateway after the agent gave up on it
	// would outlive the lease the agent counts on.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("lease for route %s not granted: the request was abandoned: %w", name, err)
	}
	// Recorded before it takes effect: a process restarted after it
	// forwarded under the lease then holds its producers until the next.
	if err := g.epochs.leased(name); err != nil {
		g.log.Warn("could not record that the route is leased; a restarted gateway process would forward without a lease until the agents grant one",
			"route", name, "file", g.epochs.path, "err", err)
	}
	if st := r.fence.state.Load(); st == nil || !st.liveAt(time.Now()) {
		g.log.Info("route lease granted: producers forward", "route", name, "epoch", epoch, "ttl", ttl)
	}
	r.fence.grant(epoch, ttl)
	return nil
}

// FenceRoute records that the agents committed epoch for the route: if the
// route serves an older one, its Produce requests are held from now until
// it is switched. It returns at once: the connections with a Produce that
// passed the hold and is not yet answered are closed first, so no write is
// acknowledged from the old cluster after it returned. Waiting for their
// answers instead would wait on a cluster that, in a forced failover, is
// usually hung. A response that can no longer reach the client is no
// acknowledgement: the clients send those records again, to the new cluster.
func (g *Gateway) FenceRoute(name string, epoch int32) error {
	rs, r, err := g.servedRoute(name)
	if err != nil {
		return err
	}
	g.fence(r, epoch)
	if r.Epoch >= epoch {
		// The route serves the committed epoch; the switch that moved it
		// drained the connections to the old cluster.
		return nil
	}
	if n := rs.cutProducing(r); n > 0 {
		g.log.Warn("route fenced: closed the connections with a Produce the old cluster had not answered; their clients send it again",
			"route", name, "connections", n, "committed_epoch", epoch)
	}
	return nil
}

func (g *Gateway) fence(r *Route, epoch int32) {
	if st := r.fence.state.Load(); r.Epoch < epoch && (st == nil || st.committed < epoch) {
		g.log.Warn("route fenced: the agents committed a newer epoch; producers held until the route is switched",
			"route", r.Name, "epoch", r.Epoch, "committed_epoch", epoch)
	}
	r.fence.commit(epoch)
	if err := g.epochs.committed(r.Name, epoch); err != nil {
		g.log.Warn("could not record the epoch the agents committed; a restarted gateway process would not know it",
			"route", r.Name, "committed_epoch", epoch, "file", g.epochs.path, "err", err)
	}
}
