package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/config"
)

// mm2Bed is two kfake clusters, k1 and k2, each with the replicated topic
// orders (two partitions) and the offsets topic of MirrorMaker 2
// replicating from the other one into it. Tests write MirrorMaker 2's
// commits themselves.
type mm2Bed struct {
	t        *testing.T
	ctx      context.Context
	clusters map[string]*kfake.Cluster
	servers  map[string]*config.BootstrapServer
}

const mm2Orders = "orders"

func newMM2Bed(t *testing.T) *mm2Bed {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	b := &mm2Bed{t: t, ctx: ctx, clusters: map[string]*kfake.Cluster{}, servers: map[string]*config.BootstrapServer{}}
	for i, domain := range []string{"k1", "k2"} {
		other := map[string]string{"k1": "k2", "k2": "k1"}[domain]
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID(fmt.Sprintf("cluster-%d", i+1)),
			kfake.SeedTopics(2, mm2Orders), kfake.SeedTopics(1, offsetsTopicOf(other)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		b.clusters[domain] = c
		b.servers[domain] = &config.BootstrapServer{Endpoint: strings.Join(c.ListenAddrs(), ",")}
	}
	return b
}

func offsetsTopicOf(source string) string { return "mm2-offsets." + source + ".internal" }

// lagger is a new lagger, as an agent that has just started has, measuring
// MirrorMaker 2's lag.
func (b *mm2Bed) lagger() *lagger { return b.laggerOf(policy.ModeMirrorMaker2) }

func (b *mm2Bed) laggerOf(mode string) *lagger {
	pol := &policy.Policy{Probe: policy.Probe{Timeout: 5 * time.Second}, Replication: policy.Replication{
		Mode: mode, Topics: []string{mm2Orders}, Patterns: []*regexp.Regexp{regexp.MustCompile("^" + mm2Orders + "$")}}}
	c := &clusters{servers: b.servers, timeout: 5 * time.Second, clients: map[string]*kgo.Client{}}
	l := &lagger{policy: pol, clusters: c, log: slog.New(slog.DiscardHandler), mm2: map[string]*mm2Progress{}, sources: map[string]source{}}
	b.t.Cleanup(func() { l.close(); c.close() })
	return l
}

func (b *mm2Bed) client(domain string) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.clusters[domain].ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(cl.Close)
	return cl
}

// produce writes n records to a partition of orders on domain.
func (b *mm2Bed) produce(domain string, partition int32, n int) {
	b.t.Helper()
	cl := b.client(domain)
	for range n {
		if err := cl.ProduceSync(b.ctx, &kgo.Record{Topic: mm2Orders, Partition: partition, Value: []byte("x")}).FirstErr(); err != nil {
			b.t.Fatal(err)
		}
	}
}

// commit writes, on target, MirrorMaker 2's commit that it replicated
// source's orders[partition] up to offset.
func (b *mm2Bed) commit(source, target string, partition int32, offset int64) {
	b.t.Helper()
	rec := &kgo.Record{
		Topic: offsetsTopicOf(source),
		Key:   fmt.Appendf(nil, `["MirrorSourceConnector",{"cluster":%q,"partition":%d,"topic":%q}]`, source, partition, mm2Orders),
		Value: fmt.Appendf(nil, `{"offset":%d}`, offset),
	}
	if err := b.client(target).ProduceSync(b.ctx, rec).FirstErr(); err != nil {
		b.t.Fatal(err)
	}
}

// recreate deletes a topic on domain and creates it again, empty.
func (b *mm2Bed) recreate(domain, topic string, partitions int32) {
	b.t.Helper()
	adm := kadm.NewClient(b.client(domain))
	if _, err := adm.DeleteTopic(b.ctx, topic); err != nil {
		b.t.Fatal(err)
	}
	if _, err := adm.CreateTopic(b.ctx, partitions, 1, nil, topic); err != nil {
		b.t.Fatal(err)
	}
}

func (b *mm2Bed) measure(l *lagger, from, to string) policy.Lag {
	b.t.Helper()
	lag, err := l.measure(b.ctx, "r", from, to)
	if err != nil {
		b.t.Fatalf("lag of %s behind %s: %v", to, from, err)
	}
	return lag
}

func wantLag(t *testing.T, what string, l policy.Lag, records int64) {
	t.Helper()
	if !l.Known || l.Records != records {
		t.Fatalf("%s: lag %+v, want %d records known", what, l, records)
	}
}

// failoverAndBack: k1 serves and k2 has every record; the route fails over
// to k2, which takes records k1 gets; k1 is rebuilt, its offsets start
// over, and the route fails back to it. New records on k1, which k2 lacks,
// are lag, though MirrorMaker 2's position from before is higher.
func failoverAndBack(b *mm2Bed, l *lagger) {
	b.produce("k1", 0, 10)
	b.commit("k1", "k2", 0, 9)
	wantLag(b.t, "k2 has every record of k1", b.measure(l, "k1", "k2"), 0)
	b.produce("k2", 0, 4)
	b.commit("k2", "k1", 0, 3)
	wantLag(b.t, "after the failover, k1 has every record of k2", b.measure(l, "k2", "k1"), 0)
	b.recreate("k1", mm2Orders, 2)
	b.produce("k1", 0, 5)
}

