package consensus

import (
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tlsStreamLayer carries Raft over TLS. With a configuration from
// ctlsec.RaftTLS both ends present a certificate and check the other's
// against the CA, so an agent whose certificate another CA signed can
// neither send votes or entries nor receive them.
type tlsStreamLayer struct {
	net.Listener // a TLS listener
	advertise    net.Addr
	config       *tls.Config
}

// newTLSStreamLayer listens on addr. Like raft's TCP transport it refuses
// an advertise address the others cannot dial.
func newTLSStreamLayer(addr string, advertise net.Addr, config *tls.Config) (*tlsStreamLayer, error) {
	if a, ok := advertise.(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		return nil, errors.New("the address the other agents reach this one at must not be a wildcard")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &tlsStreamLayer{Listener: tls.NewListener(ln, config), advertise: advertise, config: config}, nil
}

// Dial connects to a peer and completes the handshake, so that a peer
// with a certificate from another CA fails here rather than on first use.
// The peer's certificate must name the host in its address.
func (s *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(address), s.config)
}

// Addr is the address the others reach this agent at.
func (s *tlsStreamLayer) Addr() net.Addr { return s.advertise }
