package cdr

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/server"
	"github.com/ringback/ringback/services/internal/store"
)

// RunOptions are what a binary may add to Run.
type RunOptions struct {
	// Ready, if set, is called once the servers are bound and the service
	// is assembled.
	Ready func(*server.Server, *Service)
	// Registry is the process's Prometheus registry; nil: a new one.
	Registry *prometheus.Registry
}

// Run is the cdr service until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool), log *slog.Logger, opts RunOptions) error {
	l := config.NewLoader(lookup)
	pcfg := config.LoadPlatform(l, config.PlatformDefaults{AdminAddr: "127.0.0.1:9094", GRPCAddr: "127.0.0.1:50054"})
	ccfg := LoadConfig(l)
	if err := l.Err(); err != nil {
		return err
	}
	log.Info("starting", "config", pcfg)
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := store.Open(startCtx, pcfg.DatabaseURL, store.Options{AppName: "cdr"})
	if err != nil {
		return err
	}
	defer db.Close()
	bus, err := natsbus.Connect(startCtx, pcfg.NATSURL, "cdr", log, natsbus.Options{})
	if err != nil {
		return err
	}
	defer bus.Close()
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	srv, err := server.New(server.Config{
		Service: "cdr", AdminAddr: pcfg.AdminAddr, GRPCAddr: pcfg.GRPCAddr, ShutdownTimeout: pcfg.ShutdownTimeout,
	}, log, reg)
	if err != nil {
		return err
	}
	svc, err := NewService(startCtx, ccfg, Deps{DB: db, Bus: bus, Registry: reg}, log)
	if err != nil {
		srv.Close()
		return err
	}
	svc.Register(srv.GRPC())
	srv.AddReadiness("postgres", db.Ping)
	srv.AddReadiness("nats", bus.Ready)
	if opts.Ready != nil {
		opts.Ready(srv, svc)
	}
	// Draining stops the consumer: batches being written commit and are
	// acked; what was pulled and not started goes back to the stream.
	return srv.Run(ctx, func(context.Context) error {
		svc.Close()
		return nil
	})
}
