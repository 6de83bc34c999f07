package kafkatest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bed is what one test runs: its folder, its processes and their logs. When
// the test ends every process is killed and the folder removed; when it failed,
// the logs and configuration files are first copied to e2e/out/<test>/
// (also when TURNOUT_E2E_KEEP=1). The next run of the test moves what an
// earlier run kept to e2e/out/<test>.prev/, so that a rare failure's logs
// survive one more run.
type Bed struct {
	T   testing.TB
	Dir string

	mu       sync.Mutex
	procs    []*Process
	closers  []func()
	classDir string
	sub      bool
}

// NewBed makes the test's folder and arranges the clean-up. It calls Require.
func NewBed(t testing.TB) *Bed {
	t.Helper()
	Require(t)
	dir, err := os.MkdirTemp("", "turnout-e2e-"+safeName(t.Name())+"-")
	if err != nil {
		t.Fatal(err)
	}
	b := &Bed{T: t, Dir: dir}
	out := b.OutDir()
	// What an earlier run kept is stale now; keep it one run longer.
	os.RemoveAll(out + ".prev")
	if err := os.Rename(out, out+".prev"); err != nil {
		os.RemoveAll(out)
	}
	t.Cleanup(b.cleanup)
	return b
}

// Sub is a bed for a subtest that shares this bed's clusters: its files are
// in a folder of this bed's, and its processes end with the subtest. The
// parent keeps or removes the files.
func (b *Bed) Sub(t testing.TB) *Bed {
	t.Helper()
	name := t.Name()
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	s := &Bed{T: t, Dir: filepath.Join(b.Dir, safeName(name)), sub: true}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.cleanup)
	return s
}

// OutDir is where the logs of this test are kept when it fails.
func (b *Bed) OutDir() string { return filepath.Join(E2EDir, "out", safeName(b.T.Name())) }

// Path names a file in the test's folder.
func (b *Bed) Path(elem ...string) string { return filepath.Join(append([]string{b.Dir}, elem...)...) }

// OnCleanup runs f when the test ends, before the processes are killed.
func (b *Bed) OnCleanup(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closers = append(b.closers, f)
}

func (b *Bed) cleanup() {
	b.mu.Lock()
	closers, procs := b.closers, b.procs
	b.closers, b.procs = nil, nil
	b.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	// Kill in parallel: nothing here needs a graceful end any more.
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.Kill() }()
	}
	wg.Wait()
	if b.sub {
		return
	}
	if b.T.Failed() || os.Getenv("TURNOUT_E2E_KEEP") == "1" {
		if err := keepLogs(b.Dir, b.OutDir()); err != nil {
			b.T.Logf("keeping the logs: %v", err)
		} else {
			b.T.Logf("logs kept in %s", b.OutDir())
		}
	}
	if err := os.RemoveAll(b.Dir); err != nil {
		b.T.Logf("removing %s: %v", b.Dir, err)
	}
}

// keepLogs copies the text files of a test's folder (logs, properties,
// YAML), not the clusters' data, to out.
func keepLogs(dir, out string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a process may still be removing its files
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			if d.Name() == "data" || d.Name() == "classes" {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".log", ".out", ".properties", ".yaml", ".txt", ".json":
		default:
			return nil
		}
		dst := filepath.Join(out, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return copyFile(path, dst)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func safeName(name string) string {
	return strings.NewReplacer("/", "_", " ", "_", ":", "_").Replace(name)
}

// Process is a child process whose output goes to a log file (unless the
// caller took its stdout). It runs in its own process group and is killed
// with the test binary should that die first.
type Process struct {
	Name string
	Log  string // stdout and stderr, unless the caller set them
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts cmd as a process of the test. Its stdout and stderr, where the
// caller left them nil, go to <name>.out in the test's folder.
func (b *Bed) Start(name string, cmd *exec.Cmd) (*Process, error) {
	p := &Process{Name: name, Log: b.Path(name + ".out"), cmd: cmd, done: make(chan struct{})}
	var logf *os.File
	if cmd.Stdout == nil || cmd.Stderr == nil {
		f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		logf = f
		if cmd.Stdout == nil {
			cmd.Stdout = f
		}
		if cmd.Stderr == nil {
			cmd.Stderr = f
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		if logf != nil {
			logf.Close()
		}
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		if logf != nil {
			logf.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process ended; valid once Done is closed.
func (p *Process) Err() error { return p.err }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Wait waits for the process to exit, at most d, and says how it ended.
func (p *Process) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("%s still running after %v", p.Name, d)
	}
}

// Signal sends sig to the process group.
func (p *Process) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Stop asks the process to end (SIGTERM) and kills it after grace.
func (p *Process) Stop(grace time.Duration) error {
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("%s did not stop within %v of SIGTERM and was killed", p.Name, grace)
	}
}

// Kill kills the process group (SIGKILL) and waits for the process.
func (p *Process) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Tail is the end of the process's log, for error messages.
func (p *Process) Tail(n int) string { return tailFile(p.Log, n) }

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ports hands out loopback ports, never the same one twice in a test binary.
var ports struct {
	sync.Mutex
	given map[int]bool
}

// FreePorts returns the first of n consecutive free loopback ports.
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	for range 200 {
		// Below Linux's ephemeral range (32768 and up), so that no outgoing
		// connection takes the port between this check and a JVM's bind.
		first := 20000 + rand.IntN(12000-n)
		ok := true
		for p := first; p < first+n && ok; p++ {
			if ports.given[p] || p > 65535 {
				ok = false
				break
			}
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			for p := first; p < first+n; p++ {
				ports.given[p] = true
			}
			return first
		}
	}
	t.Fatalf("no run of %d free loopback ports", n)
	return 0
}

// Poll calls cond every interval until it returns true or an error, or until
// timeout; the last error (or "condition not met") is returned on timeout.
func Poll(timeout, interval time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if err == nil && ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last == nil {
				last = errors.New("condition not met")
			}
			return fmt.Errorf("after %v: %w", timeout, last)
		}
		time.Sleep(interval)
	}
}

// linesWith returns the lines of the file at path that contain every one
// of words (none if it cannot be read).
func linesWith(path string, words []string) []string {
	data, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		ok := l != ""
		for _, w := range words {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}
