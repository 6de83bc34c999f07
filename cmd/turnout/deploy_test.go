package main

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/turnout/turnout/consensus"
	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/config"
)

// repoRoot is where docker-compose.yml and configs/ live, seen from here.
const repoRoot = "../.."

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	Command     any            `yaml:"command"`
	Volumes     []string       `yaml:"volumes"`
	Ports       []string       `yaml:"ports"`
	Environment map[string]any `yaml:"environment"`
	Profiles    []string       `yaml:"profiles"`
}

// args is the command as a list; a string command is split on spaces.
func (s composeService) args() []string {
	switch c := s.Command.(type) {
	case string:
		return strings.Fields(c)
	case []any:
		var out []string
		for _, a := range c {
			out = append(out, fmt.Sprint(a))
		}
		return out
	}
	return nil
}

func (s composeService) env(key string) string {
	if v, ok := s.Environment[key]; ok {
		return fmt.Sprint(v)
	}
	return ""
}

// passesOn reports whether a service takes the shell's variable name into
// its environment.
func (c *compose) passesOn(name string) bool {
	for _, s := range c.file.Services {
		for _, v := range s.Environment {
			if strings.Contains(fmt.Sprint(v), "${"+name) {
				return true
			}
		}
	}
	return false
}

// compose is docker-compose.yml read, with what the checks derive from it.
type compose struct {
	t    *testing.T
	file composeFile
	// files maps a service's container paths to repository files: bind
	// mounts, and what config-init copies onto the turnout-state volume.
	files map[string]map[string]string
	// published maps each host port to its service and container port;
	// explained holds those a config or flag accounts for.
	published map[int]publishedPort
	explained map[int]bool
}

type publishedPort struct {
	service   string
	container int
}

func loadCompose(t *testing.T) *compose {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	c := &compose{t: t, files: map[string]map[string]string{}, published: map[int]publishedPort{}, explained: map[int]bool{}}
	if err := yaml.Unmarshal(data, &c.file); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.file.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	// What config-init copies from its /seed mount onto turnout-state.
	seed := map[string]string{} // file name -> repository path
	if init, ok := c.file.Services["config-init"]; ok {
		dir := ""
		for _, v := range init.Volumes {
			if src, dst, _ := splitVolume(v); dst == "/seed" {
				dir = src
			}
		}
		for _, tok := range strings.Fields(strings.Join(init.args(), " ")) {
			if name, ok := strings.CutPrefix(tok, "/seed/"); ok && dir != "" {
				seed[name] = filepath.Join(dir, name)
			}
		}
	}
	for name, s := range c.file.Services {
		files := map[string]string{}
		for _, v := range s.Volumes {
			src, dst, ok := splitVolume(v)
			if !ok {
				t.Errorf("service %s: volume %q is not source:target[:mode]", name, v)
				continue
			}
			switch {
			case strings.HasPrefix(src, "./") || strings.HasPrefix(src, "/"):
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("service %s mounts %s, which is not in the repository: %v", name, src, err)
				}
				files[dst] = src
			default:
				if _, ok := c.file.Volumes[src]; !ok {
					t.Errorf("service %s mounts volume %s, which the top-level volumes do not declare", name, src)
				}
				if src == "turnout-state" && name != "config-init" {
					for f, repo := range seed {
						files[dst+"/"+f] = repo
					}
				}
			}
		}
		c.files[name] = files
		for _, p := range s.Ports {
			host, cont, err := parsePorts(p)
			if err != nil {
				t.Errorf("service %s: port %q: %v", name, p, err)
				continue
			}
			for i := range host {
				if prev, dup := c.published[host[i]]; dup {
					t.Errorf("host port %d is published by both %s and %s", host[i], prev.service, name)
				}
				c.published[host[i]] = publishedPort{name, cont[i]}
			}
		}
	}
	return c
}

// repoFile is the repository file a service sees at a container path.
func (c *compose) repoFile(service, path string) string {
	c.t.Helper()
	files := c.files[service]
	if src, ok := files[path]; ok {
		return filepath.Join(repoRoot, src)
	}
	// A file inside a mounted folder.
	for dst, src := range files {
		if rest, ok := strings.CutPrefix(path, dst+"/"); ok {
			return filepath.Join(repoRoot, src, rest)
		}
	}
	c.t.Errorf("service %s uses %s, which no mount or config-init copy provides", service, path)
	return ""
}

