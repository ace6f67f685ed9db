package dialer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/platform"
	"github.com/ringback/ringback/services/internal/server"
	"github.com/ringback/ringback/services/internal/store"
)

// Config is the dialer's own configuration.
type Config struct {
	// OriginationAddr is origination's gRPC target (RINGBACK_ORIGINATION_ADDR):
	// every call is placed there.
	OriginationAddr string
	// Instance names this replica for the records it leases
	// (RINGBACK_INSTANCE; default the hostname, the pod name).
	Instance string
	// Tick is how often the engine looks for records to dial
	// (RINGBACK_DIALER_TICK).
	Tick time.Duration
	// Lease is how long a replica holds a record it dials without renewing
	// it (RINGBACK_DIALER_LEASE): another replica takes over the records of
	// one that died after at most this long.
	Lease time.Duration
	// DefaultHours are the calling hours, every day in the recipient's
	// time, of campaigns that set none (RINGBACK_DIALER_DEFAULT_HOURS,
	// "08:00-21:00").
	DefaultHours *dialerv1.CallingHours
	// OutcomeWorkers is how many batches of call events the engine
	// handles at once (RINGBACK_DIALER_OUTCOME_WORKERS, default 4).
	OutcomeWorkers int
	// Engine runs the engine (and its consumer of call outcomes) in this
	// replica (RINGBACK_DIALER_ENGINE, default true). false makes an API
	// replica: campaigns, lists and reports, dialing left to the engine
	// replicas.
	Engine bool
	// AgentMultiplier is the AGENTS mode's calls per free agent for
	// campaigns that set none (RINGBACK_DIALER_AGENT_MULTIPLIER, 1.0; 1 to
	// 10): "only dial out when there are free members, times the global
	// multiplier".
	AgentMultiplier float64
	// PacingScale multiplies every duration the engine gives the pacing
	// (RINGBACK_DIALER_PACING_SCALE, 1): set it to the FreeSWITCH
	// simulator's time scale, so that a campaign against a simulator
	// running ten times faster is paced as the real one would be. Never
	// set in production.
	PacingScale float64
}

// floatVar reads a float variable within [lo, hi].
func floatVar(l *config.Loader, name string, def float64, lo, hi float64, usage string) float64 {
	v := def
	l.Func(name, strconv.FormatFloat(def, 'f', -1, 64), usage, func(s string) error {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < lo || f > hi {
			return fmt.Errorf("want a number from %g to %g", lo, hi)
		}
		v = f
		return nil
	})
	return v
}

// LoadConfig reads the dialer's configuration.
func LoadConfig(l *config.Loader) Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "dialer"
	}
	return Config{
		OriginationAddr: l.String("RINGBACK_ORIGINATION_ADDR", "127.0.0.1:50051", "origination's gRPC target; every call is placed there"),
		Instance:        l.String("RINGBACK_INSTANCE", host, "this replica's stable name (the pod name)"),
		Tick:            l.Duration("RINGBACK_DIALER_TICK", 200*time.Millisecond, "how often the engine looks for records to dial"),
		Lease:           l.Duration("RINGBACK_DIALER_LEASE", 10*time.Second, "how long a replica holds a record it dials without renewing it"),
		DefaultHours:    defaultHours(l),
		OutcomeWorkers:  l.Int("RINGBACK_DIALER_OUTCOME_WORKERS", DefaultOutcomeWorkers, "batches of call events handled at once"),
		AgentMultiplier: floatVar(l, "RINGBACK_DIALER_AGENT_MULTIPLIER", DefaultAgentMultiplier, 1, 10, "AGENTS campaigns' calls per free agent when they set none"),
		PacingScale:     floatVar(l, "RINGBACK_DIALER_PACING_SCALE", 1, 1, 1000, "multiplies the durations the pacing sees (the simulator's time scale; 1 in production)"),
		Engine:          l.Bool("RINGBACK_DIALER_ENGINE", true, "run the engine here (false: an API replica that dials nothing)"),
	}
}

// defaultHours reads RINGBACK_DIALER_DEFAULT_HOURS, "HH:MM-HH:MM".
func defaultHours(l *config.Loader) *dialerv1.CallingHours {
	v := l.String("RINGBACK_DIALER_DEFAULT_HOURS", "08:00-21:00", "calling hours (every day, the recipient's time) of campaigns that set none")
	start, end, ok := strings.Cut(v, "-")
	ok = ok && hhmmRe.MatchString(start) && hhmmRe.MatchString(end) && start < end && start != "24:00"
	l.Check(ok, "RINGBACK_DIALER_DEFAULT_HOURS", "want HH:MM-HH:MM, e.g. 08:00-21:00")
	return &dialerv1.CallingHours{Windows: []*dialerv1.CallingWindow{{Days: []int32{0, 1, 2, 3, 4, 5, 6}, Start: start, End: end}}}
}

// RunOptions are what a binary may add to Run.
type RunOptions struct {
	// Ready, if set, is called once the servers are bound.
	Ready func(*server.Server)
	// Registry is the process's Prometheus registry; nil: a new one.
	Registry *prometheus.Registry
}

// Run is the dialer service until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool), log *slog.Logger, opts RunOptions) error {
	l := config.NewLoader(lookup)
	pcfg := config.LoadPlatform(l, config.PlatformDefaults{AdminAddr: "127.0.0.1:9096", GRPCAddr: "127.0.0.1:50056"})
	cfg := LoadConfig(l)
	if err := l.Err(); err != nil {
		return err
	}
	log.Info("starting", "config", pcfg, "origination", cfg.OriginationAddr, "instance", cfg.Instance)
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := platform.Open(startCtx, "dialer", pcfg, platform.Needs{Postgres: true, Redis: true, NATS: true}, log, opts.Registry)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := store.Migrate(startCtx, p.DB, "dialer", Migrations()); err != nil {
		return err
	}
	conn, err := grpc.NewClient(cfg.OriginationAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("origination %s: %w", cfg.OriginationAddr, err)
	}
	defer conn.Close()
	calls := originationv1.NewCallServiceClient(conn)
	svc, err := startService(ctx, cfg, p, calls, originationv1.NewEndpointServiceClient(conn), log)
	if err != nil {
		return err
	}
	dialerv1.RegisterDialerServiceServer(p.Server.GRPC(), svc.api)
	dialerv1.RegisterAgentServiceServer(p.Server.GRPC(), svc.agents)
	if opts.Ready != nil {
		opts.Ready(p.Server)
	}
	return p.Server.Run(ctx, func(dctx context.Context) error {
		svc.stop(dctx)
		return nil
	})
}
