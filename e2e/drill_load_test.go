package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/e2e/kafkatest"
)

// drillLoad is the steady load of a drill: a Java idempotent producer
// (acks=all) and a franz-go producer, each at drillRate records a second,
// and a Java and a franz-go classic group consumer, spread over the two
// gateways so that each gateway carries a producer and a consumer.
type drillLoad struct {
	prefixes  []string
	producers []*producerRun
	consumers []*consumerRun
	stopped   bool
}

// startLoad starts the drill's clients on its topic; prefix makes the
// values of this load distinct from every other drill's.
func (d *drill) startLoad(prefix string) *drillLoad {
	t, b := d.t, d.lb
	t.Helper()
	l := &drillLoad{prefixes: []string{prefix + "j-", prefix + "g-"}}
	l.producers = []*producerRun{
		javaProducer(t, b, d.gw1.Bootstrap(), d.env.classes, d.topic, l.prefixes[0], "java-producer"),
		franzProducer(t, b, d.gw2.Bootstrap(), d.topic, l.prefixes[1], "franz-producer"),
	}
	l.consumers = []*consumerRun{
		javaConsumer(t, b, d.gw2.Bootstrap(), d.env.classes, d.topic, "java-consumer", prefix+"java"),
		franzConsumer(t, b, d.gw1.Bootstrap(), d.topic, "franz-consumer", prefix+"franz"),
	}
	b.OnCleanup(func() { l.stop(t, 0) })
	d.load = l
	return l
}

// waitSteady waits until every producer has been acknowledged and every
// consumer has consumed a few seconds' worth of records.
func (l *drillLoad) waitSteady(t *testing.T, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	waitFor(t, timeout, "every client running", func() (bool, string) {
		var waiting []string
		for _, p := range l.producers {
			if n := p.ackedSince(start); n < 2*drillRate {
				waiting = append(waiting, fmt.Sprintf("%s acked %d%s", p.name, n, firstErrs(p)))
			}
		}
		for _, c := range l.consumers {
			if c.died() {
				return true, "" // waitFor is not the place to report it
			}
			if n := c.count(); n < drillRate {
				waiting = append(waiting, fmt.Sprintf("%s consumed %d", c.name, n))
			}
		}
		return len(waiting) == 0, strings.Join(waiting, ", ")
	})
	for _, c := range l.consumers {
		if c.died() {
			t.Fatalf("consumer %s died: %s", c.name, c.deathNote())
		}
	}
}

// carriedOn waits until every producer has n acknowledgements after since,
// and returns the producers that have not.
func (l *drillLoad) carriedOn(since time.Time, n int, timeout time.Duration) []string {
	var behind []string
	kafkatest.Poll(timeout, 100*time.Millisecond, func() (bool, error) {
		behind = nil
		for _, p := range l.producers {
			if got := p.ackedSince(since); got < n {
				behind = append(behind, fmt.Sprintf("%s: %d acknowledged since %s%s", p.name, got, since.Format("15:04:05.000"), firstErrs(p)))
			}
		}
		return len(behind) == 0, nil
	})
	return behind
}

// stop stops the producers, then waits until every consumer has what was
// acknowledged, or made no progress for 10 s, at most wait, and stops them.
func (l *drillLoad) stop(t *testing.T, wait time.Duration) {
	if l.stopped {
		return
	}
	l.stopped = true
	for _, p := range l.producers {
		p.stop()
	}
	for _, p := range l.producers {
		if err := p.wait(60 * time.Second); err != nil {
			t.Errorf("producer %s: %v", p.name, err)
		}
	}
	acked := l.acked()
	lastCount, lastMove := -1, time.Now()
	kafkatest.Poll(wait, 200*time.Millisecond, func() (bool, error) {
		total, missing := 0, 0
		for _, c := range l.consumers {
			total += c.count()
			if !c.died() {
				missing += c.missing(acked)
			}
		}
		if total != lastCount {
			lastCount, lastMove = total, time.Now()
		}
		return missing == 0 || time.Since(lastMove) > 10*time.Second, nil
	})
	for _, c := range l.consumers {
		c.stop()
	}
}

// acked is every value a producer of the load saw acknowledged.
func (l *drillLoad) acked() map[string]bool {
	acked := map[string]bool{}
	for _, p := range l.producers {
		for _, a := range p.acks() {
			acked[a.value] = true
		}
	}
	return acked
}

// loadFigures are what a drill measures of its clients.
type loadFigures struct {
	acked, errors int
	lost          int // acknowledged values some consumer never received
	lostNew       int // of those, values the old cluster never had: written to the new one after the switch
	lostSample    []string
	dups          int            // deliveries of a value beyond the first, over all consumers
	missingBy     map[string]int // acknowledged values each consumer never received
	perConsumer   []string
	gap           time.Duration // longest time without an acknowledgement, from 2 s before the fault
	gapFrom       time.Time
	// firstNew is the first acknowledgement after the fault of a value the
	// old cluster does not hold: the first produce the new cluster took.
	firstNew time.Time
}

