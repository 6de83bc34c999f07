package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/e2e/kafkatest"
)

// TestFaults are the drills of issue 12, safety under faults: no split
// route, no lost acknowledgement, no replayed switch. They run as
// TestDrills's do (real Kafka ×2, MirrorMaker 2, three agents and two
// gateways per drill, Java and franz-go clients at a steady rate), print
// the same DR lines, and write their table to e2e/out/faults.md:
//
//   - restart-storm: 30 POST /restart while clients come and go;
//   - retried-failover: `turnout failover` whose leader dies mid-runbook,
//     sent again as an operator would;
//   - failback-then-planned: a failover, a failback, then a planned switch
//     that must measure the lag anew;
//   - pause-outlives-max: a planned switch whose replication is stopped for
//     longer than a gateway may hold producers (adminapi.MaxPause);
//   - clock-skew: cluster 1 killed while two agents date their reports an
//     hour fast and an hour slow;
//   - random: a seeded schedule of kills, SIGSTOPs and partitions of
//     clusters, agents and gateways.
func TestFaults(t *testing.T) {
	e := startDrillEnv(t, "faults", 20*time.Minute)
	defer e.writeReport(t)
	t.Run("restart-storm", e.restartStorm)
	t.Run("retried-failover", e.retriedFailover)
	t.Run("failback-then-planned", e.failbackThenPlanned)
	t.Run("pause-outlives-max", e.pauseOutlivesMax)
	t.Run("clock-skew", e.clockSkew)
	t.Run("random", e.randomFaults)
}

const (
	stormRestarts = 30
	// restartBound is how long a POST /restart may take to answer: the
	// drain (limits.drainTimeout, 5 s by default) and the new listeners,
	// with room for a machine running the whole bed on two cores.
	restartBound = 20 * time.Second
	// splitBound is how long two gateways may both acknowledge writes to
	// different clusters: a flip restarts them one after the other.
	splitBound = 5 * time.Second
)

// restartStorm: 30 POST /restart, to both gateways at once, each moving
// the route to its next epoch on cluster 1 (so each drains the route's
// connections as a switch does, without moving data), while the steady
// load runs, two more producers open a client, produce a batch and close
// it, over and over, and more connections are opened and closed at once
// without pause (dialChurn). No agents run: they would lease the gateways
// the route at its epoch only. Every restart must answer within
// restartBound, the gateways serve cluster 1 afterwards, and no
// acknowledged record is lost.
func (e *drillEnv) restartStorm(t *testing.T) {
	d := e.newDrill(t, "restart-storm", fmt.Sprintf("%d restarts each answered within %v; gateways serve after; lost_acked=0", stormRestarts, restartBound), drillSetup{noAgents: true})
	d.steady("rs-", false)
	churn := []*producerRun{
		churnProducer(t, d.lb, d.gw1.Bootstrap(), d.topic, "rs-c1-", "churn-gw-1"),
		churnProducer(t, d.lb, d.gw2.Bootstrap(), d.topic, "rs-c2-", "churn-gw-2"),
	}
	d.load.prefixes = append(d.load.prefixes, "rs-c1-", "rs-c2-")
	d.load.producers = append(d.load.producers, churn...)
	stopDialling := dialChurn(d.b, 4, d.gw1.Bootstrap(), d.gw2.Bootstrap())
	var unanswered []string
	var slowest time.Duration
	for round := 0; round < stormRestarts/2 && len(unanswered) < 3; round++ {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, gw := range []*kafkatest.Gateway{d.gw1, d.gw2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				took, err := restartWithin(e.ctx, gw, true)
				mu.Lock()
				defer mu.Unlock()
				slowest = max(slowest, took)
				if err != nil {
					unanswered = append(unanswered, fmt.Sprintf("round %d %s after %v: %v", round+1, gw.Name, took.Round(time.Millisecond), err))
				}
			}()
		}
		wg.Wait()
	}
	stormEnd := time.Now()
	dials := stopDialling()
	d.note("restarts: %d unanswered within %v (the storm stops after 3); slowest answer %v; %v; %d connections opened and closed at once meanwhile",
		len(unanswered), restartBound, slowest.Round(time.Millisecond), unanswered, dials)
	d.target(len(unanswered) == 0, "restart-storm/answered", "%d POST /restart did not answer within %v: %v", len(unanswered), restartBound, unanswered)
	serves := d.gatewaysOn(e.c1, d.gw1, d.gw2)
	behind := d.load.carriedOn(stormEnd, drillRate/10, 60*time.Second)
	d.target(serves == nil && len(behind) == 0, "restart-storm/serves", "after the storm: %v; producers behind: %v", serves, behind)
	f := d.finish(time.Time{}, nil)
	d.lossTarget(0, "restart-storm/lost", f, time.Time{}, "%d acknowledged records lost in a restart storm (%v)", d.res.lost, f.missingBy)
}

// restartWithin posts /restart to gw and waits restartBound at most for the
// answer, which must show the route. With bump, the body moves the route to
// the next epoch on the domain it serves, which drains its connections as
// a switch does.
func restartWithin(ctx context.Context, gw *kafkatest.Gateway, bump bool) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, restartBound)
	defer cancel()
	start := time.Now()
	var st kafkatest.Status
	var err error
	if bump {
		var r kafkatest.RouteStatus
		if r, err = gw.Route(ctx); err == nil {
			st, err = gw.RestartAt(ctx, r.Domain, r.ConfigEpoch+1)
		}
	} else {
		st, err = gw.Restart(ctx)
	}
	took := time.Since(start)
	if err == nil && (len(st.Routes) != 1 || st.Routes[0].Name != kafkatest.RouteName) {
		err = fmt.Errorf("%s: POST /restart answered %+v, without route %s", gw.Name, st, kafkatest.RouteName)
	}
	return took, err
}

// dialChurn opens connections to each of addrs and closes them at once,
// from n goroutines per address, until the returned stop, which says how
// many it opened: each one the gateway accepts makes it dial the cluster,
// so that restarts meet connections in every stage of their set-up.
func dialChurn(b *kafkatest.Bed, n int, addrs ...string) (stop func() int) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	opened := 0
	for _, addr := range addrs {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-quit:
						return
					default:
					}
					c, err := net.DialTimeout("tcp", addr, 2*time.Second)
					if err != nil {
						continue
					}
					c.Close()
					mu.Lock()
					opened++
					mu.Unlock()
				}
			}()
		}
	}
	var once sync.Once
	stop = func() int {
		once.Do(func() { close(quit) })
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return opened
	}
	b.OnCleanup(func() { stop() })
	return stop
}

