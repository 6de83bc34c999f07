package kafkatest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Agents are `turnout agent` processes forming one Raft group, as users run
// them: the binary, a policy file, the gateway config of the first gateway,
// a signal file, a data dir and two loopback ports each.
type Agents struct {
	Policy        string
	GatewayConfig string
	SignalFile    string
	List          []*Agent

	bed *Bed
}

// Agent is one `turnout agent` process. Kill and Start may be called in any
// order; Start after Kill brings it back with its data dir.
type Agent struct {
	ID       string
	RaftAddr string
	HTTPAddr string
	DataDir  string
	Netns    *Netns // when it runs in a network namespace of its own

	bed  *Bed
	args []string
	env  []string // KEY=value added to its environment

	mu     sync.Mutex
	proc   *Process
	starts int
}

// AgentsConfig says how to run a group of agents.
type AgentsConfig struct {
	Policy        string // policy.yaml
	GatewayConfig string // --gateway-config
	SignalFile    string // --signal-file
	N             int    // agents a1..aN; 3 when 0
	// Isolated runs the named agents each in a network namespace of its
	// own, which reaches the other agents and the Reach ports, and finds
	// the Blackhole ports silent.
	Isolated map[string]Isolation
	// Lead names an agent started alone, a couple of seconds before the
	// others: it campaigns at a higher term than theirs, so it is elected
	// (the caller checks).
	Lead string
	// Env adds KEY=value pairs to the named agents' environment, kept
	// across restarts: the fault knobs (TURNOUT_FAULT_CLOCK_OFFSET).
	Env map[string][]string
}

// Isolation is what an agent in a network namespace may reach.
type Isolation struct {
	Reach     []int // host loopback ports it reaches: clusters, gateway admins
	Blackhole []int // ports that accept its connections and never answer
}

// StartAgents starts the agents and waits until every one of them answers
// GET /healthz (the group has a leader).
func (b *Bed) StartAgents(ctx context.Context, cfg AgentsConfig) *Agents {
	b.T.Helper()
	if cfg.N == 0 {
		cfg.N = 3
	}
	as := &Agents{Policy: cfg.Policy, GatewayConfig: cfg.GatewayConfig, SignalFile: cfg.SignalFile, bed: b}
	var peers []string
	for i := 1; i <= cfg.N; i++ {
		a := &Agent{
			ID:       "a" + strconv.Itoa(i),
			RaftAddr: loopback(FreePorts(b.T, 1)),
			HTTPAddr: loopback(FreePorts(b.T, 1)),
			bed:      b,
		}
		a.DataDir = b.Path("agent-"+a.ID, "data")
		peers = append(peers, a.ID+"="+a.RaftAddr)
		as.List = append(as.List, a)
	}
	for _, a := range as.List {
		a.args = []string{"agent", "--id", a.ID, "--policy", cfg.Policy, "--raft", a.RaftAddr,
			"--peers", strings.Join(peers, ","), "--data-dir", a.DataDir, "--bootstrap", "--http", a.HTTPAddr,
			"--gateway-config", cfg.GatewayConfig, "--signal-file", cfg.SignalFile, "--log-format", "json"}
		a.env = cfg.Env[a.ID]
		iso, ok := cfg.Isolated[a.ID]
		if !ok {
			continue
		}
		if err := as.isolate(a, iso); err != nil {
			b.T.Fatalf("isolating agent %s: %v", a.ID, err)
		}
	}
	if l := as.Get(cfg.Lead); l != nil {
		if err := l.start(); err != nil {
			b.T.Fatal(err)
		}
		time.Sleep(2 * time.Second)
	}
	for _, a := range as.List {
		if a.ID == cfg.Lead {
			continue
		}
		if err := a.start(); err != nil {
			b.T.Fatal(err)
		}
	}
	for _, a := range as.List {
		if err := a.WaitHealthy(ctx, 30*time.Second); err != nil {
			b.T.Fatal(err)
		}
	}
	return as
}

