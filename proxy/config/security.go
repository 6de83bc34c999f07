package config

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/turnout/turnout/proxy/tlsconf"
)

// nodeIDPlaceholder stands for a broker's node id in a host strategy
// pattern.
const nodeIDPlaceholder = "$(nodeId)"

// maxPasswordBytes bounds what is read from a password file.
const maxPasswordBytes = 64 << 10

// loadSecurity reads every store and password file the configuration names
// (without routeKeys, all but the routes' keystores and their passwords) and
// builds the TLS configurations, reporting each failure on the line of the
// setting that names the file.
func (p *parser) loadSecurity(g *Gateway) {
	for i := range g.StreamingDomains {
		for j := range g.StreamingDomains[i].KafkaCluster.BootstrapServers {
			b := &g.StreamingDomains[i].KafkaCluster.BootstrapServers[j]
			path := fmt.Sprintf("streamingDomains[%d].kafkaCluster.bootstrapServers[%d]", i, j)
			if b.SASL != nil {
				p.readPassword(&b.SASL.Password, path+".sasl.password")
			}
			if s := b.SSL; s != nil && p.loadStores(s, path+".ssl", true) {
				c, err := tlsconf.Client(s.keystore, s.truststore, s.IgnoreTrust)
				p.setConfig(s, c, err, path+".ssl")
			}
		}
	}
	for i := range g.Routes {
		path := fmt.Sprintf("routes[%d].security.ssl", i)
		if s := g.Routes[i].Security.SSL; s != nil && p.loadStores(s, path, p.routeKeys) && p.routeKeys {
			c, err := tlsconf.Server(*s.keystore, s.truststore, s.ClientAuth)
			p.setConfig(s, c, err, path)
		}
	}
}

func (p *parser) setConfig(s *SSL, c *tls.Config, err error, path string) {
	if err != nil {
		p.Errorf(path, "%v", err)
		return
	}
	s.config = c
}

// loadStores resolves the stores' paths and passwords (the keystore's only
// with keystore), and loads each one alone so that a failure points at the
// store's own line.
func (p *parser) loadStores(s *SSL, path string, keystore bool) bool {
	ok := true
	if s.Keystore != nil && keystore {
		s.keystore = p.resolveStore(s.Keystore, path+".keystore")
		if s.keystore == nil {
			ok = false
		} else if _, err := tlsconf.Identity(*s.keystore); err != nil {
			p.Errorf(path+".keystore.location", "%v", err)
			ok = false
		}
	}
	if s.Truststore != nil && !s.IgnoreTrust {
		s.truststore = p.resolveStore(s.Truststore, path+".truststore")
		if s.truststore == nil {
			ok = false
		} else if _, err := tlsconf.Trust(*s.truststore); err != nil {
			p.Errorf(path+".truststore.location", "%v", err)
			ok = false
		}
	}
	return ok
}

