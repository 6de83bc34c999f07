package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/policy"
)

// lagger measures how many records of the replicated topics the standby
// still lacks: the records a failover would leave behind.
type lagger struct {
	policy   *policy.Policy
	clusters *clusters

	mu  sync.Mutex
	mm2 map[string]*mm2Progress // by target domain
}

// measure returns the lag of to behind from.
func (l *lagger) measure(ctx context.Context, route, from, to string) (policy.Lag, error) {
	lag := policy.Lag{Route: route}
	src, err := l.clusters.client(from)
	if err != nil {
		return lag, err
	}
	srcAdm := kadm.NewClient(src)
	topics, err := l.topics(ctx, srcAdm)
	if err != nil {
		return lag, fmt.Errorf("listing replicated topics on %s: %w", from, err)
	}
	if len(topics) == 0 {
		return lag, fmt.Errorf("no topic on %s matches replication.topics %v", from, l.policy.Replication.Topics)
	}
	starts, err := srcAdm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return lag, fmt.Errorf("start offsets on %s: %w", from, err)
	}
	ends, err := srcAdm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return lag, fmt.Errorf("end offsets on %s: %w", from, err)
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
		replicated = mm.position
	default:
		return lag, fmt.Errorf("replication mode %q has no lag", l.policy.Replication.Mode)
	}

	var behind []string
	ends.Each(func(o kadm.ListedOffset) {
		start := int64(0)
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
			start = s.Offset
		}
		pos, ok := replicated(o.Topic, o.Partition)
		if !ok || pos < start {
			pos = start // nothing replicated that still exists at the source
		}
		if n := o.Offset - pos; n > 0 {
			lag.Records += n
			behind = append(behind, fmt.Sprintf("%s[%d]=%d", o.Topic, o.Partition, n))
		}
	})
	slices.Sort(behind)
	lag.Known = true
	lag.At = time.Now()
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

func (l *lagger) topics(ctx context.Context, adm *kadm.Client) ([]string, error) {
	details, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range details.Names() {
		if l.policy.Replication.Matches(name) {
			out = append(out, name)
		}
	}
	return out, nil
}

func (l *lagger) progress(ctx context.Context, domain string) (*mm2Progress, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m, ok := l.mm2[domain]; ok {
		return m, m.caughtUp(ctx)
	}
	cl, err := l.clusters.client(domain)
	if err != nil {
		return nil, err
	}
	topic, err := mm2OffsetsTopic(ctx, kadm.NewClient(cl))
	if err != nil {
		return nil, fmt.Errorf("on %s: %w", domain, err)
	}
	m, err := newMM2Progress(l.clusters, domain, topic)
	if err != nil {
		return nil, err
	}
	l.mm2[domain] = m
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

// mm2OffsetsTopic finds the topic where MirrorMaker 2's source connector,
// replicating into this cluster, commits its source offsets.
func mm2OffsetsTopic(ctx context.Context, adm *kadm.Client) (string, error) {
	details, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return "", fmt.Errorf("listing topics: %w", err)
	}
	var found []string
	for _, name := range details.Names() {
		if mm2OffsetsName.MatchString(name) {
			found = append(found, name)
		}
	}
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
	topic  string
	client *kgo.Client
	adm    *kadm.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	committed map[string]map[int32]int64 // source topic -> partition -> offset
	next      map[int32]int64            // next offset to read, per partition of the offsets topic
	err       error
}

func newMM2Progress(c *clusters, domain, topic string) (*mm2Progress, error) {
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
		topic: topic, client: cl, adm: kadm.NewClient(cl), cancel: cancel, done: make(chan struct{}),
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

func (m *mm2Progress) close() {
	m.cancel()
	<-m.done
	m.client.Close()
}
