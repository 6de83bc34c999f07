package policy

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/yamlstrict"
)

// base is a valid policy that the cases below edit. Its lines:
//
//	1 routes               9 failuresToBreach  17 topics
//	2 - name               10 minBrokers       18 gateways
//	3 primary              11 failover         19 - name
//	4 standby              12 automatic        20 admin
//	5 probe                13 maxLagRecords    21 gatewayConfig
//	6 interval             14 cooldown         22 signalFile
//	7 timeout              15 replication
//	8 health               16 mode
const base = `routes:
  - name: switchover-route
    primary: kafka1-domain
    standby: kafka2-domain
probe:
  interval: 1s
  timeout: 2s
health:
  failuresToBreach: 3
  minBrokers: 1
failover:
  automatic: true
  maxLagRecords: 10000
  cooldown: 10m
replication:
  mode: mirrormaker2
  topics: [orders]
gateways:
  - name: gw-1
    admin: http://127.0.0.1:9190
gatewayConfig: /etc/turnout/gateway.yaml
signalFile: /var/lib/turnout/signal
`

// edit returns base with from replaced by to, or with to appended when from
// is empty.
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

func leafErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// hasError reports whether err holds a problem on line whose text contains
// want.
func hasError(err error, line int, want string) bool {
	for _, e := range leafErrors(err) {
		if ye, ok := errors.AsType[*yamlstrict.Error](e); ok && ye.Line == line && strings.Contains(ye.Error(), want) {
			return true
		}
	}
	return false
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		from, to string // replace from with to in base; from "" appends to
		line     int
		want     string
	}{
		{"unknown top key", "", "signalfile: x\n", 23,
			`policy.yaml:23: unknown key "signalfile" (allowed: routes, probe, health, failover, replication, gateways, fencing, gatewayConfig, signalFile)`},
		{"unknown probe key", "  timeout: 2s", "  timout: 2s", 7, `probe: unknown key "timout" (allowed: interval, timeout, canaryTopic)`},
		{"unknown route key", "    standby: kafka2-domain", "    secondary: kafka2-domain", 4,
			`routes[0]: unknown key "secondary" (allowed: name, primary, standby)`},
		{"unknown gateway key", "    admin: http", "    url: http", 20, `gateways[0]: unknown key "url" (allowed: name, admin, tokenFile, caFile, restartCommand, timeout)`},
		{"repeated key", "  timeout: 2s", "  timeout: 2s\n  timeout: 3s", 8, `probe: key "timeout" is repeated (first on line 7)`},
		{"bare number duration", "  interval: 1s", "  interval: 1", 6, "probe.interval: 1 has no unit; use a unit, e.g. 1s"},
		{"quoted bare number", "  cooldown: 10m", `  cooldown: "600"`, 14, "failover.cooldown: 600 has no unit"},
		{"bad duration", "  timeout: 2s", "  timeout: soon", 7, `probe.timeout: want a duration such as 1s or 1m30s, got "soon"`},
		{"duration list", "  timeout: 2s", "  timeout: [2s]", 7, "probe.timeout: want a duration such as 1s or 1m30s, got a list"},
		{"zero interval", "  interval: 1s", "  interval: 0s", 6, "probe.interval: must be more than 0, got 0s"},
		{"negative timeout", "  timeout: 2s", "  timeout: -2s", 7, "probe.timeout: must be more than 0, got -2s"},
		{"bad canary topic", "  timeout: 2s", "  timeout: 2s\n  canaryTopic: \"turnout canary\"", 8,
			`probe.canaryTopic: "turnout canary" is not a Kafka topic name`},
		{"zero failures", "  failuresToBreach: 3", "  failuresToBreach: 0", 9, "health.failuresToBreach: must be at least 1, got 0"},
		{"failures not a number", "  failuresToBreach: 3", "  failuresToBreach: three", 9, `health.failuresToBreach: want an integer, got "three"`},
		{"zero brokers", "  minBrokers: 1", "  minBrokers: 0", 10, "health.minBrokers: must be at least 1, got 0"},
		{"automatic not a bool", "  automatic: true", "  automatic: sometimes", 12, `failover.automatic: want true or false, got "sometimes"`},
		{"negative lag", "  maxLagRecords: 10000", "  maxLagRecords: -1", 13, "failover.maxLagRecords: cannot be negative, got -1"},
		{"negative cooldown", "  cooldown: 10m", "  cooldown: -1m", 14, "failover.cooldown: cannot be negative, got -1m0s"},
		{"planned pause too long", "  cooldown: 10m", "  cooldown: 10m\n  plannedPause: 2m", 15, "failover.plannedPause: must be from 0s (no pause) to 1m0s, got 2m0s"},
		{"zero lag age", "  cooldown: 10m", "  cooldown: 10m\n  maxLagAge: 0s", 15, "failover.maxLagAge: must be more than 0, got 0s"},
		{"lag age within a breach", "  cooldown: 10m", "  cooldown: 10m\n  maxLagAge: 9s", 15,
			"failover.maxLagAge: 9s is no longer than a breach can take to detect (9s: health.failuresToBreach × (probe.interval + probe.timeout))"},
		{"lease too short", "  cooldown: 10m\n", "  cooldown: 10m\nfencing: {lease: 500ms}\n", 15, "fencing.lease: must be 0s (no fencing) or from 1s to 1m0s, got 500ms"},
		{"lease too long", "  cooldown: 10m\n", "  cooldown: 10m\nfencing:\n  lease: 2m\n", 16, "fencing.lease: must be 0s (no fencing) or from 1s to 1m0s, got 2m0s"},
		{"unknown mode", "  mode: mirrormaker2", "  mode: mm2", 16, `replication.mode: unknown mode "mm2"; use mirrormaker2, offsets (offset-preserving links) or none`},
		{"no topics", "  topics: [orders]", "  topics: []", 17, "replication.topics: at least one topic is required to measure mirrormaker2 lag"},
		{"topics missing", "  topics: [orders]\n", "", 15, "replication.topics: at least one topic is required"},
		{"topics with mode none", "  mode: mirrormaker2", "  mode: none", 17, "replication.topics: mode none measures no lag, so topics would be ignored"},
		{"bad regexp", "  topics: [orders]", "  topics: [orders, \"orders.(\"]", 17, "replication.topics[1]: \"orders.(\" is not a regular expression: missing closing ): `orders.(`"},
		{"empty topic", "  topics: [orders]", "  topics:\n    - orders\n    - \"\"", 19, "replication.topics[1]: empty"},
		{"no routes", "routes:\n  - name: switchover-route\n    primary: kafka1-domain\n    standby: kafka2-domain\n", "routes: []\n", 1,
			"routes: at least one route is required"},
		{"route name missing", "  - name: switchover-route\n    primary", "  - primary", 2, "routes[0].name: missing"},
		{"route name repeated", "    standby: kafka2-domain\n", "    standby: kafka2-domain\n  - name: switchover-route\n    primary: a\n    standby: b\n", 5,
			`routes[1].name: route "switchover-route" is already defined on line 2`},
		{"primary missing", "    primary: kafka1-domain\n", "", 2, "routes[0].primary: missing"},
		{"standby missing", "    standby: kafka2-domain\n", "", 2, "routes[0].standby: missing"},
		{"primary is standby", "standby: kafka2-domain", "standby: kafka1-domain", 4, `routes[0].standby: the standby must differ from the primary, both are "kafka1-domain"`},
		{"routes not a list", "routes:\n  - name: switchover-route\n    primary: kafka1-domain\n    standby: kafka2-domain\n", "routes: switchover-route\n", 1,
			`routes: want a list, got "switchover-route"`},
		{"no gateways", "gateways:\n  - name: gw-1\n    admin: http://127.0.0.1:9190\n", "gateways: []\n", 18, "gateways: at least one gateway is required"},
		{"gateway name missing", "  - name: gw-1\n    admin", "  - admin", 19, "gateways[0].name: missing"},
		{"gateway name repeated", "    admin: http://127.0.0.1:9190\n", "    admin: http://127.0.0.1:9190\n  - name: gw-1\n    admin: http://127.0.0.1:9191\n", 21,
			`gateways[1].name: gateway "gw-1" is already defined on line 19`},
		{"gateway admin and command", "    admin: http://127.0.0.1:9190\n", "    admin: http://127.0.0.1:9190\n    restartCommand: [systemctl, restart, gw]\n", 19,
			"gateways[0]: set admin or restartCommand, not both"},
		{"gateway neither", "    admin: http://127.0.0.1:9190\n", "", 19, "gateways[0]: set admin (the gateway's admin URL) or restartCommand"},
		{"gateway admin not a URL", "http://127.0.0.1:9190", "127.0.0.1:9190", 20, `gateways[0].admin: "127.0.0.1:9190" is not an http:// or https:// URL`},
		{"gateway admin no host", "http://127.0.0.1:9190", "http://", 20, `gateways[0].admin: "http://" is not an http:// or https:// URL`},
		{"gateway empty program", "    admin: http://127.0.0.1:9190", `    restartCommand: ["", restart]`, 20, "gateways[0].restartCommand: the program to run is empty"},
		{"gateway CA for plain HTTP", "    admin: http://127.0.0.1:9190\n", "    admin: http://127.0.0.1:9190\n    caFile: ca.pem\n", 21,
			"gateways[0].caFile: is for an https:// admin URL; http://127.0.0.1:9190 is plain HTTP"},
		{"gateway token for a command", "    admin: http://127.0.0.1:9190\n", "    restartCommand: [systemctl, restart, gw]\n    tokenFile: t\n", 19,
			"gateways[0]: tokenFile and caFile are for a gateway's admin URL, not a restartCommand"},
		{"gateway command not a list", "    admin: http://127.0.0.1:9190", "    restartCommand: systemctl restart gw", 20,
			`gateways[0].restartCommand: want a list, got "systemctl restart gw"`},
		{"gateway zero timeout", "    admin: http://127.0.0.1:9190", "    admin: http://127.0.0.1:9190\n    timeout: 0s", 21, "gateways[0].timeout: must be more than 0, got 0s"},
		{"gateway bare timeout", "    admin: http://127.0.0.1:9190", "    admin: http://127.0.0.1:9190\n    timeout: 30", 21, "gateways[0].timeout: 30 has no unit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("policy.yaml", edit(t, tt.from, tt.to))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error on line %d containing %q", tt.line, tt.want)
			}
			if p != nil {
				t.Error("Parse returned a Policy along with errors")
			}
			if !hasError(err, tt.line, tt.want) {
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
		{"empty", "", 1, "policy.yaml:1: the file is empty; want routes, probe, health, failover, replication and gateways"},
		{"only comments", "# later\n", 1, "the file is empty"},
		{"list", "- routes\n", 1, "policy.yaml:1: want a mapping of settings (routes, probe, gateways, ...), got a list"},
		{"scalar", "automatic\n", 1, `got "automatic"`},
		{"invalid YAML", "routes:\n  - name: a\n    primary: b: c\n", 3, "policy.yaml:3: invalid YAML: mapping values are not allowed in this context"},
		{"two documents", base + "---\n" + base, 23, "a second YAML document starts here"},
		{"not UTF-8", "routes:\n  - name: \xff\n", 2, "the file is not UTF-8 text"},
		{"cut short", base[:strings.Index(base, "mirrormaker2")+len("mirrorm")], 16, "the file does not end with a newline; was it cut short while being written?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse("policy.yaml", []byte(tt.data)); !hasError(err, tt.line, tt.want) {
				t.Errorf("got:\n%v\nwant an error on line %d containing %q", err, tt.line, tt.want)
			}
		})
	}
}

