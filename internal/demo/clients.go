package demo

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ledger is what the demo's producer and consumer did: every record is
// numbered, so at the end the demo can say which acknowledged records were
// never consumed (lost) and which were consumed more than once.
type ledger struct {
	produced, acked, failed, consumed atomic.Int64

	mu       sync.Mutex
	ackedSeq map[int64]time.Time // when each record was acknowledged
	seen     map[int64]*seenRecord
	lastAck  time.Time
	gaps     []ackGap // pauses between acknowledgements longer than gapWorth

	// watch, when set, is told of each acknowledgement and each consumed
	// record (the demo uses it to time the clients' return after a switch).
	onAck     func(time.Time)
	onConsume func(time.Time)
}

type seenRecord struct {
	partition int32
	offset    int64
	reads     int
	elsewhere bool // also consumed at another partition or offset
}

type ackGap struct {
	from, to time.Time
}

// gapWorth is the shortest pause between acknowledgements the summary lists.
const gapWorth = 100 * time.Millisecond

func newLedger() *ledger {
	return &ledger{ackedSeq: map[int64]time.Time{}, seen: map[int64]*seenRecord{}}
}

// produce writes records numbered from 0 at rate records per second through
// cl until ctx ends. Every record is given to the client once; the client
// retries it until it is acknowledged (franz-go's idempotent producer).
func (l *ledger) produce(ctx context.Context, cl *kgo.Client, rate int) {
	const step = 10 * time.Millisecond
	tick := time.NewTicker(step)
	defer tick.Stop()
	var seq int64
	owed, last := 0.0, time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			owed += float64(rate) * now.Sub(last).Seconds()
			last = now
		}
		for ; owed >= 1; owed-- {
			n := seq
			seq++
			l.produced.Add(1)
			// Keyed, so the records spread over every partition.
			v := []byte(strconv.FormatInt(n, 10))
			rec := &kgo.Record{Topic: topic, Key: v, Value: v}
			cl.Produce(context.Background(), rec, func(_ *kgo.Record, err error) { l.ack(n, err) })
		}
	}
}

func (l *ledger) ack(seq int64, err error) {
	now := time.Now()
	if err != nil {
		l.failed.Add(1)
		return
	}
	l.acked.Add(1)
	l.mu.Lock()
	l.ackedSeq[seq] = now
	if !l.lastAck.IsZero() && now.Sub(l.lastAck) >= gapWorth {
		l.gaps = append(l.gaps, ackGap{l.lastAck, now})
	}
	l.lastAck = now
	fn := l.onAck
	l.mu.Unlock()
	if fn != nil {
		fn(now)
	}
}

// consume reads through cl, a group consumer, until ctx ends.
func (l *ledger) consume(ctx context.Context, cl *kgo.Client) {
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		now := time.Now()
		n := 0
		l.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			seq, err := strconv.ParseInt(string(r.Value), 10, 64)
			if err != nil {
				return // not the demo's (someone else's producer, with --keep)
			}
			n++
			s := l.seen[seq]
			if s == nil {
				l.seen[seq] = &seenRecord{partition: r.Partition, offset: r.Offset, reads: 1}
				return
			}
			s.reads++
			if s.partition != r.Partition || s.offset != r.Offset {
				s.elsewhere = true
			}
		})
		fn := l.onConsume
		l.mu.Unlock()
		l.consumed.Add(int64(n))
		if n > 0 && fn != nil {
			fn(now)
		}
	}
}

func (l *ledger) setWatch(onAck, onConsume func(time.Time)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onAck, l.onConsume = onAck, onConsume
}

// allConsumed reports whether every acknowledged record was consumed.
func (l *ledger) allConsumed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for seq := range l.ackedSeq {
		if l.seen[seq] == nil {
			return false
		}
	}
	return true
}

// tally is the ledger's final count.
type tally struct {
	Produced, Acked, Failed int64
	Consumed                int64 // records read, re-reads included
	Distinct                int64 // distinct records read
	Lost                    int64 // acknowledged, never read
	// LostBefore are the lost records acknowledged before the time the
	// tally was asked for (when the failover was decided): those cluster 1
	// took and had not yet replicated when it died.
	LostBefore  int64
	Reread      int64 // read more than once, always at the same offset
	StoredTwice int64 // read at two offsets: written twice
	LostSample  []int64
	Gaps        []ackGap
}

func (l *ledger) tally(before time.Time) tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := tally{Produced: l.produced.Load(), Acked: l.acked.Load(), Failed: l.failed.Load(), Consumed: l.consumed.Load(),
		Distinct: int64(len(l.seen)), Gaps: append([]ackGap(nil), l.gaps...)}
	for seq, at := range l.ackedSeq {
		if l.seen[seq] == nil {
			t.Lost++
			if at.Before(before) {
				t.LostBefore++
			}
			if len(t.LostSample) < 10 {
				t.LostSample = append(t.LostSample, seq)
			}
		}
	}
	for _, s := range l.seen {
		switch {
		case s.elsewhere:
			t.StoredTwice++
		case s.reads > 1:
			t.Reread++
		}
	}
	return t
}
