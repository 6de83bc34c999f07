package demo

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// screen is the demo's output. Events are lines stamped with the time since
// the clients started. The live status line is printed once a second as a
// line of its own, which reads well in CI logs; on a terminal it is instead
// rewritten in place under the events.
type screen struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	width int // columns of the terminal, 0 if unknown
	start time.Time
	live  string // the live line on a terminal, to redraw after an event
}

func (s *screen) stamp(t time.Time) string {
	if s.start.IsZero() {
		return "[  setup]"
	}
	return fmt.Sprintf("[%6.1fs]", t.Sub(s.start).Seconds())
}

// event prints one timestamped line.
func (s *screen) event(at time.Time, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := s.stamp(at) + " " + fmt.Sprintf(format, args...)
	if s.tty && s.live != "" {
		fmt.Fprintf(s.w, "\r\033[K%s\n%s", line, s.live)
		return
	}
	fmt.Fprintln(s.w, line)
}

// status shows the live line; on a terminal too narrow for it, the short
// form, cut to fit if need be (a wrapped line could not be redrawn).
func (s *screen) status(at time.Time, line, short string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line = s.stamp(at) + " " + line
	if s.tty {
		if s.width > 1 && len([]rune(line)) >= s.width {
			line = s.stamp(at) + " " + short
			if r := []rune(line); len(r) >= s.width {
				line = string(r[:s.width-1])
			}
		}
		s.live = line
		fmt.Fprintf(s.w, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(s.w, line)
}

// println prints lines without a stamp (headers, the summary); on a
// terminal the live line is cleared first and not redrawn.
func (s *screen) println(lines ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tty && s.live != "" {
		fmt.Fprint(s.w, "\r\033[K")
		s.live = ""
	}
	fmt.Fprintln(s.w, strings.Join(lines, "\n"))
}

func (s *screen) printf(format string, args ...any) { s.println(fmt.Sprintf(format, args...)) }

// stopLive ends live-line drawing on a terminal.
func (s *screen) stopLive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tty && s.live != "" {
		fmt.Fprint(s.w, "\r\033[K")
	}
	s.live = ""
}

func seconds(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}
