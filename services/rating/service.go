package rating

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/rating/direction"
)

// ServiceConfig is rating's own configuration.
type ServiceConfig struct {
	// BlockPremium refuses premium-rate numbers (RINGBACK_RATING_BLOCK_PREMIUM).
	BlockPremium bool
	// MaxCallDuration caps granted durations (RINGBACK_MAX_CALL_DURATION).
	MaxCallDuration time.Duration
	// BillingTTL is how long Authorize trusts a cached balance (RINGBACK_RATING_BILLING_TTL).
	BillingTTL time.Duration
	// SyncInterval is how often tariffs are compared with the database, in
	// case a change notification was missed (RINGBACK_RATING_SYNC_INTERVAL).
	SyncInterval time.Duration
	// ImportMaxRows bounds an imported file (RINGBACK_RATING_IMPORT_MAX_ROWS).
	ImportMaxRows int
}

// LoadConfig reads rating's configuration.
func LoadConfig(l *config.Loader) ServiceConfig {
	c := ServiceConfig{
		BlockPremium:    l.Bool("RINGBACK_RATING_BLOCK_PREMIUM", true, "refuse premium-rate numbers whatever the tariff says"),
		MaxCallDuration: l.Duration("RINGBACK_MAX_CALL_DURATION", 4*time.Hour, "longest call; cap of granted durations"),
		BillingTTL:      l.Duration("RINGBACK_RATING_BILLING_TTL", 2*time.Second, "how long Authorize trusts a cached balance"),
		SyncInterval:    l.Duration("RINGBACK_RATING_SYNC_INTERVAL", 30*time.Second, "how often tariffs are checked against the database"),
		ImportMaxRows:   l.Int("RINGBACK_RATING_IMPORT_MAX_ROWS", 5_000_000, "most rows in an imported tariff file"),
	}
	l.Check(c.SyncInterval > 0, "RINGBACK_RATING_SYNC_INTERVAL", "must be positive")
	l.Check(c.ImportMaxRows > 0, "RINGBACK_RATING_IMPORT_MAX_ROWS", "must be positive")
	return c
}

// Deps are the platform clients rating uses.
type Deps struct {
	DB  *pgxpool.Pool
	Bus *natsbus.Bus
	// Registry receives rating's metrics (nil: not exported).
	Registry prometheus.Registerer
}

// Service is rating assembled.
type Service struct {
	Rater  *Rater
	Server *Server
	Store  *Store

	consumer *natsbus.Consumer
	unsub    func()
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// NewService migrates rating's schema, loads every tariff and the
// blocklist, and starts listening for changes and settling legs.
func NewService(ctx context.Context, cfg ServiceConfig, d Deps, log *slog.Logger) (*Service, error) {
	if err := store.Migrate(ctx, d.DB, "rating", Migrations()); err != nil {
		return nil, err
	}
	st := &Store{DB: d.DB}
	rater := NewRater(RaterConfig{BlockPremium: cfg.BlockPremium, MaxDuration: cfg.MaxCallDuration, BillingTTL: cfg.BillingTTL},
		st, NewBook(), direction.NewResolver(0), log)
	rater.m = newMetrics(d.Registry)
	bg, cancel := context.WithCancel(context.Background())
	s := &Service{Rater: rater, Store: st, cancel: cancel}
	// Subscribe before loading, so no change falls between the two.
	unsub, err := d.Bus.Subscribe(ChangeSubject, func(data []byte) {
		ctx, cancel := context.WithTimeout(bg, time.Minute)
		defer cancel()
		rater.Apply(ctx, data)
	})
	if err != nil {
		cancel()
		return nil, err
	}
	s.unsub = unsub
	start := time.Now()
	if err := rater.Sync(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := rater.ReloadBlocklist(ctx); err != nil {
		s.Close()
		return nil, err
	}
	log.Info("tariffs loaded", "tariffs", len(rater.book.Versions()), "took", time.Since(start))
	s.Server = &Server{Rater: rater, Store: st, Notify: notifier(d.Bus.Notify, log), ImportLimit: cfg.ImportMaxRows, Log: log}
	if err := d.Bus.EnsureStream(ctx, natsbus.Calls(0)); err != nil {
		s.Close()
		return nil, err
	}
	settler := NewSettler(st, log, rater.m)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		settler.Run(bg)
	}()
	go func() {
		defer s.wg.Done()
		rater.RunReservations(bg)
	}()
	// Many workers: each waits for the transaction carrying its leg, and
	// the more wait, the more legs each transaction carries.
	s.consumer, err = d.Bus.Consume(ctx, natsbus.ConsumerSpec{
		Stream: natsbus.CallsStream, Durable: SettleDurable, FilterSubjects: []string{SettleSubject}, Workers: 128,
		// A charge is never given up: while PostgreSQL is down, retry.
		MaxDeliver: -1,
	}, settler.Handle)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("settlement consumer: %w", err)
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		sweep(bg, st, time.Minute, log)
	}()
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(cfg.SyncInterval)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				if err := rater.Sync(bg); err != nil {
					log.Warn("tariff sync", "err", err)
				}
				if err := rater.ReloadBlocklist(bg); err != nil {
					log.Warn("blocklist sync", "err", err)
				}
			}
		}
	}()
	return s, nil
}

// Register adds rating's gRPC services.
func (s *Service) Register(r grpc.ServiceRegistrar) { s.Server.Register(r) }

// Close stops the consumer and the background work.
func (s *Service) Close() {
	if s.consumer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.consumer.Stop(ctx)
		cancel()
	}
	if s.unsub != nil {
		s.unsub()
	}
	s.cancel()
	s.wg.Wait()
}
