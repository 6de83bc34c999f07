package demo

import (
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// cluster is one in-process Kafka cluster (kfake, three brokers) whose
// listeners and connections the demo keeps, so that killing it ends every
// open connection as a crashed broker's would: kfake's own Close only stops
// accepting new ones.
type cluster struct {
	name   string // the streaming domain, e.g. kafka1-domain
	id     string // the cluster id it reports
	ports  []int
	kf     *kfake.Cluster
	mu     sync.Mutex
	lns    []net.Listener
	conns  []net.Conn
	killed bool
}

func startCluster(domain, clusterID string, ports []int) (*cluster, error) {
	c := &cluster{name: domain, id: clusterID, ports: ports}
	kf, err := kfake.NewCluster(
		kfake.NumBrokers(len(ports)),
		kfake.Ports(ports...),
		kfake.ClusterID(clusterID),
		kfake.SeedTopics(partitions, topic),
		kfake.ListenFn(c.listen),
	)
	if err != nil {
		return nil, err
	}
	c.kf = kf
	return c, nil
}

func (c *cluster) addrs() []string { return c.kf.ListenAddrs() }

func (c *cluster) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lns = append(c.lns, ln)
	return trackedListener{ln, c}, nil
}

type trackedListener struct {
	net.Listener
	c *cluster
}

func (l trackedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		l.c.mu.Lock()
		if l.c.killed {
			conn.Close()
		} else {
			l.c.conns = append(l.c.conns, conn)
		}
		l.c.mu.Unlock()
	}
	return conn, err
}

// kill stops the cluster as a crash would: its listeners close and every
// open connection ends. It returns how many of each it closed.
func (c *cluster) kill() (listeners, conns int) {
	c.mu.Lock()
	if c.killed {
		c.mu.Unlock()
		return 0, 0
	}
	c.killed = true
	for _, ln := range c.lns {
		ln.Close()
	}
	for _, conn := range c.conns {
		conn.Close()
	}
	listeners, conns = len(c.lns), len(c.conns)
	c.lns, c.conns = nil, nil
	c.mu.Unlock()
	c.kf.Close()
	return listeners, conns
}
