// Package demo is `turnout demo`: the whole failover story on one machine,
// in one process, with nothing installed beyond Go. Two in-process Kafka
// clusters (kfake), a demo-only copier between them, one Turnout gateway,
// three Turnout agents (each its own Raft node), and a producer and a group
// consumer that only know the gateway's address. Cluster 1 is killed; the
// agents fail the route over to cluster 2; cluster 1 comes back and the route
// fails back through the signal file. The summary counts every record.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/turnout/turnout/agent"
	"github.com/turnout/turnout/proxy"
	"github.com/turnout/turnout/proxy/config"
)

const (
	route      = "switchover-route"
	primary    = "kafka1-domain"
	standby    = "kafka2-domain"
	topic      = "orders"
	group      = "demo-consumers"
	partitions = 3
	brokers    = 3
)

var agentIDs = []string{"a1", "a2", "a3"}

// holdingMsg is what the gateway logs when it holds clients for a cluster
// that does not answer.
const holdingMsg = "cluster unreachable; holding client connections until it answers or the route is switched"

// Options are the demo's flags.
type Options struct {
	SeedRate  int           // records produced per second; default 200
	KillAfter time.Duration // when cluster 1 dies, after the clients start; default 10s
	Keep      bool          // leave everything running after the summary until ctx ends
	Out       io.Writer     // the screen
	Terminal  bool          // Out is a terminal: redraw the live line in place
	Width     int           // the terminal's columns, if known: the live line is cut to fit
}

// Summary is what the demo measured.
type Summary struct {
	RTO          time.Duration // kill -> first produce acknowledged on cluster 2
	Detection    time.Duration // kill -> the leader's decision to fail over
	Failover     time.Duration // kill -> the failover done (every gateway on cluster 2)
	Failback     time.Duration // signal file written -> <file>.done
	Records      tally
	Dir, LogFile string
}

