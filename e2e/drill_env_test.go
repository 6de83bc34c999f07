package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/turnout/turnout/e2e/kafkatest"
)

const (
	// drillRate is each producer's records per second.
	drillRate       = 100
	drillPartitions = 3
	domain1         = "kafka1-domain"
	domain2         = "kafka2-domain"
)

// drillEnv is what the drills share: two clusters, MirrorMaker 2 from
// cluster 1 to cluster 2 for every drill's topic, the compiled Java clients,
// and the figures of every drill for the report.
type drillEnv struct {
	b       *kafkatest.Bed
	ctx     context.Context
	c1, c2  *kafkatest.Cluster
	forward *kafkatest.MirrorMaker
	// forwardStopped: the shared MirrorMaker was stopped (cluster 1 died,
	// or a drill stopped replication).
	forwardStopped bool
	forwardRuns    int // MirrorMakers started since the first, to name them
	classes        string
	started        time.Time
	// report names the table's file, e2e/out/<report>.md, and its section
	// of the summary: "drills" or "faults".
	report string

	mu      sync.Mutex
	results []*drillResult

	// The unplanned drill leaves its gateways and agents, with the route
	// on cluster 2 and cluster 1 back up, to the failback drill.
	afterUnplanned *drill
}

// startDrillEnv starts what a test's drills share: two clusters,
// MirrorMaker 2 from cluster 1 to cluster 2 for the drill-.* topics, and the
// compiled Java clients; report names the table (drillEnv.report), and
// every drill must end within timeout.
func startDrillEnv(t *testing.T, report string, timeout time.Duration) *drillEnv {
	t.Helper()
	b := kafkatest.NewBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	e := &drillEnv{b: b, ctx: ctx, started: time.Now(), report: report}
	compiled := make(chan struct{})
	go func() { defer close(compiled); e.classes = b.CompileJava() }()
	cs := b.StartClusters(ctx, "kafka1", "kafka2")
	e.c1, e.c2 = cs[0], cs[1]
	e.forward = b.StartMirrorMakerAs("mm2-forward", e.c1, e.c2, "drill-.*")
	<-compiled
	if t.Failed() {
		t.FailNow()
	}
	return e
}

// drillResult is one row of the report.
type drillResult struct {
	name, target string
	rtoMs        int64 // -1: no client reached the new cluster
	lost, dups   int
	failovers    int
	lag          string // the replication lag the agents recorded at the fault
	verdict      string // PASS, FAIL, or a KNOWN-... tag
	notes        []string
	took         time.Duration
}

func (r *drillResult) line() string {
	s := fmt.Sprintf("DR %s rto_ms=%d lost_acked=%d duplicates=%d failovers=%d", r.name, r.rtoMs, r.lost, r.dups, r.failovers)
	if r.lag != "" {
		s += " lag_at_fault=" + r.lag
	}
	return s
}

// drill is one drill: its gateways, agents, load and status history.
type drill struct {
	env         *drillEnv
	t           *testing.T
	b           *kafkatest.Bed // the gateways' and agents'
	lb          *kafkatest.Bed // the load's
	name, topic string
	gw1, gw2    *kafkatest.Gateway
	admin       [2]*adminProxy // in front of each gateway's admin API, where the drill needs one
	agents      *kafkatest.Agents
	policy      string
	signal      string
	watch       *watcher
	load        *drillLoad
	res         *drillResult
	epoch0      int32
	start       time.Time
}

// drillSetup says how a drill's gateways and agents run.
type drillSetup struct {
	topic string
	// bed owns the gateways and agents when they must outlive the drill.
	bed *kafkatest.Bed
	// proxyAdmin puts an adminProxy in front of each gateway's admin API
	// and names it in the policy.
	proxyAdmin bool
	// isolate runs agents in network namespaces of their own.
	isolate func(d *drill) map[string]kafkatest.Isolation
	// lead is the agent to start first, so that it leads.
	lead string
	// noAgents runs the gateways alone, for a drill that moves their
	// epochs itself: agents would lease them the route at its epoch only.
	noAgents bool
	// policy changes the shipped default policy for this drill.
	policy func(pol map[string]any)
	// agentEnv adds KEY=value pairs to the named agents' environment.
	agentEnv map[string][]string
}

