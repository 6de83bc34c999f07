package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy"
	"github.com/turnout/turnout/proxy/adminapi"
	"github.com/turnout/turnout/proxy/config"
)

// restartBound is how long one restart may take in these tests: the bed's
// drain timeout (2s), learning the new cluster, and room for a slow machine.
const restartBound = 20 * time.Second

// restartWithin posts /restart and fails the test unless it is answered
// within restartBound.
func (b *bed) restartWithin(what string) (int, adminapi.StatusResponse) {
	b.t.Helper()
	hc := &http.Client{Timeout: restartBound}
	resp, err := hc.Post(b.admin.URL+"/restart", "application/json", nil)
	if err != nil {
		b.t.Fatalf("%s: not answered within %v: %v", what, restartBound, err)
	}
	defer resp.Body.Close()
	var st adminapi.StatusResponse
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, st
}

// metadataFrame is a Metadata request for one topic, as a raw frame.
func metadataFrame(topic string, correlationID int32) []byte {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, correlationID)
}

// TestRestartStorm switches the route back and forth 30 times while clients
// keep opening connections and producing: connections that dial across a
// restart must not hang it, every restart answers, and the gateway still
// serves afterwards.
func TestRestartStorm(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 4 {
		wg.Add(1)
		go func() { // connect, ask, hang up: many sessions dial across each switch
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := net.DialTimeout("tcp", b.endpoint(), time.Second)
				if err != nil {
					continue
				}
				c.SetDeadline(time.Now().Add(2 * time.Second))
				c.Write(metadataFrame(topic, 1))
				c.Read(make([]byte, 64))
				c.Close()
			}
		}()
	}
	for range 2 {
		cl := b.client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0), kgo.RecordRetries(1000))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				cl.ProduceSync(pctx, kgo.StringRecord("storm"))
				pcancel()
			}
		}()
	}
	const restarts = 30
	for i := 1; i <= restarts; i++ {
		b.writeConfig(i%2, int32(i))
		code, st := b.restartWithin(fmt.Sprintf("restart %d of %d", i, restarts))
		if code != http.StatusOK || st.Routes[0].ConfigEpoch != int32(i) {
			t.Fatalf("restart %d of %d answered %d %+v", i, restarts, code, st)
		}
	}
	cancel()
	wg.Wait()
	cl := b.client(kgo.DefaultProduceTopic(topic))
	pctx, pcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx, kgo.StringRecord("after the storm")).FirstErr(); err != nil {
		t.Fatalf("produce after the restart storm: %v", err)
	}
}

// TestDrainOfClientThatNeverReads: a client that sends requests and never
// reads their responses fills its socket; a switch still drains and closes
// its connection within the drain timeout.
func TestDrainOfClientThatNeverReads(t *testing.T) {
	const wide = "wide" // its metadata is large: many of its responses fill any socket
	b := newBedWith(t, bedSetup{clusterOpts: [2][]kfake.Opt{{kfake.SeedTopics(8000, wide)}}})
	var forwarded atomic.Int32
	c0 := b.clusters[0]
	c0.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c0.KeepControl()
		if m := req.(*kmsg.MetadataRequest); len(m.Topics) == 1 && m.Topics[0].Topic != nil && *m.Topics[0].Topic == wide {
			forwarded.Add(1)
		}
		return nil, nil, false
	})

	conn, err := net.Dial("tcp", b.endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := conn.(*net.TCPConn)
	c.SetReadBuffer(4096)
	const sent = 64
	go func() { // returns once the gateway closes the connection, or at the deadline
		c.SetWriteDeadline(time.Now().Add(time.Minute))
		for i := range sent {
			if _, err := c.Write(metadataFrame(wide, int32(i+1))); err != nil {
				return
			}
		}
	}()
	// Each response is about 330 KB: 20 of them are more than the client's
	// and the gateway's socket buffers hold together (a few MB), so the
	// drain cannot deliver them all.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, ctx, "20 of the client's requests reached the cluster", func() bool { return forwarded.Load() >= 20 })

	b.writeConfig(1, 1)
	if code, st := b.restartWithin("the switch draining a client that never reads"); code != http.StatusOK || st.Routes[0].Domain != "kafka2-domain" {
		t.Fatalf("switch answered %d %+v", code, st)
	}
	b.rawConn().metadata() // and the gateway serves
}

// TestLargeFramesOfAnsweredClient: a client the cluster has answered may
// send frames up to the configured limit.
func TestLargeFramesOfAnsweredClient(t *testing.T) {
	b := newBed(t)
	c := b.rawConn()
	c.metadata()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	for i := range 9000 { // 9000 names of 240 bytes: a frame over 2 MiB
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(fmt.Sprintf("%0240d", i))
		req.Topics = append(req.Topics, rt)
	}
	frame := c.frame(req)
	if len(frame) < 2<<20 {
		t.Fatalf("the test's frame is only %d bytes", len(frame))
	}
	c.write(frame)
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version = 9
	c.read(resp)
	if len(resp.Topics) != len(req.Topics) {
		t.Fatalf("a 2 MiB request of an answered client got %d topics back, want %d", len(resp.Topics), len(req.Topics))
	}
}

