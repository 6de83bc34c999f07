package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/turnout/turnout/agent"
	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy"
)

// live prints the live line every second.
func (d *demo) live(ctx context.Context) {
	defer close(d.liveDone)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var p0, a0, c0 int64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			d.scr.stopLive()
			return
		case now := <-tick.C:
			p, a, c := d.led.produced.Load(), d.led.acked.Load(), d.led.consumed.Load()
			secs := now.Sub(last).Seconds()
			last = now
			s := d.serving()
			leader := d.leader()
			if leader == "" {
				leader = "none"
			}
			pr, ar, cr := float64(p-p0)/secs, float64(a-a0)/secs, float64(c-c0)/secs
			d.scr.status(now,
				fmt.Sprintf("produced %4.0f/s  acked %4.0f/s  consumed %4.0f/s | route on %s (%s, epoch %d) | Raft leader %s",
					pr, ar, cr, s.Domain, s.ClusterID, s.ConfigEpoch, leader),
				fmt.Sprintf("out %4.0f/s ack %4.0f/s in %4.0f/s | %s @%d | leader %s", pr, ar, cr, s.Domain, s.ConfigEpoch, leader))
			p0, a0, c0 = p, a, c
		}
	}
}

// The printer tells the story from what the components report through
// their observer hooks (agent.Config.OnEvent, proxy.Gateway.Observe) and
// from the demo's own notes, never from their log text: the log file is
// for reading, and its lines can be reworded without changing the screen.

// note is a line of the demo's own.
type note struct {
	at   time.Time
	text string
}

// note queues a line of the demo's own for the printer, which keeps it in
// order with the components' events.
func (d *demo) note(at time.Time, format string, args ...any) {
	d.tell(note{at: at, text: fmt.Sprintf(format, args...)})
}

// tell queues an agent.Event, a proxy.Event or a note for the printer. The
// components call it on their own goroutines, so it never blocks: when the
// printer is far behind the event is left off the screen (the log file has
// the story).
func (d *demo) tell(ev any) {
	select {
	case d.events <- ev:
	default:
		d.log.Warn("screen event dropped", "event", fmt.Sprintf("%+v", ev))
	}
}

// printer shows the events that tell the story.
func (d *demo) printer() {
	defer close(d.printerDone)
	show := func(ev any) {
		if at, line := d.describe(ev); line != "" {
			d.scr.event(at, "%s", line)
		}
	}
	for {
		select {
		case ev := <-d.events:
			show(ev)
		case <-d.quit:
			for {
				select {
				case ev := <-d.events:
					show(ev)
				default:
					return
				}
			}
		}
	}
}

// describe is the screen's line for an event, "" for one not worth a line,
// with the time to stamp it with. It also notes the story's milestones the
// summary and the script wait for.
func (d *demo) describe(ev any) (time.Time, string) {
	switch ev := ev.(type) {
	case note:
		return ev.at, ev.text
	case *proxy.Holding:
		return ev.At, fmt.Sprintf("gateway: %s unreachable; new client connections are held (up to limits.upstreamWait, %s here), not refused",
			ev.Domain, ev.Wait)
	case agent.Event:
		h := ev.Header()
		return h.At, d.describeAgent(h, ev)
	}
	return time.Time{}, ""
}

func (d *demo) describeAgent(h *agent.EventHeader, ev agent.Event) string {
	// During the failover, times are also given from the kill.
	sinceKill := func() string {
		if t := d.killedAt.Load(); t != nil && d.failoverFinished.Load() == nil {
			return ", " + seconds(h.At.Sub(*t)) + " after the kill"
		}
		return ""
	}
	fail := func(msg string) string {
		d.stepErr.CompareAndSwap(nil, &msg)
		return "FAILED " + msg
	}
	switch ev := ev.(type) {
	case *agent.Decided:
		code := ev.Decision.Code
		if code == policy.CodeOK {
			return ""
		}
		if code == policy.CodeFlip {
			t := h.At
			d.flipDecided.Store(&t)
		}
		return fmt.Sprintf("decision by leader %s [%s]: %s%s", h.Agent, code, ev.Decision.Reason, sinceKill())
	case *agent.FlipCommitted:
		took := ""
		if t := d.flipDecided.Load(); t != nil {
			took = " in " + seconds(h.At.Sub(*t))
		}
		return fmt.Sprintf("Raft: %s committed the flip %s -> %s at epoch %d%s", h.Agent, ev.From, ev.To, ev.Epoch, took)
	case *agent.ConfigWritten:
		return fmt.Sprintf("config: %s now names %s at epoch %d (written atomically in %s)",
			filepath.Base(ev.File), ev.Domain, ev.Epoch, seconds(ev.Took))
	case *agent.GatewayServing:
		return fmt.Sprintf("gateway %s restarted (POST /restart) and confirmed on cluster %s by GET /status in %s",
			ev.Gateway, ev.ClusterID, seconds(ev.Took))
	case *agent.FlipDone:
		line := fmt.Sprintf("route %s now on %s: the flip took %s from commit to the last gateway%s",
			ev.Route, ev.To, seconds(ev.Took), sinceKill())
		if d.killedAt.Load() != nil {
			t := h.At
			d.failoverFinished.CompareAndSwap(nil, &t)
		}
		return line
	case *agent.FlipStopped:
		return fail(fmt.Sprintf("failover stopped: %v", ev.Err))
	case *agent.FlipNotStarted:
		return fail(fmt.Sprintf("automatic failover not started: %v", ev.Err))
	case *agent.SignalClaimed:
		return fmt.Sprintf("agent %s claimed the signal file: %q", h.Agent, ev.Request)
	case *agent.SignalAnswered:
		o := ev.Outcome
		if o.OK {
			return fmt.Sprintf("agent %s answered in %s: %s", h.Agent, filepath.Base(ev.File), o.Code)
		}
		return fmt.Sprintf("agent %s answered in %s: %s: %s", h.Agent, filepath.Base(ev.File), o.Code, o.Message)
	}
	return ""
}
