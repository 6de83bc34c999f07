package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/turnout/turnout/internal/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	rate := fs.Int("seed-rate", 200, "records per second the demo's producer writes")
	keep := fs.Bool("keep", false, "after the summary, leave the clusters, gateway and agents running and print their addresses, until Ctrl-C")
	killAfter := fs.Duration("kill-after", 10*time.Second, "when to kill cluster 1, after the clients start")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *rate <= 0 || *rate > 100000 {
		return fmt.Errorf("%w: --seed-rate %d: want 1..100000 records per second", errUsage, *rate)
	}
	if *killAfter < time.Second {
		return fmt.Errorf("%w: --kill-after %v: want at least 1s, so the clients are running first", errUsage, *killAfter)
	}
	_, err := demo.Run(ctx, demo.Options{SeedRate: *rate, KillAfter: *killAfter, Keep: *keep, Out: stdout, Terminal: isTerminal(stdout)})
	return err
}

// isTerminal reports whether w is a character device (a terminal), where
// the demo may redraw its live line in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
