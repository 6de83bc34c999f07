package kafkatest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace of a test (`ip netns add`), for a process
// that must be cut off from some of the test's ports and no others: one
// agent that cannot reach cluster 1 while it still reaches its peers and
// cluster 2. Everything in the tests listens on 127.0.0.1, so the namespace
// gets its own loopback, on which nothing answers until the test relays a
// port: Forward makes a port of the namespace's 127.0.0.1 reach the same
// port of the host's, Expose makes a host port reach the namespace, and
// Blackhole makes a port accept connections and never answer, as a network
// that drops packets would. The relays live in the test process, which
// creates each socket in the namespace it belongs to (setns on a locked OS
// thread), so no tool beyond iproute2 is needed, and nothing leaves the
// machine.
//
// Why a namespace rather than a firewall rule: neither iptables nor nft is
// installed here, a rule keyed to a uid or cgroup would need both, and a
// namespace cuts the agent off exactly as a partition would, at connect
// time, whatever library the agent dials with.
type Netns struct {
	Name string

	bed    *Bed
	handle *os.File // /run/netns/<name>

	mu      sync.Mutex
	closing bool
	closers []io.Closer
	conns   map[net.Conn]int // the host port each relayed connection is for (0: none)
	cut     map[int]bool     // forwarded ports that Cut has partitioned
}

var netnsSeq atomic.Int32

// NewNetns creates a network namespace with its loopback up; it is deleted
// when the test ends. Only root may create one.
func (b *Bed) NewNetns() (*Netns, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a network namespace needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("a network namespace needs ip (iproute2)")
	}
	removeStaleNetns()
	name := fmt.Sprintf("turnout-e2e-%d-%d", os.Getpid(), netnsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	n := &Netns{Name: name, bed: b, conns: map[net.Conn]int{}, cut: map[int]bool{}}
	b.OnCleanup(n.close)
	if out, err := exec.Command("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bringing up the loopback of %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		return nil, err
	}
	n.handle = f
	return n, nil
}

// removeStaleNetns deletes the namespaces that test binaries which are no
// longer running left behind (a test binary killed before its clean-up).
func removeStaleNetns() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, "turnout-e2e-")
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		exec.Command("ip", "netns", "del", name).Run()
	}
}

// Command runs name with args inside the namespace (`ip netns exec`, which
// execs the program, so the process is the program itself).
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// inside runs fn on an OS thread that has entered the namespace; sockets fn
// creates belong to the namespace for good.
func (n *Netns) inside(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		if err := unix.Setns(int(n.handle.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering %s: %w", n.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked, so it ends with this goroutine
			// rather than run other goroutines in the namespace.
			errc <- errors.Join(ferr, fmt.Errorf("leaving %s: %w", n.Name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Forward makes 127.0.0.1:port inside the namespace reach 127.0.0.1:port of
// the host.
func (n *Netns) Forward(port int) error {
	var ln net.Listener
	err := n.inside(func() (err error) {
		ln, err = net.Listen("tcp", loopback(port))
		return err
	})
	if err != nil {
		return fmt.Errorf("forwarding port %d out of %s: %w", port, n.Name, err)
	}
	return n.relay(ln, port, func() (net.Conn, error) { return net.Dial("tcp", loopback(port)) })
}

// Cut partitions forwarded or exposed ports: their relayed connections are
// closed, and new ones are accepted and never answered, as Blackhole's,
// until Mend.
func (n *Netns) Cut(ports ...int) {
	n.mu.Lock()
	var doomed []net.Conn
	for _, p := range ports {
		n.cut[p] = true
	}
	for c, p := range n.conns {
		if n.cut[p] {
			doomed = append(doomed, c)
		}
	}
	n.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
}

// Mend ends Cut's partition of ports.
func (n *Netns) Mend(ports ...int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range ports {
		delete(n.cut, p)
	}
}

func (n *Netns) isCut(port int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut[port]
}

// Expose makes 127.0.0.1:port of the host reach 127.0.0.1:port inside the
// namespace, where a process of it listens.
func (n *Netns) Expose(port int) error {
	ln, err := net.Listen("tcp", loopback(port))
	if err != nil {
		return fmt.Errorf("exposing port %d of %s: %w", port, n.Name, err)
	}
	return n.relay(ln, port, func() (c net.Conn, err error) {
		err = n.inside(func() (err error) {
			c, err = net.Dial("tcp", loopback(port))
			return err
		})
		return c, err
	})
}

// Blackhole makes 127.0.0.1:port inside the namespace accept connections
// and never answer: requests sent there time out.
func (n *Netns) Blackhole(port int) error {
	var ln net.Listener
	err := n.inside(func() (err error) {
		ln, err = net.Listen("tcp", loopback(port))
		return err
	})
	if err != nil {
		return fmt.Errorf("blackholing port %d in %s: %w", port, n.Name, err)
	}
	if !n.keep(ln) {
		return errors.New("namespace closed")
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !n.track(c, 0) {
				return
			}
			go func() { io.Copy(io.Discard, c); n.untrack(c) }()
		}
	}()
	return nil
}

// relay serves ln by dialling for each connection, for the host port port
// (0 when Cut does not apply).
func (n *Netns) relay(ln net.Listener, port int, dial func() (net.Conn, error)) error {
	if !n.keep(ln) {
		return errors.New("namespace closed")
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if port != 0 && n.isCut(port) {
					// Partitioned: the connection is never answered.
					if n.track(c, port) {
						io.Copy(io.Discard, c)
						n.untrack(c)
					}
					return
				}
				up, err := dial()
				if err != nil {
					c.Close()
					return
				}
				if !n.track(c, port) || !n.track(up, port) {
					c.Close()
					up.Close()
					return
				}
				done := make(chan struct{}, 2)
				pipe := func(dst, src net.Conn) {
					io.Copy(dst, src)
					if tc, ok := dst.(*net.TCPConn); ok {
						tc.CloseWrite()
					}
					done <- struct{}{}
				}
				go pipe(up, c)
				go pipe(c, up)
				<-done
				<-done
				n.untrack(c)
				n.untrack(up)
			}()
		}
	}()
	return nil
}

func (n *Netns) keep(c io.Closer) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		c.Close()
		return false
	}
	n.closers = append(n.closers, c)
	return true
}

func (n *Netns) track(c net.Conn, port int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		c.Close()
		return false
	}
	n.conns[c] = port
	return true
}

func (n *Netns) untrack(c net.Conn) {
	c.Close()
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}

func (n *Netns) close() {
	n.mu.Lock()
	n.closing = true
	closers, conns := n.closers, n.conns
	n.closers, n.conns = nil, map[net.Conn]int{}
	n.mu.Unlock()
	for _, c := range closers {
		c.Close()
	}
	for c := range conns {
		c.Close()
	}
	if n.handle != nil {
		n.handle.Close()
	}
	if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
		n.bed.T.Logf("ip netns del %s: %v: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
}
