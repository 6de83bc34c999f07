package proxy_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/turnout/turnout/internal/testcerts"
	"github.com/turnout/turnout/internal/testnet"
	"github.com/turnout/turnout/proxy"
)

// tlsBed is a kfake cluster that speaks only TLS and SCRAM, and the files a
// gateway in front of it needs: the cluster's trust, the gateway's own
// certificate (for gw.test and its subdomains, and 127.0.0.1) in every
// store format, and a client certificate.
type tlsBed struct {
	t       *testing.T
	dir     string
	cluster *kfake.Cluster
	kafka   testcerts.Files // the cluster's CA, for the gateway to trust
	gw      testcerts.Files // the gateway's certificate
	gwPEM   string          // its key and chain in one file
	client  *testcerts.Leaf // signed by the gateway's CA
	ca      *testcerts.CA   // the gateway's CA
	port    int
	path    string
}

func newTLSBed(t *testing.T) *tlsBed {
	t.Helper()
	b := &tlsBed{t: t, dir: t.TempDir()}
	kafkaCA := testcerts.MustCA(t, "kafka CA")
	broker := kafkaCA.MustLeaf(t, "broker", "127.0.0.1")
	b.kafka = broker.MustWriteFiles(t, b.dir, "kafka", "kafkapass")
	b.ca = testcerts.MustCA(t, "gateway CA")
	gw := b.ca.MustLeaf(t, "gateway", "gw.test", "*.gw.test", "127.0.0.1")
	b.gw = gw.MustWriteFiles(t, b.dir, "gw", "gwpass")
	b.gwPEM = filepath.Join(b.dir, "gw-keystore.pem")
	if err := os.WriteFile(b.gwPEM, append(gw.KeyPEM(), gw.ChainPEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	b.client = b.ca.MustLeaf(t, "client")
	var err error
	b.cluster, err = kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, topic),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{broker.TLS()}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "turnout", "scram-secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.cluster.Close)
	b.port = testnet.FreePorts(t, 4)
	b.path = filepath.Join(b.dir, "gateway.yaml")
	return b
}

// stores is the route's ssl keystore in the given format.
func (b *tlsBed) keystore(format string) string {
	switch format {
	case "PEM":
		return "{type: PEM, location: " + b.gwPEM + "}"
	case "PKCS12":
		return "{type: PKCS12, location: " + b.gw.PKCS12 + ", password: {file: " + b.gw.PasswordFile + "}}"
	default:
		return "{type: JKS, location: " + b.gw.JKS + ", password: {value: gwpass}}"
	}
}

// write writes the gateway's configuration: routeSSL is the route's ssl
// block (one line per setting), strategy its broker identification.
func (b *tlsBed) write(routeSSL, strategy string) {
	b.t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "gateway:\n  streamingDomains:\n    - name: kafka\n      kafkaCluster:\n        bootstrapServers:\n")
	fmt.Fprintf(&sb, "          - id: tls\n            endpoint: %q\n", strings.Join(b.cluster.ListenAddrs(), ","))
	fmt.Fprintf(&sb, "            ssl:\n              truststore: {type: PKCS12, location: %s, password: {file: %s}}\n", b.kafka.TrustP12, b.kafka.PasswordFile)
	fmt.Fprintf(&sb, "            sasl: {mechanism: SCRAM-SHA-256, username: turnout, password: {value: scram-secret}}\n")
	fmt.Fprintf(&sb, "        nodeIdRanges: [{name: all, start: 0, end: 2}]\n")
	fmt.Fprintf(&sb, "  routes:\n    - name: secure\n      endpoint: %q\n      bind: 127.0.0.1\n", b.endpointHost()+":"+strconv.Itoa(b.port))
	fmt.Fprintf(&sb, "      brokerIdentificationStrategy: %s\n", strategy)
	fmt.Fprintf(&sb, "      streamingDomain: {name: kafka, bootstrapServerId: tls}\n")
	if routeSSL != "" {
		fmt.Fprintf(&sb, "      security:\n        ssl:\n")
		for l := range strings.SplitSeq(strings.TrimSpace(routeSSL), "\n") {
			fmt.Fprintf(&sb, "          %s\n", l)
		}
	}
	fmt.Fprintf(&sb, "  limits: {drainTimeout: 2s}\n")
	if err := os.WriteFile(b.path, []byte(sb.String()), 0o600); err != nil {
		b.t.Fatal(err)
	}
}

func (b *tlsBed) endpointHost() string { return "127.0.0.1" }

