package agent

import (
	"testing"
	"time"

	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/adminapi"
)

// TestPauseTTL: an unrenewed pause outlasts any lease a gateway may hold,
// and a gateway accepts it for every lease the policy allows.
func TestPauseTTL(t *testing.T) {
	for _, lease := range []time.Duration{0, policy.MinLease, policy.DefaultLease, policy.MaxLease} {
		ttl := pauseTTL(lease)
		lapse := time.Duration(0) // no fencing
		if lease > 0 {
			lapse = leaseLapse(lease)
		}
		if ttl < lapse+pauseCommitTime || ttl > adminapi.MaxPause {
			t.Errorf("lease %v: pause ttl %v; want at least %v past the lease's lapse (%v), at most %v",
				lease, ttl, pauseCommitTime, lapse, adminapi.MaxPause)
		}
	}
}
