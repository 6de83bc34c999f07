package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnout/turnout/proxy/adminapi"
	"github.com/turnout/turnout/proxy/config"
)

var (
	errBadPause   = errors.New("pause length out of range")
	errPauseOwner = errors.New("the pause is held by another owner")
)

// producePause holds a route's Produce requests for a planned switch: once
// no record reaches the cluster being left, replication can catch up to the
// last acknowledged one, and the switch then loses nothing. Held requests
// are never sent: the switch drains their connections, and the clients send
// them again, unacknowledged, to the new cluster.
type producePause struct {
	// released is read by every Produce, so without the lock, which
	// orders start and release.
	released atomic.Pointer[chan struct{}] // nil while producing; closed on resume
	mu       sync.Mutex
	owner    adminapi.PauseOwner
	until    time.Time
	timer    *time.Timer
}

// held returns the channel a Produce waits on, or nil when not paused.
func (p *producePause) held() <-chan struct{} {
	if c := p.released.Load(); c != nil {
		return *c
	}
	return nil
}

// start pauses for ttl from now on behalf of owner, or extends a pause
// already on, taking it over if another owner of the same or a later term
// asks; an owner of an earlier term is refused.
func (p *producePause) start(ttl time.Duration, owner adminapi.PauseOwner) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.released.Load()
	if c != nil && owner.Term < p.owner.Term {
		return fmt.Errorf("%w: %v paused the route, a later term than %v's: %w", errPauseOwner, p.owner, owner, config.ErrStaleEpoch)
	}
	if c == nil {
		ch := make(chan struct{})
		c = &ch
		p.released.Store(c)
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	p.owner = owner
	p.until = time.Now().Add(ttl)
	p.timer = time.AfterFunc(ttl, func() { p.release(c) })
	return nil
}

// stop resumes producing if owner holds the pause; it reports whether a
// pause was on, and refuses one held by another owner.
func (p *producePause) stop(owner adminapi.PauseOwner) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.released.Load()
	if c == nil {
		return false, nil
	}
	if p.owner != owner {
		return false, fmt.Errorf("%w: %v holds it, not %v: %w", errPauseOwner, p.owner, owner, config.ErrStaleEpoch)
	}
	p.end(c)
	return true, nil
}

// release ends the pause on if it is which: a timer of an earlier pause
// must not end a newer one.
func (p *producePause) release(which *chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.released.Load(); c == which {
		p.end(c)
	}
}

// end ends the pause c, which is on; p.mu is held.
func (p *producePause) end(c *chan struct{}) {
	close(*c)
	p.released.Store(nil)
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}

// pausedUntil is when the pause ends on its own; zero when not paused.
func (p *producePause) pausedUntil() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released.Load() == nil {
		return time.Time{}
	}
	return p.until
}

// PauseProduce holds the route's Produce requests for up to ttl (at most
// adminapi.MaxPause), for a planned switch. epoch must be the route's current one,
// so that a pause meant for a route the agents have already switched is
// refused (config.ErrStaleEpoch) rather than holding the new cluster's
// producers. It returns once the Produce requests sent before the pause
// have been answered, so that every record the cluster acknowledged is in
// its end offsets when the caller measures replication.
func (g *Gateway) PauseProduce(ctx context.Context, name string, epoch int32, ttl time.Duration, owner adminapi.PauseOwner) error {
	if ttl <= 0 || ttl > adminapi.MaxPause {
		return fmt.Errorf("%w: %v; want more than 0 and at most %v", errBadPause, ttl, adminapi.MaxPause)
	}
	rs, r, err := g.servedRoute(name)
	if err != nil {
		return err
	}
	if r.Epoch != epoch {
		return fmt.Errorf("route %s serves epoch %d, not %d: %w", name, r.Epoch, epoch, config.ErrStaleEpoch)
	}
	if err := r.pause.start(ttl, owner); err != nil {
		return fmt.Errorf("route %s: %w", name, err)
	}
	r.metrics.pauses.Inc()
	g.log.Warn("producers paused for a planned switch", "route", name, "epoch", epoch, "for", ttl, "owner", owner)
	wait := min(ttl, g.cfg.Load().DrainTimeout())
	if err := rs.settle(ctx, r, time.Now().Add(wait)); err != nil {
		r.pause.stop(owner) // unless another owner has taken it over meanwhile
		g.log.Warn("producers resumed: the pause did not settle", "route", name, "err", err)
		return err
	}
	return nil
}

// settle waits until every connection to r, or to a Route it replaced, has
// had no Produce request past the hold and nothing owed at some moment:
// Produce requests are held from the pause on, so by then those that passed
// the hold before it have all been answered.
func (rs *routeServer) settle(ctx context.Context, r *Route, deadline time.Time) error {
	waiting := rs.sessionsOf(r)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		waiting = slices.DeleteFunc(waiting, func(s *session) bool {
			return s.producing.Load() == 0 && s.owed.Load() == 0 || s.ended()
		})
		if len(waiting) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d connections of route %s still await answers from the cluster", len(waiting), r.Name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// cutProducing closes the connections to r, or to a Route it replaced,
// that have a Produce past the hold and not yet answered, and returns how
// many. The hold is raised before: a Produce counted after the look at its
// connection sees it (producing is counted before the check, waitProduce).
func (rs *routeServer) cutProducing(r *Route) int {
	n := 0
	for _, s := range rs.sessionsOf(r) {
		if s.producing.Load() != 0 {
			s.cut()
			n++
		}
	}
	return n
}

// sessionsOf lists the connections to r, or to a Route it replaced.
func (rs *routeServer) sessionsOf(r *Route) []*session {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var of []*session
	for s := range rs.sessions {
		if s.route == r || s.route.Epoch < r.Epoch {
			of = append(of, s)
		}
	}
	return of
}

// ResumeProduce ends the pause owner holds at the route's epoch; the held
// requests go on to the cluster the route still serves, unless the route is
// fenced. A resume for another epoch, or from another owner (an agent that
// no longer leads, say), is refused with config.ErrStaleEpoch.
func (g *Gateway) ResumeProduce(name string, epoch int32, owner adminapi.PauseOwner) error {
	_, r, err := g.servedRoute(name)
	if err != nil {
		return err
	}
	if r.Epoch != epoch {
		return fmt.Errorf("route %s serves epoch %d; a resume for epoch %d is not for it: %w", name, r.Epoch, epoch, config.ErrStaleEpoch)
	}
	resumed, err := r.pause.stop(owner)
	if err != nil {
		return fmt.Errorf("route %s: a resume must come from the pause's owner: %w", name, err)
	}
	if resumed {
		g.log.Warn("producers resumed", "route", name, "epoch", r.Epoch, "owner", owner)
	}
	return nil
}

func (g *Gateway) servedRoute(name string) (*routeServer, *Route, error) {
	g.rmu.RLock()
	defer g.rmu.RUnlock()
	rs := g.routes[name]
	if rs == nil {
		return nil, nil, fmt.Errorf("route %s: %w", name, ErrUnknownRoute)
	}
	return rs, rs.route.Load(), nil
}