// TestRestartRefusesToMoveRouteBack: a configuration file that points a
// route at an older epoch than the gateway serves (a restored backup), or at
// another domain at the same epoch, is refused with 409 and the route stays;
// a new gateway process on that file refuses to start, since the epoch
// served is kept beside the file.
func TestRestartRefusesToMoveRouteBack(t *testing.T) {
	b := newBed(t)
	b.writeConfig(1, 2)
	if code, st := b.restartWithin("the switch"); code != http.StatusOK || st.Routes[0].Domain != "kafka2-domain" {
		t.Fatalf("switch answered %d %+v", code, st)
	}
	for _, tc := range []struct {
		name    string
		cluster int
		epoch   int32
		want    string
	}{
		{"older epoch", 0, 1, "gateway.yaml.epochs), newer than 1"},
		{"same epoch, other domain", 0, 2, "gateway.yaml.epochs); epoch 2 cannot also point it at kafka1-domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.writeConfig(tc.cluster, tc.epoch)
			code, st := b.restartWithin("a restart on a stale file")
			if code != http.StatusConflict || !strings.Contains(st.Error, tc.want) || !strings.Contains(st.Error, b.path) {
				t.Fatalf("answered %d %q; want 409 naming %s and %q", code, st.Error, b.path, tc.want)
			}
			if r := st.Routes[0]; r.Domain != "kafka2-domain" || r.ConfigEpoch != 2 {
				t.Fatalf("the route moved to %s at epoch %d", r.Domain, r.ConfigEpoch)
			}
		})
	}

	// A new process on the restored backup: the epoch served outlived the
	// old one.
	b.writeConfig(0, 1)
	b.gw.Close(context.Background())
	gw := proxy.New(b.path, testLogger(t), proxy.NewMetrics())
	t.Cleanup(func() { gw.Close(context.Background()) })
	if err := gw.Start(context.Background()); !errors.Is(err, config.ErrStaleEpoch) {
		t.Fatalf("a new gateway process on a file moving the route back started: %v", err)
	}
	b.writeConfig(1, 3)
	if err := gw.Start(context.Background()); err != nil {
		t.Fatalf("a new gateway process on a newer file: %v", err)
	}
	if st := gw.Status(); st[0].Domain != "kafka2-domain" || st[0].ConfigEpoch != 3 {
		t.Fatalf("the new process serves %+v", st)
	}
}

// TestConsumerPastResyncWindowIsReset: a consumer that keeps the old
// cluster's positions past the resync window (one outside any group never
// fetches committed offsets) is not served the new cluster's records from
// those offsets: its fetches are answered OFFSET_OUT_OF_RANGE, so it resets
// its position on the new cluster (here to the start) and reads every
// record there.
func TestConsumerPastResyncWindowIsReset(t *testing.T) {
	defer proxy.SetResyncWait(500 * time.Millisecond)()
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	produce := func(cl *kgo.Client, prefix string, n int) {
		t.Helper()
		for i := range n {
			r := &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	manual := kgo.RecordPartitioner(kgo.ManualPartitioner())
	produce(b.client(manual), "old", 5)
	direct, err := kgo.NewClient(kgo.SeedBrokers(b.clusters[1].ListenAddrs()...), manual)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	produce(direct, "new", 20) // the new cluster's offsets 5..19 are other records

	consumer := b.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	var seen []string
	for len(seen) < 5 {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen = append(seen, string(r.Value)) })
		if ctx.Err() != nil {
			t.Fatalf("consumed %v from the old cluster", seen)
		}
	}
	b.writeConfig(1, 1)
	if code, _ := b.restartWithin("the switch"); code != http.StatusOK {
		t.Fatalf("switch answered %d", code)
	}
	// A commit of a partition whose position it has not reset would store
	// the old cluster's offset: refused, while another client's goes on.
	commit := func(cl *kgo.Client) int16 {
		t.Helper()
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = "simple", -1
		ct := kmsg.NewOffsetCommitRequestTopic()
		ct.Topic, ct.TopicID = topic, proxy.StableTopicID("switchover-route", topic) // by name or id, as the version wants
		cp := kmsg.NewOffsetCommitRequestTopicPartition()
		cp.Partition, cp.Offset = 1, 5
		ct.Partitions = append(ct.Partitions, cp)
		req.Topics = append(req.Topics, ct)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(consumer); code != kerr.UnknownMemberID.Code {
		t.Errorf("a commit of the old cluster's offset after the switch answered %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}
	if code := commit(b.client(kgo.ClientID("other"))); code != 0 {
		t.Errorf("another client's commit answered %v", kerr.ErrorForCode(code))
	}
	seen = nil
	for !slices.Contains(seen, "new-19") {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen = append(seen, string(r.Value)) })
		if ctx.Err() != nil {
			t.Fatalf("consumed %v after the switch", seen)
		}
	}
	if !slices.Contains(seen, "new-0") {
		t.Fatalf("after the switch the consumer read %v: it went on from the old cluster's offset 5 instead of resetting", seen)
	}
	if got := b.counter("turnout_gateway_old_offsets_refused_total", "api", "Fetch"); got == 0 {
		t.Error("no refused fetch counted")
	}
	if got := b.counter("turnout_gateway_old_offsets_refused_total", "api", "OffsetCommit"); got != 1 {
		t.Errorf("%v refused commit partitions counted, want 1", got)
	}
}
