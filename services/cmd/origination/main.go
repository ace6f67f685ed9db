// Command origination runs Ringback's origination service: the only
// component that talks to FreeSWITCH. It places and controls two-leg
// calls, serves CallService and EndpointService over gRPC, and publishes
// every call event on JetStream.
package main

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
	"github.com/ringback/ringback/services/origination"
)

func main() {
	ctx, stop := server.NotifyContext(context.Background())
	defer stop()
	if err := run(ctx, os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, "origination:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, lookup func(string) (string, bool)) error {
	l := config.NewLoader(lookup)
	pcfg := config.LoadPlatform(l, config.PlatformDefaults{AdminAddr: "127.0.0.1:9091", GRPCAddr: "127.0.0.1:50051"})
	ocfg := origination.LoadConfig(l)
	if err := l.Err(); err != nil {
		return err
	}
	log := logging.New(os.Stderr, pcfg.LogLevel, "origination")
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
	srv, err := server.New(server.Config{
		Service: "origination", AdminAddr: pcfg.AdminAddr, GRPCAddr: pcfg.GRPCAddr, ShutdownTimeout: pcfg.ShutdownTimeout,
	}, log, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	svc, err := origination.NewService(startCtx, ocfg, origination.Deps{DB: db, Cache: rdb, Bus: bus}, srv.Draining, log)
	if err != nil {
		srv.Close()
		return err
	}
	defer svc.Close()
	svc.Register(srv.GRPC())
	srv.AddReadiness("postgres", db.Ping)
	srv.AddReadiness("redis", rdb.Ping)
	srv.AddReadiness("nats", bus.Ready)
	return srv.Run(ctx, func(ctx context.Context) error {
		log.Info("draining: waiting for live calls", "live_calls", svc.LiveCount(ctx))
		return svc.Drain(ctx)
	})
}
