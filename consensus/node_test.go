package consensus

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// freeAddrs returns n loopback addresses with ports that were free a moment
// ago.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = l.Addr().String()
		l.Close()
	}
	return addrs
}

// cluster is a Raft group of agents a1, a2, ... in this process.
type cluster struct {
	t     *testing.T
	peers map[string]string
	dirs  map[string]string
	nodes map[string]*Node // the open ones
	// tls gives each node its Raft TLS configuration; nil means plain TCP.
	tls func(id string) *tls.Config
}

func newCluster(t *testing.T, n int) *cluster { return newTLSCluster(t, n, nil) }

func newTLSCluster(t *testing.T, n int, tlsFor func(id string) *tls.Config) *cluster {
	c := &cluster{t: t, peers: map[string]string{}, dirs: map[string]string{}, nodes: map[string]*Node{}, tls: tlsFor}
	for i, addr := range freeAddrs(t, n) {
		id := fmt.Sprintf("a%d", i+1)
		c.peers[id], c.dirs[id] = addr, filepath.Join(t.TempDir(), id)
	}
	for id := range c.peers {
		c.open(id)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.Close()
		}
	})
	return c
}

// open starts a node that forms the group if its data dir is empty, as
// every agent does when the group first forms.
func (c *cluster) open(id string) *Node {
	c.t.Helper()
	return c.openWith(id, true)
}

func (c *cluster) openWith(id string, bootstrap bool) *Node {
	c.t.Helper()
	cfg := Config{ID: id, Addr: c.peers[id], Peers: c.peers, DataDir: c.dirs[id], Bootstrap: bootstrap}
	if c.tls != nil {
		cfg.TLS = c.tls(id)
	}
	n, err := Open(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id] = n
	return n
}

func (c *cluster) close(id string) {
	c.t.Helper()
	if err := c.nodes[id].Close(); err != nil {
		c.t.Fatal(err)
	}
	delete(c.nodes, id)
}

// leader waits until every open node knows the same leader, one of them,
// and returns it.
func (c *cluster) leader() *Node {
	c.t.Helper()
	var leader *Node
	eventually(c.t, 10*time.Second, "a leader every node knows", func() bool {
		leader = nil
		ids := map[string]bool{}
		for _, n := range c.nodes {
			id, _ := n.Leader()
			ids[id] = true
			if n.IsLeader() {
				leader = n
			}
		}
		return leader != nil && len(ids) == 1 && ids[leader.ID()]
	})
	return leader
}

func (c *cluster) follower() *Node {
	for _, n := range c.nodes {
		if !n.IsLeader() {
			return n
		}
	}
	c.t.Fatal("no follower")
	return nil
}

// converged waits until every open node has applied the same state as n.
func (c *cluster) converged(n *Node) State {
	c.t.Helper()
	var want string
	eventually(c.t, 10*time.Second, "the same state on every node", func() bool {
		want = encodeState(c.t, n.State())
		for _, o := range c.nodes {
			if encodeState(c.t, o.State()) != want {
				return false
			}
		}
		return true
	})
	return n.State()
}