// churnBatch is how many records a churning client produces before it
// closes; it opens a new one every churnEvery.
const (
	churnBatch = 5
	churnEvery = 25 * time.Millisecond
)

// churnProducer opens a franz-go client through bootstrap, produces a batch
// (acks=all, idempotent), closes it, and again every churnEvery until
// stopped: clients that come and go while the gateway restarts.
func churnProducer(t *testing.T, b *kafkatest.Bed, bootstrap, topic, prefix, name string) *producerRun {
	t.Helper()
	p := &producerRun{name: name, done: make(chan struct{})}
	logger := fileLogger(b, name)
	stop := make(chan struct{})
	var once sync.Once
	p.stop = func() { once.Do(func() { close(stop) }) }
	go func() {
		defer close(p.done)
		tick := time.NewTicker(churnEvery)
		defer tick.Stop()
		for n := 0; ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
				kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(20*time.Second), kgo.WithLogger(logger))
			if err != nil {
				p.fail(err.Error())
				return
			}
			recs := make([]*kgo.Record, churnBatch)
			for i := range recs {
				v := prefix + strconv.Itoa(n)
				n++
				recs[i] = &kgo.Record{Key: []byte(v), Value: []byte(v)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			for _, r := range cl.ProduceSync(ctx, recs...) {
				if r.Err != nil {
					p.fail(fmt.Sprintf("%s %v", r.Record.Value, r.Err))
					continue
				}
				p.add(ack{value: string(r.Record.Value), partition: r.Record.Partition, offset: r.Record.Offset, at: time.Now()})
			}
			cancel()
			cl.Close()
		}
	}()
	b.OnCleanup(p.stop)
	return p
}

// retryAttempts is how many times the operator of the retried-failover
// drill sends the request again while it answers an error.
const retryAttempts = 5

// retryBound is how long the retried request may take to answer: the
// first request's outcome, or a refusal.
const retryBound = time.Minute

// hasIDFlag matches the failover --id flag in `turnout failover --help`.
var hasIDFlag = regexp.MustCompile(`(?m)^\s+-id\b`)

// retriedFailover: `turnout failover` (no --to: the route's other domain)
// through a follower; the leader is killed while it restarts gw-1 (held as
// in the leader-dies drill), and once a new leader is elected the same
// command is sent again, and again while it fails, as an operator whose
// first attempt failed or lost its answer would. When the binary takes --id, every attempt carries one id. The new leader finishes the flip; the retry must not flip the
// route again: one flip, epoch +1, no flip back.
func (e *drillEnv) retriedFailover(t *testing.T) {
	e.ensureForward(t)
	d := e.newDrill(t, "retried-failover", "one flip (epoch +1) to kafka2-domain, no flip back; lost_acked=0", drillSetup{proxyAdmin: true})
	d.steady("rf-", true)
	leader, follower := d.leaderAndFollower()
	args := []string{"failover", "--agent", follower.URL()}
	if help, _ := d.agents.CLI(e.ctx, "failover", "--help"); hasIDFlag.MatchString(help) {
		id := fmt.Sprintf("retried-failover-%d", time.Now().UnixNano())
		args = append(args, "--id", id)
		d.note("turnout failover takes --id: both attempts carry %s", id)
	} else {
		d.note("turnout failover has no --id: the retry is the same command line, without a request id")
	}
	held := d.admin[0].holdNextRestart()
	asked := time.Now()
	if l, ok := d.watch.lagAt(asked); ok {
		d.res.lag = fmt.Sprint(l.Records)
	}
	first := d.cliAsync(2*time.Minute, args...)
	select {
	case <-held:
	case res := <-first:
		t.Fatalf("turnout failover ended before the leader restarted gw-1: %v\n%s", res.err, res.out)
	case <-time.After(60 * time.Second):
		t.Fatal("the leader never asked gw-1 to restart")
	}
	fault := time.Now()
	leader.Kill()
	d.note("killed the leader %s %v after the request, while it restarted gw-1", leader.ID, fault.Sub(asked).Round(time.Millisecond))
	res := <-first
	d.note("first attempt answered %q (%v)", lastLine(res.out), res.err)
	// The operator sends the request again once the agents have a new
	// leader, whatever the first answer was (a client that lost its
	// connection never sees it), and again while the answer is an error,
	// as far as retryAttempts.
	waitFor(t, 30*time.Second, "a new leader", func() (bool, string) {
		l, _ := d.watch.leaderSince(fault, leader.ID)
		return l != "", "none yet"
	})
	var err error
	unanswered := false
	for i := 1; (i == 1 || err != nil) && !unanswered && i <= retryAttempts; i++ {
		start := time.Now()
		var out string
		out, err = d.cli(retryBound, args...)
		unanswered = time.Since(start) >= retryBound
		d.note("retry %d answered %q (%v) after %v", i, lastLine(out), err, time.Since(start).Round(time.Millisecond))
		if err != nil {
			time.Sleep(2 * time.Second) // the operator reads the error
		}
	}
	// A retry still waiting is a request the agents may yet carry out: a
	// flip back to kafka1-domain once replication that way is measured.
	d.target(!unanswered, "retried-failover/answered", "the retried `turnout failover` did not answer within %v: the agents hold it, to carry it out again", retryBound)

	var r kafkatest.AgentRoute
	if err := kafkatest.Poll(90*time.Second, 100*time.Millisecond, func() (bool, error) {
		var err error
		r, _, err = d.route()
		return err == nil && r.Epoch > d.epoch0 && r.State != "switching", err
	}); err != nil {
		t.Fatalf("the route never settled after a flip: %v; last %+v", err, r)
	}
	d.noteFlip(r)
	flips := d.watch.flipsSince(asked)
	var seen []string
	for _, f := range flips {
		seen = append(seen, fmt.Sprintf("epoch %d to %s (%s)", f.Epoch, f.To, f.Outcome))
	}
	d.note("flips the agents reported: %v", seen)
	once := r.ActiveDomain == domain2 && r.Epoch == d.epoch0+1 && len(flips) == 1
	d.target(once, "retried-failover/once", "the route is on %s at epoch %d (started at %d) after flips %v: want one flip to %s",
		r.ActiveDomain, r.Epoch, d.epoch0, seen, domain2)
	if err := d.gatewaysOn(e.clusterOf(r.ActiveDomain), d.gw1, d.gw2); err != nil {
		t.Error(err)
	}
	if behind := d.load.carriedOn(time.Now(), 3*drillRate, 60*time.Second); len(behind) > 0 {
		t.Errorf("producers did not carry on: %v", behind)
	}
	f := d.finish(fault, e.c1)
	d.lossTarget(0, "retried-failover/lost", f, switchedAt(r), "%d acknowledged records lost in a retried planned failover (%v)", d.res.lost, f.missingBy)
}

