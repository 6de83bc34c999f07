package config

import (
	"os"

	"gopkg.in/yaml.v3"

	"github.com/turnout/turnout/internal/yamlstrict"
)

// Error is one problem in a configuration file. Parse joins several of them
// with errors.Join; errors.As finds each.
type Error = yamlstrict.Error

// Load reads and parses the configuration file at path.
func Load(path string) (*Gateway, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes data strictly, fills in defaults and validates the result.
// file names the source in error messages.
func Parse(file string, data []byte) (*Gateway, error) {
	p := &parser{yamlstrict.NewDecoder(file, data)}
	g := p.parse()
	if err := p.Err(); err != nil {
		return nil, err
	}
	return g, nil
}

type parser struct{ *yamlstrict.Decoder }

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
	p.Decode(root, g, "")
	if p.Failed() {
		// Validating a file that did not decode would mostly repeat the
		// decoding errors (a misspelt key is also a missing one).
		return nil
	}
	p.validate(g)
	return g
}