// figures counts lost and duplicated records, and finds the first produce
// acknowledged by the new cluster after fault: the first acknowledgement
// after it of a value that oldValues (the old cluster's copy of the topic,
// read after the drill) lacks. With no fault, only the counts are made.
func (l *drillLoad) figures(fault time.Time, oldValues map[string]bool) loadFigures {
	var f loadFigures
	acked := l.acked()
	f.acked = len(acked)
	var all []ack
	for _, p := range l.producers {
		p.mu.Lock()
		f.errors += len(p.errs)
		p.mu.Unlock()
		acks := p.acks()
		all = append(all, acks...)
		sort.Slice(acks, func(i, j int) bool { return acks[i].at.Before(acks[j].at) })
		for i := 1; i < len(acks); i++ {
			if !fault.IsZero() && acks[i].at.Before(fault.Add(-2*time.Second)) {
				continue
			}
			if d := acks[i].at.Sub(acks[i-1].at); d > f.gap {
				f.gap, f.gapFrom = d, acks[i-1].at
			}
		}
	}
	mine := func(v string) bool {
		for _, p := range l.prefixes {
			if strings.HasPrefix(v, p) {
				return true
			}
		}
		return false
	}
	lost := map[string]bool{}
	f.missingBy = map[string]int{}
	for _, c := range l.consumers {
		c.mu.Lock()
		seen := map[string]int{}
		for _, r := range c.recs {
			if mine(r.Value) {
				seen[r.Value]++
			}
		}
		c.mu.Unlock()
		dups, missing := 0, 0
		for _, n := range seen {
			dups += n - 1
		}
		for v := range acked {
			if seen[v] == 0 {
				missing++
				lost[v] = true
			}
		}
		f.dups += dups
		f.missingBy[c.name] = missing
		state := ""
		if c.died() {
			state = " DIED: " + c.deathNote()
		}
		f.perConsumer = append(f.perConsumer, fmt.Sprintf("%s: %d distinct, %d missing, %d duplicates%s", c.name, len(seen), missing, dups, state))
	}
	f.lost = len(lost)
	for v := range lost {
		f.lostSample = append(f.lostSample, v)
		if oldValues != nil && !oldValues[v] {
			f.lostNew++
		}
	}
	sort.Strings(f.lostSample)
	f.lostSample = f.lostSample[:min(len(f.lostSample), 8)]
	if !fault.IsZero() && oldValues != nil {
		sort.Slice(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
		for _, a := range all {
			if a.at.After(fault) && !oldValues[a.value] {
				f.firstNew = a.at
				break
			}
		}
	}
	return f
}

// startJava starts one of the e2e/java clients: its arguments, then props
// (client settings, or -D system properties; see javaArgs). Closing stdin
// stops it; stdout carries its lines.
func startJava(t *testing.T, b *kafkatest.Bed, classes, name, main string, args, props []string) (io.WriteCloser, io.Reader, *kafkatest.Process) {
	t.Helper()
	sys, props := javaArgs(props)
	cmd := b.Java(name, kafkatest.JVM{Heap: "128m", ClassPath: classes, Debug: javaDebug, SysProps: sys},
		main, append(args, props...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	proc, err := b.Start(name, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return stdin, stdout, proc
}

// javaProducer runs e2e/java/AckedProducer (the Java client's idempotent
// producer, acks=all) at drillRate; props are more client settings
// (name=value), such as kafkatest.ClientAuth.Java's, or JVM system
// properties (-Dname=value; see javaArgs).
func javaProducer(t *testing.T, b *kafkatest.Bed, bootstrap, classes, topic, prefix, name string, props ...string) *producerRun {
	t.Helper()
	p := &producerRun{name: name, done: make(chan struct{})}
	stdin, stdout, proc := startJava(t, b, classes, name, "AckedProducer", []string{bootstrap, topic, prefix, strconv.Itoa(drillRate)}, props)
	var once sync.Once
	p.stop = func() { once.Do(func() { stdin.Close() }) }
	p.doneAt = func() error {
		if err := proc.Wait(30 * time.Second); err != nil {
			return fmt.Errorf("exited: %v\n%s", err, proc.Tail(10))
		}
		return nil
	}
	go func() {
		defer close(p.done)
		lines(b.Path(name+".txt"), stdout, func(f []string) {
			switch {
			case f[0] == "ACK" && len(f) == 5:
				part, _ := strconv.Atoi(f[2])
				off, _ := strconv.ParseInt(f[3], 10, 64)
				p.add(ack{value: f[1], partition: int32(part), offset: off, at: millis(f[4])})
			case f[0] == "ERR":
				p.fail(strings.Join(f[1:], " "))
			}
		})
	}()
	return p
}

// javaArgs splits a Java runner's props into JVM system properties (given
// as -Dname=value, returned without the -D) and client settings.
func javaArgs(props []string) (sys, client []string) {
	for _, p := range props {
		if v, ok := strings.CutPrefix(p, "-D"); ok {
			sys = append(sys, v)
		} else {
			client = append(client, p)
		}
	}
	return sys, client
}

// franzProducer produces with franz-go's idempotent producer (its default)
// and acks=all at drillRate; opts are more options (TLS and SASL, say).
func franzProducer(t *testing.T, b *kafkatest.Bed, bootstrap, topic, prefix, name string, opts ...kgo.Opt) *producerRun {
	t.Helper()
	p := &producerRun{name: name, done: make(chan struct{})}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.WithLogger(fileLogger(b, name))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var once sync.Once
	p.stop = func() { once.Do(func() { close(stop) }) }
	go func() {
		defer close(p.done)
		defer cl.Close()
		tick := time.NewTicker(time.Second / drillRate)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				cl.Flush(ctx)
				cancel()
				return
			case <-tick.C:
			}
			v := prefix + strconv.Itoa(n)
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
				if err != nil {
					p.fail(fmt.Sprintf("%s %v", v, err))
					return
				}
				p.add(ack{value: v, partition: r.Partition, offset: r.Offset, at: time.Now()})
			})
		}
	}()
	b.OnCleanup(p.stop)
	return p
}

