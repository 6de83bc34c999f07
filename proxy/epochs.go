package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/turnout/turnout/proxy/config"
)

// servedRoute is where the gateway last pointed a route, and at which epoch.
type servedRoute struct {
	Domain string `json:"domain"`
	Epoch  int32  `json:"epoch"`
}

// epochs is the highest epoch the gateway has served for each route. It is
// kept in a small file beside the configuration (NAME.epochs), so that a
// gateway process that restarts on a restored backup of its configuration
// refuses to move a route back as surely as a running one does.
type epochs struct {
	path   string
	routes map[string]servedRoute
}

// epochsPath is the state file of the configuration file at path.
func epochsPath(path string) string { return path + ".epochs" }

// loadEpochs reads the state file of the configuration file at path; a
// missing one is a gateway that has not served yet.
func loadEpochs(path string) (*epochs, error) {
	e := &epochs{path: epochsPath(path), routes: map[string]servedRoute{}}
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

// record notes what cfg serves, and writes the state file if that changed.
func (e *epochs) record(cfg *config.Gateway) error {
	changed := false
	for _, rc := range cfg.Routes {
		now := servedRoute{Domain: rc.StreamingDomain.Name, Epoch: rc.Epoch}
		if e.routes[rc.Name] != now {
			e.routes[rc.Name] = now
			changed = true
		}
	}
	if !changed {
		return nil
	}
	data, err := json.MarshalIndent(e.routes, "", "  ")
	if err != nil {
		return err
	}
	return config.WriteFileAtomic(e.path, append(data, '\n'))
}
