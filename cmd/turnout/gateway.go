package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"log/slog"

	"github.com/turnout/turnout/agent"
	"github.com/turnout/turnout/internal/ctlsec"
	"github.com/turnout/turnout/policy"
	"github.com/turnout/turnout/proxy"
	"github.com/turnout/turnout/proxy/config"
	"gopkg.in/yaml.v3"
)

func runGateway(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("gateway", stderr)
	path := fs.String("config", "", "gateway configuration file (Confluent Gateway schema)")
	admin := fs.String("admin", "", "admin HTTP address (default: the config's admin section, else 127.0.0.1:9190)")
	newLogger := logFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("%w: --config is required", errUsage)
	}
	log, err := newLogger(stderr)
	if err != nil {
		return err
	}

	// The admin listener comes first: a gateway whose admin API would be
	// open to anyone must not start serving routes at all.
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	addr := *admin
	if addr == "" {
		addr = cfg.AdminAddr()
	}
	sec := ctlsec.Server{
		TokenFile: cfg.Admin.TokenFile, CertFile: cfg.Admin.TLS.CertFile, KeyFile: cfg.Admin.TLS.KeyFile,
		TokenSetting: "admin.tokenFile in " + *path,
	}
	ln, token, err := sec.Listen(addr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	metrics := proxy.NewMetrics()
	gw := proxy.New(*path, log, metrics)
	if err := gw.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	handler := ctlsec.Guard(token, proxy.AdminHandler(gw, metrics, cfg.MetricsEnabled()))
	srv := ctlsec.AdminLimits.Server(handler)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("gateway ready", "config", *path, "admin", ln.Addr().String(),
		"admin_tls", sec.CertFile != "", "admin_token", token != "")

	err = waitGateway(ctx, gw, served, log)
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	gw.Close(shutdown)
	log.Info("gateway stopped")
	return err
}

// waitGateway restarts the gateway on SIGHUP until the context ends or the
// admin server fails.
func waitGateway(ctx context.Context, gw *proxy.Gateway, served <-chan error, log *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if err := gw.Restart(ctx); err != nil {
				log.Error("restart on SIGHUP failed", "err", err)
				continue
			}
			log.Info("restarted on SIGHUP")
		case err := <-served:
			return fmt.Errorf("admin server: %w", err)
		case <-ctx.Done():
			log.Info("shutting down: draining connections")
			return nil
		}
	}
}

func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return fmt.Errorf("%w: want a gateway configuration file and optionally a policy file", errUsage)
	}
	if fs.NArg() == 1 && isPolicy(fs.Arg(0)) {
		return validatePolicyAlone(fs.Arg(0), stdout)
	}
	cfg, err := config.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	// The files auth swap reads (users, templates, stores) are checked as
	// the gateway would read them at start.
	if err := proxy.CheckAuth(cfg); err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	fmt.Fprintf(stdout, "%s: OK\n", fs.Arg(0))
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stderr, "warning: INSECURE: "+w)
	}
	if fs.NArg() == 2 {
		pol, err := policy.Load(fs.Arg(1))
		if err != nil {
			return err
		}
		if _, err := agent.CheckConfigs(pol, cfg); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: OK, and it agrees with %s\n", fs.Arg(1), fs.Arg(0))
	}
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		plan := cfg.PortPlan(r)
		fmt.Fprintf(stdout, "route %s: %s -> %s/%s (epoch %d); bootstrap port %d",
			r.Name, r.Endpoint, r.StreamingDomain.Name, r.StreamingDomain.BootstrapServerID, r.Epoch, plan.Bootstrap)
		if n := len(plan.Brokers); n > 0 {
			fmt.Fprintf(stdout, ", %d broker ports %d..%d", n, plan.Brokers[0].Port, plan.Brokers[n-1].Port)
		}
		if r.HostStrategy() {
			fmt.Fprintf(stdout, ", brokers on the same port by TLS server name %s", r.BrokerIdentificationStrategy.Pattern)
		}
		if r.Security.SSL != nil {
			fmt.Fprintf(stdout, "; TLS, client certificates %s", r.Security.SSL.ClientAuth)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

// isPolicy reports whether a file's top-level keys are a policy's rather
// than a gateway config's: the two share only routes, and a policy given
// where the gateway config goes would otherwise be reported as a gateway
// config full of unknown keys.
func isPolicy(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var top map[string]any
	if yaml.Unmarshal(data, &top) != nil {
		return false
	}
	policyKeys, gatewayKeys := 0, 0
	for k := range top {
		switch k {
		case "probe", "health", "failover", "replication", "gateways", "gatewayConfig", "signalFile":
			policyKeys++
		case "gateway", "streamingDomains", "admin", "secretStores", "limits":
			gatewayKeys++
		}
	}
	return policyKeys > 0 && gatewayKeys == 0
}

// validatePolicyAlone checks a policy on its own and says how to check it
// against the gateway config it governs, which is where most of its
// mistakes (a route or domain the gateway does not have) would show.
func validatePolicyAlone(path string, stdout io.Writer) error {
	pol, err := policy.Load(path)
	if err != nil {
		return err
	}
	gw := pol.GatewayConfig
	if gw == "" {
		gw = "GATEWAY.yaml"
	}
	fmt.Fprintf(stdout, "%s: OK as a policy on its own; a policy goes second, after the gateway config it governs:\n  turnout validate %s %s\n", path, gw, path)
	return nil
}
