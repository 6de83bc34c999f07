package proxy

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestFenceHolds: which Produce requests a route's fence holds, by the
// epoch of the Route they came in on and the time they come.
func TestFenceHolds(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	live, ended := now.Add(time.Second), now
	tests := []struct {
		name  string
		st    fenceState
		epoch int32
		holds bool
	}{
		{"never leased, nothing committed past it", fenceState{committed: -1}, 3, false},
		{"never leased, a newer epoch committed", fenceState{committed: 4}, 3, true},
		{"never leased, its own epoch committed", fenceState{committed: 3}, 3, false},
		{"live lease at its epoch", fenceState{committed: 3, leased: true, leaseEpoch: 3, until: live}, 3, false},
		{"lease ending now", fenceState{committed: 3, leased: true, leaseEpoch: 3, until: ended}, 3, true},
		{"leased, never granted since start", fenceState{committed: -1, leased: true}, 3, true},
		{"live lease at another epoch", fenceState{committed: 3, leased: true, leaseEpoch: 2, until: live}, 3, true},
		{"live lease, but a newer epoch committed", fenceState{committed: 4, leased: true, leaseEpoch: 3, until: live}, 3, true},
		{"a switched route under a live lease", fenceState{committed: 4, leased: true, leaseEpoch: 4, until: live}, 4, false},
	}
	for _, tt := range tests {
		if got := tt.st.holds(tt.epoch, now); got != tt.holds {
			t.Errorf("%s: holds(%d) = %v, want %v", tt.name, tt.epoch, got, tt.holds)
		}
	}
}

// TestFenceHoldsPastLeaseEndBeforeLapse: a gateway that stalls past its
// lease (GC, a stopped VM, CPU starvation) wakes with the lapse timer
// overdue and its sessions running at the same moment; they must not
// forward under the ended lease. Here the lapse timer cannot run (the
// fence's lock is held, as a starved timer goroutine would be) until past
// the lease's end.
func TestFenceHoldsPastLeaseEndBeforeLapse(t *testing.T) {
	m := NewMetrics()
	f := newRouteFence(m.route("r"), slog.New(slog.NewTextHandler(io.Discard, nil)), fenceStart{})
	f.grant(0, 50*time.Millisecond)
	f.mu.Lock() // the lapse timer cannot run yet
	until := f.state.Load().until
	for time.Now().Before(until) {
		time.Sleep(time.Millisecond)
	}
	held := f.hold(0) != nil
	f.mu.Unlock()
	if !held {
		t.Fatalf("the lease ended %v ago and a Produce is still forwarded", time.Since(until).Round(time.Millisecond))
	}
}