// start starts a gateway that lives as long as test t.
func (b *tlsBed) start(t *testing.T) *proxy.Gateway {
	t.Helper()
	gw := proxy.New(b.path, testLogger(t), proxy.NewMetrics())
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close(context.Background()) })
	return gw
}

// clientTLS trusts the gateway's CA, presenting the client certificate if
// withCert.
func (b *tlsBed) clientTLS(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: b.ca.Pool(), MinVersion: tls.VersionTLS12}
	if withCert {
		c.Certificates = []tls.Certificate{b.client.TLS()}
	}
	return c
}

// saslClient is a client through the gateway that authenticates to the
// cluster itself (passthrough).
func saslClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SASL(scram.Auth{User: "turnout", Pass: "scram-secret"}.AsSha256Mechanism()),
		kgo.RequestRetries(2), kgo.RetryTimeout(5 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// roundTrip produces a record through cl and consumes it back.
func roundTrip(t *testing.T, cl *kgo.Client, consumerOpts ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	value := []byte("tls " + t.Name())
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: value}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cons := saslClient(t, append(consumerOpts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	for {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("record not consumed back: %v", err)
		}
		found := false
		fs.EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == string(value) })
		if found {
			return
		}
	}
}

func TestTLSRoute(t *testing.T) {
	b := newTLSBed(t)
	for _, format := range []string{"PEM", "PKCS12", "JKS"} {
		t.Run(format, func(t *testing.T) {
			b.write("keystore: "+b.keystore(format), "port")
			b.start(t)
			seed := kgo.SeedBrokers("127.0.0.1:" + strconv.Itoa(b.port))
			tlsOpt := kgo.DialTLSConfig(b.clientTLS(false))
			roundTrip(t, saslClient(t, seed, tlsOpt), seed, tlsOpt)
		})
	}
}

func TestTLSRouteClientAuth(t *testing.T) {
	b := newTLSBed(t)
	trust := "truststore: {type: JKS, location: " + b.gw.TrustJKS + ", password: {value: gwpass}}"
	b.write("keystore: "+b.keystore("PKCS12")+"\n"+trust+"\nclientAuth: required", "port")
	b.start(t)
	seed := kgo.SeedBrokers("127.0.0.1:" + strconv.Itoa(b.port))

	with := kgo.DialTLSConfig(b.clientTLS(true))
	roundTrip(t, saslClient(t, seed, with), seed, with)

	anon := saslClient(t, seed, kgo.DialTLSConfig(b.clientTLS(false)), kgo.RequestRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := anon.Ping(ctx); err == nil {
		t.Fatal("a client without a certificate got through a route that requires one")
	}
	plain := saslClient(t, seed, kgo.RequestRetries(0))
	if err := plain.Ping(ctx); err == nil {
		t.Fatal("a plaintext client got through a TLS route")
	}
}

// TestTLSBadConfig: a store that cannot be loaded stops a start before any
// listener opens, and a restart that brings one keeps the old configuration
// serving.
func TestTLSBadConfig(t *testing.T) {
	b := newTLSBed(t)
	wrong := "keystore: {type: PKCS12, location: " + b.gw.PKCS12 + ", password: {value: nope}}"
	b.write(wrong, "port")
	gw := proxy.New(b.path, testLogger(t), proxy.NewMetrics())
	err := gw.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "wrong password") || !strings.Contains(err.Error(), "gateway.yaml:") {
		t.Fatalf("start with a wrong password: %v", err)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(b.port)); err == nil {
		c.Close()
		t.Fatal("a listener is open after a failed start")
	}

	b.write("keystore: "+b.keystore("JKS"), "port")
	gw = b.start(t)
	seed := kgo.SeedBrokers("127.0.0.1:" + strconv.Itoa(b.port))
	tlsOpt := kgo.DialTLSConfig(b.clientTLS(false))
	cl := saslClient(t, seed, tlsOpt)
	roundTrip(t, cl, seed, tlsOpt)

	for name, ssl := range map[string]string{
		"missing keystore": "keystore: {type: PEM, location: " + filepath.Join(b.dir, "gone.pem") + "}",
		"key without cert": "keystore: {type: PEM, location: " + b.gw.Key + "}",
	} {
		b.write(ssl, "port")
		err := gw.Restart(context.Background())
		if err == nil || !strings.Contains(err.Error(), "still serving the previous configuration") {
			t.Fatalf("restart with a %s: %v", name, err)
		}
	}
	roundTrip(t, cl, seed, tlsOpt)
}

