package testcerts

import (
	"bytes"
	"crypto/tls"
	"os"
	"testing"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// TestFilesRoundTrip checks every written form decodes back to the same
// certificate, and that the leaf completes a TLS handshake trusted by its CA.
func TestFilesRoundTrip(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf("broker", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	f, err := leaf.WriteFiles(t.TempDir(), "broker", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	p12, _ := os.ReadFile(f.PKCS12)
	_, cert, _, err := pkcs12.DecodeChain(p12, "s3cret")
	if err != nil || !cert.Equal(leaf.Cert) {
		t.Fatalf("PKCS#12: %v", err)
	}
	tp12, _ := os.ReadFile(f.TrustP12)
	trusted, err := pkcs12.DecodeTrustStore(tp12, "s3cret")
	if err != nil || len(trusted) != 1 || !trusted[0].Equal(ca.Cert) {
		t.Fatalf("PKCS#12 trust store: %v", err)
	}
	jks, _ := os.ReadFile(f.JKS)
	ks := keystore.New()
	if err := ks.Load(bytes.NewReader(jks), []byte("s3cret")); err != nil {
		t.Fatalf("JKS: %v", err)
	}
	e, err := ks.GetPrivateKeyEntry("leaf", []byte("s3cret"))
	if err != nil || !bytes.Equal(e.CertificateChain[0].Content, leaf.Cert.Raw) {
		t.Fatalf("JKS entry: %v", err)
	}

	pair, err := tls.LoadX509KeyPair(f.Chain, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := tlsPipe(t, &tls.Config{Certificates: []tls.Certificate{pair}},
		&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	defer srv.Close()
	defer cli.Close()
}

func tlsPipe(t *testing.T, srvCfg, cliCfg *tls.Config) (*tls.Conn, *tls.Conn) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *tls.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		tc := c.(*tls.Conn)
		_ = tc.Handshake()
		accepted <- tc
	}()
	cli, err := tls.Dial("tcp", ln.Addr().String(), cliCfg)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return <-accepted, cli
}
