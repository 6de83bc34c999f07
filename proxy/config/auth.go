package config

import (
	"fmt"
	"strings"
)

// The SASL mechanisms the gateway serves to clients of a route with auth
// swap, by the name configured (SCRAM is both).
var clientMechanisms = map[string][]string{"": {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, "PLAIN": {"PLAIN"}, "SCRAM": {"SCRAM-SHA-256", "SCRAM-SHA-512"}, "SCRAM-SHA-256": {"SCRAM-SHA-256"}, "SCRAM-SHA-512": {"SCRAM-SHA-512"}}

// saslMechanism is the mechanism a name in any case stands for, as the
// gateway uses it to log in to a cluster: PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512; false for any other name.
func saslMechanism(name string) (string, bool) {
	switch m := strings.ToUpper(name); m {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		return m, true
	}
	return "", false
}

// ClientMechanisms are the mechanisms clients may use on a route with auth
// swap.
func (s *SwapConfig) ClientMechanisms() []string {
	return clientMechanisms[strings.ToUpper(s.ClientAuth.SASL.Mechanism)]
}

// validateAuth checks a route's auth settings. Files (the users file, the
// cluster template, a FILE store's directory) are read by the gateway when
// it serves the route, not here: agents read this file too, on hosts that
// need not hold the gateway's secrets.
func (p *parser) validateAuth(g *Gateway, s *Security, path string) {
	switch s.Auth {
	case "":
		s.Auth = "passthrough"
	case "passthrough":
	case "swap":
	default:
		p.Errorf(path+".auth", "unknown auth %q; use passthrough or swap", s.Auth)
	}
	if s.Auth != "swap" {
		if s.SwapConfig != nil {
			p.Errorf(path+".swapConfig", "only used with auth: swap; remove it or set auth: swap")
		}
		return
	}
	path += ".swapConfig"
	sc := s.SwapConfig
	if sc == nil {
		p.Errorf(strings.TrimSuffix(path, ".swapConfig")+".auth", "auth swap needs a swapConfig with clientAuth, secretStore and clusterAuth")
		return
	}
	switch cs := sc.ClientAuth.SASL; {
	case cs == nil:
		p.Errorf(path+".clientAuth.sasl", "missing; clients authenticate to the gateway with SASL (PLAIN or SCRAM)")
	default:
		if _, ok := clientMechanisms[strings.ToUpper(cs.Mechanism)]; !ok {
			p.Errorf(path+".clientAuth.sasl.mechanism", "mechanism %q is not supported; use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or SCRAM (both)", cs.Mechanism)
		}
		if cs.JaasConfig.File == "" {
			p.Errorf(path+".clientAuth.sasl.jaasConfig.file", "missing; name the users file (JAAS options user_NAME=\"PASSWORD\")")
		}
		if cs.ConnectionsMaxReauthMs < 0 {
			p.Errorf(path+".clientAuth.sasl.connectionsMaxReauthMs", "cannot be negative, got %d", cs.ConnectionsMaxReauthMs)
		}
	}
	switch {
	case sc.SecretStore == "":
		p.Errorf(path+".secretStore", "missing; name the secret store holding each user's cluster credentials (known: %s)", storeNames(g))
	case g.SecretStore(sc.SecretStore) == nil:
		p.Errorf(path+".secretStore", "no secret store named %q (known: %s)", sc.SecretStore, storeNames(g))
	}
	if cs := sc.ClusterAuth.SASL; cs != nil {
		if m, ok := saslMechanism(cs.Mechanism); ok {
			cs.Mechanism = m
		} else {
			p.Errorf(path+".clusterAuth.sasl.mechanism", "mechanism %q is not supported; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", cs.Mechanism)
		}
	}
}

func (p *parser) validateSecretStores(g *Gateway) {
	seen := map[string]int{}
	for i := range g.SecretStores {
		s := &g.SecretStores[i]
		path := fmt.Sprintf("secretStores[%d]", i)
		p.Unique(seen, path+".name", "secret store", s.Name, s.Line, "routes name their secret store")
		switch t := strings.ToUpper(s.Provider.Type); t {
		case "FILE":
			if s.Provider.Config.Path == "" {
				p.Errorf(path+".provider.config.path", "missing; a FILE store is a directory holding one file per secret")
			}
		case "ENV":
		case "VAULT", "AWS", "AZURE", "CYBERARK":
			p.Errorf(path+".provider.type", "secret store type %s is not supported by Turnout yet; use FILE (a directory) or ENV (environment variables)", s.Provider.Type)
		default:
			p.Errorf(path+".provider.type", "unknown secret store type %q; use FILE or ENV", s.Provider.Type)
		}
	}
}

func storeNames(g *Gateway) string {
	if len(g.SecretStores) == 0 {
		return "none; add one under gateway.secretStores"
	}
	names := make([]string, len(g.SecretStores))
	for i, s := range g.SecretStores {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}
