package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/yamlstrict"
)

// FuzzParse checks that Parse never panics, that every problem it reports
// has a file and a line, and that what it accepts holds the promises the
// agents rely on. The seed corpus is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("f.yaml", data)
		if err != nil {
			for _, e := range leafErrors(err) {
				if ye, ok := errors.AsType[*yamlstrict.Error](e); !ok || ye.File != "f.yaml" || ye.Line < 1 {
					t.Fatalf("error %q has no file and line", e)
				}
			}
			return
		}
		if len(p.Routes) == 0 || len(p.Gateways) == 0 || p.StaleAfter() <= 0 || p.Health.FailuresToBreach < 1 ||
			len(p.Replication.Patterns) != len(p.Replication.Topics) || (p.Replication.Mode != ModeNone) != (len(p.Replication.Topics) > 0) {
			t.Fatalf("accepted an unusable policy: %+v", p)
		}
		for _, g := range p.Gateways {
			if (g.Admin == "") == (len(g.RestartCommand) == 0) || g.Timeout <= 0 {
				t.Fatalf("accepted gateway %+v", g)
			}
		}
		for _, r := range p.Routes {
			if r.Name == "" || r.Primary == "" || r.Primary == r.Standby || p.Route(r.Name) == nil {
				t.Fatalf("accepted route %+v", r)
			}
			// With nothing seen, nothing moves.
			in := Input{Now: time.Unix(0, 0), Agents: 3, Route: RouteState{Name: r.Name, Active: r.Primary}}
			if d := Decide(in, p); d.Code != CodeOK || d.Flip {
				t.Fatalf("Decide without views: %+v", d)
			}
		}
	})
}
