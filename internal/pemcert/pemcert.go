// Package pemcert reads PEM certificates: the one parser behind every CA
// file Turnout takes, the control plane's (--ca, --raft-ca, caFile) and the
// PEM truststores of gateway.yaml, so that both accept and refuse alike.
package pemcert

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// Parse returns the certificates of the CERTIFICATE blocks in data, in
// order, skipping other blocks (a key in the same file). A block that does
// not parse is an error rather than skipped: a CA silently left out would
// show only as a refused peer, far from its cause.
func Parse(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("bad certificate: %w", err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// Pool makes a pool of certs.
func Pool(certs []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}