// Run runs the demo. It returns an error if a step failed or an
// acknowledged record was lost, after printing the summary when there is one.
func Run(ctx context.Context, opts Options) (Summary, error) {
	if opts.SeedRate <= 0 {
		opts.SeedRate = 200
	}
	if opts.KillAfter <= 0 {
		opts.KillAfter = 10 * time.Second
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	d := &demo{opts: opts, scr: &screen{w: opts.Out, tty: opts.Terminal, width: opts.Width}, events: make(chan logEvent, 1024),
		agents: map[string]*runningAgent{}}
	defer d.shutdown()
	err := d.run(ctx)
	d.sum.Dir, d.sum.LogFile = d.dir, d.logPath
	if err != nil && d.dir != "" {
		d.scr.printf("\nFAILED: %v\nThe components' logs are in %s", err, d.logPath)
	}
	return d.sum, err
}

type demo struct {
	opts Options
	scr  *screen
	sum  Summary

	dir, logPath string
	logFile      *os.File
	log          *slog.Logger
	events       chan logEvent
	quit         chan struct{} // stops the printer, which prints what is queued first
	printerDone  chan struct{}

	ports      *ports
	c1Ports    []int
	clusters   [2]*cluster
	gwPath     string
	gwPort     int
	gw         *proxy.Gateway
	gwAdmin    *http.Server
	gwAdminURL string
	polPath    string
	signal     string
	maxLag     int64
	peers      map[string]string
	agents     map[string]*runningAgent
	copiers    []*copier

	led              *ledger
	producer, cons   *kgo.Client
	stopProducer     context.CancelFunc
	stopConsumer     context.CancelFunc
	producing        chan struct{} // closed when the producer loop has stopped
	consuming        chan struct{} // closed when the consumer loop has stopped
	stopLive         context.CancelFunc
	liveDone         chan struct{}
	killedAt         atomic.Pointer[time.Time]
	firstAckAfter    atomic.Pointer[time.Time] // first ack on cluster 2 after the kill
	firstReadAfter   atomic.Pointer[time.Time] // first record consumed on cluster 2 after the kill
	stepErr          atomic.Pointer[string]    // a failover step the agents reported failed
	flipDecided      atomic.Pointer[time.Time]
	failbackAsked    time.Time
	failoverFinished atomic.Pointer[time.Time]
}

type runningAgent struct {
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan error
}

func (d *demo) run(ctx context.Context) error {
	if err := d.setup(ctx); err != nil {
		return err
	}
	if err := d.startClients(); err != nil {
		return err
	}
	if err := sleep(ctx, d.opts.KillAfter); err != nil {
		return err
	}
	if err := d.failover(ctx); err != nil {
		return err
	}
	if err := d.bringBack(ctx); err != nil {
		return err
	}
	if err := d.failback(ctx); err != nil {
		return err
	}
	if err := d.finish(ctx); err != nil {
		return err
	}
	if d.opts.Keep {
		d.keep(ctx)
	}
	return nil
}

// setup starts everything but the clients and waits until the agents have
// a leader that has measured the replication lag.
func (d *demo) setup(ctx context.Context) error {
	var err error
	if d.dir, err = os.MkdirTemp("", "turnout-demo-"); err != nil {
		return err
	}
	d.logPath = filepath.Join(d.dir, "demo.log")
	if d.logFile, err = os.Create(d.logPath); err != nil {
		return err
	}
	d.log = slog.New(newTap(slog.NewTextHandler(d.logFile, &slog.HandlerOptions{Level: slog.LevelInfo}), d.events,
		"decision", "failover committed", "gateway config written", "gateway serving the new cluster", "failover done",
		"failover stopped", "automatic failover not started", "signal file claimed", "signal file answered", holdingMsg))
	d.quit, d.printerDone = make(chan struct{}), make(chan struct{})
	go d.printer()

	d.scr.println(
		"Turnout demo: the whole failover story in this one process.",
		"  Two Kafka clusters (kfake, in process, "+strconv.Itoa(brokers)+" brokers each), one Turnout gateway, three Turnout agents",
		"  (each its own Raft node), and a producer and a group consumer that only know the gateway's address.",
		"  Replication between the clusters is a DEMO-ONLY copier in this process (offset-preserving, one topic).",
		"  Real deployments replicate with MirrorMaker 2 (configs/mm2-*.properties) or Cluster Linking.",
		"  Component logs: "+d.logPath,
		"")

	d.ports = newPorts()
	if d.c1Ports, err = d.ports.each(brokers); err != nil {
		return err
	}
	c2Ports, err := d.ports.each(brokers)
	if err != nil {
		return err
	}
	if d.gwPort, err = d.ports.run(1 + brokers); err != nil {
		return err
	}
	adminPort, err := d.ports.run(1)
	if err != nil {
		return err
	}
	raftPorts, err := d.ports.each(len(agentIDs))
	if err != nil {
		return err
	}
	httpPorts, err := d.ports.each(len(agentIDs))
	if err != nil {
		return err
	}

	if d.clusters[0], err = startCluster(primary, "kafka-cluster-1", d.c1Ports); err != nil {
		return fmt.Errorf("starting cluster 1: %w", err)
	}
	if d.clusters[1], err = startCluster(standby, "kafka-cluster-2", c2Ports); err != nil {
		return fmt.Errorf("starting cluster 2: %w", err)
	}

	d.gwPath = filepath.Join(d.dir, "gateway.yaml")
	if err := os.WriteFile(d.gwPath, []byte(d.gatewayYAML(adminPort)), 0o644); err != nil {
		return err
	}
	metrics := proxy.NewMetrics()
	d.gw = proxy.New(d.gwPath, d.log.With("component", "gateway"), metrics)
	if err := d.gw.Start(ctx); err != nil {
		return fmt.Errorf("starting the gateway: %w", err)
	}
	ln, err := net.Listen("tcp", loopback(adminPort))
	if err != nil {
		return fmt.Errorf("gateway admin listener: %w", err)
	}
	d.gwAdminURL = "http://" + ln.Addr().String()
	d.gwAdmin = &http.Server{Handler: proxy.AdminHandler(d.gw, metrics, true), ReadHeaderTimeout: 10 * time.Second}
	go d.gwAdmin.Serve(ln)

	d.polPath = filepath.Join(d.dir, "policy.yaml")
	d.signal = filepath.Join(d.dir, "signal")
	d.maxLag = max(100, int64(d.opts.SeedRate)) // about a second of records
	if err := os.WriteFile(d.polPath, []byte(d.policyYAML()), 0o644); err != nil {
		return err
	}

	cp, err := startCopier(ctx, d.clusters[0], d.clusters[1], d.log)
	if err != nil {
		return fmt.Errorf("starting the demo copier 1->2: %w", err)
	}
	d.copiers = append(d.copiers, cp)

	d.peers = map[string]string{}
	for i, id := range agentIDs {
		d.peers[id] = loopback(raftPorts[i])
	}
	for i, id := range agentIDs {
		a, err := agent.New(agent.Config{
			ID: id, PolicyFile: d.polPath, RaftAddr: d.peers[id], Peers: d.peers,
			DataDir: filepath.Join(d.dir, "raft-"+id), Bootstrap: true, HTTPAddr: loopback(httpPorts[i]),
			Logger: d.log.With("component", "agent"),
		})
		if err != nil {
			return fmt.Errorf("agent %s: %w", id, err)
		}
		actx, cancel := context.WithCancel(context.Background())
		ra := &runningAgent{a: a, cancel: cancel, done: make(chan error, 1)}
		go func() { ra.done <- a.Run(actx) }()
		d.agents[id] = ra
	}

	d.scr.printf("  cluster 1  %-14s %s", primary, strings.Join(d.clusters[0].addrs(), ","))
	d.scr.printf("  cluster 2  %-14s %s", standby, strings.Join(d.clusters[1].addrs(), ","))
	d.scr.printf("  gateway    route %s on %s (admin %s)", route, loopback(d.gwPort), d.gwAdminURL)
	var urls []string
	for _, id := range agentIDs {
		urls = append(urls, id+" http://"+d.agents[id].a.HTTPAddr())
	}
	d.scr.printf("  agents     %s", strings.Join(urls, ", "))
	d.scr.printf("  policy     %s (probe every 250ms, failover after 3 failed probes seen by 2 of 3 agents)", d.polPath)
	d.scr.println("")

	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var leader string
	err = poll(wctx, 50*time.Millisecond, func() bool {
		leader = d.leader()
		if leader == "" {
			return false
		}
		st := d.agents[leader].a.Status()
		return st.Lag[route].Known && st.Domain[primary].Healthy && st.Domain[standby].Healthy
	})
	if err != nil {
		return fmt.Errorf("the agents did not elect a leader that sees both clusters healthy and has measured the lag: %w", err)
	}
	st := d.agents[leader].a.Status()
	d.scr.event(time.Now(), "agents ready: Raft leader %s (term %d); both clusters healthy; replication lag %d records",
		leader, st.Term, st.Lag[route].Records)
	return nil
}

func (d *demo) gatewayYAML(adminPort int) string {
	var sb strings.Builder
	sb.WriteString("# Written by turnout demo. The agents rewrite the route's streamingDomain and epoch.\n")
	sb.WriteString("gateway:\n  name: demo-gateway\n  streamingDomains:\n")
	for i, c := range d.clusters {
		fmt.Fprintf(&sb, "    - name: %s\n      type: kafka\n      kafkaCluster:\n        name: kafka-cluster-%d\n", c.name, i+1)
		fmt.Fprintf(&sb, "        bootstrapServers:\n          - id: plaintext\n            endpoint: %q\n", strings.Join(c.addrs(), ","))
		fmt.Fprintf(&sb, "        nodeIdRanges:\n          - {name: brokers, start: 0, end: %d}\n", brokers-1)
	}
	fmt.Fprintf(&sb, "  routes:\n    - name: %s\n      endpoint: %q\n      bind: 127.0.0.1\n", route, loopback(d.gwPort))
	fmt.Fprintf(&sb, "      brokerIdentificationStrategy: port\n")
	fmt.Fprintf(&sb, "      streamingDomain:\n        name: %s\n        bootstrapServerId: plaintext\n", primary)
	fmt.Fprintf(&sb, "      security:\n        auth: passthrough\n      epoch: 0\n")
	fmt.Fprintf(&sb, "  admin:\n    bindAddress: 127.0.0.1\n    port: %d\n", adminPort)
	fmt.Fprintf(&sb, "  limits:\n    drainTimeout: 1s\n    upstreamWait: 10s\n")
	return sb.String()
}

func (d *demo) policyYAML() string {
	return fmt.Sprintf(`# Written by turnout demo; configs/policy.yaml explains every key.
routes:
  - name: %s
    primary: %s
    standby: %s
probe:
  interval: 250ms
  timeout: 1s
health:
  failuresToBreach: 3
  minBrokers: 1
failover:
  automatic: true
  maxLagRecords: %d
  cooldown: 10m
replication:
  mode: offsets          # the demo copier keeps offsets, so end offsets are compared
  topics: [%s]
gateways:
  - name: gw-1
    admin: %s
    timeout: 10s
gatewayConfig: %s
signalFile: %s
`, route, primary, standby, d.maxLag, topic, d.gwAdminURL, d.gwPath, d.signal)
}

// leader is the Raft leader every running agent agrees on, or "".
func (d *demo) leader() string {
	leader := ""
	for _, id := range agentIDs {
		ra := d.agents[id]
		if ra == nil {
			continue
		}
		l := ra.a.Status().Leader
		if l == "" || (leader != "" && l != leader) {
			return ""
		}
		leader = l
	}
	if d.agents[leader] == nil {
		return ""
	}
	return leader
}

// leaderStatus is the status as the leader (or, without one, a1) sees it.
func (d *demo) leaderStatus() agent.Status {
	if l := d.leader(); l != "" {
		return d.agents[l].a.Status()
	}
	return d.agents[agentIDs[0]].a.Status()
}

func routeOf(st agent.Status) agent.RouteStatus {
	for _, r := range st.Routes {
		if r.Name == route {
			return r
		}
	}
	return agent.RouteStatus{}
}

// serving is the domain, cluster id and epoch the gateway serves the route from.
func (d *demo) serving() proxy.RouteStatus {
	for _, r := range d.gw.Status() {
		if r.Name == route {
			return r
		}
	}
	return proxy.RouteStatus{}
}

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

// live prints the live line every second.
func (d *demo) live(ctx context.Context) {
	defer close(d.liveDone)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var p0, a0, c0 int64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			d.scr.stopLive()
			return
		case now := <-tick.C:
			p, a, c := d.led.produced.Load(), d.led.acked.Load(), d.led.consumed.Load()
			secs := now.Sub(last).Seconds()
			last = now
			s := d.serving()
			leader := d.leader()
			if leader == "" {
				leader = "none"
			}
			pr, ar, cr := float64(p-p0)/secs, float64(a-a0)/secs, float64(c-c0)/secs
			d.scr.status(now,
				fmt.Sprintf("produced %4.0f/s  acked %4.0f/s  consumed %4.0f/s | route on %s (%s, epoch %d) | Raft leader %s",
					pr, ar, cr, s.Domain, s.ClusterID, s.ConfigEpoch, leader),
				fmt.Sprintf("out %4.0f/s ack %4.0f/s in %4.0f/s | %s @%d | leader %s", pr, ar, cr, s.Domain, s.ConfigEpoch, leader))
			p0, a0, c0 = p, a, c
		}
	}
}

