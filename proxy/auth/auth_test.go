package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var allMechanisms = []string{Plain, ScramSHA256, ScramSHA512}

func TestJAASOptions(t *testing.T) {
	opts, err := jaasOptions("// users\nKafkaServer {\n  org.apache.kafka.common.security.plain.PlainLoginModule required\n" +
		"  username=\"admin\" /* the broker's own */ password=\"a\\\"b\"\n  user_alice=\"x=y;z\";\n};\n")
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"username", "admin"}, {"password", `a"b`}, {"user_alice", "x=y;z"}}
	if len(opts) != len(want) {
		t.Fatalf("got %q, want %q", opts, want)
	}
	for i := range want {
		if opts[i] != want[i] {
			t.Fatalf("got %q, want %q", opts, want)
		}
	}
	for _, bad := range []string{`user_a="open`, "/* open", `user_a=;`} {
		if _, err := jaasOptions(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzJAASOptions: the users file parser never panics on any input, and
// finds no user without a name.
func FuzzJAASOptions(f *testing.F) {
	f.Add(`KafkaServer { x.PlainLoginModule required user_alice="pw"; };`)
	f.Add(`a /* c */ b=c // d` + "\n" + `e="f\"g";`)
	f.Fuzz(func(t *testing.T, s string) {
		opts, err := jaasOptions(s)
		if err != nil {
			return
		}
		if u, err := newUsers(opts, allMechanisms); err == nil {
			for name := range u.passwords {
				if name == "" {
					t.Fatal("a user without a name")
				}
			}
		}
	})
}

// The same users serve PLAIN and both SCRAM mechanisms; every failure is
// the same error, which names no password.
func TestExchange(t *testing.T) {
	u, err := newUsers([][2]string{{"user_alice", "pw"}}, allMechanisms)
	if err != nil {
		t.Fatal(err)
	}
	ex, _ := u.Start(Plain)
	if _, done, err := ex.Step([]byte("\x00alice\x00pw")); !done || err != nil || ex.User() != "alice" {
		t.Fatalf("PLAIN: done %v, %v, user %q", done, err, ex.User())
	}
	for _, msg := range []string{"\x00alice\x00nope", "\x00bob\x00pw", "bob\x00alice\x00pw", "alice"} {
		ex, _ := u.Start(Plain)
		if _, _, err := ex.Step([]byte(msg)); !errors.Is(err, ErrFailed) || strings.Contains(err.Error(), "pw") {
			t.Errorf("PLAIN %q: %v", msg, err)
		}
	}
	for _, mech := range []string{ScramSHA256, ScramSHA512} {
		for pass, ok := range map[string]bool{"pw": true, "nope": false} {
			ex, err := u.Start(mech)
			if err != nil {
				t.Fatal(err)
			}
			sess, msg, err := Credential{User: "alice", Password: pass}.Mechanism(mech).Authenticate(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			var done bool
			for !done && err == nil {
				var reply []byte
				if reply, done, err = ex.Step(msg); err == nil {
					_, msg, err = sess.Challenge(reply)
				}
			}
			if ok != (err == nil) || ok && ex.User() != "alice" {
				t.Errorf("%s with password %q: %v, user %q", mech, pass, err, ex.User())
			}
		}
	}
	if _, err := u.Start("GSSAPI"); err == nil {
		t.Error("GSSAPI started")
	}
}

func TestStores(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "one"), 0o700)
	os.WriteFile(filepath.Join(dir, "one", "p-alice"), []byte("alice1/s:1\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "p-alice"), []byte("alice/any"), 0o600)
	os.WriteFile(filepath.Join(dir, "p-bad"), []byte("no-separator"), 0o600)
	fs, err := NewStore("file", dir, "p-", "/")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SEC_ONE__alice", "alice1:e1")
	t.Setenv("SEC_alice", "alice:e")
	es, _ := NewStore("ENV", "", "SEC_", "")
	for _, tc := range []struct {
		st           Store
		domain, user string
		want         Credential
		err          error
	}{
		{fs, "one", "alice", Credential{"alice1", "s:1"}, nil},
		{fs, "two", "alice", Credential{"alice", "any"}, nil},
		{fs, "one", "bob", Credential{}, ErrNoSecret},
		{fs, "one", "../one/p-alice", Credential{}, ErrNoSecret},
		{es, "one", "alice", Credential{"alice1", "e1"}, nil},
		{es, "two", "alice", Credential{"alice", "e"}, nil},
		{es, "one", "bob", Credential{}, ErrNoSecret},
	} {
		got, err := tc.st.Lookup(tc.domain, tc.user)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%T %s/%s: %+v, %v", tc.st, tc.domain, tc.user, got, err)
		}
	}
	if _, err := fs.Lookup("one", "bad"); err == nil || strings.Contains(err.Error(), "no-separator") {
		t.Errorf("a malformed secret: %v", err)
	}
	if _, err := NewStore("VAULT", "", "", ""); err == nil {
		t.Error("a Vault store was made")
	}
}

// TestEnvStoreCollisions: no user reads another's variable, however its
// name is made; a name that could is refused with an error naming no
// secret.
func TestEnvStoreCollisions(t *testing.T) {
	t.Setenv("TURNOUT_KAFKA1_DOMAIN__alice", "alice1:one-secret")
	t.Setenv("TURNOUT_alice", "alice:shared-secret")
	t.Setenv("TURNOUT_KAFKA1_DOMAIN__Bob_2", "bob1:bob-secret")
	t.Setenv("TURNOUT_KAFKA1_DOMAIN_ALICE", "mallory:mallory-secret")
	es, _ := NewStore("ENV", "", "TURNOUT_", "")
	for _, tc := range []struct {
		domain, user string
		want         Credential
		err          error
	}{
		// Ordinary names.
		{"kafka1-domain", "alice", Credential{"alice1", "one-secret"}, nil},
		{"kafka2-domain", "alice", Credential{"alice", "shared-secret"}, nil},
		{"kafka1-domain", "Bob_2", Credential{"bob1", "bob-secret"}, nil},
		{"kafka1-domain", "bob_2", Credential{}, ErrNoSecret}, // case is kept
		{"kafka1-domain", "ALICE", Credential{}, ErrNoSecret},
		// A user named like alice's domain variable reads only its own.
		{"kafka2-domain", "KAFKA1_DOMAIN_ALICE", Credential{"mallory", "mallory-secret"}, nil},
		{"kafka1-domain", "KAFKA1_DOMAIN_ALICE", Credential{"mallory", "mallory-secret"}, nil},
		// Names that would map onto another's variable are refused.
		{"kafka2-domain", "KAFKA1_DOMAIN__alice", Credential{}, ErrBadUser},
		{"kafka2-domain", "kafka1-domain.alice", Credential{}, ErrBadUser},
		{"kafka2-domain", "kafka1-domain_alice", Credential{}, ErrBadUser},
		{"kafka1-domain", "alice.", Credential{}, ErrBadUser},
		{"kafka1-domain", "_alice", Credential{}, ErrBadUser},
		{"kafka1", "DOMAIN__alice", Credential{}, ErrBadUser},
		{"kafka1-domain", "al ice", Credential{}, ErrBadUser},
		{"kafka1-domain", "", Credential{}, ErrBadUser},
		{"kafka1-domain", "élise", Credential{}, ErrBadUser},
	} {
		got, err := es.Lookup(tc.domain, tc.user)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%s/%q: %+v, %v; want %+v, %v", tc.domain, tc.user, got, err, tc.want, tc.err)
		}
		for _, secret := range []string{"one-secret", "shared-secret", "bob-secret", "mallory-secret"} {
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("%s/%q: the error names a secret: %v", tc.domain, tc.user, err)
			}
		}
	}
	names, err := EnvNames("P_", "kafka1.domain-x", "alice")
	if err != nil || len(names) != 2 || names[0] != "P_KAFKA1_DOMAIN_X__alice" || names[1] != "P_alice" {
		t.Errorf("EnvNames: %q, %v", names, err)
	}
}
