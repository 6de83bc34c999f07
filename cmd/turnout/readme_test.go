package main

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// exercisedBy names, for each turnout command, the tests that run it as the
// README shows it. TestReadmeCommands checks that the tests exist.
var exercisedBy = map[string][]string{
	"demo":     {"TestDemo", "TestDemoFlags"},
	"validate": {"TestValidate", "TestShippedConfigs", "TestComposeFile"},
	"gateway":  {"TestGatewayProcess"},
	"agent":    {"TestAgentProcesses"},
	"status":   {"TestDemo", "TestAgentProcesses"},
	"failover": {"TestDemo", "TestAgentProcesses"},
	"failback": {"TestDemo", "TestAgentProcesses"},
	"version":  {"TestValidate"},
}

// readmeCommand is one command the README tells a reader to run.
type readmeCommand struct {
	file     string // README.md or docs/NAME.md
	line     string
	synopsis bool // from the usage block: [optional] flags and | choices
}

// readmeCommands returns the commands in the README's sh blocks, the turnout
// lines of its plain blocks (the usage synopsis), and the inline code spans
// that are commands.
func readmeCommands(text string) []readmeCommand {
	var out []readmeCommand
	inBlock, lang := false, ""
	prefixes := []string{"turnout ", "bin/turnout ", "make ", "curl ", "systemctl ", "docker ", "go "}
	isCommand := func(s string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(s, p) {
				return true
			}
		}
		return false
	}
	var synopsis string
	for _, line := range strings.Split(text, "\n") {
		if fence, ok := strings.CutPrefix(line, "```"); ok {
			if inBlock && synopsis != "" {
				out = append(out, readmeCommand{line: synopsis, synopsis: true})
				synopsis = ""
			}
			inBlock, lang = !inBlock, strings.TrimSpace(fence)
			continue
		}
		trimmed := strings.TrimSpace(line)
		switch {
		case inBlock && lang == "sh":
			if i := strings.Index(trimmed, " #"); i >= 0 {
				trimmed = strings.TrimSpace(trimmed[:i])
			}
			if trimmed != "" && !strings.HasPrefix(trimmed, "#") {
				out = append(out, readmeCommand{line: trimmed})
			}
		case inBlock && lang == "":
			// The usage synopsis: a command and its continuation lines.
			switch {
			case strings.HasPrefix(trimmed, "turnout "):
				if synopsis != "" {
					out = append(out, readmeCommand{line: synopsis, synopsis: true})
				}
				synopsis = trimmed
			case synopsis != "" && strings.HasPrefix(trimmed, "--"):
				synopsis += " " + trimmed
			}
		case !inBlock:
			for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(line, -1) {
				if isCommand(m[1]) {
					out = append(out, readmeCommand{line: m[1]})
				}
			}
		}
	}
	return out
}

