package agent_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/agent"
	"github.com/turnout/turnout/internal/ctlsec"
	"github.com/turnout/turnout/internal/testcerts"
	"github.com/turnout/turnout/proxy"
)

// TestSecuredControlPlane: agents with a token, HTTPS and Raft over mutual
// TLS, and a gateway whose admin API wants its own token over HTTPS. Calls
// that change state without the token, or with another, are refused and
// change nothing; with it, a failover asked of a follower is handed to the
// leader and carried out through the gateway's admin API.
func TestSecuredControlPlane(t *testing.T) {
	ca := testcerts.MustCA(t, "turnout")
	leaf := ca.MustLeaf(t, "control", "127.0.0.1")
	dir := t.TempDir()
	files := leaf.MustWriteFiles(t, dir, "control", "unused")
	token := func(name, value string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	agentToken, gwToken, wrongToken := token("agent-token", "agents-secret"), token("gw-token", "gateway-secret"), token("wrong", "guess")

	h := newHarness(t, policyOpts{})
	// The gateway's admin API, as `turnout gateway` serves it with
	// admin.tokenFile and admin.tls.
	h.gwAdmin.Close()
	h.gwAdmin = httptest.NewUnstartedServer(ctlsec.Guard("gateway-secret", proxy.AdminHandler(h.gw, proxy.NewMetrics(), false)))
	h.gwAdmin.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
	h.gwAdmin.StartTLS()
	t.Cleanup(h.gwAdmin.Close)
	h.writePolicy(policyOpts{gatewayAuth: fmt.Sprintf("    tokenFile: %s\n    caFile: %s\n", gwToken, files.CA)})

	raftTLS, err := ctlsec.RaftTLS(files.Chain, files.Key, files.CA)
	if err != nil {
		t.Fatal(err)
	}
	h.configure = func(c *agent.Config) {
		c.TokenFile, c.CAFile, c.HTTPCertFile, c.HTTPKeyFile, c.RaftTLS = agentToken, files.CA, files.Chain, files.Key, raftTLS
	}
	h.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := h.leader(ctx)
	waitFor(t, ctx, "the route exists", func() bool { return h.route(leader).Name == route })

	post := func(tokenFile, id, path, body string) (int, string) {
		t.Helper()
		c, err := ctlsec.NewClient(tokenFile, files.CA)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Post("https://"+h.agents[id].a.HTTPAddr()+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(msg)
	}
	flip := fmt.Sprintf(`{"type":"StartFlip","cmd":{"route":%q,"from":%q,"to":%q,"epoch":1,"reason":"no token","at":"2020-01-01T00:00:00Z","leader":"x"}}`,
		route, primary, standby)
	for _, tokenFile := range []string{"", wrongToken} {
		for id := range h.agents {
			if code, msg := post(tokenFile, id, "/failover", `{"force":true}`); code != http.StatusUnauthorized {
				t.Errorf("%s: POST /failover with token file %q: %d %s, want 401", id, tokenFile, code, msg)
			}
			if code, msg := post(tokenFile, id, "/v1/apply", flip); code != http.StatusUnauthorized {
				t.Errorf("%s: POST /v1/apply with token file %q: %d %s, want 401", id, tokenFile, code, msg)
			}
		}
	}
	if r := h.route(leader); r.ActiveDomain != primary || r.Epoch != 0 || r.Flip != nil {
		t.Fatalf("refused calls changed the route: %+v", r)
	}
	// Reads stay open, over HTTPS.
	reader, err := ctlsec.NewClient("", files.CA)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := reader.Get("https://" + h.agents[leader].a.HTTPAddr() + "/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /status without a token: %d", resp.StatusCode)
	}

	follower := ""
	for id := range h.agents {
		if id != leader {
			follower = id
		}
	}
	code, msg := post(agentToken, follower, "/failover", `{"force":true}`)
	if code != http.StatusOK || !strings.Contains(msg, `"ok": true`) {
		t.Fatalf("forced failover through follower %s: %d %s", follower, code, msg)
	}
	h.waitActive(ctx, standby)
	if st := h.gw.Status(); st[0].ClusterID != "cluster-2" || st[0].ConfigEpoch != 1 {
		t.Errorf("gateway serves %+v, want cluster-2 at epoch 1", st[0])
	}
}

// An agent whose HTTP API would be reachable from elsewhere does not start
// without a token.
func TestAgentRefusesOpenHTTPWithoutToken(t *testing.T) {
	h := newHarness(t, policyOpts{})
	_, err := agent.New(agent.Config{
		ID: "a1", PolicyFile: h.polPath, RaftAddr: h.peers["a1"], Peers: h.peers,
		DataDir: filepath.Join(h.dir, "data-a1"), HTTPAddr: "0.0.0.0:0", Logger: quietLogger(t, "a1"),
	})
	if err == nil || !strings.Contains(err.Error(), "0.0.0.0:0 is not a loopback address") || !strings.Contains(err.Error(), "--token-file (TURNOUT_TOKEN_FILE)") {
		t.Fatalf("got %v", err)
	}
}
