package agent

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"gopkg.in/yaml.v3"

	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/config"
)

// A signal file asks the agents for a failover or a failback. Every agent
// watches it; the first to rename it to <file>.processing.<agent>.<claim>
// has claimed it (a rename is atomic, so on a shared volume exactly one
// agent wins), hands it to the leader, and leaves the outcome in
// <file>.done or <file>.failed. Each file written is one request, under the
// id it names or else one made from the claim, so that the same words
// written twice are two requests, and a claim taken up again is the same
// one. An agent that dies holding a claim takes it up again when it
// restarts; if that is more than maxManualWait later, only to answer it
// from the replicated state, as the operator has likely moved on.

// signalRetry is how often a claimed request is retried while the agents
// have no leader, and how often the file is looked for in case an event was
// missed.
const signalRetry = 2 * time.Second

func (a *Agent) watchSignal(ctx context.Context) error {
	dir := filepath.Dir(a.signalFile)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", dir, err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watching the signal file's folder %s: %w", dir, err)
	}
	tick := time.NewTicker(signalRetry)
	defer tick.Stop()
	for {
		a.takeSignal(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case ev := <-w.Events:
			if filepath.Clean(ev.Name) != filepath.Clean(a.signalFile) || !ev.Has(fsnotify.Create|fsnotify.Write) {
				continue
			}
		case err := <-w.Errors:
			a.log.Warn("signal file watch error", "err", err)
		}
	}
}

// takeSignal resumes this agent's earlier claim, or claims the signal file
// if it is there, and carries it out. It blocks while the request runs: one
// request at a time is what an operator expects.
func (a *Agent) takeSignal(ctx context.Context) {
	claimed, claim, age, resumed := a.ownClaim()
	if !resumed {
		claim = NewRequestID()
		claimed = a.claimPrefix() + claim
		if err := os.Rename(a.signalFile, claimed); err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // else no request, or another agent claimed it
				a.log.Warn("cannot claim the signal file", "file", a.signalFile, "err", err)
			}
			return
		}
		// The claim's age counts from now, not from when the file was
		// written.
		now := time.Now()
		if err := os.Chtimes(claimed, now, now); err != nil {
			a.log.Warn("cannot date the signal file's claim", "file", claimed, "err", err)
		}
	}
	if why := untrusted(claimed); why != "" {
		a.finishSignal(claimed, nil, "", Outcome{Code: CodeRefused, Message: fmt.Sprintf("%s: %s; not acted on", a.signalFile, why)})
		return
	}
	data, err := readSettled(ctx, claimed)
	if err != nil {
		a.log.Error("cannot read the claimed signal file", "file", claimed, "err", err)
		return
	}
	a.log.Info("signal file claimed", "file", a.signalFile, "request", strings.TrimSpace(string(data)), "resumed", resumed)
	a.emit(&SignalClaimed{File: a.signalFile, Request: strings.TrimSpace(string(data)), Resumed: resumed})
	req, err := policy.ParseSignal(data)
	if err != nil {
		a.finishSignal(claimed, data, "", Outcome{Code: CodeBadRequest,
			Message: fmt.Sprintf("%s: %v (write failover, failback, or YAML {action, route, to, force})", a.signalFile, err)})
		return
	}
	id := cmp.Or(req.ID, "signal-"+claim)
	if _, flipped := a.node.State().Requests[id]; resumed && age > maxManualWait && !flipped {
		a.finishSignal(claimed, data, id, Outcome{Code: CodeFailed, ID: id, Message: fmt.Sprintf(
			"%s: abandoned claim: agent %s claimed it %v ago and stopped before it was answered, and no switch by request %s is recorded; "+
				"not acted on so long after it was written: write the request again if it still stands",
			a.signalFile, a.cfg.ID, age.Round(time.Second), id)})
		return
	}
	fr := FailoverRequest{Action: string(req.Action), Route: req.Route, To: req.To, Force: req.Force, ID: id}
	if fr.To == "" {
		// Pinned here, and written into the claim, so that the claim taken
		// up again after a restart asks for the same target, not for the
		// other domain of whatever the route serves by then.
		pinned := a.pin(fr.policyRequest())
		fr.Route, fr.To = pinned.Route, pinned.To
		if fr.To != "" {
			if err := a.pinClaim(claimed, fr); err != nil {
				a.log.Warn("cannot write the pinned target into the signal file's claim", "file", claimed, "err", err)
			}
		}
	}
	for {
		o := a.Failover(ctx, fr)
		switch {
		case o.Code.Retry():
			a.log.Info("signal file request sent again", "id", id, "code", string(o.Code), "reason", o.Message)
			if fr.To == "" {
				fr.To = o.To // as the leader pinned it, if it said
			}
			select {
			case <-ctx.Done():
				return // the claim stays; this agent resumes it when it restarts
			case <-time.After(signalRetry):
			}
			continue
		case o.Code == CodeCanceled:
			return
		}
		a.finishSignal(claimed, data, id, o)
		return
	}
}