// note queues a line of the demo's own for the printer, which keeps it in
// order with the components' events.
func (d *demo) note(at time.Time, format string, args ...any) {
	ev := logEvent{Time: at, Msg: "demo", Attrs: map[string]slog.Value{"text": slog.StringValue(fmt.Sprintf(format, args...))}}
	select {
	case d.events <- ev:
	default: // the printer is far behind; the log file has the story
		d.log.Warn("screen event dropped", "text", ev.str("text"))
	}
}

// printer shows the components' events that tell the story.
func (d *demo) printer() {
	defer close(d.printerDone)
	for {
		select {
		case ev := <-d.events:
			if line := d.describe(ev); line != "" {
				d.scr.event(ev.Time, "%s", line)
			}
		case <-d.quit:
			for {
				select {
				case ev := <-d.events:
					if line := d.describe(ev); line != "" {
						d.scr.event(ev.Time, "%s", line)
					}
				default:
					return
				}
			}
		}
	}
}

func (d *demo) describe(ev logEvent) string {
	// During the failover, times are also given from the kill.
	since := func(p *atomic.Pointer[time.Time]) string {
		if t := p.Load(); t != nil && d.failoverFinished.Load() == nil {
			return ", " + seconds(ev.Time.Sub(*t)) + " after the kill"
		}
		return ""
	}
	switch ev.Msg {
	case "demo":
		return ev.str("text")
	case "decision":
		if ev.str("code") == "ok" {
			return ""
		}
		if ev.str("code") == "flip" {
			t := ev.Time
			d.flipDecided.Store(&t)
		}
		return fmt.Sprintf("decision by leader %s [%s]: %s%s", ev.str("agent"), ev.str("code"), ev.str("reason"), since(&d.killedAt))
	case "failover committed":
		took := ""
		if t := d.flipDecided.Load(); t != nil {
			took = " in " + seconds(ev.Time.Sub(*t))
		}
		return fmt.Sprintf("Raft: %s committed the flip %s -> %s at epoch %s%s", ev.str("agent"), ev.str("from"), ev.str("to"), ev.str("epoch"), took)
	case "gateway config written":
		return fmt.Sprintf("config: %s now names %s at epoch %s (written atomically in %s)",
			filepath.Base(ev.str("file")), ev.str("domain"), ev.str("epoch"), seconds(ev.duration("took")))
	case "gateway serving the new cluster":
		return fmt.Sprintf("gateway %s restarted (POST /restart) and confirmed on cluster %s by GET /status in %s",
			ev.str("gateway"), ev.str("cluster_id"), seconds(ev.duration("took")))
	case "failover done":
		line := fmt.Sprintf("route %s now on %s: the flip took %s from commit to the last gateway%s",
			ev.str("route"), ev.str("to"), seconds(ev.duration("took")), since(&d.killedAt))
		if d.killedAt.Load() != nil {
			t := ev.Time
			d.failoverFinished.CompareAndSwap(nil, &t)
		}
		return line
	case "failover stopped", "automatic failover not started":
		msg := fmt.Sprintf("%s: %s", ev.Msg, ev.str("err"))
		d.stepErr.CompareAndSwap(nil, &msg)
		return "FAILED " + msg
	case "signal file claimed":
		return fmt.Sprintf("agent %s claimed the signal file: %q", ev.str("agent"), ev.str("request"))
	case "signal file answered":
		if ev.str("ok") == "true" {
			return fmt.Sprintf("agent %s answered in %s: %s", ev.str("agent"), filepath.Base(ev.str("file")), ev.str("code"))
		}
		return fmt.Sprintf("agent %s answered in %s: %s: %s", ev.str("agent"), filepath.Base(ev.str("file")), ev.str("code"), ev.str("message"))
	case holdingMsg:
		return fmt.Sprintf("gateway: %s unreachable; new client connections are held (up to limits.upstreamWait, %s here), not refused",
			ev.str("domain"), ev.str("wait"))
	}
	return ""
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

	var killed time.Time
	if k := d.killedAt.Load(); k != nil {
		killed = *k
	}
	t := d.led.tally(killed)
	d.sum.Records = t
	d.printSummary(t, drained)
	switch {
	case t.Lost > t.LostBefore:
		return fmt.Errorf("%d acknowledged records were never consumed (e.g. %v), %d of them acknowledged after cluster 1 was killed",
			t.Lost, t.LostSample, t.Lost-t.LostBefore)
	case t.LostBefore > d.maxLag:
		return fmt.Errorf("%d records acknowledged before the kill were never consumed (e.g. %v), more than failover.maxLagRecords (%d)",
			t.Lost, t.LostSample, d.maxLag)
	case t.Failed > 0:
		return fmt.Errorf("%d records failed to produce", t.Failed)
	}
	return nil
}

