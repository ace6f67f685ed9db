package rating

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
	db, err := store.Open(startCtx, pcfg.DatabaseURL, store.Options{AppName: "rating"})
	if err != nil {
		return err
	}
	defer db.Close()
	bus, err := natsbus.Connect(startCtx, pcfg.NATSURL, "rating", log, natsbus.Options{})
	if err != nil {
		return err
	}
	defer bus.Close()
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	srv, err := server.New(server.Config{
		Service: "rating", AdminAddr: pcfg.AdminAddr, GRPCAddr: pcfg.GRPCAddr, ShutdownTimeout: pcfg.ShutdownTimeout,
	}, log, reg)
	if err != nil {
		return err
	}
	svc, err := NewService(startCtx, rcfg, Deps{DB: db, Bus: bus, Registry: reg}, log)
	if err != nil {
		srv.Close()
		return err
	}
	defer svc.Close()
	svc.Register(srv.GRPC())
	srv.AddReadiness("postgres", db.Ping)
	srv.AddReadiness("nats", bus.Ready)
	if opts.Ready != nil {
		opts.Ready(srv, svc)
	}
	// Nothing to drain: requests in flight finish with the gRPC server's
	// graceful stop, and settlements are acked only once committed.
	return srv.Run(ctx, func(context.Context) error { return nil })
}
