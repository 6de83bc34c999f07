package demo

import (
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/turnout/turnout/internal/crashable"
)

// cluster is one in-process Kafka cluster (kfake, three brokers) whose
// listeners and connections the demo keeps, so that killing it ends every
// open connection as a crashed broker's would: kfake's own Close only stops
// accepting new ones.
type cluster struct {
	name  string // the streaming domain, e.g. kafka1-domain
	id    string // the cluster id it reports
	ports []int
	kf    *kfake.Cluster
	conns crashable.Set
}

func startCluster(domain, clusterID string, ports []int) (*cluster, error) {
	c := &cluster{name: domain, id: clusterID, ports: ports}
	kf, err := kfake.NewCluster(
		kfake.NumBrokers(len(ports)),
		kfake.Ports(ports...),
		kfake.ClusterID(clusterID),
		kfake.SeedTopics(partitions, topic),
		kfake.ListenFn(c.conns.Listen),
	)
	if err != nil {
		return nil, err
	}
	c.kf = kf
	return c, nil
}

func (c *cluster) addrs() []string { return c.kf.ListenAddrs() }

// kill stops the cluster as a crash would: its listeners close and every
// open connection ends. It returns how many of each it closed.
func (c *cluster) kill() (listeners, conns int) {
	listeners, conns = c.conns.Crash()
	c.kf.Close()
	return listeners, conns
}