func (e *drillEnv) clusterOf(domain string) *kafkatest.Cluster {
	if domain == kafkatest.Domain(e.c2) {
		return e.c2
	}
	return e.c1
}

// flipsSince is every flip of the route the agents reported after t, one
// per epoch, as last seen.
func (w *watcher) flipsSince(t time.Time) []kafkatest.AgentFlip {
	byEpoch := map[int32]kafkatest.AgentFlip{}
	for _, s := range w.all() {
		if r, ok := s.st.Route(kafkatest.RouteName); ok && r.Flip != nil && r.Flip.StartedAt.After(t) {
			byEpoch[r.Flip.Epoch] = *r.Flip
		}
	}
	var out []kafkatest.AgentFlip
	for _, f := range byEpoch {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Epoch < out[j].Epoch })
	return out
}

// consumersCarryOn waits until every consumer has records produced after
// since, at most timeout, and notes those that have none: a consumer whose
// group is slow to rebalance (a member of its earlier stay on this cluster
// not yet expired) is late, not lossy, until then.
func (d *drill) consumersCarryOn(since time.Time, timeout time.Duration) {
	start := time.Now()
	var late []string
	kafkatest.Poll(timeout, 200*time.Millisecond, func() (bool, error) {
		late = nil
		for _, c := range d.load.consumers {
			if c.consumedProducedAfter(d.load.producers, since) == 0 {
				late = append(late, c.name)
			}
		}
		return len(late) == 0, nil
	})
	if len(late) > 0 {
		d.note("consumers with no record produced after %s, %v on: %v", since.Format("15:04:05.000"), time.Since(start).Round(time.Second), late)
	} else {
		d.note("every consumer had records produced after %s within %v", since.Format("15:04:05.000"), time.Since(start).Round(time.Millisecond))
	}
}

// settled waits (a minute at most) until the route is not switching, and
// returns it with its last flip noted.
func (d *drill) settled() kafkatest.AgentRoute {
	var r kafkatest.AgentRoute
	kafkatest.Poll(60*time.Second, 100*time.Millisecond, func() (bool, error) {
		var err error
		r, _, err = d.route()
		return err == nil && r.State != "switching", err
	})
	d.noteFlip(r)
	return r
}

// withPlannedPause sets failover.plannedPause in a drill's policy.
func withPlannedPause(pause time.Duration) func(map[string]any) {
	return func(pol map[string]any) {
		f, _ := pol["failover"].(map[string]any)
		if f == nil {
			f = map[string]any{}
			pol["failover"] = f
		}
		f["plannedPause"] = pause.String()
	}
}

// flipBy asks the agents for a switch with the CLI and waits until the
// route serves domain at a newer epoch; the drill's failovers still count
// from its start.
func (d *drill) flipBy(domain string, args ...string) kafkatest.AgentRoute {
	d.t.Helper()
	r0, _, err := d.route()
	if err != nil {
		d.t.Fatal(err)
	}
	if _, err := d.cli(3*time.Minute, args...); err != nil {
		d.t.Fatalf("turnout %s: %v", args[0], err)
	}
	base := d.epoch0
	d.epoch0 = r0.Epoch
	defer func() { d.epoch0 = base }()
	r := d.waitFlipped(domain, 60*time.Second)
	d.noteFlip(r)
	return r
}

