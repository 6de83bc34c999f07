package proxy_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/turnout/turnout/proxy"
)

// The secrets of the swap tests; none may show in the gateway's logs,
// status or metrics.
const (
	alicePass = "alice-gateway-pw" // alice's password at the gateway
	aliceOne  = "alice-on-one-pw"  // her password on cluster 1, as alice1
	aliceTwo  = "alice-on-two-pw"  // on cluster 2, as alice2
	// aliceRotated replaces aliceOne in TestSwapRotatedClusterPassword.
	aliceRotated = "alice-on-one-rotated-pw"
)

var swapSecrets = []string{alicePass, aliceOne, aliceTwo, aliceRotated, "carol-gateway-pw", "turnout-pw"}

// newSwapBed is a bed whose clusters require SCRAM-SHA-512, each with its
// own login for alice, and whose route swaps credentials: clients log in to
// the gateway as alice (or carol, who has no cluster credentials) and the
// gateway logs in to the active cluster with alice's login there.
// Cluster 1 gives sessions a lifetime of reauth, if positive.
func newSwapBed(t *testing.T, clientAuth string, reauth time.Duration) (*bed, *logBuffer) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users := write("users.conf", fmt.Sprintf("KafkaServer {\n  org.apache.kafka.common.security.plain.PlainLoginModule required\n"+
		"  user_alice=%q\n  user_carol=\"carol-gateway-pw\";\n};\n", alicePass))
	tmpl := write("cluster.conf", `org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";`)
	write("secrets/kafka1-domain/alice", "alice1:"+aliceOne+"\n")
	write("secrets/kafka2-domain/alice", "alice2:"+aliceTwo+"\n")

	var one []kfake.Opt
	if reauth > 0 {
		one = append(one, kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": fmt.Sprint(reauth.Milliseconds())}))
	}
	logs := &logBuffer{}
	b := newBedWith(t, bedSetup{
		clusterOpts: [2][]kfake.Opt{
			append(one, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "alice1", aliceOne), kfake.Superuser("SCRAM-SHA-512", "turnout", "turnout-pw")),
			{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "alice2", aliceTwo), kfake.Superuser("SCRAM-SHA-512", "turnout", "turnout-pw")},
		},
		// The gateway's own identity on both clusters, for the route's
		// metadata client.
		bootstrap: "            sasl: {mechanism: SCRAM-SHA-512, username: turnout, password: {value: turnout-pw}}\n",
		security: fmt.Sprintf("      security:\n        auth: swap\n        swapConfig:\n          clientAuth:\n            sasl:\n%s"+
			"              jaasConfig:\n                file: %s\n          secretStore: files\n"+
			"          clusterAuth:\n            sasl:\n              mechanism: SCRAM-SHA-512\n              jaasConfig:\n                file: %s\n",
			clientAuth, users, tmpl),
		gateway: fmt.Sprintf("  secretStores:\n    - name: files\n      provider:\n        type: FILE\n        config:\n          path: %s\n",
			filepath.Join(dir, "secrets")),
		log: logs,
		dir: dir,
	})
	return b, logs
}

// writeSwapFile replaces a file of the swap bed's, such as users.conf or
// secrets/kafka1-domain/alice.
func (b *bed) writeSwapFile(name, text string) {
	b.t.Helper()
	if err := os.WriteFile(filepath.Join(b.setup.dir, name), []byte(text), 0o600); err != nil {
		b.t.Fatal(err)
	}
}

// rawConn speaks Kafka to the gateway one request at a time, as no client
// library lets a test: a re-authentication when the test says, requests
// written back to back.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	next int32
}

func (b *bed) rawConn() *rawConn {
	b.t.Helper()
	c, err := net.Dial("tcp", b.endpoint())
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { c.Close() })
	return &rawConn{t: b.t, c: c}
}

// frame encodes a request with the next correlation id.
func (r *rawConn) frame(req kmsg.Request) []byte {
	r.next++
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, r.next)
}

func (r *rawConn) write(frames ...[]byte) {
	r.t.Helper()
	var all []byte
	for _, f := range frames {
		all = append(all, f...)
	}
	if _, err := r.c.Write(all); err != nil {
		r.t.Fatal(err)
	}
}