// pinClaim rewrites a claim as the request it now stands for: the action,
// route and force asked, the id, and the target pinned when it was claimed.
func (a *Agent) pinClaim(claimed string, fr FailoverRequest) error {
	data, err := yaml.Marshal(struct {
		Action string `yaml:"action"`
		Route  string `yaml:"route"`
		To     string `yaml:"to"`
		Force  bool   `yaml:"force"`
		ID     string `yaml:"id"`
	}{string(fr.policyRequest().Action), fr.Route, fr.To, fr.Force, fr.ID})
	if err != nil {
		return err
	}
	return config.WriteFileAtomic(claimed, data)
}

// claimPrefix is the name of this agent's claims but for the claim's id.
func (a *Agent) claimPrefix() string { return a.signalFile + ".processing." + a.cfg.ID + "." }

// ownClaim finds a claim this agent left unanswered, with its claim id and
// age.
func (a *Agent) ownClaim() (path, claim string, age time.Duration, ok bool) {
	entries, err := os.ReadDir(filepath.Dir(a.signalFile))
	if err != nil {
		return "", "", 0, false
	}
	prefix := filepath.Base(a.claimPrefix())
	for _, e := range entries {
		id, mine := strings.CutPrefix(e.Name(), prefix)
		if !mine || id == "" || strings.Contains(id, ".") {
			continue // not a claim of this agent's, but of one whose id begins with it and a dot
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		return filepath.Join(filepath.Dir(a.signalFile), e.Name()), id, time.Since(fi.ModTime()), true
	}
	return "", "", 0, false
}

// readSettled reads a signal file once it has stopped changing. A file
// written in place (echo failover > signal) can be claimed between its
// creation and its write; the writer's write still lands in the claimed
// file, a moment later.
func readSettled(ctx context.Context, path string) ([]byte, error) {
	data, err := readNoFollow(path)
	for tries := 0; err == nil && tries < 20; tries++ {
		select {
		case <-ctx.Done():
			return data, nil
		case <-time.After(25 * time.Millisecond):
		}
		var again []byte
		if again, err = readNoFollow(path); err == nil && bytes.Equal(again, data) && len(data) > 0 {
			return data, nil
		}
		data = again
	}
	return data, err
}

// readNoFollow reads a file, refusing a symbolic link, so that a link put
// in the signal file's place between the checks and the read cannot point
// the agent at a file someone else controls.
func readNoFollow(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// untrusted says why a signal file must not be acted on, or "": a request
// to move production traffic must come from the agent's own user, in a
// regular file, and not from a file anyone could have written. A symbolic
// link is refused whatever it points at, as whoever can make one in the
// signal file's folder could point it at a file the agent's user wrote for
// another purpose.
func untrusted(path string) string {
	fi, err := os.Lstat(path)
	switch {
	case err != nil:
		return err.Error()
	case fi.Mode()&fs.ModeSymlink != 0:
		return "it is a symbolic link; write the request into the file itself"
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("it is not a regular file (mode %v)", fi.Mode())
	case fi.Mode().Perm()&0o002 != 0:
		return fmt.Sprintf("it is writable by every user (mode %v)", fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Sprintf("it belongs to uid %d, not to the agent's user (uid %d)", st.Uid, os.Getuid())
	}
	return ""
}

// signalOutcome is what <file>.done and <file>.failed hold.
type signalOutcome struct {
	ID      string    `yaml:"id,omitempty"` // the request's
	Request string    `yaml:"request"`
	Outcome string    `yaml:"outcome"`
	Code    Code      `yaml:"code"`
	Message string    `yaml:"message"`
	Route   string    `yaml:"route,omitempty"`
	From    string    `yaml:"from,omitempty"`
	To      string    `yaml:"to,omitempty"`
	Epoch   int32     `yaml:"epoch,omitempty"`
	Leader  string    `yaml:"leader,omitempty"`
	Agent   string    `yaml:"agent"`
	At      time.Time `yaml:"at"`
}

func (a *Agent) finishSignal(claimed string, request []byte, id string, o Outcome) {
	out := signalOutcome{
		ID: id, Request: strings.TrimSpace(string(request)), Outcome: "done", Code: o.Code, Message: o.Message,
		Route: o.Route, From: o.From, To: o.To, Epoch: o.Epoch, Leader: o.Leader, Agent: a.cfg.ID, At: time.Now().UTC(),
	}
	suffix := ".done"
	if !o.OK {
		out.Outcome, suffix = "failed", ".failed"
	}
	data, err := yaml.Marshal(out)
	if err == nil {
		err = config.WriteFileAtomic(a.signalFile+suffix, data)
	}
	if err == nil {
		err = os.Remove(claimed)
	}
	if err != nil {
		a.log.Error("cannot record the signal file's outcome", "file", a.signalFile+suffix, "err", err)
		return
	}
	a.log.Info("signal file answered", "file", a.signalFile+suffix, "ok", o.OK, "code", o.Code, "message", o.Message)
	a.emit(&SignalAnswered{File: a.signalFile + suffix, Outcome: o})
}
