// Package tlsconf turns the key and trust stores of a gateway configuration
// into crypto/tls configurations. It reads the three store types Kafka users
// already have: PEM files, PKCS#12 and Java KeyStores (JKS), and words every
// failure for the person who has to fix the file.
package tlsconf

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/turnout/turnout/internal/pemcert"
)

// Store types, as Kafka names them.
const (
	JKS    = "JKS"
	PKCS12 = "PKCS12"
	PEM    = "PEM"
)

// Client authentication modes of a server, as Kafka's ssl.client.auth names
// them.
const (
	ClientAuthRequired  = "required"
	ClientAuthRequested = "requested"
	ClientAuthNone      = "none"
)

// maxStoreBytes bounds what is read from a store file: real stores are a few
// KiB, and a location such as /dev/zero must not hang the gateway.
const maxStoreBytes = 4 << 20

// Store is a key or trust store on disk, with its passwords already read.
type Store struct {
	Type     string // JKS, PKCS12 or PEM
	Location string
	Password string
	// KeyPassword protects the private key inside a JKS keystore; empty
	// means the store's password, as with keytool's defaults.
	KeyPassword string
}

// Server is the TLS configuration of a listener: it presents the keystore's
// certificate and, unless clientAuth is none, asks clients for theirs and
// checks it against the truststore (required when clientAuth asks for
// client certificates).
func Server(keystore Store, truststore *Store, clientAuth string) (*tls.Config, error) {
	cert, err := Identity(keystore)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch clientAuth {
	case ClientAuthNone, "":
		return c, nil
	case ClientAuthRequired:
		c.ClientAuth = tls.RequireAndVerifyClientCert
	case ClientAuthRequested:
		c.ClientAuth = tls.VerifyClientCertIfGiven
	default:
		return nil, fmt.Errorf("client authentication %q is not one of required, requested, none", clientAuth)
	}
	if truststore == nil {
		return nil, fmt.Errorf("client authentication %q needs a truststore to check client certificates against", clientAuth)
	}
	if c.ClientCAs, err = Trust(*truststore); err != nil {
		return nil, err
	}
	return c, nil
}

// Client is the TLS configuration of a connection to a server: it trusts the
// truststore's certificates (the system's when there is none) and presents
// the keystore's certificate when there is one. ignoreTrust skips checking
// the server's certificate altogether.
func Client(keystore, truststore *Store, ignoreTrust bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: ignoreTrust}
	if keystore != nil {
		cert, err := Identity(*keystore)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if truststore != nil && !ignoreTrust {
		pool, err := Trust(*truststore)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	return c, nil
}

// Identity reads the certificate chain and private key of a keystore, and
// checks that they belong together.
func Identity(s Store) (tls.Certificate, error) {
	data, err := read(s, "keystore")
	if err != nil {
		return tls.Certificate{}, err
	}
	var cert tls.Certificate
	switch s.Type {
	case PEM:
		cert, err = pemIdentity(data)
	case PKCS12:
		cert, err = p12Identity(data, s.Password)
	case JKS:
		cert, err = jksIdentity(data, s.Password, cmp.Or(s.KeyPassword, s.Password))
	default:
		err = fmt.Errorf("unknown store type %q; use JKS, PKCS12 or PEM", s.Type)
	}
	if err == nil {
		err = checkPair(cert)
	}
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("keystore %s (%s): %w", s.Location, s.Type, err)
	}
	return cert, nil
}

// Trust reads the certificates of a truststore.
func Trust(s Store) (*x509.CertPool, error) {
	data, err := read(s, "truststore")
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	switch s.Type {
	case PEM:
		certs, err = pemcert.Parse(data)
	case PKCS12:
		certs, err = p12Trust(data, s.Password)
	case JKS:
		certs, err = jksTrust(data, s.Password)
	default:
		err = fmt.Errorf("unknown store type %q; use JKS, PKCS12 or PEM", s.Type)
	}
	if err == nil && len(certs) == 0 {
		err = errors.New("it holds no trusted certificates")
	}
	if err != nil {
		return nil, fmt.Errorf("truststore %s (%s): %w", s.Location, s.Type, err)
	}
	return pemcert.Pool(certs), nil
}

func read(s Store, what string) ([]byte, error) {
	if s.Location == "" {
		return nil, fmt.Errorf("%s has no location", what)
	}
	f, err := os.Open(s.Location)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file", what, s.Location)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxStoreBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(data) > maxStoreBytes {
		return nil, fmt.Errorf("%s %s is larger than %d MiB; is it the right file?", what, s.Location, maxStoreBytes>>20)
	}
	return data, nil
}

