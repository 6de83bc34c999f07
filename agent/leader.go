package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/turnout/turnout/consensus"
	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/config"
)

// maxManualWait bounds how long a manual failover waits for replication to
// catch up before it is refused.
const maxManualWait = 10 * time.Minute

// defaultBarrierTimeout bounds confirming the leadership with a Barrier.
const defaultBarrierTimeout = 10 * time.Second

// defaultGatewayRetry is how long after a flip stopped at a gateway the
// leader tries that gateway and the rest again. Until they serve the
// route's new cluster their clients stay on the old one, so the leader
// keeps trying.
const defaultGatewayRetry = 30 * time.Second

// leaderLoop does the leader's work while this agent leads: it registers
// the agent's HTTP address, seeds and resumes routes, then decides on every
// tick and answers manual requests.
func (a *Agent) leaderLoop(ctx context.Context) error {
	tick := time.NewTicker(a.policy.Probe.Interval)
	defer tick.Stop()
	var ledTerm uint64
	var waiting []*manualRequest
	for {
		leading := a.node.IsLeader()
		a.metrics.leader(leading, a.node.Term())
		if leading && a.node.Term() != ledTerm {
			if err := a.takeOver(ctx); err != nil {
				a.log.Warn("taking over as leader failed; retrying", "err", err)
			} else {
				ledTerm = a.node.Term()
			}
		}
		if !leading {
			ledTerm = 0
			for _, r := range waiting {
				a.answer(r, Outcome{Code: CodeNotLeader, Message: "this agent lost the leadership; send the request again with the same id"})
			}
			waiting = nil
		}
		if leading && ledTerm != 0 {
			a.decide(ctx)
			a.retryFailed(ctx)
			waiting = a.retryManual(ctx, waiting)
		}
		select {
		case <-ctx.Done():
			for _, r := range waiting {
				a.answer(r, Outcome{Code: CodeShutdown, Message: "the agent is shutting down; send the request again with the same id"})
			}
			return nil
		case <-tick.C:
		case r := <-a.requests:
			if !a.node.IsLeader() {
				a.answer(r, Outcome{Code: CodeNotLeader, Message: "this agent is not the leader; send the request again with the same id"})
				continue
			}
			r.req = a.pin(r.req)
			waiting = append(waiting, r)
			waiting = a.retryManual(ctx, waiting)
		}
	}
}

// takeOver makes a new leader current: everything committed is applied, the
// agent's HTTP address is known to followers, every policy route exists in
// the state, and a flip a previous leader left unfinished is finished.
func (a *Agent) takeOver(ctx context.Context) error {
	term := a.node.Term()
	if err := a.node.Barrier(ctx); err != nil {
		return err
	}
	if !a.leads(term) {
		// Led again since, in a later term: take over in that one, or the
		// leases would wait for a Barrier of this term for ever.
		return fmt.Errorf("the leadership changed while taking over in Raft term %d", term)
	}
	a.caughtUp.Store(term)
	if err := a.node.Apply(ctx, consensus.RegisterAgent{Agent: consensus.Agent{ID: a.cfg.ID, HTTP: a.advertisedHTTP()}}); err != nil {
		return err
	}
	st := a.node.State()
	for _, r := range a.policy.Routes {
		if _, ok := st.Routes[r.Name]; ok {
			continue
		}
		// A new group learns the route's domain and epoch from the gateway
		// config, so that its first flip carries a newer epoch than the file.
		cfg, err := config.LoadClusters(a.gatewayConfig)
		if err != nil {
			return err
		}
		gr := cfg.Route(r.Name)
		if err := a.node.Apply(ctx, consensus.InitRoute{Route: r.Name, Active: gr.StreamingDomain.Name, Epoch: gr.Epoch}); err != nil {
			return err
		}
	}
	a.log.Info("leading the agents", "term", a.node.Term())
	for _, r := range a.node.State().Routes {
		if f := r.InProgress; f != nil {
			a.log.Warn("resuming a flip the previous leader left unfinished", "route", f.Route, "from", f.From, "to", f.To,
				"epoch", f.Epoch, "config_written", f.ConfigWritten, "gateways_done", f.GatewaysDone)
			a.runFlip(ctx, *f)
		}
	}
	return nil
}

// leads reports whether this agent leads in term.
func (a *Agent) leads(term uint64) bool {
	return a.node.IsLeader() && a.node.Term() == term
}

// leadsCaughtUp reports whether this agent leads in a term in which it has
// completed a Barrier. Until then its state may lack a flip the previous
// leader committed, and a route lease it granted would vouch for the
// epoch that flip left.
func (a *Agent) leadsCaughtUp() bool {
	term := a.node.Term()
	return term == a.caughtUp.Load() && a.leads(term)
}

