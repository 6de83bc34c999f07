package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy"
	"github.com/turnout/turnout/proxy/config"
)

// writeGatewayConfig points a route at a domain in the gateway config file,
// atomically, changing nothing else. The file's own epoch guards it: a
// writer with an older epoch than the file's is refused, so a stale leader
// can never put a route back.
func writeGatewayConfig(path, route, domain string, epoch int32) (changed bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading the gateway config: %w", err)
	}
	cfg, err := config.Parse(path, data)
	if err != nil {
		return false, err
	}
	r := cfg.Route(route)
	if r == nil {
		return false, fmt.Errorf("%s has no route %q", path, route)
	}
	d := cfg.Domain(domain)
	if d == nil {
		return false, fmt.Errorf("%s has no streaming domain %q", path, domain)
	}
	if r.StreamingDomain.Name == domain && r.Epoch == epoch {
		return false, nil // written already, by us or a leader before us
	}
	// Keep the listener the route used if the new domain has one by that
	// id (the usual setup names them alike), else take the domain's first.
	id := r.StreamingDomain.BootstrapServerID
	if d.BootstrapServer(id) == nil {
		id = d.KafkaCluster.BootstrapServers[0].ID
	}
	out, err := config.SetRoute(data, route, domain, id, epoch)
	if err != nil {
		return false, err
	}
	if err := config.WriteFileAtomic(path, out); err != nil {
		return false, err
	}
	return true, nil
}

// restartGateway restarts one gateway and confirms it serves the route from
// the cluster with id clusterID (and, for Turnout gateways, at the epoch).
func restartGateway(ctx context.Context, gw policy.Gateway, gwConfig, route string, epoch int32, clusterID, fromClusterID string) error {
	ctx, cancel := context.WithTimeout(ctx, gw.Timeout)
	defer cancel()
	if gw.Admin != "" {
		return restartByAdmin(ctx, strings.TrimRight(gw.Admin, "/"), route, epoch, clusterID)
	}
	cmd := exec.CommandContext(ctx, gw.RestartCommand[0], gw.RestartCommand[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(gw.RestartCommand, " "), err, bytes.TrimSpace(out))
	}
	return confirmThroughRoute(ctx, gwConfig, route, fromClusterID)
}

func restartByAdmin(ctx context.Context, admin, route string, epoch int32, clusterID string) error {
	var st proxy.StatusResponse
	err := adminCall(ctx, http.MethodPost, admin+"/restart", &st)
	if err != nil {
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
		if err := adminCall(ctx, http.MethodGet, admin+"/status", &st); err != nil && ctx.Err() == nil {
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

func adminCall(ctx context.Context, method, url string, into *proxy.StatusResponse) error {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("%s %s: %d, not a gateway status: %s", method, url, resp.StatusCode, bytes.TrimSpace(body))
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.Endpoint), kgo.RequestRetries(0))
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
