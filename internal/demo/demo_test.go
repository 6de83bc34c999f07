package demo

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// reworded logs every record with another message, as if each log line of
// the agents and the gateway had been reworded.
type reworded struct{ next slog.Handler }

func (h reworded) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h reworded) Handle(ctx context.Context, r slog.Record) error {
	r.Message = "reworded: " + r.Message
	return h.next.Handle(ctx, r)
}

func (h reworded) WithAttrs(attrs []slog.Attr) slog.Handler { return reworded{h.next.WithAttrs(attrs)} }
func (h reworded) WithGroup(name string) slog.Handler       { return reworded{h.next.WithGroup(name)} }

// TestNarrationIgnoresLogText runs the whole story with every log line
// reworded: the screen still tells each step of the failover and the
// failback, because it is told from the components' events.
func TestNarrationIgnoresLogText(t *testing.T) {
	wrapLog = func(h slog.Handler) slog.Handler { return reworded{h} }
	t.Cleanup(func() { wrapLog = nil })
	t.Setenv("TMPDIR", t.TempDir()) // the demo leaves its logs there
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out strings.Builder // written by the screen, read once Run is done
	sum, err := Run(ctx, Options{SeedRate: 300, KillAfter: 4 * time.Second, Out: &out})
	if err != nil {
		t.Fatalf("the demo failed: %v; its output:\n%s", err, out.String())
	}
	log, err := os.ReadFile(sum.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `msg="reworded: `) {
		t.Fatalf("the log lines were not reworded:\n%.2000s", log)
	}
	for _, want := range []string{
		"decision by leader",
		"[flip]",
		"committed the flip kafka1-domain -> kafka2-domain at epoch 1",
		"gateway.yaml now names kafka2-domain at epoch 1",
		"gateway gw-1 restarted (POST /restart) and confirmed on cluster",
		"route switchover-route now on kafka2-domain",
		`claimed the signal file: "failback"`,
		"committed the flip kafka2-domain -> kafka1-domain at epoch 2",
		"route switchover-route now on kafka1-domain",
		"answered in signal.done: done",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("the demo's output:\n%s", out.String())
	}
}
