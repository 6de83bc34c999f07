package proxy

import (
	"crypto/tls"

	"github.com/turnout/turnout/proxy/config"
)

// sameUpstream says whether two bootstrap servers' TLS and SASL settings
// reach the cluster alike, down to the certificates and passwords, so that a
// route can keep its connections across a restart only if nothing of that
// changed.
func sameUpstream(a, b *config.BootstrapServer) bool {
	if !sameClientTLS(a.SSL.TLS(), b.SSL.TLS()) {
		return false
	}
	switch {
	case a.SASL == nil || b.SASL == nil:
		return a.SASL == b.SASL
	default:
		return a.SASL.Mechanism == b.SASL.Mechanism && a.SASL.Username == b.SASL.Username &&
			a.SASL.Password.Secret() == b.SASL.Password.Secret()
	}
}

func sameClientTLS(a, b *tls.Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.InsecureSkipVerify != b.InsecureSkipVerify || len(a.Certificates) != len(b.Certificates) {
		return false
	}
	if (a.RootCAs == nil) != (b.RootCAs == nil) || a.RootCAs != nil && !a.RootCAs.Equal(b.RootCAs) {
		return false
	}
	for i := range a.Certificates {
		ca, cb := a.Certificates[i].Certificate, b.Certificates[i].Certificate
		if len(ca) != len(cb) {
			return false
		}
		for j := range ca {
			if string(ca[j]) != string(cb[j]) {
				return false
			}
		}
	}
	return true
}
