// Package clientopts builds the kgo options of Turnout's own Kafka clients
// (the gateway's metadata client, the agents' probes, lag readers and
// checks through a route) from the gateway configuration, so that the
// agents need not import the gateway to reach a cluster as it does.
package clientopts

import (
	"context"
	"crypto/tls"
	"net"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/proxy/auth"
	"github.com/turnout/turnout/proxy/config"
	"github.com/turnout/turnout/proxy/tlsconf"
)

// DialFunc opens a network connection, as kgo.Dialer takes it.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Cluster are the kgo options of Turnout's own clients of a cluster (the
// route's metadata client, the agents' probes and lag readers): its bootstrap
// hosts, TLS when the bootstrap server has ssl, and Turnout's SASL identity
// when it has sasl. dial, when not nil, opens the TCP connections (tests make
// an agent blind with it); TLS then runs over them.
func Cluster(bs *config.BootstrapServer, dial DialFunc) []kgo.Opt {
	return opts(bs.Hosts(), bs.SSL.TLS(), bs.SASL, dial)
}

// Route are the kgo options of a client of the gateway's route r, for
// the agents' check that a restarted gateway serves it: TLS when the route
// has ssl, trusting the route's truststore (the system's roots without one)
// and presenting the route's own keystore should the route ask for a client
// certificate; SASL with Turnout's identity on the route's cluster, which
// the route passes through.
func Route(g *config.Gateway, r *config.Route) ([]kgo.Opt, error) {
	var tc *tls.Config
	if s := r.Security.SSL; s != nil {
		ks, ts := s.Stores()
		if s.ClientAuth == tlsconf.ClientAuthNone {
			ks = nil
		}
		var err error
		if tc, err = tlsconf.Client(ks, ts, false); err != nil {
			return nil, err
		}
	}
	var id *config.SASL
	if d := g.Domain(r.StreamingDomain.Name); d != nil {
		if bs := d.BootstrapServer(r.StreamingDomain.BootstrapServerID); bs != nil {
			id = bs.SASL
		}
	}
	return opts([]string{r.Endpoint}, tc, id, nil), nil
}

func opts(hosts []string, tc *tls.Config, id *config.SASL, dial DialFunc) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(hosts...)}
	switch {
	case dial != nil && tc != nil:
		// kgo takes a dialer or a TLS config, not both.
		opts = append(opts, kgo.Dialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialTLS(ctx, dial, network, addr, tc)
		}))
	case dial != nil:
		opts = append(opts, kgo.Dialer(dial))
	case tc != nil:
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if id != nil {
		opts = append(opts, kgo.SASL(auth.Credential{User: id.Username, Password: id.Password.Secret()}.Mechanism(id.Mechanism)))
	}
	return opts
}

// dialTLS opens a TLS connection over one dial opens, checking the server's
// certificate against the host dialled unless the config names a server.
func dialTLS(ctx context.Context, dial DialFunc, network, addr string, tc *tls.Config) (net.Conn, error) {
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc.ServerName == "" {
		tc = tc.Clone()
		tc.ServerName, _, _ = net.SplitHostPort(addr)
	}
	c := tls.Client(raw, tc)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}
