package kafkatest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// MirrorMaker is a dedicated MirrorMaker 2 process copying topics and group
// offsets from one cluster to another with IdentityReplicationPolicy, so the
// copies keep their names, as a switched client expects.
type MirrorMaker struct {
	Name     string // its process name
	Src, Dst *Cluster
	Props    string

	bed  *Bed
	proc *Process
}

// StartMirrorMaker starts MirrorMaker 2 from src to dst (over SASL_SSL as
// Admin where a cluster is secure) for the topics
// matching topics (a regular expression) and every consumer group, with
// intervals of a second so that tests need not wait long. It returns at
// once; WaitTopic and CaughtUp tell when it has copied.
func (b *Bed) StartMirrorMaker(src, dst *Cluster, topics string) *MirrorMaker {
	b.T.Helper()
	return b.StartMirrorMakerAs("mirrormaker", src, dst, topics)
}

// StartMirrorMakerAs is StartMirrorMaker for one of several MirrorMaker
// processes of a test (one each way, say): its files are named after name.
func (b *Bed) StartMirrorMakerAs(name string, src, dst *Cluster, topics string) *MirrorMaker {
	b.T.Helper()
	props := "mm2.properties"
	if name != "mirrormaker" {
		props = name + ".properties"
	}
	m := &MirrorMaker{Name: name, Src: src, Dst: dst, Props: b.Path(props), bed: b}
	flow := src.Name + "->" + dst.Name
	back := dst.Name + "->" + src.Name
	lines := []string{
		"clusters = " + src.Name + ", " + dst.Name,
		src.Name + ".bootstrap.servers = " + src.Addr(),
		dst.Name + ".bootstrap.servers = " + dst.Addr(),
		flow + ".enabled = true",
		flow + ".topics = " + topics,
		flow + ".groups = .*",
		back + ".enabled = false",
		"replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
		"sync.group.offsets.enabled = true",
		"sync.group.offsets.interval.seconds = 1",
		"emit.checkpoints.enabled = true",
		"emit.checkpoints.interval.seconds = 1",
		"emit.heartbeats.interval.seconds = 1",
		"refresh.topics.interval.seconds = 1",
		"refresh.groups.interval.seconds = 1",
		// An offset sync for every record copied: group offsets translate
		// exactly rather than to the last sync 100 records back.
		"offset.lag.max = 0",
		// The source connector commits how far it has copied every second
		// (to mm2-offsets.<source>.internal on the target), which is what
		// Turnout's agents read as the replication lag. MirrorMaker takes
		// a herder's worker settings from the target cluster's prefix
		// (MirrorMakerConfig.workerConfig): the top-level key is ignored,
		// and the worker would keep Connect's 60 s.
		dst.Name + ".offset.flush.interval.ms = 1000",
		"sync.topic.acls.enabled = false",
		"tasks.max = 1",
		"replication.factor = 1",
		"checkpoints.topic.replication.factor = 1",
		"heartbeats.topic.replication.factor = 1",
		"offset-syncs.topic.replication.factor = 1",
		"offset.storage.replication.factor = 1",
		"status.storage.replication.factor = 1",
		"config.storage.replication.factor = 1",
	}
	// A secure cluster is reached over SASL_SSL as its Admin: MirrorMaker
	// passes <alias>.<client setting> to every client, admin, producer and
	// consumer and the worker's own, of that cluster.
	for _, c := range []*Cluster{src, dst} {
		for _, kv := range c.AdminAuth().Java() {
			k, v, _ := strings.Cut(kv, "=")
			lines = append(lines, c.Name+"."+k+" = "+v)
		}
	}
	if err := os.WriteFile(m.Props, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		b.T.Fatal(err)
	}
	cmd := b.Java(name, JVM{Heap: "384m"}, "org.apache.kafka.connect.mirror.MirrorMaker", m.Props, "--clusters", dst.Name)
	p, err := b.Start(name, cmd)
	if err != nil {
		b.T.Fatal(err)
	}
	m.proc = p
	return m
}

// Stop ends MirrorMaker gracefully.
func (m *MirrorMaker) Stop() error { return m.proc.Stop(30 * time.Second) }

// Kill ends MirrorMaker with SIGKILL.
func (m *MirrorMaker) Kill() { m.proc.Kill() }

func (m *MirrorMaker) alive() error {
	if m.proc.Exited() {
		return fmt.Errorf("MirrorMaker %s exited: %v\n%s", m.Name, m.proc.Err(), tailFile(m.bed.Path(m.Name+".log"), 30))
	}
	return nil
}

// CaughtUp waits until every partition of topic on the target has at least
// the end offset the source had when CaughtUp was called: everything written
// to the source before the call is then on the target too. (MirrorMaker
// writes the same records in the same order, and our topics have no
// transaction markers, so offsets correspond one to one.)
func (m *MirrorMaker) CaughtUp(ctx context.Context, topic string, timeout time.Duration) (map[int32]int64, error) {
	want, err := m.Src.EndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	var got map[int32]int64
	err = Poll(timeout, 50*time.Millisecond, func() (bool, error) {
		if err := m.alive(); err != nil {
			return false, err
		}
		got, err = m.Dst.EndOffsets(ctx, topic)
		if err != nil {
			return false, err
		}
		for p, o := range want {
			if got[p] < o {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return got, fmt.Errorf("MirrorMaker never caught up on %s: source end offsets %v, target %v: %w", topic, want, got, err)
	}
	return got, nil
}

// GroupSynced waits until the target has committed offsets for group on every
// partition of topic that are no further behind the group's offsets on the
// source, read at the call, than slack records.
func (m *MirrorMaker) GroupSynced(ctx context.Context, group, topic string, slack int64, timeout time.Duration) (src, dst map[int32]int64, err error) {
	src, err = m.Src.CommittedOffsets(ctx, group, topic)
	if err != nil {
		return nil, nil, err
	}
	err = Poll(timeout, 100*time.Millisecond, func() (bool, error) {
		if err := m.alive(); err != nil {
			return false, err
		}
		dst, err = m.Dst.CommittedOffsets(ctx, group, topic)
		if err != nil {
			return false, err
		}
		if len(dst) < len(src) || len(src) == 0 {
			return false, nil
		}
		for p, o := range src {
			if dst[p] < o-slack {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return src, dst, fmt.Errorf("MirrorMaker never synced group %s: source offsets %v, target %v: %w", group, src, dst, err)
	}
	return src, dst, nil
}
