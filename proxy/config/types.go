// Package config reads and validates gateway.yaml, which follows Confluent
// Private Cloud Gateway's schema so that users can bring the file they already
// have. It also computes the port plan: which listener serves which broker.
package config

import (
	"crypto/tls"

	"github.com/turnout/turnout/proxy/tlsconf"
)

// Gateway is the whole gateway configuration. The file may hold it under a
// top-level "gateway:" key or bare.
type Gateway struct {
	Name             string            `yaml:"name"`
	StreamingDomains []StreamingDomain `yaml:"streamingDomains"`
	Routes           []Route           `yaml:"routes"`
	Admin            Admin             `yaml:"admin"`
	// SecretStores hold the credentials routes with auth swap use on
	// their clusters.
	SecretStores []SecretStore `yaml:"secretStores"`
	// Limits is a Turnout extension.
	Limits Limits `yaml:"limits"`

	// File is the path the configuration was read from, for messages.
	File string `yaml:"-"`

	warnings []string
}

// StreamingDomain is one Kafka cluster the gateway can route to.
type StreamingDomain struct {
	Name         string       `yaml:"name"`
	Type         string       `yaml:"type"` // only "kafka"
	KafkaCluster KafkaCluster `yaml:"kafkaCluster"`

	Line int `yaml:"-"`
}

// KafkaCluster describes how to reach a cluster and which node ids it uses.
type KafkaCluster struct {
	Name             string            `yaml:"name"`
	BootstrapServers []BootstrapServer `yaml:"bootstrapServers"`
	// NodeIDRanges lists the broker node ids the cluster may use. Each id is
	// given its own gateway port on every route, so the ranges fix the port
	// plan. When empty, the default range 0..15 applies.
	NodeIDRanges []NodeIDRange `yaml:"nodeIdRanges"`
}

// BootstrapServer is one named way to reach a cluster (a listener).
type BootstrapServer struct {
	ID       string `yaml:"id"`
	Endpoint string `yaml:"endpoint"` // host:port[,host:port...]
	// SSL, when set, makes the gateway and the agents reach the cluster
	// over TLS.
	SSL *SSL `yaml:"ssl"`
	// SASL is a Turnout extension: the gateway's and the agents' own
	// identity on the cluster, for their own clients (the route's metadata
	// requests, the agents' probes and lag checks). Client connections
	// carry their clients' credentials, not this.
	SASL *SASL `yaml:"sasl"`

	Line int `yaml:"-"`
}

// SASL is a SASL identity on a cluster (a Turnout extension).
type SASL struct {
	Mechanism string   `yaml:"mechanism"` // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	Username  string   `yaml:"username"`
	Password  Password `yaml:"password"`
}

// SSL is the TLS of a route's listener (Route.Security.SSL) or of the
// connections to a cluster (BootstrapServer.SSL), in Confluent's shape.
type SSL struct {
	// IgnoreTrust skips checking the cluster's certificate; bootstrap
	// servers only, and never for production.
	IgnoreTrust bool   `yaml:"ignoreTrust"`
	Truststore  *Store `yaml:"truststore"`
	Keystore    *Store `yaml:"keystore"`
	// ClientAuth is required, requested or none (the default); routes
	// only.
	ClientAuth string `yaml:"clientAuth"`

	// Filled in by Load: the stores with their paths and passwords read,
	// and the TLS configuration they make.
	keystore, truststore *tlsconf.Store
	config               *tls.Config
}

// Store is a key or trust store file.
type Store struct {
	Type     string    `yaml:"type"` // JKS (the default), PKCS12 or PEM
	Location string    `yaml:"location"`
	Password *Password `yaml:"password"`
	// KeyPassword protects the private key of a JKS keystore, when it
	// differs from the store's password.
	KeyPassword *Password `yaml:"keyPassword"`
}

// Password is a secret read from a file or given inline.
type Password struct {
	File  string `yaml:"file"`
	Value string `yaml:"value"`

	secret string // read by Load
}

// Hosts splits the endpoint into its host:port entries.
func (b BootstrapServer) Hosts() []string { return splitHosts(b.Endpoint) }

// NodeIDRange is an inclusive range of broker node ids.
type NodeIDRange struct {
	Name  string `yaml:"name"`
	Start int32  `yaml:"start"`
	End   int32  `yaml:"end"`

	Line int `yaml:"-"`
}

// Route is one client-facing endpoint, served from one streaming domain.
type Route struct {
	Name     string `yaml:"name"`
	Endpoint string `yaml:"endpoint"` // advertised host:port; the port is the bootstrap port
	// Bind is a Turnout extension: the host to listen on; empty means all
	// interfaces.
	Bind                         string               `yaml:"bind"`
	BrokerIdentificationStrategy BrokerIdentification `yaml:"brokerIdentificationStrategy"`
	StreamingDomain              RouteDomain          `yaml:"streamingDomain"`
	Security                     Security             `yaml:"security"`
	// Epoch is a Turnout extension written by the agents: it grows by one at
	// every switch of the route, so a stale writer can be refused and so the
	// leader epochs clients see never go backwards across a switch.
	Epoch int32 `yaml:"epoch"`

	Line int `yaml:"-"`
}

// BrokerIdentification says how a client connection names the broker it
// wants. With port (the default), each broker has its own gateway port. With
// host, one port serves every broker, and the TLS server name (SNI) the
// client asks for says which: the endpoint's host for the bootstrap, the
// pattern with a node id in place of $(nodeId) for a broker. The file may
// give the type alone, as a string.
type BrokerIdentification struct {
	Type    string `yaml:"type"`    // port or host
	Pattern string `yaml:"pattern"` // host only: e.g. broker-$(nodeId).kafka.example.com[:port]
}

