package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	accountsv1 "github.com/ringback/ringback/proto/gen/go/ringback/accounts/v1"
	"github.com/ringback/ringback/services/internal/cache"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/server"
	"github.com/ringback/ringback/services/internal/store"
)

// RunOptions are what a binary may add to Run.
type RunOptions struct {
	// Origination, if set, is used instead of dialing cfg.OriginationAddr
	// (cmd/ringback may pass a connection to its in-process origination).
	Origination grpc.ClientConnInterface
	// Rating, likewise, is used instead of dialing cfg.RatingAddr.
	Rating grpc.ClientConnInterface
	// CDR, likewise, is used instead of dialing cfg.CDRAddr.
	CDR grpc.ClientConnInterface
	// Webhook, likewise, is used instead of dialing cfg.WebhookAddr.
	Webhook grpc.ClientConnInterface
	// Dialer, likewise, is used instead of dialing cfg.DialerAddr.
	Dialer grpc.ClientConnInterface
	// DevAccount, if set, is created at start unless it exists, with
	// DevKey as one of its keys (a new key if DevKey is empty): see
	// AccountStore.EnsureAccount. For `make run` only.
	DevAccount string
	DevKey     string
	// DevAccountReady receives the development account and its key (to
	// print them); nil: they are logged.
	DevAccountReady func(accountID, key string)
	// DemoCampaign, if set, names the campaign /demo/banner shows (make
	// run's demo campaign); it wins over RINGBACK_DEMO_CAMPAIGN when it
	// returns an id.
	DemoCampaign func() string
	// Ready, if set, is called once the servers' addresses are bound,
	// before they serve (tests and cmd/ringback read the addresses).
	Ready func(*server.Server)
}

// Run is the gateway service: it opens and migrates the database, connects
// to origination, and serves the public HTTP handler (cfg.HTTPAddr),
// AccountService over gRPC behind UnaryAuthInterceptor
// (cfg.Platform.GRPCAddr) and the admin server (cfg.Platform.AdminAddr)
// until ctx is canceled, then shuts down in two stages (server.Run). reg is
// the process's Prometheus registry.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg *prometheus.Registry, opts RunOptions) error {
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := store.Open(startCtx, cfg.Platform.DatabaseURL, store.Options{AppName: "gateway"})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer db.Close()
	if err := Migrate(startCtx, db); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	accounts := NewAccountStore(db, log, StoreOptions{AuthCacheTTL: cfg.AuthCacheTTL})
	defer accounts.Close()

	if opts.DevAccount != "" {
		id, key, err := accounts.EnsureAccount(startCtx, opts.DevAccount, opts.DevKey)
		if err != nil {
			return fmt.Errorf("gateway: development account: %w", err)
		}
		if opts.DevAccountReady != nil {
			opts.DevAccountReady(id, key)
		} else {
			log.Info("development account ready", logging.AccountID(id), "name", opts.DevAccount, "api_key", key)
		}
	}

	orig := opts.Origination
	if orig == nil {
		// Plain gRPC: services talk inside the cluster (a service mesh or
		// network policy provides transport security).
		conn, err := grpc.NewClient(cfg.OriginationAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("gateway: origination %s: %w", cfg.OriginationAddr, err)
		}
		defer conn.Close()
		orig = conn
	}

	rate := opts.Rating
	if rate == nil {
		conn, err := grpc.NewClient(cfg.RatingAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("gateway: rating %s: %w", cfg.RatingAddr, err)
		}
		defer conn.Close()
		rate = conn
	}

	cdrConn := opts.CDR
	if cdrConn == nil {
		conn, err := grpc.NewClient(cfg.CDRAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("gateway: cdr %s: %w", cfg.CDRAddr, err)
		}
		defer conn.Close()
		cdrConn = conn
	}

	dialerConn := opts.Dialer
	if dialerConn == nil {
		conn, err := grpc.NewClient(cfg.DialerAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("gateway: dialer %s: %w", cfg.DialerAddr, err)
		}
		defer conn.Close()
		dialerConn = conn
	}
	webhookConn := opts.Webhook
	if webhookConn == nil {
		conn, err := grpc.NewClient(cfg.WebhookAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("gateway: webhook %s: %w", cfg.WebhookAddr, err)
		}
		defer conn.Close()
		webhookConn = conn
	}

	var limiter Limiter
	var rdb *cache.Client
	if cfg.Platform.RedisURL != "" {
		rdb, err = cache.Open(startCtx, cfg.Platform.RedisURL, cache.Options{})
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		defer rdb.Close()
		limiter = RedisLimiter{Client: rdb, Limit: cache.Limit{Rate: cfg.GetCdrsPerMinute, Period: time.Minute, Burst: cfg.GetCdrsBurst}}
	} else {
		log.Warn("REDIS_URL is not set: getCdrs requests are not rate limited and the click-to-call banner refuses calls")
	}

	// The visitors' call status streams follow call events on core NATS.
	var events EventSubscriber
	if cfg.Platform.NATSURL != "" {
		// The edge serves without NATS: status streams then poll.
		nctx, ncancel := context.WithTimeout(startCtx, 5*time.Second)
		bus, err := natsbus.Connect(nctx, cfg.Platform.NATSURL, "gateway", log, natsbus.Options{})
		ncancel()
		if err != nil {
			log.Warn("NATS is unreachable: the banner's call status streams poll origination until the gateway restarts", logging.Err(err))
		} else {
			defer bus.Close()
			events = bus
		}
	} else {
		log.Warn("NATS_URL is not set: the banner's call status streams poll origination")
	}

	accountServer := NewAccountServer(accounts, log)
	handler, err := NewHandler(cfg, log, accounts, accountServer, Backends{Origination: orig, Rating: rate, CDR: cdrConn, Webhook: webhookConn, Dialer: dialerConn,
		Limiter: limiter, Redis: rdb, Events: events, DemoCampaign: opts.DemoCampaign, Metrics: reg})
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Service:         "gateway",
		AdminAddr:       cfg.Platform.AdminAddr,
		GRPCAddr:        cfg.Platform.GRPCAddr,
		PublicAddr:      cfg.HTTPAddr,
		Public:          handler,
		ShutdownTimeout: cfg.Platform.ShutdownTimeout,
		GRPCOptions:     []grpc.ServerOption{grpc.ChainUnaryInterceptor(UnaryAuthInterceptor(cfg, accounts))},
	}, log, reg)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	accountsv1.RegisterAccountServiceServer(srv.GRPC(), accountServer)
	if d, ok := handler.(interface{ drainStreams() }); ok {
		srv.OnDrain(d.drainStreams) // the streams would hold the HTTP server's graceful stop
	}
	// Redis is not a readiness check: it only holds the getCdrs allowance,
	// which is not enforced while Redis is away (requests are served), and
	// the banner's limits, without which only the banner refuses (503).
	srv.AddReadiness("postgres", db.Ping)
	if len(cfg.OperatorToken) == 0 {
		log.Warn("RINGBACK_OPERATOR_TOKEN is not set: accounts can only be managed with their own keys")
	}
	if opts.Ready != nil {
		opts.Ready(srv)
	}
	return srv.Run(ctx, nil)
}
