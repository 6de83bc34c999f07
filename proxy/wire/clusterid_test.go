package wire_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Clients see the route's cluster id (KIP-1242 clients check it), the cluster
// sees its own.
func TestClusterIDs(t *testing.T) {
	t.Run("Metadata response", func(t *testing.T) {
		for _, c := range []struct {
			name       string
			client, in *string
			want       string
		}{
			{"known", strp(routeCluster), strp(upstreamCluster), routeCluster},
			{"unknown to the route", strp(""), strp(upstreamCluster), "<nil>"},
			{"null stays null", strp(routeCluster), nil, "<nil>"},
		} {
			for _, v := range []int16{2, 9, 13} {
				t.Run(fmt.Sprintf("%s/v%d", c.name, v), func(t *testing.T) {
					tr := newFake(0)
					tr.clientCluster = *c.client
					resp := kmsg.NewPtrMetadataResponse()
					resp.ClusterID = c.in
					out, _ := rewriteResponse(t, kmsg.Metadata, v, encodeResponse(resp, v), tr)
					got := kmsg.NewPtrMetadataResponse()
					decodeResponse(t, out, got, v)
					if rack(got.ClusterID) != c.want {
						t.Errorf("ClusterID %q, want %q", rack(got.ClusterID), c.want)
					}
				})
			}
		}
	})
	t.Run("ApiVersions request", func(t *testing.T) {
		for _, c := range []struct {
			name     string
			upstream string
			in       *string
			node     int32
			wantID   string
			wantNode int32
		}{
			{"route's id", upstreamCluster, strp(routeCluster), 3, upstreamCluster, 3},
			{"misrouted id left for the broker to refuse", upstreamCluster, strp("elsewhere"), 3, "elsewhere", 3},
			{"bootstrapping", upstreamCluster, nil, -1, "<nil>", -1},
			{"upstream id not known yet", "", strp(routeCluster), 3, "<nil>", -1},
		} {
			t.Run(c.name, func(t *testing.T) {
				tr := newFake(0)
				tr.upstreamCluster = c.upstream
				req := kmsg.NewPtrApiVersionsRequest()
				req.ClientSoftwareName, req.ClientSoftwareVersion = "franz-go", "1.20"
				req.ClusterID, req.NodeID = c.in, c.node
				out, _ := rewriteRequest(t, requestFrame(req, 5), tr)
				got := kmsg.NewPtrApiVersionsRequest()
				decodeRequest(t, out, got, 5)
				if rack(got.ClusterID) != c.wantID || got.NodeID != c.wantNode {
					t.Errorf("cluster id %q node %d, want %q %d", rack(got.ClusterID), got.NodeID, c.wantID, c.wantNode)
				}
				if got.ClientSoftwareName != "franz-go" || got.ClientSoftwareVersion != "1.20" {
					t.Errorf("client software %q %q", got.ClientSoftwareName, got.ClientSoftwareVersion)
				}
			})
		}
	})
}
