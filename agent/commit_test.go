package agent

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/turnout/turnout/consensus"
)

// TestCommitRefused: only a commit the state refused, or that was never
// submitted to a leader, is known not to have happened; producers are
// resumed and a request answered failed only then.
func TestCommitRefused(t *testing.T) {
	committing := func(err error) error { return &commitError{fmt.Errorf("committing consensus.StartFlip: %w", err)} }
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused by the state", committing(&consensus.Rejected{Reason: "stale epoch"}), true},
		{"not the leader", committing(consensus.ErrNotLeader), true},
		{"leadership lost with the entry appended", committing(raft.ErrLeadershipLost), false},
		{"timed out", committing(context.DeadlineExceeded), false},
		{"raft shut down", committing(raft.ErrRaftShutdown), false},
		{"a step refused after the commit", fmt.Errorf("gateway gw-1: %w", &consensus.Rejected{Reason: "stale epoch"}), false},
		{"a gateway failed after the commit", errors.New("gateway gw-1: timeout"), false},
	} {
		if got := commitRefused(c.err); got != c.want {
			t.Errorf("%s (%v): refused %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
