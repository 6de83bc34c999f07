package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

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
	width, tty := terminalWidth(stdout)
	_, err := demo.Run(ctx, demo.Options{SeedRate: *rate, KillAfter: *killAfter, Keep: *keep, Out: stdout, Terminal: tty, Width: width})
	return err
}

// terminalWidth reports whether w is a terminal, where the demo may redraw
// its live line in place, and how many columns it has (0 if unknown).
func terminalWidth(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, false
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, false
	}
	return int(ws.Col), true
}
