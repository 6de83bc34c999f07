// Package ctlsec secures Turnout's control plane: the gateway's admin API,
// the agents' HTTP API and the Raft traffic between agents. It reads bearer
// tokens and PEM certificates from files, guards state-changing HTTP calls,
// and builds the one HTTP client every caller uses.
package ctlsec

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/turnout/turnout/internal/pemcert"
)

// ReadToken reads a bearer token file. Surrounding white space (the
// newline an editor adds) is not part of the token.
func ReadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	switch {
	case tok == "":
		return "", fmt.Errorf("token file %s is empty", path)
	case strings.ContainsAny(tok, " \t\r\n"):
		// It would not survive an Authorization header intact.
		return "", fmt.Errorf("token file %s holds more than one word; want the token alone", path)
	}
	return tok, nil
}

// IsLoopback reports whether a listen address (host:port) binds only the
// loopback interface. An empty host or a wildcard binds every interface,
// and a host name other than localhost may resolve anywhere, so neither is
// loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Guard wraps h so that every request whose method is not GET or HEAD
// carries token as a bearer token; others get 401 and never reach h. With
// an empty token every request goes through: callers refuse that for
// non-loopback addresses (see Listen).
func Guard(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// Hashing first makes the comparison constant-time whatever
		// the lengths.
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="turnout"`)
			msg := "missing bearer token: this call changes state and needs the token from the server's token file"
			if ok {
				msg = "wrong bearer token: it does not match the server's token file"
			}
			http.Error(w, msg, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Server is how a control-plane HTTP server is secured: a token file, and
// a PEM certificate and key for TLS; each may be empty.
type Server struct {
	TokenFile, CertFile, KeyFile string
	// TokenSetting names where the token file is set, for errors, e.g.
	// "--token-file (TURNOUT_TOKEN_FILE)" or "admin.tokenFile in gw.yaml".
	TokenSetting string
}

// Listen listens on addr and returns the listener (TLS when a certificate
// is set, at most AdminLimits.MaxConns connections open at once) and the
// token state-changing calls need. It refuses a
// non-loopback address without a token file, so that nobody who can reach
// the port can change state.
func (s Server) Listen(addr string) (net.Listener, string, error) {
	var token string
	if s.TokenFile != "" {
		var err error
		if token, err = ReadToken(s.TokenFile); err != nil {
			return nil, "", fmt.Errorf("%s: %w", s.TokenSetting, err)
		}
	} else if !IsLoopback(addr) {
		return nil, "", fmt.Errorf("%s is not a loopback address, so state-changing calls need a bearer token: set %s", addr, s.TokenSetting)
	}
	var cfg *tls.Config
	if s.CertFile != "" || s.KeyFile != "" {
		cert, err := LoadKeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, "", err
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	ln = LimitListener(ln, AdminLimits.MaxConns)
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return ln, token, nil
}

// LoadKeyPair reads a PEM certificate (chain) and its key; both are needed.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, fmt.Errorf("TLS needs both a certificate file and a key file (got certificate %q, key %q)", certFile, keyFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("loading the certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// LoadCA reads a PEM file of one or more CA certificates.
func LoadCA(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the CA file: %w", err)
	}
	certs, err := pemcert.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("CA file %s: %w", path, err)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pemcert.Pool(certs), nil
}

// NewClient returns the HTTP client every control-plane caller uses: it
// sends the token in tokenFile (if set) as a bearer token and, for https
// URLs, trusts the CAs in caFile (if set, else the system's).
func NewClient(tokenFile, caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pool, err := LoadCA(caFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = tr
	if tokenFile != "" {
		token, err := ReadToken(tokenFile)
		if err != nil {
			return nil, err
		}
		rt = bearer{token: token, next: tr}
	}
	// No client timeout: a failover call waits for its outcome, and the
	// callers bound every call with a context. No redirects either: the
	// token goes to every request the transport sends, so following a
	// 307 or 308 would hand it, and the request's body, to whatever host
	// the answer names. No Turnout server redirects; a redirect comes back
	// to the caller as the answer it is.
	return &http.Client{Transport: rt, CheckRedirect: noRedirects}, nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not change the caller's request
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// RaftTLS builds the configuration for Raft between agents: each side
// presents its certificate and accepts only peers whose certificate the CA
// signed. Either all three files are set, or none (nil: plain TCP); any
// other mix is an error naming the flags.
func RaftTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	set := 0
	for _, f := range []string{certFile, keyFile, caFile} {
		if f != "" {
			set++
		}
	}
	switch set {
	case 0:
		return nil, nil
	case 3:
	default:
		return nil, errors.New("raft TLS needs all of --raft-cert, --raft-key and --raft-ca (or none of them for plain TCP)")
	}
	cert, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("raft TLS: %w", err)
	}
	pool, err := LoadCA(caFile)
	if err != nil {
		return nil, fmt.Errorf("raft TLS: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// Unauthorized turns a 401 answer into an error that ends with hint, which
// says where the caller's token comes from. It returns nil for other
// answers.
func Unauthorized(resp *http.Response, body []byte, hint string) error {
	if resp.StatusCode != http.StatusUnauthorized {
		return nil
	}
	return fmt.Errorf("%s refused the call (401: %s); %s", resp.Request.URL.Redacted(), bytes.TrimSpace(body), hint)
}
