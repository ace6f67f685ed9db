package rating

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/platform"
	"github.com/ringback/ringback/services/internal/server"
)

// RunOptions are what a binary may add to Run.
type RunOptions struct {
	// Ready, if set, is called once the servers are bound and the service
	// is assembled (cmd/ringback reads the gRPC address from it and sets up
	// the development tariff).
	Ready func(*server.Server, *Service)
	// Registry is the process's Prometheus registry; nil: a new one.
	Registry *prometheus.Registry
}

// Run is the rating service until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool), log *slog.Logger, opts RunOptions) error {
	l := config.NewLoader(lookup)
	pcfg := config.LoadPlatform(l, config.PlatformDefaults{AdminAddr: "127.0.0.1:9093", GRPCAddr: "127.0.0.1:50053"})
	rcfg := LoadConfig(l)
	if err := l.Err(); err != nil {
		return err
	}
	log.Info("starting", "config", pcfg)
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := platform.Open(startCtx, "rating", pcfg, platform.Needs{Postgres: true, NATS: true}, log, opts.Registry)
	if err != nil {
		return err
	}
	defer p.Close()
	svc, err := NewService(startCtx, rcfg, Deps{DB: p.DB, Bus: p.Bus, Registry: p.Registry}, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	svc.Register(p.Server.GRPC())
	if opts.Ready != nil {
		opts.Ready(p.Server, svc)
	}
	// Nothing to drain: requests in flight finish with the gRPC server's
	// graceful stop, and settlements are acked only once committed.
	return p.Server.Run(ctx, func(context.Context) error { return nil })
}
