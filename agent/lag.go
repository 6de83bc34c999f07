package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/policy"
)

// lagger measures how many records of the replicated topics the standby
// still lacks: the records a failover would leave behind.
type lagger struct {
	policy   *policy.Policy
	clusters *clusters
	log      *slog.Logger

	mu  sync.Mutex
	mm2 map[string]*mm2Progress // by target domain
	// sources is what each domain was when its lag was last measured as a
	// route's active one. MirrorMaker 2's positions name a source topic
	// and partition, not which incarnation of them: once the cluster or a
	// topic is recreated, the positions recorded before are of records
	// that are gone.
	sources map[string]source
}

// source is a cluster as MirrorMaker 2 replicates from it: its id, and the
// ids of the replicated topics by name.
type source struct {
	cluster string
	topics  map[string]kadm.TopicID
}

// errPositionsGone is a replicated position past the end of the source's
// partition. Only a position of records that are gone, from before the
// topic or the cluster was recreated, can be: it says nothing of what the
// standby holds now, so the lag is unknown.
var errPositionsGone = errors.New("the replicated position is past the end of the source, so it is of records that are gone")

// measure returns the lag of to behind from. With errPositionsGone, it
// also returns the lag as unknown, to report.
func (l *lagger) measure(ctx context.Context, route, from, to string) (policy.Lag, error) {
	lag := policy.Lag{Route: route}
	src, err := l.clusters.client(from)
	if err != nil {
		return lag, err
	}
	srcAdm := kadm.NewClient(src)
	now, err := l.source(ctx, src)
	if err != nil {
		return lag, fmt.Errorf("listing replicated topics on %s: %w", from, err)
	}
	topics := slices.Sorted(maps.Keys(now.topics))
	starts, err := srcAdm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return lag, fmt.Errorf("start offsets on %s: %w", from, err)
	}
	// replicated gives, per source partition, the source offset up to
	// which the standby holds the records.
	var replicated func(topic string, partition int32) (int64, bool)
	switch l.policy.Replication.Mode {
	case policy.ModeOffsets:
		tgt, err := l.clusters.client(to)
		if err != nil {
			return lag, err
		}
		tgtEnds, err := kadm.NewClient(tgt).ListEndOffsets(ctx, topics...)
		if err != nil {
			return lag, fmt.Errorf("end offsets on %s: %w", to, err)
		}
		replicated = func(t string, p int32) (int64, bool) {
			o, ok := tgtEnds.Lookup(t, p)
			return o.Offset, ok && o.Err == nil
		}
	case policy.ModeMirrorMaker2:
		mm, err := l.progress(ctx, to)
		if err != nil {
			return lag, err
		}
		l.vouch(from, now, mm)
		replicated = mm.position
	default:
		return lag, fmt.Errorf("replication mode %q has no lag", l.policy.Replication.Mode)
	}
	// The source's ends are listed after what the standby holds, so a
	// record produced and replicated in between cannot put the standby
	// past them.
	ends, err := srcAdm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return lag, fmt.Errorf("end offsets on %s: %w", from, err)
	}

	var behind, beyond []string
	ends.Each(func(o kadm.ListedOffset) {
		start := int64(0)
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
			start = s.Offset
		}
		pos, ok := replicated(o.Topic, o.Partition)
		if ok && pos > o.Offset {
			beyond = append(beyond, fmt.Sprintf("%s[%d] at %d, end %d", o.Topic, o.Partition, pos, o.Offset))
			return
		}
		if !ok || pos < start {
			pos = start // nothing replicated that still exists at the source
		}
		if n := o.Offset - pos; n > 0 {
			lag.Records += n
			behind = append(behind, fmt.Sprintf("%s[%d]=%d", o.Topic, o.Partition, n))
		}
	})
	lag.At = time.Now()
	if len(beyond) > 0 {
		slices.Sort(beyond)
		err := fmt.Errorf("%s -> %s: %w (was %s recreated?): %s", from, to, errPositionsGone, from, strings.Join(firstN(beyond, 8), "; "))
		lag.Records, lag.Detail = 0, err.Error()
		return lag, err
	}
	slices.Sort(behind)
	lag.Known = true
	lag.Detail = fmt.Sprintf("%s -> %s, %d topics", from, to, len(topics))
	if len(behind) > 0 {
		lag.Detail += ", behind: " + strings.Join(firstN(behind, 8), " ")
	}
	return lag, nil
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("(+%d more)", len(s)-n))
	}
	return s
}