// newDrill starts a drill's topic, two gateways with the route on cluster 1,
// the policy (the shipped defaults) and three agents.
func (e *drillEnv) newDrill(t *testing.T, name, target string, s drillSetup) *drill {
	t.Helper()
	d := &drill{env: e, t: t, name: name, topic: s.topic, start: time.Now(),
		res: &drillResult{name: name, target: target}}
	if d.topic == "" {
		d.topic = "drill-" + name
	}
	d.lb = e.b.Sub(t)
	d.b = d.lb
	if s.bed != nil {
		d.b = s.bed
	}
	e.mu.Lock()
	e.results = append(e.results, d.res)
	e.mu.Unlock()
	t.Cleanup(func() {
		d.res.took = time.Since(d.start)
		if d.res.verdict == "" {
			d.res.verdict = "PASS"
		}
		if t.Failed() {
			d.res.verdict = "FAIL"
		}
		if t.Skipped() {
			d.res.verdict = "SKIPPED"
		}
		t.Log(d.res.line())
		kafkatest.Report(e.section(), d.res.line())
	})

	e.c1.CreateTopic(e.ctx, d.topic, drillPartitions, nil)
	e.c2.CreateTopic(e.ctx, d.topic, drillPartitions, nil)
	cs := []*kafkatest.Cluster{e.c1, e.c2}
	d.gw1 = d.b.StartGatewayAs(e.ctx, name+"-gw-1", cs, 0)
	d.gw2 = d.b.StartGatewayAs(e.ctx, name+"-gw-2", cs, 0)
	admins := []string{"http://" + d.gw1.AdminAddr, "http://" + d.gw2.AdminAddr}
	if s.proxyAdmin {
		for i, gw := range []*kafkatest.Gateway{d.gw1, d.gw2} {
			d.admin[i] = startAdminProxy(t, d.b, gw.AdminAddr)
			admins[i] = "http://" + d.admin[i].addr
		}
	}
	d.signal = d.b.Path(name + "-signal")
	if s.noAgents {
		return d
	}
	d.policy = d.b.Path(name + "-policy.yaml")
	writeDrillPolicy(t, d.policy, d.topic, admins, d.gw1.Config, d.signal, s.policy)
	var iso map[string]kafkatest.Isolation
	if s.isolate != nil {
		iso = s.isolate(d)
	}
	d.agents = d.b.StartAgents(e.ctx, kafkatest.AgentsConfig{
		Policy: d.policy, GatewayConfig: d.gw1.Config, SignalFile: d.signal, Isolated: iso, Lead: s.lead, Env: s.agentEnv,
	})
	d.watch = startWatcher(d.b, d.agents)
	var leader *kafkatest.Agent
	var st kafkatest.AgentStatus
	var r kafkatest.AgentRoute
	err := kafkatest.Poll(30*time.Second, 100*time.Millisecond, func() (bool, error) {
		var err error
		leader, st, err = d.agents.Leader(e.ctx, 10*time.Second)
		if err != nil {
			return false, err
		}
		var ok bool
		r, ok = st.Route(kafkatest.RouteName)
		return ok, nil
	})
	if err != nil || r.ActiveDomain != domain1 {
		t.Fatalf("agents' route at the start: %+v (%v); want it on %s", r, err, domain1)
	}
	d.epoch0 = r.Epoch
	t.Logf("%s: agents up, %s leads (term %d), route on %s at epoch %d", name, leader.ID, st.Term, r.ActiveDomain, r.Epoch)
	return d
}

// section is the drills' section of the summary Main prints.
func (e *drillEnv) section() string {
	return fmt.Sprintf("%s (e2e/out/%s.md has the table)", strings.ToUpper(e.report), e.report)
}