// RouteDomain names the streaming domain a route serves and which of its
// bootstrap servers to use.
type RouteDomain struct {
	Name              string `yaml:"name"`
	BootstrapServerID string `yaml:"bootstrapServerId"`

	Line int `yaml:"-"`
}

// Security is the route's client security.
type Security struct {
	// Auth is "passthrough" (the default: SASL goes to the cluster
	// untouched) or "swap" (the gateway authenticates clients itself and
	// logs in to the cluster with each user's credentials for it).
	Auth string `yaml:"auth"`
	// SSL, when set, makes the route's listeners serve TLS.
	SSL        *SSL        `yaml:"ssl"`
	SwapConfig *SwapConfig `yaml:"swapConfig"`
}

// SwapConfig says how a route with auth swap authenticates its clients and
// its cluster.
type SwapConfig struct {
	ClientAuth struct {
		SASL *ClientSASL `yaml:"sasl"`
	} `yaml:"clientAuth"`
	// SecretStore names the store, in gateway.secretStores, that holds
	// each user's credentials on each cluster.
	SecretStore string `yaml:"secretStore"`
	ClusterAuth struct {
		// SASL is how the gateway logs in to the cluster; without it the
		// cluster's listener must not require authentication.
		SASL *ClusterSASL `yaml:"sasl"`
	} `yaml:"clusterAuth"`

	Line int `yaml:"-"`
}

// ClientSASL is how clients authenticate to the gateway.
type ClientSASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, SCRAM (both SCRAM
	// mechanisms) or empty (all three).
	Mechanism string `yaml:"mechanism"`
	// CallbackHandlerClass is read for compatibility with Confluent's
	// schema and ignored: the gateway's users come from JaasConfig.
	CallbackHandlerClass string `yaml:"callbackHandlerClass"`
	// JaasConfig.File is the users file: Kafka JAAS options
	// user_NAME="PASSWORD", as Kafka's PlainLoginModule reads them.
	JaasConfig JaasConfig `yaml:"jaasConfig"`
	// ConnectionsMaxReauthMs, when positive, is the session lifetime the
	// gateway gives clients: they must re-authenticate (KIP-368) within
	// it, or their connection is closed at their next request.
	ConnectionsMaxReauthMs int64 `yaml:"connectionsMaxReauthMs"`
}

// ClusterSASL is how the gateway logs in to the cluster for a client.
type ClusterSASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
	// CallbackHandlerClass is read for compatibility and ignored.
	CallbackHandlerClass string `yaml:"callbackHandlerClass"`
	// JaasConfig.File, when set, is a template whose username="%s" and
	// password="%s" take the credentials from the secret store.
	JaasConfig JaasConfig `yaml:"jaasConfig"`
}

// JaasConfig names a JAAS file.
type JaasConfig struct {
	File string `yaml:"file"`
}

// SecretStore is one place credentials are kept.
type SecretStore struct {
	Name     string `yaml:"name"`
	Provider struct {
		// Type is FILE (a directory, one file per secret) or ENV
		// (environment variables, a Turnout extension).
		Type   string `yaml:"type"`
		Config struct {
			// Path is a FILE store's directory.
			Path string `yaml:"path"`
			// PrefixPath is put before every secret's name.
			PrefixPath string `yaml:"prefixPath"`
			// Separator splits a secret into username and password;
			// default ":".
			Separator string `yaml:"separator"`
		} `yaml:"config"`
	} `yaml:"provider"`

	Line int `yaml:"-"`
}

// SecretStore is the store with that name, or nil.
func (g *Gateway) SecretStore(name string) *SecretStore {
	for i := range g.SecretStores {
		if g.SecretStores[i].Name == name {
			return &g.SecretStores[i]
		}
	}
	return nil
}

// Admin is the admin HTTP listener.
type Admin struct {
	BindAddress string `yaml:"bindAddress"` // default 127.0.0.1
	Port        int    `yaml:"port"`        // default 9190
	Endpoints   struct {
		Metrics *bool `yaml:"metrics"` // default true
	} `yaml:"endpoints"`
	// TokenFile is a Turnout extension: a file holding the bearer token
	// that POST /restart needs. Required when bindAddress is not a
	// loopback address, so that reaching the port is not enough to switch
	// routes. The admin section is read once, at start.
	TokenFile string `yaml:"tokenFile"`
	// TLS is a Turnout extension: serve the admin API over HTTPS with a
	// PEM certificate (chain) and its key.
	TLS struct {
		CertFile string `yaml:"certFile"`
		KeyFile  string `yaml:"keyFile"`
	} `yaml:"tls"`
	// RequireLease is a Turnout extension: every route holds its Produce
	// requests from start until the agents grant it a lease (POST /lease).
	// Without it a gateway enforces leases once granted one, so a gateway
	// started from a file the agents have since switched away from
	// forwards to the old cluster until the first renewal fences it.
	RequireLease bool `yaml:"requireLease"`
}

// Limits bounds what one client connection can make the gateway hold.
type Limits struct {
	// MaxFrameBytes is the largest request or response frame accepted;
	// default 100 MiB.
	MaxFrameBytes int32 `yaml:"maxFrameBytes"`
	// DrainTimeout bounds how long a restart waits for in-flight responses,
	// as a Go duration; default 5s.
	DrainTimeout string `yaml:"drainTimeout"`
	// UpstreamWait bounds how long a new client connection is held, as a
	// Go duration, while the route's cluster cannot be reached; default
	// 10s. Held rather than refused, a client whose cluster died sees a
	// slow connection instead of an error, and carries on as soon as the
	// agents switch the route, without its metadata back-off.
	UpstreamWait string `yaml:"upstreamWait"`
}
