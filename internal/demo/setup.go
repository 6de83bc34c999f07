package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/agent"
	"github.com/turnout/turnout/proxy"
	"github.com/turnout/turnout/proxy/adminapi"
)

// wrapLog, when a test sets it, wraps the handler every component logs
// through: a test rewords every log line with it to show that the screen
// does not depend on log text.
var wrapLog func(slog.Handler) slog.Handler

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
	var h slog.Handler = slog.NewTextHandler(d.logFile, &slog.HandlerOptions{Level: slog.LevelInfo})
	if wrapLog != nil {
		h = wrapLog(h)
	}
	d.log = slog.New(h)
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
	d.gw.Observe(func(ev proxy.Event) { d.tell(ev) })
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
			Logger: d.log.With("component", "agent"), OnEvent: func(ev agent.Event) { d.tell(ev) },
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
func (d *demo) serving() adminapi.RouteStatus {
	for _, r := range d.gw.Status() {
		if r.Name == route {
			return r
		}
	}
	return adminapi.RouteStatus{}
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

// kgoLogger writes a franz-go client's log to the demo's log file, so the
// clients' side of a switch (reconnects, retries, rebalances) can be read
// next to the gateway's and the agents'.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelInfo
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	case kgo.LogLevelDebug:
		lv = slog.LevelDebug
	}
	l.log.Log(context.Background(), lv, msg, keyvals...)
}
