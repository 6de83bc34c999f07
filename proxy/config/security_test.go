package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/testcerts"
)

// secured is a configuration with TLS on both sides; %[1]s is the route's
// ssl block and %[2]s the bootstrap server's. Its lines:
//
//	9 ssl (bootstrap server)    16 security
//	                            17 ssl (route)
const secured = `streamingDomains:
  - name: a
    kafkaCluster:
      bootstrapServers:
        - id: tls
          endpoint: "kafka-a:9093"
          sasl: {mechanism: scram-sha-512, username: turnout, password: {value: pw}}
          ssl:
%[2]s
routes:
  - name: r
    endpoint: "gw.example.com:19092"
    streamingDomain: {name: a, bootstrapServerId: tls}
    brokerIdentificationStrategy:
%[3]s
    security:
      ssl:
%[1]s
`

type certFiles struct {
	dir    string
	server testcerts.Files
	pem    string // key and chain in one file
}

func writeCerts(t *testing.T) certFiles {
	t.Helper()
	dir := t.TempDir()
	ca := testcerts.MustCA(t, "ca")
	leaf := ca.MustLeaf(t, "gw", "gw.example.com", "*.gw.example.com")
	f := leaf.MustWriteFiles(t, dir, "gw", "changeit")
	pem := filepath.Join(dir, "gw-keystore.pem")
	if err := os.WriteFile(pem, append(leaf.KeyPEM(), leaf.ChainPEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFiles{dir, f, pem}
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+pad)
}

func loadSecured(t *testing.T, dir, route, server, strategy string) (*Gateway, error) {
	t.Helper()
	if strategy == "" {
		strategy = "type: port"
	}
	data := []byte(strings.NewReplacer("\n\n", "\n").Replace(
		fmtSecured(indent(route, 8), indent(server, 12), indent(strategy, 6))))
	path := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

func fmtSecured(route, server, strategy string) string {
	r := strings.NewReplacer("%[1]s", route, "%[2]s", server, "%[3]s", strategy)
	return r.Replace(secured)
}

func TestLoadSecurity(t *testing.T) {
	c := writeCerts(t)
	f := c.server
	p12 := "keystore: {type: PKCS12, location: " + f.PKCS12 + ", password: {file: " + f.PasswordFile + "}}\n" +
		"truststore: {type: PKCS12, location: " + f.TrustP12 + ", password: {value: changeit}}\n"
	jks := "keystore: {location: " + f.JKS + ", password: {value: changeit}, keyPassword: {value: changeit}}\n" +
		"truststore: {type: jks, location: " + f.TrustJKS + ", password: {file: " + f.PasswordFile + "}}\n"
	pemStores := "keystore: {type: PEM, location: " + c.pem + "}\ntruststore: {type: PEM, location: " + f.CA + "}\n"
	relative := "keystore: {type: PEM, location: gw-keystore.pem}\ntruststore: {type: PEM, location: gw-ca.pem}\n"
	for name, stores := range map[string]string{"PKCS12": p12, "JKS": jks, "PEM": pemStores, "relative paths": relative} {
		t.Run(name, func(t *testing.T) {
			g, err := loadSecured(t, c.dir, stores+"clientAuth: required\n", stores, "")
			if err != nil {
				t.Fatal(err)
			}
			srv := g.Routes[0].Security.SSL.TLS()
			if srv == nil || len(srv.Certificates) != 1 || srv.ClientCAs == nil || srv.ClientAuth == 0 {
				t.Fatalf("route TLS %+v", srv)
			}
			b := g.StreamingDomains[0].KafkaCluster.BootstrapServers[0]
			cli := b.SSL.TLS()
			if cli == nil || len(cli.Certificates) != 1 || cli.RootCAs == nil || cli.InsecureSkipVerify {
				t.Fatalf("bootstrap server TLS %+v", cli)
			}
			if b.SASL.Mechanism != "SCRAM-SHA-512" || b.SASL.Password.Secret() != "pw" {
				t.Fatalf("sasl %+v", b.SASL)
			}
			if ks, _ := b.SSL.Stores(); ks == nil || !filepath.IsAbs(ks.Location) || ks.Type != "PEM" && ks.Password != "changeit" {
				t.Fatalf("keystore %+v", ks)
			}
			if len(g.Warnings()) != 0 {
				t.Fatalf("warnings %q", g.Warnings())
			}
		})
	}

	t.Run("ignoreTrust warns", func(t *testing.T) {
		g, err := loadSecured(t, c.dir, pemStores, "ignoreTrust: true\ntruststore: {type: PEM, location: /nonexistent}\n", "")
		if err != nil {
			t.Fatal(err)
		}
		w := g.Warnings()
		if len(w) != 1 || !strings.Contains(w[0], "gw.yaml:9: ") || !strings.Contains(w[0], "not checked") {
			t.Fatalf("warnings %q", w)
		}
		if !g.StreamingDomains[0].KafkaCluster.BootstrapServers[0].SSL.TLS().InsecureSkipVerify {
			t.Fatal("ignoreTrust does not skip verification")
		}
	})

	t.Run("password out of sight", func(t *testing.T) {
		g, err := loadSecured(t, c.dir, pemStores, "keystore: {type: PKCS12, location: "+f.PKCS12+", password: {value: changeit}}\n", "")
		if err != nil {
			t.Fatal(err)
		}
		p := g.StreamingDomains[0].KafkaCluster.BootstrapServers[0].SSL.Keystore.Password
		if s := fmtAny(*p); strings.Contains(s, "changeit") {
			t.Fatalf("the password shows in %q", s)
		}
	})

	bad := filepath.Join(c.dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, route, server, strategy string
		line                          int
		want                          string
	}{
		{"wrong password", pemStores, "keystore: {type: PKCS12, location: " + f.PKCS12 + ", password: {value: nope}}\n", "", 9,
			"ssl.keystore.location: keystore " + f.PKCS12 + " (PKCS12): wrong password"},
		{"wrong JKS password from a file", "keystore: {location: " + f.JKS + ", password: {file: " + f.CA + "}}\n", "{}", "", 18,
			"routes[0].security.ssl.keystore.location: keystore " + f.JKS + " (JKS): wrong password"},
		{"missing keystore", "keystore: {type: PEM, location: missing.pem}\n", "{}", "", 18,
			"routes[0].security.ssl.keystore.location: keystore: open " + filepath.Join(c.dir, "missing.pem") + ": no such file or directory"},
		{"missing password file", pemStores, "truststore: {type: JKS, location: " + f.TrustJKS + ", password: {file: nope}}\n", "", 9,
			"ssl.truststore.password.file: cannot read the password: open " + filepath.Join(c.dir, "nope")},
		{"bad certificate", "keystore: {type: PEM, location: " + c.pem + "}\ntruststore: {type: PEM, location: " + bad + "}\nclientAuth: requested\n", "{}", "", 19,
			"routes[0].security.ssl.truststore.location: truststore " + bad + " (PEM): bad certificate"},
		{"key without certificate", "keystore: {type: PEM, location: " + f.Key + "}\n", "{}", "", 18, "holds a private key but no certificate"},
		{"PKCS12 key password differs", pemStores, "keystore: {type: PKCS12, location: " + f.PKCS12 + ", password: {value: changeit}, keyPassword: {value: other}}\n", "", 9,
			"keyPassword: a PKCS12 key shares its store's password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadSecured(t, c.dir, tc.route, tc.server, tc.strategy)
			checkError(t, err, tc.line, tc.want)
		})
	}
}

func fmtAny(v any) string { return fmt.Sprintf("%v %+v %s", v, v, v) }

func checkError(t *testing.T, err error, line int, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %q on line %d", want, line)
	}
	var e *Error
	for _, one := range splitJoined(err) {
		if errors.As(one, &e) && e.Line == line && strings.Contains(one.Error(), want) {
			return
		}
	}
	t.Fatalf("got %v\nwant %q on line %d", err, want, line)
}

