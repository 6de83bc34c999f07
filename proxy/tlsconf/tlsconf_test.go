package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/turnout/turnout/internal/testcerts"
)

type fixture struct {
	dir          string
	server       testcerts.Files // signed by ca
	client       testcerts.Files // signed by ca
	other        testcerts.Files // signed by another CA
	serverPEM    string          // key and chain in one file, as Kafka's PEM keystores are
	mismatchPEM  string          // the server's chain with the client's key
	mismatchP12  string
	mismatchJKS  string
	encryptedPEM string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	ca := testcerts.MustCA(t, "test CA")
	other := testcerts.MustCA(t, "other CA")
	srv := ca.MustLeaf(t, "server", "localhost", "127.0.0.1")
	cli := ca.MustLeaf(t, "client")
	oth := other.MustLeaf(t, "stranger")
	f := &fixture{dir: dir}
	for _, w := range []struct {
		l      *testcerts.Leaf
		prefix string
		to     *testcerts.Files
	}{{srv, "server", &f.server}, {cli, "client", &f.client}, {oth, "other", &f.other}} {
		*w.to = w.l.MustWriteFiles(t, dir, w.prefix, "s3cret")
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f.serverPEM = write("server-keystore.pem", append(srv.KeyPEM(), srv.ChainPEM()...))
	f.mismatchPEM = write("mismatch.pem", append(cli.KeyPEM(), srv.ChainPEM()...))
	f.encryptedPEM = write("encrypted.pem", append([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), srv.ChainPEM()...))
	p12, err := pkcs12.Modern.Encode(cli.Key, srv.Cert, []*x509.Certificate{ca.Cert}, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	f.mismatchP12 = write("mismatch.p12", p12)
	der, err := x509.MarshalPKCS8PrivateKey(cli.Key)
	if err != nil {
		t.Fatal(err)
	}
	ks := keystore.New()
	if err := ks.SetPrivateKeyEntry("leaf", keystore.PrivateKeyEntry{
		CreationTime: time.Now(), PrivateKey: der,
		CertificateChain: []keystore.Certificate{{Type: "X509", Content: srv.Cert.Raw}},
	}, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	f.mismatchJKS = write("mismatch.jks", buf.Bytes())
	return f
}

func TestIdentity(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name string
		s    Store
		want string // "" for success
	}{
		{"PEM", Store{Type: PEM, Location: f.serverPEM}, ""},
		{"PKCS12", Store{Type: PKCS12, Location: f.server.PKCS12, Password: "s3cret"}, ""},
		{"JKS", Store{Type: JKS, Location: f.server.JKS, Password: "s3cret"}, ""},
		{"JKS with its key password", Store{Type: JKS, Location: f.server.JKS, Password: "s3cret", KeyPassword: "s3cret"}, ""},
		{"missing file", Store{Type: PKCS12, Location: filepath.Join(f.dir, "nope.p12"), Password: "s3cret"}, "no such file"},
		{"no location", Store{Type: PKCS12}, "no location"},
		{"directory", Store{Type: PEM, Location: f.dir}, "not a regular file"},
		{"unknown type", Store{Type: "PFX", Location: f.server.PKCS12}, `unknown store type "PFX"`},
		{"PKCS12 wrong password", Store{Type: PKCS12, Location: f.server.PKCS12, Password: "wrong"}, "wrong password"},
		{"JKS wrong password", Store{Type: JKS, Location: f.server.JKS, Password: "wrong"}, "wrong password"},
		{"JKS wrong key password", Store{Type: JKS, Location: f.server.JKS, Password: "s3cret", KeyPassword: "wrong"}, "wrong keyPassword"},
		{"PKCS12 named JKS", Store{Type: JKS, Location: f.server.PKCS12, Password: "s3cret"}, "set type: PKCS12"},
		{"JKS named PKCS12", Store{Type: PKCS12, Location: f.server.JKS, Password: "s3cret"}, "set type: JKS"},
		{"PEM key without certificate", Store{Type: PEM, Location: f.server.Key}, "no certificate"},
		{"PEM certificate without key", Store{Type: PEM, Location: f.server.Chain}, "no private key"},
		{"PEM not PEM", Store{Type: PEM, Location: f.server.PKCS12}, "no PEM certificate or private key"},
		{"PEM encrypted key", Store{Type: PEM, Location: f.encryptedPEM}, "encrypted"},
		{"PEM key of another certificate", Store{Type: PEM, Location: f.mismatchPEM}, "does not match"},
		{"PKCS12 key of another certificate", Store{Type: PKCS12, Location: f.mismatchP12, Password: "s3cret"}, "does not match"},
		{"JKS key of another certificate", Store{Type: JKS, Location: f.mismatchJKS, Password: "s3cret"}, "does not match"},
		{"JKS truststore as keystore", Store{Type: JKS, Location: f.server.TrustJKS, Password: "s3cret"}, "no private key entry"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cert, err := Identity(c.s)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cert.Leaf == nil || cert.Leaf.Subject.CommonName != "server" || len(cert.Certificate) < 1 {
					t.Fatalf("loaded %+v", cert.Leaf)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
			if c.s.Location != "" && !strings.Contains(err.Error(), c.s.Location) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestTrust(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name string
		s    Store
		want string
	}{
		{"PEM", Store{Type: PEM, Location: f.server.CA}, ""},
		{"PEM chain", Store{Type: PEM, Location: f.server.Chain}, ""},
		{"PKCS12", Store{Type: PKCS12, Location: f.server.TrustP12, Password: "s3cret"}, ""},
		{"JKS", Store{Type: JKS, Location: f.server.TrustJKS, Password: "s3cret"}, ""},
		{"missing file", Store{Type: PEM, Location: filepath.Join(f.dir, "nope.pem")}, "no such file"},
		{"PEM without certificates", Store{Type: PEM, Location: f.server.Key}, "no trusted certificates"},
		{"PKCS12 wrong password", Store{Type: PKCS12, Location: f.server.TrustP12, Password: "wrong"}, "wrong password"},
		{"JKS wrong password", Store{Type: JKS, Location: f.server.TrustJKS, Password: "wrong"}, "wrong password"},
		{"JKS keystore as truststore", Store{Type: JKS, Location: f.server.JKS, Password: "s3cret"}, "no trusted certificates"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool, err := Trust(c.s)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if pool == nil {
					t.Fatal("no pool")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// handshake connects a client with cc to a server with sc, over loopback TCP
// (net.Pipe has no buffer, and an alert nobody reads would block), and
// returns each side's error.
func handshake(t *testing.T, sc, cc *tls.Config) (server, client error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(c, sc)
		if err = s.Handshake(); err == nil {
			// TLS 1.3 checks the client's certificate after the client
			// is done: echo a byte so the client hears the verdict.
			b := make([]byte, 1)
			if _, err = s.Read(b); err == nil {
				_, err = s.Write(b)
			}
		}
		done <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, cc)
	if client = c.Handshake(); client == nil {
		if _, client = c.Write([]byte{1}); client == nil {
			_, client = c.Read(make([]byte, 1))
		}
	}
	return <-done, client
}

func TestHandshakes(t *testing.T) {
	f := newFixture(t)
	trust := &Store{Type: PKCS12, Location: f.server.TrustP12, Password: "s3cret"}
	keystores := map[string]Store{
		"PEM":    {Type: PEM, Location: f.serverPEM},
		"PKCS12": {Type: PKCS12, Location: f.server.PKCS12, Password: "s3cret"},
		"JKS":    {Type: JKS, Location: f.server.JKS, Password: "s3cret"},
	}
	clientKS := &Store{Type: JKS, Location: f.client.JKS, Password: "s3cret"}
	strangerKS := &Store{Type: PKCS12, Location: f.other.PKCS12, Password: "s3cret"}
	for name, ks := range keystores {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct {
				name       string
				clientAuth string
				keystore   *Store
				truststore *Store
				ignore     bool
				wantErr    bool
			}{
				{"server auth only", ClientAuthNone, nil, trust, false, false},
				{"mutual", ClientAuthRequired, clientKS, trust, false, false},
				{"required without a client certificate", ClientAuthRequired, nil, trust, false, true},
				{"required with a certificate of another CA", ClientAuthRequired, strangerKS, trust, false, true},
				{"requested without a client certificate", ClientAuthRequested, nil, trust, false, false},
				// Go's client (like Java's) offers only a certificate from a
				// CA the server names: this one is sent by force below.
				{"requested with a certificate of another CA", ClientAuthRequested, strangerKS, trust, false, true},
				{"client trusts another CA", ClientAuthNone, nil, &Store{Type: PEM, Location: f.other.CA}, false, true},
				{"client ignores trust", ClientAuthNone, nil, &Store{Type: PEM, Location: f.other.CA}, true, false},
			} {
				t.Run(c.name, func(t *testing.T) {
					sc, err := Server(ks, trust, c.clientAuth)
					if err != nil {
						t.Fatal(err)
					}
					cc, err := Client(c.keystore, c.truststore, c.ignore)
					if err != nil {
						t.Fatal(err)
					}
					cc.ServerName = "localhost"
					if c.keystore != nil {
						cert := cc.Certificates[0]
						cc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
					}
					serr, cerr := handshake(t, sc, cc)
					if got := serr != nil || cerr != nil; got != c.wantErr {
						t.Fatalf("server error %v, client error %v; want an error: %v", serr, cerr, c.wantErr)
					}
				})
			}
		})
	}
}

func TestServerNeedsTruststoreForClientAuth(t *testing.T) {
	f := newFixture(t)
	ks := Store{Type: PEM, Location: f.serverPEM}
	if _, err := Server(ks, nil, ClientAuthRequired); err == nil || !strings.Contains(err.Error(), "needs a truststore") {
		t.Fatalf("got %v", err)
	}
	if _, err := Server(ks, nil, "sometimes"); err == nil || !strings.Contains(err.Error(), "required, requested, none") {
		t.Fatalf("got %v", err)
	}
	if _, err := Server(ks, nil, ClientAuthNone); err != nil {
		t.Fatal(err)
	}
}