// writeDrillPolicy writes the shipped default policy (policy/testdata/
// design.yaml) with this drill's topic, gateways and files, changed by edit
// when it is not nil.
func writeDrillPolicy(t *testing.T, path, topic string, admins []string, gwConfig, signal string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(kafkatest.E2EDir, "..", "policy", "testdata", "design.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pol map[string]any
	if err := yaml.Unmarshal(data, &pol); err != nil {
		t.Fatal(err)
	}
	pol["replication"] = map[string]any{"mode": "mirrormaker2", "topics": []string{topic}}
	pol["gateways"] = []map[string]any{{"name": "gw-1", "admin": admins[0]}, {"name": "gw-2", "admin": admins[1]}}
	pol["gatewayConfig"] = gwConfig
	pol["signalFile"] = signal
	if edit != nil {
		edit(pol)
	}
	out, err := yaml.Marshal(pol)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// steady starts the load and waits until it runs, MirrorMaker has copied
// the topic, and the agents know the replication lag.
func (d *drill) steady(prefix string, needLag bool) {
	t := d.t
	t.Helper()
	d.startLoad(prefix)
	d.load.waitSteady(t, 120*time.Second)
	if needLag {
		d.caughtUp(d.env.forward)
	}
}

// caughtUp waits until mm has copied the topic as it stands and the agents
// know the replication lag.
func (d *drill) caughtUp(mm *kafkatest.MirrorMaker) {
	t := d.t
	t.Helper()
	if _, err := mm.CaughtUp(d.env.ctx, d.topic, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the agents to know the replication lag", func() (bool, string) {
		l, ok := d.watch.latest().Lag[kafkatest.RouteName]
		return ok && l.Known && l.Records < 5*drillRate, fmt.Sprintf("lag %+v", l)
	})
}

// route is the route as the agents report it now.
func (d *drill) route() (kafkatest.AgentRoute, kafkatest.AgentStatus, error) {
	st, err := d.agents.Status(d.env.ctx)
	if err != nil {
		return kafkatest.AgentRoute{}, st, err
	}
	r, ok := st.Route(kafkatest.RouteName)
	if !ok {
		return r, st, fmt.Errorf("agent %s reports no route %s", st.ID, kafkatest.RouteName)
	}
	return r, st, nil
}

// waitFlipped waits until the route serves domain at a newer epoch and its
// flip is finished, and returns the route.
func (d *drill) waitFlipped(domain string, timeout time.Duration) kafkatest.AgentRoute {
	d.t.Helper()
	var r kafkatest.AgentRoute
	var last string
	err := kafkatest.Poll(timeout, 100*time.Millisecond, func() (bool, error) {
		var err error
		r, _, err = d.route()
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("%+v", r)
		return r.ActiveDomain == domain && r.Epoch > d.epoch0 && r.State != "switching", nil
	})
	if err != nil {
		d.t.Fatalf("the route never finished a flip to %s: %v; last: %s", domain, err, last)
	}
	return r
}

// leaderAndFollower are the agents' leader and another agent.
func (d *drill) leaderAndFollower() (leader, follower *kafkatest.Agent) {
	d.t.Helper()
	leader, _, err := d.agents.Leader(d.env.ctx, 10*time.Second)
	if err != nil {
		d.t.Fatal(err)
	}
	for _, a := range d.agents.List {
		if a != leader {
			return leader, a
		}
	}
	d.t.Fatal("the agents have no follower")
	return nil, nil
}

// gatewaysOn checks that each gateway serves the route from cluster c.
func (d *drill) gatewaysOn(c *kafkatest.Cluster, gws ...*kafkatest.Gateway) error {
	var errs []error
	for _, gw := range gws {
		r, err := gw.Route(d.env.ctx)
		switch {
		case err != nil:
			errs = append(errs, err)
		case r.ClusterID != c.ID || r.Domain != kafkatest.Domain(c):
			errs = append(errs, fmt.Errorf("%s serves %s (cluster %s) at epoch %d, not %s", gw.Name, r.Domain, r.ClusterID, r.ConfigEpoch, kafkatest.Domain(c)))
		}
	}
	return errors.Join(errs...)
}

// failovers is how many flips the route took since the drill began.
func (d *drill) failovers() int {
	if d.agents == nil {
		return 0
	}
	r, _, err := d.route()
	if err != nil {
		return int(d.watch.latestRoute().Epoch - d.epoch0)
	}
	return int(r.Epoch - d.epoch0)
}

// finish stops the load, counts what it lost and duplicated, and the time
// from fault to the first produce the new cluster acknowledged (old holds
// the topic as the old cluster has it; nil when no failover was meant).
func (d *drill) finish(fault time.Time, old *kafkatest.Cluster) loadFigures {
	t := d.t
	t.Helper()
	d.load.stop(t, 90*time.Second)
	var oldValues map[string]bool
	if old != nil && !fault.IsZero() {
		recs, err := old.Values(d.env.ctx, d.topic)
		if err != nil {
			t.Errorf("reading %s from %s: %v", d.topic, old.Name, err)
		} else {
			oldValues = map[string]bool{}
			for _, r := range recs {
				oldValues[r.Value] = true
			}
		}
	}
	f := d.load.figures(fault, oldValues)
	d.res.lost, d.res.dups = f.lost, f.dups
	d.res.rtoMs = 0
	if old != nil {
		d.res.rtoMs = -1
		if !f.firstNew.IsZero() {
			d.res.rtoMs = f.firstNew.Sub(fault).Milliseconds()
		}
	}
	d.res.failovers = d.failovers()
	d.note("%d acknowledged (%d sends failed); longest gap without an acknowledgement %v; %s",
		f.acked, f.errors, f.gap.Round(time.Millisecond), strings.Join(f.perConsumer, "; "))
	if f.lost > 0 {
		d.note("lost sample: %v", f.lostSample)
	}
	for _, p := range d.load.producers {
		if e := firstErrs(p); e != "" {
			d.note("producer %s%s", p.name, e)
		}
	}
	for _, c := range d.load.consumers {
		ev := c.eventsSince(d.start, fault)
		if len(ev) > 0 && !fault.IsZero() {
			d.t.Logf("consumer %s events: %v", c.name, ev)
		}
		// A consumer that stopped consuming after the switch shows in
		// lost_acked; say so plainly, with what it went through.
		if !fault.IsZero() && old != nil {
			if n := c.consumedProducedAfter(d.load.producers, fault.Add(2*time.Second)); n < drillRate {
				d.note("STALLED: consumer %s consumed %d records produced after the switch; its group events: %v", c.name, n, ev)
			}
		}
	}
	return f
}

// note adds a fact to the drill's row of the report and to the test log.
func (d *drill) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	d.res.notes = append(d.res.notes, s)
	d.t.Log(s)
}

