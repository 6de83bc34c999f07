package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/internal/testcerts"
	"github.com/turnout/turnout/proxy/config"
)

// TestClustersTLSAndSASL: the agents' clients reach a cluster that speaks
// only TLS and SCRAM with the bootstrap server's ssl and sasl, with or
// without a dialer of their own.
func TestClustersTLSAndSASL(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.MustCA(t, "kafka CA")
	leaf := ca.MustLeaf(t, "broker", "127.0.0.1")
	files := leaf.MustWriteFiles(t, dir, "kafka", "pass")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "canary"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "agent", "agent-secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	path := filepath.Join(dir, "gateway.yaml")
	cfg := fmt.Sprintf(`streamingDomains:
  - name: d
    kafkaCluster:
      bootstrapServers:
        - id: tls
          endpoint: %q
          ssl: {truststore: {type: JKS, location: %s, password: {value: pass}}}
          sasl: {mechanism: SCRAM-SHA-512, username: agent, password: {value: %%s}}
routes:
  - {name: r, endpoint: "127.0.0.1:19092", streamingDomain: {name: d, bootstrapServerId: tls}}
`, strings.Join(c.ListenAddrs(), ","), files.TrustJKS)
	for _, tc := range []struct {
		name, password string
		dial           Dialer
		ok             bool
	}{
		{"kgo dials", "agent-secret", nil, true},
		{"own dialer", "agent-secret", (&net.Dialer{}).DialContext, true},
		{"wrong password", "nope", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, fmt.Appendf(nil, cfg, tc.password), 0o600); err != nil {
				t.Fatal(err)
			}
			gw, err := config.LoadClusters(path)
			if err != nil {
				t.Fatal(err)
			}
			cs := &clusters{servers: map[string]*config.BootstrapServer{"d": gw.Domain("d").BootstrapServer("tls")},
				dial: tc.dial, timeout: 2 * time.Second, clients: map[string]*kgo.Client{}}
			defer cs.close()
			cl, err := cs.client("d")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = cl.ProduceSync(ctx, &kgo.Record{Topic: "canary", Value: []byte("x")}).FirstErr()
			if (err == nil) != tc.ok {
				t.Fatalf("produce: %v; want success: %v", err, tc.ok)
			}
		})
	}
}
