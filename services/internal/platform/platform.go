// Package platform opens what a Ringback service runs on: its PostgreSQL
// pool, Redis client and NATS connection (each checked by /readyz), and its
// admin and gRPC servers, from the shared configuration.
package platform

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringback/ringback/services/internal/cache"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/server"
	"github.com/ringback/ringback/services/internal/store"
)

// Needs says which backing services a service uses.
type Needs struct {
	Postgres, Redis, NATS bool
}

// Platform is a service's connections and servers.
type Platform struct {
	DB     *pgxpool.Pool // nil unless Needs.Postgres
	Cache  *cache.Client // nil unless Needs.Redis
	Bus    *natsbus.Bus  // nil unless Needs.NATS
	Server *server.Server
	// Registry is the process's Prometheus registry the servers export.
	Registry *prometheus.Registry

	closers []func()
}

// Open connects to what needs asks for and creates the service's servers
// (bound, not yet serving: Server.Run serves). reg is the process's
// Prometheus registry (nil: a new one). On error nothing is left open.
func Open(ctx context.Context, name string, cfg config.Platform, needs Needs, log *slog.Logger, reg *prometheus.Registry) (*Platform, error) {
	p := &Platform{}
	fail := func(err error) (*Platform, error) {
		p.Close()
		return nil, err
	}
	if needs.Postgres {
		db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{AppName: name})
		if err != nil {
			return fail(err)
		}
		p.DB = db
		p.closers = append(p.closers, db.Close)
	}
	if needs.Redis {
		rdb, err := cache.Open(ctx, cfg.RedisURL, cache.Options{})
		if err != nil {
			return fail(err)
		}
		p.Cache = rdb
		p.closers = append(p.closers, func() { _ = rdb.Close() })
	}
	if needs.NATS {
		bus, err := natsbus.Connect(ctx, cfg.NATSURL, name, log, natsbus.Options{StreamReplicas: cfg.NATSReplicas})
		if err != nil {
			return fail(err)
		}
		p.Bus = bus
		p.closers = append(p.closers, bus.Close)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	srv, err := server.New(server.Config{
		Service: name, AdminAddr: cfg.AdminAddr, GRPCAddr: cfg.GRPCAddr, ShutdownTimeout: cfg.ShutdownTimeout,
		MaxConnectionAge: cfg.GRPCMaxConnectionAge,
	}, log, reg)
	if err != nil {
		return fail(err)
	}
	p.Server, p.Registry = srv, reg
	if p.DB != nil {
		srv.AddReadiness("postgres", p.DB.Ping)
	}
	if p.Cache != nil {
		srv.AddReadiness("redis", p.Cache.Ping)
	}
	if p.Bus != nil {
		srv.AddReadiness("nats", p.Bus.Ready)
	}
	return p, nil
}

// Close closes the connections, last opened first, and the servers if
// they never ran (Run closes them otherwise).
func (p *Platform) Close() {
	if p.Server != nil {
		p.Server.Close()
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}
