package proxy

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestReviewExpiredLeaseStillForwards: whether a Produce goes on is read
// from fenceState.live, which only the lapse timer's goroutine clears. A
// gateway process that stalls past its lease (GC, a stopped or migrated
// VM, CPU starvation) wakes with the timer overdue: the sessions, woken at
// the same moment, forward Produce requests under a lease that has ended,
// after the leader has waited it out and switched the other gateways.
// Here the lapse goroutine is kept from running (the fence's lock is held,
// as a starved timer goroutine would be) past the lease's end.
func TestReviewExpiredLeaseStillForwards(t *testing.T) {
	m := NewMetrics()
	f := newRouteFence(m.route("r"), slog.New(slog.NewTextHandler(io.Discard, nil)), false)
	f.grant(0, 20*time.Millisecond)
	f.mu.Lock() // the lapse timer cannot run yet
	time.Sleep(100 * time.Millisecond)
	held := f.hold(0) != nil
	f.mu.Unlock()
	if !held {
		st := f.state.Load()
		t.Fatalf("the lease ended %v ago and a Produce is still forwarded (live=%v until=%v)",
			time.Since(st.until).Round(time.Millisecond), st.live, st.until.Format(time.StampMilli))
	}
}