func TestMM2LagAfterFailbackToARecreatedTopic(t *testing.T) {
	b := newMM2Bed(t)
	l := b.lagger()
	failoverAndBack(b, l)
	wantLag(t, "after the failback, k2 lacks k1's new records", b.measure(l, "k1", "k2"), 5)
	// Once MirrorMaker 2 commits for the new topic, its position counts.
	b.commit("k1", "k2", 0, 2)
	wantLag(t, "MirrorMaker 2 replicated 3 of them", b.measure(l, "k1", "k2"), 2)
}

// An agent started after the topic was recreated cannot tell; a position
// past the end of the source says the lag is unknown.
func TestMM2PositionPastTheEndIsUnknownLag(t *testing.T) {
	b := newMM2Bed(t)
	failoverAndBack(b, b.lagger())
	wantUnknown(b, b.lagger(), "orders[0] at 10, end 5")
}

func wantUnknown(b *mm2Bed, l *lagger, detail string) {
	b.t.Helper()
	lag, err := l.measure(b.ctx, "r", "k1", "k2")
	if !errors.Is(err, errPositionsGone) || lag.Known || !strings.Contains(lag.Detail, detail) || lag.At.IsZero() {
		b.t.Fatalf("lag %+v, %v; want an unknown lag naming %s, to report", lag, err, detail)
	}
}

// The source cluster is replaced by another under the same address: every
// position recorded is of the old one.
func TestMM2LagAfterTheSourceClusterChanged(t *testing.T) {
	b := newMM2Bed(t)
	l := b.lagger()
	b.produce("k1", 0, 10)
	b.commit("k1", "k2", 0, 9)
	wantLag(t, "k2 has every record of k1", b.measure(l, "k1", "k2"), 0)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID("cluster-1-rebuilt"), kfake.SeedTopics(2, mm2Orders))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b.clusters["k1"] = c
	b.servers["k1"].Endpoint = strings.Join(c.ListenAddrs(), ",")
	l.clusters.close() // as the agent's clients would, on the new address
	b.produce("k1", 0, 12)
	wantLag(t, "k2 lacks every record of the new k1", b.measure(l, "k1", "k2"), 12)
}

// MirrorMaker 2's offsets topic is deleted and created again: what was read
// of the old one is forgotten.
func TestMM2LagAfterTheOffsetsTopicWasRecreated(t *testing.T) {
	b := newMM2Bed(t)
	l := b.lagger()
	b.produce("k1", 0, 10)
	b.produce("k1", 1, 10)
	b.commit("k1", "k2", 0, 9)
	b.commit("k1", "k2", 1, 9)
	wantLag(t, "k2 has every record of k1", b.measure(l, "k1", "k2"), 0)
	b.recreate("k2", offsetsTopicOf("k1"), 1)
	b.commit("k1", "k2", 0, 2)
	wantLag(t, "the new offsets topic has orders[0] up to 2 and nothing of orders[1]", b.measure(l, "k1", "k2"), 7+10)
}

// With an offset-preserving link, a standby that holds more than the active
// cluster holds other records: after a failback to a rebuilt cluster, its
// end offsets say nothing of the new records.
func TestOffsetsLagWithTheStandbyAhead(t *testing.T) {
	b := newMM2Bed(t)
	b.produce("k1", 0, 5)
	b.produce("k2", 0, 10)
	wantUnknown(b, b.laggerOf(policy.ModeOffsets), "orders[0] at 10, end 5")
}

// With an offset-preserving link that copies while the lag is measured, a
// record produced and copied between the two clusters' listings must not
// read as the standby being ahead: the standby is listed first.
func TestOffsetsLagWhileCopying(t *testing.T) {
	b := newMM2Bed(t)
	b.produce("k1", 0, 5)
	b.produce("k2", 0, 5)
	clients := []*kgo.Client{b.client("k1"), b.client("k2")}
	copied := false
	b.clusters["k2"].ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		if !copied {
			copied = true
			// Produced and copied meanwhile; the cluster serves the
			// produce while this request waits.
			b.clusters["k2"].SleepControl(func() {
				for _, cl := range clients {
					if err := cl.ProduceSync(b.ctx, &kgo.Record{Topic: mm2Orders, Value: []byte("x")}).FirstErr(); err != nil {
						t.Error(err)
					}
				}
			})
		}
		return nil, nil, false
	})
	l := b.laggerOf(policy.ModeOffsets)
	wantLag(t, "caught up", b.measure(l, "k1", "k2"), 0)
}
