package kafkatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RouteName is the one route the test gateways serve.
const RouteName = "switchover-route"

// nodeIDs is the nodeIdRanges of every domain: 0..2, so the gateway serves a
// bootstrap port and three broker ports; the clusters' broker is node 1.
const nodeIDStart, nodeIDEnd = 0, 2

var binary struct {
	once sync.Once
	path string
	err  error
	dir  string
}

// Binary is the turnout binary the tests run: $TURNOUT_BIN (make e2e sets it
// to bin/turnout, built by make build), else one built from this source.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TURNOUT_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("TURNOUT_BIN: %v", err)
		}
		return p
	}
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "turnout-e2e-bin-")
		if err != nil {
			binary.err = err
			return
		}
		binary.dir = dir
		binary.path = filepath.Join(dir, "turnout")
		cmd := exec.Command("go", "build", "-o", binary.path, "github.com/turnout/turnout/cmd/turnout")
		cmd.Dir = E2EDir
		if out, err := cmd.CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("go build ./cmd/turnout: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// Gateway is `turnout gateway` run as a process, serving one route in front
// of the clusters given, one streaming domain each.
type Gateway struct {
	Name      string // its process name: "gateway", or what StartGatewayAs was given
	Port      int    // the route's bootstrap port; broker ports follow it
	AdminAddr string
	Config    string // gateway.yaml, or <name>.yaml
	Log       string

	bed      *Bed
	clusters []*Cluster
	proc     *Process
	active   int
	epoch    int32
	sec      *GatewaySecurity
}

// Status is the gateway's GET /status (and POST /restart) body.
type Status struct {
	Routes []RouteStatus `json:"routes"`
	Error  string        `json:"error,omitempty"`
}

// RouteStatus is one route in a Status.
type RouteStatus struct {
	Name              string `json:"name"`
	Endpoint          string `json:"endpoint"`
	Domain            string `json:"domain"`
	BootstrapServerID string `json:"bootstrapServerId"`
	ClusterID         string `json:"clusterId"`
	ConfigEpoch       int32  `json:"configEpoch"`
	Connections       int    `json:"connections"`
}

// Domain is the streaming domain name a cluster has in gateway.yaml.
func Domain(c *Cluster) string { return c.Name + "-domain" }

// StartGateway writes gateway.yaml with one domain per cluster and the route
// on clusters[active], runs the binary and waits for GET /healthz.
func (b *Bed) StartGateway(ctx context.Context, clusters []*Cluster, active int) *Gateway {
	b.T.Helper()
	return b.StartGatewayAs(ctx, "gateway", clusters, active)
}

// StartGatewayAs is StartGateway for one of several gateways of a test: its
// config is <name>.yaml and its log <name>.out, and it has ports of its own,
// so that two gateways serve the same route side by side.
func (b *Bed) StartGatewayAs(ctx context.Context, name string, clusters []*Cluster, active int) *Gateway {
	b.T.Helper()
	g := b.NewGateway(name, clusters, active, nil)
	g.Start(ctx)
	return g
}

// NewGateway lays out a gateway as StartGatewayAs does, with the route's
// security sec (nil for none), and writes its configuration; Start runs it.
// A test checks the configuration (Validate) before it starts
// anything heavy.
func (b *Bed) NewGateway(name string, clusters []*Cluster, active int, sec *GatewaySecurity) *Gateway {
	b.T.Helper()
	g := &Gateway{
		Name:      name,
		Port:      FreePorts(b.T, 1+nodeIDEnd-nodeIDStart+1),
		AdminAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePorts(b.T, 1))),
		Config:    b.Path(name + ".yaml"),
		Log:       b.Path(name + ".log"),
		bed:       b, clusters: clusters, active: active, sec: sec,
	}
	if sec != nil {
		if err := g.writeSecrets(); err != nil {
			b.T.Fatalf("%s: %v", name, err)
		}
	}
	g.write()
	return g
}

