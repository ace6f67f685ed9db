package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/mail"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/netguard"
	"github.com/ringback/ringback/services/internal/store"
)

// ReminderGrace is how close together calls must fall due to share a
// reminder email (at least the reminder interval).
const ReminderGrace = 5 * time.Second

// changedSubject carries the id of an account whose subscriptions changed,
// so every instance reloads them at once (a periodic reload covers lost
// messages).
const changedSubject = "ringback.webhook.changed"

// ServiceConfig is the webhook service's own configuration.
type ServiceConfig struct {
	// AllowNetworks are destinations allowed although private
	// (RINGBACK_WEBHOOK_ALLOW_NETWORKS, CIDRs; development:
	// 127.0.0.0/8,::1/128).
	AllowNetworks []netip.Prefix
	// Batch and BatchWait: events ingested per transaction and the longest
	// one waits for others (RINGBACK_WEBHOOK_BATCH, _BATCH_WAIT).
	Batch     int
	BatchWait time.Duration
	// Ingesters is how many batches are ingested at once
	// (RINGBACK_WEBHOOK_INGESTERS).
	Ingesters int
	// AckWait is how long an ingested batch may go unacknowledged before
	// JetStream redelivers it (RINGBACK_WEBHOOK_ACK_WAIT).
	AckWait time.Duration
	// MaxPerAccount bounds an account's subscriptions
	// (RINGBACK_WEBHOOK_MAX_PER_ACCOUNT).
	MaxPerAccount int
	// Retention is how long finished deliveries and sent emails are kept
	// (RINGBACK_WEBHOOK_RETENTION).
	Retention time.Duration
	// ReminderInterval is how often reminders are looked for
	// (RINGBACK_REMINDER_INTERVAL).
	ReminderInterval time.Duration
	// Dispatch tunes delivery (RINGBACK_WEBHOOK_RETRY_SCHEDULE, _LEASE,
	// _GAP_WAIT, _POLL_INTERVAL, _MAX_IN_FLIGHT, _MAX_HELD,
	// _BREAKER_FAILURES, _BREAKER_COOLDOWN, _DISABLE_AFTER).
	Dispatch DispatchConfig
	// Mail is how emails are sent (RINGBACK_SMTP_*).
	Mail mail.Config
}