// read decodes the next response into resp, whose version must be the
// request's; it fails the test if the gateway closed the connection.
func (r *rawConn) read(resp kmsg.Response) {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	size := make([]byte, 4)
	if _, err := io.ReadFull(r.c, size); err != nil {
		r.t.Fatalf("reading the %s response: %v", kmsg.NameForKey(resp.Key()), err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size))
	if _, err := io.ReadFull(r.c, body); err != nil {
		r.t.Fatalf("reading the %s response: %v", kmsg.NameForKey(resp.Key()), err)
	}
	off := 4 // correlation id
	if resp.IsFlexible() && kmsg.Key(resp.Key()) != 18 {
		off++ // no header tags
	}
	if err := resp.ReadFrom(body[off:]); err != nil {
		r.t.Fatalf("decoding the %s response: %v", kmsg.NameForKey(resp.Key()), err)
	}
}

// plainLogin authenticates with PLAIN and returns the SaslAuthenticate
// response's error code.
func (r *rawConn) plainLogin(user, pass string) int16 {
	r.t.Helper()
	r.saslHandshake("PLAIN")
	return r.saslAuthenticate([]byte("\x00" + user + "\x00" + pass)).ErrorCode
}

// saslAuthenticate sends one SaslAuthenticate round and returns its answer.
func (r *rawConn) saslAuthenticate(auth []byte) *kmsg.SASLAuthenticateResponse {
	r.t.Helper()
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version = 1
	au.SASLAuthBytes = auth
	r.write(r.frame(au))
	auResp := kmsg.NewPtrSASLAuthenticateResponse()
	auResp.Version = 1
	r.read(auResp)
	return auResp
}

// saslHandshake starts a SASL exchange with mechanism, and fails the test
// unless the mechanism is enabled.
func (r *rawConn) saslHandshake(mechanism string) {
	r.t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 1
	hs.Mechanism = mechanism
	r.write(r.frame(hs))
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	hsResp.Version = 1
	r.read(hsResp)
	if hsResp.ErrorCode != 0 {
		r.t.Fatalf("SaslHandshake: %v", kerr.ErrorForCode(hsResp.ErrorCode))
	}
}

// metadata asks for the topic's metadata and fails the test unless it is
// answered.
func (r *rawConn) metadata() {
	r.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	r.write(r.frame(req))
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version = 9
	r.read(resp)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		r.t.Fatalf("Metadata answered %+v", resp.Topics)
	}
}

func produceOne(ctx context.Context, cl *kgo.Client, value string) error {
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}).FirstErr()
}

// TestSwapSwitchover: alice logs in to the gateway with one password, with
// PLAIN or SCRAM; the gateway logs in to cluster 1 as alice1 and, after the
// route is switched, to cluster 2 as alice2; the producer never changes its
// configuration and every record is acknowledged.
func TestSwapSwitchover(t *testing.T) {
	for _, mech := range []sasl.Mechanism{
		plain.Auth{User: "alice", Pass: alicePass}.AsMechanism(),
		scram.Auth{User: "alice", Pass: alicePass}.AsSha256Mechanism(),
		scram.Auth{User: "alice", Pass: alicePass}.AsSha512Mechanism(),
	} {
		t.Run(mech.Name(), func(t *testing.T) {
			b, logs := newSwapBed(t, "", 0)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cl := b.client(kgo.SASL(mech), kgo.RecordRetries(1000), kgo.ProducerLinger(0))
			for i := range 20 {
				if err := produceOne(ctx, cl, fmt.Sprint("one-", i)); err != nil {
					t.Fatalf("produce through the gateway to cluster 1: %v", err)
				}
			}
			b.writeConfig(1, 1)
			if code, st := b.restart(); code != http.StatusOK || st.Routes[0].Domain != "kafka2-domain" {
				t.Fatalf("restart answered %d %+v", code, st)
			}
			for i := range 20 {
				if err := produceOne(ctx, cl, fmt.Sprint("two-", i)); err != nil {
					t.Fatalf("produce through the gateway after the switch: %v", err)
				}
			}
			// The records after the switch are on cluster 2, read there as alice2.
			direct, err := kgo.NewClient(kgo.SeedBrokers(b.clusters[1].ListenAddrs()...), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SASL(scram.Auth{User: "alice2", Pass: aliceTwo}.AsSha512Mechanism()))
			if err != nil {
				t.Fatal(err)
			}
			defer direct.Close()
			n := 0
			waitFor(t, ctx, "cluster 2 holds the 20 records produced after the switch", func() bool {
				fctx, fcancel := context.WithTimeout(ctx, 200*time.Millisecond)
				defer fcancel()
				direct.PollFetches(fctx).EachRecord(func(r *kgo.Record) {
					if strings.HasPrefix(string(r.Value), "two-") {
						n++
					}
				})
				return n == 20
			})
			b.assertNoSecrets(logs)
		})
	}
}