// source returns the source cluster's id and its replicated topics.
func (l *lagger) source(ctx context.Context, cl *kgo.Client) (source, error) {
	cluster, ids, err := clusterTopics(ctx, cl)
	if err != nil {
		return source{}, err
	}
	maps.DeleteFunc(ids, func(name string, _ kadm.TopicID) bool { return !l.policy.Replication.Matches(name) })
	if len(ids) == 0 {
		return source{}, fmt.Errorf("no topic matches replication.topics %v", l.policy.Replication.Topics)
	}
	return source{cluster: cluster, topics: ids}, nil
}

// clusterTopics asks a cluster for its id and the ids of its topics by
// name. It asks directly: kadm would answer from the client's metadata
// cache, which may predate a topic's recreation.
func clusterTopics(ctx context.Context, cl *kgo.Client) (string, map[string]kadm.TopicID, error) {
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return "", nil, fmt.Errorf("metadata: %w", err)
	}
	ids := map[string]kadm.TopicID{}
	for _, t := range resp.Topics {
		if t.Topic != nil && t.ErrorCode == 0 {
			ids[*t.Topic] = t.TopicID
		}
	}
	var cluster string
	if resp.ClusterID != nil {
		cluster = *resp.ClusterID
	}
	return cluster, ids, nil
}

// vouch makes mm forget the positions it read of from's topics if from is
// no longer the cluster, or a topic no longer the topic, it was when last
// measured: they are of records that are gone. Until MirrorMaker 2 commits
// again, such a partition counts as not replicated at all.
func (l *lagger) vouch(from string, now source, mm *mm2Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	before, seen := l.sources[from]
	l.sources[from] = now
	switch {
	case !seen:
	case before.cluster != now.cluster:
		l.log.Warn("the source cluster changed; forgetting MirrorMaker 2's positions until it commits again",
			"domain", from, "cluster_id_before", before.cluster, "cluster_id", now.cluster, "offsets_topic", mm.topic)
		mm.forget(func(string) bool { return true })
	default:
		recreated := func(topic string) bool {
			id, ok := before.topics[topic]
			return ok && id != now.topics[topic]
		}
		var gone []string
		for t := range now.topics {
			if recreated(t) {
				gone = append(gone, t)
			}
		}
		if len(gone) > 0 {
			slices.Sort(gone)
			l.log.Warn("replicated topics were recreated; forgetting MirrorMaker 2's positions in them until it commits again",
				"domain", from, "topics", gone, "offsets_topic", mm.topic)
			mm.forget(recreated)
		}
	}
}

// progress returns the MirrorMaker 2 offsets topic follower of domain,
// caught up. A follower of an offsets topic that has since been deleted,
// recreated or replaced is closed and a new one started.
func (l *lagger) progress(ctx context.Context, domain string) (*mm2Progress, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cl, err := l.clusters.client(domain)
	if err != nil {
		return nil, err
	}
	_, ids, err := clusterTopics(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("listing topics on %s: %w", domain, err)
	}
	topic, err := mm2OffsetsTopic(slices.Collect(maps.Keys(ids)))
	id := ids[topic]
	m := l.mm2[domain]
	if m != nil && (err != nil || m.topic != topic || m.topicID != id) {
		l.log.Warn("MirrorMaker 2's offsets topic changed; reading it again from the start",
			"domain", domain, "topic_before", m.topic, "topic", topic, "err", err)
		m.close()
		delete(l.mm2, domain)
		m = nil
	}
	if err != nil {
		return nil, fmt.Errorf("on %s: %w", domain, err)
	}
	if m == nil {
		if m, err = newMM2Progress(l.clusters, domain, topic, id); err != nil {
			return nil, err
		}
		l.mm2[domain] = m
	}
	return m, m.caughtUp(ctx)
}

func (l *lagger) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.mm2 {
		m.close()
	}
	l.mm2 = map[string]*mm2Progress{}
}

var mm2OffsetsName = regexp.MustCompile(`^mm2-offsets\..+\.internal$`)

