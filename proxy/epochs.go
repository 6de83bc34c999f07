package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnout/turnout/proxy/config"
)

// servedRoute is where the gateway last pointed a route, and at which epoch,
// and what the agents' fencing told it about the route.
type servedRoute struct {
	Domain string `json:"domain"`
	Epoch  int32  `json:"epoch"`
	// Leased: the agents granted the route a lease once, so it forwards
	// Produce requests only under one, in the next process too.
	Leased bool `json:"leased,omitempty"`
	// Committed is the newest epoch the agents were heard to commit (by
	// POST /fence or a refused lease for a newer epoch).
	Committed int32 `json:"committedEpoch,omitempty"`
}

// epochs is the highest epoch the gateway has served for each route, and
// its fencing state. It is kept in a small file beside the configuration
// (NAME.epochs), so that a gateway process that restarts on a restored
// backup of its configuration refuses to move a route back as surely as a
// running one does, and one restarted while the agents cannot reach it
// holds its producers as the process before it did.
type epochs struct {
	path string

	mu     sync.Mutex // restarts record, admin calls mark; one writer at a time
	routes map[string]servedRoute
	// unwritten: routes holds changes the file lacks, since a write
	// failed. The next call writes again, changed or not: a lease renewal
	// finds the route already leased in routes, and without this a
	// restarted process would never learn it was leased.
	unwritten   bool
	writeErrors prometheus.Counter
}

// epochsPath is the state file of the configuration file at path.
func epochsPath(path string) string { return path + ".epochs" }

// loadEpochs reads the state file of the configuration file at path; a
// missing one is a gateway that has not served yet.
func loadEpochs(path string, writeErrors prometheus.Counter) (*epochs, error) {
	e := &epochs{path: epochsPath(path), routes: map[string]servedRoute{}, writeErrors: writeErrors}
	data, err := os.ReadFile(e.path)
	if errors.Is(err, fs.ErrNotExist) {
		return e, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the epochs the gateway served: %w", err)
	}
	if err := json.Unmarshal(data, &e.routes); err != nil {
		return nil, fmt.Errorf("%s is not the gateway's record of the epochs it served (%w); "+
			"remove it only if no route may have been switched past what %s says", e.path, err, path)
	}
	return e, nil
}

// fence refuses cfg if it moves any route back (see config.FenceRoute):
// to an epoch older than the one served, or to another domain at the same
// epoch. Such a file is a restored backup or a stale writer's, and serving
// it would send clients back to a cluster the agents switched away from.
func (e *epochs) fence(cfg *config.Gateway) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, rc := range cfg.Routes {
		cur, ok := e.routes[rc.Name]
		if !ok {
			continue
		}
		if err := config.FenceRoute(rc.Name, "served by the gateway (recorded in "+e.path+")", cur.Domain, cur.Epoch, rc.StreamingDomain.Name, rc.Epoch); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %w", cfg.File, errors.Join(errs...))
	}
	return nil
}

// fenceStart is how a route's fence starts in this process.
func (e *epochs) fenceStart(name string, requireLease bool) fenceStart {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.routes[name]
	return fenceStart{leased: requireLease || cur.Leased, committed: cur.Committed}
}

// record notes what cfg serves, and writes the state file if that changed.
func (e *epochs) record(cfg *config.Gateway) error {
	return e.change(func() bool {
		changed := false
		for _, rc := range cfg.Routes {
			now := e.routes[rc.Name]
			now.Domain, now.Epoch = rc.StreamingDomain.Name, rc.Epoch
			if e.routes[rc.Name] != now {
				e.routes[rc.Name] = now
				changed = true
			}
		}
		return changed
	})
}

// leased notes that the agents leased the route.
func (e *epochs) leased(name string) error {
	return e.change(func() bool {
		cur, ok := e.routes[name]
		if !ok || cur.Leased {
			return false
		}
		cur.Leased = true
		e.routes[name] = cur
		return true
	})
}

// committed notes that the agents committed epoch for the route.
func (e *epochs) committed(name string, epoch int32) error {
	return e.change(func() bool {
		cur, ok := e.routes[name]
		if !ok || cur.Committed >= epoch {
			return false
		}
		cur.Committed = epoch
		e.routes[name] = cur
		return true
	})
}

// change applies a change to the routes and writes the state file if it
// says it changed them, or if an earlier write failed.
func (e *epochs) change(apply func() bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !apply() && !e.unwritten {
		return nil
	}
	data, err := json.MarshalIndent(e.routes, "", "  ")
	if err == nil {
		err = config.WriteFileAtomic(e.path, append(data, '\n'))
	}
	e.unwritten = err != nil
	if err != nil {
		e.writeErrors.Inc()
		return fmt.Errorf("writing the gateway's fencing state (retried at the next lease, fence or restart): %w", err)
	}
	return nil
}