// Start runs the gateway laid out by NewGateway and waits for GET /healthz.
func (g *Gateway) Start(ctx context.Context) {
	b, name := g.bed, g.Name
	b.T.Helper()
	if err := g.Relaunch(ctx); err != nil {
		b.T.Fatal(err)
	}
	st := g.Status(ctx)
	if len(st.Routes) != 1 || st.Routes[0].ClusterID != g.clusters[g.active].ID {
		b.T.Fatalf("%s status %+v: want route %s on cluster %s", name, st, RouteName, g.clusters[g.active].ID)
	}
}

// Relaunch runs the gateway's process (again, after a kill) with its
// configuration file as it stands, and waits for GET /healthz; unlike
// Start, it does not expect any cluster, as a drill's agents may have
// moved the route since.
func (g *Gateway) Relaunch(ctx context.Context) error {
	b, name := g.bed, g.Name
	cmd := exec.Command(Binary(b.T), "gateway", "--config", g.Config, "--admin", g.AdminAddr, "--log-level", "debug")
	cmd.Dir = b.Dir
	p, err := b.Start(name, cmd)
	if err != nil {
		return err
	}
	g.proc = p
	g.Log = p.Log
	err = Poll(30*time.Second, 50*time.Millisecond, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("%s exited: %v\n%s", name, p.Err(), p.Tail(20))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.AdminAddr+"/healthz", nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("%s never became healthy: %w", name, err)
	}
	return nil
}

// Process is the gateway's process.
func (g *Gateway) Process() *Process { return g.proc }

// Route is the route's entry in GET /status, or an error when the gateway
// does not answer or does not serve the route.
func (g *Gateway) Route(ctx context.Context) (RouteStatus, error) {
	st, code, err := g.call(ctx, http.MethodGet, "/status", nil)
	if err != nil {
		return RouteStatus{}, err
	}
	for _, r := range st.Routes {
		if r.Name == RouteName && code == http.StatusOK {
			return r, nil
		}
	}
	return RouteStatus{}, fmt.Errorf("%s: GET /status %d: no route %s in %+v", g.Name, code, RouteName, st)
}