// confirmLeading checks, with a Barrier that a majority must commit, that
// this agent still leads in term: a leader cut off from the others believes
// it leads until its Raft lease runs out, and another may have taken over.
func (a *Agent) confirmLeading(ctx context.Context, term uint64) error {
	if !a.leads(term) {
		return fmt.Errorf("this agent no longer leads in Raft term %d", term)
	}
	// A Barrier waits for every entry before it to apply: give a busy log
	// the time a gateway gets, not a probe's.
	bctx, cancel := context.WithTimeout(ctx, max(a.policy.Probe.Timeout, defaultBarrierTimeout))
	defer cancel()
	if err := a.node.Barrier(bctx); err != nil {
		return fmt.Errorf("confirming the leadership: %w", err)
	}
	if !a.leads(term) {
		return fmt.Errorf("this agent no longer leads in Raft term %d", term)
	}
	return nil
}

// measureLag records, for each route, how far its other domain is behind
// the active one. Every agent measures and reports it, so that a leader cut
// off from a cluster still decides on a lag the others could measure; the
// replicated state keeps the latest report. A failed measurement keeps the
// last known lag: when the active cluster is gone, what it had not
// replicated is what it had before, for failover.maxLagAge. A lag found
// unknown, from positions the lagger cannot vouch for, is reported.
func (a *Agent) measureLag(ctx context.Context) {
	if a.policy.Replication.Mode == policy.ModeNone {
		return
	}
	st := a.node.State()
	for _, r := range a.policy.Routes {
		rs := st.Routes[r.Name]
		if rs == nil {
			continue
		}
		mctx, cancel := context.WithTimeout(ctx, a.policy.Probe.Timeout)
		lag, err := a.lagger.measure(mctx, r.Name, rs.Active, r.Other(rs.Active))
		cancel()
		switch {
		case errors.Is(err, errPositionsGone):
			// Reported: the unknown lag replaces a known one that rests
			// on the same positions.
			a.log.Debug("replication lag unknown", "route", r.Name, "err", err)
		case err != nil:
			a.log.Debug("replication lag not measured; keeping the last known", "route", r.Name, "err", err)
			continue
		default:
			a.metrics.lag.WithLabelValues(r.Name).Set(float64(lag.Records))
		}
		lag.Agent = a.cfg.ID
		if err := a.apply(ctx, consensus.ReportLag{Lag: lag}); err != nil {
			a.log.Debug("lag not recorded", "route", r.Name, "err", err)
		}
	}
}

// decide applies the policy to every route and starts the flips it calls
// for. Each decision is logged when it changes, with its facts.
func (a *Agent) decide(ctx context.Context) {
	st := a.node.State()
	for _, r := range a.policy.Routes {
		if st.Routes[r.Name] == nil {
			continue
		}
		d := policy.Decide(st.Input(r.Name, time.Now(), len(a.cfg.Peers)), a.policy)
		a.noteDecision(d)
		if d.Flip {
			if err := a.flip(ctx, d, policy.Request{}); err != nil {
				a.log.Error("automatic failover not started", "route", d.Route, "err", err)
				a.emit(&FlipNotStarted{Route: d.Route, Err: err})
			}
		}
	}
}

// decisionReminder is how often an unchanged decision that is not "ok" is
// logged again, so that a blocked failover stays visible in the logs.
const decisionReminder = 30 * time.Second

func (a *Agent) noteDecision(d policy.Decision) {
	a.mu.Lock()
	prev, seen := a.decisions[d.Route]
	same := seen && prev.Code == d.Code && prev.From == d.From && prev.To == d.To
	if same && (d.Code == policy.CodeOK || time.Since(a.decidedAt[d.Route]) < decisionReminder) {
		a.decisions[d.Route] = d
		a.mu.Unlock()
		return
	}
	a.decisions[d.Route] = d
	a.decidedAt[d.Route] = time.Now()
	a.mu.Unlock()
	level := slogLevel(d.Code)
	a.log.Log(context.Background(), level, "decision", "route", d.Route, "code", string(d.Code), "flip", d.Flip,
		"from", d.From, "to", d.To, "reason", d.Reason, "breached_by", d.Breached, "healthy_by", d.Healthy)
	a.emit(&Decided{Decision: d})
}

