package config

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every problem it reports
// has a file and line, and that what it accepts makes a sound port plan and
// can be rewritten by SetRoute. The seed corpus is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte("streamingDomains:\n" + kafka1Domain + kafka2Domain + twoRoutes))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse("f.yaml", data)
		if err != nil {
			for _, e := range leafErrors(err) {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != "f.yaml" || ce.Line < 1 {
					t.Fatalf("error %q has no file and line", e)
				}
				if strings.Contains(ce.Msg, "aliases repeat") && !bytes.Contains(data, []byte("*")) {
					t.Fatalf("%v, in a file without aliases", ce)
				}
			}
			return
		}

		n := g.nodeIDCount()
		for i := range g.Routes {
			r := &g.Routes[i]
			if d := g.Domain(r.StreamingDomain.Name); d == nil || d.BootstrapServer(r.StreamingDomain.BootstrapServerID) == nil {
				t.Fatalf("route %q serves an unknown domain or bootstrap server", r.Name)
			}
			plan := g.PortPlan(r)
			if int64(len(plan.Brokers)) != n {
				t.Fatalf("route %q has %d broker ports for %d node ids", r.Name, len(plan.Brokers), n)
			}
			for j, b := range plan.Brokers {
				if port, ok := plan.Port(b.NodeID); b.Port != plan.Bootstrap+1+j || b.Port > maxPort || !ok || port != b.Port {
					t.Fatalf("route %q: broker %d of %+v is out of place", r.Name, j, plan)
				}
			}
		}

		r, d := g.Routes[0], g.StreamingDomains[len(g.StreamingDomains)-1]
		if r.Epoch == math.MaxInt32 {
			return
		}
		out, err := SetRoute(data, r.Name, d.Name, d.KafkaCluster.BootstrapServers[0].ID, r.Epoch+1)
		if err != nil {
			// Only settings shared through aliases stop a rewrite.
			if !bytes.Contains(data, []byte("*")) {
				t.Fatalf("SetRoute: %v", err)
			}
			return
		}
		g, err = Parse("f.yaml", out)
		if err != nil {
			t.Fatalf("SetRoute wrote an invalid file: %v\n%s", err, out)
		}
		if got := g.Route(r.Name); got.StreamingDomain.Name != d.Name || got.Epoch != r.Epoch+1 {
			t.Fatalf("SetRoute did not switch the route:\n%s", out)
		}
	})
}
