package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/xdg-go/scram"
)

// The SASL mechanisms the gateway serves and uses.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// ErrFailed is every failed client authentication, whatever the cause, so
// that a client cannot tell an unknown user from a wrong password.
var ErrFailed = errors.New("authentication failed: invalid username or password")

// scramIterations is the PBKDF2 cost of the SCRAM credentials the gateway
// derives from the users file, Kafka's minimum and default.
const scramIterations = 4096

// Users are the clients a route authenticates, from a users file.
type Users struct {
	passwords  map[string]string
	mechanisms []string
}

// LoadUsers reads a users file (a JAAS file with user_NAME="PASSWORD"
// options) and serves the given mechanisms with it.
func LoadUsers(path string, mechanisms []string) (*Users, error) {
	opts, err := readJAAS(path)
	if err != nil {
		return nil, err
	}
	u, err := newUsers(opts, mechanisms)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

func newUsers(opts [][2]string, mechanisms []string) (*Users, error) {
	u := &Users{passwords: map[string]string{}, mechanisms: mechanisms}
	for _, o := range opts {
		if name, ok := strings.CutPrefix(o[0], "user_"); ok && name != "" {
			u.passwords[name] = o[1]
		}
	}
	if len(u.passwords) == 0 {
		return nil, ErrNoUsers
	}
	return u, nil
}

// Enabled lists the mechanisms served.
func (u *Users) Enabled() []string { return u.mechanisms }

// Exchange is one client authentication in progress.
type Exchange struct {
	users *Users
	mech  string
	conv  *scram.ServerConversation
	user  string
}

// Start begins authenticating a client with a mechanism; it fails for a
// mechanism the route does not serve.
func (u *Users) Start(mechanism string) (*Exchange, error) {
	if !slices.Contains(u.mechanisms, mechanism) {
		return nil, fmt.Errorf("mechanism %q is not enabled (enabled: %s)", mechanism, strings.Join(u.mechanisms, ", "))
	}
	e := &Exchange{users: u, mech: mechanism}
	hash := scram.SHA256
	switch mechanism {
	case Plain:
		return e, nil
	case ScramSHA512:
		hash = scram.SHA512
	}
	srv, err := hash.NewServer(func(name string) (scram.StoredCredentials, error) {
		pass, ok := u.passwords[name]
		if !ok {
			return scram.StoredCredentials{}, ErrFailed
		}
		salt := make([]byte, 16)
		rand.Read(salt)
		cl, err := hash.NewClient(name, pass, "")
		if err != nil {
			return scram.StoredCredentials{}, ErrFailed
		}
		return cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: scramIterations})
	})
	if err != nil {
		return nil, err
	}
	e.conv = srv.NewConversation()
	return e, nil
}

// Mechanism is the exchange's mechanism.
func (e *Exchange) Mechanism() string { return e.mech }

// Step takes the client's next message and returns the reply, and whether
// the client is authenticated; User then names it. Any failure is
// ErrFailed.
func (e *Exchange) Step(msg []byte) (reply []byte, done bool, err error) {
	if e.conv == nil {
		if err := e.plain(msg); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	}
	out, err := e.conv.Step(string(msg))
	if err != nil || e.conv.Done() && !e.conv.Valid() {
		return nil, false, ErrFailed
	}
	if e.conv.Done() {
		e.user = e.conv.Username()
	}
	return []byte(out), e.conv.Done(), nil
}

// plain checks a PLAIN message: authzid NUL authcid NUL password, where an
// authzid, if any, must be the user itself.
func (e *Exchange) plain(msg []byte) error {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return ErrFailed
	}
	name, pass := string(parts[1]), parts[2]
	want, ok := e.users.passwords[name]
	if !ok || len(parts[0]) > 0 && string(parts[0]) != name {
		return ErrFailed
	}
	if subtle.ConstantTimeCompare(pass, []byte(want)) != 1 {
		return ErrFailed
	}
	e.user = name
	return nil
}

// User is the authenticated user, once Step says done.
func (e *Exchange) User() string { return e.user }
