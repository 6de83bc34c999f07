package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/e2e/kafkatest"
	"github.com/turnout/turnout/internal/testcerts"
)

const secBedSection = "SECURITY BED (SASL_SSL clusters, no gateway)"

// secClusters are two SASL_SSL clusters' settings, sharing one CA. With
// sameUsers both have the same users and passwords (passthrough: a client's
// credentials are good on either); otherwise kafka2's passwords differ and
// kafka1 has a user kafka2 lacks (swap: the gateway must log in differently
// after a switch).
func secClusters(t *testing.T, sameUsers bool) (ca *testcerts.CA, sec1, sec2 *kafkatest.Security) {
	t.Helper()
	ca = testcerts.MustCA(t, "turnout-e2e-ca")
	sec1 = &kafkatest.Security{CA: ca,
		Admin: kafkatest.User{Name: "admin", Password: "admin-1-secret"},
		Users: []kafkatest.User{{Name: "alice", Password: "alice-1-secret"}, {Name: "bob", Password: "bob-1-secret"}},
	}
	sec2 = &kafkatest.Security{CA: ca,
		Admin: kafkatest.User{Name: "admin", Password: "admin-2-secret"},
		Users: []kafkatest.User{{Name: "alice", Password: "alice-2-secret"}},
	}
	if sameUsers {
		cp := *sec1
		sec2 = &cp
	}
	return ca, sec1, sec2
}

func user(t *testing.T, s *kafkatest.Security, name string) kafkatest.User {
	t.Helper()
	u, ok := s.User(name)
	if !ok {
		t.Fatalf("no user %s", name)
	}
	return u
}

