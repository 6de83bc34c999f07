package consensus

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/turnout/turnout/internal/ctlsec"
	"github.com/turnout/turnout/internal/testcerts"
)

// raftTLS writes a certificate for 127.0.0.1 from ca and loads it as an
// agent would from --raft-cert, --raft-key and --raft-ca; trust is the CA
// whose file is given as --raft-ca.
func raftTLS(t *testing.T, ca, trust *testcerts.CA, name string) *tls.Config {
	t.Helper()
	leaf := ca.MustLeaf(t, name, "127.0.0.1")
	dir := t.TempDir()
	files := leaf.MustWriteFiles(t, dir, name, "unused")
	trustFiles := files
	if trust != ca {
		other := trust.MustLeaf(t, "trust", "127.0.0.1")
		trustFiles = other.MustWriteFiles(t, dir, "trust", "unused")
	}
	cfg, err := ctlsec.RaftTLS(files.Chain, files.Key, trustFiles.CA)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestMutualTLS: three agents with certificates from one CA elect a leader
// and replicate over TLS. A fourth, whose certificate another CA signed,
// thinks it belongs to the group and campaigns, but every connection it
// makes fails the handshake: the three keep their leader and term, and it
// never learns the state or a leader.
func TestMutualTLS(t *testing.T) {
	ca := testcerts.MustCA(t, "agents")
	rogue := testcerts.MustCA(t, "rogue")
	c := newTLSCluster(t, 3, func(id string) *tls.Config { return raftTLS(t, ca, ca, id) })
	leader := c.leader()
	apply(t, leader, InitRoute{Route: "r", Active: "k1"})
	if s := c.converged(leader); s.Routes["r"] == nil {
		t.Fatal("the route did not replicate")
	}
	term := leader.Term()

	// The outsider trusts the agents' CA, so only their check of its
	// certificate keeps it out.
	peers := map[string]string{"a4": freeAddrs(t, 1)[0]}
	for id, addr := range c.peers {
		peers[id] = addr
	}
	outsider, err := Open(Config{ID: "a4", Addr: peers["a4"], Peers: peers, DataDir: filepath.Join(t.TempDir(), "a4"), Bootstrap: true,
		TLS: raftTLS(t, rogue, ca, "a4")})
	if err != nil {
		t.Fatal(err)
	}
	defer outsider.Close()
	time.Sleep(3 * time.Second) // several election timeouts of campaigning
	if id, _ := outsider.Leader(); id != "" {
		t.Errorf("the outsider knows leader %s", id)
	}
	if s := outsider.State(); len(s.Routes) != 0 {
		t.Errorf("the outsider has state: %s", encodeState(t, s))
	}
	if now := c.leader(); now.ID() != leader.ID() || now.Term() != term {
		t.Errorf("leader %s at term %d, was %s at term %d: the outsider disturbed the group", now.ID(), now.Term(), leader.ID(), term)
	}
	if st := outsider.raft.State(); st != raft.Candidate {
		t.Errorf("the outsider is a %v, not campaigning, so the test proves little", st)
	}
	apply(t, leader, InitRoute{Route: "s", Active: "k2"})
	c.converged(leader)
	if s := outsider.State(); len(s.Routes) != 0 {
		t.Errorf("the outsider has state: %s", encodeState(t, s))
	}

	// What the outsider sees: the agents end its connections in the
	// handshake, while one of their own is answered (it waits for an RPC).
	rogueCfg := raftTLS(t, rogue, ca, "a4")
	// Go withholds a client certificate the server's CA list does not
	// name; send it anyway, so that the check of the chain is what
	// refuses it.
	rogueCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &rogueCfg.Certificates[0], nil }
	for name, cfg := range map[string]*tls.Config{"outsider": rogueCfg, "member": raftTLS(t, ca, ca, "a5")} {
		conn, err := (&tlsStreamLayer{config: cfg}).Dial(raft.ServerAddress(c.peers["a1"]), time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
		timeout := false
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			timeout = true
		}
		switch {
		case name == "outsider" && (err == nil || timeout):
			t.Errorf("a1 kept a connection with a certificate from another CA open (%v)", err)
		case name == "member" && !timeout:
			t.Errorf("a1 refused a certificate from its own CA: %v", err)
		case name == "outsider":
			t.Logf("a1 to the outsider: %v", err)
		}
	}

	// An agent of the group refuses to talk to a server whose certificate
	// the rogue CA signed: the dial side checks too.
	stream, err := newTLSStreamLayer("127.0.0.1:0", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, raftTLS(t, rogue, rogue, "rogue-server"))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	go func() {
		for {
			conn, err := stream.Accept()
			if err != nil {
				return
			}
			go func() { conn.(*tls.Conn).Handshake(); conn.Close() }()
		}
	}()
	good := &tlsStreamLayer{config: raftTLS(t, ca, ca, "dialer")}
	if conn, err := good.Dial(raft.ServerAddress(stream.Listener.Addr().String()), time.Second); err == nil {
		conn.Close()
		t.Error("an agent completed a handshake with a server the rogue CA signed")
	} else {
		t.Logf("dialing the rogue server: %v", err)
	}
}
