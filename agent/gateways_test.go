package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/ctlsec"
	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/adminapi"
)

// A gateway that refuses the agent's token (or its lack) is reported with
// the policy setting to fix, and the restart never reaches it.
func TestGatewayTokenRefused(t *testing.T) {
	restarted := false
	gw := httptest.NewServer(ctlsec.Guard("gateway-secret", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		restarted = true
	})))
	defer gw.Close()
	wrong := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(wrong, []byte("guess\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tokenFile := range []string{"", wrong} {
		pol := &policy.Policy{File: "policy.yaml", Gateways: []policy.Gateway{{Name: "gw-1", Admin: gw.URL, TokenFile: tokenFile, Line: 7}}}
		clients, err := gatewayClients(pol)
		if err != nil {
			t.Fatal(err)
		}
		c := adminClient{pol.Gateways[0], clients["gw-1"]}
		err = c.call(context.Background(), http.MethodPost, "/restart", adminapi.RestartRequest{}, &adminapi.StatusResponse{})
		if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "set tokenFile of gateway gw-1 in the policy") {
			t.Errorf("token file %q: %v", tokenFile, err)
		}
	}
	if restarted {
		t.Error("a refused call reached the gateway")
	}
	pol := &policy.Policy{File: "policy.yaml", Gateways: []policy.Gateway{{Name: "gw-1", Admin: gw.URL, TokenFile: "/nonexistent/token", Line: 7}}}
	if _, err := gatewayClients(pol); err == nil || !strings.HasPrefix(err.Error(), "policy.yaml:7: gateway gw-1: reading the token file") {
		t.Errorf("a missing token file: %v", err)
	}
}
