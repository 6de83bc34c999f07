package config

import (
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/turnout/turnout/internal/yamlstrict"
)

// Error is one problem in a configuration file. Parse joins several of them
// with errors.Join; errors.As finds each.
type Error = yamlstrict.Error

// Load reads and parses the configuration file at path, then reads the key
// and trust stores and the password files it names (relative paths are
// relative to its directory) and builds their TLS configurations, so that a
// bad certificate or a wrong password is an error here, with its line.
func Load(path string) (*Gateway, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := &parser{Decoder: yamlstrict.NewDecoder(path, data), dir: filepath.Dir(path), load: true, routeKeys: true}
	return p.result()
}

// LoadClusters is Load for the agents, whose hosts need not hold the
// gateway's private keys: it reads the bootstrap servers' stores and
// passwords, which the agents' own clients of the clusters use, and of each
// route only its truststore (RouteOpts), never its keystore. A route's
// SSL.TLS is nil in the result, and its Stores return no keystore.
func LoadClusters(path string) (*Gateway, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := &parser{Decoder: yamlstrict.NewDecoder(path, data), dir: filepath.Dir(path), load: true}
	return p.result()
}

// Parse decodes data strictly, fills in defaults and validates the result.
// file names the source in error messages. It reads no other file: the
// stores and passwords are Load's.
func Parse(file string, data []byte) (*Gateway, error) {
	p := &parser{Decoder: yamlstrict.NewDecoder(file, data)}
	return p.result()
}

func (p *parser) result() (*Gateway, error) {
	g := p.parse()
	if err := p.Err(); err != nil {
		return nil, err
	}
	return g, nil
}

type parser struct {
	*yamlstrict.Decoder
	dir  string // relative paths in the file are relative to this
	load bool   // read the stores and password files
	// routeKeys makes load read the routes' keystores too and build their
	// listeners' TLS: the gateway's, not the agents'.
	routeKeys bool
}

func (p *parser) parse() *Gateway {
	root := p.Document("want streamingDomains and routes, optionally under a gateway key")
	if root == nil {
		return nil
	}
	if yamlstrict.MapValue(root, "gateway") != nil {
		var gw *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			switch k := yamlstrict.Resolve(root.Content[i]); {
			case k.Value != "gateway":
				p.At(k.Line, "", "unknown key %q (allowed: gateway, which holds all the settings)", k.Value)
			case gw != nil:
				p.At(k.Line, "", "key \"gateway\" is repeated (first on line %d)", p.Line(""))
			default:
				gw = yamlstrict.Resolve(root.Content[i+1])
				p.SetLine("", k.Line)
			}
		}
		root = gw
	}
	if root.Kind != yaml.MappingNode {
		p.At(root.Line, "", "want a mapping of settings (streamingDomains, routes, ...), got %s", yamlstrict.DescribeNode(root))
		return nil
	}
	g := &Gateway{File: p.File()}
	expandShorthands(root)
	p.Decode(root, g, "")
	if p.Failed() {
		// Validating a file that did not decode would mostly repeat the
		// decoding errors (a misspelt key is also a missing one).
		return nil
	}
	p.validate(g)
	p.resolvePaths(g)
	if p.load && !p.Failed() {
		p.loadSecurity(g)
	}
	return g
}

// expandShorthands rewrites the short forms of settings into the long ones
// the types hold: brokerIdentificationStrategy: port means {type: port}.
func expandShorthands(root *yaml.Node) {
	routes := yamlstrict.MapValue(root, "routes")
	if routes == nil || routes.Kind != yaml.SequenceNode {
		return
	}
	for _, r := range routes.Content {
		r = yamlstrict.Resolve(r)
		if r.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(r.Content); i += 2 {
			v := yamlstrict.Resolve(r.Content[i+1])
			if yamlstrict.Resolve(r.Content[i]).Value != "brokerIdentificationStrategy" || v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				continue
			}
			key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "type", Line: v.Line, Column: v.Column}
			r.Content[i+1] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: v.Line, Column: v.Column, Content: []*yaml.Node{key, v}}
		}
	}
}