func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestValidateSecurity(t *testing.T) {
	store := "keystore: {type: PEM, location: k.pem}\n"
	for _, tc := range []struct {
		name, route, server, strategy string
		line                          int
		want                          string
	}{
		{"route without keystore", "truststore: {type: PEM, location: t.pem}\n", "{}", "", 17,
			"routes[0].security.ssl.keystore: missing; a route's TLS listener needs a keystore"},
		{"clientAuth without truststore", store + "clientAuth: required\n", "{}", "", 17,
			"routes[0].security.ssl.truststore: missing; clientAuth required checks client certificates against a truststore"},
		{"unknown clientAuth", store + "clientAuth: always\n", "{}", "", 19, `unknown clientAuth "always"; use required, requested or none`},
		{"clientAuth toward a cluster", store, "clientAuth: required\n", "", 9, "clientAuth is for routes"},
		{"ignoreTrust on a route", store + "ignoreTrust: true\n", "{}", "", 19, "ignoreTrust is for bootstrap servers"},
		{"unknown store type", "keystore: {type: PFX, location: k.pfx}\n", "{}", "", 18, `unknown store type "PFX"; use JKS, PKCS12 or PEM`},
		{"store without location", "keystore: {type: PEM}\n", "{}", "", 18, "keystore.location: missing"},
		{"JKS without password", "keystore: {location: k.jks}\n", "{}", "", 18, "keystore.password: missing; a JKS store needs its password"},
		{"PEM with password", "keystore: {type: PEM, location: k.pem, password: {value: x}}\n", "{}", "", 18, "a PEM store has no password"},
		{"PEM with key password", "keystore: {type: PEM, location: k.pem, keyPassword: {value: x}}\n", "{}", "", 18, "unencrypted PEM keys only"},
		{"password both ways", "keystore: {type: PKCS12, location: k.p12, password: {value: x, file: f}}\n", "{}", "", 18, "give file or value, not both"},
		{"password neither way", "keystore: {type: PKCS12, location: k.p12, password: {}}\n", "{}", "", 18, "want file (the path of a file holding the password) or value"},
		{"unknown ssl key", store + "protocol: TLSv1.3\n", "{}", "", 19, `unknown key "protocol"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := strings.NewReplacer("\n\n", "\n").Replace(fmtSecured(indent(tc.route, 8), indent(tc.server, 12), indent(cmpOr(tc.strategy, "type: port"), 6)))
			_, err := Parse("gw.yaml", []byte(data))
			checkError(t, err, tc.line, tc.want)
		})
	}

	data := strings.NewReplacer("%[1]s", indent(store, 8), "%[2]s", indent("{}", 12), "%[3]s", indent("type: port", 6)).Replace(
		strings.Replace(secured, `"kafka-a:9093"`, "SASL_SSL://kafka-a:9093", 1))
	_, err := Parse("gw.yaml", []byte(data))
	checkError(t, err, 6, "without the SASL_SSL:// prefix")

	sasl := func(s string) string {
		return strings.Replace(secured, "sasl: {mechanism: scram-sha-512, username: turnout, password: {value: pw}}", s, 1)
	}
	for _, tc := range []struct{ sasl, want string }{
		{"sasl: {mechanism: GSSAPI, username: u, password: {value: p}}", `unknown mechanism "GSSAPI"`},
		{"sasl: {username: u, password: {value: p}}", "sasl.mechanism: missing"},
		{"sasl: {mechanism: PLAIN, password: {value: p}}", "sasl.username: missing"},
		{"sasl: {mechanism: PLAIN, username: u}", "sasl.password: missing"},
	} {
		data := strings.NewReplacer("%[1]s", indent(store, 8), "%[2]s", indent("{}", 12), "%[3]s", indent("type: port", 6)).Replace(sasl(tc.sasl))
		_, err := Parse("gw.yaml", []byte(data))
		checkError(t, err, 7, tc.want)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestHostStrategy(t *testing.T) {
	store := "keystore: {type: PEM, location: k.pem}\n"
	parse := func(strategy string) *Gateway {
		t.Helper()
		data := strings.NewReplacer("\n\n", "\n").Replace(fmtSecured(indent(store, 8), indent("{}", 12), indent(strategy, 6)))
		g, err := Parse("gw.yaml", []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g := parse("type: host\npattern: broker-$(nodeId).gw.example.com")
	r := &g.Routes[0]
	if !r.HostStrategy() || len(g.PortPlan(r).Brokers) != 0 || g.PortPlan(r).Bootstrap != 19092 {
		t.Fatalf("plan %+v", g.PortPlan(r))
	}
	if h, p := r.BrokerAddress(7); h != "broker-7.gw.example.com" || p != 19092 {
		t.Fatalf("broker 7 at %s:%d", h, p)
	}
	for name, want := range map[string]struct {
		node          int32
		bootstrap, ok bool
	}{
		"gw.example.com":                    {-1, true, true},
		"GW.example.com.":                   {-1, true, true},
		"":                                  {-1, true, true},
		"broker-12.gw.example.com":          {12, false, true},
		"Broker-0.GW.example.com":           {0, false, true},
		"broker-012.gw.example.com":         {0, false, false},
		"broker-.gw.example.com":            {0, false, false},
		"broker-x.gw.example.com":           {0, false, false},
		"broker-1.other.com":                {0, false, false},
		"broker-99999999999.gw.example.com": {0, false, false},
	} {
		node, bootstrap, ok := r.ServerName(name)
		if ok != want.ok || ok && (node != want.node || bootstrap != want.bootstrap) {
			t.Errorf("ServerName(%q) = %d, %v, %v; want %+v", name, node, bootstrap, ok, want)
		}
	}
	g = parse("type: host\npattern: \"b$(nodeId).lb.example.com:443\"")
	if h, p := g.Routes[0].BrokerAddress(3); h != "b3.lb.example.com" || p != 443 {
		t.Fatalf("broker 3 at %s:%d", h, p)
	}
	// The short form of the port strategy, as older files have it.
	g = parse("port")
	if g.Routes[0].HostStrategy() || len(g.PortPlan(&g.Routes[0]).Brokers) != 16 {
		t.Fatal("port strategy from its short form")
	}
}

// A password written as a bare string, where {file|value} is wanted, must
// not be quoted back: the error reaches turnout validate, the gateway's and
// the agents' logs and the reply to POST /restart.
func TestSecretNotInErrors(t *testing.T) {
	for _, tc := range []struct {
		name, route, sasl string
		line              int
		want, secret      string
	}{
		{"sasl password", "keystore: {type: PEM, location: k.pem}\n",
			"sasl: {mechanism: PLAIN, username: turnout, password: hunter2}", 7,
			"sasl.password: want a mapping, got a string (not shown)", "hunter2"},
		{"keystore password", "keystore: {type: PKCS12, location: k.p12, password: changeit}\n", "", 18,
			"routes[0].security.ssl.keystore.password: want a mapping, got a string (not shown)", "changeit"},
		{"key password", "keystore: {location: k.jks, password: {value: x}, keyPassword: 123456}\n", "", 18,
			"keystore.keyPassword: want a mapping, got a number (not shown)", "123456"},
		{"password value", "keystore: {type: PKCS12, location: k.p12, password: {value: [opensesame]}}\n", "", 18,
			"keystore.password.value: want a string, got a list", "opensesame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := strings.NewReplacer("%[1]s", indent(tc.route, 8), "%[2]s", indent("{}", 12), "%[3]s", indent("type: port", 6)).Replace(secured)
			if tc.sasl != "" {
				data = strings.Replace(data, "sasl: {mechanism: scram-sha-512, username: turnout, password: {value: pw}}", tc.sasl, 1)
			}
			_, err := Parse("gw.yaml", []byte(data))
			checkError(t, err, tc.line, tc.want)
			if strings.Contains(err.Error(), tc.secret) {
				t.Errorf("the error shows the password:\n%v", err)
			}
		})
	}
}

// The agents read the file too, on hosts that need not hold the gateway's
// private key: LoadClusters reads the bootstrap servers' stores and the
// routes' truststores, never a route's keystore.
func TestLoadClustersSkipsRouteKeystores(t *testing.T) {
	c := writeCerts(t)
	f := c.server
	route := "keystore: {type: PKCS12, location: missing.p12, password: {file: missing-password}}\n" +
		"truststore: {type: PEM, location: " + f.CA + "}\nclientAuth: requested\n"
	server := "keystore: {type: PEM, location: " + c.pem + "}\ntruststore: {type: PEM, location: " + f.CA + "}\n"
	if _, err := loadSecured(t, c.dir, route, server, ""); err == nil || !strings.Contains(err.Error(), "missing-password") {
		t.Fatalf("Load: %v; want the gateway side to need the route's keystore password", err)
	}
	path := filepath.Join(c.dir, "gw.yaml") // as loadSecured wrote it
	g, err := LoadClusters(path)
	if err != nil {
		t.Fatalf("LoadClusters: %v", err)
	}
	b := g.StreamingDomains[0].KafkaCluster.BootstrapServers[0]
	if cli := b.SSL.TLS(); cli == nil || len(cli.Certificates) != 1 || cli.RootCAs == nil {
		t.Errorf("bootstrap server TLS %+v", cli)
	}
	if b.SASL.Password.Secret() != "pw" {
		t.Errorf("sasl password %q", b.SASL.Password.Secret())
	}
	s := g.Routes[0].Security.SSL
	if ks, ts := s.Stores(); ks != nil || ts == nil || ts.Location != f.CA {
		t.Errorf("route stores %+v, %+v; want the truststore alone", ks, ts)
	}
	if s.TLS() != nil {
		t.Error("the route has a listener TLS configuration without its keystore")
	}

	// A missing route truststore is still an error: the agents' check
	// through the route trusts it.
	data := mustRead(t, path)
	i := strings.LastIndex(data, f.CA) // the route's comes after the bootstrap server's
	data = data[:i] + "nope.pem" + data[i+len(f.CA):]
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClusters(path); err == nil || !strings.Contains(err.Error(), "routes[0].security.ssl.truststore.location") {
		t.Errorf("LoadClusters with a missing route truststore: %v", err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Every file the configuration names is relative to the configuration
// file's directory, not to the working directory of whoever reads it: the
// stores and passwords (TestLoadSecurity), and the swap users files, login
// templates and FILE secret stores, the admin token and TLS files, which
// other packages read.
func TestLoadRelativePaths(t *testing.T) {
	dir := t.TempDir()
	cfg := strings.Replace(base, "  routes:\n", `  secretStores:
    - {name: files, provider: {type: file, config: {path: secrets, prefixPath: gw-}}}
    - {name: env, provider: {type: ENV, config: {prefixPath: TURNOUT_}}}
    - {name: abs, provider: {type: FILE, config: {path: /etc/turnout/secrets}}}
  admin:
    bindAddress: 0.0.0.0
    tokenFile: admin/token
    tls: {certFile: admin/cert.pem, keyFile: /etc/turnout/key.pem}
  routes:
`, 1) + `      security:
        auth: swap
        swapConfig:
          clientAuth: {sasl: {jaasConfig: {file: users.conf}}}
          secretStore: files
          clusterAuth: {sasl: {mechanism: PLAIN, jaasConfig: {file: ../login.conf}}}
`
	path := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := g.Routes[0].Security.SwapConfig
	for _, c := range []struct{ what, got, want string }{
		{"users file", sc.ClientAuth.SASL.JaasConfig.File, filepath.Join(dir, "users.conf")},
		{"login template", sc.ClusterAuth.SASL.JaasConfig.File, filepath.Join(filepath.Dir(dir), "login.conf")},
		{"FILE store", g.SecretStores[0].Provider.Config.Path, filepath.Join(dir, "secrets")},
		{"FILE store prefix", g.SecretStores[0].Provider.Config.PrefixPath, "gw-"},
		{"ENV store prefix", g.SecretStores[1].Provider.Config.PrefixPath, "TURNOUT_"},
		{"absolute FILE store", g.SecretStores[2].Provider.Config.Path, "/etc/turnout/secrets"},
		{"admin token", g.Admin.TokenFile, filepath.Join(dir, "admin", "token")},
		{"admin certificate", g.Admin.TLS.CertFile, filepath.Join(dir, "admin", "cert.pem")},
		{"absolute admin key", g.Admin.TLS.KeyFile, "/etc/turnout/key.pem"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.what, c.got, c.want)
		}
	}
}
