// Package config reads and validates gateway.yaml, which follows Confluent
// Private Cloud Gateway's schema so that users can bring the file they already
// have. It also computes the port plan: which listener serves which broker.
package config

// Gateway is the whole gateway configuration. The file may hold it under a
// top-level "gateway:" key or bare.
type Gateway struct {
	Name             string            `yaml:"name"`
	StreamingDomains []StreamingDomain `yaml:"streamingDomains"`
	Routes           []Route           `yaml:"routes"`
	Admin            Admin             `yaml:"admin"`
	// SecretStores is part of the Confluent schema; Turnout does not read
	// secret stores yet, so only an empty list is accepted.
	SecretStores []map[string]any `yaml:"secretStores"`
	// Limits is a Turnout extension.
	Limits Limits `yaml:"limits"`

	// File is the path the configuration was read from, for messages.
	File string `yaml:"-"`
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

	Line int `yaml:"-"`
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
	Bind                         string      `yaml:"bind"`
	BrokerIdentificationStrategy string      `yaml:"brokerIdentificationStrategy"` // "port" (default)
	StreamingDomain              RouteDomain `yaml:"streamingDomain"`
	Security                     Security    `yaml:"security"`
	// Epoch is a Turnout extension written by the agents: it grows by one at
	// every switch of the route, so a stale writer can be refused and so the
	// leader epochs clients see never go backwards across a switch.
	Epoch int32 `yaml:"epoch"`

	Line int `yaml:"-"`
}

// RouteDomain names the streaming domain a route serves and which of its
// bootstrap servers to use.
type RouteDomain struct {
	Name              string `yaml:"name"`
	BootstrapServerID string `yaml:"bootstrapServerId"`

	Line int `yaml:"-"`
}

// Security is the route's client security. Only passthrough exists so far.
type Security struct {
	Auth string `yaml:"auth"` // "passthrough" (default) or "swap" (not yet supported)
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
