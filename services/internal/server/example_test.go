package server_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringback/ringback/services/internal/cache"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/server"
	"github.com/ringback/ringback/services/internal/store"
)

// The shape of a service's cmd/<service>/main.go: main wires signals and
// exits; run builds everything explicitly and returns an error.
func Example() {
	// func main() {
	ctx, stop := server.NotifyContext(context.Background())
	defer stop()
	if err := run(ctx, os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		// os.Exit(1)
	}
	// }
}

func run(ctx context.Context, lookup func(string) (string, bool)) error {
	l := config.NewLoader(lookup)
	cfg := config.LoadPlatform(l, config.PlatformDefaults{AdminAddr: "127.0.0.1:9091", GRPCAddr: "127.0.0.1:50052"})
	if err := l.Err(); err != nil {
		return err
	}
	log := logging.New(os.Stderr, cfg.LogLevel, "origination")
	log.Info("starting", "config", cfg) // redacted

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := store.Open(startCtx, cfg.DatabaseURL, store.Options{AppName: "origination"})
	if err != nil {
		return err
	}
	defer db.Close()
	// if err := store.Migrate(startCtx, db, "origination", migrations); err != nil { ... }
	rdb, err := cache.Open(startCtx, cfg.RedisURL, cache.Options{})
	if err != nil {
		return err
	}
	defer rdb.Close()
	bus, err := natsbus.Connect(startCtx, cfg.NATSURL, "origination", log, natsbus.Options{})
	if err != nil {
		return err
	}
	defer bus.Close()
	if err := bus.EnsureStream(startCtx, natsbus.Calls(0)); err != nil {
		return err
	}

	srv, err := server.New(server.Config{
		Service:         "origination",
		AdminAddr:       cfg.AdminAddr,
		GRPCAddr:        cfg.GRPCAddr,
		ShutdownTimeout: cfg.ShutdownTimeout,
	}, log, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	srv.AddReadiness("postgres", db.Ping)
	srv.AddReadiness("redis", rdb.Ping)
	srv.AddReadiness("nats", bus.Ready)
	// pb.RegisterOriginationServiceServer(srv.GRPC(), handler) — the handler
	// wraps each call in srv.Inflight().Begin() and refuses it when not ok.
	return srv.Run(ctx, nil)
}
