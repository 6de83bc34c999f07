package consensus

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Config configures one agent's Raft node.
type Config struct {
	ID string // this agent's id, a key of Peers
	// Addr is the address to listen on for Raft. The others reach this
	// agent at its entry in Peers, so Addr may be a wildcard such as
	// 0.0.0.0:7001.
	Addr string
	// Peers maps every agent's id to its Raft address, this agent's
	// included. It bootstraps the group on first start only: afterwards the
	// membership is the one in the log.
	Peers map[string]string
	// Bootstrap creates a new group from Peers if the data dir holds no
	// Raft state; it is ignored when it does. Without it an empty data dir
	// waits for the group's leader to bring the agent in with the log or a
	// snapshot. Set it only when the group first forms: an agent whose data
	// dir was wiped that bootstraps again starts from an empty state, and
	// two such agents of three make a group that has forgotten every
	// route's epoch.
	Bootstrap bool
	DataDir   string       // the Raft log, stable store and snapshots
	Logger    *slog.Logger // for raft's own messages; nil discards them
	// TLS, when set, carries Raft over mutual TLS (see ctlsec.RaftTLS):
	// every agent's certificate must be signed by the CA and name the
	// host of its Peers address. Nil means plain TCP.
	TLS *tls.Config

	// Timeouts; zero means the default, tuned so that a new leader is
	// elected in well under 3 s on a LAN.
	HeartbeatTimeout   time.Duration // default 1s
	ElectionTimeout    time.Duration // default 1s
	LeaderLeaseTimeout time.Duration // default 500ms
	CommitTimeout      time.Duration // default 50ms
}

// ErrNotLeader is returned by Apply on an agent that is not the leader; the
// request belongs with the leader (see Leader and State.Agents).
var ErrNotLeader = errors.New("this agent is not the Raft leader")

// Node is this agent's member of the Raft group.
type Node struct {
	id        string
	raft      *raft.Raft
	fsm       *FSM
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore

	bootstrapped bool
	closeOnce    sync.Once
	closeErr     error
}

// storeOpenTimeout bounds the wait for the lock on the Raft database, which
// another process holding the same data dir keeps forever.
const storeOpenTimeout = time.Second

