package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/turnout/turnout/agent"
	"github.com/turnout/turnout/proxy/config"
)

func (d *demo) startClients() error {
	boot := loopback(d.gwPort)
	var err error
	d.producer, err = kgo.NewClient(kgo.SeedBrokers(boot), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond),
		kgo.WithLogger(kgoLogger{d.log.With("component", "producer")}))
	if err != nil {
		return err
	}
	d.cons, err = kgo.NewClient(kgo.SeedBrokers(boot), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.AutoCommitInterval(250*time.Millisecond), kgo.WithLogger(kgoLogger{d.log.With("component", "consumer")}))
	if err != nil {
		return err
	}
	d.led = newLedger()
	d.led.setWatch(
		func(at time.Time) {
			d.afterKill(at, &d.firstAckAfter, "producer: first record acknowledged on %s, %s after the kill (RTO)")
		},
		func(at time.Time) {
			d.afterKill(at, &d.firstReadAfter, "consumer: reading again on %s, %s after the kill (group rejoined through the gateway)")
		},
	)
	d.scr.start = time.Now()
	pctx, pcancel := context.WithCancel(context.Background())
	cctx, ccancel := context.WithCancel(context.Background())
	d.stopProducer, d.stopConsumer = pcancel, ccancel
	d.producing, d.consuming = make(chan struct{}), make(chan struct{})
	go func() { defer close(d.producing); d.led.produce(pctx, d.producer, d.opts.SeedRate) }()
	go func() { defer close(d.consuming); d.led.consume(cctx, d.cons) }()
	d.scr.event(time.Now(), "clients started through the gateway at %s: a producer (%d records/s, idempotent) and a consumer in group %s",
		boot, d.opts.SeedRate, group)
	lctx, lcancel := context.WithCancel(context.Background())
	d.stopLive, d.liveDone = lcancel, make(chan struct{})
	go d.live(lctx)
	go d.watchLeader(lctx)
	return nil
}

// watchLeader tells when another agent takes the lead: a new leader
// finishes any flip the old one left unfinished.
func (d *demo) watchLeader(ctx context.Context) {
	last := d.leader()
	for sleep(ctx, 100*time.Millisecond) == nil {
		l := d.leader()
		if l == "" || l == last {
			continue
		}
		if last != "" {
			d.note(time.Now(), "Raft: %s now leads the agents (term %d), after %s", l, d.agents[l].a.Status().Term, last)
		}
		last = l
	}
}

// afterKill notes the first acknowledgement (or read) once the route serves
// cluster 2 after the kill.
func (d *demo) afterKill(at time.Time, first *atomic.Pointer[time.Time], format string) {
	killed := d.killedAt.Load()
	if killed == nil || first.Load() != nil {
		return
	}
	if s := d.serving(); s.Domain != standby {
		return
	}
	if first.CompareAndSwap(nil, &at) {
		d.note(at, format, standby, seconds(at.Sub(*killed)))
	}
}