func eventually(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func apply(t *testing.T, n *Node, cmds ...Command) {
	t.Helper()
	for _, cmd := range cmds {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := n.Apply(ctx, cmd)
		cancel()
		if err != nil {
			t.Fatalf("Apply(%T) on %s: %v", cmd, n.ID(), err)
		}
	}
}

func TestCluster(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	c := newCluster(t, 3)
	leader := c.leader()
	for _, n := range c.nodes {
		if !n.Bootstrapped() {
			t.Errorf("%s did not bootstrap a new data dir", n.ID())
		}
		if v, err := n.Voters(); v != 3 || err != nil {
			t.Errorf("%s: %d voters, %v", n.ID(), v, err)
		}
	}
	t.Logf("leader %s at term %d", leader.ID(), leader.Term())

	// Commands on the leader reach every node.
	apply(t, leader, InitRoute{Route: "r", Active: "k1"}, RegisterAgent{Agent{ID: leader.ID(), HTTP: "http://" + leader.ID()}},
		StartFlip{Route: "r", From: "k1", To: "k2", Epoch: 1, Reason: "test", At: t0, Leader: leader.ID()})
	if s := c.converged(leader); s.Routes["r"].Active != "k2" || s.Agents[leader.ID()].HTTP == "" {
		t.Fatalf("state %s", encodeState(t, s))
	}

	// A follower refuses, and says so in a way the agent can test for.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.follower().Apply(ctx, InitRoute{Route: "s", Active: "k1"}); !errors.Is(err, ErrNotLeader) {
		t.Errorf("Apply on a follower: %v, want ErrNotLeader", err)
	}

	// A stale flip is refused by the log, on the leader that commits it.
	err := leader.Apply(ctx, StartFlip{Route: "r", From: "k1", To: "k2", Epoch: 1, At: t0, Leader: "stale"})
	if rej, ok := errors.AsType[*Rejected](err); !ok || !strings.Contains(rej.Reason, "stale epoch") {
		t.Errorf("stale StartFlip: %v, want a stale epoch rejection", err)
	}

	// Without its leader, the group elects another that has every command.
	old := leader.ID()
	killed := time.Now()
	c.close(old)
	leader = c.leader()
	t.Logf("new leader %s at term %d, %v after %s was closed", leader.ID(), leader.Term(), time.Since(killed).Round(time.Millisecond), old)
	if err := leader.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if s := leader.State(); s.Routes["r"].InProgress == nil || s.Routes["r"].Epoch != 1 {
		t.Fatalf("the new leader lost the flip in progress: %s", encodeState(t, s))
	}
	apply(t, leader, RecordStep{Route: "r", Epoch: 1, Step: "config-written", ConfigWritten: true, At: t0},
		FinishFlip{Route: "r", Epoch: 1, Outcome: OutcomeDone, At: t0})

	// The old leader rejoins from its data dir, without bootstrapping
	// again, and catches up.
	n := c.open(old)
	if n.Bootstrapped() {
		t.Error("a restart bootstrapped the group again")
	}
	s := c.converged(c.leader())
	if f := s.Routes["r"].LastFlip; f == nil || f.Outcome != OutcomeDone || !f.ConfigWritten {
		t.Errorf("state after the restart: %s", encodeState(t, s))
	}
	if v, err := n.Voters(); v != 3 || err != nil {
		t.Errorf("%s after the restart: %d voters, %v", n.ID(), v, err)
	}

	// Close stops everything the nodes started.
	for id := range c.nodes {
		c.close(id)
	}
	eventually(t, 5*time.Second, "goroutines left after Close", func() bool { return runtime.NumGoroutine() <= goroutines })
}