// TestReadmeCommands checks every command the README shows: make targets
// exist (make test is what .ci/run runs; make demo is TestDemo's command),
// turnout commands use only flags the binary accepts and are run by the tests
// named in exercisedBy (validate commands on shipped files are run here),
// docker compose commands name the compose file's services, systemctl
// commands name the shipped units, curl calls name admin endpoints, and go
// commands are what a make target runs.
func TestReadmeCommands(t *testing.T) {
	var cmds []readmeCommand
	for _, name := range docFiles(t) {
		text, err := os.ReadFile(filepath.Join(repoRoot, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range readmeCommands(string(text)) {
			rc.file = name
			cmds = append(cmds, rc)
		}
	}
	if len(cmds) < 20 {
		t.Fatalf("found %d commands in the README and docs/; the parser is likely broken", len(cmds))
	}
	makefile, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(string(makefile), -1) {
		targets[m[1]] = true
	}
	ci, err := os.ReadFile(filepath.Join(repoRoot, ".ci/run"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^make test$`).Match(ci) {
		t.Error(".ci/run does not run make test, the README's test command")
	}
	var tests []string
	files, _ := filepath.Glob("*_test.go")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, m := range regexp.MustCompile(`(?m)^func (Test\w+)\(`).FindAllStringSubmatch(string(data), -1) {
			tests = append(tests, m[1])
		}
	}
	for cmd, names := range exercisedBy {
		for _, name := range names {
			if !slices.Contains(tests, name) {
				t.Errorf("exercisedBy says %s runs turnout %s, but there is no such test", name, cmd)
			}
		}
	}
	c := loadCompose(t)
	known := map[string]map[string]bool{}
	for _, rc := range cmds {
		args := strings.Fields(rc.line)
		// A variable set for docker compose must be one the compose file
		// passes on.
		for len(args) > 1 && regexp.MustCompile(`^TURNOUT_[A-Z_]+=`).MatchString(args[0]) {
			name, _, _ := strings.Cut(args[0], "=")
			if !c.passesOn(name) {
				t.Errorf("README: %q sets %s, which no service of the compose file reads", rc.line, name)
			}
			args = args[1:]
		}
		switch {
		case args[0] == "make":
			for _, a := range args[1:] {
				if !strings.Contains(a, "=") && !targets[a] {
					t.Errorf("%s: %q: the Makefile has no target %s", rc.file, rc.line, a)
				}
			}
		case args[0] == "turnout" || args[0] == "bin/turnout":
			checkReadmeTurnout(t, rc, args[1:], known)
		case len(args) > 2 && args[0] == "docker" && args[1] == "compose":
			checkReadmeCompose(t, c, rc, args[2:], known)
		case args[0] == "docker":
			if _, err := os.Stat(filepath.Join(repoRoot, "Dockerfile")); err != nil {
				t.Errorf("%s: %q, but there is no Dockerfile", rc.file, rc.line)
			}
		case args[0] == "systemctl":
			unit := args[len(args)-1]
			template, _, _ := strings.Cut(unit, "@")
			if _, err := os.Stat(filepath.Join(repoRoot, "configs/systemd", template+"@.service")); err != nil {
				t.Errorf("%s: %q: configs/systemd has no %s@.service", rc.file, rc.line, template)
			}
		case args[0] == "go":
			// Named as what make runs: each word must be in a $(GO) line.
			ok := false
			for _, line := range strings.Split(string(makefile), "\n") {
				if rest, found := strings.CutPrefix(strings.TrimSpace(line), "$(GO) "); found {
					all := true
					for _, w := range args[1:] {
						all = all && strings.Contains(rest, w)
					}
					ok = ok || all
				}
			}
			if !ok {
				t.Errorf("%s: %q is not what a make target runs", rc.file, rc.line)
			}
		case args[0] == "curl":
			u, err := url.Parse(args[len(args)-1])
			if err != nil || !slices.Contains([]string{"/status", "/metrics", "/healthz", "/restart", "/failover"}, u.Path) {
				t.Errorf("%s: %q does not call an admin endpoint (%v)", rc.file, rc.line, err)
			}
		default:
			t.Errorf("%s: %q: nothing checks this command; teach TestReadmeCommands about it", rc.file, rc.line)
		}
	}
}

// checkReadmeTurnout checks one turnout command line of the README.
func checkReadmeTurnout(t *testing.T, rc readmeCommand, args []string, known map[string]map[string]bool) {
	t.Helper()
	if len(args) == 0 {
		return
	}
	sub := args[0]
	found := false
	for _, c := range commands {
		found = found || c.name == sub
	}
	if !found {
		t.Errorf("%s: %q: turnout has no command %s", rc.file, rc.line, sub)
		return
	}
	if _, ok := exercisedBy[sub]; !ok {
		t.Errorf("%s: %q: no test is named in exercisedBy for turnout %s", rc.file, rc.line, sub)
	}
	var flags, positional []string
	for _, a := range args[1:] {
		a = strings.Trim(a, "[]")
		for _, alt := range strings.Split(a, "|") {
			if name, ok := strings.CutPrefix(alt, "--"); ok {
				name, _, _ = strings.Cut(name, "=")
				flags = append(flags, name)
			} else if alt != "" && !rc.synopsis {
				positional = append(positional, alt)
			}
		}
	}
	if len(flags) > 0 {
		if known[sub] == nil {
			known[sub] = flagsOf(t, sub)
		}
		for _, f := range flags {
			if !known[sub][f] {
				t.Errorf("%s: %q: turnout %s has no flag --%s", rc.file, rc.line, sub, f)
			}
		}
	}
	// A validate of the repository's own files is run for real.
	if sub == "validate" && !rc.synopsis && len(positional) > 0 {
		var paths []string
		for _, p := range positional {
			paths = append(paths, filepath.Join(repoRoot, p))
		}
		if out, stderr, code := turnout(t, append([]string{"validate"}, paths...)...); code != 0 {
			t.Errorf("%s: %q: exit %d\n%s%s", rc.file, rc.line, code, out, stderr)
		}
	}
}

// checkReadmeCompose checks a docker compose command: the services it names
// exist, and a turnout command it runs in one is a valid one.
func checkReadmeCompose(t *testing.T, c *compose, rc readmeCommand, args []string, known map[string]map[string]bool) {
	t.Helper()
	sub, rest := args[0], args[1:]
	var names []string
	for i := 0; i < len(rest); i++ {
		if strings.HasPrefix(rest[i], "-") {
			continue
		}
		if sub == "exec" {
			names = append(names, rest[i])
			if i+1 < len(rest) && rest[i+1] == "turnout" {
				checkReadmeTurnout(t, rc, rest[i+2:], known)
			}
			break
		}
		names = append(names, rest[i])
	}
	for _, n := range names {
		if _, ok := c.file.Services[n]; !ok {
			t.Errorf("%s: %q: docker-compose.yml has no service %s", rc.file, rc.line, n)
		}
	}
}

// docFiles are the README and the pages under docs/, relative to the
// repository root.
func docFiles(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil || len(pages) == 0 {
		t.Fatalf("no pages in docs/ (%v)", err)
	}
	files := []string{"README.md"}
	for _, p := range pages {
		files = append(files, filepath.Join("docs", filepath.Base(p)))
	}
	return files
}

// TestDocLinks: every relative link in the README and docs/ names a file
// that exists and, with a #fragment, a heading in it, so that moving a
// section between pages cannot leave a dead link behind.
func TestDocLinks(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	anchors := map[string]map[string]bool{}
	headings := func(file string) map[string]bool {
		if a, ok := anchors[file]; ok {
			return a
		}
		a := map[string]bool{}
		data, _ := os.ReadFile(filepath.Join(repoRoot, file))
		for _, line := range strings.Split(string(data), "\n") {
			if h, ok := strings.CutPrefix(line, "#"); ok {
				a[githubAnchor(strings.TrimLeft(h, "#"))] = true
			}
		}
		anchors[file] = a
		return a
	}
	for _, file := range docFiles(t) {
		data, err := os.ReadFile(filepath.Join(repoRoot, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(filepath.Join(repoRoot, dest)); err != nil {
					t.Errorf("%s: link %s: %v", file, target, err)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(dest, ".md") && !headings(dest)[frag] {
				t.Errorf("%s: link %s: %s has no heading with that anchor", file, target, dest)
			}
		}
	}
}

// githubAnchor is the fragment GitHub gives a heading: lower case, spaces
// to hyphens, punctuation other than hyphens and underscores dropped.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}
