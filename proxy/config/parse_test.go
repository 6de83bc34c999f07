package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// base is a valid configuration that the cases below edit. Its lines:
//
//	1 gateway            8 bootstrapServers   15 endpoint (kafka2)
//	2 name               9 - id (kafka1)      16 routes
//	3 streamingDomains  10 endpoint (kafka1)  17 - name (route)
//	4 - name (kafka1)   11 - name (kafka2)    18 endpoint
//	5 type              12 kafkaCluster       19 streamingDomain
//	6 kafkaCluster      13 bootstrapServers   20 name
//	7 name              14 - id (kafka2)      21 bootstrapServerId
const base = `gateway:
  name: gw
  streamingDomains:
    - name: kafka1-domain
      type: kafka
      kafkaCluster:
        name: kafka-cluster-1
        bootstrapServers:
          - id: plain
            endpoint: "kafka-1:9092"
    - name: kafka2-domain
      kafkaCluster:
        bootstrapServers:
          - id: plain
            endpoint: "kafka-2:9092, kafka-2b:9092"
  routes:
    - name: switchover-route
      endpoint: "localhost:19092"
      streamingDomain:
        name: kafka1-domain
        bootstrapServerId: plain
`

// secondRoute, appended to base, adds a route on lines 22-24.
const secondRoute = `    - name: second
      endpoint: "localhost:%s"
      streamingDomain: {name: kafka2-domain, bootstrapServerId: plain}
`

func edit(t *testing.T, from, to string) []byte {
	t.Helper()
	if from == "" {
		return []byte(base + to)
	}
	if !strings.Contains(base, from) {
		t.Fatalf("base does not contain %q", from)
	}
	return []byte(strings.Replace(base, from, to, 1))
}

// findError returns the *Error in err on line whose text contains want.
func findError(err error, line int, want string) *Error {
	for _, e := range leafErrors(err) {
		var ce *Error
		if errors.As(e, &ce) && ce.Line == line && strings.Contains(ce.Error(), want) {
			return ce
		}
	}
	return nil
}

func leafErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		from, to string // replace from with to in base; from "" appends to
		line     int
		want     string
	}{
		{"unknown top key", "", "  admn:\n    port: 1\n", 22,
			`gw.yaml:22: unknown key "admn" (allowed: name, streamingDomains, routes, admin, secretStores, limits)`},
		{"unknown route key", `      endpoint: "localhost:19092"`, `      endpont: "localhost:19092"`, 18,
			`gw.yaml:18: routes[0]: unknown key "endpont" (allowed: name, endpoint, bind, brokerIdentificationStrategy, streamingDomain, security, epoch)`},
		{"unknown cluster key", "        name: kafka-cluster-1", "        nmae: kafka-cluster-1", 7,
			`streamingDomains[0].kafkaCluster: unknown key "nmae" (allowed: name, bootstrapServers, nodeIdRanges)`},
		{"key beside gateway", "", "routes: []\n", 22, `unknown key "routes" (allowed: gateway, which holds all the settings)`},
		{"repeated key", `      endpoint: "localhost:19092"`, "      endpoint: \"localhost:19092\"\n      endpoint: \"localhost:1\"", 19,
			`routes[0]: key "endpoint" is repeated (first on line 18)`},
		{"not an integer", "", "      epoch: soon\n", 22, `routes[0].epoch: want a 32-bit integer, got "soon"`},
		{"integer too big", "", "      epoch: 4294967296\n", 22, `routes[0].epoch: want a 32-bit integer, got "4294967296"`},
		{"not a string", "  name: gw", "  name: {first: gw}", 2, "gw.yaml:2: name: want a string, got a mapping"},
		{"not a list", "", "  secretStores: none\n", 22, `secretStores: want a list, got "none"`},
		{"not a mapping", "", "  admin: [9190]\n", 22, `admin: want a mapping, got a list`},
		{"not a bool", "", "  admin:\n    endpoints:\n      metrics: maybe\n", 24, `admin.endpoints.metrics: want true or false, got "maybe"`},

		{"domain name repeated", "    - name: kafka2-domain", "    - name: kafka1-domain", 11,
			`streamingDomains[1].name: streaming domain "kafka1-domain" is already defined on line 4`},
		{"domain name missing", "    - name: kafka2-domain", `    - name: ""`, 11, "streamingDomains[1].name: missing"},
		{"domain type", "      type: kafka", "      type: pulsar", 5, `streamingDomains[0].type: type "pulsar" is not supported; the only type is kafka`},
		{"no bootstrap servers", "          - id: plain\n            endpoint: \"kafka-1:9092\"", "          []", 8,
			"streamingDomains[0].kafkaCluster.bootstrapServers: at least one bootstrap server is required"},
		{"bootstrap id repeated", `            endpoint: "kafka-2:9092, kafka-2b:9092"`,
			"            endpoint: \"kafka-2:9092\"\n          - id: plain\n            endpoint: \"kafka-2:9093\"", 16,
			`streamingDomains[1].kafkaCluster.bootstrapServers[1].id: bootstrap server "plain" is already defined on line 14`},
		{"bootstrap id missing", "          - id: plain\n            endpoint: \"kafka-1", "          - endpoint: \"kafka-1", 9,
			"bootstrapServers[0].id: missing"},
		{"bootstrap endpoint empty", `"kafka-1:9092"`, `" , "`, 10, "bootstrapServers[0].endpoint: missing; want a comma-separated list of host:port"},
		{"bootstrap endpoint no port", `"kafka-1:9092"`, `"kafka-1"`, 10, `bootstrapServers[0].endpoint: "kafka-1" is not host:port`},
		{"bootstrap endpoint bad port", `"kafka-2:9092, kafka-2b:9092"`, `"kafka-2:9092, kafka-2b:99999"`, 15,
			`"kafka-2b:99999": the port must be a number from 1 to 65535`},

		{"node id range reversed", `            endpoint: "kafka-1:9092"`,
			"            endpoint: \"kafka-1:9092\"\n        nodeIdRanges:\n          - name: low\n            start: 5\n            end: 3", 12,
			`streamingDomains[0].kafkaCluster.nodeIdRanges[0]: node id range "low" is empty or reversed: start 5 is after end 3`},
		{"node id negative", `            endpoint: "kafka-1:9092"`,
			"            endpoint: \"kafka-1:9092\"\n        nodeIdRanges:\n          - name: low\n            start: -1\n            end: 3", 13,
			"nodeIdRanges[0].start: node ids cannot be negative, got -1"},
		{"node id ranges overlap", `            endpoint: "kafka-1:9092"`,
			"            endpoint: \"kafka-1:9092\"\n        nodeIdRanges:\n          - {name: a, start: 0, end: 9}\n          - {name: b, start: 20, end: 29}\n          - {name: c, start: 5, end: 6}", 14,
			`nodeIdRanges[2]: node id range "c" (5-6) overlaps range "a" (0-9) on line 12`},

		{"route name repeated", "", strings.Replace(secondRoute, "second", "switchover-route", 1), 22,
			`routes[1].name: route "switchover-route" is already defined on line 17`},
		{"route endpoint missing", "      endpoint: \"localhost:19092\"\n", "", 17, "routes[0].endpoint: missing; want the host:port clients bootstrap from"},
		{"route endpoint no port", `"localhost:19092"`, `"localhost"`, 18, `routes[0].endpoint: "localhost" is not host:port`},
		{"route endpoint no host", `"localhost:19092"`, `":19092"`, 18, `routes[0].endpoint: ":19092" is not host:port`},
		{"route endpoint port 0", `"localhost:19092"`, `"localhost:0"`, 18, "the port must be a number from 1 to 65535"},
		{"unknown domain", "        name: kafka1-domain", "        name: kafka3-domain", 20,
			`gw.yaml:20: routes[0].streamingDomain.name: no streaming domain named "kafka3-domain" (known: kafka1-domain, kafka2-domain)`},
		{"route domain missing", "        name: kafka1-domain\n", "", 19, "routes[0].streamingDomain.name: missing; name the streaming domain the route serves (known: kafka1-domain, kafka2-domain)"},
		{"unknown bootstrap server", "bootstrapServerId: plain", "bootstrapServerId: tls", 21,
			`routes[0].streamingDomain.bootstrapServerId: no bootstrap server "tls" in streaming domain "kafka1-domain" (known: plain)`},
		{"bootstrap server missing", "        bootstrapServerId: plain\n", "", 19, `routes[0].streamingDomain.bootstrapServerId: missing; name one of the bootstrap servers of "kafka1-domain"`},
		{"host strategy without TLS", "", "      brokerIdentificationStrategy: {type: host, pattern: \"b$(nodeId).example.com\"}\n", 22,
			"routes[0].brokerIdentificationStrategy.type: the host strategy tells brokers apart by the TLS server name (SNI) clients ask for: set security.ssl with a keystore"},
		{"host strategy without pattern", "", "      brokerIdentificationStrategy: host\n", 22,
			"routes[0].brokerIdentificationStrategy.pattern: missing; the host strategy needs the brokers' host names"},
		{"pattern without node id", "", "      brokerIdentificationStrategy: {type: host, pattern: broker.example.com}\n", 22,
			`pattern: "broker.example.com" must hold $(nodeId) exactly once`},
		{"pattern with a bad port", "", "      brokerIdentificationStrategy: {type: host, pattern: \"b$(nodeId).example.com:0\"}\n", 22,
			"the port must be a number from 1 to 65535"},
		{"pattern with the port strategy", "", "      brokerIdentificationStrategy:\n        type: port\n        pattern: \"b$(nodeId).example.com\"\n", 24,
			"a pattern is for the host strategy"},
		{"unknown strategy", "", "      brokerIdentificationStrategy: sni\n", 22, `unknown strategy "sni"; use port or host`},
		{"auth swap without swapConfig", "", "      security:\n        auth: swap\n", 23, "routes[0].security.auth: auth swap needs a swapConfig"},
		{"swapConfig without swap", "", "      security:\n        swapConfig:\n          secretStore: files\n", 23, "routes[0].security.swapConfig: only used with auth: swap"},
		{"swap without users", "", "      security:\n        auth: swap\n        swapConfig:\n          secretStore: files\n", 24,
			"routes[0].security.swapConfig.clientAuth.sasl: missing"},
		{"swap with unknown store", "", "      security:\n        auth: swap\n        swapConfig:\n          clientAuth:\n            sasl:\n              jaasConfig:\n                file: users.conf\n          secretStore: vault\n", 29,
			`routes[0].security.swapConfig.secretStore: no secret store named "vault" (known: none; add one under gateway.secretStores)`},
		{"swap with unknown client mechanism", "", "      security:\n        auth: swap\n        swapConfig:\n          clientAuth:\n            sasl:\n              mechanism: GSSAPI\n", 27,
			`clientAuth.sasl.mechanism: mechanism "GSSAPI" is not supported`},
		{"swap with unknown cluster mechanism", "", "      security:\n        auth: swap\n        swapConfig:\n          clusterAuth:\n            sasl:\n              mechanism: OAUTHBEARER\n", 27,
			`clusterAuth.sasl.mechanism: mechanism "OAUTHBEARER" is not supported; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{"unknown auth", "", "      security:\n        auth: sasl\n", 23, `unknown auth "sasl"; use passthrough or swap`},
		{"negative epoch", "", "      epoch: -1\n", 22, "routes[0].epoch: cannot be negative, got -1"},

		{"routes overlap", "", strings.Replace(secondRoute, "%s", "19100", 1), 23,
			`routes[1].endpoint: port 19100 is used by both route "second" and route "switchover-route" (line 17); each route with the port strategy takes its bootstrap port and the next 16`},
		{"bootstraps collide", "", strings.Replace(secondRoute, "%s", "19092", 1), 23, `port 19092 is used by both route "second" and route "switchover-route"`},
		{"plan past 65535", `"localhost:19092"`, `"localhost:65530"`, 18,
			"routes[0].endpoint: the route needs ports 65530-65546, past 65535: its bootstrap port and one per node id (16 across all streaming domains)"},
		{"admin port used by route", "", "  admin:\n    port: 19095\n", 23, `admin.port: port 19095 is also used by route "switchover-route" (ports 19092-19108)`},
		{"admin port out of range", "", "  admin:\n    port: 70000\n", 23, "admin.port: port must be from 1 to 65535, got 70000"},
		{"vault secret store", "", "  secretStores:\n    - name: vault\n      provider:\n        type: VAULT\n", 25, "secretStores[0].provider.type: secret store type VAULT is not supported by Turnout yet"},
		{"file store without path", "", "  secretStores:\n    - name: files\n      provider:\n        type: FILE\n", 24, "secretStores[0].provider.config.path: missing"},
		{"duplicate secret store", "", "  secretStores:\n    - name: env\n      provider: {type: ENV}\n    - name: env\n      provider: {type: ENV}\n", 25, `secretStores[1].name: secret store "env" is already defined on line 23`},
		{"small frames", "", "  limits:\n    maxFrameBytes: 1000\n", 23, "limits.maxFrameBytes: must be at least 1048576 (1 MiB), got 1000"},
		{"bad drain timeout", "", "  limits:\n    drainTimeout: 5\n", 23, `limits.drainTimeout: "5" is not a duration such as 5s or 1m30s`},
		{"negative drain timeout", "", "  limits:\n    drainTimeout: -1s\n", 23, "limits.drainTimeout: cannot be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Parse("gw.yaml", edit(t, tt.from, tt.to))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error on line %d containing %q", tt.line, tt.want)
			}
			if g != nil {
				t.Error("Parse returned a Gateway along with errors")
			}
			if findError(err, tt.line, tt.want) == nil {
				t.Errorf("got:\n%v\nwant an error on line %d containing %q", err, tt.line, tt.want)
			}
		})
	}
}

func TestParseFileErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		line int
		want string
	}{
		{"empty", "", 1, "gw.yaml:1: the file is empty"},
		{"only comments", "# nothing yet\n", 1, "the file is empty"},
		{"list", "- a\n- b\n", 1, "gw.yaml:1: want a mapping of settings (streamingDomains, routes, ...), got a list"},
		{"scalar", "hello\n", 1, `got "hello"`},
		{"gateway repeated", "gateway: {}\ngateway: {}\n", 2, `gw.yaml:2: key "gateway" is repeated (first on line 1)`},
		{"gateway empty", "# cfg\ngateway:\n", 2, "want a mapping of settings (streamingDomains, routes, ...), got nothing"},
		{"scanner error", "routes:\n  - name: a\n    endpoint: b: c\n", 3, "gw.yaml:3: invalid YAML: mapping values are not allowed in this context"},
		{"parser error", "routes:\n  - name: a\n   endpoint: b\n", 2, "gw.yaml:2: invalid YAML: did not find expected '-' indicator"},
		{"parser error on line 1", ": :\n", 1, "gw.yaml:1: invalid YAML: did not find expected key"},
		{"scanner error on line 1", "\"abc", 1, "gw.yaml:1: invalid YAML: found unexpected end of stream"},
		{"not UTF-8", "routes:\n  - name: \xff\n", 2, "gw.yaml:2: the file is not UTF-8 text"},
		{"control character", "routes:\n\n  - name: a\x01\n", 3, "gw.yaml:3: character U+0001 is not allowed in YAML"},
		{"unknown anchor", "routes:\n  - *route\n", 2, "gw.yaml:2: invalid YAML: unknown anchor 'route' referenced"},
		{"two documents", "routes: []\n---\nroutes: []\n", 2, "a second YAML document starts here"},
		{"no domains", "streamingDomains: []\nroutes: []\n", 1, "streamingDomains: at least one streaming domain is required"},
		{"no routes", "streamingDomains:\n  - name: a\n    kafkaCluster:\n      bootstrapServers: [{id: p, endpoint: \"a:1\"}]\n", 1,
			"gw.yaml:1: routes: at least one route is required"},
		{"route not a mapping", "routes:\n  - r1\n", 2, `routes[0]: want a mapping, got "r1"`},
		{"cut short", "routes:\n  - name: a\n    endpoint: \"loc", 3, "gw.yaml:3: invalid YAML: found unexpected end of stream"},
		{"cut short hint", "routes:\n  - name: a\n    endpoint: \"loc", 3, "gw.yaml:3: the file does not end with a newline; was it cut short while being written?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("gw.yaml", []byte(tt.data))
			if findError(err, tt.line, tt.want) == nil {
				t.Errorf("got:\n%v\nwant an error on line %d containing %q", err, tt.line, tt.want)
			}
		})
	}
}

// A file cut short while being written either still parses (the cut fell
// between settings that are optional) or says where it stops making sense.
func TestParseTruncated(t *testing.T) {
	data, err := os.ReadFile("testdata/switchover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(data) {
		_, err := Parse("gw.yaml", data[:n])
		for _, e := range leafErrors(err) {
			var ce *Error
			if !errors.As(e, &ce) || ce.File != "gw.yaml" || ce.Line < 1 {
				t.Fatalf("cut at %d: error %q has no file and line", n, e)
			}
		}
	}
	// Cut inside the route's streaming domain name, the file is still YAML.
	cut := strings.Index(string(data), "kafka1-domain\n        bootstrapServerId") + len("kafka1-dom")
	_, err = Parse("gw.yaml", data[:cut])
	for _, want := range []string{
		`gw.yaml:26: routes[0].streamingDomain.name: no streaming domain named "kafka1-dom"`,
		"gw.yaml:26: the file does not end with a newline; was it cut short while being written?",
	} {
		if findError(err, 26, want) == nil {
			t.Errorf("got:\n%v\nwant %q", err, want)
		}
	}
}

func TestParseSwitchoverExample(t *testing.T) {
	g, err := Load("testdata/switchover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "switchover-gateway" || g.File != "testdata/switchover.yaml" || g.AdminAddr() != "127.0.0.1:9190" {
		t.Errorf("name %q, file %q, admin %q", g.Name, g.File, g.AdminAddr())
	}
	r := g.Route("switchover-route")
	if r == nil || r.StreamingDomain.Name != "kafka1-domain" || r.AdvertisedHost() != "host.docker.internal" {
		t.Fatalf("route = %+v", r)
	}
	if d := g.Domain("kafka2-domain"); d == nil || d.BootstrapServer("internal-plaintext-listener").Endpoint != "kafka-2:22222" {
		t.Errorf("kafka2-domain = %+v", d)
	}
}

// The seed's bare form (no gateway key) reads the same as the wrapped one.
func TestParseBareAndWrapped(t *testing.T) {
	const bare = `streamingDomains:
  - name: kafka1-domain
    type: kafka
    kafkaCluster:
      name: kafka-cluster-1
      bootstrapServers:
        - id: internal-plaintext-listener
          endpoint: "kafka-1:44444"
  - name: kafka2-domain
    type: kafka
    kafkaCluster:
      name: kafka-cluster-2
      bootstrapServers:
        - id: internal-plaintext-listener
          endpoint: "kafka-2:22222"
routes:
  - name: switchover-route
    endpoint: "host.docker.internal:19092"
    streamingDomain:
      name: kafka2-domain
      bootstrapServerId: internal-plaintext-listener
`
	gb, err := Parse("bare.yaml", []byte(bare))
	if err != nil {
		t.Fatal(err)
	}
	wrapped := "gateway:\n" + strings.ReplaceAll("  "+bare, "\n", "\n  ")
	gw, err := Parse("wrapped.yaml", []byte(wrapped))
	if err != nil {
		t.Fatal(err)
	}
	if !sameSettings(gb, gw) {
		t.Errorf("bare and wrapped forms differ:\n%+v\n%+v", gb, gw)
	}
	if r := gb.Route("switchover-route"); r.Line != 17 || r.StreamingDomain.Line != 19 {
		t.Errorf("route on line %d, its streaming domain on %d; want 17 and 19", r.Line, r.StreamingDomain.Line)
	}
}

func TestParseDefaults(t *testing.T) {
	g, err := Parse("gw.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	d := g.Domain("kafka2-domain")
	if d.Type != "kafka" || d.Line != 11 {
		t.Errorf("type %q on line %d, want kafka on 11", d.Type, d.Line)
	}
	if got := d.KafkaCluster.NodeIDRanges; len(got) != 1 || got[0] != (NodeIDRange{Name: "default", Start: 0, End: 15}) {
		t.Errorf("node id ranges = %+v, want the default 0-15", got)
	}
	b := d.BootstrapServer("plain")
	if hosts := b.Hosts(); len(hosts) != 2 || hosts[0] != "kafka-2:9092" || hosts[1] != "kafka-2b:9092" || b.Line != 14 {
		t.Errorf("hosts %q on line %d", hosts, b.Line)
	}
	r := g.Route("switchover-route")
	if r.BrokerIdentificationStrategy.Type != "port" || r.Security.Auth != "passthrough" || r.Epoch != 0 || r.ListenHost() != "" || r.Line != 17 || r.StreamingDomain.Line != 19 {
		t.Errorf("route = %+v", r)
	}
	if g.MaxFrameBytes() != 104857600 || g.DrainTimeout() != 5*time.Second || g.AdminAddr() != "127.0.0.1:9190" || !g.MetricsEnabled() || g.Admin.RequireLease {
		t.Errorf("max frame %d, drain %v, admin %q, metrics %v, require lease %v", g.MaxFrameBytes(), g.DrainTimeout(), g.AdminAddr(), g.MetricsEnabled(), g.Admin.RequireLease)
	}

	g, err = Parse("gw.yaml", []byte(base+"      bind: 10.0.0.1\n  admin:\n    bindAddress: 0.0.0.0\n    tokenFile: /etc/turnout/admin-token\n    port: 9999\n    requireLease: true\n    endpoints:\n      metrics: false\n  limits:\n    maxFrameBytes: 1048576\n    drainTimeout: 1m\n"))
	if err != nil {
		t.Fatal(err)
	}
	if g.Routes[0].ListenHost() != "10.0.0.1" || g.MaxFrameBytes() != 1<<20 || g.DrainTimeout() != time.Minute || g.AdminAddr() != "0.0.0.0:9999" || g.MetricsEnabled() || !g.Admin.RequireLease {
		t.Errorf("bind %q, max frame %d, drain %v, admin %q, metrics %v", g.Routes[0].ListenHost(), g.MaxFrameBytes(), g.DrainTimeout(), g.AdminAddr(), g.MetricsEnabled())
	}
}

// An admin API reachable from elsewhere must guard POST /restart with a
// token; half a TLS setting is refused rather than served as plain HTTP.
func TestParseAdminSecurity(t *testing.T) {
	for _, tc := range []struct {
		admin string
		line  int
		want  string
	}{
		{"    bindAddress: 0.0.0.0\n", 23, "admin.bindAddress: 0.0.0.0 is not a loopback address, so POST /restart needs a bearer token: set admin.tokenFile"},
		{"    bindAddress: gw.example\n", 23, "set admin.tokenFile"},
		{"    tls:\n      certFile: admin.pem\n", 23, "admin.tls: set both certFile and keyFile"},
	} {
		_, err := Parse("gw.yaml", []byte(base+"  admin:\n"+tc.admin))
		if findError(err, tc.line, tc.want) == nil {
			t.Errorf("admin %q: got %v, want an error on line %d containing %q", tc.admin, err, tc.line, tc.want)
		}
	}
	for _, admin := range []string{"    bindAddress: 127.0.0.2\n", "    bindAddress: ::1\n", "    bindAddress: localhost\n",
		"    bindAddress: 0.0.0.0\n    tokenFile: token\n    tls:\n      certFile: admin.pem\n      keyFile: admin-key.pem\n"} {
		if _, err := Parse("gw.yaml", []byte(base+"  admin:\n"+admin)); err != nil {
			t.Errorf("admin %q: %v", admin, err)
		}
	}
}

func TestParseReportsAllProblems(t *testing.T) {
	data := edit(t, "      type: kafka", "      type: pulsar")
	data = []byte(strings.Replace(string(data), "bootstrapServerId: plain", "bootstrapServerId: tls", 1))
	_, err := Parse("gw.yaml", data)
	errs := leafErrors(err)
	if len(errs) != 2 || findError(err, 5, "pulsar") == nil || findError(err, 21, "tls") == nil {
		t.Errorf("got %d errors, want the type on line 5 and the server on 21:\n%v", len(errs), err)
	}
}

// Routes on different addresses may use the same ports.
func TestParseSamePortsOtherAddress(t *testing.T) {
	data := base + "      bind: 10.0.0.1\n" + strings.Replace(secondRoute, "%s", "19092", 1) + "      bind: 10.0.0.2\n"
	if _, err := Parse("gw.yaml", []byte(data)); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load("testdata/missing.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want one wrapping os.ErrNotExist", err)
	}
}

// Lists of aliases to lists of aliases would make a small file decode into
// a huge one.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("streamingDomains:\n  - name: d\n    kafkaCluster:\n      bootstrapServers: &s [")
	for range 2000 {
		b.WriteString(`{id: p, endpoint: "a:1"},`)
	}
	b.WriteString("]\n")
	for range 2000 {
		b.WriteString("  - {name: d, kafkaCluster: {bootstrapServers: *s}}\n")
	}
	_, err := Parse("gw.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "aliases repeat settings more often than any configuration needs") {
		t.Errorf("err = %.300v", err)
	}
}
