// Command turnout is the Turnout binary: the Kafka gateway, the failover
// agents, the operator's commands, and the demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

type command struct {
	name, usage, summary string
	run                  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"gateway", "--config gateway.yaml [--admin 127.0.0.1:9190]", "run the Kafka gateway", runGateway},
	{"agent", "--id a1 --policy policy.yaml --raft HOST:PORT --peers a1=HOST:PORT,... --data-dir DIR [--bootstrap] [--http 127.0.0.1:8081] [--gateway-config FILE] [--signal-file FILE] [--token-file FILE] [--http-cert FILE --http-key FILE] [--ca-file FILE] [--raft-cert FILE --raft-key FILE --raft-ca FILE]",
		"run a failover agent, one of a Raft group", runAgent},
	{"status", "[--agent http://127.0.0.1:8081] [--json] [--token-file FILE] [--ca-file FILE]", "what the agents see and decide, for a person", runStatus},
	{"failover", "[--route NAME] [--to DOMAIN] [--force] [--id ID] [--agent URL [--token-file FILE] [--ca-file FILE] | --signal-file FILE | --policy FILE]",
		"switch a route to its other domain and wait for the outcome", runFailover},
	{"failback", "[--route NAME] [--force] [--id ID] [--agent URL [--token-file FILE] [--ca-file FILE] | --signal-file FILE | --policy FILE]",
		"switch a route back to its primary and wait for the outcome", runFailback},
	{"validate", "gateway.yaml [policy.yaml]", "check configuration files and print the gateway's port plan", runValidate},
	{"demo", "[--seed-rate 200] [--kill-after 10s] [--keep]",
		"two in-process clusters, a gateway, three agents: a failover and a failback on screen, in under a minute", runDemo},
	{"version", "", "print the version", runVersion},
}

// errUsage marks errors that are the caller's wording, answered with usage.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "turnout %s: %v\nusage: turnout %s %s\n", c.name, err, c.name, c.usage)
			return 2
		default:
			fmt.Fprintf(stderr, "turnout %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "turnout: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Turnout: hands-off disaster recovery for Apache Kafka.")
	fmt.Fprintln(w, "\nUsage:")
	for _, c := range commands {
		fmt.Fprintf(w, "  turnout %-9s %s\n      %s\n", c.name, c.usage, c.summary)
	}
	fmt.Fprintln(w, "\nFlags may also be set with TURNOUT_<FLAG> environment variables, e.g. TURNOUT_CONFIG.")
}

// newFlags makes a flag set whose flags default to TURNOUT_* environment
// variables, parsed with parse.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("turnout "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse applies TURNOUT_* environment variables to flags not given on the
// command line, then the command line itself.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "TURNOUT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !set[f.Name] && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%w: %s=%q: %v", errUsage, env, v, e)
			}
		}
	})
	return err
}

// logFlags adds --log-format and --log-level and returns a constructor.
func logFlags(fs *flag.FlagSet) func(w io.Writer) (*slog.Logger, error) {
	format := fs.String("log-format", "text", "log format: text or json")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	return func(w io.Writer) (*slog.Logger, error) {
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(*level)); err != nil {
			return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, *level)
		}
		opts := &slog.HandlerOptions{Level: lv}
		switch *format {
		case "text":
			return slog.New(slog.NewTextHandler(w, opts)), nil
		case "json":
			return slog.New(slog.NewJSONHandler(w, opts)), nil
		}
		return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, *format)
	}
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintln(stdout, "turnout", v)
	return nil
}