func (d *demo) printSummary(t tally, drained bool) {
	lines := []string{"", "Summary"}
	add := func(label, format string, args ...any) {
		lines = append(lines, fmt.Sprintf("  %-34s %s", label, fmt.Sprintf(format, args...)))
	}
	add("RTO", "%s  (kill -> first produce acknowledged on cluster 2)", seconds(d.sum.RTO))
	if d.sum.Detection > 0 {
		add("detection", "%s  (kill -> the leader's quorum decision)", seconds(d.sum.Detection))
	}
	if d.sum.Failover > 0 {
		add("failover", "%s  (kill -> the gateway confirmed on cluster 2)", seconds(d.sum.Failover))
	}
	add("failback", "%s  (signal file written -> %s)", seconds(d.sum.Failback), filepath.Base(d.signal)+".done")
	add("records produced", "%d, acknowledged %d, failed %d", t.Produced, t.Acked, t.Failed)
	add("records consumed", "%d reads of %d distinct records", t.Consumed, t.Distinct)
	if t.Lost > 0 && t.Lost == t.LostBefore {
		add("lost", "%d  (acknowledged by cluster 1 just before the kill, not yet copied to cluster 2: the recovery point, within maxLagRecords %d)", t.Lost, d.maxLag)
	} else {
		add("lost", "%d  (acknowledged, never consumed)", t.Lost)
	}
	add("duplicated", "%d  (consumed more than once: %d read again at the same offset, as the consumer resumed from the copied group offsets; %d stored twice)",
		t.Reread+t.StoredTwice, t.Reread, t.StoredTwice)
	// The longest pause between acknowledgements around each switch (a
	// busy machine pauses a little anywhere; these are the ones to compare).
	longest := func(from, to time.Time) string {
		var best ackGap
		for _, g := range t.Gaps {
			if g.to.After(from) && g.from.Before(to) && g.to.Sub(g.from) > best.to.Sub(best.from) {
				best = g
			}
		}
		if best.from.IsZero() {
			return "none over " + seconds(gapWorth)
		}
		return fmt.Sprintf("%s at %.1fs", seconds(best.to.Sub(best.from)), best.from.Sub(d.scr.start).Seconds())
	}
	if k := d.killedAt.Load(); k != nil {
		add("longest produce pause, failover", "%s", longest(*k, k.Add(5*time.Second)))
	}
	if !d.failbackAsked.IsZero() {
		add("longest produce pause, failback", "%s", longest(d.failbackAsked.Add(-time.Second), d.failbackAsked.Add(d.sum.Failback+2*time.Second)))
	}
	var copies []string
	for _, c := range d.copiers {
		n, errs, div := c.stats()
		s := fmt.Sprintf("%s->%s %d", short(c.from), short(c.to), n)
		if errs > 0 || div > 0 {
			s += fmt.Sprintf(" (%d errors, %d partitions with shifted offsets)", errs, div)
		}
		copies = append(copies, s)
	}
	add("demo copier", "%s records copied", strings.Join(copies, ", "))
	if !drained {
		lines = append(lines, "  the consumer had not read every acknowledged record 20s after the producer stopped")
	}
	result := "PASS: nothing acknowledged was lost"
	switch {
	case t.Lost > t.LostBefore || t.LostBefore > d.maxLag || t.Failed > 0:
		result = "FAIL"
	case t.Lost > 0:
		result = fmt.Sprintf("PASS: only what cluster 1 had not yet replicated when it died was lost (%d records)", t.Lost)
	}
	lines = append(lines, "  "+result, "  logs: "+d.logPath)
	d.scr.println(lines...)
}