// Open starts the node: it opens (or creates) its data dir, listens on
// Addr, and, if asked to (Config.Bootstrap) and the data dir has no Raft
// state yet, bootstraps the group from Peers. It does not wait for a
// leader; see WaitLeader.
func Open(cfg Config) (*Node, error) {
	cfg, advertise, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	logger := hclogToSlog(cfg.Logger)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout, rc.ElectionTimeout = cfg.HeartbeatTimeout, cfg.ElectionTimeout
	rc.LeaderLeaseTimeout, rc.CommitTimeout = cfg.LeaderLeaseTimeout, cfg.CommitTimeout
	rc.Logger = logger
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raft timeouts: %w", err)
	}

	n := &Node{id: cfg.ID, fsm: NewFSM()}
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the Raft data dir: %w", err)
	}
	dbPath := filepath.Join(cfg.DataDir, "raft.db")
	n.store, err = raftboltdb.New(raftboltdb.Options{Path: dbPath, BoltOptions: &bbolt.Options{Timeout: storeOpenTimeout}})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("opening %s: another process (an agent with the same --data-dir?) holds it", dbPath)
	} else if err != nil {
		return nil, fmt.Errorf("opening the Raft database: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, logger)
	if err != nil {
		return nil, fmt.Errorf("opening the Raft snapshots: %w", err)
	}
	if cfg.TLS == nil {
		n.transport, err = raft.NewTCPTransportWithLogger(cfg.Addr, advertise, 3, 5*time.Second, logger)
	} else {
		var stream *tlsStreamLayer
		if stream, err = newTLSStreamLayer(cfg.Addr, advertise, cfg.TLS); err == nil {
			n.transport = raft.NewNetworkTransportWithLogger(stream, 3, 5*time.Second, logger)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listening for Raft on %s: %w", cfg.Addr, err)
	}

	existing, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		return nil, fmt.Errorf("reading the Raft data dir: %w", err)
	}
	switch {
	case !existing && !cfg.Bootstrap:
		cfg.Logger.Warn("the Raft data dir is empty: waiting for the group's leader to send this agent the state; "+
			"start it with --bootstrap only if the group is new", "data_dir", cfg.DataDir)
	case !existing:
		if err := raft.BootstrapCluster(rc, n.store, n.store, snaps, n.transport, cfg.configuration()); err != nil {
			return nil, fmt.Errorf("bootstrapping the Raft group: %w", err)
		}
		n.bootstrapped = true
	}
	n.raft, err = raft.NewRaft(rc, n.fsm, n.store, n.store, snaps, n.transport)
	if err != nil {
		return nil, fmt.Errorf("starting Raft: %w", err)
	}
	ok = true
	return n, nil
}

// withDefaults checks cfg and fills in its defaults. It also returns the
// address other agents reach this one at, its entry in Peers.
func (cfg Config) withDefaults() (Config, net.Addr, error) {
	switch {
	case cfg.ID == "":
		return cfg, nil, errors.New("raft: the agent needs an id")
	case cfg.Addr == "":
		return cfg, nil, fmt.Errorf("raft: agent %s needs an address to listen on", cfg.ID)
	case cfg.DataDir == "":
		return cfg, nil, fmt.Errorf("raft: agent %s needs a data dir", cfg.ID)
	case cfg.Peers[cfg.ID] == "":
		return cfg, nil, fmt.Errorf("raft: the peers (%s) do not include this agent, %s", peerList(cfg.Peers), cfg.ID)
	}
	advertise, err := net.ResolveTCPAddr("tcp", cfg.Peers[cfg.ID])
	if err != nil {
		return cfg, nil, fmt.Errorf("raft: the address of agent %s: %w", cfg.ID, err)
	}
	// A new leader within about 2 s of losing the old one, without
	// leadership moving when a loaded host stalls an agent for a moment.
	cfg.HeartbeatTimeout = cmp.Or(cfg.HeartbeatTimeout, time.Second)
	cfg.ElectionTimeout = cmp.Or(cfg.ElectionTimeout, time.Second)
	cfg.LeaderLeaseTimeout = cmp.Or(cfg.LeaderLeaseTimeout, 500*time.Millisecond)
	cfg.CommitTimeout = cmp.Or(cfg.CommitTimeout, 50*time.Millisecond)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, advertise, nil
}

// configuration is the group every agent bootstraps, the same on each.
func (cfg Config) configuration() raft.Configuration {
	var c raft.Configuration
	for _, id := range slices.Sorted(maps.Keys(cfg.Peers)) {
		c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(cfg.Peers[id])})
	}
	return c
}

// Apply commits cmd and applies it. It returns ErrNotLeader on a follower
// and a *Rejected if the state refused the command. If ctx ends first, or
// the leader loses its leadership meanwhile (raft.ErrLeadershipLost), the
// command may or may not be committed: read the state, and rely on the
// epoch rule, to retry.
func (n *Node) Apply(ctx context.Context, cmd Command) error {
	data, err := Encode(cmd)
	if err != nil {
		return err
	}
	f := n.raft.Apply(data, timeout(ctx))
	if err := wait(ctx, f); err != nil {
		return fmt.Errorf("committing %T: %w", cmd, err)
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// Barrier waits until this node has applied every command committed before
// it; a new leader calls it before acting on the state.
func (n *Node) Barrier(ctx context.Context) error {
	if err := wait(ctx, n.raft.Barrier(timeout(ctx))); err != nil {
		return fmt.Errorf("raft barrier: %w", err)
	}
	return nil
}

// timeout is what raft takes instead of a context: how long to wait for the
// command to be accepted. Zero means no limit.
func timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Nanosecond)
	}
	return 0
}