// mountedVolume says which named volume holds a container path, or "".
func (c *compose) mountedVolume(service, path string) string {
	best, vol := "", ""
	for _, v := range c.file.Services[service].Volumes {
		src, dst, _ := splitVolume(v)
		if (path == dst || strings.HasPrefix(path, dst+"/")) && len(dst) > len(best) && !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
			best, vol = dst, src
		}
	}
	return vol
}

// hostPort is the host port publishing a service's container port, or 0;
// it counts that port as explained.
func (c *compose) hostPort(service string, container int) int {
	for host, p := range c.published {
		if p.service == service && p.container == container {
			c.explained[host] = true
			return host
		}
	}
	return 0
}

func splitVolume(v string) (src, dst string, ok bool) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// parsePorts reads "host:container" where each side is a port or a range.
func parsePorts(p string) (host, container []int, err error) {
	h, c, ok := strings.Cut(p, ":")
	if !ok {
		return nil, nil, fmt.Errorf("want host:container")
	}
	if host, err = portRange(h); err != nil {
		return nil, nil, err
	}
	if container, err = portRange(c); err != nil {
		return nil, nil, err
	}
	if len(host) != len(container) {
		return nil, nil, fmt.Errorf("%d host ports for %d container ports", len(host), len(container))
	}
	return host, container, nil
}

func portRange(s string) ([]int, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	if err != nil {
		return nil, err
	}
	b := a
	if isRange {
		if b, err = strconv.Atoi(hi); err != nil {
			return nil, err
		}
	}
	var out []int
	for p := a; p <= b; p++ {
		out = append(out, p)
	}
	return out, nil
}