// pemIdentity reads a Kafka PEM keystore: one file holding the private key
// and the certificate chain, leaf first.
func pemIdentity(data []byte) (tls.Certificate, error) {
	var certs, key []byte
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE":
			certs = append(certs, pem.EncodeToMemory(b)...)
		case b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "":
			return tls.Certificate{}, errors.New("its private key is encrypted, which Turnout cannot read from PEM; " +
				"store it unencrypted (openssl pkcs8 -topk8 -nocrypt) in a file only the gateway can read, or use a PKCS12 keystore")
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			if key != nil {
				return tls.Certificate{}, errors.New("it holds more than one private key")
			}
			key = pem.EncodeToMemory(b)
		}
	}
	switch {
	case certs == nil && key == nil:
		return tls.Certificate{}, errors.New("no PEM certificate or private key found; a PEM keystore holds both, in one file")
	case certs == nil:
		return tls.Certificate{}, errors.New("it holds a private key but no certificate; a PEM keystore holds both, in one file")
	case key == nil:
		return tls.Certificate{}, errors.New("it holds certificates but no private key; a PEM keystore holds both, in one file")
	}
	cert, err := tls.X509KeyPair(certs, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return cert, nil
}

func p12Identity(data []byte, password string) (tls.Certificate, error) {
	key, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return tls.Certificate{}, p12Error(data, err)
	}
	cert := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, ca := range cas {
		cert.Certificate = append(cert.Certificate, ca.Raw)
	}
	return cert, nil
}

func p12Trust(data []byte, password string) ([]*x509.Certificate, error) {
	certs, err := pkcs12.DecodeTrustStore(data, password)
	if err != nil {
		return nil, p12Error(data, err)
	}
	return certs, nil
}

func p12Error(data []byte, err error) error {
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return errors.New("wrong password")
	case isJKS(data):
		return errors.New("this is a JKS file, not PKCS12; set type: JKS")
	}
	return fmt.Errorf("not a readable PKCS12 file: %w", err)
}

// jksMagic starts every Java KeyStore file.
var jksMagic = []byte{0xfe, 0xed, 0xfe, 0xed}

func isJKS(data []byte) bool { return bytes.HasPrefix(data, jksMagic) }

func loadJKS(data []byte, password string) (keystore.KeyStore, error) {
	if !isJKS(data) {
		if len(data) > 0 && data[0] == 0x30 { // a DER SEQUENCE, as PKCS#12 files are
			return keystore.KeyStore{}, errors.New("this is not a JKS file; it looks like PKCS12: set type: PKCS12")
		}
		return keystore.KeyStore{}, errors.New("this is not a JKS file")
	}
	ks := keystore.New(keystore.WithOrderedAliases())
	if err := ks.Load(bytes.NewReader(data), []byte(password)); err != nil {
		if strings.Contains(err.Error(), "invalid digest") {
			return keystore.KeyStore{}, errors.New("wrong password (or a damaged file)")
		}
		return keystore.KeyStore{}, fmt.Errorf("not a readable JKS file: %w", err)
	}
	return ks, nil
}

// jksIdentity takes the first private key entry, by alias, as Java's key
// manager does when nothing names one.
func jksIdentity(data []byte, password, keyPassword string) (tls.Certificate, error) {
	ks, err := loadJKS(data, password)
	if err != nil {
		return tls.Certificate{}, err
	}
	aliases := ks.Aliases()
	i := slices.IndexFunc(aliases, ks.IsPrivateKeyEntry)
	if i < 0 {
		return tls.Certificate{}, errors.New("it holds no private key entry; is it a truststore?")
	}
	e, err := ks.GetPrivateKeyEntry(aliases[i], []byte(keyPassword))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot decrypt the private key %q: wrong keyPassword? (%w)", aliases[i], err)
	}
	key, err := x509.ParsePKCS8PrivateKey(e.PrivateKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("private key %q: %w", aliases[i], err)
	}
	if len(e.CertificateChain) == 0 {
		return tls.Certificate{}, fmt.Errorf("private key %q has no certificate", aliases[i])
	}
	cert := tls.Certificate{PrivateKey: key}
	for _, c := range e.CertificateChain {
		cert.Certificate = append(cert.Certificate, c.Content)
	}
	if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate of %q: %w", aliases[i], err)
	}
	return cert, nil
}

func jksTrust(data []byte, password string) ([]*x509.Certificate, error) {
	ks, err := loadJKS(data, password)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, a := range ks.Aliases() {
		if !ks.IsTrustedCertificateEntry(a) {
			continue
		}
		e, err := ks.GetTrustedCertificateEntry(a)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", a, err)
		}
		c, err := x509.ParseCertificate(e.Certificate.Content)
		if err != nil {
			return nil, fmt.Errorf("certificate %q: %w", a, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// checkPair checks that the private key belongs to the leaf certificate;
// tls.X509KeyPair does so for PEM, but the other stores can pair anything.
func checkPair(cert tls.Certificate) error {
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return err
		}
	}
	key, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return fmt.Errorf("unsupported private key type %T", cert.PrivateKey)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return fmt.Errorf("the private key does not match the certificate of %q", leaf.Subject.CommonName)
	}
	return nil
}
