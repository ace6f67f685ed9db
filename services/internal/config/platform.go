package config

import (
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/ringback/ringback/services/internal/logging"
)

// Development defaults: everything on loopback, as scripts/setup leaves it.
const (
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/ringback?sslmode=disable"
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
	DefaultNATSURL     = "nats://127.0.0.1:4222"
	DefaultAdminAddr   = "127.0.0.1:9090"
	DefaultGRPCAddr    = "127.0.0.1:50051"
	// DefaultGRPCMaxConnectionAge: a rollout's imbalance is gone within
	// minutes, at one new connection per client every 5 minutes.
	DefaultGRPCMaxConnectionAge = 5 * time.Minute
	DefaultLogLevel             = "info"
	DefaultShutdownTimeout      = 5 * time.Minute
)

// Platform is the configuration every Ringback service shares: where the
// backing stores are, where its own servers listen, how it logs and how long
// it may drain. Services embed it in their own Config.
type Platform struct {
	// DatabaseURL (DATABASE_URL) is the PostgreSQL URL,
	// postgres://user[:password]@host:port/db?sslmode=...; pgxpool's
	// pool_max_conns and similar parameters are honoured.
	DatabaseURL string
	// RedisURL (REDIS_URL) is redis://[user:password@]host:port/db, or rediss:// for TLS.
	RedisURL string
	// NATSURL (NATS_URL) is one or more comma-separated nats:// URLs of the
	// same cluster, as nats.Connect takes them.
	NATSURL string
	// NATSReplicas (RINGBACK_NATS_REPLICAS, 1 to 5) is the replica count of
	// the CALLS stream: 3 in a 3-node NATS cluster keeps the call events
	// through the loss of a server. The services set it at every start,
	// and NATS moves an existing stream to it; a single server refuses
	// more than 1.
	NATSReplicas int
	// AdminAddr (RINGBACK_ADMIN_ADDR) is host:port of the admin HTTP server:
	// /metrics, /healthz, /readyz. Each service has its own default port.
	AdminAddr string
	// GRPCAddr (RINGBACK_GRPC_ADDR) is host:port of the gRPC server.
	GRPCAddr string
	// GRPCMaxConnectionAge (RINGBACK_GRPC_MAX_CONNECTION_AGE; 0: never) is
	// how old a client's connection to the gRPC server gets before the
	// client is asked to open a new one, so that connections spread again
	// over the replicas behind a Kubernetes Service (server.Config).
	GRPCMaxConnectionAge time.Duration
	// LogLevel (RINGBACK_LOG_LEVEL) is debug, info, warn or error.
	LogLevel slog.Level
	// ShutdownTimeout (RINGBACK_SHUTDOWN_TIMEOUT; a duration, e.g. 5m) is the
	// longest the service drains live calls after the first SIGTERM before it
	// exits anyway. Kubernetes' terminationGracePeriodSeconds should exceed it.
	ShutdownTimeout time.Duration
}

// PlatformDefaults are the defaults a service chooses for itself; zero fields
// take the package defaults (DefaultAdminAddr, ...). Services running side by
// side (cmd/ringback) need distinct ports.
type PlatformDefaults struct {
	AdminAddr       string
	GRPCAddr        string
	ShutdownTimeout time.Duration
}

// LoadPlatform reads the Platform variables through l; problems are recorded
// in l like any other.
func LoadPlatform(l *Loader, d PlatformDefaults) Platform {
	if d.AdminAddr == "" {
		d.AdminAddr = DefaultAdminAddr
	}
	if d.GRPCAddr == "" {
		d.GRPCAddr = DefaultGRPCAddr
	}
	if d.ShutdownTimeout == 0 {
		d.ShutdownTimeout = DefaultShutdownTimeout
	}
	p := Platform{
		DatabaseURL: l.URL("DATABASE_URL", DefaultDatabaseURL,
			"PostgreSQL URL", "postgres", "postgresql"),
		RedisURL: l.URL("REDIS_URL", DefaultRedisURL,
			"Redis URL", "redis", "rediss", "unix"),
		NATSURL: strings.Join(l.URLs("NATS_URL", DefaultNATSURL,
			"comma-separated NATS server URLs", "nats", "tls", "ws", "wss"), ","),
		NATSReplicas: l.Int("RINGBACK_NATS_REPLICAS", 1,
			"replica count of the CALLS stream (3 in a 3-node NATS cluster)"),
		AdminAddr: l.HostPort("RINGBACK_ADMIN_ADDR", d.AdminAddr,
			"host:port of the admin HTTP server (/metrics, /healthz, /readyz)"),
		GRPCAddr: l.HostPort("RINGBACK_GRPC_ADDR", d.GRPCAddr,
			"host:port of the gRPC server"),
		GRPCMaxConnectionAge: l.Duration("RINGBACK_GRPC_MAX_CONNECTION_AGE", DefaultGRPCMaxConnectionAge,
			"age at which a gRPC client is moved to a new connection, so load spreads over replicas again (0: never)"),
		ShutdownTimeout: l.Duration("RINGBACK_SHUTDOWN_TIMEOUT", d.ShutdownTimeout,
			"longest drain of live calls after the first SIGTERM, e.g. 5m"),
	}
	l.Func("RINGBACK_LOG_LEVEL", DefaultLogLevel, "log level: debug, info, warn or error", func(s string) error {
		lvl, err := logging.ParseLevel(s)
		if err != nil {
			return errors.New("not a log level (want debug, info, warn or error)")
		}
		p.LogLevel = lvl
		return nil
	})
	l.Check(p.ShutdownTimeout > 0, "RINGBACK_SHUTDOWN_TIMEOUT", "must be positive")
	l.Check(p.NATSReplicas >= 1 && p.NATSReplicas <= 5, "RINGBACK_NATS_REPLICAS", "must be 1 to 5")
	if p.AdminAddr != "" && p.AdminAddr == p.GRPCAddr {
		l.Problemf("RINGBACK_GRPC_ADDR", "same address as RINGBACK_ADMIN_ADDR (%s)", p.AdminAddr)
	}
	return p
}

// Redact returns a copy of p with passwords in URLs replaced by "xxxxx".
func (p Platform) Redact() Platform {
	p.DatabaseURL = RedactURL(p.DatabaseURL)
	p.RedisURL = RedactURL(p.RedisURL)
	urls := strings.Split(p.NATSURL, ",")
	for i, u := range urls {
		urls[i] = RedactURL(u)
	}
	p.NATSURL = strings.Join(urls, ",")
	return p
}

// LogValue implements slog.LogValuer: logging a Platform logs it redacted.
func (p Platform) LogValue() slog.Value {
	r := p.Redact()
	return slog.GroupValue(
		slog.String("database_url", r.DatabaseURL),
		slog.String("redis_url", r.RedisURL),
		slog.String("nats_url", r.NATSURL),
		slog.Int("nats_replicas", r.NATSReplicas),
		slog.String("admin_addr", r.AdminAddr),
		slog.String("grpc_addr", r.GRPCAddr),
		slog.Duration("grpc_max_connection_age", r.GRPCMaxConnectionAge),
		slog.String("log_level", r.LogLevel.String()),
		slog.Duration("shutdown_timeout", r.ShutdownTimeout),
	)
}

// String keeps %v redacted too.
func (p Platform) String() string { return p.LogValue().String() }
