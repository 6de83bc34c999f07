package demo

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// logEvent is a component's log record the demo shows on screen.
type logEvent struct {
	Time  time.Time
	Msg   string
	Attrs map[string]slog.Value
}

func (e logEvent) str(key string) string {
	if v, ok := e.Attrs[key]; ok {
		return v.String()
	}
	return ""
}

func (e logEvent) duration(key string) time.Duration {
	if v, ok := e.Attrs[key]; ok && v.Kind() == slog.KindDuration {
		return v.Duration()
	}
	return 0
}

// tap is a slog handler that writes every record to the log file and sends
// the records the screen tells about (the agents' decisions and failover
// steps) to a channel, attributes resolved. It never blocks a component: when
// the channel is full an event is dropped from the screen (never from the
// file).
type tap struct {
	next  slog.Handler
	attrs []slog.Attr
	want  map[string]bool
	out   chan<- logEvent
}

func newTap(next slog.Handler, out chan<- logEvent, messages ...string) *tap {
	want := map[string]bool{}
	for _, m := range messages {
		want[m] = true
	}
	return &tap{next: next, want: want, out: out}
}

func (t *tap) Enabled(ctx context.Context, l slog.Level) bool { return t.next.Enabled(ctx, l) }

func (t *tap) Handle(ctx context.Context, r slog.Record) error {
	if t.want[r.Message] {
		ev := logEvent{Time: r.Time, Msg: r.Message, Attrs: map[string]slog.Value{}}
		for _, a := range t.attrs {
			ev.Attrs[a.Key] = a.Value.Resolve()
		}
		r.Attrs(func(a slog.Attr) bool {
			ev.Attrs[a.Key] = a.Value.Resolve()
			return true
		})
		select {
		case t.out <- ev:
		default:
		}
	}
	return t.next.Handle(ctx, r)
}

func (t *tap) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *t
	c.next = t.next.WithAttrs(attrs)
	c.attrs = append(append([]slog.Attr(nil), t.attrs...), attrs...)
	return &c
}

func (t *tap) WithGroup(name string) slog.Handler {
	// Grouped attributes are not looked at on screen; the file keeps them.
	c := *t
	c.next = t.next.WithGroup(name)
	return &c
}

// kgoLogger writes a franz-go client's log to the demo's log file, so the
// clients' side of a switch (reconnects, retries, rebalances) can be read
// next to the gateway's and the agents'.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelInfo
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	case kgo.LogLevelDebug:
		lv = slog.LevelDebug
	}
	l.log.Log(context.Background(), lv, msg, keyvals...)
}
