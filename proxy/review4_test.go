package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout/proxy"
)

// TestReviewAbandonedSwitchGrantsNoLease: GrantLease refuses to grant a
// lease for a request its agent gave up on ("would outlive the lease the
// agent counts on"). A /restart the agent gave up on still carries the
// lease over to the new epoch for a full ttl from when the switch ends
// (renewSwitched ignores the request's context).
func TestReviewAbandonedSwitchGrantsNoLease(t *testing.T) {
	b := newBed(t)
	b.post("/lease", `{"route":"switchover-route","domain":"kafka1-domain","epoch":0,"ttl":"30s"}`)
	h := proxy.AdminHandler(b.gw, b.metrics, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the agent gave up on the request
	req := httptest.NewRequest(http.MethodPost, "/restart",
		strings.NewReader(`{"routes":[{"name":"switchover-route","domain":"kafka2-domain","epoch":1}]}`)).WithContext(ctx)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	st := b.status()
	t.Logf("abandoned /restart answered %d; route %s epoch %d", rec.Code, st.Routes[0].Domain, st.Routes[0].ConfigEpoch)
	if l := st.Routes[0].Lease; st.Routes[0].ConfigEpoch == 1 && l != nil && l.Live && l.Epoch == 1 && time.Until(l.Until) > 25*time.Second {
		t.Fatalf("an abandoned /restart granted a fresh lease at epoch 1 until %v", l.Until)
	}
}