// killAtCommit kills the shared MirrorMaker the moment the agents report
// the route past epoch: from the flip's commit on, what the old cluster
// acknowledged and replication had not copied stays behind, as if the old
// cluster had died then, and a planned switch must leave nothing behind.
// The returned stop ends the watch and says when MirrorMaker was killed
// (zero: it was not).
func (d *drill) killAtCommit(epoch int32) (stop func() time.Time) {
	e := d.env
	mm := e.forward
	quit, done := make(chan struct{}), make(chan struct{})
	var killed time.Time
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if r, _, err := d.route(); err == nil && r.Epoch > epoch {
				mm.Kill()
				killed = time.Now()
				return
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop = func() time.Time {
		once.Do(func() {
			close(quit)
			<-done
			// A flip of a few milliseconds may end between two polls,
			// and the caller stop as soon as it is told.
			if r, _, err := d.route(); killed.IsZero() && err == nil && r.Epoch > epoch {
				mm.Kill()
				killed = time.Now()
			}
			if !killed.IsZero() {
				e.forwardStopped = true
			}
		})
		return killed
	}
	d.b.OnCleanup(func() { stop() })
	return stop
}

// stopForward stops the shared MirrorMaker (cluster 1 to cluster 2, every
// drill's topic); ensureForward starts it again. Two MirrorMakers of the
// same clusters would share one Connect group and its configuration, so
// a drill that must stop replication stops this one, and restarts it:
// from the offsets it committed, as MirrorMaker restarted by hand does.
func (e *drillEnv) stopForward(t *testing.T) {
	if e.forwardStopped {
		return
	}
	if err := e.forward.Stop(); err != nil {
		t.Log(err)
	}
	e.forwardStopped = true
}

// ensureForward starts the shared MirrorMaker again if it was stopped.
func (e *drillEnv) ensureForward(t *testing.T) {
	if !e.forwardStopped {
		return
	}
	e.forwardRuns++
	e.forward = e.b.StartMirrorMakerAs(fmt.Sprintf("mm2-forward-%d", e.forwardRuns), e.c1, e.c2, "drill-.*")
	e.forwardStopped = false
}

// failbackThenPlanned: a planned failover to cluster 2, MirrorMaker
// reversed (the shared one stopped, one for this drill's topic the other
// way) and a failback to cluster 1, then the shared MirrorMaker forward
// again (from the offsets it had committed before the failover) and at
// once a planned switch to cluster 2. The lag the agents last measured forward
// was 0, before the failover; since then cluster 1 took the failback's
// copies and fresh records. The planned switch must measure the lag anew
// and flip only once replication holds everything: MirrorMaker is killed
// the moment the flip commits, and nothing may be lost.
func (e *drillEnv) failbackThenPlanned(t *testing.T) {
	e.ensureForward(t)
	d := e.newDrill(t, "failback-then-planned", "the planned switch after a failback loses nothing (lost_acked=0)",
		drillSetup{policy: withPlannedPause(time.Minute)})
	d.steady("fp-", true)
	d.flipBy(domain2, "failover", "--to", domain2, "--agent", d.agents.List[0].URL())
	e.stopForward(t)
	rev := d.lb.StartMirrorMakerAs("mm2-reverse-"+d.name, e.c2, e.c1, d.topic)
	back := d.flipBy(domain1, "failback", "--agent", d.agents.List[0].URL())
	if err := rev.Stop(); err != nil {
		t.Log(err)
	}
	// Cluster 1 takes records no MirrorMaker copies yet: the real lag
	// grows.
	if behind := d.load.carriedOn(time.Now(), 2*drillRate, 60*time.Second); len(behind) > 0 {
		t.Fatalf("producers did not carry on on cluster 1 after the failback: %v", behind)
	}
	if l, ok := d.watch.latest().Lag[kafkatest.RouteName]; ok {
		d.note("lag the agents report before the planned switch: %d records, known %v, measured %v ago (%s)",
			l.Records, l.Known, time.Since(l.At).Round(time.Millisecond), l.Detail)
	}
	e.ensureForward(t)
	stop := d.killAtCommit(back.Epoch)
	fault := time.Now()
	if l, ok := d.watch.lagAt(fault); ok {
		d.res.lag = fmt.Sprint(l.Records)
	}
	out, err := d.cli(3*time.Minute, "failover", "--to", domain2, "--agent", d.agents.List[0].URL())
	killed := stop()
	r := d.settled()
	switched := err == nil && r.ActiveDomain == domain2 && r.Epoch == back.Epoch+1
	if !killed.IsZero() {
		d.note("MirrorMaker killed %v after the request, at the flip's commit", killed.Sub(fault).Round(time.Millisecond))
	}
	d.target(switched, "failback-then-planned/switched", "the planned switch after the failback did not happen (%v: %s); route %+v", err, lastLine(out), r)
	old := (*kafkatest.Cluster)(nil)
	if switched {
		old = e.c1
		if err := d.gatewaysOn(e.c2, d.gw1, d.gw2); err != nil {
			t.Error(err)
		}
	}
	if behind := d.load.carriedOn(time.Now(), 3*drillRate, 60*time.Second); len(behind) > 0 {
		t.Errorf("producers did not carry on: %v", behind)
	}
	d.consumersCarryOn(fault, 90*time.Second)
	f := d.finish(fault, old)
	d.lossTarget(0, "failback-then-planned/lost", f, switchedAt(r), "%d acknowledged records lost in the planned switch after a failback (%v)", d.res.lost, f.missingBy)
}

// skewedClocks are the clock offsets of the clock-skew drill's agents
// (TURNOUT_FAULT_CLOCK_OFFSET): a1 is right and is made to lead (three
// fresh starts at most), so both its followers are off; whichever agent
// leads, one follower is.
var skewedClocks = map[string]time.Duration{"a2": time.Hour, "a3": -time.Hour}

// clockSkew: agents a2 and a3 date the reports they hand the leader an hour
// fast and an hour slow. The leader dates a report by its age on the
// sender's clock, so under load its status must show every agent's views of
// both domains fresh and both healthy by quorum; then cluster 1 is killed
// (SIGKILL) as in the unplanned drill, and the skewed agents' breaches
// must count: an automatic failover, rto and losses as unplanned, and no
// report refused for its clock (turnout_agent_reports_refused_total
// {reason="clock-skew"} stays 0 on every agent). Before the leader dated
// reports by their age it refused those more than 10 s off, and the
// route stayed on the dead cluster once a skewed follower's breach was
// needed for a quorum.
func (e *drillEnv) clockSkew(t *testing.T) {
	for _, c := range []*kafkatest.Cluster{e.c1, e.c2} {
		if !c.Running() {
			if err := c.StartErr(e.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.ensureForward(t)
	env := map[string][]string{}
	for id, off := range skewedClocks {
		env[id] = []string{"TURNOUT_FAULT_CLOCK_OFFSET=" + off.String()}
	}
	d := e.newDrill(t, "clock-skew", "a2 +1h, a3 -1h: views fresh, domains healthy by quorum; failover as unplanned: rto_ms<10000, lost_acked<=lag at fault, failovers=1; no report refused for clock-skew",
		drillSetup{lead: "a1", agentEnv: env})
	// With a1 leading, a quorum of breaches needs a skewed follower's.
	d.leadBy("a1", 3)
	leader, _ := d.leaderAndFollower()
	var skewedFollowers []string
	for _, a := range d.agents.List {
		if _, ok := skewedClocks[a.ID]; ok && a != leader {
			skewedFollowers = append(skewedFollowers, a.ID)
		}
	}
	slices.Sort(skewedFollowers)
	d.note("clocks off by %v; %s leads, skewed followers %v", skewedClocks, leader.ID, skewedFollowers)
	d.steady("cs-", true)

	// What the leader makes of the skewed reports: every agent's view of
	// each domain, healthy and dated within the policy's staleness by the
	// leader's clock (this machine's), and each domain healthy by quorum.
	staleAfter := 3*probeInterval + 2*time.Second // policy.StaleAfter of the shipped policy
	var stale string
	fresh := kafkatest.Poll(20*time.Second, 200*time.Millisecond, func() (bool, error) {
		st, err := leader.Status(e.ctx)
		if err != nil {
			stale = err.Error()
			return false, nil
		}
		now := time.Now()
		var off []string
		for _, dom := range []string{domain1, domain2} {
			ds := st.Domains[dom]
			if !ds.Healthy {
				off = append(off, dom+" not healthy by quorum")
			}
			for _, a := range d.agents.List {
				v, ok := ds.ByAgent[a.ID]
				switch {
				case !ok:
					off = append(off, fmt.Sprintf("no view of %s by %s", dom, a.ID))
				case !v.Healthy || v.At.After(now) || now.Sub(v.At) > staleAfter:
					off = append(off, fmt.Sprintf("%s's view of %s healthy %v dated %v from now", a.ID, dom, v.Healthy, v.At.Sub(now).Round(time.Millisecond)))
				}
			}
		}
		stale = strings.Join(off, "; ")
		return len(off) == 0, nil
	}) == nil
	d.target(fresh, "clock-skew/fresh", "the leader %s does not count every agent's views: %s", leader.ID, stale)
	if fresh {
		d.note("the leader %s holds every agent's views of both domains, fresh by its clock; both healthy by quorum", leader.ID)
	}

	fault := time.Now()
	e.c1.Kill()
	lag, lagKnown := d.watch.lagAt(fault)
	d.res.lag = "unknown"
	if lagKnown {
		d.res.lag = fmt.Sprint(lag.Records)
		d.note("lag recorded at the fault: %d records, measured %v before it (%s)", lag.Records, fault.Sub(lag.At).Round(time.Millisecond), lag.Detail)
	}
	var r kafkatest.AgentRoute
	flipped := kafkatest.Poll(60*time.Second, 100*time.Millisecond, func() (bool, error) {
		var err error
		r, _, err = d.route()
		return err == nil && r.ActiveDomain == domain2 && r.Epoch > d.epoch0 && r.State != "switching", nil
	}) == nil
	fails := d.watch.maxFailures(domain1)
	d.note("most consecutive failed probes of %s the agents committed: %v", domain1, fails)
	d.target(flipped, "clock-skew/failover", "no failover 60 s after cluster 1 died with clocks skewed: the leader decides %s: %s", r.Decision, r.Reason)
	skewRefused, allRefused := d.refusedReports()
	d.note("reports the leaders refused: %v, %v of them for clock-skew", allRefused, skewRefused)
	d.target(skewRefused == 0, "clock-skew/refused", "the leaders refused %v reports for clock-skew", skewRefused)
	// MirrorMaker lost its source: stopped before cluster 1 returns, so
	// that what it never copied stays there and counts as lost.
	e.stopForward(t)
	if err := e.c1.StartErr(e.ctx); err != nil {
		t.Fatal(err)
	}
	if !flipped {
		d.res.rtoMs, d.res.failovers = -1, d.failovers()
		return
	}
	d.noteFlip(r)
	if r.Flip == nil || r.Flip.Outcome != "done" || r.Flip.Manual {
		t.Errorf("want an automatic flip done; got %+v", r.Flip)
	}
	counted := slices.ContainsFunc(skewedFollowers, func(id string) bool { return fails[id] >= failuresToBreach })
	d.target(counted, "clock-skew/counted", "no skewed follower's breach of %s (%v) reached the leader's state: %v", domain1, skewedFollowers, fails)
	if err := d.gatewaysOn(e.c2, d.gw1, d.gw2); err != nil {
		t.Error(err)
	}
	if behind := d.load.carriedOn(time.Now(), 3*drillRate, 60*time.Second); len(behind) > 0 {
		t.Errorf("producers did not carry on on cluster 2: %v", behind)
	}
	f := d.finish(fault, e.c1)
	d.target(d.res.failovers == 1, "clock-skew/once", "the route flipped %d times, want once", d.res.failovers)
	d.target(d.res.rtoMs >= 0 && d.res.rtoMs < 10000, "clock-skew/rto",
		"rto %d ms with skewed clocks, target under 10000 as unplanned (longest produce gap %v)", d.res.rtoMs, f.gap.Round(time.Millisecond))
	if !lagKnown {
		t.Errorf("the agents had recorded no replication lag when cluster 1 died")
	}
	d.lossTarget(lag.Records, "clock-skew/lost", f, switchedAt(r),
		"%d acknowledged records lost, more than the %s records of lag recorded at the fault (%v)", d.res.lost, d.res.lag, f.missingBy)
}

// refusedReports sums turnout_agent_reports_refused_total over the running
// agents (each counts what it refused as leader): those refused for their
// clock, and all.
func (d *drill) refusedReports() (skew, all float64) {
	for _, a := range d.agents.List {
		if !a.Running() {
			continue
		}
		n, err := a.Metric(d.env.ctx, "turnout_agent_reports_refused_total", "reason", "clock-skew")
		m, err2 := a.Metric(d.env.ctx, "turnout_agent_reports_refused_total")
		if err := errors.Join(err, err2); err != nil {
			d.t.Errorf("agent %s: %v", a.ID, err)
		}
		skew, all = skew+n, all+m
	}
	return skew, all
}

// maxPause is the longest a gateway holds a route's Produce requests
// (adminapi.MaxPause).
const maxPause = time.Minute

// pauseOutlivesMax: MirrorMaker is stopped and a planned switch asked, so
// replication cannot catch up; it restarts 5 s after a gateway's longest
// pause (maxPause) has run out, with failover.plannedPause at 90 s where
// the binary takes it, or (at the limit, 1 min) 15 s before the pause
// ends, so that the flip's gateway restarts meet the end of an unrenewed
// pause. No Produce request the
// pause held may reach cluster 1 and then be left behind: MirrorMaker is
// killed at the flip's commit, and the end is either a refused switch
// with the producers carrying on on cluster 1, or a clean switch, with
// nothing lost either way.
func (e *drillEnv) pauseOutlivesMax(t *testing.T) {
	pause, why := e.longestPlannedPause(t, 90*time.Second)
	e.ensureForward(t)
	d := e.newDrill(t, "pause-outlives-max", "refused with producers resumed on kafka1-domain, or a clean switch; lost_acked=0",
		drillSetup{policy: withPlannedPause(pause)})
	d.note("failover.plannedPause %v%s", pause, why)
	d.steady("mp-", true)
	e.stopForward(t)
	fault := time.Now()
	if l, ok := d.watch.lagAt(fault); ok {
		d.res.lag = fmt.Sprint(l.Records)
	}
	cli := d.cliAsync(pause+3*time.Minute, "failover", "--to", domain2, "--agent", d.agents.List[0].URL())
	// Past maxPause when the policy allows it; else late enough that
	// replication catches up near the end of the pause, as the flip's
	// gateway restarts begin and the pause runs out.
	restartAt := min(pause-15*time.Second, maxPause+5*time.Second)
	var res cliResult
	var killed time.Time
	select {
	case res = <-cli:
		d.note("turnout failover answered %v after the request, before MirrorMaker restarted", time.Since(fault).Round(time.Millisecond))
	case <-time.After(restartAt):
		e.ensureForward(t)
		stop := d.killAtCommit(d.epoch0)
		d.note("MirrorMaker restarted %v after the request", time.Since(fault).Round(time.Millisecond))
		res = <-cli
		killed = stop()
	}
	d.note("turnout failover answered %q (%v) %v after the request", lastLine(res.out), res.err, time.Since(fault).Round(time.Millisecond))
	if !killed.IsZero() {
		d.note("MirrorMaker killed at the flip's commit, %v after the request", killed.Sub(fault).Round(time.Millisecond))
	}
	r := d.settled()
	switched := res.err == nil && r.ActiveDomain == domain2 && r.Epoch == d.epoch0+1 && r.State == "serving"
	refused := res.err != nil && r.ActiveDomain == domain1 && r.Epoch == d.epoch0
	old, on := (*kafkatest.Cluster)(nil), e.c1
	if switched {
		old, on = e.c1, e.c2
	}
	gwErr := d.gatewaysOn(on, d.gw1, d.gw2)
	d.target((switched || refused) && gwErr == nil, "pause-outlives-max/end",
		"neither a refused switch nor a clean one: the CLI said %q (%v), route %+v, gateways: %v", lastLine(res.out), res.err, r, gwErr)
	if behind := d.load.carriedOn(time.Now(), 3*drillRate, 60*time.Second); len(behind) > 0 {
		t.Errorf("producers did not carry on on %s: %v", on.Name, behind)
	}
	if !switched {
		fault = time.Time{}
	}
	f := d.finish(fault, old)
	d.lossTarget(0, "pause-outlives-max/lost", f, switchedAt(r), "%d acknowledged records lost in a planned switch whose pause outlived %v (%v)", d.res.lost, maxPause, f.missingBy)
}

// longestPlannedPause is want if the binary takes it as
// failover.plannedPause (`turnout validate`), else maxPause, and why.
func (e *drillEnv) longestPlannedPause(t *testing.T, want time.Duration) (time.Duration, string) {
	t.Helper()
	b := e.b.Sub(t)
	gw := b.NewGateway("validate", []*kafkatest.Cluster{e.c1, e.c2}, 0, nil)
	pol := b.Path("validate-policy.yaml")
	writeDrillPolicy(t, pol, "validate", []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, gw.Config, b.Path("validate-signal"), withPlannedPause(want))
	out, err := exec.Command(kafkatest.Binary(t), "validate", gw.Config, pol).CombinedOutput()
	if err != nil {
		return maxPause, fmt.Sprintf(" (the binary refuses %v: %s)", want, lastLine(string(out)))
	}
	return want, ""
}

// faultStep is one fault of the random drill: applied, held, healed, then
// quiet for a while.
type faultStep struct {
	kind   string // see faultKinds
	target string // kafka1, kafka2; a1..a3 or leader; gw-1, gw-2
	hold   time.Duration
	quiet  time.Duration
}

func (s faultStep) String() string {
	return fmt.Sprintf("%s %s for %v, quiet %v", s.kind, s.target, s.hold, s.quiet)
}

// faultKinds are what the random drill does: SIGSTOP or SIGKILL (then a
// restart) of a cluster, an agent or a gateway; a POST /restart of a
// gateway; and, with partitions, agent a3 cut off from both clusters or
// from its peers.
var faultKinds = []string{"stop-cluster", "kill-cluster", "stop-agent", "kill-agent", "stop-gateway", "kill-gateway", "restart-gateway"}

var partitionKinds = []string{"cut-agent-clusters", "cut-agent-peers"}

// faultSchedule draws faults from seed until their holds and quiet times
// reach total. At most one cluster is killed: a killed cluster takes tens
// of seconds to come back.
func faultSchedule(seed uint64, total time.Duration, partitions bool) []faultStep {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	kinds := slices.Clone(faultKinds)
	if partitions {
		kinds = append(kinds, partitionKinds...)
	}
	pick := func(from ...string) string { return from[rng.IntN(len(from))] }
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)))/time.Millisecond*time.Millisecond
	}
	var out []faultStep
	killed := false
	for sum := time.Duration(0); sum < total; {
		s := faultStep{kind: pick(kinds...)}
		if s.kind == "kill-cluster" {
			if killed {
				continue
			}
			killed = true
		}
		switch s.kind {
		case "stop-cluster", "kill-cluster":
			s.target = pick("kafka1", "kafka2")
		case "stop-agent", "kill-agent":
			s.target = pick("leader", "a1", "a2", "a3")
		case "cut-agent-clusters", "cut-agent-peers":
			s.target = "a3"
		default:
			s.target = pick("gw-1", "gw-2")
		}
		if s.kind != "restart-gateway" {
			s.hold = between(time.Second, 7*time.Second)
		}
		s.quiet = between(2*time.Second, 5*time.Second)
		sum += s.hold + s.quiet
		out = append(out, s)
	}
	return out
}