// failover kills cluster 1 and follows the agents until the clients are
// back on cluster 2.
func (d *demo) failover(ctx context.Context) error {
	killed := time.Now()
	lns, conns := d.clusters[0].kill()
	d.note(killed, ">>> KILL cluster 1 (%s): %d listeners and %d open connections closed, as a crash would", primary, lns, conns)
	d.killedAt.Store(&killed)

	// Detection: each agent's consecutive failed probes of cluster 1, as
	// the leader sees them through the Raft group.
	wctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	last := ""
	err := poll(wctx, 25*time.Millisecond, func() bool {
		st := d.leaderStatus()
		if r := routeOf(st); r.ActiveDomain == standby || r.Flip != nil || d.stepErr.Load() != nil {
			return true
		}
		var parts []string
		for _, id := range agentIDs {
			v, ok := st.Domain[primary].ByAgent[id]
			if ok && v.At.After(killed) {
				parts = append(parts, fmt.Sprintf("%s x%d", id, v.ConsecutiveFailures))
			} else {
				parts = append(parts, id+" -")
			}
		}
		if line := strings.Join(parts, ", "); line != last && strings.Contains(line, "x") {
			last = line
			d.note(time.Now(), "detection: consecutive failed probes of %s: %s (breach at 3, by 2 of 3 agents)", primary, line)
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("no failover within 40s of the kill; the leader says: %s", routeOf(d.leaderStatus()).Reason)
	}
	err = poll(wctx, 20*time.Millisecond, func() bool {
		if d.stepErr.Load() != nil {
			return true
		}
		r := routeOf(d.leaderStatus())
		return r.ActiveDomain == standby && r.State != "switching" && d.firstAckAfter.Load() != nil && d.firstReadAfter.Load() != nil
	})
	if e := d.stepErr.Load(); e != nil {
		return fmt.Errorf("the failover failed: %s", *e)
	}
	r := routeOf(d.leaderStatus())
	if err != nil || r.State != "serving" {
		return fmt.Errorf("the failover did not complete with the clients back within 40s of the kill: route %s is %s on %s (%s); first ack on cluster 2: %v, first read: %v",
			route, r.State, r.ActiveDomain, r.Reason, d.firstAckAfter.Load() != nil, d.firstReadAfter.Load() != nil)
	}
	d.sum.RTO = d.firstAckAfter.Load().Sub(killed)
	if t := d.flipDecided.Load(); t != nil {
		d.sum.Detection = t.Sub(killed)
	}
	if f := r.Flip; f != nil && !f.FinishedAt.IsZero() {
		d.sum.Failover = f.FinishedAt.Sub(killed)
	}
	// Let the clients run on cluster 2 for a while.
	return sleep(ctx, time.Until(killed.Add(6*time.Second)))
}

// bringBack starts cluster 1 again, empty, on its old ports, and copies
// cluster 2 to it until it has caught up.
func (d *demo) bringBack(ctx context.Context) error {
	// The copier 1->2 has nothing left to copy: its source is gone.
	d.copiers[0].stop()
	var c *cluster
	var err error
	for range 50 { // the old listeners' ports may take a moment to be free
		if c, err = startCluster(primary, "kafka-cluster-1-rebuilt", d.c1Ports); err == nil {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("restarting cluster 1 on its ports %v: %w", d.c1Ports, err)
	}
	d.clusters[0] = c
	d.note(time.Now(), "cluster 1 is back: rebuilt, empty, on its old addresses (the route stays on %s: no automatic failback)", standby)
	started := time.Now()
	cp, err := startCopier(ctx, d.clusters[1], d.clusters[0], d.log)
	if err != nil {
		return fmt.Errorf("starting the demo copier 2->1: %w", err)
	}
	d.copiers = append(d.copiers, cp)
	d.note(time.Now(), "demo copier now copies 2 -> 1, so that failing back loses nothing")

	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cp.caughtUp(wctx); err != nil {
		return fmt.Errorf("the demo copier 2->1 did not catch up: %w", err)
	}
	caught := time.Now()
	copied, _, _ := cp.stats()
	d.note(caught, "demo copier 2 -> 1 caught up: %d records and the group's offsets copied in %s", copied, seconds(caught.Sub(started)))
	var st agent.Status
	err = poll(wctx, 50*time.Millisecond, func() bool {
		st = d.leaderStatus()
		l := st.Lag[route]
		return st.Domain[primary].Healthy && l.Known && l.At.After(caught) && l.Records <= d.maxLag
	})
	if err != nil {
		return fmt.Errorf("the agents do not see cluster 1 healthy with a small replication lag (lag %+v): %w", st.Lag[route], err)
	}
	d.note(time.Now(), "agents see %s healthy again; replication lag %d records (policy limit %d)", primary, st.Lag[route].Records, d.maxLag)
	return nil
}

// failback asks for the failback through the signal file, as
// `turnout failback --signal-file` does, and waits for its outcome.
func (d *demo) failback(ctx context.Context) error {
	for _, suffix := range []string{".done", ".failed"} {
		os.Remove(d.signal + suffix)
	}
	asked := time.Now()
	d.failbackAsked = asked
	d.note(asked, "failback requested: writing \"failback\" to %s (as turnout failback --signal-file does)", d.signal)
	if err := config.WriteFileAtomic(d.signal, []byte("failback\n")); err != nil {
		return fmt.Errorf("writing the signal file: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var outcome string
	err := poll(wctx, 10*time.Millisecond, func() bool {
		for _, suffix := range []string{".done", ".failed"} {
			if _, err := os.Stat(d.signal + suffix); err == nil {
				outcome = suffix
				return true
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("no agent answered the signal file %s within 30s", d.signal)
	}
	answered := time.Now()
	data, err := os.ReadFile(d.signal + outcome)
	if err != nil {
		return err
	}
	var o struct {
		Code    string `yaml:"code"`
		Message string `yaml:"message"`
	}
	yaml.Unmarshal(data, &o)
	if outcome == ".failed" {
		return fmt.Errorf("the failback failed (%s): %s: %s", d.signal+outcome, o.Code, o.Message)
	}
	d.sum.Failback = answered.Sub(asked)
	d.note(answered, "failback done: %s appeared %s after the request", filepath.Base(d.signal+outcome), seconds(d.sum.Failback))
	if s := d.serving(); s.Domain != primary {
		return fmt.Errorf("after the failback the gateway serves %s, not %s", s.Domain, primary)
	}

	// Cluster 2 takes no more writes: drain the copier 2->1, then copy
	// 1->2 again from where cluster 2 ends, so a next failover is safe.
	cp := d.copiers[len(d.copiers)-1]
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	cp.caughtUp(dctx)
	dcancel()
	cp.stop()
	next, err := startCopier(ctx, d.clusters[0], d.clusters[1], d.log)
	if err != nil {
		return fmt.Errorf("restarting the demo copier 1->2: %w", err)
	}
	d.copiers = append(d.copiers, next)
	d.note(time.Now(), "demo copier copies 1 -> 2 again, from cluster 2's end offsets")
	return sleep(ctx, 4*time.Second)
}

// finish stops the clients, waits for the consumer to read every
// acknowledged record, and prints the summary.
func (d *demo) finish(ctx context.Context) error {
	d.stopProducer()
	<-d.producing
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := d.producer.Flush(fctx); err != nil {
		return fmt.Errorf("the producer's last records were not acknowledged: %w", err)
	}
	stopped := time.Now()
	d.note(stopped, "producer stopped; waiting for the consumer to read every acknowledged record")
	drained := poll(fctx, 50*time.Millisecond, d.led.allConsumed) == nil
	d.stopConsumer()
	<-d.consuming
	d.stopLive()
	<-d.liveDone
	d.producer.Close()
	d.cons.Close()
	d.producer, d.cons = nil, nil
	// Let the printer catch up before the summary.
	time.Sleep(100 * time.Millisecond)

	// Until the leader decided to fail over, no gateway served cluster 2:
	// a record acknowledged before then was cluster 1's, even if the
	// client heard of it after the kill, and one cluster 1 had not copied
	// is the recovery point, not a loss.
	var cut time.Time
	if k := d.flipDecided.Load(); k != nil {
		cut = *k
	} else if k := d.killedAt.Load(); k != nil {
		cut = *k
	}
	t := d.led.tally(cut)
	d.sum.Records = t
	d.printSummary(t, drained)
	switch {
	case t.Lost > t.LostBefore:
		return fmt.Errorf("%d acknowledged records were never consumed (e.g. %v), %d of them acknowledged after the failover was decided",
			t.Lost, t.LostSample, t.Lost-t.LostBefore)
	case t.LostBefore > d.maxLag:
		return fmt.Errorf("%d records cluster 1 acknowledged were never consumed (e.g. %v), more than failover.maxLagRecords (%d)",
			t.Lost, t.LostSample, d.maxLag)
	case t.Failed > 0:
		return fmt.Errorf("%d records failed to produce", t.Failed)
	}
	return nil
}
