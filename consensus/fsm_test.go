package consensus

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

func raftLog(index uint64, data []byte) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

// sink is a raft.SnapshotSink in memory.
type sink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Close() error  { s.closed = true; return nil }
func (s *sink) Cancel() error { s.cancelled = true; return nil }

func TestSnapshotRestore(t *testing.T) {
	fsm := NewFSM()
	for i, c := range history() {
		data, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		fsm.Apply(raftLog(uint64(i+1), data))
	}
	snap, err := fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Commands applied after the snapshot was taken are not in it.
	data, _ := Encode(RegisterAgent{Agent{ID: "a9"}})
	fsm.Apply(raftLog(100, data))

	var s sink
	if err := snap.Persist(&s); err != nil || !s.closed || s.cancelled {
		t.Fatalf("Persist: %v, closed %v, cancelled %v", err, s.closed, s.cancelled)
	}
	snap.Release()

	restored := NewFSM()
	if err := restored.Restore(io.NopCloser(&s.Buffer)); err != nil {
		t.Fatal(err)
	}
	want := NewState()
	for _, c := range history() {
		_ = want.Apply(c)
	}
	if got, want := encodeState(t, restored.State()), encodeState(t, want); got != want {
		t.Errorf("restored:\n%s\nwant:\n%s", got, want)
	}
	// The restored state takes further commands like the original.
	if res := restored.Apply(raftLog(101, data)); res != nil {
		t.Errorf("Apply after Restore = %v", res)
	}
}

func TestRestoreGarbage(t *testing.T) {
	fsm := NewFSM()
	if err := fsm.Restore(io.NopCloser(bytes.NewBufferString("{"))); err == nil {
		t.Error("Restore accepted a cut snapshot")
	}
}

func TestApplyUndecodable(t *testing.T) {
	res := NewFSM().Apply(raftLog(1, []byte(`{"type":"Reboot"}`)))
	if rej, ok := res.(*Rejected); !ok || rej.Reason != `unknown command type "Reboot"; is this agent older than the one that wrote it?` {
		t.Errorf("Apply = %#v", res)
	}
}
