// Package auth is the gateway's side of SASL when a route swaps
// credentials: it authenticates clients (PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512) against the users of a JAAS file, looks up the credentials
// each user has on the active cluster in a secret store, and builds the
// client mechanism that authenticates the gateway's connection to that
// cluster.
//
// Passwords and other secrets never appear in the errors of this package.
package auth

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// The JAAS files are the ones Confluent's gateway and Kafka brokers read, so
// that an existing file can be reused:
//
//	KafkaServer {
//	    org.apache.kafka.common.security.plain.PlainLoginModule required
//	    user_alice="alice-secret";
//	};
//
// Only the login modules' options matter to the gateway; the module class,
// its control flag and any section name around it are skipped.

// jaasOptions returns the key="value" options of every login module in a
// JAAS configuration, in order. Comments (// and /* */) are skipped, as the
// JVM's parser does.
func jaasOptions(text string) ([][2]string, error) {
	toks, err := jaasTokens(text)
	if err != nil {
		return nil, err
	}
	var opts [][2]string
	for i := 0; i < len(toks); i++ {
		if i+1 < len(toks) && toks[i+1].text == "=" && !toks[i+1].quoted {
			if toks[i].quoted || i+2 >= len(toks) || isPunct(toks[i+2]) {
				return nil, fmt.Errorf("line %d: an option wants name=value", toks[i].line)
			}
			opts = append(opts, [2]string{toks[i].text, toks[i+2].text})
			i += 2
		}
	}
	return opts, nil
}

type jaasToken struct {
	text   string
	quoted bool
	line   int
}

func isPunct(t jaasToken) bool {
	return !t.quoted && len(t.text) == 1 && strings.ContainsAny(t.text, "{};=")
}

func jaasTokens(s string) ([]jaasToken, error) {
	var toks []jaasToken
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.HasPrefix(s[i:], "//"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: a comment is not closed", line)
			}
			line += strings.Count(s[i:i+2+end], "\n")
			i += end + 4
		case strings.IndexByte("{};=", c) >= 0:
			toks = append(toks, jaasToken{text: string(c), line: line})
			i++
		case c == '"':
			var b strings.Builder
			start := line
			for i++; ; i++ {
				if i >= len(s) {
					return nil, fmt.Errorf("line %d: a quoted value is not closed", start)
				}
				if s[i] == '"' {
					i++
					break
				}
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				if s[i] == '\n' {
					line++
				}
				b.WriteByte(s[i])
			}
			toks = append(toks, jaasToken{text: b.String(), quoted: true, line: start})
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n{};=\"", s[j]) < 0 && !strings.HasPrefix(s[j:], "//") && !strings.HasPrefix(s[j:], "/*") {
				j++
			}
			toks = append(toks, jaasToken{text: s[i:j], line: line})
			i = j
		}
	}
	return toks, nil
}

// readJAAS reads the options of a JAAS file; errors name the file, never a
// value in it.
func readJAAS(path string) ([][2]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	opts, err := jaasOptions(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return opts, nil
}

// Template is how the gateway fills the credentials it found in a secret
// store into the cluster's login: Confluent's clusterAuth jaasConfig file,
// such as
//
//	org.apache.kafka.common.security.plain.PlainLoginModule required username="%s" password="%s";
//
// where each %s takes the store's username and password, and a literal value
// is used as written.
type Template struct{ user, pass string }

// DefaultTemplate uses the store's credentials as they are.
var DefaultTemplate = Template{"%s", "%s"}

// LoadTemplate reads a template file.
func LoadTemplate(path string) (Template, error) {
	opts, err := readJAAS(path)
	if err != nil {
		return Template{}, err
	}
	var t Template
	for _, o := range opts {
		switch o[0] {
		case "username":
			t.user = o[1]
		case "password":
			t.pass = o[1]
		}
	}
	if t.user == "" || t.pass == "" {
		return Template{}, fmt.Errorf("%s: want username=\"%%s\" and password=\"%%s\" options, which the gateway fills from the secret store", path)
	}
	return t, nil
}

// Fill applies the template to a credential from a store.
func (t Template) Fill(c Credential) Credential {
	fill := func(tmpl, v string) string {
		if tmpl == "%s" {
			return v
		}
		return tmpl
	}
	return Credential{User: fill(t.user, c.User), Password: fill(t.pass, c.Password)}
}

// ErrNoUsers is returned for a users file that defines no user.
var ErrNoUsers = errors.New(`no users: want user_NAME="PASSWORD" options, as Kafka's PlainLoginModule takes`)