func TestFaultSchedule(t *testing.T) {
	for _, tc := range []struct {
		seed       uint64
		total      time.Duration
		partitions bool
	}{
		{1, 90 * time.Second, true},
		{2, 90 * time.Second, false},
		{42, 3 * time.Minute, true},
	} {
		a, b := faultSchedule(tc.seed, tc.total, tc.partitions), faultSchedule(tc.seed, tc.total, tc.partitions)
		if !slices.Equal(a, b) {
			t.Errorf("seed %d: two schedules differ", tc.seed)
		}
		var sum time.Duration
		kills := 0
		for _, s := range a {
			sum += s.hold + s.quiet
			if s.kind == "kill-cluster" {
				kills++
			}
			if !tc.partitions && strings.HasPrefix(s.kind, "cut-") {
				t.Errorf("seed %d: partition %v without partitions", tc.seed, s)
			}
			if s.hold > 7*time.Second || s.quiet < 2*time.Second || s.quiet > 5*time.Second {
				t.Errorf("seed %d: step out of bounds: %v", tc.seed, s)
			}
		}
		if sum < tc.total || sum >= tc.total+12*time.Second {
			t.Errorf("seed %d: schedule lasts %v, want %v plus at most one step", tc.seed, sum, tc.total)
		}
		if kills > 1 {
			t.Errorf("seed %d: %d cluster kills, want at most one", tc.seed, kills)
		}
	}
}

