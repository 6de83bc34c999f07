package agent

import (
	"net"
	"testing"

	"github.com/turnout/turnout/policy"
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

// A request is answered once, with its id, and then forgotten: sent again,
// it is decided again, or answered from the replicated state if it flipped
// the route.
func TestAnswerOnce(t *testing.T) {
	a := &Agent{pending: map[string]*manualRequest{}}
	r := &manualRequest{req: policy.Request{ID: "q1"}, done: make(chan struct{})}
	a.pending["q1"] = r
	a.answer(r, Outcome{Code: CodeDone, OK: true})
	a.answer(r, Outcome{Code: CodeShutdown})
	if _, kept := a.pending["q1"]; kept || r.result.Code != CodeDone || r.result.ID != "q1" {
		t.Errorf("after two answers: kept %v, result %+v; want the first, with the id, and nothing kept", kept, r.result)
	}
}