// mm2OffsetsTopic finds, among a cluster's topics, the one where
// MirrorMaker 2's source connector, replicating into the cluster, commits
// its source offsets.
func mm2OffsetsTopic(topics []string) (string, error) {
	var found []string
	for _, name := range topics {
		if mm2OffsetsName.MatchString(name) {
			found = append(found, name)
		}
	}
	slices.Sort(found)
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no MirrorMaker 2 offsets topic (mm2-offsets.<source>.internal): is MirrorMaker 2 replicating into it?")
	default:
		return "", fmt.Errorf("several MirrorMaker 2 offsets topics (%s): lag cannot tell which flow to use", strings.Join(found, ", "))
	}
}

// mm2Progress follows a MirrorMaker 2 offsets topic, in which the source
// connector commits, per source partition, the offset of the last record it
// replicated. It reads the topic once from the start and then follows it, so
// the position is still known after the source cluster is gone.
type mm2Progress struct {
	topic   string
	topicID kadm.TopicID
	client  *kgo.Client
	adm     *kadm.Client
	cancel  context.CancelFunc
	done    chan struct{}

	mu        sync.Mutex
	committed map[string]map[int32]int64 // source topic -> partition -> offset
	next      map[int32]int64            // next offset to read, per partition of the offsets topic
	err       error
}

func newMM2Progress(c *clusters, domain, topic string, topicID kadm.TopicID) (*mm2Progress, error) {
	opts, err := c.opts(domain)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return nil, fmt.Errorf("following %s on %s: %w", topic, domain, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &mm2Progress{
		topic: topic, topicID: topicID, client: cl, adm: kadm.NewClient(cl), cancel: cancel, done: make(chan struct{}),
		committed: map[string]map[int32]int64{}, next: map[int32]int64{},
	}
	go m.follow(ctx)
	return m, nil
}

// mm2Key is the key MirrorSourceConnector commits its offsets under:
// ["<connector>", {"cluster": ..., "topic": ..., "partition": ...}].
type mm2Partition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

func (m *mm2Progress) follow(ctx context.Context) {
	defer close(m.done)
	for ctx.Err() == nil {
		fs := m.client.PollFetches(ctx)
		m.mu.Lock()
		fs.EachError(func(_ string, _ int32, err error) {
			if ctx.Err() == nil {
				m.err = err
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			m.next[r.Partition] = r.Offset + 1
			var key []json.RawMessage
			var p mm2Partition
			if json.Unmarshal(r.Key, &key) != nil || len(key) != 2 || json.Unmarshal(key[1], &p) != nil || p.Topic == "" {
				return // not a source connector's offset
			}
			var connector string
			if json.Unmarshal(key[0], &connector) != nil || connector != "MirrorSourceConnector" {
				return
			}
			parts := m.committed[p.Topic]
			if parts == nil {
				parts = map[int32]int64{}
				m.committed[p.Topic] = parts
			}
			var v struct {
				Offset *int64 `json:"offset"`
			}
			if r.Value == nil || json.Unmarshal(r.Value, &v) != nil || v.Offset == nil {
				delete(parts, p.Partition)
				return
			}
			parts[p.Partition] = *v.Offset
		})
		m.mu.Unlock()
	}
}

// caughtUp waits until everything in the offsets topic when called has been
// read, so a position is never older than the topic.
func (m *mm2Progress) caughtUp(ctx context.Context) error {
	ends, err := m.adm.ListEndOffsets(ctx, m.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("end of %s: %w", m.topic, err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		behind := false
		m.mu.Lock()
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 && m.next[o.Partition] < o.Offset {
				behind = true
			}
		})
		ferr := m.err
		m.mu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-ctx.Done():
			if ferr != nil {
				return fmt.Errorf("reading %s: %w", m.topic, ferr)
			}
			return fmt.Errorf("reading %s did not catch up: %w", m.topic, ctx.Err())
		case <-tick.C:
		}
	}
}

// position is the source offset up to which MirrorMaker 2 has replicated a
// partition: one past the last record it committed.
func (m *mm2Progress) position(topic string, partition int32) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.committed[topic][partition]
	return o + 1, ok
}

// forget drops the positions read so far of the topics it names.
func (m *mm2Progress) forget(topic func(string) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	maps.DeleteFunc(m.committed, func(t string, _ map[int32]int64) bool { return topic(t) })
}

func (m *mm2Progress) close() {
	m.cancel()
	<-m.done
	m.client.Close()
}