// Restart kills every agent, removes their data dirs and starts them again
// as a new Raft group, lead first (see AgentsConfig.Lead); it waits until
// every agent answers.
func (as *Agents) Restart(ctx context.Context, lead string) error {
	for _, a := range as.List {
		a.Kill()
		if err := os.RemoveAll(a.DataDir); err != nil {
			return err
		}
	}
	if l := as.Get(lead); l != nil {
		if err := l.start(); err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
	}
	for _, a := range as.List {
		if a.ID == lead {
			continue
		}
		if err := a.start(); err != nil {
			return err
		}
	}
	for _, a := range as.List {
		if err := a.WaitHealthy(ctx, 30*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// isolate puts a in a namespace of its own that reaches its peers and
// iso.Reach and nothing else.
func (as *Agents) isolate(a *Agent, iso Isolation) error {
	ns, err := as.bed.NewNetns()
	if err != nil {
		return err
	}
	a.Netns = ns
	for _, addr := range []string{a.RaftAddr, a.HTTPAddr} {
		if err := ns.Expose(portOf(addr)); err != nil {
			return err
		}
	}
	for _, p := range as.List {
		if p == a {
			continue
		}
		for _, addr := range []string{p.RaftAddr, p.HTTPAddr} {
			if err := ns.Forward(portOf(addr)); err != nil {
				return err
			}
		}
	}
	for _, port := range iso.Reach {
		if err := ns.Forward(port); err != nil {
			return err
		}
	}
	for _, port := range iso.Blackhole {
		if err := ns.Blackhole(port); err != nil {
			return err
		}
	}
	return nil
}

func portOf(addr string) int {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.Atoi(p)
	return n
}

// Get returns the agent with id.
func (as *Agents) Get(id string) *Agent {
	for _, a := range as.List {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// Leader asks the running agents who leads, and returns the leader and its
// status once one is elected and answers.
func (as *Agents) Leader(ctx context.Context, timeout time.Duration) (*Agent, AgentStatus, error) {
	var leader *Agent
	var st AgentStatus
	err := Poll(timeout, 100*time.Millisecond, func() (bool, error) {
		for _, a := range as.List {
			if !a.Running() {
				continue
			}
			s, err := a.Status(ctx)
			if err != nil || s.Leader == "" {
				continue
			}
			l := as.Get(s.Leader)
			if l == nil || !l.Running() {
				continue
			}
			ls, err := l.Status(ctx)
			if err != nil || ls.Leader != l.ID {
				continue
			}
			leader, st = l, ls
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return nil, st, fmt.Errorf("no agent leads: %w", err)
	}
	return leader, st, nil
}

// Status asks any running agent for its status.
func (as *Agents) Status(ctx context.Context) (AgentStatus, error) {
	var last error = fmt.Errorf("no agent is running")
	for _, a := range as.List {
		if !a.Running() {
			continue
		}
		st, err := a.Status(ctx)
		if err == nil {
			return st, nil
		}
		last = err
	}
	return AgentStatus{}, last
}

// CLI runs the turnout binary with args (status, failover, failback) and
// returns what it printed.
func (as *Agents) CLI(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, Binary(as.bed.T), args...)
	cmd.Dir = as.bed.Dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (a *Agent) start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc != nil && !a.proc.Exited() {
		return fmt.Errorf("agent %s is already running", a.ID)
	}
	a.starts++
	name := "agent-" + a.ID
	if a.starts > 1 {
		name = fmt.Sprintf("agent-%s-%d", a.ID, a.starts)
	}
	var cmd *exec.Cmd
	if a.Netns != nil {
		cmd = a.Netns.Command(Binary(a.bed.T), a.args...)
	} else {
		cmd = exec.Command(Binary(a.bed.T), a.args...)
	}
	if len(a.env) > 0 {
		cmd.Env = append(os.Environ(), a.env...)
	}
	cmd.Dir = a.bed.Dir
	p, err := a.bed.Start(name, cmd)
	if err != nil {
		return err
	}
	a.proc = p
	return nil
}

// Start runs the agent again with its data dir and waits until it answers.
func (a *Agent) Start(ctx context.Context) error {
	if err := a.start(); err != nil {
		return err
	}
	return a.WaitHealthy(ctx, 30*time.Second)
}

// WaitHealthy waits until the agent answers GET /healthz with 200.
func (a *Agent) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	err := Poll(timeout, 100*time.Millisecond, func() (bool, error) {
		a.mu.Lock()
		p := a.proc
		a.mu.Unlock()
		if p.Exited() {
			return false, fmt.Errorf("agent %s exited: %v\n%s", a.ID, p.Err(), p.Tail(20))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.HTTPAddr+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("agent %s never became healthy: %w", a.ID, err)
	}
	return nil
}

// Kill ends the agent with SIGKILL.
func (a *Agent) Kill() {
	a.mu.Lock()
	p := a.proc
	a.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// Signal sends sig to the agent's process (SIGSTOP freezes it, SIGCONT
// thaws it).
func (a *Agent) Signal(sig syscall.Signal) {
	a.mu.Lock()
	p := a.proc
	a.mu.Unlock()
	if p != nil {
		p.Signal(sig)
	}
}

// Running reports whether the agent's process is alive.
func (a *Agent) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc != nil && !a.proc.Exited()
}

// URL is the agent's HTTP API, for `turnout ... --agent`.
func (a *Agent) URL() string { return "http://" + a.HTTPAddr }

// Status is GET /status, with a short timeout.
func (a *Agent) Status(ctx context.Context) (AgentStatus, error) {
	var st AgentStatus
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL()+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("agent %s: GET /status: %d %s", a.ID, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("agent %s: GET /status: %w", a.ID, err)
	}
	return st, nil
}

// Metric sums the samples of a metric on the agent's /metrics whose labels
// include every name="value" in labels (pairs).
func (a *Agent) Metric(ctx context.Context, name string, labels ...string) (float64, error) {
	return metricSum(ctx, a.URL()+"/metrics", name, labels...)
}

// LogLines returns the agent's log lines (of every run) that contain every
// one of words.
func (a *Agent) LogLines(words ...string) []string {
	a.mu.Lock()
	starts := a.starts
	a.mu.Unlock()
	var out []string
	for i := 1; i <= max(starts, 1); i++ {
		name := "agent-" + a.ID
		if i > 1 {
			name = fmt.Sprintf("agent-%s-%d", a.ID, i)
		}
		out = append(out, linesWith(a.bed.Path(name+".out"), words)...)
	}
	return out
}

// AgentStatus is an agent's GET /status, as DESIGN.md specifies it; the
// tests read the JSON contract, not the agent's Go types.
type AgentStatus struct {
	ID           string                 `json:"id"`
	Leader       string                 `json:"leader"`
	Term         uint64                 `json:"term"`
	Routes       []AgentRoute           `json:"routes"`
	Domains      map[string]AgentDomain `json:"domains"`
	Lag          map[string]AgentLag    `json:"lag"`
	LastFailover *AgentFlip             `json:"lastFailover"`
}

// Route returns the status of the route called name.
func (s AgentStatus) Route(name string) (AgentRoute, bool) {
	for _, r := range s.Routes {
		if r.Name == name {
			return r, true
		}
	}
	return AgentRoute{}, false
}

// AgentRoute is one route in an AgentStatus.
type AgentRoute struct {
	Name         string     `json:"name"`
	ActiveDomain string     `json:"activeDomain"`
	Epoch        int32      `json:"epoch"`
	State        string     `json:"state"` // serving, switching, failed
	Flip         *AgentFlip `json:"flip"`
	Decision     string     `json:"decision"`
	Reason       string     `json:"reason"`
}

// AgentFlip is a flip of a route, in progress or finished.
type AgentFlip struct {
	Route         string    `json:"route"`
	From          string    `json:"from"`
	To            string    `json:"to"`
	Epoch         int32     `json:"epoch"`
	Reason        string    `json:"reason"`
	Manual        bool      `json:"manual"`
	Force         bool      `json:"force"`
	StartedAt     time.Time `json:"startedAt"`
	Leader        string    `json:"leader"`
	ConfigWritten bool      `json:"configWritten"`
	GatewaysDone  []string  `json:"gatewaysDone"`
	Step          string    `json:"step"`
	StepAt        time.Time `json:"stepAt"`
	FinishedAt    time.Time `json:"finishedAt"`
	Outcome       string    `json:"outcome"`
	Error         string    `json:"error"`
}

// AgentDomain is a domain's health in an AgentStatus.
type AgentDomain struct {
	Healthy bool                 `json:"healthy"`
	ByAgent map[string]AgentView `json:"byAgent"`
}

// AgentView is one agent's latest probe of a domain.
type AgentView struct {
	Agent               string    `json:"agent"`
	Domain              string    `json:"domain"`
	Healthy             bool      `json:"healthy"`
	ConsecutiveFailures int       `json:"consecutiveFailures"`
	Brokers             int       `json:"brokers"`
	LatencyMillis       int64     `json:"latencyMillis"`
	Error               string    `json:"error"`
	At                  time.Time `json:"at"`
}

// AgentLag is a route's replication lag in an AgentStatus.
type AgentLag struct {
	Route   string    `json:"route"`
	Records int64     `json:"records"`
	Known   bool      `json:"known"`
	At      time.Time `json:"at"`
	Detail  string    `json:"detail"`
}