// Every problem is reported at once, in line order.
func TestParseReportsAllProblems(t *testing.T) {
	data := edit(t, "  interval: 1s", "  interval: 0s")
	data = []byte(strings.Replace(string(data), "  mode: mirrormaker2", "  mode: mm2", 1))
	_, err := Parse("policy.yaml", data)
	if errs := leafErrors(err); len(errs) != 2 || !hasError(err, 6, "interval") || !hasError(err, 16, "mm2") {
		t.Errorf("got %d errors, want the interval on line 6 and the mode on 16:\n%v", len(errs), err)
	}
}

// The sample in DESIGN.md, comments and all, is a valid policy and reads as
// it says.
func TestLoadDesignSample(t *testing.T) {
	p, err := Load("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Routes:        []Route{{Name: "switchover-route", Primary: "kafka1-domain", Standby: "kafka2-domain", Line: 2}},
		Probe:         Probe{Interval: time.Second, Timeout: 2 * time.Second},
		Health:        Health{FailuresToBreach: 3, MinBrokers: 1},
		Failover:      Failover{Automatic: true, MaxLagRecords: 10000, Cooldown: 10 * time.Minute, MaxLagAge: time.Minute, PlannedPause: 15 * time.Second},
		Replication:   Replication{Mode: ModeMirrorMaker2, Topics: []string{"orders"}, Patterns: p.Replication.Patterns},
		Gateways:      []Gateway{{Name: "gw-1", Admin: "http://127.0.0.1:9190", Timeout: 30 * time.Second, Line: 19}},
		Fencing:       Fencing{Lease: 10 * time.Second},
		GatewayConfig: "/etc/turnout/gateway.yaml",
		SignalFile:    "/var/lib/turnout/signal",
		File:          "testdata/design.yaml",
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load("testdata/missing.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want one wrapping os.ErrNotExist", err)
	}
}

