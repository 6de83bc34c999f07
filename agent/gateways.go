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

	"github.com/turnout/turnout/internal/ctlsec"
	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy/adminapi"
	"github.com/turnout/turnout/proxy/clientopts"
	"github.com/turnout/turnout/proxy/config"
	"github.com/turnout/turnout/proxy/tlsconf"
)

// gatewayClients makes the HTTP client for each gateway with an admin URL,
// with its token and CA, at start: a missing file then stops the agent
// rather than the first failover.
func gatewayClients(pol *policy.Policy) (map[string]*http.Client, error) {
	clients := map[string]*http.Client{}
	for _, gw := range pol.Gateways {
		if gw.Admin == "" {
			continue
		}
		c, err := ctlsec.NewClient(gw.TokenFile, gw.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: gateway %s: %w", pol.File, gw.Line, gw.Name, err)
		}
		clients[gw.Name] = c
	}
	return clients, nil
}

// adminClient calls one gateway's admin API.
type adminClient struct {
	gw     policy.Gateway
	client *http.Client
}

func (a *Agent) admin(gw policy.Gateway) adminClient {
	return adminClient{gw, a.gatewayClients[gw.Name]}
}

// restartGateway restarts one gateway and confirms it serves the route from
// the cluster with id clusterID (and, for Turnout gateways, at the epoch).
func (a *Agent) restartGateway(ctx context.Context, gw policy.Gateway, route, domain string, epoch int32, clusterID, fromClusterID string) error {
	ctx, cancel := context.WithTimeout(ctx, gw.Timeout)
	defer cancel()
	if gw.Admin != "" {
		return a.admin(gw).restart(ctx, route, domain, epoch, clusterID)
	}
	cmd := exec.CommandContext(ctx, gw.RestartCommand[0], gw.RestartCommand[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(gw.RestartCommand, " "), err, bytes.TrimSpace(out))
	}
	return confirmThroughRoute(ctx, a.gatewayConfig, route, fromClusterID)
}

// restart tells a Turnout gateway the route's new domain and epoch: it
// writes them into its own config file (so gateways need not share the
// agents' file) and restarts; then its status must show the new cluster.
func (c adminClient) restart(ctx context.Context, route, domain string, epoch int32, clusterID string) error {
	var st adminapi.StatusResponse
	body := adminapi.RestartRequest{Routes: []adminapi.RouteSwitch{{Name: route, Domain: domain, Epoch: epoch}}}
	if err := c.call(ctx, http.MethodPost, "/restart", body, &st); err != nil {
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
				c.gw.Admin, route, clusterID, epoch, describeRoutes(st, route), ctx.Err())
		case <-tick.C:
		}
		st = adminapi.StatusResponse{}
		if err := c.call(ctx, http.MethodGet, "/status", nil, &st); err != nil && ctx.Err() == nil {
			continue // a restarting gateway may not answer for a moment
		}
	}
}

func describeRoutes(st adminapi.StatusResponse, route string) string {
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

func (c adminClient) call(ctx context.Context, method, path string, body any, into *adminapi.StatusResponse) error {
	url := strings.TrimRight(c.gw.Admin, "/") + path
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
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := ctlsec.Unauthorized(resp, answer, fmt.Sprintf("set tokenFile of gateway %s in the policy to a file with the gateway's admin token", c.gw.Name)); err != nil {
		return err
	}
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
	cfg, err := config.LoadClusters(gwConfig)
	if err != nil {
		return err
	}
	r := cfg.Route(route)
	if r == nil {
		return fmt.Errorf("%s has no route %q", gwConfig, route)
	}
	if s := r.Security.SSL; s != nil && s.ClientAuth == tlsconf.ClientAuthRequired {
		// The check must present a certificate the route accepts, and
		// the file names one only in the route's own keystore: only here
		// does an agent read the gateway's keys.
		if cfg, err = config.Load(gwConfig); err != nil {
			return err
		}
		r = cfg.Route(route)
	}
	opts, err := clientopts.Route(cfg, r)
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