// target checks one of the targets. A target the product misses
// for a reason written in knownDrillMisses is logged as KNOWN-... instead
// of failing the drill; deleting its entry makes the drill assert it.
func (d *drill) target(ok bool, key, format string, args ...any) {
	d.t.Helper()
	what := fmt.Sprintf(format, args...)
	known, isKnown := knownDrillMisses[key]
	switch {
	case ok && isKnown:
		d.note("target %s met this time although knownDrillMisses lists it (the known cause did not show): once it is fixed, delete the entry", key)
	case ok:
	case isKnown:
		tag := known[:strings.Index(known, ":")]
		if d.res.verdict == "" {
			d.res.verdict = tag
		} else if !strings.Contains(d.res.verdict, tag) {
			d.res.verdict += ", " + tag
		}
		d.note("%s (not failing the drill): %s", what, known)
	default:
		d.t.Errorf("target missed: %s", what)
	}
}

// adminProxy stands in front of a gateway's admin API, as the policy's
// admin URL, to slow or break the gateway's restart the way a drill needs:
// hold the first POST /restart until its caller goes away, or refuse every
// connection as a dead admin endpoint would.
type adminProxy struct {
	addr string
	t    *testing.T

	mu       sync.Mutex
	ln       net.Listener
	srv      *http.Server
	hold     bool
	held     chan struct{} // closed when a restart is being held
	restarts int           // POST /restart calls passed to the gateway
	handler  http.Handler
}

func startAdminProxy(t *testing.T, b *kafkatest.Bed, target string) *adminProxy {
	t.Helper()
	u, _ := url.Parse("http://" + target)
	p := &adminProxy{t: t, held: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/restart" {
			p.mu.Lock()
			hold := p.hold
			if hold {
				p.hold = false
				close(p.held)
			} else {
				p.restarts++
			}
			p.mu.Unlock()
			if hold {
				// The caller (the leader) is killed while it waits here;
				// the restart never reaches the gateway.
				select {
				case <-r.Context().Done():
				case <-time.After(2 * time.Minute):
				}
				http.Error(w, "held by the drill", http.StatusServiceUnavailable)
				return
			}
		}
		rp.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	b.OnCleanup(p.kill)
	return p
}

