package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy"
	"github.com/turnout/turnout/proxy/config"
)

// restartGateway restarts one gateway and confirms it serves the route from
// the cluster with id clusterID (and, for Turnout gateways, at the epoch).
func restartGateway(ctx context.Context, gw policy.Gateway, gwConfig, route, domain string, epoch int32, clusterID, fromClusterID string) error {
	ctx, cancel := context.WithTimeout(ctx, gw.Timeout)
	defer cancel()
	if gw.Admin != "" {
		return restartByAdmin(ctx, strings.TrimRight(gw.Admin, "/"), route, domain, epoch, clusterID)
	}
	cmd := exec.CommandContext(ctx, gw.RestartCommand[0], gw.RestartCommand[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(gw.RestartCommand, " "), err, bytes.TrimSpace(out))
	}
	return confirmThroughRoute(ctx, gwConfig, route, fromClusterID)
}

// restartByAdmin tells a Turnout gateway the route's new domain and epoch:
// it writes them into its own config file (so gateways need not share the
// agents' file) and restarts; then its status must show the new cluster.
func restartByAdmin(ctx context.Context, admin, route, domain string, epoch int32, clusterID string) error {
	var st proxy.StatusResponse
	body := proxy.RestartRequest{Routes: []proxy.RouteSwitch{{Name: route, Domain: domain, Epoch: epoch}}}
	if err := adminCall(ctx, http.MethodPost, admin+"/restart", body, &st); err != nil {
		return err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, r := range st.Routes {
			if r.Name != route {
				continue
			}
			// The gateway learns the cluster id from the cluster; until
			// the first metadata answer it may still be empty.
			if r.ConfigEpoch == epoch && (r.ClusterID == clusterID || clusterID == "") && r.ClusterID != "" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not report route %s on cluster %s at epoch %d in time (last status: %s): %w",
				admin, route, clusterID, epoch, describeRoutes(st, route), ctx.Err())
		case <-tick.C:
		}
		st = proxy.StatusResponse{}
		if err := adminCall(ctx, http.MethodGet, admin+"/status", nil, &st); err != nil && ctx.Err() == nil {
			continue // a restarting gateway may not answer for a moment
		}
	}
}

func describeRoutes(st proxy.StatusResponse, route string) string {
	for _, r := range st.Routes {
		if r.Name == route {
			return fmt.Sprintf("domain %s, cluster %q, epoch %d", r.Domain, r.ClusterID, r.ConfigEpoch)
		}
	}
	if st.Error != "" {
		return st.Error
	}
	return "route not served"
}

func adminCall(ctx context.Context, method, url string, body any, into *proxy.StatusResponse) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(answer, into); err != nil {
		return fmt.Errorf("%s %s: %d, not a gateway status: %s", method, url, resp.StatusCode, bytes.TrimSpace(answer))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d: %s", method, url, resp.StatusCode, into.Error)
	}
	return nil
}

// confirmThroughRoute checks a gateway restarted by a command, which has no
// status to ask: the route's endpoint must answer metadata, and not with the
// old cluster's id. (A Turnout gateway shows clients a route-stable id, so
// for it this only proves the route serves; use its admin API instead.)
func confirmThroughRoute(ctx context.Context, gwConfig, route, fromClusterID string) error {
	cfg, err := config.Load(gwConfig)
	if err != nil {
		return err
	}
	r := cfg.Route(route)
	if r == nil {
		return fmt.Errorf("%s has no route %q", gwConfig, route)
	}
	opts, err := proxy.RouteOpts(cfg, r)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts, kgo.RequestRetries(0))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
		switch {
		case err == nil && md.Cluster == fromClusterID && fromClusterID != "":
			last = fmt.Errorf("route endpoint %s still answers as cluster %s", r.Endpoint, md.Cluster)
		case err == nil:
			return nil
		default:
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("route endpoint %s: %w", r.Endpoint, errors.Join(last, ctx.Err()))
		case <-tick.C:
		}
	}
}
