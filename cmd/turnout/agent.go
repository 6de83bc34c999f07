package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/turnout/turnout/agent"
	"github.com/turnout/turnout/consensus"
	"github.com/turnout/turnout/internal/ctlsec"
	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/config"
)

func runAgent(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("agent", stderr)
	id := fs.String("id", "", "this agent's id, one of --peers")
	policyFile := fs.String("policy", "", "policy file (the same on every agent)")
	raft := fs.String("raft", "", "Raft address to listen on, host:port")
	peers := fs.String("peers", "", "every agent's Raft address: a1=host:port,a2=host:port,a3=host:port")
	dataDir := fs.String("data-dir", "", "folder for the Raft log and snapshots")
	bootstrap := fs.Bool("bootstrap", false, "form a new Raft group from --peers if --data-dir is empty; only when the group first forms: "+
		"without it an agent with an empty --data-dir waits for the group's leader to send it the state")
	httpAddr := fs.String("http", "127.0.0.1:8081", "HTTP API address")
	advertise := fs.String("advertise-http", "", "HTTP address the other agents reach this one at (default: --http, or the --raft host with the --http port when --http listens on all interfaces)")
	gwConfig := fs.String("gateway-config", "", "gateway config file (overrides the policy's gatewayConfig)")
	signalFile := fs.String("signal-file", "", "signal file (overrides the policy's signalFile)")
	tokenFile := fs.String("token-file", "", "file holding the bearer token /failover and /v1/apply need, the same on every agent; required when --http is not a loopback address")
	caFile := fs.String("ca-file", "", "PEM CA to trust for the other agents' HTTPS (default: the system's)")
	httpCert := fs.String("http-cert", "", "PEM certificate (chain) to serve the HTTP API over HTTPS, with --http-key")
	httpKey := fs.String("http-key", "", "PEM key of --http-cert")
	raftCert := fs.String("raft-cert", "", "PEM certificate for mutual TLS between agents, with --raft-key and --raft-ca")
	raftKey := fs.String("raft-key", "", "PEM key of --raft-cert")
	raftCA := fs.String("raft-ca", "", "PEM CA that signed every agent's --raft-cert; other agents are refused")
	newLogger := logFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	raftTLS, err := ctlsec.RaftTLS(*raftCert, *raftKey, *raftCA)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	for name, v := range map[string]string{"id": *id, "policy": *policyFile, "raft": *raft, "peers": *peers, "data-dir": *dataDir} {
		if v == "" {
			return fmt.Errorf("%w: --%s is required", errUsage, name)
		}
	}
	peerMap, err := consensus.ParsePeers(*peers)
	if err != nil {
		return fmt.Errorf("%w: --peers: %v", errUsage, err)
	}
	if addr, ok := peerMap[*id]; !ok {
		return fmt.Errorf("%w: --id %s is not in --peers", errUsage, *id)
	} else if addr != *raft {
		return fmt.Errorf("%w: --raft %s differs from this agent's address in --peers (%s)", errUsage, *raft, addr)
	}
	log, err := newLogger(stderr)
	if err != nil {
		return err
	}
	var skew time.Duration
	if v := os.Getenv("TURNOUT_FAULT_CLOCK_OFFSET"); v != "" {
		if skew, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("%w: TURNOUT_FAULT_CLOCK_OFFSET: %v", errUsage, err)
		}
		log.Warn("FAULT INJECTION: this agent dates the reports it hands the leader by a clock set off the real one", "offset", skew)
	}
	a, err := agent.New(agent.Config{
		ID: *id, PolicyFile: *policyFile, RaftAddr: *raft, Peers: peerMap, DataDir: *dataDir, Bootstrap: *bootstrap, HTTPAddr: *httpAddr, AdvertiseHTTP: *advertise,
		GatewayConfig: *gwConfig, SignalFile: *signalFile, Logger: log,
		TokenFile: *tokenFile, CAFile: *caFile, HTTPCertFile: *httpCert, HTTPKeyFile: *httpKey, RaftTLS: raftTLS,
		FaultClockOffset: skew,
	})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	agentURL := fs.String("agent", "http://127.0.0.1:8081", "an agent's HTTP address")
	asJSON := fs.Bool("json", false, "print the agent's JSON status as it is")
	newClient := clientFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	client, err := newClient()
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL(*agentURL), "/")+"/status", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("asking the agent at %s: %w", *agentURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var st agent.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("%s did not answer with an agent status: %w", *agentURL, err)
	}
	printStatus(stdout, st, time.Now())
	return nil
}