func short(domain string) string {
	return strings.TrimSuffix(strings.TrimPrefix(domain, "kafka"), "-domain")
}

// keep leaves everything running until ctx ends, for the user to try.
func (d *demo) keep(ctx context.Context) {
	var agents []string
	for _, id := range agentIDs {
		agents = append(agents, fmt.Sprintf("http://%s (%s)", d.agents[id].a.HTTPAddr(), id))
	}
	first := "http://" + d.agents[agentIDs[0]].a.HTTPAddr()
	d.scr.println("",
		"Everything keeps running until Ctrl-C (--keep):",
		"  gateway bootstrap   "+loopback(d.gwPort)+"    e.g. kcat -b "+loopback(d.gwPort)+" -t "+topic+" -C -o beginning",
		"  gateway admin       "+d.gwAdminURL+"/status",
		"  agents              "+strings.Join(agents, ", "),
		"  signal file         "+d.signal,
		"  cluster 1           "+strings.Join(d.clusters[0].addrs(), ","),
		"  cluster 2           "+strings.Join(d.clusters[1].addrs(), ","),
		"Try:",
		"  turnout status --agent "+first,
		"  turnout failover --signal-file "+d.signal,
		"  turnout failback --agent "+first,
		"The agents' decisions and flips show up here.")
	<-ctx.Done()
	d.scr.println("", "Stopping everything.")
}

