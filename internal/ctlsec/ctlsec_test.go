package ctlsec

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/turnout/turnout/internal/testcerts"
)

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	if tok, err := ReadToken(writeFile(t, dir, "ok", "s3cret\n")); tok != "s3cret" || err != nil {
		t.Errorf("got %q, %v", tok, err)
	}
	for name, data := range map[string]string{"empty": " \n", "two": "a b\n"} {
		if _, err := ReadToken(writeFile(t, dir, name, data)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ReadToken(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9190": true, "127.0.0.2:1": true, "[::1]:8081": true, "localhost:8081": true, "127.0.0.1": true,
		":9190": false, "0.0.0.0:9190": false, "[::]:1": false, "10.0.0.1:8081": false, "agent-1:8081": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

// server serves h with s on a loopback port and returns its base URL.
func server(t *testing.T, s Server, h http.Handler) string {
	t.Helper()
	ln, token, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Guard(token, h)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	scheme := "http://"
	if s.CertFile != "" {
		scheme = "https://"
	}
	return scheme + ln.Addr().String()
}

func call(t *testing.T, c *http.Client, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := Unauthorized(resp, body, "set the hint"); err != nil {
		return resp.StatusCode, err.Error()
	}
	return resp.StatusCode, string(body)
}

// Without the token, or with another, a state-changing call is refused
// before it reaches the handler; reads stay open; the right token passes.
func TestGuard(t *testing.T) {
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "token", "right\n")
	var changed atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			changed.Add(1)
		}
		w.Write([]byte("ok"))
	})
	base := server(t, Server{TokenFile: tokenFile}, h)
	plain, _ := NewClient("", "")
	wrong, _ := NewClient(writeFile(t, dir, "wrong", "wrong"), "")
	right, err := NewClient(tokenFile, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		client *http.Client
		want   string
	}{{plain, "missing bearer token"}, {wrong, "wrong bearer token"}} {
		code, msg := call(t, tc.client, http.MethodPost, base+"/restart")
		if code != http.StatusUnauthorized || !strings.Contains(msg, tc.want) || !strings.HasSuffix(msg, "; set the hint") {
			t.Errorf("POST: %d %s, want 401 %q", code, msg, tc.want)
		}
		if strings.Contains(msg, "right") {
			t.Errorf("the answer gives the token away: %s", msg)
		}
	}
	if n := changed.Load(); n != 0 {
		t.Fatalf("refused calls reached the handler %d times", n)
	}
	if code, _ := call(t, plain, http.MethodGet, base+"/status"); code != http.StatusOK {
		t.Errorf("GET without a token: %d", code)
	}
	if code, _ := call(t, right, http.MethodPost, base+"/restart"); code != http.StatusOK || changed.Load() != 1 {
		t.Errorf("POST with the token: %d, handler calls %d", code, changed.Load())
	}
}

func TestListenRefusesOpenAddressWithoutToken(t *testing.T) {
	_, _, err := Server{TokenSetting: "--token-file"}.Listen("0.0.0.0:0")
	if err == nil || err.Error() != "0.0.0.0:0 is not a loopback address, so state-changing calls need a bearer token: set --token-file" {
		t.Fatalf("got %v", err)
	}
	_, _, err = Server{TokenFile: filepath.Join(t.TempDir(), "none"), TokenSetting: "admin.tokenFile in gw.yaml"}.Listen("127.0.0.1:0")
	if err == nil || !strings.HasPrefix(err.Error(), "admin.tokenFile in gw.yaml: reading the token file") {
		t.Fatalf("missing token file: %v", err)
	}
	ln, token, err := Server{TokenFile: writeFile(t, t.TempDir(), "token", "t")}.Listen("0.0.0.0:0")
	if err != nil || token != "t" {
		t.Fatalf("with a token: %v, %q", err, token)
	}
	ln.Close()
}

// Over TLS the API answers a client that trusts the CA, and no other.
func TestTLS(t *testing.T) {
	ca := testcerts.MustCA(t, "ctl")
	leaf := ca.MustLeaf(t, "admin", "127.0.0.1")
	files, err := leaf.WriteFiles(t.TempDir(), "admin", "unused")
	if err != nil {
		t.Fatal(err)
	}
	base := server(t, Server{CertFile: files.Chain, KeyFile: files.Key}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	trusting, err := NewClient("", files.CA)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := call(t, trusting, http.MethodGet, base+"/status"); code != http.StatusOK {
		t.Errorf("with the CA: %d", code)
	}
	plain, _ := NewClient("", "")
	if _, err := plain.Get(base + "/status"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v, want a certificate error", err)
	}
	if _, _, err := (Server{CertFile: files.Chain}).Listen("127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "both a certificate file and a key file") {
		t.Errorf("a certificate without its key: %v", err)
	}
	if _, err := NewClient("", files.Key); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("a key as the CA file: %v", err)
	}
	// The CA files are read like the PEM truststores of gateway.yaml: a
	// certificate that does not parse is an error, not left out.
	bad := writeFile(t, t.TempDir(), "bad-ca.pem", string(ca.CertPEM())+"-----BEGIN CERTIFICATE-----\nbm90IERFUg==\n-----END CERTIFICATE-----\n")
	if _, err := LoadCA(bad); err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Errorf("a CA file with a bad certificate: %v", err)
	}
}

// A redirect must not carry the token, or the request's body, to the host
// it names: the client hands the redirect back instead of following it.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	var reached atomic.Int32
	var leaked atomic.Value
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		leaked.Store(r.Header.Get("Authorization"))
	}))
	defer elsewhere.Close()
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/restart", code)
		}))
		c, err := NewClient(writeFile(t, t.TempDir(), "token", "s3cret\n"), "")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Post(redirecting.URL+"/restart", "application/json", strings.NewReader(`{"route":"r"}`))
		if err != nil {
			t.Fatalf("%d: %v", code, err)
		}
		resp.Body.Close()
		redirecting.Close()
		if resp.StatusCode != code {
			t.Errorf("got %d, want the redirect %d itself", resp.StatusCode, code)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times (Authorization %q)", n, leaked.Load())
	}
}

func TestRaftTLSFlags(t *testing.T) {
	for _, files := range [][3]string{{"c", "", ""}, {"c", "k", ""}, {"", "", "ca"}} {
		_, err := RaftTLS(files[0], files[1], files[2])
		if err == nil || err.Error() != "raft TLS needs all of --raft-cert, --raft-key and --raft-ca (or none of them for plain TCP)" {
			t.Errorf("RaftTLS%q: %v", files, err)
		}
	}
	if cfg, err := RaftTLS("", "", ""); cfg != nil || err != nil {
		t.Errorf("no flags: %v, %v; want plain TCP", cfg, err)
	}
}
