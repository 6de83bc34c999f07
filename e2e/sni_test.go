package e2e

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/e2e/kafkatest"
	"github.com/turnout/turnout/internal/testcerts"
)

const (
	sniHost    = "kafka.turnout.test"
	sniPattern = "b$(nodeId).kafka.turnout.test"
)

// TestSecuritySNI is the passthrough switchover on a route with the host
// broker identification strategy: one gateway port serves the bootstrap
// (kafka.turnout.test) and every broker (b<N>.kafka.turnout.test), told
// apart by the TLS server name, in front of two SASL_SSL clusters. The Java
// client resolves the names from a hosts file of its own
// (-Djdk.net.hosts.file); franz-go dials 127.0.0.1 on the gateway's port
// whatever the host, asking for the host as the server name. kcat is left
// out: librdkafka has no per-process hosts override, and the test may not
// edit /etc/hosts. Every acknowledged record must be consumed and be on
// kafka2 after the switch, and the clients must only ever have learned and
// dialled the gateway's names on its one port.
func TestSecuritySNI(t *testing.T) {
	b := kafkatest.NewBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)

	_, sec1, sec2 := secClusters(t, true)
	c1 := b.NewClusterSpec(kafkatest.ClusterSpec{Name: "kafka1", Sec: sec1})
	c2 := b.NewClusterSpec(kafkatest.ClusterSpec{Name: "kafka2", Sec: sec2})
	// A certificate for the names only, not 127.0.0.1: a client that
	// dials the address without the name is refused by its own checks.
	ca := testcerts.MustCA(t, "turnout-e2e-sni-ca")
	server := ca.MustLeaf(t, "gateway", sniHost, "*."+sniHost).MustWriteFiles(t, b.Dir, "gateway", "gateway-store-secret")
	gw := b.NewGateway("gateway", []*kafkatest.Cluster{c1, c2}, 0, &kafkatest.GatewaySecurity{
		Auth: "passthrough", Server: server, Host: sniHost, HostPattern: sniPattern})
	gw.Validate(t)
	hosts := "-Djdk.net.hosts.file=" + gw.HostsFile()

	classes, mm := startMirrored(ctx, t, b, c1, c2, gw)

	login := user(t, sec1, "alice") // the same password on both clusters
	scram := gw.AuthAs(login, kafkatest.ScramSHA512, nil)
	id := checkSNIMetadata(ctx, t, gw, scram, c1)

	load := &drillLoad{prefixes: []string{"j-", "g-"}}
	load.producers = []*producerRun{
		javaProducer(t, b, gw.Bootstrap(), classes, swTopic, "j-", "java-producer", append(scram.Java(), hosts)...),
		franzProducer(t, b, gw.Bootstrap(), swTopic, "g-", "franz-producer", scram.MustKgo()...),
	}
	load.consumers = []*consumerRun{
		javaConsumer(t, b, gw.Bootstrap(), classes, swTopic, "java-consumer", "sni-java", append(scram.Java(), hosts)...),
		franzConsumer(t, b, gw.Bootstrap(), swTopic, "franz-consumer", "sni-franz", scram.MustKgo()...),
	}
	b.OnCleanup(func() { load.stop(t, 0) })
	load.waitSteady(t, 60*time.Second)

	t0, t1 := switchWhenMirrored(ctx, t, mm, gw, load, 60*time.Second)
	for _, why := range load.carriedOn(t1, 3*drillRate, 60*time.Second) {
		t.Errorf("producer did not carry on after the switch: %s", why)
	}
	// Clients see one cluster id per route, whichever cluster serves it.
	if after := checkSNIMetadata(ctx, t, gw, scram, c2); after != id {
		t.Errorf("the route's cluster id went from %s to %s across the switch", id, after)
	}
	lost := lossAfterSwitch(ctx, t, c2, load, t0, 60*time.Second)
	// The Java clients dialled the gateway's names on its one port, the
	// broker's among them, and never learned a cluster's address.
	for _, name := range []string{"java-producer", "java-consumer"} {
		log := readFile(t, b.Path(name+".log"))
		dialled := javaAddrs(log)
		if len(dialled) == 0 {
			t.Errorf("%s: found no connection in its log", name)
		}
		if err := gw.CheckAddrs(dialled); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		broker := false
		for _, a := range dialled {
			broker = broker || a == gw.BrokerAddr()
		}
		if !broker {
			t.Errorf("%s connected to %v, never to the broker's name %s", name, dialled, gw.BrokerAddr())
		}
		if leak := gw.LeaksClusterAddr(log); len(leak) > 0 {
			t.Errorf("%s's log names a cluster's own address %v", name, leak)
		}
	}

	reportSwitch(t, "SNI      auth=passthrough", t1.Sub(t0), lost)
}

// checkSNIMetadata checks, with franz-go through the gateway, that the
// route advertises every broker of c by its name under the pattern on the
// gateway's one port, and returns the cluster id the client sees.
func checkSNIMetadata(ctx context.Context, t *testing.T, gw *kafkatest.Gateway, auth kafkatest.ClientAuth, c *kafkatest.Cluster) string {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(gw.Bootstrap())}, auth.MustKgo()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(rctx)
	if err != nil {
		t.Fatalf("metadata through the gateway: %v", err)
	}
	if len(md.Brokers) == 0 {
		t.Errorf("metadata through the gateway lists no broker")
	}
	var seen []string
	for _, br := range md.Brokers {
		addr := net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
		seen = append(seen, fmt.Sprintf("%d=%s", br.NodeID, addr))
		if br.Host != gw.BrokerHost(br.NodeID) || int(br.Port) != gw.Port {
			t.Errorf("broker %d advertised as %s, want %s:%d", br.NodeID, addr, gw.BrokerHost(br.NodeID), gw.Port)
		}
	}
	t.Logf("franz-go sees %s's brokers through the gateway as %v (cluster id %s)", c.Name, seen, md.Cluster)
	return md.Cluster
}
