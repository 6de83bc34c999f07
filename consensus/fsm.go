package consensus

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM is the raft.FSM that applies committed commands to a State.
type FSM struct {
	mu    sync.RWMutex
	state State
}

// NewFSM returns an FSM with an empty state.
func NewFSM() *FSM { return &FSM{state: NewState()} }

// Apply applies one committed command. Its result is nil or the *Rejected
// error, which raft hands back to the caller of raft.Apply.
func (f *FSM) Apply(l *raft.Log) any {
	cmd, err := Decode(l.Data)
	if err != nil {
		return &Rejected{Reason: err.Error()}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Apply(cmd)
}

// State returns a deep copy of the current state.
func (f *FSM) State() State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Clone()
}

// Snapshot encodes the state now, as raft may apply more commands while it
// persists the snapshot.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	data, err := json.Marshal(f.state)
	if err != nil {
		return nil, fmt.Errorf("encoding a snapshot: %w", err)
	}
	return snapshot(data), nil
}

// Restore replaces the state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s := NewState()
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return fmt.Errorf("decoding a snapshot: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = s
	return nil
}

// snapshot is the state encoded as JSON.
type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return fmt.Errorf("writing a snapshot: %w", err)
	}
	return sink.Close()
}

func (s snapshot) Release() {}