// assertNoSecrets checks the gateway's logs, status and metrics for the
// tests' passwords.
func (b *bed) assertNoSecrets(logs *logBuffer) {
	b.t.Helper()
	var seen strings.Builder
	seen.WriteString(logs.String())
	for _, path := range []string{"/status", "/metrics"} {
		resp, err := http.Get(b.admin.URL + path)
		if err != nil {
			b.t.Fatal(err)
		}
		body := new(strings.Builder)
		_, _ = io.Copy(body, resp.Body)
		resp.Body.Close()
		seen.WriteString(body.String())
	}
	for _, s := range swapSecrets {
		if strings.Contains(seen.String(), s) {
			b.t.Errorf("a secret shows in the gateway's logs, status or metrics: %q", s)
		}
	}
	if logs.Len() == 0 {
		b.t.Error("the gateway logged nothing; the secrets check saw nothing")
	}
}

// TestSwapRefusals: every way a client fails to authenticate gets a clear
// refusal that names no secret, and nothing reaches the cluster before the
// client authenticated.
func TestSwapRefusals(t *testing.T) {
	b, logs := newSwapBed(t, "              mechanism: PLAIN\n", 0)
	for _, tc := range []struct {
		name string
		mech sasl.Mechanism
		want error
		msg  string
	}{
		{"wrong password", plain.Auth{User: "alice", Pass: "guess"}.AsMechanism(), kerr.SaslAuthenticationFailed, "invalid username or password"},
		{"unknown user", plain.Auth{User: "mallory", Pass: alicePass}.AsMechanism(), kerr.SaslAuthenticationFailed, "invalid username or password"},
		{"mechanism not enabled", scram.Auth{User: "alice", Pass: alicePass}.AsSha256Mechanism(), kerr.UnsupportedSaslMechanism, ""},
		{"no secret for the active cluster", plain.Auth{User: "carol", Pass: "carol-gateway-pw"}.AsMechanism(), kerr.SaslAuthenticationFailed,
			"the gateway cannot log in to the active cluster for this user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cl := b.client(kgo.SASL(tc.mech), kgo.RequestRetries(0))
			err := cl.Ping(ctx)
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.msg) {
				t.Fatalf("got %v, want %v with %q", err, tc.want, tc.msg)
			}
			for _, s := range swapSecrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the refusal names a secret: %v", err)
				}
			}
		})
	}
	t.Run("request before authentication", func(t *testing.T) {
		var reached atomic.Int32
		b.clusters[0].ControlKey(kmsg.Metadata.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
			reached.Add(1)
			return nil, nil, false
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl := b.client(kgo.RequestRetries(0)) // no SASL
		if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err == nil {
			t.Fatal("a Metadata request before authentication was answered")
		}
		if n := reached.Load(); n != 0 {
			t.Fatalf("%d Metadata requests reached the cluster before the client authenticated", n)
		}
	})
	b.assertNoSecrets(logs)
}

