package agent

import (
	"net"
	"testing"
)

// An agent whose API listens on all interfaces is reached by the others at
// its Raft host; an explicit address wins.
func TestAdvertisedHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	a := &Agent{cfg: Config{ID: "a1", Peers: map[string]string{"a1": "agent-1:7001"}}, httpLn: ln}
	if got, want := a.advertisedHTTP(), "agent-1:"+port; got != want {
		t.Errorf("advertised %s, want %s", got, want)
	}
	a.cfg.AdvertiseHTTP = "lb.example:80"
	if got := a.advertisedHTTP(); got != "lb.example:80" {
		t.Errorf("advertised %s, want the configured lb.example:80", got)
	}
	// An API served over TLS is advertised as an https URL, so that the
	// others call it that way.
	a.cfg.HTTPCertFile = "cert.pem"
	if got := a.advertisedHTTP(); got != "https://lb.example:80" {
		t.Errorf("advertised %s, want https://lb.example:80", got)
	}
	a.cfg.AdvertiseHTTP = ""
	if got, want := a.advertisedHTTP(), "https://agent-1:"+port; got != want {
		t.Errorf("advertised %s, want %s", got, want)
	}
}

// A request answered "not now" is tried again when it is sent again; one
// answered for good gets the same answer.
func TestAnswerKeepsOnlyFinalOutcomes(t *testing.T) {
	a := &Agent{pending: map[string]*manualRequest{}}
	for _, tc := range []struct {
		code string
		kept bool
	}{{"not-leader", false}, {"shutdown", false}, {"done", true}, {"lag-too-high", true}} {
		r := &manualRequest{id: tc.code, done: make(chan struct{})}
		a.pending[r.id] = r
		a.answer(r, Outcome{Code: tc.code})
		if _, kept := a.pending[r.id]; kept != tc.kept {
			t.Errorf("outcome %s: kept for duplicates %v, want %v", tc.code, kept, tc.kept)
		}
	}
}
