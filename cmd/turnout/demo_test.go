package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `turnout demo` as a newcomer would and checks that it ends
// with exit 0 and a summary with nothing lost, in under a minute. In short
// mode cluster 1 dies sooner.
func TestDemo(t *testing.T) {
	args := []string{"demo"}
	if testing.Short() {
		args = append(args, "--kill-after", "4s")
	}
	start := time.Now()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir()) // the demo leaves its logs there
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	took := time.Since(start)
	t.Logf("turnout demo took %v; its output:\n%s", took.Round(100*time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("turnout demo: %v\n%s", err, errb.String())
	}
	if took > time.Minute {
		t.Errorf("the demo took %v; it must end within a minute", took)
	}
	text := out.String()
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
		"PASS: nothing acknowledged was lost",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`(?m)^\s+lost\s+(\d+)`).FindStringSubmatch(text); m == nil || m[1] != "0" {
		t.Errorf("summary lost line: %v, want 0", m)
	}
	m := regexp.MustCompile(`(?m)^\s+records produced\s+(\d+), acknowledged (\d+), failed (\d+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no records line in the summary")
	}
	acked, _ := strconv.Atoi(m[2])
	if acked < 1000 || m[3] != "0" {
		t.Errorf("summary: %s; want over 1000 acknowledged and none failed", m[0])
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