// A single agent restarts from its data dir with its state, from the log
// and from a snapshot.
func TestReopen(t *testing.T) {
	addr := freeAddrs(t, 1)[0]
	var logs logBuffer
	cfg := Config{ID: "a1", Addr: addr, Peers: map[string]string{"a1": addr}, DataDir: t.TempDir(), Bootstrap: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := func() *Node {
		t.Helper()
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		if err := n.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		if err := n.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		return n
	}

	n := start()
	apply(t, n, InitRoute{Route: "r", Active: "k1"})
	n.Close()

	n = start()
	if n.Bootstrapped() || n.State().Routes["r"] == nil {
		t.Fatalf("after a restart: bootstrapped %v, state %s", n.Bootstrapped(), encodeState(t, n.State()))
	}
	apply(t, n, StartFlip{Route: "r", From: "k1", To: "k2", Epoch: 1, At: t0})
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	apply(t, n, FinishFlip{Route: "r", Epoch: 1, Outcome: OutcomeDone, At: t0})
	want := encodeState(t, n.State())
	n.Close()

	if n = start(); encodeState(t, n.State()) != want {
		t.Errorf("after a restart from a snapshot:\n%s\nwant\n%s", encodeState(t, n.State()), want)
	}
	// Raft's own log goes to the agent's.
	if got := logs.String(); !strings.Contains(got, `level=INFO msg="entering leader state" logger=raft`) {
		t.Errorf("the agent's log has no sign of raft's:\n%s", got)
	}
}

// TestWipedDataDirs: two agents of three lose their data dirs while the
// group is down. Started again without Bootstrap, they form no group of
// their own, which would have forgotten the route's epoch; once the agent
// that kept its data is back, it leads and sends them the state.
func TestWipedDataDirs(t *testing.T) {
	c := newCluster(t, 3)
	apply(t, c.leader(), flipped...)
	want := encodeState(t, c.converged(c.leader()))
	for _, id := range []string{"a1", "a2", "a3"} {
		c.close(id)
	}
	for _, id := range []string{"a2", "a3"} {
		if err := os.RemoveAll(c.dirs[id]); err != nil {
			t.Fatal(err)
		}
		if n := c.openWith(id, false); n.Bootstrapped() {
			t.Fatalf("%s bootstrapped without being asked to", id)
		}
	}
	// Nothing can be waited for here: what must not happen is an election,
	// which two bootstrapped agents hold within two election timeouts.
	quiet := time.Now().Add(4 * time.Second)
	for time.Now().Before(quiet) {
		for id, n := range c.nodes {
			if leader, _ := n.Leader(); leader != "" || n.IsLeader() {
				t.Fatalf("%s, with an empty data dir and not bootstrapped, knows leader %q", id, leader)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.nodes["a2"].Apply(ctx, InitRoute{Route: "new", Active: "k1"}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("an unbootstrapped empty agent applied a command: %v, want ErrNotLeader", err)
	}

	c.openWith("a1", false)
	leader := c.leader()
	if leader.ID() != "a1" {
		t.Errorf("%s leads; only a1 has the log", leader.ID())
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := leader.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := encodeState(t, c.converged(leader)); got != want {
		t.Errorf("after the wiped agents rejoined the state is\n%s\nwant\n%s", got, want)
	}
}

// logBuffer collects log lines from raft's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestOpenErrors(t *testing.T) {
	addr := freeAddrs(t, 1)[0]
	dir := t.TempDir()
	n, err := Open(Config{ID: "a1", Addr: addr, Peers: map[string]string{"a1": addr}, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	other := freeAddrs(t, 1)[0]
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no id", Config{Addr: addr, DataDir: dir}, "raft: the agent needs an id"},
		{"no address", Config{ID: "a1", DataDir: dir}, "raft: agent a1 needs an address to listen on"},
		{"no data dir", Config{ID: "a1", Addr: addr}, "raft: agent a1 needs a data dir"},
		{"not a peer", Config{ID: "a4", Addr: addr, DataDir: dir, Peers: map[string]string{"a1": addr, "a2": other}}, "raft: the peers (a1, a2) do not include this agent, a4"},
		{"lease past the heartbeat", Config{ID: "a1", Addr: other, DataDir: t.TempDir(), Peers: map[string]string{"a1": other}, LeaderLeaseTimeout: 2 * time.Second},
			"raft timeouts: LeaderLeaseTimeout (2s) cannot be larger than heartbeat timeout (1s)"},
		{"data dir in use", Config{ID: "a1", Addr: other, DataDir: dir, Peers: map[string]string{"a1": other}}, "another process (an agent with the same --data-dir?) holds it"},
		{"address in use", Config{ID: "a1", Addr: addr, DataDir: t.TempDir(), Peers: map[string]string{"a1": addr}}, "listening for Raft on " + addr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Open(tt.cfg)
			if err == nil {
				n.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParsePeers(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"a1=127.0.0.1:7001,a2=127.0.0.1:7002,a3=127.0.0.1:7003", map[string]string{"a1": "127.0.0.1:7001", "a2": "127.0.0.1:7002", "a3": "127.0.0.1:7003"}, ""},
		{" a1 = host-1:7001 , a2=[::1]:7002, ", map[string]string{"a1": "host-1:7001", "a2": "[::1]:7002"}, ""},
		{"", nil, "no peers: want id=host:port,... for every agent"},
		{" , ", nil, "no peers"},
		{"a1=127.0.0.1:7001,127.0.0.1:7002", nil, `peer "127.0.0.1:7002" is not id=host:port, e.g. a1=127.0.0.1:7001`},
		{"=127.0.0.1:7001", nil, `peer "=127.0.0.1:7001" is not id=host:port`},
		{"a1=", nil, `peer "a1=" is not id=host:port`},
		{"a1=127.0.0.1", nil, `peer a1: "127.0.0.1" is not host:port with a port from 1 to 65535`},
		{"a1=:7001", nil, `peer a1: ":7001" is not host:port`},
		{"a1=h:70000", nil, `peer a1: "h:70000" is not host:port with a port from 1 to 65535`},
		{"a1=h:http", nil, `peer a1: "h:http" is not host:port`},
		{"a1=h:1,a1=h:2", nil, "peer a1 is listed twice"},
		{"a1=h:1,a2=h:1", nil, "peers a1 and a2 have the same address h:1"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePeers(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