// TestSwapReauthentication: the cluster gives sessions a short lifetime and
// the gateway gives clients one: the gateway logs in to the cluster again
// before its session ends (KIP-368) and answers the client's own
// re-authentications, and a producer carries on past several lifetimes.
func TestSwapReauthentication(t *testing.T) {
	b, logs := newSwapBed(t, "              connectionsMaxReauthMs: 700\n", time.Second)
	var handshakes atomic.Int32
	b.clusters[0].ControlKey(kmsg.SASLHandshake.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		handshakes.Add(1)
		return nil, nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := b.client(kgo.SASL(scram.Auth{User: "alice", Pass: alicePass}.AsSha256Mechanism()), kgo.ProducerLinger(0))
	for i := range 40 {
		if err := produceOne(ctx, cl, fmt.Sprint(i)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// 4 s of producing on at least two connections (bootstrap, broker):
	// each logs in once and again every 0.85 s of activity.
	if n := handshakes.Load(); n < 6 {
		t.Fatalf("the cluster saw %d SASL handshakes in 4 s of 1 s sessions: the gateway did not log in again", n)
	}
	if n := b.counter("turnout_gateway_cluster_logins_total", "kind", "again", "outcome", "ok"); n < 4 {
		t.Errorf("turnout_gateway_cluster_logins_total{kind=again,outcome=ok} = %v, want at least 4", n)
	}
	b.assertNoSecrets(logs)
}

// TestPassthroughSASL: on a passthrough route the cluster's own SASL
// (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512) goes through untouched, and a
// SaslHandshake v0, whose raw tokens the gateway cannot follow, is refused
// with UNSUPPORTED_VERSION.
func TestPassthroughSASL(t *testing.T) {
	b := newBedWith(t, bedSetup{clusterOpts: [2][]kfake.Opt{{kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "p", "p-pw"), kfake.Superuser("SCRAM-SHA-256", "s256", "s256-pw"), kfake.Superuser("SCRAM-SHA-512", "s512", "s512-pw")}}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, mech := range []sasl.Mechanism{
		plain.Auth{User: "p", Pass: "p-pw"}.AsMechanism(),
		scram.Auth{User: "s256", Pass: "s256-pw"}.AsSha256Mechanism(),
		scram.Auth{User: "s512", Pass: "s512-pw"}.AsSha512Mechanism(),
	} {
		if err := produceOne(ctx, b.client(kgo.SASL(mech)), mech.Name()); err != nil {
			t.Errorf("%s through a passthrough route: %v", mech.Name(), err)
		}
	}
	bad := b.client(kgo.SASL(plain.Auth{User: "p", Pass: "wrong"}.AsMechanism()), kgo.RequestRetries(0))
	// kfake closes the connection on a failed login where Kafka answers
	// SASL_AUTHENTICATION_FAILED; either way the gateway passes it on.
	if err := bad.Ping(ctx); err == nil {
		t.Error("a wrong password through a passthrough route was accepted")
	}

	conn, err := net.Dial("tcp", b.endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Version = 0
	req.Mechanism = "PLAIN"
	if _, err := conn.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, 7)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	frame, err := io.ReadAll(conn) // the answer, then the gateway closes
	if err != nil || len(frame) < 8 {
		t.Fatalf("read %d bytes: %v", len(frame), err)
	}
	resp := kmsg.NewPtrSASLHandshakeResponse()
	if err := resp.ReadFrom(frame[8:]); err != nil || resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("SaslHandshake v0 answered %+v, %v; want UNSUPPORTED_VERSION", resp, err)
	}
}

// TestSwapReauthAfterRestart: a restart that keeps the route reads its
// users file again, and a live connection's next re-authentication goes by
// it: alice, removed from the file, is refused on a connection she logged
// in on before.
func TestSwapReauthAfterRestart(t *testing.T) {
	b, logs := newSwapBed(t, "              mechanism: PLAIN\n", 0)
	c := b.rawConn()
	if code := c.plainLogin("alice", alicePass); code != 0 {
		t.Fatalf("alice's first login: %v", kerr.ErrorForCode(code))
	}
	c.metadata()
	// Re-authenticating with the file unchanged is accepted.
	if code := c.plainLogin("alice", alicePass); code != 0 {
		t.Fatalf("alice's re-authentication: %v", kerr.ErrorForCode(code))
	}
	c.metadata()
	b.writeSwapFile("users.conf", "KafkaServer {\n  org.apache.kafka.common.security.plain.PlainLoginModule required\n"+
		"  user_carol=\"carol-gateway-pw\";\n};\n")
	if code, st := b.restart(); code != http.StatusOK {
		t.Fatalf("restart answered %d %+v", code, st)
	}
	if code := c.plainLogin("alice", alicePass); code != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("alice re-authenticated after her removal from the users file: %v", kerr.ErrorForCode(code))
	}
	b.assertNoSecrets(logs)
}

// TestSwapRotatedClusterPassword: alice's password on cluster 1 changes,
// in the store and on the cluster; the gateway's next login again looks the
// secret up, and the producer's connections carry on.
func TestSwapRotatedClusterPassword(t *testing.T) {
	b, logs := newSwapBed(t, "", time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := b.client(kgo.SASL(scram.Auth{User: "alice", Pass: alicePass}.AsSha512Mechanism()), kgo.ProducerLinger(0))
	if err := produceOne(ctx, cl, "before"); err != nil {
		t.Fatal(err)
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(b.clusters[0].ListenAddrs()...),
		kgo.SASL(scram.Auth{User: "turnout", Pass: "turnout-pw"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b.writeSwapFile("secrets/kafka1-domain/alice", "alice1:"+aliceRotated+"\n")
	res, err := kadm.NewClient(admin).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{
		User: "alice1", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: aliceRotated}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("rotating alice1's password on cluster 1: %v", err)
	}
	before := b.counter("turnout_gateway_cluster_logins_total", "kind", "again", "outcome", "ok")
	for i := range 30 {
		if err := produceOne(ctx, cl, fmt.Sprint(i)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := b.counter("turnout_gateway_cluster_logins_total", "kind", "again", "outcome", "ok"); n < before+2 {
		t.Errorf("the gateway logged in again %v times in 3 s of 1 s sessions after the rotation, want at least 2", n-before)
	}
	if n := b.counter("turnout_gateway_cluster_logins_total", "kind", "again", "outcome", "failed"); n != 0 {
		t.Errorf("%v of the gateway's logins again failed after the rotation; they closed the producer's connections", n)
	}
	b.assertNoSecrets(logs)
}

// TestSwapApiVersionsThenHandshake: a client that sends ApiVersions and
// SaslHandshake back to back, without waiting, gets both answers, and the
// cluster sees its one ApiVersions before the login and no stand-in (a
// second ApiVersions, on which Kafka closes the connection).
func TestSwapApiVersionsThenHandshake(t *testing.T) {
	b, _ := newSwapBed(t, "              mechanism: PLAIN\n", 0)
	// The route's own metadata client connects first: franz-go asks a
	// broker that closed a connection during ApiVersions again at v0,
	// which would count here as a stand-in.
	deadline := time.Now().Add(10 * time.Second)
	for b.gw.Status()[0].ClusterID == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var clients, standIns atomic.Int32
	b.clusters[0].ControlKey(kmsg.ApiVersions.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		switch r := req.(*kmsg.ApiVersionsRequest); {
		case r.Version == 0:
			standIns.Add(1)
		case r.ClientSoftwareName == "raw-test":
			clients.Add(1)
		}
		return nil, nil, false
	})
	c := b.rawConn()
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "raw-test", "1"
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 1
	hs.Mechanism = "PLAIN"
	c.write(c.frame(av), c.frame(hs))
	avResp := kmsg.NewPtrApiVersionsResponse()
	avResp.Version = 3
	c.read(avResp)
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	hsResp.Version = 1
	c.read(hsResp)
	if avResp.ErrorCode != 0 || hsResp.ErrorCode != 0 {
		t.Fatalf("ApiVersions %v, SaslHandshake %v", kerr.ErrorForCode(avResp.ErrorCode), kerr.ErrorForCode(hsResp.ErrorCode))
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version = 1
	au.SASLAuthBytes = []byte("\x00alice\x00" + alicePass)
	c.write(c.frame(au))
	auResp := kmsg.NewPtrSASLAuthenticateResponse()
	auResp.Version = 1
	c.read(auResp)
	if auResp.ErrorCode != 0 {
		t.Fatalf("SaslAuthenticate: %v", kerr.ErrorForCode(auResp.ErrorCode))
	}
	c.metadata()
	if n, m := clients.Load(), standIns.Load(); n != 1 || m != 0 {
		t.Fatalf("the cluster saw %d of the client's ApiVersions and %d stand-ins; want 1 and 0", n, m)
	}
}

// TestSwapLoginBehindSlowRequest: the gateway's login again waits behind a
// client request the cluster takes long to answer, longer than the bound on
// the gateway's own requests, and the connection carries on: the bound
// counts from when the login is the oldest request in flight.
func TestSwapLoginBehindSlowRequest(t *testing.T) {
	t.Cleanup(proxy.SetRoundTripTimeout(300 * time.Millisecond))
	b, _ := newSwapBed(t, "", time.Second)
	var slept atomic.Bool
	b.clusters[0].ControlKey(kmsg.ListOffsets.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		if !slept.Swap(true) {
			b.clusters[0].SleepControl(func() { time.Sleep(1500 * time.Millisecond) })
		}
		return nil, nil, false
	})
	c := b.rawConn()
	if code := c.plainLogin("alice", alicePass); code != 0 {
		t.Fatalf("alice's login: %v", kerr.ErrorForCode(code))
	}
	// The cluster's session lasts 1 s: the gateway logs in again on the
	// first request after 0.85 s, which the slow ListOffsets precedes.
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 4
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	c.write(c.frame(lo))
	time.Sleep(time.Second)
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	c.write(c.frame(md)) // after 0.85 s: the gateway logs in again first
	loResp := kmsg.NewPtrListOffsetsResponse()
	loResp.Version = 4
	c.read(loResp)
	mdResp := kmsg.NewPtrMetadataResponse()
	mdResp.Version = 9
	c.read(mdResp)
	if len(loResp.Topics) != 1 || len(mdResp.Brokers) == 0 {
		t.Fatalf("ListOffsets answered %+v, Metadata %+v", loResp, mdResp)
	}
	if !slept.Load() {
		t.Fatal("the cluster never saw the ListOffsets")
	}
	if n := b.counter("turnout_gateway_cluster_logins_total", "kind", "again", "outcome", "ok"); n != 1 {
		t.Fatalf("the gateway logged in again %v times, want 1", n)
	}
}