// javaConsumer runs e2e/java/GroupConsumer in a classic group; props are
// more client settings (name=value) or system properties, as javaProducer's.
func javaConsumer(t *testing.T, b *kafkatest.Bed, bootstrap, classes, topic, name, group string, props ...string) *consumerRun {
	t.Helper()
	return javaGroupConsumer(t, b, bootstrap, classes, topic, name, group, "classic", props...)
}

// javaGroupConsumer runs e2e/java/GroupConsumer in a group of the given
// protocol: classic, or consumer (KIP-848).
func javaGroupConsumer(t *testing.T, b *kafkatest.Bed, bootstrap, classes, topic, name, group, protocol string, props ...string) *consumerRun {
	t.Helper()
	c := &consumerRun{name: name, group: group}
	stdin, stdout, proc := startJava(t, b, classes, name, "GroupConsumer", []string{bootstrap, topic, group, protocol}, props)
	c.proc = proc
	c.stopFn = func() {
		stdin.Close()
		if err := proc.Wait(30 * time.Second); err != nil {
			proc.Kill()
		}
	}
	go lines(b.Path(name+".txt"), stdout, func(f []string) {
		switch {
		case f[0] == "REC" && len(f) == 5:
			p, _ := strconv.Atoi(f[1])
			o, _ := strconv.ParseInt(f[2], 10, 64)
			c.add(kafkatest.Rec{Partition: int32(p), Offset: o, Value: f[3], At: millis(f[4])})
		case len(f) >= 2 && (f[0] == "ASSIGNED" || f[0] == "REVOKED" || f[0] == "LOST"):
			c.event(millis(f[1]), f[0]+" "+strings.Join(f[2:], " "))
		}
	})
	b.OnCleanup(c.stop)
	return c
}

// franzConsumer consumes in a franz-go group, auto-committing every second;
// opts are more options (kgo.ServerSideBalancer makes it a KIP-848 group).
func franzConsumer(t *testing.T, b *kafkatest.Bed, bootstrap, topic, name, group string, opts ...kgo.Opt) *consumerRun {
	t.Helper()
	c := &consumerRun{name: name, group: group}
	out, err := os.Create(b.Path(name + ".txt"))
	if err != nil {
		t.Fatal(err)
	}
	c.out = out
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AutoCommitInterval(time.Second),
		kgo.WithLogger(fileLogger(b, name)),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			c.event(time.Now(), fmt.Sprint("ASSIGNED ", m[topic]))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			c.event(time.Now(), fmt.Sprint("REVOKED ", m[topic]))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			c.event(time.Now(), fmt.Sprint("LOST ", m[topic]))
		}),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			fs.EachError(func(topic string, p int32, err error) {
				if ctx.Err() == nil {
					c.event(now, fmt.Sprintf("ERROR %s/%d %v", topic, p, err))
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				c.add(kafkatest.Rec{Partition: r.Partition, Offset: r.Offset, Value: string(r.Value), At: now})
			})
		}
	}()
	c.stopFn = func() {
		cancel()
		<-done
		cl.Close()
		c.mu.Lock()
		c.out.Close()
		c.out = nil
		c.mu.Unlock()
	}
	b.OnCleanup(c.stop)
	return c
}