// What the file leaves out takes the documented defaults; what it sets,
// even to a value equal to the zero of its type, is kept.
func TestParseDefaults(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		check func(*Policy) bool
	}{
		{"minimal", `routes: [{name: r, primary: a, standby: b}]
replication: {topics: [orders]}
gateways: [{name: g, restartCommand: [systemctl, restart, gw]}]
`, func(p *Policy) bool {
			return p.Probe == Probe{Interval: time.Second, Timeout: 2 * time.Second} &&
				p.Health == Health{FailuresToBreach: 3, MinBrokers: 1} &&
				p.Failover == Failover{Automatic: true, MaxLagRecords: 10000, Cooldown: 10 * time.Minute, MaxLagAge: time.Minute, PlannedPause: 15 * time.Second} &&
				p.Replication.Mode == ModeMirrorMaker2 && p.Gateways[0].Timeout == 30*time.Second &&
				p.GatewayConfig == "" && p.SignalFile == "" && p.Fencing.Lease == 10*time.Second
		}},
		{"explicit zeros", `routes: [{name: r, primary: a, standby: b}]
failover: {automatic: false, maxLagRecords: 0, cooldown: 0s, plannedPause: 0s}
replication: {mode: none}
gateways: [{name: g, admin: "https://gw:9190", timeout: 1m}]
fencing: {lease: 0s}
`, func(p *Policy) bool {
			return p.Failover == Failover{MaxLagAge: time.Minute} && p.Replication.Mode == ModeNone && p.Gateways[0].Timeout == time.Minute && p.Fencing.Lease == 0
		}},
		{"null keeps the default", `routes: [{name: r, primary: a, standby: b}]
failover:
  automatic:
replication: {mode: offsets, topics: ["orders\\..*"]}
gateways: [{name: g, admin: "http://gw:9190"}]
`, func(p *Policy) bool { return p.Failover.Automatic && p.Replication.Mode == ModeOffsets }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("policy.yaml", []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(p) {
				t.Errorf("got %+v", p)
			}
		})
	}
}