// write writes the gateway's configuration file. It is the one place that
// knows the YAML schema, security included (see GatewaySecurity).
func (g *Gateway) write() {
	var sb strings.Builder
	fmt.Fprintf(&sb, "gateway:\n  name: e2e\n")
	if sec := g.sec; sec != nil && sec.Auth == "swap" {
		// Each user's credentials on each cluster: FILE store
		// DIR/<domain>/<user> holding "<username>:<password>".
		fmt.Fprintf(&sb, "  secretStores:\n    - name: cluster-credentials\n      provider:\n        type: FILE\n        config:\n          path: %q\n", g.secretDir())
	}
	fmt.Fprintf(&sb, "  streamingDomains:\n")
	for _, c := range g.clusters {
		fmt.Fprintf(&sb, "    - name: %s\n      type: kafka\n      kafkaCluster:\n        name: %s\n", Domain(c), c.Name)
		fmt.Fprintf(&sb, "        bootstrapServers:\n          - id: plain\n            endpoint: %q\n", c.Addr())
		if c.Secure() {
			// TLS to the broker, trusting the clusters' CA; the
			// gateway's own login (its metadata client, the agents'
			// probes) is the cluster's admin: a Turnout extension.
			fmt.Fprintf(&sb, "            ssl:\n              truststore:\n                type: PEM\n                location: %q\n", c.Certs.CA)
			fmt.Fprintf(&sb, "            sasl:\n              mechanism: %s\n              username: %s\n              password:\n                file: %q\n",
				ScramSHA512, c.Sec.Admin.Name, g.secretPath("admin-"+c.Name))
		}
		fmt.Fprintf(&sb, "        nodeIdRanges:\n          - {name: all, start: %d, end: %d}\n", nodeIDStart, nodeIDEnd)
	}
	fmt.Fprintf(&sb, "  routes:\n    - name: %s\n      endpoint: %q\n      bind: 127.0.0.1\n", RouteName, g.Bootstrap())
	if g.sec.sni() {
		fmt.Fprintf(&sb, "      brokerIdentificationStrategy: {type: host, pattern: %q}\n", g.sec.HostPattern)
	}
	fmt.Fprintf(&sb, "      epoch: %d\n      streamingDomain:\n        name: %s\n        bootstrapServerId: plain\n",
		g.epoch, Domain(g.clusters[g.active]))
	if sec := g.sec; sec != nil {
		ks := sec.KeystoreType
		if ks == "" {
			ks = "PKCS12"
		}
		fmt.Fprintf(&sb, "      security:\n        auth: %s\n        ssl:\n          keystore:\n            type: %s\n", sec.Auth, ks)
		switch ks {
		case "JKS":
			fmt.Fprintf(&sb, "            location: %q\n            password:\n              file: %q\n", sec.Server.JKS, sec.Server.PasswordFile)
		default:
			fmt.Fprintf(&sb, "            location: %q\n            password:\n              file: %q\n", sec.Server.PKCS12, sec.Server.PasswordFile)
		}
		if sec.ClientAuth != "" && sec.ClientAuth != "none" {
			fmt.Fprintf(&sb, "          truststore:\n            type: PEM\n            location: %q\n", sec.ClientCA.CA)
		}
		if sec.ClientAuth != "" {
			fmt.Fprintf(&sb, "          clientAuth: %s\n", sec.ClientAuth)
		}
		if sec.Auth == "swap" {
			fmt.Fprintf(&sb, "        swapConfig:\n          clientAuth:\n            sasl:\n              mechanism: %q\n              jaasConfig:\n                file: %q\n",
				sec.ClientMechanism, g.secretPath("users.jaas"))
			fmt.Fprintf(&sb, "          secretStore: cluster-credentials\n          clusterAuth:\n            sasl:\n              mechanism: %s\n", sec.clusterMechanism())
		}
	}
	// Atomically, as the agents do: a restart never reads half a file.
	tmp := g.Config + ".tmp"
	if err := os.WriteFile(tmp, []byte(sb.String()), 0o644); err != nil {
		g.bed.T.Fatal(err)
	}
	if err := os.Rename(tmp, g.Config); err != nil {
		g.bed.T.Fatal(err)
	}
}

// Bootstrap is the address clients are given: the route's endpoint, whose
// host is GatewaySecurity.Host on an SNI route and 127.0.0.1 otherwise.
func (g *Gateway) Bootstrap() string {
	host := "127.0.0.1"
	if g.sec.sni() {
		host = g.sec.Host
	}
	return net.JoinHostPort(host, strconv.Itoa(g.Port))
}

// IsGatewayAddr says whether host:port is one of the gateway's listeners.
func (g *Gateway) IsGatewayAddr(addr string) bool {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	port, _ := strconv.Atoi(p)
	if g.sec.sni() {
		// One port; the names are the endpoint's host and the brokers'.
		ok := host == g.sec.Host
		for id := nodeIDStart; id <= nodeIDEnd; id++ {
			ok = ok || host == g.BrokerHost(int32(id))
		}
		return ok && port == g.Port
	}
	return (host == "127.0.0.1" || host == "localhost") && port >= g.Port && port <= g.Port+1+nodeIDEnd-nodeIDStart
}

// BrokerAddr is the gateway address of the test clusters' broker.
func (g *Gateway) BrokerAddr() string {
	if g.sec.sni() {
		return net.JoinHostPort(g.BrokerHost(NodeID), strconv.Itoa(g.Port))
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(g.Port+1+NodeID-nodeIDStart))
}