// retryFailed takes up again, gatewayRetry after they stopped, the flips
// that stopped before every gateway was restarted.
func (a *Agent) retryFailed(ctx context.Context) {
	retry := cmp.Or(a.cfg.GatewayRetry, defaultGatewayRetry)
	st := a.node.State()
	for _, r := range a.policy.Routes {
		rs := st.Routes[r.Name]
		if rs == nil || rs.InProgress != nil || rs.LastFlip == nil || rs.LastFlip.Outcome != consensus.OutcomeFailed ||
			rs.LastFlip.Epoch != rs.Epoch || time.Since(rs.LastFlip.FinishedAt) < retry {
			continue
		}
		if err := a.resumeFlip(ctx, r.Name, rs.Epoch); err != nil {
			a.log.Error("retrying the gateways of a failed flip", "route", r.Name, "epoch", rs.Epoch, "err", err,
				"next_try_in", retry)
		}
	}
}

// resumeFlip commits taking up a failed flip and carries it on from where
// it stopped.
func (a *Agent) resumeFlip(ctx context.Context, route string, epoch int32) error {
	if err := a.node.Apply(ctx, consensus.ResumeFlip{Route: route, Epoch: epoch, At: time.Now(), Leader: a.cfg.ID}); err != nil {
		return &commitError{err}
	}
	f := a.node.State().Routes[route].InProgress
	if f == nil {
		return errors.New("the resumed flip is no longer in progress")
	}
	a.log.Warn("resuming a failed flip: restarting the gateways it did not", "route", route, "to", f.To, "epoch", epoch,
		"gateways_done", f.GatewaysDone)
	return a.runFlip(ctx, *f)
}

// flip commits a flip to Raft and carries it out. The commit is the point of
// no return: its epoch is one more than the route's, so of two leaders that
// race, only one commits, and a stale one can never put the route back.
func (a *Agent) flip(ctx context.Context, d policy.Decision, req policy.Request) error {
	st := a.node.State()
	r := st.Routes[d.Route]
	f := consensus.StartFlip{
		Route: d.Route, From: r.Active, To: d.To, Epoch: r.Epoch + 1, Reason: d.Reason,
		Manual: req.Action != "", Force: req.Force, At: time.Now(), Leader: a.cfg.ID, RequestID: req.ID,
	}
	start := time.Now()
	if err := a.node.Apply(ctx, f); err != nil {
		return &commitError{err}
	}
	a.metrics.step("commit", time.Since(start))
	a.log.Warn("failover committed", "route", f.Route, "from", f.From, "to", f.To, "epoch", f.Epoch,
		"manual", f.Manual, "request", f.RequestID, "force", f.Force, "reason", f.Reason)
	a.emit(&FlipCommitted{Route: f.Route, From: f.From, To: f.To, Epoch: f.Epoch, Manual: f.Manual, Force: f.Force,
		Request: f.RequestID, Reason: f.Reason})
	flip := a.node.State().Routes[d.Route].InProgress
	if flip == nil {
		return errors.New("the committed flip is no longer in progress")
	}
	return a.runFlip(ctx, *flip)
}

// commitError is the error of a flip, or of taking one up again, whose
// command was not committed as far as this agent knows.
type commitError struct{ err error }

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// commitRefused reports whether err, from flip or resumeFlip, says for sure
// that its command was not committed and never will be: the state refused
// it, or this agent did not lead when it was submitted. Any other commit
// error (leadership lost, a timeout, a shutdown) leaves it in doubt: the
// entry may have reached a majority, and the next leader then carries the
// flip out.
func commitRefused(err error) bool {
	var ce *commitError
	var rejected *consensus.Rejected
	return errors.As(err, &ce) && (errors.As(ce.err, &rejected) || errors.Is(ce.err, consensus.ErrNotLeader))
}

