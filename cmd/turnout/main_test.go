package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/internal/ctlsec"
	"github.com/turnout/turnout/internal/testcerts"
	"github.com/turnout/turnout/internal/testnet"
)

// binary is the turnout command built once for these tests: they run it as
// users do.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "turnout-cmd-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "turnout")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building turnout: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func turnout(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(gatewayYAML("127.0.0.1:9092", "127.0.0.1:9093", 19092, 1, 0)), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(gatewayYAML("127.0.0.1:9092", "127.0.0.1:9093", 19092, 1, 0),
		"bootstrapServerId: plain", "bootstrapServerId: tls", 1)), 0o644)

	badPolicy := filepath.Join(dir, "badpolicy.yaml")
	os.WriteFile(badPolicy, []byte("routes: [{name: r, primary: a, standby: b}]\nprobe:\n  intervl: 1s\n"), 0o644)

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"valid", []string{"validate", good}, 0, "good.yaml: OK\nroute switchover-route: 127.0.0.1:19092 -> kafka1-domain/plain (epoch 0); bootstrap port 19092, 3 broker ports 19093..19095", ""},
		{"bad line", []string{"validate", bad}, 1, "", "bad.yaml:"},
		{"missing file", []string{"validate", filepath.Join(dir, "nope.yaml")}, 1, "", "nope.yaml"},
		{"no file", []string{"validate"}, 2, "", "usage: turnout validate"},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"gateway without config", []string{"gateway"}, 2, "", "--config is required"},
		{"version", []string{"version"}, 0, "turnout ", ""},
		{"shipped config", []string{"validate", "../../configs/gateway.yaml"}, 0, "gateway.yaml: OK", ""},
		{"policy alone", []string{"validate", "../../configs/policy.yaml"}, 0,
			"policy.yaml: OK as a policy on its own; a policy goes second, after the gateway config it governs:\n  turnout validate /var/lib/turnout/gateway.yaml ../../configs/policy.yaml", ""},
		{"bad policy alone", []string{"validate", badPolicy}, 1, "", "badpolicy.yaml:3:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := turnout(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Errorf("turnout %v: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					tc.args, code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
	// The bad file's error names the line of the bad id and what is right.
	_, errOut, _ := turnout(t, "validate", bad)
	if !strings.Contains(errOut, "bad.yaml:29:") || !strings.Contains(errOut, "plain") {
		t.Errorf("validate bad.yaml said %q; want the line (29) and the known id (plain)", errOut)
	}
}

