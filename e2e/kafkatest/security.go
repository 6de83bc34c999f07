package kafkatest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/turnout/turnout/internal/testcerts"
)

// SASL mechanisms a secure cluster enables on its client listener.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Mechanisms are the SASL mechanisms of a secure cluster's listener.
var Mechanisms = []string{ScramSHA256, ScramSHA512, Plain}

// User is a SASL user name and password.
type User struct{ Name, Password string }

// Security makes a cluster's client listener SASL_SSL (TLS, then SASL with
// SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN); the controller listener stays
// PLAINTEXT on loopback. Every user, Admin included, exists for all three
// mechanisms: SCRAM credentials are written into the metadata log when the
// cluster is formatted, PLAIN ones into the listener's JAAS configuration.
//
// The brokers talk to each other (a single node: to itself, for transaction
// markers) over the same SASL_SSL listener as Admin with SCRAM-SHA-512, so
// that a secure cluster has no plaintext client port at all and the format-
// time SCRAM credentials are exercised by the broker itself.
//
// There is no authorizer: every authenticated user may do anything, which is
// all the tests need (they test authentication, not ACLs). Admin is still
// named in super.users, so that adding an authorizer is one line.
type Security struct {
	// CA signs the broker's certificate (for 127.0.0.1 and localhost);
	// clients trust it. Clusters may share one.
	CA *testcerts.CA
	// Admin is the cluster's super user: the inter-broker identity, the
	// cluster's own test clients (Client, Admin, Values) and MirrorMaker.
	Admin User
	// Users are the other users.
	Users []User
	// ClientAuth is the listener's ssl.client.auth: "" (none), "requested"
	// or "required". Clients then need a certificate signed by CA.
	ClientAuth string
	// StorePassword protects the broker's PKCS#12 key and trust stores;
	// "" means "changeit".
	StorePassword string
	// Reauth, when positive, is connections.max.reauth.ms: the lifetime
	// of a session, after which clients must re-authenticate (KIP-368).
	// kcat's librdkafka (2.0.2) cannot, so only tests without kcat on
	// the cluster's own listener set it.
	Reauth time.Duration
}

func (s *Security) allUsers() []User {
	return append([]User{s.Admin}, s.Users...)
}

