package proxy_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/turnout/turnout/internal/testnet"
	"github.com/turnout/turnout/proxy"
)

// TestObserverToldOfHeldClients: with logs that go nowhere, an observer is
// told, with the route and cluster, that the gateway holds a client whose
// cluster does not answer.
func TestObserverToldOfHeldClients(t *testing.T) {
	b := &bed{t: t, path: filepath.Join(t.TempDir(), "gateway.yaml")}
	for i := range b.clusters {
		c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.ClusterID(fmt.Sprintf("cluster-%d", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		b.clusters[i] = c
	}
	b.port = testnet.FreePorts(t, 4)
	b.writeConfig(0, 0)
	b.clusters[0].Close()

	gw := proxy.New(b.path, slog.New(slog.DiscardHandler), proxy.NewMetrics())
	seen := make(chan proxy.Event, 10)
	gw.Observe(func(ev proxy.Event) {
		select {
		case seen <- ev:
		default:
		}
	})
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close(context.Background()) })
	c, err := net.DialTimeout("tcp", b.endpoint(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case ev := <-seen:
		h, ok := ev.(*proxy.Holding)
		if !ok || h.Route != "switchover-route" || h.Domain != "kafka1-domain" || h.Wait <= 0 || h.Err == nil || h.At.IsZero() {
			t.Errorf("the observer was told %T %+v; want the route held for kafka1-domain", ev, ev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the observer was not told that a client is held")
	}
}
