package webhook

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
	// is assembled.
	Ready func(*server.Server, *Service)
	// Registry is the process's Prometheus registry; nil: a new one.
	Registry *prometheus.Registry
}

// Run is the webhook service until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool), log *slog.Logger, opts RunOptions) error {
	l := config.NewLoader(lookup)
	pcfg := config.LoadPlatform(l, config.PlatformDefaults{AdminAddr: "127.0.0.1:9095", GRPCAddr: "127.0.0.1:50055"})
	wcfg := LoadConfig(l)
	if err := l.Err(); err != nil {
		return err
	}
	log.Info("starting", "config", pcfg, "smtp", wcfg.Mail, "allow_networks", wcfg.AllowNetworks)
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := platform.Open(startCtx, "webhook", pcfg, platform.Needs{Postgres: true, NATS: true}, log, opts.Registry)
	if err != nil {
		return err
	}
	defer p.Close()
	svc, err := NewService(startCtx, wcfg, Deps{DB: p.DB, Bus: p.Bus, Registry: p.Registry}, log)
	if err != nil {
		return err
	}
	defer svc.Close(context.Background())
	svc.Register(p.Server.GRPC())
	if opts.Ready != nil {
		opts.Ready(p.Server, svc)
	}
	// Draining stops ingesting, lets requests in flight finish and hands
	// what this instance held back to the others.
	return p.Server.Run(ctx, func(dctx context.Context) error {
		svc.Close(dctx)
		return nil
	})
}