// User returns the cluster's user called name.
func (s *Security) User(name string) (User, bool) {
	for _, u := range s.allUsers() {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

func (s *Security) storePassword() string {
	if s.StorePassword == "" {
		return "changeit"
	}
	return s.StorePassword
}

func (s *Security) check() error {
	if s.CA == nil {
		return fmt.Errorf("kafkatest.Security needs a CA")
	}
	seen := map[string]bool{}
	for _, u := range s.allUsers() {
		if u.Name == "" || u.Password == "" {
			return fmt.Errorf("kafkatest.Security: user %q needs a name and a password", u.Name)
		}
		// The values go into JAAS strings and StorageTool's [name=..,password=..].
		if strings.ContainsAny(u.Name+u.Password, "\"\\,=[] \n") {
			return fmt.Errorf("kafkatest.Security: user %q: keep names and passwords to letters, digits, - and _", u.Name)
		}
		if seen[u.Name] {
			return fmt.Errorf("kafkatest.Security: user %q twice", u.Name)
		}
		seen[u.Name] = true
	}
	switch s.ClientAuth {
	case "", "none", "requested", "required":
	default:
		return fmt.Errorf("kafkatest.Security: ClientAuth %q: want none, requested or required", s.ClientAuth)
	}
	return nil
}

// secureListener is the name of a secure cluster's client listener.
const secureListener = "SASL_SSL"

// writeCerts signs the broker's certificate and writes its stores.
func (c *Cluster) writeCerts() error {
	leaf, err := c.Sec.CA.Leaf(c.Name, "127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	dir := c.bed.Path(c.Name, "tls")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c.Certs, err = leaf.WriteFiles(dir, "broker", c.Sec.storePassword())
	return err
}

// securityProperties are the server.properties lines of a secure cluster's
// client listener, other than listeners and the protocol map.
func (c *Cluster) securityProperties() []string {
	s := c.Sec
	ln := "listener.name." + strings.ToLower(secureListener) + "."
	var plainUsers []string
	for _, u := range s.allUsers() {
		plainUsers = append(plainUsers, fmt.Sprintf("user_%s=%q", u.Name, u.Password))
	}
	clientAuth := s.ClientAuth
	if clientAuth == "" {
		clientAuth = "none"
	}
	props := []string{
		"inter.broker.listener.name=" + secureListener,
		"sasl.enabled.mechanisms=" + strings.Join(Mechanisms, ","),
		"sasl.mechanism.inter.broker.protocol=" + ScramSHA512,
		ln + "scram-sha-256.sasl.jaas.config=" + jaas(ScramSHA256, s.Admin),
		ln + "scram-sha-512.sasl.jaas.config=" + jaas(ScramSHA512, s.Admin),
		// PLAIN's server side checks passwords against user_<name>.
		ln + "plain.sasl.jaas.config=" + strings.TrimSuffix(jaas(Plain, s.Admin), ";") + " " + strings.Join(plainUsers, " ") + ";",
		"ssl.keystore.type=PKCS12",
		"ssl.keystore.location=" + c.Certs.PKCS12,
		"ssl.keystore.password=" + c.Certs.Password,
		"ssl.truststore.type=PKCS12",
		"ssl.truststore.location=" + c.Certs.TrustP12,
		"ssl.truststore.password=" + c.Certs.Password,
		"ssl.client.auth=" + clientAuth,
		"super.users=User:" + s.Admin.Name,
	}
	if s.Reauth > 0 {
		props = append(props, fmt.Sprintf("connections.max.reauth.ms=%d", s.Reauth.Milliseconds()))
	}
	return props
}

// scramArgs are StorageTool's --add-scram arguments: every user, for both
// SCRAM mechanisms.
func (s *Security) scramArgs() []string {
	var args []string
	for _, u := range s.allUsers() {
		for _, m := range []string{ScramSHA256, ScramSHA512} {
			args = append(args, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", m, u.Name, u.Password))
		}
	}
	return args
}

// jaas is the sasl.jaas.config of a client logging in as u with mechanism.
func jaas(mechanism string, u User) string {
	module := "org.apache.kafka.common.security.scram.ScramLoginModule"
	if mechanism == Plain {
		module = "org.apache.kafka.common.security.plain.PlainLoginModule"
	}
	return fmt.Sprintf("%s required username=%q password=%q;", module, u.Name, u.Password)
}

// ClientAuth is how a test client connects to a secure listener (a cluster's
// or the gateway's): TLS trusting a CA, optionally with a certificate of its
// own, and SASL unless Mechanism is "". It renders itself for each kind of
// client: Java properties, franz-go options, kcat -X flags.
type ClientAuth struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; "" is TLS only.
	Mechanism string
	User      User
	// Trust holds the CA to trust: its CA (PEM) and TrustP12 (PKCS#12,
	// protected by Password) are used.
	Trust testcerts.Files
	// Cert, when set, is the client's own certificate: Chain and Key (PEM)
	// and PKCS12 (protected by Password).
	Cert *testcerts.Files
	// DialAddr, when set, is where franz-go connects whatever broker it
	// dials, asking for that broker's host as the TLS server name, as DNS
	// sending every name to DialAddr would (a gateway's SNI route; the
	// Java client has Gateway.HostsFile instead).
	DialAddr string
}

// AuthAs is how a client logs in to the cluster as u with mechanism.
func (c *Cluster) AuthAs(u User, mechanism string) ClientAuth {
	return ClientAuth{Mechanism: mechanism, User: u, Trust: c.Certs}
}

// AdminAuth is how the cluster's own clients log in: as Admin with
// SCRAM-SHA-512. It is the zero ClientAuth for a plaintext cluster.
func (c *Cluster) AdminAuth() ClientAuth {
	if c.Sec == nil {
		return ClientAuth{}
	}
	return c.AuthAs(c.Sec.Admin, ScramSHA512)
}

// Secure says whether the cluster's client listener is SASL_SSL.
func (c *Cluster) Secure() bool { return c.Sec != nil }

func (a ClientAuth) zero() bool { return a.Trust.CA == "" && a.Mechanism == "" }

// Protocol is the client's security.protocol.
func (a ClientAuth) Protocol() string {
	switch {
	case a.zero():
		return "PLAINTEXT"
	case a.Mechanism == "":
		return "SSL"
	default:
		return "SASL_SSL"
	}
}

// Java is the client's Java configuration, as name=value pairs, sorted.
func (a ClientAuth) Java() []string {
	if a.zero() {
		return nil
	}
	m := map[string]string{"security.protocol": a.Protocol()}
	if a.Trust.TrustP12 != "" {
		m["ssl.truststore.type"] = "PKCS12"
		m["ssl.truststore.location"] = a.Trust.TrustP12
		m["ssl.truststore.password"] = a.Trust.Password
	}
	if a.Cert != nil {
		m["ssl.keystore.type"] = "PKCS12"
		m["ssl.keystore.location"] = a.Cert.PKCS12
		m["ssl.keystore.password"] = a.Cert.Password
	}
	if a.Mechanism != "" {
		m["sasl.mechanism"] = a.Mechanism
		m["sasl.jaas.config"] = jaas(a.Mechanism, a.User)
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// WriteProperties writes the Java configuration to path (a client.properties
// for --command-config), with extra name=value lines after it.
func (a ClientAuth) WriteProperties(path string, extra ...string) error {
	lines := append(a.Java(), extra...)
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

// Kcat is the client's configuration as kcat (librdkafka) flags.
func (a ClientAuth) Kcat() []string {
	if a.zero() {
		return nil
	}
	args := []string{"-X", "security.protocol=" + strings.ToLower(a.Protocol())}
	if a.Trust.CA != "" {
		args = append(args, "-X", "ssl.ca.location="+a.Trust.CA)
	}
	if a.Cert != nil {
		args = append(args, "-X", "ssl.certificate.location="+a.Cert.Chain, "-X", "ssl.key.location="+a.Cert.Key)
	}
	if a.Mechanism != "" {
		args = append(args, "-X", "sasl.mechanisms="+a.Mechanism,
			"-X", "sasl.username="+a.User.Name, "-X", "sasl.password="+a.User.Password)
	}
	return args
}

// Kgo is the client's configuration as franz-go options.
func (a ClientAuth) Kgo() ([]kgo.Opt, error) {
	if a.zero() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.Trust.CA != "" {
		pem, err := os.ReadFile(a.Trust.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", a.Trust.CA)
		}
	}
	if a.Cert != nil {
		cert, err := tls.LoadX509KeyPair(a.Cert.Chain, a.Cert.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	// franz-go sets ServerName to the host it dials (127.0.0.1), which the
	// certificates carry as an IP address.
	opts := []kgo.Opt{kgo.DialTLSConfig(cfg)}
	if a.DialAddr != "" {
		to := a.DialAddr
		opts = []kgo.Opt{kgo.Dialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			c := cfg.Clone()
			c.ServerName = host
			return (&tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: c}).DialContext(ctx, network, to)
		})}
	}
	if a.Mechanism != "" {
		m, err := a.saslMechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// MustKgo is Kgo for options known to be good (a panic otherwise).
func (a ClientAuth) MustKgo() []kgo.Opt {
	opts, err := a.Kgo()
	if err != nil {
		panic(err)
	}
	return opts
}

func (a ClientAuth) saslMechanism() (sasl.Mechanism, error) {
	switch a.Mechanism {
	case Plain:
		return plain.Auth{User: a.User.Name, Pass: a.User.Password}.AsMechanism(), nil
	case ScramSHA256:
		return scram.Auth{User: a.User.Name, Pass: a.User.Password}.AsSha256Mechanism(), nil
	case ScramSHA512:
		return scram.Auth{User: a.User.Name, Pass: a.User.Password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("unknown SASL mechanism %q", a.Mechanism)
}