// wait waits for a raft future, or for ctx. A future always ends, at the
// latest when raft shuts down, so the goroutine does not outlive the node.
func wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return ErrNotLeader
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Bootstrapped reports whether Open started a new group from Peers, which
// it does only when asked to (Config.Bootstrap) and the data dir holds no
// Raft state, rather than rejoin with the state in the data dir or wait to
// be sent it.
func (n *Node) Bootstrapped() bool { return n.bootstrapped }

// State returns a deep copy of the state this node has applied.
func (n *Node) State() State { return n.fsm.State() }

// ID is this agent's id.
func (n *Node) ID() string { return n.id }

// Leader returns the id and Raft address of the leader as this node knows
// it; both are empty while there is none.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Term is the current Raft term.
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// LeaderCh delivers true when this node becomes the leader and false when
// it stops being one. It has one reader, and keeps only the latest signal
// the reader has not taken: two trues in a row mean leadership was lost and
// won again meanwhile.
func (n *Node) LeaderCh() <-chan bool { return n.raft.LeaderCh() }

// Voters is the number of voting members of the group, the base of a
// quorum.
func (n *Node) Voters() (int, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return 0, fmt.Errorf("reading the Raft configuration: %w", err)
	}
	count := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			count++
		}
	}
	return count, nil
}

// WaitLeader waits until the group has a leader that this node knows of.
func (n *Node) WaitLeader(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if id, _ := n.Leader(); id != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for a Raft leader: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Close leaves the group: it stops Raft and its goroutines, then closes the
// transport and the database. The data dir keeps the state for the next
// Open.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closeErr = n.raft.Shutdown().Error()
		n.closeErr = errors.Join(n.closeErr, n.closeStores())
	})
	return n.closeErr
}

func (n *Node) closeStores() error {
	var errs []error
	if n.transport != nil {
		// Pooled connections to the other agents outlive Close otherwise,
		// and with them the goroutines at the other ends.
		n.transport.CloseStreams()
		errs = append(errs, n.transport.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

// ParsePeers reads a peer list such as "a1=127.0.0.1:7001,a2=127.0.0.1:7002".
func ParsePeers(s string) (map[string]string, error) {
	peers := map[string]string{}
	byAddr := map[string]string{}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, addr, ok := strings.Cut(entry, "=")
		id, addr = strings.TrimSpace(id), strings.TrimSpace(addr)
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("peer %q is not id=host:port, e.g. a1=127.0.0.1:7001", entry)
		}
		host, port, err := net.SplitHostPort(addr)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("peer %s: %q is not host:port with a port from 1 to 65535", id, addr)
		}
		if _, dup := peers[id]; dup {
			return nil, fmt.Errorf("peer %s is listed twice", id)
		}
		if other, dup := byAddr[addr]; dup {
			return nil, fmt.Errorf("peers %s and %s have the same address %s", other, id, addr)
		}
		peers[id], byAddr[addr] = addr, id
	}
	if len(peers) == 0 {
		return nil, errors.New("no peers: want id=host:port,... for every agent, e.g. a1=127.0.0.1:7001,a2=127.0.0.1:7002,a3=127.0.0.1:7003")
	}
	return peers, nil
}

func peerList(peers map[string]string) string {
	if len(peers) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(peers)), ", ")
}

// hclogToSlog returns an hclog.Logger, as raft takes, that writes to l.
func hclogToSlog(l *slog.Logger) hclog.Logger {
	// The intercept logger hands every message to its sinks whatever its
	// own level; its own output is switched off.
	h := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "raft", Output: io.Discard, Level: hclog.Off})
	h.RegisterSink(slogSink{l})
	return h
}

type slogSink struct{ l *slog.Logger }

func (s slogSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	var lvl slog.Level
	switch {
	case level <= hclog.Debug:
		lvl = slog.LevelDebug
	case level == hclog.Info:
		lvl = slog.LevelInfo
	case level == hclog.Warn:
		lvl = slog.LevelWarn
	default:
		lvl = slog.LevelError
	}
	ctx := context.Background()
	if s.l.Enabled(ctx, lvl) {
		s.l.Log(ctx, lvl, msg, append([]any{"logger", name}, args...)...)
	}
}
