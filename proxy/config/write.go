package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/turnout/turnout/internal/yamlstrict"
)

// ErrStaleEpoch is returned by SetRoute when the file already holds a newer
// epoch for the route than the writer's, or the same epoch naming another
// domain.
var ErrStaleEpoch = errors.New("stale writer refused")

// FenceRoute refuses to move a route from domain cur at epoch curEpoch
// (where says where that is: "in the file", "served by the gateway") to
// domain at epoch, when that is a stale writer's move: an older epoch, or
// the same epoch naming another domain. Each epoch is one decision of the
// agents, so it names one domain; two writers that both claim it cannot
// both be right, and the first one to arrive wins.
func FenceRoute(route, where, cur string, curEpoch int32, domain string, epoch int32) error {
	switch {
	case epoch < curEpoch:
		return fmt.Errorf("%w: route %q is at epoch %d %s, newer than %d", ErrStaleEpoch, route, curEpoch, where, epoch)
	case epoch == curEpoch && domain != cur:
		return fmt.Errorf("%w: route %q is at epoch %d on %s %s; epoch %d cannot also point it at %s",
			ErrStaleEpoch, route, curEpoch, cur, where, epoch, domain)
	}
	return nil
}

// SetRoute returns data with route pointed at the given streaming domain and
// bootstrap server, at the given epoch. Nothing else changes: comments and
// key order stay, as far as yaml.v3 re-encoding allows (it drops blank lines
// and indents by two). data must be a valid configuration, and epoch must not
// be older than the route's epoch in data.
func SetRoute(data []byte, route, domain, bootstrapServerID string, epoch int32) ([]byte, error) {
	g, err := Parse("", data)
	if err != nil {
		return nil, err
	}
	r := g.Route(route)
	if r == nil {
		names := make([]string, len(g.Routes))
		for i, r := range g.Routes {
			names[i] = r.Name
		}
		return nil, fmt.Errorf("no route named %q (known: %s)", route, strings.Join(names, ", "))
	}
	d := g.Domain(domain)
	if d == nil {
		return nil, fmt.Errorf("no streaming domain named %q (known: %s)", domain, domainNames(g))
	}
	if d.BootstrapServer(bootstrapServerID) == nil {
		return nil, fmt.Errorf("no bootstrap server %q in streaming domain %q (known: %s)", bootstrapServerID, domain, serverIDs(d))
	}
	if err := FenceRoute(route, "in the file", r.StreamingDomain.Name, r.Epoch, domain, epoch); err != nil {
		return nil, err
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err // Parse accepted data, so this does not happen
	}
	root := yamlstrict.Resolve(doc.Content[0])
	if v := yamlstrict.MapValue(root, "gateway"); v != nil {
		root = v
	}
	var rn *yaml.Node
	for _, n := range yamlstrict.MapValue(root, "routes").Content {
		if n = yamlstrict.Resolve(n); yamlstrict.MapValue(n, "name").Value == route {
			rn = n
		}
	}
	sd := yamlstrict.MapValue(rn, "streamingDomain")
	setScalar(sd, "name", "!!str", domain)
	setScalar(sd, "bootstrapServerId", "!!str", bootstrapServerID)
	setScalar(rn, "epoch", "!!int", strconv.Itoa(int(epoch)))

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	out := buf.Bytes()

	// The edit goes through YAML nodes, which other settings can share by
	// alias; check that the route is the only thing that changed.
	want := *g
	want.Routes = slices.Clone(g.Routes)
	w := want.Route(route)
	w.StreamingDomain.Name, w.StreamingDomain.BootstrapServerID, w.Epoch = domain, bootstrapServerID, epoch
	got, err := Parse("", out)
	if err != nil {
		return nil, fmt.Errorf("rewriting route %q made the file invalid: %w", route, err)
	}
	if !sameSettings(got, &want) {
		return nil, fmt.Errorf("cannot rewrite route %q without changing other settings; are they shared with it through YAML anchors?", route)
	}
	return out, nil
}

// setScalar sets key in mapping m, adding it if missing.
func setScalar(m *yaml.Node, key, tag, value string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if yamlstrict.Resolve(m.Content[i]).Value != key {
			continue
		}
		if v := m.Content[i+1]; v.Kind == yaml.ScalarNode && v.Anchor == "" {
			v.Tag, v.Value = tag, value // in place, to keep its comments and quoting
		} else {
			// Replace rather than edit a node other settings may refer to.
			m.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
		}
		return
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value})
}

// sameSettings compares two configurations as encoded, which leaves out
// where in the file each setting was.
func sameSettings(a, b *Gateway) bool {
	ya, erra := yaml.Marshal(a)
	yb, errb := yaml.Marshal(b)
	return erra == nil && errb == nil && bytes.Equal(ya, yb)
}

// SwitchRoute points a route of the config file at path to a domain at an
// epoch, atomically, changing nothing else; it reports whether the file
// changed (it has not if the route is there already). The route keeps its
// bootstrap server id if the new domain has one by that id (the usual setup
// names listeners alike), else takes the domain's first. A writer with an
// epoch older than the file's, or at the file's epoch for another domain, is
// refused with ErrStaleEpoch. The read, the check and the write are one step
// for every writer in this process and, through a lock file beside the
// file, in others (an agent and a gateway on one host).
func SwitchRoute(path, route, domain string, epoch int32) (changed bool, err error) {
	switchMu.Lock()
	defer switchMu.Unlock()
	unlock, err := lockFile(path)
	if err != nil {
		return false, err
	}
	defer unlock()
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading the gateway config: %w", err)
	}
	cfg, err := Parse(path, data)
	if err != nil {
		return false, err
	}
	r := cfg.Route(route)
	if r == nil {
		return false, fmt.Errorf("%s has no route %q", path, route)
	}
	d := cfg.Domain(domain)
	if d == nil {
		return false, fmt.Errorf("%s has no streaming domain %q", path, domain)
	}
	if r.StreamingDomain.Name == domain && r.Epoch == epoch {
		return false, nil
	}
	id := r.StreamingDomain.BootstrapServerID
	if d.BootstrapServer(id) == nil {
		id = d.KafkaCluster.BootstrapServers[0].ID
	}
	out, err := SetRoute(data, route, domain, id, epoch)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return true, WriteFileAtomic(path, out)
}

// switchMu serialises SwitchRoute within the process, so that its own
// writers queue rather than poll the lock file.
var switchMu sync.Mutex

// lockWait bounds how long a writer waits for another to finish with the
// file; a switch is one small write, so a longer wait means a stuck writer.
const lockWait = 10 * time.Second

// lockFile takes the exclusive lock of the lock file beside path (.NAME.lock,
// kept: removing it would let two writers lock two different files).
func lockFile(path string) (unlock func(), err error) {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	name := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file of the gateway config: %w", err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	give := time.After(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", name, err)
		}
		select {
		case <-tick.C:
		case <-give:
			f.Close()
			return nil, fmt.Errorf("another writer has held %s for over %v; is a process stuck writing the gateway config?", name, lockWait)
		}
	}
}

// WriteFileAtomic replaces the file at path with data so that readers see
// either the old file or the new one, even across a crash: it writes a
// temporary file in the same directory, syncs it, renames it over path and
// syncs the directory. The new file keeps the old one's permissions (0644
// for a new file). On failure the old file is untouched, except that a
// failed sync of the directory is reported after the rename.
func WriteFileAtomic(path string, data []byte) error {
	// Write through a symlink rather than replace it.
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	perm := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if err := writeAndSync(f, data, perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func writeAndSync(f *os.File, data []byte, perm fs.FileMode) error {
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}