// shutdown stops everything the demo started, in order: clients, copiers,
// agents, the gateway, the clusters.
func (d *demo) shutdown() {
	if d.stopProducer != nil {
		d.stopProducer()
		d.stopConsumer()
		<-d.producing
		<-d.consuming
	}
	if d.stopLive != nil {
		d.stopLive()
		<-d.liveDone
	}
	for _, cl := range []*kgo.Client{d.producer, d.cons} {
		if cl != nil {
			cl.Close()
		}
	}
	for _, c := range d.copiers {
		c.stop()
	}
	var wg sync.WaitGroup
	for _, ra := range d.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ra.cancel()
			<-ra.done
		}()
	}
	wg.Wait()
	if d.gwAdmin != nil {
		d.gwAdmin.Close()
	}
	if d.gw != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.gw.Close(ctx)
		cancel()
	}
	for _, c := range d.clusters {
		if c != nil {
			c.kill()
		}
	}
	if d.printerDone != nil {
		close(d.quit)
		<-d.printerDone
	}
	if d.logFile != nil {
		d.logFile.Close()
	}
	// The logs and configs stay for a look; the Raft data goes.
	for _, id := range agentIDs {
		if d.dir != "" {
			os.RemoveAll(filepath.Join(d.dir, "raft-"+id))
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
