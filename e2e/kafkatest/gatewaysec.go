package kafkatest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/testcerts"
)

// GatewaySecurity is the security of a test gateway's route. The gateway
// reaches each secure cluster over TLS (trusting the cluster's CA) and logs
// in as the cluster's admin for its own clients; the route itself:
type GatewaySecurity struct {
	// Auth is "passthrough" (SASL goes to the cluster untouched) or "swap"
	// (the gateway authenticates clients against Users, then logs in to
	// the active cluster with the same-named user's credentials there).
	Auth string
	// Server is the gateway's certificate on the route, in every form;
	// KeystoreType says which the configuration names: PKCS12 (the
	// default) or JKS.
	Server       testcerts.Files
	KeystoreType string
	// ClientAuth is none (or ""), requested or required; ClientCA's CA
	// (PEM) then checks client certificates.
	ClientAuth string
	ClientCA   *testcerts.Files
	// Users are the gateway's own users, for swap.
	Users []User
	// ClientMechanism is the mechanism clients use on a swap route: ""
	// (any of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), PLAIN, SCRAM or one of
	// the SCRAM ones. ClusterMechanism is how the gateway logs in to the
	// cluster for a client; "" is SCRAM-SHA-512.
	ClientMechanism, ClusterMechanism string
	// HostPattern, when set, is the route's brokerIdentificationStrategy
	// {type: host} (SNI): one port serves the bootstrap, named Host, and
	// every broker, named HostPattern with the node id for $(nodeId).
	// Server's certificate must cover those names, and clients must send
	// them to 127.0.0.1: see Gateway.HostsFile and ClientAuth.DialAddr.
	Host, HostPattern string
}

// sni says whether the route tells brokers apart by TLS server name.
func (s *GatewaySecurity) sni() bool { return s != nil && s.HostPattern != "" }

// BrokerHost is the name the gateway advertises for broker id on an SNI
// route (GatewaySecurity.HostPattern).
func (g *Gateway) BrokerHost(id int32) string {
	return strings.ReplaceAll(g.sec.HostPattern, "$(nodeId)", strconv.Itoa(int(id)))
}

// HostsFile writes, for an SNI route, a hosts file that sends the
// endpoint's host and the brokers' names (node ids of nodeIdRanges) to
// 127.0.0.1, and returns its path: the JVM's resolver with
// -Djdk.net.hosts.file=<it> (which replaces the system resolver for that
// JVM, so localhost is in it too), since the tests may not edit /etc/hosts.
func (g *Gateway) HostsFile() string {
	g.bed.T.Helper()
	if !g.sec.sni() {
		g.bed.T.Fatalf("%s: HostsFile without an SNI route", g.Name)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "127.0.0.1 localhost\n127.0.0.1 %s\n", g.sec.Host)
	for id := nodeIDStart; id <= nodeIDEnd; id++ {
		fmt.Fprintf(&sb, "127.0.0.1 %s\n", g.BrokerHost(int32(id)))
	}
	path := g.bed.Path(g.Name + "-hosts")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		g.bed.T.Fatal(err)
	}
	return path
}

func (s *GatewaySecurity) clusterMechanism() string {
	if s.ClusterMechanism == "" {
		return ScramSHA512
	}
	return s.ClusterMechanism
}

// secretDir holds the gateway's secret files: password files, the users
// JAAS file, the FILE secret store (one folder per streaming domain).
func (g *Gateway) secretDir() string { return g.bed.Path(g.Name + "-secrets") }

func (g *Gateway) secretPath(name string) string { return filepath.Join(g.secretDir(), name) }

// writeSecrets writes the files the configuration names: the admin password
// of each secure cluster, the users file, and for swap each gateway user's
// credentials on each cluster that has a user of that name.
func (g *Gateway) writeSecrets() error {
	dir := g.secretDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	write := func(path, data string) error { return os.WriteFile(path, []byte(data), 0o600) }
	for _, c := range g.clusters {
		if !c.Secure() {
			continue
		}
		if err := write(g.secretPath("admin-"+c.Name), c.Sec.Admin.Password+"\n"); err != nil {
			return err
		}
	}
	if g.sec.sni() && g.sec.Host == "" {
		return fmt.Errorf("an SNI route (HostPattern) needs a Host")
	}
	if g.sec.Auth != "swap" {
		return nil
	}
	if len(g.sec.Users) == 0 {
		return fmt.Errorf("auth swap needs gateway users")
	}
	var jaas strings.Builder
	jaas.WriteString("KafkaServer {\n    org.apache.kafka.common.security.plain.PlainLoginModule required\n")
	for _, u := range g.sec.Users {
		fmt.Fprintf(&jaas, "    user_%s=%q\n", u.Name, u.Password)
	}
	jaas.WriteString("    ;\n};\n")
	if err := write(g.secretPath("users.jaas"), jaas.String()); err != nil {
		return err
	}
	for _, c := range g.clusters {
		if !c.Secure() {
			continue
		}
		d := filepath.Join(dir, Domain(c))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		for _, u := range g.sec.Users {
			if cu, ok := c.Sec.User(u.Name); ok {
				if err := write(filepath.Join(d, u.Name), cu.Name+":"+cu.Password+"\n"); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// AuthAs is how a client logs in to the gateway's route as u with
// mechanism, trusting the gateway's certificate; cert, when not nil, is the
// client's own certificate.
func (g *Gateway) AuthAs(u User, mechanism string, cert *testcerts.Files) ClientAuth {
	if g.sec == nil {
		return ClientAuth{}
	}
	a := ClientAuth{Mechanism: mechanism, User: u, Trust: g.sec.Server, Cert: cert}
	if g.sec.sni() {
		a.DialAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(g.Port))
	}
	return a
}

// Validate runs `turnout validate` on the gateway's configuration, as an
// operator would before starting it, and fails the test if it is refused.
func (g *Gateway) Validate(t testing.TB) {
	t.Helper()
	if out, err := exec.Command(Binary(t), "validate", g.Config).CombinedOutput(); err != nil {
		t.Fatalf("turnout validate %s: %v\n%s", g.Config, err, strings.TrimSpace(string(out)))
	}
}
