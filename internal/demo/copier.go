package demo

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// copier is the demo's replication between its two clusters, and it is for
// the DEMO ONLY: real deployments replicate with MirrorMaker 2 (see
// configs/mm2-*.properties) or Cluster Linking, which survive restarts,
// scale, and copy topic configuration; this copies one topic in one process.
//
// It copies partition by partition into a topic that starts with the same
// records (empty, at first), so every record keeps its offset: that is what
// lets the agents measure lag by comparing end offsets (replication.mode:
// offsets) and what lets a consumer resume at the same offset on the other
// cluster. It also copies the consumer group's committed offsets, as
// MirrorMaker 2's checkpoints do (sync.group.offsets.enabled): never past
// what it has copied, and only while the group has no members on the target.
type copier struct {
	from, to string // domains, for messages
	log      *slog.Logger
	src, dst *kgo.Client
	srcAdm   *kadm.Client
	dstAdm   *kadm.Client
	cancel   context.CancelFunc
	done     sync.WaitGroup
	stopped  sync.Once

	mu       sync.Mutex
	next     map[int32]int64 // the next source offset to copy, per partition
	diverged map[int32]bool  // a copy landed at another offset: stop syncing its group offset
	copied   int64
	errs     int64
	synced   map[int32]int64 // the group offsets last committed on the target
	syncedAt time.Time       // when a group sync round last completed
}

// groupSyncInterval is how often group offsets are copied; MirrorMaker 2's
// sync.group.offsets.interval.seconds, which configs/ sets to 1.
const groupSyncInterval = 250 * time.Millisecond

func startCopier(ctx context.Context, from, to *cluster, log *slog.Logger) (*copier, error) {
	c := &copier{from: from.name, to: to.name, log: log.With("copier", from.name+"->"+to.name),
		next: map[int32]int64{}, diverged: map[int32]bool{}, synced: map[int32]int64{}}
	var err error
	c.dst, err = kgo.NewClient(kgo.SeedBrokers(to.addrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	c.dstAdm = kadm.NewClient(c.dst)
	// Copying resumes at the target's end: the target holds the same
	// records up to there (nothing, the first time).
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ends, err := c.dstAdm.ListEndOffsets(sctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		c.dst.Close()
		return nil, fmt.Errorf("end offsets of %s on %s: %w", topic, to.name, err)
	}
	start := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		c.next[o.Partition] = o.Offset
		start[o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	c.src, err = kgo.NewClient(kgo.SeedBrokers(from.addrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		c.dst.Close()
		return nil, err
	}
	c.srcAdm = kadm.NewClient(c.src)
	ctx, c.cancel = context.WithCancel(context.Background())
	c.done.Add(2)
	go c.copyLoop(ctx)
	go c.groupLoop(ctx)
	c.log.Info("demo copier started", "from_offsets", c.next)
	return c, nil
}

// copyLoop copies what it fetches, in order per partition, and waits for
// each batch to be acknowledged before it fetches again, so that next is
// always what the target holds.
func (c *copier) copyLoop(ctx context.Context) {
	defer c.done.Done()
	for ctx.Err() == nil {
		fs := c.src.PollFetches(ctx)
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			want := r.Offset
			out := &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value,
				Headers: r.Headers, Timestamp: r.Timestamp}
			// Not ctx: what was fetched is copied even while stopping.
			c.dst.Produce(context.Background(), out, func(got *kgo.Record, err error) {
				c.mu.Lock()
				defer c.mu.Unlock()
				if err != nil {
					c.errs++
					c.log.Error("demo copier could not copy a record", "partition", got.Partition, "offset", want, "err", err)
					return
				}
				c.copied++
				if got.Offset != want && !c.diverged[got.Partition] {
					c.diverged[got.Partition] = true
					c.log.Warn("demo copier: offsets differ from here on (the target took writes of its own)",
						"partition", got.Partition, "source_offset", want, "target_offset", got.Offset)
				}
				c.next[got.Partition] = max(c.next[got.Partition], want+1)
			})
		})
		if n > 0 {
			fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			c.dst.Flush(fctx)
			cancel()
			continue
		}
		if ctx.Err() == nil {
			fs.EachError(func(_ string, _ int32, err error) {
				c.log.Debug("demo copier: fetch failed", "err", err)
			})
			// The source may be gone; do not spin.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// groupLoop copies the group's committed offsets to the target.
func (c *copier) groupLoop(ctx context.Context) {
	defer c.done.Done()
	tick := time.NewTicker(groupSyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		started := time.Now()
		if err := c.syncGroup(ctx); err != nil {
			c.log.Debug("demo copier: group offsets not copied", "err", err)
			continue
		}
		c.mu.Lock()
		c.syncedAt = started
		c.mu.Unlock()
	}
}

func (c *copier) syncGroup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	committed, err := c.srcAdm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return fmt.Errorf("reading the group's offsets on %s: %w", c.from, err)
	}
	described, err := c.dstAdm.DescribeGroups(ctx, group)
	if err != nil {
		return err
	}
	if g, ok := described[group]; ok && g.Err == nil && len(g.Members) > 0 {
		return nil // the group is live on the target: its own commits win
	}
	offsets := kadm.Offsets{}
	c.mu.Lock()
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil || o.Topic != topic || o.At < 0 || c.diverged[o.Partition] {
			return
		}
		at := min(o.At, c.next[o.Partition]) // never past what the target holds
		if prev, ok := c.synced[o.Partition]; ok && prev == at {
			return
		}
		offsets.Add(kadm.Offset{Topic: topic, Partition: o.Partition, At: at, LeaderEpoch: -1})
	})
	c.mu.Unlock()
	if len(offsets) == 0 {
		return nil
	}
	resp, err := c.dstAdm.CommitOffsets(ctx, group, offsets)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("committing the group's offsets on %s: %w", c.to, err)
	}
	c.mu.Lock()
	offsets.Each(func(o kadm.Offset) { c.synced[o.Partition] = o.At })
	c.mu.Unlock()
	return nil
}

// caughtUp waits until the target holds everything the source held when it
// was called, and the group's offsets were copied after that.
func (c *copier) caughtUp(ctx context.Context) error {
	ends, err := c.srcAdm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets on %s: %w", c.from, err)
	}
	asked := time.Now()
	return poll(ctx, 20*time.Millisecond, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		behind := false
		ends.Each(func(o kadm.ListedOffset) {
			if c.next[o.Partition] < o.Offset {
				behind = true
			}
		})
		return !behind && c.syncedAt.After(asked)
	})
}

// stats says how much was copied and whether offsets were kept.
func (c *copier) stats() (copied, errs int64, diverged int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.copied, c.errs, len(c.diverged)
}

// stop stops fetching, finishes copying what was fetched, and closes. It
// may be called more than once.
func (c *copier) stop() {
	c.stopped.Do(func() {
		c.cancel()
		c.done.Wait()
		c.src.Close()
		c.dst.Close()
		copied, errs, diverged := c.stats()
		c.log.Info("demo copier stopped", "copied", copied, "errors", errs, "shifted_partitions", diverged)
	})
}

// poll calls cond every interval until it is true or ctx ends.
func poll(ctx context.Context, interval time.Duration, cond func() bool) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
	return nil
}
