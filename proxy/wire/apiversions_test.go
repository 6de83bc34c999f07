package wire_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/turnout/turnout/proxy/wire"
)

func TestApiVersionsResponseCapping(t *testing.T) {
	for v := int16(0); v <= new(kmsg.ApiVersionsResponse).MaxVersion(); v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{
				{ApiKey: 0, MinVersion: 3, MaxVersion: 99},  // Produce: rewritten
				{ApiKey: 1, MinVersion: 4, MaxVersion: 99},  // Fetch: rewritten
				{ApiKey: 2, MinVersion: 50, MaxVersion: 60}, // ListOffsets: nothing the gateway can parse
				{ApiKey: 3, MinVersion: 0, MaxVersion: 99},  // Metadata: rewritten
				{ApiKey: 12, MinVersion: 0, MaxVersion: 99}, // Heartbeat: forwarded untouched
				{ApiKey: 17, MinVersion: 0, MaxVersion: 99}, // SaslHandshake: v0 still offered, for librdkafka
				{ApiKey: 18, MinVersion: 0, MaxVersion: 99}, // ApiVersions itself
				{ApiKey: 999, MinVersion: 0, MaxVersion: 5}, // unknown to kmsg
			}
			resp.ThrottleMillis = 3
			resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{{Name: "metadata.version", MinVersion: 1, MaxVersion: 20}}
			resp.FinalizedFeaturesEpoch = 9
			frame := encodeResponse(resp, v)
			out, inPlace := rewriteResponse(t, kmsg.ApiVersions, v, frame, newFake(base3))
			if inPlace {
				t.Fatalf("capping must produce a new frame")
			}
			got := kmsg.NewPtrApiVersionsResponse()
			decodeResponse(t, out, got, v)
			want := []kmsg.ApiVersionsResponseApiKey{
				{ApiKey: 0, MinVersion: 3, MaxVersion: wire.MaxVersion(0)},
				{ApiKey: 1, MinVersion: 4, MaxVersion: wire.MaxVersion(1)},
				{ApiKey: 3, MinVersion: 0, MaxVersion: wire.MaxVersion(3)},
				{ApiKey: 12, MinVersion: 0, MaxVersion: 99},
				{ApiKey: 17, MinVersion: 0, MaxVersion: wire.MaxVersion(17)},
				{ApiKey: 18, MinVersion: 0, MaxVersion: wire.MaxVersion(18)},
				{ApiKey: 999, MinVersion: 0, MaxVersion: 5},
			}
			if !reflect.DeepEqual(got.ApiKeys, want) {
				t.Errorf("api keys\n got %+v\nwant %+v", got.ApiKeys, want)
			}
			if wire.MaxVersion(3) != new(kmsg.MetadataRequest).MaxVersion() || wire.MaxVersion(3) >= 99 {
				t.Errorf("Metadata capped to %d", wire.MaxVersion(3))
			}
			if v >= 1 && got.ThrottleMillis != 3 {
				t.Errorf("throttle %d", got.ThrottleMillis)
			}
			if v >= 3 && (len(got.SupportedFeatures) != 1 || got.FinalizedFeaturesEpoch != 9) {
				t.Errorf("features lost: %+v epoch %d", got.SupportedFeatures, got.FinalizedFeaturesEpoch)
			}
		})
	}
}

// A broker that does not support the ApiVersions version a client asked for
// answers in version 0 with UNSUPPORTED_VERSION.
func TestApiVersionsV0ErrorAnswer(t *testing.T) {
	for _, asked := range []int16{3, 4, 5} {
		t.Run(fmt.Sprintf("asked v%d", asked), func(t *testing.T) {
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.ErrorCode = 35
			resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: 0, MaxVersion: 2}}
			frame := encodeResponse(resp, 0)
			out, err := wire.RewriteResponse(18, asked, frame, newFake(0))
			if err != nil {
				t.Fatalf("RewriteResponse: %v", err)
			}
			if out == nil {
				out = frame
			}
			got := kmsg.NewPtrApiVersionsResponse()
			decodeResponse(t, out, got, 0)
			if got.ErrorCode != 35 || !reflect.DeepEqual(got.ApiKeys, resp.ApiKeys) {
				t.Errorf("got error %d keys %+v", got.ErrorCode, got.ApiKeys)
			}
		})
	}
}

func TestApiVersionsTooNew(t *testing.T) {
	frame := wire.ApiVersionsTooNew(testCorr)
	got := kmsg.NewPtrApiVersionsResponse()
	decodeResponse(t, frame, got, 0)
	if got.ErrorCode != 35 {
		t.Errorf("error code %d, want 35", got.ErrorCode)
	}
	want := []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: 0, MaxVersion: new(kmsg.ApiVersionsRequest).MaxVersion()}}
	if !reflect.DeepEqual(got.ApiKeys, want) {
		t.Errorf("api keys %+v, want %+v", got.ApiKeys, want)
	}
	// The whole frame is a v0 body: nothing trails it.
	if n := len(got.AppendTo(nil)); n != len(frame)-8 {
		t.Errorf("body of %d bytes, frame carries %d", n, len(frame)-8)
	}
}

func TestRewrites(t *testing.T) {
	for _, c := range []struct {
		key  kmsg.Key
		want bool
	}{
		{kmsg.Produce, true}, {kmsg.Fetch, true}, {kmsg.ListOffsets, true}, {kmsg.Metadata, true}, {kmsg.OffsetCommit, true}, {kmsg.OffsetFetch, true}, {kmsg.FindCoordinator, true}, {kmsg.ApiVersions, true},
		{kmsg.InitProducerID, true}, {kmsg.DescribeCluster, true}, {kmsg.ConsumerGroupHeartbeat, true}, {kmsg.ShareFetch, true}, {kmsg.ShareAcknowledge, true},
		{kmsg.Heartbeat, false}, {kmsg.JoinGroup, false}, {kmsg.SyncGroup, false}, {kmsg.Key(999), false}, {kmsg.Key(-1), false},
	} {
		if got := wire.Rewrites(c.key); got != c.want {
			t.Errorf("Rewrites(%d) = %v, want %v", c.key, got, c.want)
		}
	}
}