// printStatus is the summary for a person: the route first, then why.
func printStatus(w io.Writer, st agent.Status, now time.Time) {
	leader := st.Leader
	if leader == "" {
		leader = "NONE (no quorum of agents?)"
	}
	fmt.Fprintf(w, "Asked agent %s. Leader: %s, term %d.\n\n", st.ID, leader, st.Term)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tACTIVE\tEPOCH\tSTATE\tPOLICY SAYS")
	for _, r := range st.Routes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s: %s\n", r.Name, r.ActiveDomain, r.Epoch, strings.ToUpper(r.State), r.Decision, r.Reason)
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tQUORUM SAYS\tAGENT VIEWS")
	for _, name := range sorted(st.Domain) {
		d := st.Domain[name]
		health := "DOWN"
		if d.Healthy {
			health = "healthy"
		}
		var views []string
		for _, id := range sorted(d.ByAgent) {
			views = append(views, describeView(d.ByAgent[id], now))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, health, strings.Join(views, "; "))
	}
	tw.Flush()

	for _, route := range sorted(st.Lag) {
		l := st.Lag[route]
		if !l.Known {
			fmt.Fprintf(w, "\nLag %s: unknown\n", route)
			continue
		}
		fmt.Fprintf(w, "\nLag %s: %d records, measured %s ago (%s)\n", route, l.Records, now.Sub(l.At).Round(time.Second), l.Detail)
	}
	if f := st.LastFailover; f != nil {
		how := "automatic"
		if f.Manual {
			how = "manual"
			if f.Force {
				how = "manual, forced"
			}
			if f.RequestID != "" {
				how += ", request " + f.RequestID
			}
		}
		outcome := "IN PROGRESS at step " + f.Step
		if !f.FinishedAt.IsZero() {
			outcome = fmt.Sprintf("%s in %v", strings.ToUpper(f.Outcome), f.FinishedAt.Sub(f.StartedAt).Round(time.Millisecond))
		}
		fmt.Fprintf(w, "\nLast failover: %s %s -> %s (epoch %d, %s) at %s by %s: %s.\n  Why: %s\n",
			f.Route, f.From, f.To, f.Epoch, how, f.StartedAt.Local().Format(time.DateTime), f.Leader, outcome, f.Reason)
		if f.Error != "" {
			fmt.Fprintf(w, "  Error: %s\n", f.Error)
		}
		if len(f.GatewaysDone) > 0 {
			fmt.Fprintf(w, "  Gateways on the new cluster: %s\n", strings.Join(f.GatewaysDone, ", "))
		}
	}
}

func describeView(v policy.View, now time.Time) string {
	age := now.Sub(v.At).Round(time.Second)
	if v.Healthy {
		return fmt.Sprintf("%s ok (%d brokers, %dms, %s ago)", v.Agent, v.Brokers, v.LatencyMillis, age)
	}
	return fmt.Sprintf("%s FAILING x%d (%s, %s ago)", v.Agent, v.ConsecutiveFailures, v.Error, age)
}

func sorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func baseURL(s string) string {
	if strings.Contains(s, "://") {
		return s
	}
	return "http://" + s
}

func runFailover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return manual(ctx, "failover", args, stdout, stderr)
}

func runFailback(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return manual(ctx, "failback", args, stdout, stderr)
}