// sniDialer dials the gateway's one port whatever host a client asks for,
// and asks for that host as the TLS server name, as DNS pointing every name
// at the gateway would.
type sniDialer struct {
	port  int
	tls   *tls.Config
	mu    sync.Mutex
	names map[string]bool
}

func (d *sniDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.names[host] = true
	d.mu.Unlock()
	c := d.tls.Clone()
	c.ServerName = host
	td := tls.Dialer{Config: c}
	return td.DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(d.port))
}

func TestSNIRouting(t *testing.T) {
	b := newTLSBed(t)
	b.write("keystore: "+b.keystore("PEM"), `{type: host, pattern: "broker-$(nodeId).gw.test"}`)
	b.start(t)
	d := &sniDialer{port: b.port, tls: b.clientTLS(false), names: map[string]bool{}}
	seed := kgo.SeedBrokers("127.0.0.1:" + strconv.Itoa(b.port))
	cl := saslClient(t, seed, kgo.Dialer(d.dial))
	roundTrip(t, cl, seed, kgo.Dialer(d.dial))
	d.mu.Lock()
	for name := range d.names {
		if name != "127.0.0.1" && !strings.HasSuffix(name, ".gw.test") {
			t.Errorf("client dialled %s", name)
		}
	}
	if !d.names["broker-0.gw.test"] && !d.names["broker-1.gw.test"] && !d.names["broker-2.gw.test"] {
		t.Errorf("client dialled %v: want brokers by their pattern names", d.names)
	}
	d.mu.Unlock()

	// A name that is neither the endpoint's host nor a broker's is refused.
	stray := &sniDialer{port: b.port, tls: b.clientTLS(false), names: map[string]bool{}}
	cl = saslClient(t, kgo.SeedBrokers("elsewhere.gw.test:9092"), kgo.Dialer(stray.dial), kgo.RequestRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err == nil {
		t.Fatal("a client asking for an unknown server name was served")
	}
}

// TestTLSRestartDrainsOnSecurityChange: a restart that changes how the
// route's TLS admits clients (its certificate, clientAuth, the CAs it trusts
// for client certificates) drains the connections admitted under the old
// settings, as a switch does; one that changes nothing of it keeps them.
func TestTLSRestartDrainsOnSecurityChange(t *testing.T) {
	b := newTLSBed(t)
	other := b.ca.MustLeaf(t, "gateway 2", "gw.test", "*.gw.test", "127.0.0.1")
	otherPEM := filepath.Join(b.dir, "gw2-keystore.pem")
	if err := os.WriteFile(otherPEM, append(other.KeyPEM(), other.ChainPEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	otherKS := "keystore: {type: PEM, location: " + otherPEM + "}"
	trust := "truststore: {type: JKS, location: " + b.gw.TrustJKS + ", password: {value: gwpass}}"
	otherTrust := "truststore: {type: PKCS12, location: " + b.kafka.TrustP12 + ", password: {file: " + b.kafka.PasswordFile + "}}"

	b.write("keystore: "+b.keystore("PKCS12"), "port")
	gw := b.start(t)
	addr := "127.0.0.1:" + strconv.Itoa(b.port)
	dial := func(withCert bool) net.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", addr, b.clientTLS(withCert))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := apiVersionsOn(c); err != nil {
			t.Fatalf("a new connection: %v", err)
		}
		return c
	}
	restart := func(ssl string) {
		t.Helper()
		b.write(ssl, "port")
		if err := gw.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	kept := func(c net.Conn, what string) {
		t.Helper()
		if err := apiVersionsOn(c); err != nil {
			t.Fatalf("%s: the connection was dropped: %v", what, err)
		}
	}
	drained := func(c net.Conn, what string) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("%s: the connection was kept (%v)", what, err)
		}
	}

	c := dial(false)
	restart("keystore: " + b.keystore("PEM")) // the same certificate, another file
	kept(c, "the same certificate from another store")

	restart(otherKS)
	drained(c, "another certificate")
	c = dial(false)

	restart(otherKS + "\n" + trust + "\nclientAuth: required")
	drained(c, "clientAuth none to required")
	c = dial(true)

	restart(otherKS + "\n" + otherTrust + "\nclientAuth: required")
	drained(c, "another truststore")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// apiVersionsOn sends ApiVersions v0 on c and reads the answer.
func apiVersionsOn(c net.Conn) error {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	frame := append([]byte{0, 0, 0, 0, 0, 18, 0, 0, 0, 0, 0, 7, 0, 0}, req.AppendTo(nil)...)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if _, err := c.Write(frame); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return err
	}
	_, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(size[:])))
	return err
}