// CheckAddrs returns an error naming every address in addrs that is not the
// gateway's, and names a cluster's own address if one appears.
func (g *Gateway) CheckAddrs(addrs []string) error {
	var bad []string
	for _, a := range addrs {
		if !g.IsGatewayAddr(a) {
			bad = append(bad, a)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("client learned addresses that are not the gateway's %s..%d: %v", g.Bootstrap(), g.Port+3, bad)
	}
	return nil
}

// LeaksClusterAddr says which cluster addresses text mentions, if any: a
// client's log that names one learned an address past the gateway.
func (g *Gateway) LeaksClusterAddr(text string) []string {
	var found []string
	for _, c := range g.clusters {
		for _, port := range []int{c.Port, c.ControllerPort} {
			re := regexp.MustCompile(`(127\.0\.0\.1|localhost):` + strconv.Itoa(port) + `\b`)
			if re.MatchString(text) {
				found = append(found, fmt.Sprintf("%s:%d (%s)", "127.0.0.1", port, c.Name))
			}
		}
	}
	return found
}

// Status is GET /status.
func (g *Gateway) Status(ctx context.Context) Status {
	g.bed.T.Helper()
	st, _, err := g.call(ctx, http.MethodGet, "/status", nil)
	if err != nil {
		g.bed.T.Fatal(err)
	}
	return st
}

// Switch points the route at clusters[to] with the next epoch, writes
// gateway.yaml and posts /restart, which returns once the old connections
// are drained. It returns the status the restart answered with.
func (g *Gateway) Switch(ctx context.Context, to int) (Status, error) {
	g.active = to
	g.epoch++
	g.write()
	st, err := g.Restart(ctx)
	if err != nil {
		return st, err
	}
	if len(st.Routes) != 1 || st.Routes[0].ClusterID != g.clusters[to].ID || st.Routes[0].ConfigEpoch != g.epoch {
		return st, fmt.Errorf("POST /restart answered %+v: want cluster %s at epoch %d", st, g.clusters[to].ID, g.epoch)
	}
	return st, nil
}

// Restart posts /restart with no body: the gateway re-reads its file as it
// stands. It returns the status the restart answered with.
func (g *Gateway) Restart(ctx context.Context) (Status, error) {
	return g.restart(ctx, nil)
}

// RestartAt posts /restart with the route's domain and epoch in the body:
// the gateway writes them to its own file and serves them, draining the
// route's connections when either changed.
func (g *Gateway) RestartAt(ctx context.Context, domain string, epoch int32) (Status, error) {
	type routeSwitch struct {
		Name   string `json:"name"`
		Domain string `json:"domain"`
		Epoch  int32  `json:"epoch"`
	}
	return g.restart(ctx, map[string][]routeSwitch{"routes": {{Name: RouteName, Domain: domain, Epoch: epoch}}})
}

func (g *Gateway) restart(ctx context.Context, body any) (Status, error) {
	st, code, err := g.call(ctx, http.MethodPost, "/restart", body)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("%s: POST /restart: %d %s", g.Name, code, st.Error)
	}
	return st, nil
}

// call makes an admin API call, with body as JSON unless it is nil.
func (g *Gateway) call(ctx context.Context, method, path string, body any) (Status, int, error) {
	var st Status
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return st, 0, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+g.AdminAddr+path, r)
	if err != nil {
		return st, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(answer, &st); err != nil {
		return st, resp.StatusCode, fmt.Errorf("%s %s: %d %s: %w", method, path, resp.StatusCode, bytes.TrimSpace(answer), err)
	}
	return st, resp.StatusCode, nil
}

// Metric sums the samples of a metric on the gateway's /metrics whose
// labels include every name="value" in labels (pairs).
func (g *Gateway) Metric(ctx context.Context, name string, labels ...string) (float64, error) {
	return metricSum(ctx, "http://"+g.AdminAddr+"/metrics", name, labels...)
}

// metricSum scrapes url (a Prometheus text page) and sums the samples of
// metric name whose labels include every name="value" in labels (pairs).
func metricSum(ctx context.Context, url, name string, labels ...string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, bytes.TrimSpace(body))
	}
	var sum float64
	for line := range strings.Lines(string(body)) {
		series, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		matches := true
		for i := 0; i+1 < len(labels); i += 2 {
			matches = matches && strings.Contains(series, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil && matches {
			sum += v
		}
	}
	return sum, nil
}

// LogLines returns the gateway's log lines that contain every one of words.
func (g *Gateway) LogLines(words ...string) []string { return linesWith(g.Log, words) }
