package auth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Credential is a user's login on a cluster.
type Credential struct {
	User, Password string
}

// Mechanism builds the client side of a SASL mechanism with the credential:
// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, as configuration validation
// spells them; PLAIN for any other name, which validation lets through none
// of.
func (c Credential) Mechanism(name string) sasl.Mechanism {
	switch name {
	case ScramSHA256:
		return scram.Auth{User: c.User, Pass: c.Password}.AsSha256Mechanism()
	case ScramSHA512:
		return scram.Auth{User: c.User, Pass: c.Password}.AsSha512Mechanism()
	}
	return plain.Auth{User: c.User, Pass: c.Password}.AsMechanism()
}

// ErrNoSecret says a store holds no credentials for a user on a cluster.
var ErrNoSecret = errors.New("no credentials in the secret store")

// Store finds the credentials a user has on a cluster.
//
// A store is looked up first under the streaming domain's name, then
// without it: a secret for a domain serves that cluster only, one without a
// domain serves every cluster. A secret's value is the username, the
// separator and the password ("alice:secret" with the default separator), as
// in Confluent's gateway.
type Store interface {
	Lookup(domain, user string) (Credential, error)
}

// Store types.
const (
	// FileStore is a directory: DIR/DOMAIN/PREFIXUSER or DIR/PREFIXUSER,
	// one file per secret.
	FileStore = "FILE"
	// EnvStore is environment variables: PREFIX+DOMAIN+"__"+USER or
	// PREFIX+USER (see EnvNames).
	EnvStore = "ENV"
)

// DefaultSeparator splits a secret into username and password.
const DefaultSeparator = ":"

// NewStore makes a store of a type (FILE or ENV, any case). A file store
// needs its directory to exist.
func NewStore(typ, path, prefix, separator string) (Store, error) {
	if separator == "" {
		separator = DefaultSeparator
	}
	switch strings.ToUpper(typ) {
	case FileStore:
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", path)
		}
		return fileStore{dir: path, prefix: prefix, sep: separator}, nil
	case EnvStore:
		return envStore{prefix: prefix, sep: separator}, nil
	}
	return nil, fmt.Errorf("secret store type %q is not supported; use FILE or ENV", typ)
}

type fileStore struct{ dir, prefix, sep string }

func (s fileStore) Lookup(domain, user string) (Credential, error) {
	name := s.prefix + user
	// User and domain names become path elements: never let one climb.
	if !filepath.IsLocal(name) || strings.ContainsRune(name, os.PathSeparator) || !filepath.IsLocal(domain) || strings.ContainsRune(domain, os.PathSeparator) {
		return Credential{}, ErrNoSecret
	}
	for _, p := range []string{filepath.Join(s.dir, domain, name), filepath.Join(s.dir, name)} {
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return Credential{}, fmt.Errorf("reading the secret for %s on %s: %w", user, domain, errors.Unwrap(err))
		}
		return split(strings.TrimRight(string(data), "\r\n"), s.sep, user, domain)
	}
	return Credential{}, ErrNoSecret
}

type envStore struct{ prefix, sep string }

func (s envStore) Lookup(domain, user string) (Credential, error) {
	names, err := EnvNames(s.prefix, domain, user)
	if err != nil {
		return Credential{}, err
	}
	for _, name := range names {
		if v, ok := os.LookupEnv(name); ok {
			return split(v, s.sep, user, domain)
		}
	}
	return Credential{}, ErrNoSecret
}

// EnvNames are the environment variables an env store reads for a user on
// a domain, in order: PREFIX+DOMAIN+"__"+USER, then PREFIX+USER. The prefix
// is used as written; the domain is upper-cased, with every character other
// than a letter, digit or underscore made an underscore; the user is used
// as written (case kept), and only if it is made of letters, digits and
// underscores, does not start with an underscore and holds no "__".
//
// So no two users share a variable: the user follows the last "__" of a
// domain's variable, and a shared variable, holding no "__" after the
// prefix, is no domain's. A user name that does not fit is refused rather
// than mapped, as mapping would let "kafka1-domain.alice" or
// "KAFKA1_DOMAIN__alice" read alice's secret.
func EnvNames(prefix, domain, user string) ([]string, error) {
	if !envUser(user) {
		return nil, fmt.Errorf("%w: user name %q cannot be looked up in an ENV secret store, which takes only letters, digits and single underscores, not first", ErrBadUser, user)
	}
	return []string{prefix + envDomain(domain) + "__" + user, prefix + user}, nil
}

// ErrBadUser says a user name cannot be looked up in a store.
var ErrBadUser = errors.New("user name not usable in the secret store")

func envUser(user string) bool {
	if user == "" || user[0] == '_' || strings.Contains(user, "__") {
		return false
	}
	for _, r := range user {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func envDomain(domain string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			return r
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return '_'
	}, domain)
}

func split(v, sep, user, domain string) (Credential, error) {
	u, p, ok := strings.Cut(v, sep)
	if !ok || u == "" || p == "" {
		return Credential{}, fmt.Errorf("the secret for %s on %s is not USERNAME%sPASSWORD", user, domain, sep)
	}
	return Credential{User: u, Password: p}, nil
}
