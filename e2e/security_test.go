package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/turnout/turnout/e2e/kafkatest"
	"github.com/turnout/turnout/internal/testcerts"
)

// reauth is the session lifetime of the auth swap test's clusters.
const reauth = 10 * time.Second

const secSection = "SECURITY (through bin/turnout gateway, SASL_SSL clusters)"

// gatewayCerts makes the gateway's own CA, its certificate for 127.0.0.1, a
// client certificate from the same CA, and one from a CA nobody trusts.
func gatewayCerts(t *testing.T, b *kafkatest.Bed) (server, client, rogue testcerts.Files) {
	t.Helper()
	ca := testcerts.MustCA(t, "turnout-e2e-gateway-ca")
	other := testcerts.MustCA(t, "not-the-gateway-ca")
	for _, l := range []struct {
		ca     *testcerts.CA
		name   string
		hosts  []string
		prefix string
		into   *testcerts.Files
	}{
		{ca, "gateway", []string{"127.0.0.1", "localhost"}, "gateway", &server},
		{ca, "alice-client", nil, "client", &client},
		{other, "mallory-client", nil, "rogue", &rogue},
	} {
		leaf, err := l.ca.Leaf(l.name, l.hosts...)
		if err != nil {
			t.Fatal(err)
		}
		if *l.into, err = leaf.WriteFiles(b.Dir, l.prefix, l.prefix+"-store-secret"); err != nil {
			t.Fatal(err)
		}
	}
	return server, client, rogue
}

// TestSecuritySwitchoverPassthrough is TestSwitchover with security: the
// route is TLS and the clients' SASL (SCRAM) goes through the gateway to
// SASL_SSL clusters that have the same users. The Java producer and
// consumer, franz-go's, and kcat run through a switchover from kafka1 to
// kafka2; no acknowledged record may be lost.
func TestSecuritySwitchoverPassthrough(t *testing.T) { secSwitchover(t, "passthrough") }

// TestSecurityAuthSwap is the switchover with auth swap between clusters
// whose users differ: clients log in to the gateway as alice with the
// gateway's password for her (its users file); the gateway logs in to
// kafka1 with alice's kafka1 credentials and, after the switch, to kafka2
// with her kafka2 ones (its secret store). The clients never change their
// configuration, and no acknowledged record may be lost.
func TestSecurityAuthSwap(t *testing.T) { secSwitchover(t, "swap") }

func secSwitchover(t *testing.T, auth string) {
	b := kafkatest.NewBed(t)
	kcat := kafkatest.RequireKcat(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)

	_, sec1, sec2 := secClusters(t, auth == "passthrough")
	if auth == "swap" {
		// Sessions on the clusters end every reauth (KIP-368): the
		// gateway must log in again for its clients, kcat's included.
		sec1.Reauth, sec2.Reauth = reauth, reauth
	}
	c1 := b.NewClusterSpec(kafkatest.ClusterSpec{Name: "kafka1", Sec: sec1})
	c2 := b.NewClusterSpec(kafkatest.ClusterSpec{Name: "kafka2", Sec: sec2})
	server, _, _ := gatewayCerts(t, b)
	gsec := &kafkatest.GatewaySecurity{Auth: auth, Server: server}
	login := user(t, sec1, "alice") // passthrough: alice's password on both clusters
	if auth == "swap" {
		login = kafkatest.User{Name: "alice", Password: "alice-gateway-secret"}
		gsec.Users = []kafkatest.User{login}
	}
	gw := b.NewGateway("gateway", []*kafkatest.Cluster{c1, c2}, 0, gsec)
	gw.Validate(t)

	classes, mm := startMirrored(ctx, t, b, c1, c2, gw)

	kcatMech := kafkatest.ScramSHA512
	if broken, v := kcatSCRAMBroken(kcat); broken {
		kcatMech = kafkatest.Plain
		t.Logf("kcat's librdkafka %s has the SCRAM nonce bug: kcat logs in to the gateway with PLAIN", v)
	}
	scram := gw.AuthAs(login, kafkatest.ScramSHA512, nil)
	load := &drillLoad{prefixes: []string{"j-", "g-"}}
	load.producers = []*producerRun{
		javaProducer(t, b, gw.Bootstrap(), classes, swTopic, "j-", "java-producer", scram.Java()...),
		franzProducer(t, b, gw.Bootstrap(), swTopic, "g-", "franz-producer", scram.MustKgo()...),
	}
	load.consumers = []*consumerRun{
		javaConsumer(t, b, gw.Bootstrap(), classes, swTopic, "java-consumer", "sec-java", gw.AuthAs(login, kafkatest.ScramSHA256, nil).Java()...),
		franzConsumer(t, b, gw.Bootstrap(), swTopic, "franz-consumer", "sec-franz", scram.MustKgo()...),
		// Named as in TestSwitchover, whose knownBugs entry it shares.
		startKcatConsumer(t, b, gw, kcat, "kcat-classic", gw.AuthAs(login, kcatMech, nil).Kcat()...),
	}
	b.OnCleanup(func() { load.stop(t, 0) })
	load.waitSteady(t, 120*time.Second)

	t0, t1 := switchWhenMirrored(ctx, t, mm, gw, load, 120*time.Second)
	for _, why := range load.carriedOn(t1, 5*drillRate, 120*time.Second) {
		t.Errorf("producer did not carry on after the switch: %s", why)
	}
	if auth == "swap" {
		// The gateway must have logged in again for its clients.
		var again float64
		err := kafkatest.Poll(3*reauth, 200*time.Millisecond, func() (bool, error) {
			var err error
			again, err = gw.Metric(ctx, "turnout_gateway_cluster_logins_total", "kind", "again", "outcome", "ok")
			return again > 0, err
		})
		if failed, _ := gw.Metric(ctx, "turnout_gateway_cluster_logins_total", "outcome", "failed"); err != nil || failed > 0 {
			t.Errorf("the gateway's logins again before the session lifetime ended: %v ok, %v failed (%v)", again, failed, err)
		}
	}
	lost := lossAfterSwitch(ctx, t, c2, load, t0, 90*time.Second)
	reportSwitch(t, fmt.Sprintf("SWITCH   auth=%-11s", auth), t1.Sub(t0), lost)
}

