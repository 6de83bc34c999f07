package config

import (
	"reflect"
	"strings"
	"testing"
)

// The domains of a file with node ids 0-2 in kafka1-domain and 1-3 and 10-11
// in kafka2-domain, and its routes.
const (
	kafka1Domain = `  - name: kafka1-domain
    kafkaCluster:
      bootstrapServers: [{id: plain, endpoint: "kafka-1:9092"}]
      nodeIdRanges: [{name: all, start: 0, end: 2}]
`
	kafka2Domain = `  - name: kafka2-domain
    kafkaCluster:
      bootstrapServers: [{id: plain, endpoint: "kafka-2:9092"}]
      nodeIdRanges:
        - {name: high, start: 10, end: 11}
        - {name: low, start: 1, end: 3}
`
	twoRoutes = `routes:
  - name: switchover-route
    endpoint: "localhost:19092"
    streamingDomain: {name: kafka1-domain, bootstrapServerId: plain}
  - name: other
    endpoint: "localhost:29092"
    streamingDomain: {name: kafka2-domain, bootstrapServerId: plain}
`
)

func TestPortPlan(t *testing.T) {
	g, err := Parse("gw.yaml", []byte("streamingDomains:\n"+kafka1Domain+kafka2Domain+twoRoutes))
	if err != nil {
		t.Fatal(err)
	}
	want := PortPlan{Bootstrap: 19092, Brokers: []BrokerPort{
		{0, 19093}, {1, 19094}, {2, 19095}, {3, 19096}, {10, 19097}, {11, 19098},
	}}
	plan := g.PortPlan(g.Route("switchover-route"))
	if !reflect.DeepEqual(plan, want) {
		t.Errorf("plan = %+v, want %+v", plan, want)
	}
	if p := g.PortPlan(g.Route("other")); p.Bootstrap != 29092 || len(p.Brokers) != 6 || p.Brokers[5] != (BrokerPort{11, 29098}) {
		t.Errorf("other route's plan = %+v", p)
	}

	for _, tt := range []struct {
		id   int32
		port int
		ok   bool
	}{{0, 19093, true}, {3, 19096, true}, {11, 19098, true}, {4, 0, false}, {-1, 0, false}, {12, 0, false}} {
		if port, ok := plan.Port(tt.id); port != tt.port || ok != tt.ok {
			t.Errorf("Port(%d) = %d, %v; want %d, %v", tt.id, port, ok, tt.port, tt.ok)
		}
	}

	// Switching the route's domain, or listing the domains in another
	// order, keeps every port.
	switched := strings.Replace(twoRoutes, "{name: kafka1-domain, bootstrapServerId", "{name: kafka2-domain, bootstrapServerId", 1)
	for name, data := range map[string]string{
		"switched":  "streamingDomains:\n" + kafka1Domain + kafka2Domain + switched,
		"reordered": "streamingDomains:\n" + kafka2Domain + kafka1Domain + twoRoutes,
	} {
		g, err := Parse("gw.yaml", []byte(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p := g.PortPlan(g.Route("switchover-route")); !reflect.DeepEqual(p, want) {
			t.Errorf("%s: plan = %+v, want %+v", name, p, want)
		}
	}
}

func TestPortPlanDefault(t *testing.T) {
	g, err := Parse("gw.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	plan := g.PortPlan(&g.Routes[0])
	if len(plan.Brokers) != 16 || plan.Brokers[0] != (BrokerPort{0, 19093}) || plan.Brokers[15] != (BrokerPort{15, 19108}) {
		t.Errorf("plan = %+v, want node ids 0-15 on ports 19093-19108", plan)
	}
}

// PortPlan stays within the port range even for a Gateway that Parse would
// reject.
func TestPortPlanUnvalidated(t *testing.T) {
	g := &Gateway{StreamingDomains: []StreamingDomain{{KafkaCluster: KafkaCluster{NodeIDRanges: []NodeIDRange{{Start: 0, End: 1<<31 - 1}}}}}}
	plan := g.PortPlan(&Route{Endpoint: "localhost:65000"})
	if n := len(plan.Brokers); n != 535 || plan.Brokers[n-1].Port != 65535 {
		t.Errorf("plan has %d brokers, the last %+v", n, plan.Brokers[n-1])
	}
}
