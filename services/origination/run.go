package origination

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringback/ringback/services/internal/cache"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/server"
	"github.com/ringback/ringback/services/internal/store"
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
	db, err := store.Open(startCtx, pcfg.DatabaseURL, store.Options{AppName: "origination"})
	if err != nil {
		return err
	}
	defer db.Close()
	rdb, err := cache.Open(startCtx, pcfg.RedisURL, cache.Options{})
	if err != nil {
		return err
	}
	defer rdb.Close()
	bus, err := natsbus.Connect(startCtx, pcfg.NATSURL, "origination", log, natsbus.Options{})
	if err != nil {
		return err
	}
	defer bus.Close()
	if err := bus.EnsureStream(startCtx, natsbus.Calls(0)); err != nil {
		return err
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	srv, err := server.New(server.Config{
		Service: "origination", AdminAddr: pcfg.AdminAddr, GRPCAddr: pcfg.GRPCAddr, ShutdownTimeout: pcfg.ShutdownTimeout,
	}, log, reg)
	if err != nil {
		return err
	}
	svc, err := NewService(startCtx, ocfg, Deps{DB: db, Cache: rdb, Bus: bus}, srv.Draining, log)
	if err != nil {
		srv.Close()
		return err
	}
	defer svc.Close()
	svc.Register(srv.GRPC())
	srv.AddReadiness("postgres", db.Ping)
	srv.AddReadiness("redis", rdb.Ping)
	srv.AddReadiness("nats", bus.Ready)
	if opts.Ready != nil {
		opts.Ready(srv)
	}
	return srv.Run(ctx, func(ctx context.Context) error {
		log.Info("draining: waiting for live calls", "live_calls", svc.LiveCount(ctx))
		return svc.Drain(ctx)
	})
}
