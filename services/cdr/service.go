package cdr

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/store"
)

// ServiceConfig is cdr's own configuration.
type ServiceConfig struct {
	// Batch is the most records written per statement (RINGBACK_CDR_BATCH).
	Batch int
	// BatchWait is the longest a record waits for others to share its
	// statement (RINGBACK_CDR_BATCH_WAIT).
	BatchWait time.Duration
	// Writers is how many batches are written at once (RINGBACK_CDR_WRITERS).
	Writers int
	// AckWait is how long a batch may stay unacknowledged before JetStream
	// hands it to another instance (RINGBACK_CDR_ACK_WAIT): after a crash,
	// records arrive at most this late.
	AckWait time.Duration
}

// LoadConfig reads cdr's configuration.
func LoadConfig(l *config.Loader) ServiceConfig {
	c := ServiceConfig{
		Batch:     l.Int("RINGBACK_CDR_BATCH", 1000, "most records written per statement"),
		BatchWait: l.Duration("RINGBACK_CDR_BATCH_WAIT", 20*time.Millisecond, "longest a record waits for a batch"),
		Writers:   l.Int("RINGBACK_CDR_WRITERS", 2, "batches written at once"),
		AckWait:   l.Duration("RINGBACK_CDR_ACK_WAIT", 30*time.Second, "how long a batch may go unacknowledged before redelivery"),
	}
	l.Check(c.AckWait >= time.Second, "RINGBACK_CDR_ACK_WAIT", "must be at least 1s")
	l.Check(c.Batch > 0 && c.Batch <= 10000, "RINGBACK_CDR_BATCH", "must be 1 to 10000")
	l.Check(c.BatchWait > 0, "RINGBACK_CDR_BATCH_WAIT", "must be positive")
	l.Check(c.Writers > 0 && c.Writers <= 64, "RINGBACK_CDR_WRITERS", "must be 1 to 64")
	return c
}

// Deps are the platform clients cdr uses.
type Deps struct {
	DB  *pgxpool.Pool
	Bus *natsbus.Bus
	// Registry receives cdr's metrics (nil: not exported).
	Registry prometheus.Registerer
}

// Service is cdr assembled: the ingest consumer and the gRPC servers.
type Service struct {
	Server   *Server
	Store    *Store
	consumer *natsbus.Consumer
}

// NewService migrates cdr's schema and starts ingesting.
func NewService(ctx context.Context, cfg ServiceConfig, d Deps, log *slog.Logger) (*Service, error) {
	if err := store.Migrate(ctx, d.DB, "cdr", Migrations()); err != nil {
		return nil, err
	}
	st := &Store{DB: d.DB}
	s := &Service{Store: st, Server: &Server{Store: st, Log: log}}
	if err := d.Bus.EnsureStream(ctx, natsbus.Calls(0)); err != nil {
		return nil, err
	}
	in := &Ingester{Store: st, Log: log, m: newMetrics(d.Registry)}
	spec := natsbus.BatchSpec{
		ConsumerSpec: natsbus.ConsumerSpec{
			Stream: natsbus.CallsStream, Durable: IngestDurable, FilterSubjects: FinalSubjects, AckWait: cfg.AckWait,
			// A record is never given up: while PostgreSQL is down, retry.
			MaxDeliver: -1,
		},
		MaxBatch: cfg.Batch, MaxWait: cfg.BatchWait, Concurrency: cfg.Writers,
	}
	c, err := d.Bus.ConsumeBatch(ctx, spec, in.Handle)
	if err != nil {
		// NATS before 2.10 has no multi-subject filters: read every call
		// event and skip the others (Handle looks at the subject first).
		log.Warn("consumer with several filter subjects refused; reading every call event", "err", err)
		spec.FilterSubjects = []string{natsbus.CallsSubjects}
		if c, err = d.Bus.ConsumeBatch(ctx, spec, in.Handle); err != nil {
			return nil, fmt.Errorf("ingest consumer: %w", err)
		}
	}
	s.consumer = c
	return s, nil
}

// Register adds cdr's gRPC services.
func (s *Service) Register(r grpc.ServiceRegistrar) { s.Server.Register(r) }

// Close stops ingesting: batches being written finish and are acked.
func (s *Service) Close() {
	if s.consumer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.consumer.Stop(ctx)
		cancel()
	}
}