// runFlip carries a committed flip through from wherever it stands: write
// the gateway config, fence the gateways still on the old epoch, then
// restart them in the policy's order, each confirmed on the new cluster
// before the next, recording every step.
func (a *Agent) runFlip(ctx context.Context, f consensus.Flip) (err error) {
	// The flip was committed before this call: leases of the old epoch
	// lapse counting from no later than now.
	since := time.Now()
	term := a.node.Term()
	trigger := "automatic"
	switch {
	case f.Step == consensus.StepResumed:
		trigger = "resumed"
	case f.Manual:
		trigger = "manual"
	}
	defer func() {
		outcome := consensus.OutcomeDone
		if err != nil {
			outcome = consensus.OutcomeFailed
		}
		a.metrics.failovers.WithLabelValues(f.Route, outcome, trigger).Inc()
	}()
	record := func(step consensus.RecordStep) error {
		step.Route, step.Epoch, step.At = f.Route, f.Epoch, time.Now()
		return a.node.Apply(ctx, step)
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			// This agent is stopping, not the failover: the next leader
			// resumes it from the steps recorded.
			a.log.Warn("failover left to the next leader", "route", f.Route, "epoch", f.Epoch, "step", f.Step, "err", err)
			return err
		}
		a.log.Error("failover stopped", "route", f.Route, "epoch", f.Epoch, "to", f.To, "err", err)
		a.emit(&FlipStopped{Route: f.Route, To: f.To, Epoch: f.Epoch, Err: err})
		if ferr := a.node.Apply(ctx, consensus.FinishFlip{Route: f.Route, Epoch: f.Epoch, Outcome: consensus.OutcomeFailed,
			Error: err.Error(), At: time.Now()}); ferr != nil {
			a.log.Error("could not record the failed failover", "route", f.Route, "err", ferr)
		}
		return err
	}

	// Only gateways restarted by a command read the leader's file; those
	// with an admin URL are sent the route and write their own. So a
	// failed write stops the flip at the first gateway that needs it.
	var writeErr error
	if !f.ConfigWritten {
		start := time.Now()
		changed, err := config.SwitchRoute(a.gatewayConfig, f.Route, f.To, f.Epoch)
		if err != nil {
			writeErr = fmt.Errorf("the leader could not write %s: %w", a.gatewayConfig, err)
			a.log.Error("gateway config not written: gateways with an admin URL are switched by their restart request; those restarted by a command cannot be",
				"route", f.Route, "domain", f.To, "epoch", f.Epoch, "file", a.gatewayConfig, "err", err)
			if err := record(consensus.RecordStep{Step: "config-not-written"}); err != nil {
				return err
			}
		} else {
			a.metrics.step("config", time.Since(start))
			a.log.Info("gateway config written", "route", f.Route, "domain", f.To, "epoch", f.Epoch,
				"file", a.gatewayConfig, "changed", changed, "took", time.Since(start))
			a.emit(&ConfigWritten{Route: f.Route, Domain: f.To, Epoch: f.Epoch, File: a.gatewayConfig, Changed: changed,
				Took: time.Since(start)})
			if err := record(consensus.RecordStep{Step: "config-written", ConfigWritten: true}); err != nil {
				return err // leadership lost: the next leader resumes
			}
		}
	}
	if err := a.fence(ctx, f, since); err != nil {
		return fail(err)
	}
	target, source := a.prober.clusterID(f.To), a.prober.clusterID(f.From)
	for _, gw := range a.policy.Gateways {
		if slices.Contains(f.GatewaysDone, gw.Name) {
			continue
		}
		if writeErr != nil && gw.Admin == "" {
			return fail(fmt.Errorf("gateway %s is restarted by a command and reads the gateway config, but %w (gateways done: %v; the rest were not restarted)",
				gw.Name, writeErr, f.GatewaysDone))
		}
		// A leader deposed while it fenced counted the lease's lapse from
		// its own start, and its successor may have renewed the old epoch's
		// leases before it saw this flip: only the leader switches.
		if err := a.confirmLeading(ctx, term); err != nil {
			if !a.leads(term) {
				a.log.Warn("failover left to the next leader", "route", f.Route, "epoch", f.Epoch, "gateway", gw.Name, "err", err)
				return err
			}
			// Still leading, but the log is slow: stop the flip here, so
			// that retryFailed takes it up again rather than leaving the
			// fenced gateways holding their producers for the whole term.
			return fail(fmt.Errorf("before gateway %s: %w (gateways done: %v)", gw.Name, err, f.GatewaysDone))
		}
		start := time.Now()
		if err := a.restartGateway(ctx, gw, f.Route, f.To, f.Epoch, target, source); err != nil {
			return fail(fmt.Errorf("gateway %s: %w (gateways done: %v; the rest were not restarted)", gw.Name, err, f.GatewaysDone))
		}
		a.metrics.step("gateway", time.Since(start))
		a.log.Info("gateway serving the new cluster", "route", f.Route, "gateway", gw.Name, "cluster_id", target, "took", time.Since(start))
		a.emit(&GatewayServing{Route: f.Route, Gateway: gw.Name, ClusterID: target, Took: time.Since(start)})
		f.GatewaysDone = append(f.GatewaysDone, gw.Name)
		if err := record(consensus.RecordStep{Step: "gateway-restarted", GatewayDone: gw.Name}); err != nil {
			return err
		}
	}
	if err := a.node.Apply(ctx, consensus.FinishFlip{Route: f.Route, Epoch: f.Epoch, Outcome: consensus.OutcomeDone, At: time.Now()}); err != nil {
		return err
	}
	a.log.Warn("failover done", "route", f.Route, "from", f.From, "to", f.To, "epoch", f.Epoch,
		"took", time.Since(f.StartedAt).Round(time.Millisecond))
	a.emit(&FlipDone{Route: f.Route, From: f.From, To: f.To, Epoch: f.Epoch, Took: time.Since(f.StartedAt).Round(time.Millisecond)})
	return nil
}
