package proxy

import "testing"

// TestFenceHolds: which Produce requests a route's fence holds, by the
// epoch of the Route they came in on.
func TestFenceHolds(t *testing.T) {
	tests := []struct {
		name  string
		st    fenceState
		epoch int32
		holds bool
	}{
		{"never leased, nothing committed past it", fenceState{committed: -1}, 3, false},
		{"never leased, a newer epoch committed", fenceState{committed: 4}, 3, true},
		{"never leased, its own epoch committed", fenceState{committed: 3}, 3, false},
		{"live lease at its epoch", fenceState{committed: 3, leased: true, leaseEpoch: 3, live: true}, 3, false},
		{"lapsed lease at its epoch", fenceState{committed: 3, leased: true, leaseEpoch: 3}, 3, true},
		{"live lease at another epoch", fenceState{committed: 3, leased: true, leaseEpoch: 2, live: true}, 3, true},
		{"live lease, but a newer epoch committed", fenceState{committed: 4, leased: true, leaseEpoch: 3, live: true}, 3, true},
		{"a switched route under a live lease", fenceState{committed: 4, leased: true, leaseEpoch: 4, live: true}, 4, false},
	}
	for _, tt := range tests {
		if got := tt.st.holds(tt.epoch); got != tt.holds {
			t.Errorf("%s: holds(%d) = %v, want %v", tt.name, tt.epoch, got, tt.holds)
		}
	}
}