// LoadConfig reads the webhook service's configuration.
func LoadConfig(l *config.Loader) ServiceConfig {
	c := ServiceConfig{
		Batch:            l.Int("RINGBACK_WEBHOOK_BATCH", 500, "most call events ingested per transaction"),
		BatchWait:        l.Duration("RINGBACK_WEBHOOK_BATCH_WAIT", 10*time.Millisecond, "longest an event waits for a batch"),
		Ingesters:        l.Int("RINGBACK_WEBHOOK_INGESTERS", 2, "batches ingested at once"),
		AckWait:          l.Duration("RINGBACK_WEBHOOK_ACK_WAIT", 30*time.Second, "how long a batch may go unacknowledged before redelivery"),
		MaxPerAccount:    l.Int("RINGBACK_WEBHOOK_MAX_PER_ACCOUNT", 50, "most webhooks per account"),
		Retention:        l.Duration("RINGBACK_WEBHOOK_RETENTION", 30*24*time.Hour, "how long finished deliveries are kept"),
		ReminderInterval: l.Duration("RINGBACK_REMINDER_INTERVAL", 30*time.Second, "how often click-to-call reminders are looked for"),
		Dispatch: DispatchConfig{
			Schedule:           DefaultSchedule,
			Jitter:             0.2,
			Lease:              l.Duration("RINGBACK_WEBHOOK_LEASE", time.Minute, "how long a crashed instance's deliveries wait before another takes them"),
			GapWait:            l.Duration("RINGBACK_WEBHOOK_GAP_WAIT", 2*time.Minute, "longest an event waits for its call's earlier events"),
			HoldHorizon:        30 * time.Second,
			PollInterval:       l.Duration("RINGBACK_WEBHOOK_POLL_INTERVAL", 500*time.Millisecond, "how often due retries are claimed"),
			MaxInFlight:        l.Int("RINGBACK_WEBHOOK_MAX_IN_FLIGHT", 2048, "most requests in flight"),
			MaxHeld:            l.Int("RINGBACK_WEBHOOK_MAX_HELD", 5000, "most deliveries held in memory per endpoint"),
			BreakerFailures:    l.Int("RINGBACK_WEBHOOK_BREAKER_FAILURES", 10, "consecutive failures that open an endpoint's circuit"),
			BreakerCooldown:    l.Duration("RINGBACK_WEBHOOK_BREAKER_COOLDOWN", 10*time.Second, "how long an open circuit waits before a probe"),
			MaxBreakerCooldown: 5 * time.Minute,
			DisableAfter:       l.Duration("RINGBACK_WEBHOOK_DISABLE_AFTER", 24*time.Hour, "a webhook failing this long is disabled (0: never)"),
			MaxResponseBytes:   64 << 10,
		},
		Mail: mail.LoadConfig(l),
	}
	l.Func("RINGBACK_WEBHOOK_ALLOW_NETWORKS", "", "networks (CIDR) webhooks may reach although private, e.g. 127.0.0.0/8 for development",
		func(v string) error {
			for _, f := range strings.Split(v, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				}
				p, err := netip.ParsePrefix(f)
				if err != nil {
					return fmt.Errorf("%q is not a CIDR", f)
				}
				c.AllowNetworks = append(c.AllowNetworks, p.Masked())
			}
			return nil
		})
	l.Func("RINGBACK_WEBHOOK_RETRY_SCHEDULE", "", "delays before each attempt, e.g. 0s,5s,5m,30m,2h,5h,10h",
		func(v string) error {
			if v == "" {
				return nil
			}
			var s []time.Duration
			for _, f := range strings.Split(v, ",") {
				d, err := time.ParseDuration(strings.TrimSpace(f))
				if err != nil || d < 0 {
					return fmt.Errorf("%q is not a duration", f)
				}
				s = append(s, d)
			}
			c.Dispatch.Schedule = s
			return nil
		})
	l.Check(c.Batch > 0 && c.Batch <= 5000, "RINGBACK_WEBHOOK_BATCH", "must be 1 to 5000")
	l.Check(c.BatchWait > 0, "RINGBACK_WEBHOOK_BATCH_WAIT", "must be positive")
	l.Check(c.Ingesters > 0 && c.Ingesters <= 16, "RINGBACK_WEBHOOK_INGESTERS", "must be 1 to 16")
	l.Check(c.AckWait >= time.Second, "RINGBACK_WEBHOOK_ACK_WAIT", "must be at least 1s")
	l.Check(c.MaxPerAccount > 0, "RINGBACK_WEBHOOK_MAX_PER_ACCOUNT", "must be positive")
	l.Check(c.Retention >= time.Hour, "RINGBACK_WEBHOOK_RETENTION", "must be at least 1h")
	l.Check(c.ReminderInterval > 0, "RINGBACK_REMINDER_INTERVAL", "must be positive")
	l.Check(c.Dispatch.Lease >= time.Second, "RINGBACK_WEBHOOK_LEASE", "must be at least 1s")
	l.Check(c.Dispatch.GapWait > 0, "RINGBACK_WEBHOOK_GAP_WAIT", "must be positive")
	l.Check(c.Dispatch.PollInterval > 0, "RINGBACK_WEBHOOK_POLL_INTERVAL", "must be positive")
	l.Check(c.Dispatch.MaxInFlight > 0, "RINGBACK_WEBHOOK_MAX_IN_FLIGHT", "must be positive")
	l.Check(c.Dispatch.MaxHeld > 0, "RINGBACK_WEBHOOK_MAX_HELD", "must be positive")
	l.Check(c.Dispatch.BreakerFailures > 0, "RINGBACK_WEBHOOK_BREAKER_FAILURES", "must be positive")
	l.Check(c.Dispatch.BreakerCooldown > 0, "RINGBACK_WEBHOOK_BREAKER_COOLDOWN", "must be positive")
	l.Check(c.Dispatch.DisableAfter >= 0, "RINGBACK_WEBHOOK_DISABLE_AFTER", "must not be negative")
	l.Check(len(c.Dispatch.Schedule) > 0 && len(c.Dispatch.Schedule) <= 20, "RINGBACK_WEBHOOK_RETRY_SCHEDULE", "must have 1 to 20 delays")
	return c
}

