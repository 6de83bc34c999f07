package proxy_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// largeProduce is a Produce of about 1.4 MiB: two batches of 700 KiB, each
// under the broker's message.max.bytes.
func largeProduce() *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks = 1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p := range int32(2) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = batch(strings.Repeat("x", 700<<10))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// batch encodes one record batch holding value.
func batch(value string) []byte {
	r := kmsg.Record{Value: []byte(value)}
	rb := kmsg.RecordBatch{Magic: 2, NumRecords: 1, FirstTimestamp: 1, MaxTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		Records: r.AppendTo(nil)}
	return rb.AppendTo(nil)
}

// produceAnswered sends req and fails the test unless it is answered (the
// bootstrap broker need not lead the partitions: an error code will do).
func (r *rawConn) produceAnswered(req *kmsg.ProduceRequest) {
	r.t.Helper()
	r.write(r.frame(req))
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = req.Version
	r.read(resp) // fails the test if the gateway closed the connection
}

// TestFirstProduceOverOneMiB: a producer whose first request after
// ApiVersions (or after SASL) is a Produce over 1 MiB is served: producers
// with max.request.size over 1 MiB, franz-go's dedicated produce
// connections, producers reconnecting after a drain all do that.
func TestFirstProduceOverOneMiB(t *testing.T) {
	b := newBed(t)
	c := b.rawConn()
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
	c.write(c.frame(av))
	avResp := kmsg.NewPtrApiVersionsResponse()
	avResp.Version = 3
	c.read(avResp)
	c.produceAnswered(largeProduce()) // after ApiVersions

	sb := newBedWith(t, bedSetup{clusterOpts: [2][]kfake.Opt{{kfake.EnableSASL(), kfake.Superuser("PLAIN", "p", "p-pw")}}})
	c = sb.rawConn()
	if code := c.plainLogin("p", "p-pw"); code != 0 {
		t.Fatalf("PLAIN login answered error %d", code)
	}
	c.produceAnswered(largeProduce()) // after SASL, through a passthrough route

	// Where Turnout logs in to the cluster itself, the gateway caps the
	// frames until the exchange is done, and knows when it is.
	ib := saslClusterBed(t)
	c = ib.rawConn()
	if code := c.plainLogin("p", "p-pw"); code != 0 {
		t.Fatalf("PLAIN login answered error %d", code)
	}
	c.produceAnswered(largeProduce()) // after PLAIN's one round
	c = ib.rawConn()
	c.scramRounds(1)
	c.produceAnswered(largeProduce()) // after SCRAM's two rounds
}

// saslClusterBed is a bed whose cluster 1 requires SASL, with Turnout's own
// identity on it configured (for the route's metadata client).
func saslClusterBed(t *testing.T) *bed {
	return newBedWith(t, bedSetup{
		clusterOpts: [2][]kfake.Opt{{kfake.EnableSASL(), kfake.Superuser("PLAIN", "p", "p-pw"),
			kfake.Superuser("SCRAM-SHA-256", "s", "s-pw"), kfake.Superuser("SCRAM-SHA-512", "turnout", "turnout-pw")}},
		bootstrap: "            sasl: {mechanism: SCRAM-SHA-512, username: turnout, password: {value: turnout-pw}}\n",
	})
}

// scramRounds logs in with SCRAM-SHA-256 as s up to and including round
// last (0, the first: the server's first message; 1: its proof), and fails
// the test unless the cluster accepts each.
func (r *rawConn) scramRounds(last int) {
	r.t.Helper()
	sess, msg, err := scram.Auth{User: "s", Pass: "s-pw"}.AsSha256Mechanism().Authenticate(context.Background(), "")
	if err != nil {
		r.t.Fatal(err)
	}
	r.saslHandshake("SCRAM-SHA-256")
	for round := 0; round <= last; round++ {
		resp := r.saslAuthenticate(msg)
		if resp.ErrorCode != 0 {
			r.t.Fatalf("SCRAM round %d answered %v", round, kerr.ErrorForCode(resp.ErrorCode))
		}
		if _, msg, err = sess.Challenge(resp.SASLAuthBytes); err != nil {
			r.t.Fatalf("SCRAM round %d: %v", round, err)
		}
	}
}

// TestFramesWhileAuthenticatingAreSmall: while a client authenticates (on
// a passthrough route from its SaslHandshake until the cluster accepted
// the exchange, or from its first frame where Turnout's own identity says
// the cluster requires SASL; on a route that swaps credentials until the
// gateway authenticated it) a frame over 1 MiB closes its connection, as
// Kafka caps frames read during SASL.
func TestFramesWhileAuthenticatingAreSmall(t *testing.T) {
	closes := func(b *bed, c *rawConn, what string) {
		t.Helper()
		before := b.counter("turnout_gateway_frame_errors_total")
		c.write([]byte{0, 0x20, 0, 0, 0, 0, 0, 0}) // 2 MiB announced
		c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: a 2 MiB frame: read %v, want the connection closed", what, err)
		}
		if got := b.counter("turnout_gateway_frame_errors_total"); got != before+1 {
			t.Errorf("%s: frame errors went from %v to %v, want one more", what, before, got)
		}
	}
	b := newBedWith(t, bedSetup{clusterOpts: [2][]kfake.Opt{{kfake.EnableSASL(), kfake.Superuser("PLAIN", "p", "p-pw")}}})
	c := b.rawConn()
	c.saslHandshake("PLAIN")
	closes(b, c, "passthrough, after SaslHandshake")

	sw, _ := newSwapBed(t, "              mechanism: PLAIN\n", 0)
	closes(sw, sw.rawConn(), "swap, before authentication")

	// Where the cluster is known to require SASL, a client that skips it,
	// or has not finished it, is capped all the same.
	ib := saslClusterBed(t)
	closes(ib, ib.rawConn(), "passthrough to a SASL cluster, no SaslHandshake")
	c = ib.rawConn()
	c.scramRounds(0)
	closes(ib, c, "passthrough to a SASL cluster, after SCRAM's first round")
}