func (p *adminProxy) serve(ln net.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln = ln
	p.srv = &http.Server{Handler: p.handler}
	go p.srv.Serve(ln)
}

// holdNextRestart makes the next POST /restart wait until its caller goes.
func (p *adminProxy) holdNextRestart() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = true
	return p.held
}

// kill closes the admin endpoint: connections to it are refused.
func (p *adminProxy) kill() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// revive opens the admin endpoint again on the same address.
func (p *adminProxy) revive() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.serve(ln)
	return nil
}

func (p *adminProxy) passed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// watcher samples the agents' status four times a second, so that a drill
// can say what the agents knew at any moment: the lag at the fault, the
// decisions they made, when a new leader took over.
type watcher struct {
	agents *kafkatest.Agents
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	samples []sample
}

type sample struct {
	at time.Time
	st kafkatest.AgentStatus
}

func startWatcher(b *kafkatest.Bed, as *kafkatest.Agents) *watcher {
	w := &watcher{agents: as, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			st, err := as.Status(context.Background())
			if err == nil {
				w.mu.Lock()
				w.samples = append(w.samples, sample{at: time.Now(), st: st})
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	b.OnCleanup(func() { close(w.stop); <-w.done })
	return w
}

func (w *watcher) all() []sample {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.samples)
}

func (w *watcher) latest() kafkatest.AgentStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.samples) == 0 {
		return kafkatest.AgentStatus{}
	}
	return w.samples[len(w.samples)-1].st
}

func (w *watcher) latestRoute() kafkatest.AgentRoute {
	r, _ := w.latest().Route(kafkatest.RouteName)
	return r
}

// lagAt is the replication lag the agents had recorded at t.
func (w *watcher) lagAt(t time.Time) (kafkatest.AgentLag, bool) {
	var l kafkatest.AgentLag
	found := false
	for _, s := range w.all() {
		if s.at.After(t) {
			break
		}
		if x, ok := s.st.Lag[kafkatest.RouteName]; ok && x.Known {
			l, found = x, true
		}
	}
	return l, found
}

// decisions counts the decisions the agents reported for the route, by code.
func (w *watcher) decisions() map[string]int {
	out := map[string]int{}
	for _, s := range w.all() {
		if r, ok := s.st.Route(kafkatest.RouteName); ok {
			out[r.Decision]++
		}
	}
	return out
}

// reason returns the last reason given with decision code.
func (w *watcher) reason(code string) string {
	reason := ""
	for _, s := range w.all() {
		if r, ok := s.st.Route(kafkatest.RouteName); ok && r.Decision == code {
			reason = r.Reason
		}
	}
	return reason
}

// maxFailures is, per agent, the most consecutive failed probes of domain
// that the agents reported.
func (w *watcher) maxFailures(domain string) map[string]int {
	out := map[string]int{}
	for _, s := range w.all() {
		for id, v := range s.st.Domains[domain].ByAgent {
			out[id] = max(out[id], v.ConsecutiveFailures)
		}
	}
	return out
}

// leaderSince is the first leader other than old the agents reported after
// t, and when.
func (w *watcher) leaderSince(t time.Time, old string) (string, time.Time) {
	for _, s := range w.all() {
		if s.at.After(t) && s.st.Leader != "" && s.st.Leader != old {
			return s.st.Leader, s.at
		}
	}
	return "", time.Time{}
}

// cli runs the turnout binary and logs what it printed.
func (d *drill) cli(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(d.env.ctx, timeout)
	defer cancel()
	start := time.Now()
	out, err := d.agents.CLI(ctx, args...)
	d.t.Logf("$ turnout %s  (%v, %v)\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err, strings.TrimSpace(out))
	return out, err
}

// cliAsync runs the binary for the rare call that must not block a
// drill: started now, its output and error come on the channel.
func (d *drill) cliAsync(timeout time.Duration, args ...string) <-chan cliResult {
	ch := make(chan cliResult, 1)
	go func() {
		out, err := d.cli(timeout, args...)
		ch <- cliResult{out, err}
	}()
	return ch
}

type cliResult struct {
	out string
	err error
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