// manual asks for a failover or failback, through an agent's API or the
// signal file, and waits for the outcome.
func manual(ctx context.Context, action string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags(action, stderr)
	route := fs.String("route", "", "route to switch (default: the only route)")
	to := fs.String("to", "", "domain to switch to (failover only; default: the route's other domain)")
	force := fs.Bool("force", false, "skip the health and replication-lag checks")
	agentURL := fs.String("agent", "", "ask this agent's HTTP API instead of writing the signal file")
	signalFile := fs.String("signal-file", "", "signal file to write (default: the policy's signalFile)")
	policyFile := fs.String("policy", "", "policy file, to find the signal file")
	wait := fs.Duration("wait", 15*time.Minute, "how long to wait for the outcome")
	id := fs.String("id", "", "the request's id (default: a new one); give an earlier request's id to send it again: it switches the route at most once")
	newClient := clientFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if action == "failback" && *to != "" {
		return fmt.Errorf("%w: failback always goes to the route's primary; --to is for failover", errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	req := agent.FailoverRequest{Action: action, Route: *route, To: *to, Force: *force, ID: cmp.Or(*id, agent.NewRequestID())}
	var o agent.Outcome
	if *agentURL != "" {
		client, err := newClient()
		if err != nil {
			return err
		}
		url := strings.TrimRight(baseURL(*agentURL), "/") + "/failover"
		if o, err = askAgent(ctx, client, url, req, stdout); err != nil {
			return err
		}
	} else {
		path := *signalFile
		if path == "" && *policyFile != "" {
			pol, err := policy.Load(*policyFile)
			if err != nil {
				return err
			}
			path = pol.SignalFile
		}
		if path == "" {
			return fmt.Errorf("%w: name the signal file with --signal-file or --policy, or an agent with --agent", errUsage)
		}
		var err error
		if o, err = writeSignal(ctx, path, req, stdout); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%s %s: %s\n", action, strings.ToUpper(string(o.Code)), o.Message)
	switch {
	case o.Code.Retry():
		return fmt.Errorf("%s: no final outcome yet; see turnout status, or send it again with --id %s", action, req.ID)
	case !o.OK:
		return fmt.Errorf("%s was not carried out (request %s)", action, req.ID)
	}
	return nil
}

// askRetries bounds how often askAgent sends a request again while the
// agents change leader; askRetryEvery spaces the tries.
const (
	askRetries    = 30
	askRetryEvery = time.Second
)

// askAgent posts a request and, while the answer is not final (the leader
// changed, or lost the leadership during the switch), sends it again
// under the same id, so that it switches the route at most once.
func askAgent(ctx context.Context, client *http.Client, url string, req agent.FailoverRequest, stdout io.Writer) (agent.Outcome, error) {
	for try := 1; ; try++ {
		var o agent.Outcome
		if err := postOutcome(ctx, client, url, req, &o); err != nil {
			return o, fmt.Errorf("%w; the request's id is %s, to send it again with --id", err, req.ID)
		}
		if !o.Code.Retry() || try == askRetries {
			return o, nil
		}
		// Carried on as the agents pinned it: a failover away from the
		// domain active when it was first received.
		req.To = cmp.Or(req.To, o.To)
		fmt.Fprintf(stdout, "%s (%s); asking again with the same id %s\n", o.Message, o.Code, req.ID)
		select {
		case <-ctx.Done():
			return o, nil
		case <-time.After(askRetryEvery):
		}
	}
}

// clientFlags adds --token-file and --ca-file, for asking an agent, and
// returns a constructor of the client they describe.
func clientFlags(fs *flag.FlagSet) func() (*http.Client, error) {
	tokenFile := fs.String("token-file", "", "file holding the agents' bearer token (their --token-file), for --agent")
	caFile := fs.String("ca-file", "", "PEM CA to trust for an https:// --agent (default: the system's)")
	return func() (*http.Client, error) { return ctlsec.NewClient(*tokenFile, *caFile) }
}

// tokenHint is what to do when an agent answers 401.
const tokenHint = "set --token-file (or TURNOUT_TOKEN_FILE) to the agents' token file"

func postOutcome(ctx context.Context, client *http.Client, url string, req agent.FailoverRequest, o *agent.Outcome) error {
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return fmt.Errorf("asking %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", url, err)
	}
	if err := ctlsec.Unauthorized(resp, body, tokenHint); err != nil {
		return err
	}
	if err := json.Unmarshal(body, o); err != nil {
		return fmt.Errorf("%s answered %d, not an outcome: %w", url, resp.StatusCode, err)
	}
	return nil
}

// writeSignal writes the request to the signal file and waits for an agent to
// answer it in <file>.done or <file>.failed.
func writeSignal(ctx context.Context, path string, req agent.FailoverRequest, stdout io.Writer) (agent.Outcome, error) {
	data, err := yaml.Marshal(map[string]any{"action": req.Action, "route": req.Route, "to": req.To, "force": req.Force, "id": req.ID})
	if err != nil {
		return agent.Outcome{}, err
	}
	if err := config.WriteFileAtomic(path, data); err != nil {
		return agent.Outcome{}, fmt.Errorf("writing the signal file: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s; waiting for the agents (up to the --wait limit)...\n", path)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, suffix := range []string{".done", ".failed"} {
			out, err := os.ReadFile(path + suffix)
			if err != nil {
				continue
			}
			var o struct {
				ID      string     `yaml:"id"`
				Code    agent.Code `yaml:"code"`
				Message string     `yaml:"message"`
			}
			if yaml.Unmarshal(out, &o) != nil || o.ID != req.ID {
				continue // an earlier request's answer, or one being written
			}
			return agent.Outcome{OK: suffix == ".done", Code: o.Code, Message: o.Message}, nil
		}
		select {
		case <-ctx.Done():
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				return agent.Outcome{}, fmt.Errorf("no agent took %s in time: are the agents running and watching it?", path)
			}
			return agent.Outcome{}, fmt.Errorf("an agent took %s but did not answer in time; see `turnout status`", path)
		case <-tick.C:
		}
	}
}
