package origination

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/platform"
	"github.com/ringback/ringback/services/internal/server"
)

// RunOptions are what a binary may add to Run.
type RunOptions struct {
	// Ready, if set, is called once the servers are bound and the service
	// is assembled (cmd/ringback reads the gRPC address from it).
	Ready func(*server.Server)
	// Registry is the process's Prometheus registry; nil: a new one.
	Registry *prometheus.Registry
}

// Run is the origination service until ctx ends, then its two-stage
// shutdown: new calls are refused and live ones drained.
func Run(ctx context.Context, lookup func(string) (string, bool), log *slog.Logger, opts RunOptions) error {
	l := config.NewLoader(lookup)
	pcfg := config.LoadPlatform(l, config.PlatformDefaults{AdminAddr: "127.0.0.1:9091", GRPCAddr: "127.0.0.1:50051"})
	ocfg := LoadConfig(l)
	if err := l.Err(); err != nil {
		return err
	}
	log.Info("starting", "config", pcfg, "freeswitch", ocfg.ESLAddrs, "instance", ocfg.Instance)
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := platform.Open(startCtx, "origination", pcfg, platform.Needs{Postgres: true, Redis: true, NATS: true}, log, opts.Registry)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Bus.EnsureStream(startCtx, natsbus.Calls(0)); err != nil {
		return err
	}
	svc, err := NewService(startCtx, ocfg, Deps{DB: p.DB, Cache: p.Cache, Bus: p.Bus}, p.Server.Draining, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	svc.Register(p.Server.GRPC())
	if opts.Ready != nil {
		opts.Ready(p.Server)
	}
	return p.Server.Run(ctx, func(ctx context.Context) error {
		log.Info("draining: waiting for live calls", "live_calls", svc.LiveCount(ctx))
		return svc.Drain(ctx)
	})
}
