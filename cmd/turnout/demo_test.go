package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDemo runs `turnout demo --keep` as a newcomer would: the story must
// end with a summary with nothing lost within a minute; then, as the demo
// suggests, the operator's commands run against what it left running
// (status, failover and failback through the policy, an agent's API and the
// signal file); and Ctrl-C ends it with exit 0. In short mode cluster 1 dies
// sooner.
func TestDemo(t *testing.T) {
	args := []string{"demo", "--keep", "--seed-rate", "300"}
	if testing.Short() {
		args = append(args, "--kill-after", "4s")
	}
	start := time.Now()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir()) // the demo leaves its logs there
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb lockedBuffer // written by exec's copier while the test reads it
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var mu sync.Mutex
	var out strings.Builder
	kept, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended) // the demo exited (or closed its output)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "The agents' decisions and flips show up here.") {
				close(kept)
			}
			mu.Unlock()
		}
	}()
	text := func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	select {
	case <-kept:
	case <-ended:
		t.Fatalf("the demo ended before --keep's addresses; stderr %s\noutput:\n%s", errb.String(), text())
	case <-time.After(90 * time.Second):
		t.Fatalf("the demo did not reach --keep's addresses within 90s; stderr %s\noutput:\n%s", errb.String(), text())
	}
	took := time.Since(start)
	t.Logf("the demo's story took %v; its output:\n%s", took.Round(100*time.Millisecond), text())
	if took > time.Minute {
		t.Errorf("the demo took %v; it must end within a minute", took)
	}
	checkDemoOutput(t, text())

	// What --keep prints, and the commands it suggests.
	find := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(text())
		if m == nil {
			t.Fatalf("the demo's output has no %s", re)
		}
		return m[1]
	}
	agentURL := find(`turnout status --agent (\S+)`)
	signal := find(`(?m)^  signal file\s+(\S+)`)
	policyFile := find(`(?m)^  policy\s+(\S+)`)
	adminURL := find(`(?m)^  gateway admin\s+(\S+)`)
	run := func(want string, args ...string) string {
		t.Helper()
		out, errOut, code := turnout(t, args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("turnout %s: exit %d, output %q %q; want exit 0 and %q", strings.Join(args, " "), code, out, errOut, want)
		}
		return out
	}
	run("ROUTE             ACTIVE         EPOCH  STATE", "status", "--agent", agentURL)
	run(`"activeDomain": "kafka1-domain"`, "status", "--agent", agentURL, "--json")
	run("failover DONE: route switchover-route now serves kafka2-domain (epoch 3)", "failover", "--policy", policyFile)
	run("failback DONE: route switchover-route now serves kafka1-domain (epoch 4)", "failback", "--agent", agentURL)
	// turnout failover --signal-file takes an outcome file up to a second
	// older than its own request for its answer, so the one the --policy
	// request left just now must go first.
	os.Remove(signal + ".done")
	run("failover DONE: route switchover-route now serves kafka2-domain (epoch 5)", "failover", "--signal-file", signal, "--to", "kafka2-domain")
	run("failover DONE: route switchover-route now serves kafka1-domain (epoch 6)", "failover", "--agent", agentURL, "--force")
	resp, err := http.Get(adminURL) // the README's curl -s http://.../status
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"configEpoch": 6`) || !strings.Contains(string(body), `"domain": "kafka1-domain"`) {
		t.Errorf("GET %s: %s; want the route on kafka1-domain at epoch 6", adminURL, body)
	}

	// Ctrl-C stops it all.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after Ctrl-C the demo exited with %v; stderr %s", err, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Error("the demo did not stop within 30s of Ctrl-C")
	}
	if !strings.Contains(text(), "Stopping everything.") {
		t.Error("the demo did not say it was stopping")
	}
	// While kept, it showed the operator's flips as they happened.
	if n := strings.Count(text(), "committed the flip"); n != 6 {
		t.Errorf("the demo showed %d flips; want 2 of its own and the 4 asked for", n)
	}
}

func checkDemoOutput(t *testing.T, text string) {
	t.Helper()
	for _, want := range []string{
		"DEMO-ONLY copier",
		">>> KILL cluster 1",
		"detection: consecutive failed probes of kafka1-domain",
		"decision by leader",
		"[flip]",
		"committed the flip kafka1-domain -> kafka2-domain at epoch 1",
		"gateway.yaml now names kafka2-domain at epoch 1",
		"gateway gw-1 restarted",
		"producer: first record acknowledged on kafka2-domain",
		"consumer: reading again on kafka2-domain",
		"cluster 1 is back",
		"failback requested",
		"answered in signal.done",
		"Summary",
		"  PASS: ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	// A crash loses what the cluster took and had not replicated: the
	// demo counts it apart, and anything else lost is a failure.
	if m := regexp.MustCompile(`(?m)^\s+lost\s+(\d+)(.*)`).FindStringSubmatch(text); m == nil || m[1] != "0" && !strings.Contains(m[2], "just before the kill, not yet copied") {
		t.Errorf("summary lost line: %v, want 0 or only records not yet replicated at the kill", m)
	}
	m := regexp.MustCompile(`(?m)^\s+records produced\s+(\d+), acknowledged (\d+), failed (\d+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no records line in the summary")
	}
	acked, _ := strconv.Atoi(m[2])
	if acked < 1500 || m[3] != "0" {
		t.Errorf("summary: %s; want over 1500 acknowledged and none failed", m[0])
	}
	if !regexp.MustCompile(`(?m)^\s+RTO\s+\d`).MatchString(text) {
		t.Error("no RTO in the summary")
	}
	// Plain lines for a log, not a terminal's cursor moves.
	if strings.Contains(text, "\r") || strings.Contains(text, "\033[") {
		t.Error("the demo drew on a terminal though its output is not one")
	}
}

func TestDemoFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"demo", "--seed-rate", "0"}, "--seed-rate 0"},
		{[]string{"demo", "--kill-after", "10ms"}, "--kill-after 10ms"},
		{[]string{"demo", "extra"}, `unexpected argument "extra"`},
		{[]string{"demo", "--nope"}, "flag provided but not defined: -nope"},
	} {
		_, stderr, code := turnout(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.err) || !strings.Contains(stderr, "usage: turnout demo") {
			t.Errorf("turnout %s: exit %d, stderr %q; want 2 and %q with the usage", strings.Join(tc.args, " "), code, stderr, tc.err)
		}
	}
}