// TestSecurityBed checks the test bed itself, without the gateway: two
// SASL_SSL clusters with different users come up; kcat, the Java client's
// tools and franz-go produce and consume on kafka1 with SCRAM (and PLAIN);
// wrong credentials are refused; MirrorMaker 2 copies kafka1 to kafka2 over
// SASL_SSL on both sides. It reports how long a cluster takes to format and
// start with TLS and SASL and without.
func TestSecurityBed(t *testing.T) {
	b := kafkatest.NewBed(t)
	kcat := kafkatest.RequireKcat(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	_, sec1, sec2 := secClusters(t, false)

	// One at a time, so that the timings compare: a plaintext cluster
	// (then killed: at most two clusters and MirrorMaker at once), then
	// the two secure ones.
	plain := b.StartClusters(ctx, "plain")[0]
	plain.Kill()
	c1 := b.StartClusterSpecs(ctx, kafkatest.ClusterSpec{Name: "kafka1", Sec: sec1})[0]
	c2 := b.StartClusterSpecs(ctx, kafkatest.ClusterSpec{Name: "kafka2", Sec: sec2})[0]
	for _, c := range []*kafkatest.Cluster{plain, c1, c2} {
		kind := "PLAINTEXT"
		if c.Secure() {
			kind = "SASL_SSL"
		}
		line := fmt.Sprintf("CLUSTER  %-7s %-9s format=%v start=%v", c.Name, kind, c.Formatted.Round(time.Millisecond), c.Started.Round(time.Millisecond))
		kafkatest.Report(secBedSection, line)
		t.Log(line)
	}
	alice1, bob1, alice2 := user(t, sec1, "alice"), user(t, sec1, "bob"), user(t, sec2, "alice")

	t.Run("kcat", func(t *testing.T) {
		const topic, n = "bed-kcat", 1000
		c1.CreateTopic(ctx, topic, 3, nil)
		mech := kcatMechanism(ctx, t, b, kcat, c1.Addr(), c1.AuthAs(alice1, kafkatest.ScramSHA512))
		auth := c1.AuthAs(alice1, mech)
		want := sequence("kcat-", n)
		start := time.Now()
		if _, err := runKcat(ctx, b, kcat, "kcat-produce", strings.Join(want, "\n")+"\n",
			append([]string{"-b", c1.Addr(), "-P", "-t", topic, "-X", "enable.idempotence=true", "-X", "acks=all"}, auth.Kcat()...)...); err != nil {
			t.Fatal(err)
		}
		out, err := runKcat(ctx, b, kcat, "kcat-consume", "",
			append([]string{"-b", c1.Addr(), "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%s\n", "-q"}, auth.Kcat()...)...)
		if err != nil {
			t.Fatal(err)
		}
		sameRecords(t, "kcat SCRAM-SHA-512 consumer", want, strings.Fields(out))
		checkHolds(ctx, t, c1, topic, want)
		bedLine(t, "kcat", mech, n, time.Since(start))
	})

	t.Run("java", func(t *testing.T) {
		const topic, n = "bed-java", 2000
		c1.CreateTopic(ctx, topic, 3, nil)
		b := b.Sub(t)
		prodProps, consProps := b.Path("producer.properties"), b.Path("consumer.properties")
		if err := c1.AuthAs(alice1, kafkatest.ScramSHA256).WriteProperties(prodProps); err != nil {
			t.Fatal(err)
		}
		if err := c1.AuthAs(bob1, kafkatest.Plain).WriteProperties(consProps); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		out, err := b.Java("producer-perf", kafkatest.JVM{}, "org.apache.kafka.tools.ProducerPerformance",
			"--bootstrap-server", c1.Addr(), "--topic", topic, "--num-records", strconv.Itoa(n),
			"--payload-monotonic", "--throughput", "-1", "--command-config", prodProps,
			"--command-property", "acks=all", "enable.idempotence=true").CombinedOutput()
		if err != nil || !strings.Contains(string(out), fmt.Sprintf("%d records sent", n)) {
			t.Fatalf("ProducerPerformance (alice, SCRAM-SHA-256): %v\n%s", err, out)
		}
		want := sequence("", n)
		checkHolds(ctx, t, c1, topic, want)
		cmd := b.Java("console-consumer", kafkatest.JVM{}, "org.apache.kafka.tools.consumer.ConsoleConsumer",
			"--bootstrap-server", c1.Addr(), "--topic", topic, "--group", "bed-java",
			"--from-beginning", "--max-messages", strconv.Itoa(n), "--timeout-ms", "60000", "--command-config", consProps)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("console consumer (bob, PLAIN): %v\n%s", err, tail(stderr.String(), 20))
		}
		sameRecords(t, "console consumer (bob, PLAIN)", want, strings.Fields(stdout.String()))
		bedLine(t, "java", "SCRAM-SHA-256+PLAIN", n, time.Since(start))
	})

	t.Run("franz-go", func(t *testing.T) {
		const topic, n = "bed-franz", 2000
		c1.CreateTopic(ctx, topic, 3, nil)
		start := time.Now()
		for _, m := range kafkatest.Mechanisms {
			if err := ping(ctx, c1.Addr(), c1.AuthAs(alice1, m)); err != nil {
				t.Errorf("franz-go as alice with %s: %v", m, err)
			}
		}
		want := sequence("franz-", n)
		prod := newClient(t, c1.Addr(), c1.AuthAs(alice1, kafkatest.ScramSHA512),
			kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		if err := produceSync(ctx, prod, want); err != nil {
			t.Fatalf("franz-go producer (alice, SCRAM-SHA-512): %v", err)
		}
		cons := newClient(t, c1.Addr(), c1.AuthAs(bob1, kafkatest.ScramSHA256),
			kgo.ConsumeTopics(topic), kgo.ConsumerGroup("bed-franz"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		sameRecords(t, "franz-go group consumer (bob, SCRAM-SHA-256)", want, consume(ctx, t, cons, n))
		bedLine(t, "franz-go", "all three", n, time.Since(start))
	})

	t.Run("refused", func(t *testing.T) {
		wrong := kafkatest.User{Name: "alice", Password: "not-alice-secret"}
		for _, tc := range []struct {
			what string
			auth kafkatest.ClientAuth
		}{
			{"wrong password, SCRAM-SHA-512", c1.AuthAs(wrong, kafkatest.ScramSHA512)},
			{"wrong password, SCRAM-SHA-256", c1.AuthAs(wrong, kafkatest.ScramSHA256)},
			{"wrong password, PLAIN", c1.AuthAs(wrong, kafkatest.Plain)},
			{"kafka2's alice on kafka1", c1.AuthAs(alice2, kafkatest.ScramSHA512)},
			{"kafka1's alice on kafka2", c2.AuthAs(alice1, kafkatest.ScramSHA512)},
			{"kafka1's bob on kafka2 (no such user)", c2.AuthAs(bob1, kafkatest.ScramSHA512)},
		} {
			addr := c1.Addr()
			if strings.Contains(tc.what, "on kafka2") {
				addr = c2.Addr()
			}
			err := ping(ctx, addr, tc.auth)
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Errorf("franz-go, %s: got %v, want SASL_AUTHENTICATION_FAILED", tc.what, err)
			}
		}
		if err := ping(ctx, c2.Addr(), c2.AuthAs(alice2, kafkatest.ScramSHA512)); err != nil {
			t.Errorf("franz-go, kafka2's alice on kafka2: %v", err)
		}
		// A client without TLS gets no answer (the broker sees garbage).
		if err := ping(ctx, c1.Addr(), kafkatest.ClientAuth{}); err == nil {
			t.Error("franz-go without TLS or SASL: connected to a SASL_SSL listener")
		}
		out, err := runKcat(ctx, b, kcat, "kcat-wrong-password", "",
			append([]string{"-b", c1.Addr(), "-L", "-m", "10"}, c1.AuthAs(wrong, kafkatest.Plain).Kcat()...)...)
		if err == nil || !strings.Contains(err.Error(), "Authentication failed") {
			t.Errorf("kcat with a wrong password: got %v\n%s, want an authentication failure", err, out)
		}
		props := b.Path("wrong.properties")
		if err := c1.AuthAs(wrong, kafkatest.ScramSHA512).WriteProperties(props); err != nil {
			t.Fatal(err)
		}
		jout, err := b.Java("java-wrong-password", kafkatest.JVM{}, "org.apache.kafka.tools.ProducerPerformance",
			"--bootstrap-server", c1.Addr(), "--topic", "bed-java", "--num-records", "1", "--record-size", "10",
			"--throughput", "-1", "--command-config", props, "--command-property", "max.block.ms=10000").CombinedOutput()
		if !bytes.Contains(jout, []byte("SaslAuthenticationException")) {
			t.Errorf("Java producer with a wrong password: %v, want a SaslAuthenticationException:\n%s", err, tail(string(jout), 20))
		}
	})

	// The runners the gateway security tests use (Java AckedProducer and
	// GroupConsumer, franz-go's), with SASL_SSL settings, straight on kafka1.
	t.Run("load", func(t *testing.T) {
		c1.CreateTopic(ctx, swTopic, 3, nil)
		classes := b.CompileJava()
		scram := c1.AuthAs(alice1, kafkatest.ScramSHA512)
		load := &drillLoad{prefixes: []string{"bed-j-", "bed-g-"}}
		load.producers = []*producerRun{
			javaProducer(t, b, c1.Addr(), classes, swTopic, "bed-j-", "load-java-producer", scram.Java()...),
			franzProducer(t, b, c1.Addr(), swTopic, "bed-g-", "load-franz-producer", scram.MustKgo()...),
		}
		load.consumers = []*consumerRun{
			javaConsumer(t, b, c1.Addr(), classes, swTopic, "load-java-consumer", "bed-load-java", c1.AuthAs(bob1, kafkatest.ScramSHA256).Java()...),
			franzConsumer(t, b, c1.Addr(), swTopic, "load-franz-consumer", "bed-load-franz", scram.MustKgo()...),
		}
		start := time.Now()
		load.waitSteady(t, 90*time.Second)
		load.stop(t, 60*time.Second)
		f := load.figures(time.Time{}, nil)
		if f.errors > 0 || f.lost > 0 || f.acked == 0 {
			t.Errorf("SASL_SSL load on kafka1: %d acknowledged, %d failed, %d lost: %v", f.acked, f.errors, f.lost, f.perConsumer)
		}
		bedLine(t, "runners", "SCRAM-SHA-512/256", f.acked, time.Since(start))
	})

	t.Run("mirrormaker", func(t *testing.T) {
		const topic, n = "bed-mm2", 1000
		c1.CreateTopic(ctx, topic, 3, nil)
		want := sequence("mm-", n)
		if err := produceSync(ctx, c1.Client(kgo.DefaultProduceTopic(topic)), want); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		mm := b.StartMirrorMaker(c1, c2, topic)
		if _, err := mm.CaughtUp(ctx, topic, 180*time.Second); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		checkHolds(ctx, t, c2, topic, want)
		// kafka2's own users read the copy.
		cons := newClient(t, c2.Addr(), c2.AuthAs(alice2, kafkatest.ScramSHA512),
			kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		sameRecords(t, "kafka2's alice reading the copy", want, consume(ctx, t, cons, n))
		line := fmt.Sprintf("MM2      kafka1->kafka2 SASL_SSL both sides: %d records copied %v after MirrorMaker started", n, took.Round(time.Millisecond))
		kafkatest.Report(secBedSection, line)
		t.Log(line)
		if err := mm.Stop(); err != nil {
			t.Log(err)
		}
	})
}

// kcatSCRAMFixed is the first librdkafka whose SCRAM a Kafka 4 broker
// accepts: older ones append the client nonce twice in the client-final-
// message, which Kafka 4.x (fixing CVE-2024-56128) refuses as invalid
// credentials (confluentinc/librdkafka#4895, edenhill/kcat#462). Debian
// bookworm's kcat 1.7.1 links librdkafka 2.0.2.
var kcatSCRAMFixed = [3]int{2, 6, 1}

var librdkafkaVersion = regexp.MustCompile(`librdkafka (\d+)\.(\d+)\.(\d+)`)

// kcatMechanism is the SASL mechanism kcat logs in with: SCRAM-SHA-512,
// or PLAIN where its librdkafka has the SCRAM bug. It then checks that SCRAM
// still fails with that bug's error, so that a fixed librdkafka is noticed.
func kcatMechanism(ctx context.Context, t *testing.T, b *kafkatest.Bed, kcat, addr string, scram kafkatest.ClientAuth) string {
	t.Helper()
	broken, v := kcatSCRAMBroken(kcat)
	if !broken {
		return scram.Mechanism
	}
	_, err := runKcat(ctx, b, kcat, "kcat-scram-bug", "", append([]string{"-b", addr, "-L", "-m", "3"}, scram.Kcat()...)...)
	if err == nil || !strings.Contains(err.Error(), "invalid credentials") {
		t.Errorf("kcat with librdkafka %s and %s: got %v, want the SCRAM nonce bug's invalid credentials; if it works, drop kcatMechanism's fallback",
			v, scram.Mechanism, err)
	}
	t.Logf("KNOWN-LIMITATION: kcat's librdkafka %s cannot log in to Kafka 4 with SCRAM (fixed in librdkafka %d.%d.%d); kcat uses PLAIN over TLS",
		v, kcatSCRAMFixed[0], kcatSCRAMFixed[1], kcatSCRAMFixed[2])
	return kafkatest.Plain
}

// kcatSCRAMBroken says whether kcat's librdkafka has the SCRAM nonce bug,
// and which version it is.
func kcatSCRAMBroken(kcat string) (bool, string) {
	out, _ := exec.Command(kcat, "-V").CombinedOutput()
	m := librdkafkaVersion.FindStringSubmatch(string(out))
	if m == nil {
		return true, "unknown"
	}
	var v [3]int
	for i := range v {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	fixed := v[0] > kcatSCRAMFixed[0] || v[0] == kcatSCRAMFixed[0] && (v[1] > kcatSCRAMFixed[1] || v[1] == kcatSCRAMFixed[1] && v[2] >= kcatSCRAMFixed[2])
	return !fixed, m[1] + "." + m[2] + "." + m[3]
}

func bedLine(t *testing.T, client, mechs string, n int, took time.Duration) {
	res := "PASS"
	if t.Failed() {
		res = "FAIL"
	}
	line := fmt.Sprintf("CLIENT   %-9s %-19s %s records=%d in %v", client, mechs, res, n, took.Round(time.Millisecond))
	kafkatest.Report(secBedSection, line)
	t.Log(line)
}

// runKcat runs kcat with args, stdin as its input, and returns its standard
// output; its standard error goes to <name>.log and, on failure, the error.
func runKcat(ctx context.Context, b *kafkatest.Bed, kcat, name, stdin string, args ...string) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(rctx, kcat, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	os.WriteFile(b.Path(name+".log"), errb.Bytes(), 0o644)
	if err != nil {
		return out.String(), fmt.Errorf("kcat %s: %v\n%s", name, err, tail(errb.String(), 10))
	}
	return out.String(), nil
}

// newClient is a franz-go client of addr logging in with auth, closed when
// the test ends.
func newClient(t *testing.T, addr string, auth kafkatest.ClientAuth, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	sec, err := auth.Kgo()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(addr)}, sec...), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// ping asks addr for its brokers with a new client logging in with auth,
// without retries, and returns what went wrong.
func ping(ctx context.Context, addr string, auth kafkatest.ClientAuth) error {
	sec, err := auth.Kgo()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(0),
		kgo.DialTimeout(5 * time.Second), kgo.RetryTimeout(5 * time.Second)}, sec...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = kadm.NewClient(cl).BrokerMetadata(rctx)
	return err
}

func produceSync(ctx context.Context, cl *kgo.Client, values []string) error {
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = kgo.StringRecord(v)
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// checkHolds checks, directly on c, that topic holds exactly want.
func checkHolds(ctx context.Context, t *testing.T, c *kafkatest.Cluster, topic string, want []string) {
	t.Helper()
	recs, err := c.Values(ctx, topic)
	if err != nil {
		t.Fatalf("reading %s directly from %s: %v", topic, c.Name, err)
	}
	got := make([]string, len(recs))
	for i, r := range recs {
		got[i] = r.Value
	}
	sameRecords(t, topic+" as "+c.Name+" holds it", want, got)
}