func TestReplicationMatches(t *testing.T) {
	p, err := Parse("policy.yaml", edit(t, "  topics: [orders]", `  topics: [orders, "payments\\..*"]`))
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]bool{
		"orders": true, "orders2": false, "my-orders": false,
		"payments.eu": true, "payments": false, "payments.": true,
	} {
		if got := p.Replication.Matches(topic); got != want {
			t.Errorf("Matches(%q) = %v, want %v", topic, got, want)
		}
	}
}

func TestResolveRoute(t *testing.T) {
	one := &Policy{Routes: []Route{{Name: "r1"}}}
	two := &Policy{Routes: []Route{{Name: "r1"}, {Name: "r2"}}}
	tests := []struct {
		name    string
		p       *Policy
		route   string
		want    string
		wantErr string
	}{
		{"named", two, "r2", "r2", ""},
		{"the only route", one, "", "r1", ""},
		{"ambiguous", two, "", "", "the policy has 2 routes; name one (r1, r2)"},
		{"unknown", one, "r9", "", `the policy has no route "r9" (routes: r1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.p.ResolveRoute(tt.route)
			switch {
			case tt.wantErr != "":
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
			case err != nil || r.Name != tt.want:
				t.Errorf("got %v, %v; want route %s", r, err, tt.want)
			}
		})
	}
}

func TestQuorumAndStaleAfter(t *testing.T) {
	p := &Policy{Probe: Probe{Interval: 300 * time.Millisecond, Timeout: time.Second}}
	if got := p.StaleAfter(); got != 1900*time.Millisecond {
		t.Errorf("StaleAfter = %v, want 3*300ms+1s", got)
	}
	for agents, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3} {
		if got := p.Quorum(agents); got != want {
			t.Errorf("Quorum(%d) = %d, want %d", agents, got, want)
		}
	}
}