// startMirrored starts the two clusters (kafka1 with the switchover's topic),
// MirrorMaker 2 from kafka1 to kafka2 and the gateway, and compiles the Java
// clients meanwhile.
func startMirrored(ctx context.Context, t *testing.T, b *kafkatest.Bed, c1, c2 *kafkatest.Cluster, gw *kafkatest.Gateway) (string, *kafkatest.MirrorMaker) {
	t.Helper()
	var classes string
	compiled := make(chan struct{})
	go func() { defer close(compiled); classes = b.CompileJava() }()
	errs := make(chan error, 2)
	for _, c := range []*kafkatest.Cluster{c1, c2} {
		go func() { errs <- c.StartErr(ctx) }()
	}
	if err := errors.Join(<-errs, <-errs); err != nil {
		t.Fatal(err)
	}
	c1.CreateTopic(ctx, swTopic, 3, nil)
	mm := b.StartMirrorMaker(c1, c2, swTopic)
	gw.Start(ctx)
	<-compiled
	if t.Failed() {
		t.FailNow()
	}
	return classes, mm
}

// switchWhenMirrored switches the gateway's route to kafka2 once
// MirrorMaker has copied the topic (within timeout) and every consumer
// group's offsets, and returns when the switch was asked and answered.
func switchWhenMirrored(ctx context.Context, t *testing.T, mm *kafkatest.MirrorMaker, gw *kafkatest.Gateway, load *drillLoad, timeout time.Duration) (time.Time, time.Time) {
	t.Helper()
	if _, err := mm.CaughtUp(ctx, swTopic, timeout); err != nil {
		t.Fatal(err)
	}
	for _, c := range load.consumers {
		if _, _, err := mm.GroupSynced(ctx, c.group, swTopic, 0, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	if _, err := gw.Switch(ctx, 1); err != nil {
		t.Fatalf("switching the route to kafka2: %v", err)
	}
	t1 := time.Now()
	t.Logf("switched to kafka2: POST /restart took %v", t1.Sub(t0).Round(time.Millisecond))
	return t0, t1
}

// switchLoss is what a switchover kept and lost.
type switchLoss struct {
	acked, missingOnC2 int
	figures            loadFigures
}

// lossAfterSwitch stops the load (waiting up to wait) and checks that
// kafka2 holds every acknowledged record once MirrorMaker has copied what
// kafka1 took before the switch, that no send failed, and that every
// consumer saw every acknowledged record (a known kcat death aside).
func lossAfterSwitch(ctx context.Context, t *testing.T, c2 *kafkatest.Cluster, load *drillLoad, switched time.Time, wait time.Duration) switchLoss {
	t.Helper()
	load.stop(t, wait)
	acked := load.acked()
	_, missingOnC2, err := waitHolds(ctx, c2, swTopic, acked)
	if err != nil {
		t.Errorf("kafka2 lacks %d of the %d acknowledged records: %v", missingOnC2, len(acked), err)
	}
	f := load.figures(switched, nil)
	if f.errors > 0 {
		t.Errorf("%d sends failed across a planned switch", f.errors)
	}
	for _, c := range load.consumers {
		missing := c.missing(acked)
		bug, known := knownBugs[c.name]
		switch {
		case c.died() && known && strings.Contains(c.deathNote(), bug.signature):
			t.Logf("%s: consumer %s: %s", bug.verdict, c.name, c.deathNote())
		case c.died():
			t.Errorf("consumer %s died: %s", c.name, c.deathNote())
		case missing > 0:
			t.Errorf("consumer %s never saw %d acknowledged records", c.name, missing)
		}
	}
	return switchLoss{acked: len(acked), missingOnC2: missingOnC2, figures: f}
}

// reportSwitch logs and reports a switchover's line, head first.
func reportSwitch(t *testing.T, head string, restart time.Duration, l switchLoss) {
	t.Helper()
	res := "PASS"
	if t.Failed() {
		res = "FAIL"
	}
	f := l.figures
	line := fmt.Sprintf("%s %s restart=%v acked=%d kafka2-lost=%d producer-gap=%v errors=%d; %s",
		head, res, restart.Round(time.Millisecond), l.acked, l.missingOnC2, f.gap.Round(time.Millisecond), f.errors, strings.Join(f.perConsumer, "; "))
	kafkatest.Report(secSection, line)
	t.Log(line)
}

// TestSecurityRefusals checks that the gateway refuses what it must, on a
// passthrough route (the cluster refuses, through the gateway) and on a swap
// route that requires client certificates (the gateway refuses): wrong
// passwords with every mechanism, a user the gateway does not know, a
// cluster password offered to the gateway, no TLS, a gateway certificate the
// client does not trust, no client certificate, one from another CA.
func TestSecurityRefusals(t *testing.T) {
	b := kafkatest.NewBed(t)
	kcat := kafkatest.RequireKcat(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	_, sec1, _ := secClusters(t, false)
	c1 := b.NewClusterSpec(kafkatest.ClusterSpec{Name: "kafka1", Sec: sec1})
	server, client, rogue := gatewayCerts(t, b)
	alice, bob := user(t, sec1, "alice"), user(t, sec1, "bob")
	gwAlice := kafkatest.User{Name: "alice", Password: "alice-gateway-secret"}
	cs := []*kafkatest.Cluster{c1}
	gwP := b.NewGateway("gateway-passthrough", cs, 0, &kafkatest.GatewaySecurity{Auth: "passthrough", Server: server})
	gwS := b.NewGateway("gateway-swap", cs, 0, &kafkatest.GatewaySecurity{Auth: "swap", Server: server,
		ClientAuth: "required", ClientCA: &server, Users: []kafkatest.User{gwAlice}})
	gwP.Validate(t)
	gwS.Validate(t)
	c1.Start(ctx)
	gwP.Start(ctx)
	gwS.Start(ctx)

	wrong := func(u kafkatest.User) kafkatest.User {
		return kafkatest.User{Name: u.Name, Password: "not-" + u.Password}
	}
	type check struct {
		what   string
		gw     *kafkatest.Gateway
		auth   kafkatest.ClientAuth
		refuse bool
		sasl   bool // refused by SASL (else by TLS)
	}
	checks := []check{
		{"passthrough: alice's cluster password, SCRAM-SHA-512", gwP, gwP.AuthAs(alice, kafkatest.ScramSHA512, nil), false, false},
		{"passthrough: alice's cluster password, PLAIN", gwP, gwP.AuthAs(alice, kafkatest.Plain, nil), false, false},
		{"passthrough: no TLS", gwP, kafkatest.ClientAuth{}, true, false},
		{"passthrough: trusting the cluster's CA, not the gateway's", gwP, c1.AuthAs(alice, kafkatest.ScramSHA512), true, false},
		{"swap: alice's gateway password with a client certificate, PLAIN", gwS, gwS.AuthAs(gwAlice, kafkatest.Plain, &client), false, false},
		{"swap: no client certificate", gwS, gwS.AuthAs(gwAlice, kafkatest.ScramSHA512, nil), true, false},
		{"swap: a client certificate from another CA", gwS, gwS.AuthAs(gwAlice, kafkatest.ScramSHA512, &rogue), true, false},
		{"swap: alice's kafka1 password instead of the gateway's", gwS, gwS.AuthAs(alice, kafkatest.ScramSHA512, &client), true, true},
		{"swap: bob, a kafka1 user the gateway does not know", gwS, gwS.AuthAs(bob, kafkatest.ScramSHA512, &client), true, true},
	}
	for _, m := range kafkatest.Mechanisms {
		checks = append(checks,
			check{"passthrough: wrong password, " + m, gwP, gwP.AuthAs(wrong(alice), m, nil), true, true},
			check{"swap: alice's gateway password, " + m, gwS, gwS.AuthAs(gwAlice, m, &client), false, false},
			check{"swap: wrong password, " + m, gwS, gwS.AuthAs(wrong(gwAlice), m, &client), true, true},
		)
	}
	for _, c := range checks {
		err := ping(ctx, c.gw.Bootstrap(), c.auth)
		ok := true
		switch {
		case !c.refuse && err != nil:
			t.Errorf("%s: refused: %v", c.what, err)
			ok = false
		case c.refuse && err == nil:
			t.Errorf("%s: accepted", c.what)
			ok = false
		case c.refuse && c.sasl && !errors.Is(err, kerr.SaslAuthenticationFailed):
			t.Errorf("%s: got %v, want SASL_AUTHENTICATION_FAILED", c.what, err)
			ok = false
		}
		refusal(t, "franz-go", c.what, ok, err)
	}

	// kcat and the Java client with a wrong password at the swap route.
	bad := gwS.AuthAs(wrong(gwAlice), kafkatest.Plain, &client)
	out, err := runKcat(ctx, b, kcat, "kcat-wrong-password", "", append([]string{"-b", gwS.Bootstrap(), "-L", "-m", "10"}, bad.Kcat()...)...)
	// kcat says "SASL authentication error: <the broker's message>".
	ok := err != nil && strings.Contains(err.Error(), "SASL authentication error")
	if !ok {
		t.Errorf("kcat with a wrong password at the gateway: got %v\n%s, want an authentication failure", err, out)
	}
	refusal(t, "kcat", "swap: wrong password, PLAIN", ok, err)
	props := b.Path("wrong.properties")
	if err := gwS.AuthAs(wrong(gwAlice), kafkatest.ScramSHA512, &client).WriteProperties(props); err != nil {
		t.Fatal(err)
	}
	jout, err := b.Java("java-wrong-password", kafkatest.JVM{}, "org.apache.kafka.tools.ProducerPerformance",
		"--bootstrap-server", gwS.Bootstrap(), "--topic", "refused", "--num-records", "1", "--record-size", "10",
		"--throughput", "-1", "--command-config", props, "--command-property", "max.block.ms=10000").CombinedOutput()
	ok = bytes.Contains(jout, []byte("SaslAuthenticationException"))
	if !ok {
		t.Errorf("Java producer with a wrong password at the gateway: %v, want a SaslAuthenticationException:\n%s", err, tail(string(jout), 20))
	}
	refusal(t, "java", "swap: wrong password, SCRAM-SHA-512", ok, err)

	// No secret may reach the gateways' logs.
	for _, g := range []*kafkatest.Gateway{gwP, gwS} {
		for _, secret := range []string{alice.Password, gwAlice.Password, wrong(gwAlice).Password, sec1.Admin.Password, server.Password} {
			if lines := g.LogLines(secret); len(lines) > 0 {
				t.Errorf("%s logged a secret: %s", g.Name, lines[0])
			}
		}
	}
}

func refusal(t *testing.T, client, what string, ok bool, err error) {
	res := "PASS"
	if !ok {
		res = "FAIL"
	}
	why := "accepted"
	if err != nil {
		why = strings.SplitN(err.Error(), "\n", 2)[0]
	}
	kafkatest.Report(secSection, fmt.Sprintf("REFUSAL  %-8s %-4s %s: %s", client, res, what, why))
}