// Deps are the platform clients the service uses.
type Deps struct {
	DB  *pgxpool.Pool
	Bus *natsbus.Bus
	// Registry receives the service's metrics (nil: not exported).
	Registry prometheus.Registerer
}

// Service is the webhook service assembled: the ingest consumer, the
// dispatcher, the reminder and email loops and the gRPC servers.
type Service struct {
	Server     *Server
	Store      *Store
	Dispatcher *Dispatcher

	cfg      ServiceConfig
	log      *slog.Logger
	bus      *natsbus.Bus
	subs     *subCache
	consumer *natsbus.Consumer
	unsub    func()
	cancel   context.CancelFunc
	loops    sync.WaitGroup
	stopOnce sync.Once
}

// NewService migrates the schema, loads the subscriptions and starts
// ingesting and delivering.
func NewService(ctx context.Context, cfg ServiceConfig, d Deps, log *slog.Logger) (*Service, error) {
	if err := store.Migrate(ctx, d.DB, "webhook", Migrations()); err != nil {
		return nil, err
	}
	st := &Store{DB: d.DB}
	subs := newSubCache(st)
	if err := subs.reload(ctx); err != nil {
		return nil, fmt.Errorf("load webhooks: %w", err)
	}
	m := newMetrics(d.Registry)
	guard := netguard.New(cfg.AllowNetworks)
	cfg.Dispatch.Guard = guard
	owner := ids.NewV7()
	loopCtx, cancel := context.WithCancel(context.Background())
	s := &Service{Store: st, cfg: cfg, log: log, bus: d.Bus, subs: subs, cancel: cancel}
	s.Dispatcher = newDispatcher(cfg.Dispatch, st, subs, owner, log, m, func(ds []disabledSub) {
		for _, x := range ds {
			s.changed(x.AccountID)
		}
	})
	s.Server = &Server{st: st, guard: guard, log: log, changed: s.changed, maxPerAccount: cfg.MaxPerAccount, now: time.Now,
		redelivered: func() { kick(s.Dispatcher.pollKick) }}
	unsub, err := d.Bus.Subscribe(changedSubject, func(data []byte) {
		if err := subs.reloadAccount(loopCtx, string(data)); err != nil {
			log.Warn("reloading an account's webhooks failed", "account_id", string(data), "err", err)
		}
	})
	if err != nil {
		cancel()
		return nil, err
	}
	s.unsub = unsub
	s.Dispatcher.start()

	var sender *mail.Sender
	if cfg.Mail.Addr == "" {
		log.Warn("RINGBACK_SMTP_ADDR is not set: emails (disabled webhooks, reminders) are kept in the outbox, not sent")
	} else if sender, err = mail.NewSender(cfg.Mail, log); err != nil {
		s.Close(ctx)
		return nil, err
	}
	reminders := &Reminders{st: st, log: log, m: m, Grace: max(cfg.ReminderInterval, ReminderGrace)}
	s.every(loopCtx, 30*time.Second, "reloading webhooks", func(ctx context.Context) error { return subs.reload(ctx) })
	s.every(loopCtx, cfg.ReminderInterval, "reminders", func(ctx context.Context) error {
		_, err := reminders.run(ctx, time.Now())
		return err
	})
	if sender != nil {
		outbox := &Outbox{st: st, sender: sender, log: log, m: m}
		s.every(loopCtx, time.Second, "sending emails", func(ctx context.Context) error {
			_, err := outbox.run(ctx)
			return err
		})
	}
	s.every(loopCtx, 10*time.Minute, "pruning", func(ctx context.Context) error { return st.prune(ctx, cfg.Retention) })

	if err := d.Bus.EnsureStream(ctx, natsbus.Calls(0)); err != nil {
		s.Close(ctx)
		return nil, err
	}
	in := &Ingester{st: st, subs: subs, disp: s.Dispatcher, log: log, m: m, owner: owner, lease: cfg.Dispatch.Lease}
	s.consumer, err = d.Bus.ConsumeBatch(ctx, natsbus.BatchSpec{
		ConsumerSpec: natsbus.ConsumerSpec{
			Stream: natsbus.CallsStream, Durable: IngestDurable, AckWait: cfg.AckWait,
			// An event is never given up: while PostgreSQL is down, retry.
			MaxDeliver: -1,
		},
		MaxBatch: cfg.Batch, MaxWait: cfg.BatchWait, Concurrency: cfg.Ingesters,
	}, in.Handle)
	if err != nil {
		s.Close(ctx)
		return nil, fmt.Errorf("ingest consumer: %w", err)
	}
	return s, nil
}

