// Package testcerts makes certificate authorities and certificates for tests,
// and writes them in the forms Kafka and the gateway read: PEM, PKCS#12 and
// JKS. Nothing here is fit for production keys: it favours speed (P-256,
// short lifetimes) and writes private keys unencrypted where PEM allows it.
package testcerts

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// CA is a certificate authority that signs leaves.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Leaf is a certificate signed by a CA, with its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	CA   *CA
}

// NewCA makes a self-signed authority named name.
func NewCA(name string) (*CA, error) {
	tmpl := template(name)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	cert, key, err := sign(tmpl, nil, nil)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Leaf signs a certificate for name, valid as a server for hosts (IP
// addresses or DNS names, wildcards allowed) and as a client.
func (ca *CA) Leaf(name string, hosts ...string) (*Leaf, error) {
	tmpl := template(name)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	cert, key, err := sign(tmpl, ca.Cert, ca.Key)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: cert, Key: key, CA: ca}, nil
}

// template is a certificate for name, valid for a week from an hour ago.
func template(name string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
	}
}

// sign makes a key and the certificate tmpl describes for it, signed by
// parent's key, or by its own when parent is nil.
func sign(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// TLS returns the leaf as a tls.Certificate with its chain.
func (l *Leaf) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{l.Cert.Raw, l.CA.Cert.Raw}, PrivateKey: l.Key, Leaf: l.Cert}
}

// Pool returns a pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// CertPEM is the CA certificate in PEM.
func (ca *CA) CertPEM() []byte { return certPEM(ca.Cert) }

// ChainPEM is the leaf certificate followed by its CA, in PEM.
func (l *Leaf) ChainPEM() []byte { return append(certPEM(l.Cert), certPEM(l.CA.Cert)...) }

// KeyPEM is the unencrypted PKCS#8 private key in PEM.
func (l *Leaf) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		panic(err) // an ECDSA key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// PKCS12 encodes the leaf, its key and its chain, protected by password.
func (l *Leaf) PKCS12(password string) ([]byte, error) {
	return pkcs12.Modern.Encode(l.Key, l.Cert, []*x509.Certificate{l.CA.Cert}, password)
}

// TrustPKCS12 encodes the CA as a PKCS#12 trust store Java accepts.
func (ca *CA) TrustPKCS12(password string) ([]byte, error) {
	return pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{ca.Cert}, password)
}

// JKS encodes the leaf, its key and its chain as a Java KeyStore whose store
// and key passwords are both password.
func (l *Leaf) JKS(password string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		return nil, err
	}
	ks := keystore.New()
	err = ks.SetPrivateKeyEntry("leaf", keystore.PrivateKeyEntry{
		CreationTime: time.Now(),
		PrivateKey:   der,
		CertificateChain: []keystore.Certificate{
			{Type: "X509", Content: l.Cert.Raw},
			{Type: "X509", Content: l.CA.Cert.Raw},
		},
	}, []byte(password))
	if err != nil {
		return nil, err
	}
	return storeJKS(ks, password)
}

// TrustJKS encodes the CA as a Java KeyStore trust store.
func (ca *CA) TrustJKS(password string) ([]byte, error) {
	ks := keystore.New()
	err := ks.SetTrustedCertificateEntry("ca", keystore.TrustedCertificateEntry{
		CreationTime: time.Now(),
		Certificate:  keystore.Certificate{Type: "X509", Content: ca.Cert.Raw},
	})
	if err != nil {
		return nil, err
	}
	return storeJKS(ks, password)
}

// Files are the paths WriteFiles wrote, for one leaf.
type Files struct {
	CA, Chain, Key   string // PEM
	PKCS12, TrustP12 string // password-protected with the Password
	JKS, TrustJKS    string
	Password         string
	PasswordFile     string // holds Password
}

// WriteFiles writes the leaf in every form into dir, with file names
// starting with prefix, all protected by password where the form has one.
func (l *Leaf) WriteFiles(dir, prefix, password string) (Files, error) {
	f := Files{
		CA:           filepath.Join(dir, prefix+"-ca.pem"),
		Chain:        filepath.Join(dir, prefix+"-chain.pem"),
		Key:          filepath.Join(dir, prefix+"-key.pem"),
		PKCS12:       filepath.Join(dir, prefix+".p12"),
		TrustP12:     filepath.Join(dir, prefix+"-trust.p12"),
		JKS:          filepath.Join(dir, prefix+".jks"),
		TrustJKS:     filepath.Join(dir, prefix+"-trust.jks"),
		Password:     password,
		PasswordFile: filepath.Join(dir, prefix+"-password"),
	}
	p12, err := l.PKCS12(password)
	if err != nil {
		return f, err
	}
	tp12, err := l.CA.TrustPKCS12(password)
	if err != nil {
		return f, err
	}
	jks, err := l.JKS(password)
	if err != nil {
		return f, err
	}
	tjks, err := l.CA.TrustJKS(password)
	if err != nil {
		return f, err
	}
	for path, data := range map[string][]byte{
		f.CA: l.CA.CertPEM(), f.Chain: l.ChainPEM(), f.Key: l.KeyPEM(),
		f.PKCS12: p12, f.TrustP12: tp12, f.JKS: jks, f.TrustJKS: tjks,
		f.PasswordFile: []byte(password + "\n"),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return f, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return f, nil
}

func storeJKS(ks keystore.KeyStore, password string) ([]byte, error) {
	var buf bytes.Buffer
	if err := ks.Store(&buf, []byte(password)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n
}

// MustCA is NewCA for tests: a failure ends the test.
func MustCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// MustLeaf is Leaf for tests: a failure ends the test.
func (ca *CA) MustLeaf(t testing.TB, name string, hosts ...string) *Leaf {
	t.Helper()
	l, err := ca.Leaf(name, hosts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// MustWriteFiles is WriteFiles for tests: a failure ends the test.
func (l *Leaf) MustWriteFiles(t testing.TB, dir, prefix, password string) Files {
	t.Helper()
	f, err := l.WriteFiles(dir, prefix, password)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