// flagsOf is the flag names the binary accepts for a command, from the
// usage it prints when given a flag it does not know.
func flagsOf(t *testing.T, cmd string) map[string]bool {
	t.Helper()
	_, stderr, code := turnout(t, cmd, "--no-such-flag-for-the-compose-check")
	if code != 2 {
		t.Fatalf("turnout %s with an unknown flag exited %d, want 2", cmd, code)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`).FindAllStringSubmatch(stderr, -1) {
		names[m[1]] = true
	}
	if len(names) == 0 {
		t.Fatalf("turnout %s printed no flags:\n%s", cmd, stderr)
	}
	return names
}

// parseArgs splits "--name value" and "--name=value" pairs; booleans are
// not used in the compose file.
func parseArgs(args []string) (map[string]string, []string, error) {
	flags := map[string]string{}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			rest = append(rest, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if n, v, ok := strings.Cut(name, "="); ok {
			flags[n] = v
			continue
		}
		if i+1 >= len(args) {
			return nil, nil, fmt.Errorf("flag %s has no value", a)
		}
		flags[name] = args[i+1]
		i++
	}
	return flags, rest, nil
}

// TestComposeFile checks docker-compose.yml without Docker: the files it
// mounts exist, every turnout command line and flag is one the binary
// accepts, the configs those commands read pass `turnout validate`, the
// published ports are the gateways' port plans and the agents' APIs, and the
// Kafka addresses in the gateway configs and MirrorMaker properties are the
// compose file's brokers.
func TestComposeFile(t *testing.T) {
	c := loadCompose(t)
	known := map[string]map[string]bool{}
	var gateways, agents []string
	for _, name := range sorted(c.file.Services) {
		s := c.file.Services[name]
		if s.Build == nil && s.Image != "turnout:local" {
			continue
		}
		args := s.args()
		if len(args) == 0 {
			t.Errorf("turnout service %s has no command", name)
			continue
		}
		cmd := args[0]
		if known[cmd] == nil {
			known[cmd] = flagsOf(t, cmd)
		}
		flags, rest, err := parseArgs(args[1:])
		if err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		if len(rest) > 0 {
			t.Errorf("service %s: turnout %s takes no arguments, the compose file gives %v", name, cmd, rest)
		}
		for f := range flags {
			if !known[cmd][f] {
				t.Errorf("service %s: turnout %s has no flag --%s (it has %v)", name, cmd, f, sorted(known[cmd]))
			}
		}
		switch cmd {
		case "gateway":
			gateways = append(gateways, name)
			checkGateway(t, c, name, flags)
		case "agent":
			agents = append(agents, name)
			checkAgent(t, c, name, flags)
		default:
			t.Errorf("service %s runs turnout %s; the compose file should run gateways and agents", name, cmd)
		}
	}
	if len(gateways) != 3 || len(agents) != 3 {
		t.Errorf("the compose file runs gateways %v and agents %v; want three of each", gateways, agents)
	}
	checkPolicyGateways(t, c, agents, gateways)
	checkKafka(t, c)
	for host, p := range c.published {
		if !c.explained[host] {
			t.Errorf("service %s publishes port %d (container %d), which no config or flag of the compose file uses", p.service, host, p.container)
		}
	}
}

func checkGateway(t *testing.T, c *compose, name string, flags map[string]string) {
	path := c.repoFile(name, flags["config"])
	if path == "" {
		return
	}
	pol := filepath.Join(repoRoot, "configs/compose/policy.yaml")
	if out, stderr, code := turnout(t, "validate", path, pol); code != 0 {
		t.Errorf("turnout validate %s %s: exit %d\n%s%s", path, pol, code, out, stderr)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Error(err)
		return
	}
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		plan := cfg.PortPlan(r)
		ports := []int{plan.Bootstrap}
		for _, b := range plan.Brokers {
			ports = append(ports, b.Port)
		}
		for _, p := range ports {
			c.explained[p] = true
			if got, ok := c.published[p]; !ok || got.service != name || got.container != p {
				t.Errorf("service %s: route %s's port plan needs port %d published as %d:%d (clients are told %s), compose has %+v",
					name, r.Name, p, p, p, r.Endpoint, got)
			}
		}
	}
	_, port, err := net.SplitHostPort(flags["admin"])
	if err != nil {
		t.Errorf("service %s: --admin %q: %v", name, flags["admin"], err)
		return
	}
	if p, _ := strconv.Atoi(port); c.hostPort(name, p) == 0 {
		t.Errorf("service %s: the admin port %d is not published", name, p)
	}
}

func checkAgent(t *testing.T, c *compose, name string, flags map[string]string) {
	polPath := c.repoFile(name, flags["policy"])
	if polPath == "" {
		return
	}
	pol, err := policy.Load(polPath)
	if err != nil {
		t.Error(err)
		return
	}
	gwPath := c.repoFile(name, cmpOr(flags["gateway-config"], pol.GatewayConfig))
	if gwPath != "" {
		if out, stderr, code := turnout(t, "validate", gwPath, polPath); code != 0 {
			t.Errorf("turnout validate %s %s: exit %d\n%s%s", gwPath, polPath, code, out, stderr)
		}
	}
	signal := cmpOr(flags["signal-file"], pol.SignalFile)
	if v := c.mountedVolume(name, filepath.Dir(signal)); v != "turnout-state" {
		t.Errorf("service %s: the signal file %s is on %q, not on the turnout-state volume the agents share", name, signal, v)
	}
	// Bootstrapping on every start would let an agent whose volume was
	// removed form a group of its own from nothing.
	if _, always := flags["bootstrap"]; always || c.file.Services[name].env("TURNOUT_BOOTSTRAP") != "${TURNOUT_BOOTSTRAP:-false}" {
		t.Errorf("service %s: --bootstrap %q, TURNOUT_BOOTSTRAP %q; want it only from the environment of the first up, default false",
			name, flags["bootstrap"], c.file.Services[name].env("TURNOUT_BOOTSTRAP"))
	}
	if v := c.mountedVolume(name, flags["data-dir"]); v == "" || v == "turnout-state" {
		t.Errorf("service %s: --data-dir %s should be a volume of the agent's own, not %q", name, flags["data-dir"], v)
	}
	peers, err := consensus.ParsePeers(flags["peers"])
	if err != nil {
		t.Errorf("service %s: --peers: %v", name, err)
		return
	}
	if peers[flags["id"]] != flags["raft"] {
		t.Errorf("service %s: --raft %s is not agent %s's entry in --peers (%s)", name, flags["raft"], flags["id"], peers[flags["id"]])
	}
	for id, addr := range peers {
		host, _, _ := net.SplitHostPort(addr)
		if _, ok := c.file.Services[host]; !ok {
			t.Errorf("service %s: peer %s at %s names no service", name, id, addr)
		}
	}
	// The leader tells the others the address its HTTP API listens on, so
	// it must be one they can reach: the container's name, not 0.0.0.0.
	host, port, err := net.SplitHostPort(flags["http"])
	if err != nil || host != name {
		t.Errorf("service %s: --http %q must be %s:PORT (err %v)", name, flags["http"], name, err)
		return
	}
	if p, _ := strconv.Atoi(port); c.hostPort(name, p) == 0 {
		t.Errorf("service %s: the agent's HTTP port %d is not published", name, p)
	}
}

// checkPolicyGateways: the policy restarts exactly the compose file's
// gateways, at their admin addresses.
func checkPolicyGateways(t *testing.T, c *compose, agents, gateways []string) {
	if len(agents) == 0 {
		return
	}
	s := c.file.Services[agents[0]]
	flags, _, _ := parseArgs(s.args()[1:])
	pol, err := policy.Load(c.repoFile(agents[0], flags["policy"]))
	if err != nil {
		t.Error(err)
		return
	}
	var named []string
	for _, g := range pol.Gateways {
		u, err := url.Parse(g.Admin)
		if err != nil {
			t.Errorf("policy gateway %s: %v", g.Name, err)
			continue
		}
		gs, ok := c.file.Services[u.Hostname()]
		if !ok {
			t.Errorf("policy gateway %s at %s names no service", g.Name, g.Admin)
			continue
		}
		gflags, _, _ := parseArgs(gs.args()[1:])
		if _, port, _ := net.SplitHostPort(gflags["admin"]); port != u.Port() {
			t.Errorf("policy gateway %s at %s: the service's admin listens on %s", g.Name, g.Admin, gflags["admin"])
		}
		named = append(named, u.Hostname())
	}
	slices.Sort(named)
	if !slices.Equal(named, gateways) {
		t.Errorf("the policy restarts %v; the compose file runs gateways %v", named, gateways)
	}
}

// checkKafka: the gateway configs' and MirrorMaker's bootstrap servers are
// the compose file's brokers, and their node ids are in the nodeIdRanges.
func checkKafka(t *testing.T, c *compose) {
	advertised := map[string]string{} // host:port -> service
	for name, s := range c.file.Services {
		for _, l := range strings.Split(s.env("KAFKA_ADVERTISED_LISTENERS"), ",") {
			if _, addr, ok := strings.Cut(l, "://"); ok {
				advertised[addr] = name
			}
		}
	}
	cfg, err := config.Load(filepath.Join(repoRoot, "configs/compose/gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	domains := map[string][]string{} // domain -> its bootstrap servers
	for _, d := range cfg.StreamingDomains {
		for _, bs := range d.KafkaCluster.BootstrapServers {
			for _, h := range bs.Hosts() {
				svc, ok := advertised[h]
				if !ok {
					t.Errorf("gateway config: domain %s's bootstrap server %s is no broker's advertised listener", d.Name, h)
					continue
				}
				id, _ := strconv.Atoi(c.file.Services[svc].env("KAFKA_NODE_ID"))
				in := false
				for _, r := range d.KafkaCluster.NodeIDRanges {
					in = in || (int32(id) >= r.Start && int32(id) <= r.End)
				}
				if !in {
					t.Errorf("broker %s has node id %d, outside domain %s's nodeIdRanges", svc, id, d.Name)
				}
			}
			domains[d.Name] = append(domains[d.Name], bs.Hosts()...)
		}
	}
	for _, name := range []string{"gateway-1.yaml", "gateway-2.yaml", "gateway-3.yaml"} {
		other, err := config.Load(filepath.Join(repoRoot, "configs/compose", name))
		if err != nil {
			t.Error(err)
			continue
		}
		if fmt.Sprint(other.StreamingDomains) != fmt.Sprint(cfg.StreamingDomains) {
			t.Errorf("configs/compose/%s's streaming domains differ from configs/compose/gateway.yaml's", name)
		}
	}
	pol, err := policy.Load(filepath.Join(repoRoot, "configs/compose/policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	aliases := map[string]string{"kafka1": "kafka1-domain", "kafka2": "kafka2-domain"}
	for _, file := range []string{"configs/mm2-1to2.properties", "configs/mm2-2to1.properties"} {
		props := readProperties(t, filepath.Join(repoRoot, file))
		for alias, domain := range aliases {
			if got, want := props[alias+".bootstrap.servers"], strings.Join(domains[domain], ","); got != want {
				t.Errorf("%s: %s.bootstrap.servers = %q, want %s's %q", file, alias, got, domain, want)
			}
		}
		enabled := 0
		for flow := range map[string]bool{"kafka1->kafka2": true, "kafka2->kafka1": true} {
			if props[flow+".enabled"] != "true" {
				continue
			}
			enabled++
			if got := props[flow+".topics"]; got != strings.Join(pol.Replication.Topics, "|") {
				t.Errorf("%s: %s.topics = %q; the policy measures the lag of %v", file, flow, got, pol.Replication.Topics)
			}
		}
		if enabled != 1 {
			t.Errorf("%s enables %d flows; want exactly one (never both directions at once)", file, enabled)
		}
		if !strings.HasSuffix(props["replication.policy.class"], "IdentityReplicationPolicy") || props["sync.group.offsets.enabled"] != "true" {
			t.Errorf("%s: want IdentityReplicationPolicy and sync.group.offsets.enabled = true", file)
		}
	}
}

func readProperties(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	props := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: %q is not key = value", path, line)
			continue
		}
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return props
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestSystemdUnits checks configs/systemd: each unit runs a turnout command
// with flags the binary accepts, restarts on failure, and the gateway's
// reload is a SIGHUP (which re-reads its config, as POST /restart does).
func TestSystemdUnits(t *testing.T) {
	units, err := filepath.Glob(filepath.Join(repoRoot, "configs/systemd/*.service"))
	if err != nil || len(units) != 2 {
		t.Fatalf("configs/systemd has %v (%v); want the agent and gateway units", units, err)
	}
	known := map[string]map[string]bool{}
	for _, unit := range units {
		data, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string][]string{}
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
				keys[k] = append(keys[k], v)
			}
		}
		name := filepath.Base(unit)
		if !slices.Equal(keys["Restart"], []string{"on-failure"}) {
			t.Errorf("%s: Restart=%v, want on-failure", name, keys["Restart"])
		}
		for _, k := range []string{"User", "NoNewPrivileges", "ProtectSystem", "StateDirectory", "CapabilityBoundingSet"} {
			if len(keys[k]) == 0 {
				t.Errorf("%s: no %s=", name, k)
			}
		}
		for _, exec := range append(keys["ExecStart"], keys["ExecStartPre"]...) {
			args := strings.Fields(strings.ReplaceAll(exec, "%i", "1"))
			if len(args) < 2 || args[0] != "/usr/local/bin/turnout" {
				t.Errorf("%s: %q does not run /usr/local/bin/turnout", name, exec)
				continue
			}
			cmd := args[1]
			if cmd == "validate" {
				continue
			}
			if known[cmd] == nil {
				known[cmd] = flagsOf(t, cmd)
			}
			flags, rest, err := parseArgs(args[2:])
			if err != nil || len(rest) > 0 {
				t.Errorf("%s: %q: %v, arguments %v", name, exec, err, rest)
			}
			for f := range flags {
				if !known[cmd][f] {
					t.Errorf("%s: turnout %s has no flag --%s", name, cmd, f)
				}
			}
		}
		if strings.Contains(name, "gateway") && !slices.Equal(keys["ExecReload"], []string{"/bin/kill -HUP $MAINPID"}) {
			t.Errorf("%s: ExecReload=%v, want /bin/kill -HUP $MAINPID", name, keys["ExecReload"])
		}
	}
	// The agent unit takes its addresses from TURNOUT_* variables: they must
	// be flags of turnout agent.
	data, _ := os.ReadFile(filepath.Join(repoRoot, "configs/systemd/turnout-agent@.service"))
	for _, m := range regexp.MustCompile(`(?m)^#\s+TURNOUT_([A-Z_]+)=`).FindAllStringSubmatch(string(data), -1) {
		flag := strings.ToLower(strings.ReplaceAll(m[1], "_", "-"))
		if known["agent"] != nil && !known["agent"][flag] {
			t.Errorf("turnout-agent@.service documents TURNOUT_%s, but turnout agent has no --%s", m[1], flag)
		}
	}
}

// TestShippedConfigs: the sample policy agrees with the sample gateway
// config, as the README's validate command shows.
func TestShippedConfigs(t *testing.T) {
	out, stderr, code := turnout(t, "validate", filepath.Join(repoRoot, "configs/gateway.yaml"), filepath.Join(repoRoot, "configs/policy.yaml"))
	if code != 0 || !strings.Contains(out, "policy.yaml: OK, and it agrees with") {
		t.Errorf("turnout validate configs/gateway.yaml configs/policy.yaml: exit %d\n%s%s", code, out, stderr)
	}
}
