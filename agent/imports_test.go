package agent

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentDoesNotImportTheGateway: the control path (agent) reaches the
// gateway only through its admin API's types (proxy/adminapi) and Turnout's
// client options (proxy/clientopts), never through the gateway's runtime,
// directly or through another package.
func TestAgentDoesNotImportTheGateway(t *testing.T) {
	const module = "github.com/turnout/turnout/"
	seen := map[string]bool{}
	var walk func(dir string, path []string)
	walk = func(dir string, path []string) {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, imp := range pkg.Imports {
			rel, ok := strings.CutPrefix(imp, module)
			if !ok || seen[imp] {
				continue
			}
			seen[imp] = true
			chain := append(path, imp)
			if rel == "proxy" {
				t.Errorf("agent imports the gateway runtime: %s", strings.Join(chain, " -> "))
				continue
			}
			walk(filepath.Join("..", filepath.FromSlash(rel)), chain)
		}
	}
	walk(".", []string{module + "agent"})
}