func (p *parser) resolveStore(s *Store, path string) *tlsconf.Store {
	ts := &tlsconf.Store{Type: s.Type, Location: p.abs(s.Location)}
	ok := true
	if s.Password != nil {
		ok = p.readPassword(s.Password, path+".password")
		ts.Password = s.Password.secret
	}
	if s.KeyPassword != nil {
		ok = p.readPassword(s.KeyPassword, path+".keyPassword") && ok
		ts.KeyPassword = s.KeyPassword.secret
		if s.Type == tlsconf.PKCS12 && ts.KeyPassword != ts.Password && ok {
			p.Errorf(path+".keyPassword", "a PKCS12 key shares its store's password; remove keyPassword or make it the same")
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return ts
}

func (p *parser) readPassword(pw *Password, path string) bool {
	if pw.File == "" {
		pw.secret = pw.Value
		return true
	}
	file := p.abs(pw.File)
	f, err := os.Open(file)
	if err != nil {
		p.Errorf(path+".file", "cannot read the password: %v", err)
		return false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPasswordBytes+1))
	switch {
	case err != nil:
		p.Errorf(path+".file", "cannot read the password: %v", err)
		return false
	case len(data) > maxPasswordBytes:
		p.Errorf(path+".file", "%s is larger than any password; is it the right file?", file)
		return false
	}
	// Editors and echo end a file with a newline that is no part of the
	// password.
	pw.secret = strings.TrimRight(string(data), "\r\n")
	return true
}

// resolvePaths makes the paths of the files read elsewhere than here (the
// swap users files, cluster login templates and FILE secret stores, the
// admin token and TLS files) relative to the configuration file's
// directory, as the stores' and password files' are, rather than to the
// working directory of whoever reads them.
func (p *parser) resolvePaths(g *Gateway) {
	for i := range g.SecretStores {
		if c := &g.SecretStores[i].Provider; strings.EqualFold(c.Type, "FILE") {
			c.Config.Path = p.abs(c.Config.Path)
		}
	}
	for i := range g.Routes {
		sc := g.Routes[i].Security.SwapConfig
		if sc == nil {
			continue
		}
		if cs := sc.ClientAuth.SASL; cs != nil {
			cs.JaasConfig.File = p.abs(cs.JaasConfig.File)
		}
		if cl := sc.ClusterAuth.SASL; cl != nil {
			cl.JaasConfig.File = p.abs(cl.JaasConfig.File)
		}
	}
	a := &g.Admin
	a.TokenFile = p.abs(a.TokenFile)
	a.TLS.CertFile = p.abs(a.TLS.CertFile)
	a.TLS.KeyFile = p.abs(a.TLS.KeyFile)
}

// abs makes a path in the file relative to the file's directory.
func (p *parser) abs(path string) string {
	if path == "" || filepath.IsAbs(path) || p.dir == "" {
		return path
	}
	return filepath.Join(p.dir, path)
}

// TLS is the configuration the settings make: a server's for a route, a
// client's for a bootstrap server. It is nil for a configuration from Parse
// rather than Load.
func (s *SSL) TLS() *tls.Config {
	if s == nil || s.config == nil {
		return nil
	}
	return s.config.Clone()
}

// Stores are the keystore and truststore with their paths resolved and
// passwords read, for building other TLS configurations from them (nil
// when absent, or before Load).
func (s *SSL) Stores() (keystore, truststore *tlsconf.Store) {
	return s.keystore, s.truststore
}

// Secret is the password, as Load read it.
func (p Password) Secret() string { return p.secret }

// String keeps the password out of anything that prints a configuration.
func (p Password) String() string {
	if p.File != "" {
		return "password from " + p.File
	}
	return "inline password"
}

// Warnings are settings that work but weaken security, each with its file
// and line, for the gateway to log at every start and restart.
func (g *Gateway) Warnings() []string { return g.warnings }

// HostStrategy reports whether the route tells brokers apart by the TLS
// server name rather than by port.
func (r *Route) HostStrategy() bool { return r.BrokerIdentificationStrategy.Type == "host" }

// BrokerAddress is the host and port clients are told for a broker.
func (r *Route) BrokerAddress(node int32) (string, int) {
	_, port, _ := splitHostPort(r.Endpoint)
	host := strings.Replace(r.BrokerIdentificationStrategy.Pattern, nodeIDPlaceholder, strconv.Itoa(int(node)), 1)
	if h, p, err := splitHostPort(host); err == nil {
		return h, p
	}
	return host, port
}

// ServerName says which listener a TLS server name stands for on a route
// with the host strategy: the bootstrap (its endpoint's host, or no name at
// all, as clients that dial an address send), or a broker.
func (r *Route) ServerName(name string) (node int32, bootstrap, ok bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" || name == strings.ToLower(r.AdvertisedHost()) {
		return -1, true, true
	}
	pattern := strings.ToLower(r.BrokerIdentificationStrategy.Pattern)
	if h, _, err := net.SplitHostPort(pattern); err == nil {
		pattern = h
	}
	prefix, suffix, found := strings.Cut(pattern, strings.ToLower(nodeIDPlaceholder))
	if !found || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) || len(name) <= len(prefix)+len(suffix) {
		return 0, false, false
	}
	digits := name[len(prefix) : len(name)-len(suffix)]
	id, err := strconv.ParseInt(digits, 10, 32)
	if err != nil || id < 0 || strconv.FormatInt(id, 10) != digits {
		return 0, false, false
	}
	return int32(id), false, true
}
