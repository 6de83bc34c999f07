// Package demo is `turnout demo`: the whole failover story on one machine,
// in one process, with nothing installed beyond Go. Two in-process Kafka
// clusters (kfake), a demo-only copier between them, one Turnout gateway,
// three Turnout agents (each its own Raft node), and a producer and a group
// consumer that only know the gateway's address. Cluster 1 is killed; the
// agents fail the route over to cluster 2; cluster 1 comes back and the route
// fails back through the signal file. The summary counts every record.
//
// The files follow the story: setup.go builds the topology (clusters,
// gateway, agents) and tears it down; story.go is the script (clients,
// kill, failover, bring back, failback, finish); narrate.go turns the
// components' events and the script's notes into the screen's lines;
// summary.go prints what was measured. clients.go keeps the ledger of every
// record, copier.go stands in for replication.
package demo

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/turnout/turnout/agent"
	"github.com/turnout/turnout/proxy"
)

const (
	route      = "switchover-route"
	primary    = "kafka1-domain"
	standby    = "kafka2-domain"
	topic      = "orders"
	group      = "demo-consumers"
	partitions = 3
	brokers    = 3
)

var agentIDs = []string{"a1", "a2", "a3"}

// Options are the demo's flags.
type Options struct {
	SeedRate  int           // records produced per second; default 200
	KillAfter time.Duration // when cluster 1 dies, after the clients start; default 10s
	Keep      bool          // leave everything running after the summary until ctx ends
	Out       io.Writer     // the screen
	Terminal  bool          // Out is a terminal: redraw the live line in place
	Width     int           // the terminal's columns, if known: the live line is cut to fit
}

// Summary is what the demo measured.
type Summary struct {
	RTO          time.Duration // kill -> first produce acknowledged on cluster 2
	Detection    time.Duration // kill -> the leader's decision to fail over
	Failover     time.Duration // kill -> the failover done (every gateway on cluster 2)
	Failback     time.Duration // signal file written -> <file>.done
	Records      tally
	Dir, LogFile string
}

// Run runs the demo. It returns an error if a step failed or an
// acknowledged record was lost, after printing the summary when there is one.
func Run(ctx context.Context, opts Options) (Summary, error) {
	if opts.SeedRate <= 0 {
		opts.SeedRate = 200
	}
	if opts.KillAfter <= 0 {
		opts.KillAfter = 10 * time.Second
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	d := &demo{opts: opts, scr: &screen{w: opts.Out, tty: opts.Terminal, width: opts.Width}, events: make(chan any, 1024),
		agents: map[string]*runningAgent{}}
	defer d.shutdown()
	err := d.run(ctx)
	d.sum.Dir, d.sum.LogFile = d.dir, d.logPath
	if err != nil && d.dir != "" {
		d.scr.printf("\nFAILED: %v\nThe components' logs are in %s", err, d.logPath)
	}
	return d.sum, err
}

type demo struct {
	opts Options
	scr  *screen
	sum  Summary

	dir, logPath string
	logFile      *os.File
	log          *slog.Logger
	events       chan any      // agent.Event, proxy.Event or note, for the printer
	quit         chan struct{} // stops the printer, which prints what is queued first
	printerDone  chan struct{}

	ports      *ports
	c1Ports    []int
	clusters   [2]*cluster
	gwPath     string
	gwPort     int
	gw         *proxy.Gateway
	gwAdmin    *http.Server
	gwAdminURL string
	polPath    string
	signal     string
	maxLag     int64
	peers      map[string]string
	agents     map[string]*runningAgent
	copiers    []*copier

	led              *ledger
	producer, cons   *kgo.Client
	stopProducer     context.CancelFunc
	stopConsumer     context.CancelFunc
	producing        chan struct{} // closed when the producer loop has stopped
	consuming        chan struct{} // closed when the consumer loop has stopped
	stopLive         context.CancelFunc
	liveDone         chan struct{}
	killedAt         atomic.Pointer[time.Time]
	firstAckAfter    atomic.Pointer[time.Time] // first ack on cluster 2 after the kill
	firstReadAfter   atomic.Pointer[time.Time] // first record consumed on cluster 2 after the kill
	stepErr          atomic.Pointer[string]    // a failover step the agents reported failed
	flipDecided      atomic.Pointer[time.Time]
	failbackAsked    time.Time
	failoverFinished atomic.Pointer[time.Time]
}

type runningAgent struct {
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan error
}

func (d *demo) run(ctx context.Context) error {
	if err := d.setup(ctx); err != nil {
		return err
	}
	if err := d.startClients(); err != nil {
		return err
	}
	if err := sleep(ctx, d.opts.KillAfter); err != nil {
		return err
	}
	if err := d.failover(ctx); err != nil {
		return err
	}
	if err := d.bringBack(ctx); err != nil {
		return err
	}
	if err := d.failback(ctx); err != nil {
		return err
	}
	if err := d.finish(ctx); err != nil {
		return err
	}
	if d.opts.Keep {
		d.keep(ctx)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