// faultSeed is TURNOUT_FAULT_SEED, to replay a schedule, or a new seed.
func faultSeed() uint64 {
	if s, err := strconv.ParseUint(os.Getenv("TURNOUT_FAULT_SEED"), 10, 64); err == nil {
		return s
	}
	return uint64(time.Now().UnixNano())
}

// faultsFor is how long the random drill's schedule runs.
const faultsFor = 90 * time.Second

// randomFaults: a seeded schedule (printed; TURNOUT_FAULT_SEED replays
// it) of faults, one at a time, for faultsFor under load; agent a3 runs in
// a network namespace so that it can be partitioned. Then everything is
// healed and checked: the gateways agree with the agents' route, every
// acknowledged record was delivered unless an automatic failover left it
// behind (at most the lag recorded at that failover), the two gateways
// never both acknowledged writes to different clusters for longer than
// splitBound (told from which cluster holds each acknowledged record at
// its partition and offset), and every restart answered.
func (e *drillEnv) randomFaults(t *testing.T) {
	for _, c := range []*kafkatest.Cluster{e.c1, e.c2} {
		if !c.Running() {
			if err := c.StartErr(e.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.ensureForward(t)
	const cuttable = "a3"
	d := e.newDrill(t, "random", fmt.Sprintf("lost_acked<=lag at automatic failovers; no split over %v; every restart answered; gateways agree at the end", splitBound), drillSetup{
		isolate: func(d *drill) map[string]kafkatest.Isolation {
			return map[string]kafkatest.Isolation{cuttable: {
				Reach: []int{e.c1.Port, e.c2.Port, portOf(d.gw1.AdminAddr), portOf(d.gw2.AdminAddr)},
			}}
		},
	})
	seed := faultSeed()
	schedule := faultSchedule(seed, faultsFor, true)
	d.note("seed %d (TURNOUT_FAULT_SEED=%d replays it): %d faults", seed, seed, len(schedule))
	d.steady("rn-", true)
	poll := startGatewayPoll(d.b, d.gw1, d.gw2)
	begin := time.Now()
	var unanswered []string
	for i, s := range schedule {
		at := time.Since(begin).Round(100 * time.Millisecond)
		heal, err := d.applyFault(s)
		if err != nil {
			unanswered = append(unanswered, fmt.Sprintf("%v: %v", s, err))
		}
		time.Sleep(s.hold)
		if heal != nil {
			if err := heal(); err != nil {
				unanswered = append(unanswered, fmt.Sprintf("healing %v: %v", s, err))
			}
		}
		d.t.Logf("fault %d/%d at %v: %v", i+1, len(schedule), at, s)
		time.Sleep(s.quiet)
	}
	d.note("schedule: %v", schedule)

	// Healed: the agents' route settles and both gateways serve it.
	var r kafkatest.AgentRoute
	var gwErr error
	kafkatest.Poll(90*time.Second, 200*time.Millisecond, func() (bool, error) {
		var err error
		r, _, err = d.route()
		if err != nil || r.State == "switching" {
			return false, err
		}
		gwErr = d.gatewaysOn(e.clusterOf(r.ActiveDomain), d.gw1, d.gw2)
		return gwErr == nil, nil
	})
	d.noteFlip(r)
	d.target(gwErr == nil && r.State == "serving", "random/converged", "after the faults the route is %s on %s at epoch %d and the gateways disagree: %v", r.State, r.ActiveDomain, r.Epoch, gwErr)
	if behind := d.load.carriedOn(time.Now(), 3*drillRate, 60*time.Second); len(behind) > 0 {
		t.Errorf("producers did not carry on after the faults: %v", behind)
	}
	statusSplit := poll.stop()

	var allowed int64
	var flips []string
	for _, f := range d.watch.flipsSince(begin) {
		lag := "manual"
		if !f.Manual {
			if m := lagInReason.FindStringSubmatch(f.Reason); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				allowed += n
				lag = m[1]
			} else if l, ok := d.watch.lagAt(f.StartedAt); ok {
				allowed += l.Records
				lag = fmt.Sprint(l.Records)
			} else {
				lag = "unknown"
			}
		}
		flips = append(flips, fmt.Sprintf("epoch %d %s->%s %s (lag %s)", f.Epoch, f.From, f.To, f.Outcome, lag))
	}
	d.res.lag = fmt.Sprint(allowed)
	d.note("flips: %v", flips)
	f := d.finish(time.Time{}, nil)
	d.res.rtoMs = 0
	split, splitAt := d.ackSplit()
	when := "never"
	if !splitAt.IsZero() {
		when = "from " + splitAt.Format("15:04:05.000")
	}
	d.note("longest time both gateways acknowledged writes to different clusters: %v (%s); by GET /status both served different clusters for at most %v",
		split.Round(time.Millisecond), when, statusSplit.Round(time.Millisecond))
	d.target(split <= splitBound, "random/split", "the gateways acknowledged writes to different clusters for %v from %s, over %v", split.Round(time.Millisecond), splitAt.Format("15:04:05.000"), splitBound)
	d.target(len(unanswered) == 0, "random/restarts", "restarts not answered: %v", unanswered)
	d.lossTarget(allowed, "random/lost", f, time.Time{}, "%d acknowledged records lost, more than the %d of lag recorded at automatic failovers (%v)", d.res.lost, allowed, f.missingBy)
}

// applyFault applies s and returns how to heal it (nil: nothing to heal);
// an error is a restart that did not answer.
func (d *drill) applyFault(s faultStep) (heal func() error, err error) {
	e := d.env
	switch s.kind {
	case "stop-cluster", "kill-cluster":
		c := e.c1
		if s.target == e.c2.Name {
			c = e.c2
		}
		if s.kind == "stop-cluster" {
			c.Signal(syscall.SIGSTOP)
			return func() error { c.Signal(syscall.SIGCONT); return nil }, nil
		}
		c.Kill()
		return func() error { return c.StartErr(e.ctx) }, nil
	case "stop-agent", "kill-agent":
		a := d.agents.Get(s.target)
		if a == nil {
			leader, _, err := d.agents.Leader(e.ctx, 5*time.Second)
			if err != nil {
				return nil, nil // no leader to hit: this fault is a no-op
			}
			a = leader
		}
		if s.kind == "stop-agent" {
			a.Signal(syscall.SIGSTOP)
			return func() error { a.Signal(syscall.SIGCONT); return nil }, nil
		}
		a.Kill()
		return func() error { return a.Start(e.ctx) }, nil
	case "cut-agent-clusters":
		ns := d.agents.Get(s.target).Netns
		ns.Cut(e.c1.Port, e.c2.Port)
		return func() error { ns.Mend(e.c1.Port, e.c2.Port); return nil }, nil
	case "cut-agent-peers":
		a := d.agents.Get(s.target)
		ports := []int{portOf(a.RaftAddr)}
		for _, p := range d.agents.List {
			if p != a {
				ports = append(ports, portOf(p.RaftAddr))
			}
		}
		a.Netns.Cut(ports...)
		return func() error { a.Netns.Mend(ports...); return nil }, nil
	}
	gw := d.gw1
	if s.target == "gw-2" {
		gw = d.gw2
	}
	switch s.kind {
	case "stop-gateway":
		gw.Process().Signal(syscall.SIGSTOP)
		return func() error { gw.Process().Signal(syscall.SIGCONT); return nil }, nil
	case "kill-gateway":
		gw.Process().Kill()
		return func() error { return gw.Relaunch(e.ctx) }, nil
	case "restart-gateway":
		_, err := restartWithin(e.ctx, gw, false)
		return nil, err
	}
	return nil, fmt.Errorf("unknown fault %q", s.kind)
}

// gatewayPoll asks both gateways for GET /status every 100 ms and keeps
// the longest time both answered serving different clusters.
type gatewayPoll struct {
	quit, done chan struct{}
	longest    time.Duration
}

func startGatewayPoll(b *kafkatest.Bed, gws ...*kafkatest.Gateway) *gatewayPoll {
	p := &gatewayPoll{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		var since time.Time
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			clusters := map[string]bool{}
			for _, gw := range gws {
				if r, err := gw.Route(ctx); err == nil {
					clusters[r.ClusterID] = true
				}
			}
			cancel()
			switch {
			case len(clusters) > 1 && since.IsZero():
				since = time.Now()
			case len(clusters) > 1:
				p.longest = max(p.longest, time.Since(since))
			default:
				since = time.Time{}
			}
			select {
			case <-p.quit:
				return
			case <-tick.C:
			}
		}
	}()
	b.OnCleanup(func() { p.stop() })
	return p
}

// stop ends the poll and returns the longest split it saw.
func (p *gatewayPoll) stop() time.Duration {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.done
	return p.longest
}

// ackSplit is the longest time in which the load's Java producer (through
// gw-1) and franz-go producer (through gw-2) were both acknowledged by
// different clusters (longestSplit), and when it began. Which cluster acknowledged a record is the one holding
// it at the partition and offset of the acknowledgement; a record both
// hold there was acknowledged by cluster 1 and copied to cluster 2.
func (d *drill) ackSplit() (time.Duration, time.Time) {
	e := d.env
	held := func(c *kafkatest.Cluster) map[[2]int64]string {
		recs, err := c.Values(e.ctx, d.topic)
		if err != nil {
			d.t.Errorf("reading %s from %s: %v", d.topic, c.Name, err)
		}
		m := map[[2]int64]string{}
		for _, r := range recs {
			m[[2]int64{int64(r.Partition), r.Offset}] = r.Value
		}
		return m
	}
	on1, on2 := held(e.c1), held(e.c2)
	attribute := func(p *producerRun) []ackOn {
		var out []ackOn
		for _, a := range p.acks() {
			k := [2]int64{int64(a.partition), a.offset}
			switch {
			case on1[k] == a.value:
				out = append(out, ackOn{a.at, 1})
			case on2[k] == a.value:
				out = append(out, ackOn{a.at, 2})
			}
		}
		return out
	}
	return longestSplit(attribute(d.load.producers[0]), attribute(d.load.producers[1]))
}

// ackOn is an acknowledgement and the cluster (1 or 2) that gave it.
type ackOn struct {
	at      time.Time
	cluster int
}

// longestSplit is the longest run of time in which acknowledgements of a
// and of b came from different clusters, and when it began: an
// acknowledgement conflicts when the other producer's last one, at most a
// second before, came from the other cluster (both gateways were taking
// writes, to different clusters); a run has no gap over a second.
func longestSplit(a, b []ackOn) (time.Duration, time.Time) {
	byTime := func(x []ackOn) []ackOn {
		x = slices.Clone(x)
		sort.Slice(x, func(i, j int) bool { return x[i].at.Before(x[j].at) })
		return x
	}
	a, b = byTime(a), byTime(b)
	var conflicts []time.Time
	against := func(xs, others []ackOn) {
		for _, x := range xs {
			i := sort.Search(len(others), func(i int) bool { return others[i].at.After(x.at) }) - 1
			if i >= 0 && x.at.Sub(others[i].at) <= time.Second && others[i].cluster != x.cluster {
				conflicts = append(conflicts, x.at)
			}
		}
	}
	against(a, b)
	against(b, a)
	slices.SortFunc(conflicts, func(x, y time.Time) int { return x.Compare(y) })
	var longest time.Duration
	var from time.Time
	for i := 0; i < len(conflicts); {
		j := i
		for j+1 < len(conflicts) && conflicts[j+1].Sub(conflicts[j]) <= time.Second {
			j++
		}
		if run := conflicts[j].Sub(conflicts[i]); run > longest || from.IsZero() {
			longest, from = run, conflicts[i]
		}
		i = j + 1
	}
	return longest, from
}

func TestLongestSplit(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// acks are one every 100 ms from second from to second to, by cluster.
	acks := func(cluster int, from, to float64) []ackOn {
		var out []ackOn
		for s := from; s < to; s += 0.1 {
			out = append(out, ackOn{t0.Add(time.Duration(s * float64(time.Second))), cluster})
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		a, b     []ackOn
		min, max time.Duration
	}{
		{"one cluster", acks(1, 0, 30), acks(1, 0, 30), 0, 0},
		{"both switch together", append(acks(1, 0, 10), acks(2, 10, 30)...), append(acks(1, 0, 10), acks(2, 10, 30)...), 0, 0},
		{"one after the other, 300 ms apart", append(acks(1, 0, 10), acks(2, 10, 30)...), append(acks(1, 0, 10.3), acks(2, 10.3, 30)...), 100 * time.Millisecond, 400 * time.Millisecond},
		{"split for 20 s", append(acks(1, 0, 10), acks(2, 10, 30)...), acks(1, 0, 30), 19 * time.Second, 21 * time.Second},
		{"a silent while b is elsewhere", acks(1, 0, 10), acks(2, 12, 30), 0, 0},
	} {
		got, _ := longestSplit(tc.a, tc.b)
		if got < tc.min || got > tc.max {
			t.Errorf("%s: longest split %v, want %v to %v", tc.name, got, tc.min, tc.max)
		}
	}
}
