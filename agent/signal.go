package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
// watches it; the first to rename it to <file>.processing.<agent> has
// claimed it (a rename is atomic, so on a shared volume exactly one agent
// wins), hands it to the leader, and leaves the outcome in <file>.done or
// <file>.failed. An agent that dies holding a claim takes it up again when
// it restarts.

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

// takeSignal claims the signal file if it is there (or resumes this agent's
// earlier claim) and carries it out. It blocks while the request runs: one
// request at a time is what an operator expects.
func (a *Agent) takeSignal(ctx context.Context) {
	claimed := a.signalFile + ".processing." + a.cfg.ID
	if err := os.Rename(a.signalFile, claimed); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.log.Warn("cannot claim the signal file", "file", a.signalFile, "err", err)
		return
	}
	why, err := untrusted(claimed)
	if errors.Is(err, fs.ErrNotExist) {
		return // no request, or another agent claimed it
	}
	if why != "" {
		a.finishSignal(claimed, nil, "", Outcome{Code: "refused", Message: fmt.Sprintf("%s: %s; not acted on", a.signalFile, why)})
		return
	}
	data, err := readSettled(ctx, claimed)
	if err != nil {
		a.log.Error("cannot read the claimed signal file", "file", claimed, "err", err)
		return
	}
	a.log.Info("signal file claimed", "file", a.signalFile, "request", strings.TrimSpace(string(data)))
	req, err := policy.ParseSignal(data)
	if err != nil {
		a.finishSignal(claimed, data, "", Outcome{Code: "bad-request",
			Message: fmt.Sprintf("%s: %v (write failover, failback, or YAML {action, route, to, force})", a.signalFile, err)})
		return
	}
	sum := sha256.Sum256(data)
	fr := FailoverRequest{Action: string(req.Action), Route: req.Route, To: req.To, Force: req.Force,
		ID: "signal-" + hex.EncodeToString(sum[:8])}
	for {
		o := a.Failover(ctx, fr)
		switch {
		case o.Code == "no-leader" || o.Code == "not-leader":
			a.log.Info("signal file waits for a leader", "reason", o.Message)
			select {
			case <-ctx.Done():
				return // the claim stays; this agent resumes it when it restarts
			case <-time.After(signalRetry):
			}
			continue
		case o.Code == "canceled" || o.Code == "shutdown":
			return
		}
		a.finishSignal(claimed, data, req.ID, o)
		return
	}
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
// another purpose. err is set only when the file cannot be looked at.
func untrusted(path string) (why string, err error) {
	fi, err := os.Lstat(path)
	switch {
	case err != nil:
		return "", err
	case fi.Mode()&fs.ModeSymlink != 0:
		return "it is a symbolic link; write the request into the file itself", nil
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("it is not a regular file (mode %v)", fi.Mode()), nil
	case fi.Mode().Perm()&0o002 != 0:
		return fmt.Sprintf("it is writable by every user (mode %v)", fi.Mode().Perm()), nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Sprintf("it belongs to uid %d, not to the agent's user (uid %d)", st.Uid, os.Getuid()), nil
	}
	return "", nil
}

// signalOutcome is what <file>.done and <file>.failed hold.
type signalOutcome struct {
	ID      string    `yaml:"id,omitempty"` // the request's
	Request string    `yaml:"request"`
	Outcome string    `yaml:"outcome"`
	Code    string    `yaml:"code"`
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
}