// TestValidateTLS: validate loads every store, says what is wrong with one
// on its line, and warns of ignoreTrust.
func TestValidateTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.MustCA(t, "ca")
	leaf := ca.MustLeaf(t, "gw", "127.0.0.1")
	f := leaf.MustWriteFiles(t, dir, "gw", "changeit")
	base := gatewayYAML("127.0.0.1:9092", "127.0.0.1:9093", 19092, 1, 0)
	write := func(name, password string) string {
		ssl := fmt.Sprintf("      security:\n        ssl:\n          keystore: {type: PKCS12, location: %s, password: {value: %s}}\n", f.PKCS12, password)
		cfg := strings.Replace(base, "      streamingDomain:\n", ssl+"      streamingDomain:\n", 1)
		cfg = strings.Replace(cfg, "            endpoint: \"127.0.0.1:9092\"\n",
			"            endpoint: \"127.0.0.1:9092\"\n            ssl: {ignoreTrust: true}\n", 1)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	out, errOut, code := turnout(t, "validate", write("good.yaml", "changeit"))
	if code != 0 || !strings.Contains(out, "TLS, client certificates none") || !strings.Contains(errOut, "warning: INSECURE: ") ||
		!strings.Contains(errOut, "ignoreTrust") {
		t.Errorf("validate: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = turnout(t, "validate", write("bad.yaml", "wrong"))
	if code != 1 || !strings.Contains(errOut, "bad.yaml:") || !strings.Contains(errOut, "routes[0].security.ssl.keystore.location: keystore "+f.PKCS12+" (PKCS12): wrong password") {
		t.Errorf("validate with a wrong password: exit %d, stderr %q", code, errOut)
	}
}

// TestValidateRelativeSwapFiles: the files auth swap reads are relative to
// the configuration file, like the stores, wherever turnout runs from (the
// test runs it from the package's directory).
func TestValidateRelativeSwapFiles(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"users.conf": `org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-pw";` + "\n",
		"login.conf": `org.apache.kafka.common.security.plain.PlainLoginModule required username="%s" password="%s";` + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(gatewayYAML("127.0.0.1:9092", "127.0.0.1:9093", 19092, 1, 0), "  routes:\n",
		"  secretStores:\n    - {name: files, provider: {type: FILE, config: {path: secrets}}}\n  routes:\n", 1)
	cfg = strings.Replace(cfg, "      streamingDomain:\n", `      security:
        auth: swap
        swapConfig:
          clientAuth: {sasl: {jaasConfig: {file: users.conf}}}
          secretStore: files
          clusterAuth: {sasl: {mechanism: PLAIN, jaasConfig: {file: login.conf}}}
      streamingDomain:
`, 1)
	path := filepath.Join(dir, "swap.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := turnout(t, "validate", path); code != 0 {
		t.Errorf("validate: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestGatewayProcess runs the binary as an operator would: it serves, answers
// its admin API, switches on SIGHUP, and drains and exits 0 on SIGTERM.
func TestGatewayProcess(t *testing.T) {
	var clusters [2]*kfake.Cluster
	for i := range clusters {
		c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, "orders"), kfake.ClusterID(fmt.Sprintf("cluster-%d", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clusters[i] = c
	}
	addrs := func(c *kfake.Cluster) string { return strings.Join(c.ListenAddrs(), ",") }
	port := testnet.FreePorts(t, 4)
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	write := func(domain int, epoch int32) {
		if err := os.WriteFile(path, []byte(gatewayYAML(addrs(clusters[0]), addrs(clusters[1]), port, domain, epoch)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(1, 0)

	cmd := exec.Command(binary, "gateway", "--config", path, "--log-format", "json")
	cmd.Env = append(os.Environ(), "TURNOUT_ADMIN=127.0.0.1:0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	logs := make(chan map[string]any, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				logs <- m
			} else {
				t.Errorf("log line is not JSON: %s", sc.Text())
			}
		}
		close(logs)
	}()
	admin := ""
	for m := range logs {
		if m["msg"] == "gateway ready" {
			admin = "http://" + m["admin"].(string)
			break
		}
	}
	if admin == "" {
		t.Fatal("gateway exited before it was ready")
	}
	go func() {
		for range logs { // keep the pipe drained
		}
	}()

	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	if got := get("/healthz"); got != "ok\n" {
		t.Errorf("healthz = %q", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:"+strconv.Itoa(port)), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, kgo.StringRecord("one")).FirstErr(); err != nil {
		t.Fatalf("produce through the gateway process: %v", err)
	}
	if m := get("/metrics"); !strings.Contains(m, `turnout_gateway_requests_total{api="Produce",route="switchover-route"}`) {
		t.Errorf("metrics lack the produce request counter:\n%s", m)
	}

	write(2, 1)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(get("/status"), `"clusterId": "cluster-2"`) {
		select {
		case <-ctx.Done():
			t.Fatalf("status never showed cluster-2 after SIGHUP: %s", get("/status"))
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("two")).FirstErr(); err != nil {
		t.Fatalf("produce after the SIGHUP switch: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("gateway exited with %v after SIGTERM, want 0", err)
		}
	case <-ctx.Done():
		t.Fatal("gateway did not exit after SIGTERM")
	}
}

func gatewayYAML(cluster1, cluster2 string, port, domain int, epoch int32) string {
	return fmt.Sprintf(`gateway:
  name: test
  streamingDomains:
    - name: kafka1-domain
      type: kafka
      kafkaCluster:
        name: cluster-1
        bootstrapServers:
          - id: plain
            endpoint: %q
        nodeIdRanges:
          - {name: all, start: 0, end: 2}
    - name: kafka2-domain
      type: kafka
      kafkaCluster:
        name: cluster-2
        bootstrapServers:
          - id: plain
            endpoint: %q
        nodeIdRanges:
          - {name: all, start: 0, end: 2}
  routes:
    - name: switchover-route
      endpoint: "127.0.0.1:%d"
      bind: 127.0.0.1
      epoch: %d
      streamingDomain:
        name: kafka%d-domain
        bootstrapServerId: plain
  limits:
    drainTimeout: 2s
`, cluster1, cluster2, port, epoch, domain)
}

// proc is a turnout process started by a test.
type proc struct {
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan error
}

// lockedBuffer is written by the child's output copier while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startTurnout(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), logs: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("turnout %s:\n%s", strings.Join(args, " "), p.logs.String())
		}
	})
	return p
}

// kill kills the process with SIGKILL and waits for it.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	err := <-p.done
	p.done <- err // for the cleanup
}

// stop sends SIGTERM and wants a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM", p.cmd.Args[1], err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not exit after SIGTERM", p.cmd.Args[1])
	}
}

// TestAgentProcesses runs the agents as operators do: three processes of the
// binary and a gateway; one agent is killed and restarted from its data
// dir; a failover through an agent's API and a failback through the signal
// file, each waited for by the CLI; then everything stops on SIGTERM.
func TestAgentProcesses(t *testing.T) {
	var clusters [2]*kfake.Cluster
	for i := range clusters {
		c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, "orders"), kfake.ClusterID(fmt.Sprintf("cluster-%d", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clusters[i] = c
	}
	dir := t.TempDir()
	// The control plane locked down: the gateway's admin API and the
	// agents' APIs over HTTPS with bearer tokens, Raft over mutual TLS.
	ca := testcerts.MustCA(t, "turnout")
	leaf := ca.MustLeaf(t, "control", "127.0.0.1")
	certs := leaf.MustWriteFiles(t, dir, "control", "unused")
	gwToken, agentToken := filepath.Join(dir, "gw-token"), filepath.Join(dir, "agent-token")
	os.WriteFile(gwToken, []byte("gateway-secret\n"), 0o600)
	os.WriteFile(agentToken, []byte("agent-secret\n"), 0o600)
	hc, err := ctlsec.NewClient("", certs.CA) // reads need no token
	if err != nil {
		t.Fatal(err)
	}
	hc.Timeout = 2 * time.Second

	gwPath := filepath.Join(dir, "gateway.yaml")
	port := testnet.FreePorts(t, 4)
	os.WriteFile(gwPath, []byte(gatewayYAML(strings.Join(clusters[0].ListenAddrs(), ","), strings.Join(clusters[1].ListenAddrs(), ","), port, 1, 0)+
		fmt.Sprintf("  admin:\n    tokenFile: %s\n    tls: {certFile: %s, keyFile: %s}\n", gwToken, certs.Chain, certs.Key)), 0o644)
	admin := "127.0.0.1:" + strconv.Itoa(testnet.FreePorts(t, 1))
	gw := startTurnout(t, "gateway", "--config", gwPath, "--admin", admin)

	signalFile := filepath.Join(dir, "signal")
	polPath := filepath.Join(dir, "policy.yaml")
	os.WriteFile(polPath, []byte(fmt.Sprintf(`routes:
  - {name: switchover-route, primary: kafka1-domain, standby: kafka2-domain}
probe: {interval: 300ms, timeout: 500ms}
replication: {mode: none}
gateways:
  - {name: gw-1, admin: "https://%s", tokenFile: %s, caFile: %s}
gatewayConfig: %s
signalFile: %s
`, admin, gwToken, certs.CA, gwPath, signalFile)), 0o644)
	if out, errOut, code := turnout(t, "validate", gwPath, polPath); code != 0 {
		t.Fatalf("validate: %s %s", out, errOut)
	}

	ids := []string{"a1", "a2", "a3"}
	raft, httpAddr := map[string]string{}, map[string]string{}
	var peers []string
	for _, id := range ids {
		raft[id] = "127.0.0.1:" + strconv.Itoa(testnet.FreePorts(t, 1))
		httpAddr[id] = "127.0.0.1:" + strconv.Itoa(testnet.FreePorts(t, 1))
		peers = append(peers, id+"="+raft[id])
	}
	agents := map[string]*proc{}
	start := func(id string) {
		agents[id] = startTurnout(t, "agent", "--id", id, "--policy", polPath, "--raft", raft[id],
			"--peers", strings.Join(peers, ","), "--data-dir", filepath.Join(dir, id), "--bootstrap", "--http", httpAddr[id],
			"--token-file", agentToken, "--ca-file", certs.CA, "--http-cert", certs.Chain, "--http-key", certs.Key,
			"--raft-cert", certs.Chain, "--raft-key", certs.Key, "--raft-ca", certs.CA)
	}
	for _, id := range ids {
		start(id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	status := func(id string) (agentStatus, bool) {
		resp, err := hc.Get("https://" + httpAddr[id] + "/status")
		if err != nil {
			return agentStatus{}, false
		}
		defer resp.Body.Close()
		var st agentStatus
		return st, json.NewDecoder(resp.Body).Decode(&st) == nil
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting until %s", what)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	var leader string
	waitUntil("the agents elect a leader and see both domains", func() bool {
		st, ok := status("a1")
		leader = st.Leader
		return ok && leader != "" && len(st.Routes) == 1 && len(st.Domains["kafka2-domain"].ByAgent) == 3
	})

	out, errOut, code := turnout(t, "status", "--agent", "https://"+httpAddr["a2"], "--ca-file", certs.CA)
	if code != 0 || !strings.Contains(out, "Leader: "+leader) || !strings.Contains(out, "switchover-route") ||
		!strings.Contains(out, "kafka1-domain") || !strings.Contains(out, "healthy") {
		t.Errorf("turnout status: exit %d\n%s%s", code, out, errOut)
	}

	// Kill -9 a follower and start it again from its data dir.
	var follower string
	for _, id := range ids {
		if id != leader {
			follower = id
			break
		}
	}
	agents[follower].kill()
	before, _ := status(leader)
	start(follower)
	waitUntil("the restarted agent rejoins and reports again", func() bool {
		st, ok := status(follower)
		return ok && st.Leader != "" && st.Term >= before.Term &&
			time.Since(st.Domains["kafka1-domain"].ByAgent[follower].At) < time.Second
	})
	if logs := agents[follower].logs.String(); !strings.Contains(logs, "bootstrapped=false") {
		t.Errorf("the restarted agent did not rejoin from its data dir:\n%s", logs)
	}

	// State-changing calls without the token are refused, and change
	// nothing: the CLI's, and a restart asked of the gateway directly.
	out, errOut, code = turnout(t, "failover", "--agent", "https://"+httpAddr[follower], "--ca-file", certs.CA, "--to", "kafka2-domain")
	if code != 1 || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "set --token-file (or TURNOUT_TOKEN_FILE)") {
		t.Errorf("turnout failover without a token: exit %d\n%s%s", code, out, errOut)
	}
	resp, err := hc.Post("https://"+admin+"/restart", "application/json", strings.NewReader(`{"routes":[{"name":"switchover-route","domain":"kafka2-domain","epoch":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /restart without a token: %d", resp.StatusCode)
	}
	if st, _ := status(leader); st.Routes[0].ActiveDomain != "kafka1-domain" || st.Routes[0].Epoch != 0 {
		t.Fatalf("refused calls moved the route: %+v", st.Routes[0])
	}

	// A planned failover through an agent's API: the CLI waits for it.
	out, errOut, code = turnout(t, "failover", "--agent", "https://"+httpAddr[follower], "--ca-file", certs.CA, "--token-file", agentToken, "--to", "kafka2-domain")
	if code != 0 || !strings.Contains(out, "DONE") {
		t.Fatalf("turnout failover: exit %d\n%s%s", code, out, errOut)
	}
	resp, err = hc.Get("https://" + admin + "/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"clusterId": "cluster-2"`) {
		t.Errorf("gateway status after failover: %s", body)
	}

	// A failback through the signal file.
	out, errOut, code = turnout(t, "failback", "--signal-file", signalFile)
	if code != 0 || !strings.Contains(out, "DONE") {
		t.Fatalf("turnout failback: exit %d\n%s%s", code, out, errOut)
	}
	st, _ := status(leader)
	if st.Routes[0].ActiveDomain != "kafka1-domain" || st.Routes[0].Epoch != 2 {
		t.Errorf("after failback the route is %+v", st.Routes[0])
	}

	for _, id := range ids {
		agents[id].stop(t)
	}
	gw.stop(t)
}

// TestControlPlaneRefusals: a gateway whose admin API would listen beyond
// loopback without a token does not start, and an agent given only part of
// the Raft TLS flags says which are needed.
func TestControlPlaneRefusals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	os.WriteFile(path, []byte(gatewayYAML("127.0.0.1:9092", "127.0.0.1:9093", testnet.FreePorts(t, 4), 1, 0)), 0o644)
	_, errOut, code := turnout(t, "gateway", "--config", path, "--admin", "0.0.0.0:0")
	if code != 1 || !strings.Contains(errOut, "admin listener: 0.0.0.0:0 is not a loopback address") || !strings.Contains(errOut, "set admin.tokenFile in "+path) {
		t.Errorf("gateway on 0.0.0.0 without a token: exit %d\n%s", code, errOut)
	}
	_, errOut, code = turnout(t, "agent", "--id", "a1", "--policy", "p.yaml", "--raft", "127.0.0.1:7001", "--peers", "a1=127.0.0.1:7001",
		"--data-dir", t.TempDir(), "--raft-cert", "cert.pem", "--raft-key", "key.pem")
	if code != 2 || !strings.Contains(errOut, "raft TLS needs all of --raft-cert, --raft-key and --raft-ca") {
		t.Errorf("agent with two of the three Raft TLS flags: exit %d\n%s", code, errOut)
	}
}

// agentStatus is the part of GET /status these tests read.
type agentStatus struct {
	Leader string `json:"leader"`
	Term   uint64 `json:"term"`
	Routes []struct {
		ActiveDomain string `json:"activeDomain"`
		Epoch        int32  `json:"epoch"`
	} `json:"routes"`
	Domains map[string]struct {
		ByAgent map[string]struct {
			At time.Time `json:"at"`
		} `json:"byAgent"`
	} `json:"domains"`
}