// changed reloads an account's subscriptions here and tells the other
// instances.
func (s *Service) changed(account string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.subs.reloadAccount(ctx, account); err != nil {
		s.log.Warn("reloading an account's webhooks failed", "account_id", account, "err", err)
	}
	if err := s.bus.Notify(changedSubject, []byte(account)); err != nil {
		s.log.Warn("announcing a webhook change failed", "account_id", account, "err", err)
	}
}

// every runs fn every interval until the service closes.
func (s *Service) every(ctx context.Context, interval time.Duration, what string, fn func(context.Context) error) {
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := fn(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn(what+" failed", "err", err)
				}
			}
		}
	}()
}

// Register adds the gRPC services.
func (s *Service) Register(r grpc.ServiceRegistrar) { s.Server.Register(r) }

// Close stops ingesting (batches being written finish and are acked), lets
// requests in flight finish, and hands held deliveries back.
func (s *Service) Close(ctx context.Context) {
	s.stopOnce.Do(func() {
		if s.consumer != nil {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_ = s.consumer.Stop(cctx)
			cancel()
		}
		if s.unsub != nil {
			s.unsub()
		}
		s.cancel()
		s.loops.Wait()
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		s.Dispatcher.stop(dctx)
		cancel()
	})
}

// prune deletes finished deliveries, sent emails and done reminders older
// than retention, and call sequences older than a day, a batch at a time.
func (st *Store) prune(ctx context.Context, retention time.Duration) error {
	for _, q := range []string{
		`DELETE FROM webhook.deliveries WHERE id IN (SELECT id FROM webhook.deliveries
			WHERE state <> 1 AND created_at < now() - $1::interval LIMIT 10000)`,
		`DELETE FROM webhook.call_seqs WHERE ctid IN (SELECT ctid FROM webhook.call_seqs
			WHERE seen_at < now() - interval '1 day' LIMIT 10000)`,
		`DELETE FROM webhook.emails WHERE id IN (SELECT id FROM webhook.emails
			WHERE (sent_at IS NOT NULL OR failed) AND created_at < now() - $1::interval LIMIT 10000)`,
		`DELETE FROM webhook.reminders WHERE call_id IN (SELECT call_id FROM webhook.reminders
			WHERE (called_back_at IS NOT NULL OR reminded_at IS NOT NULL) AND failed_at < now() - $1::interval LIMIT 10000)`,
	} {
		for {
			var args []any
			if strings.Contains(q, "$1") {
				args = []any{retention}
			}
			tag, err := st.DB.Exec(ctx, q, args...)
			if err != nil {
				return err
			}
			if tag.RowsAffected() < 10000 {
				break
			}
		}
	}
	return nil
}
