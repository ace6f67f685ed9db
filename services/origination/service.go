package origination

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
	"github.com/ringback/ringback/services/internal/cache"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/esl"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// ServiceConfig is origination's own configuration (the platform part —
// DATABASE_URL, REDIS_URL, NATS_URL, addresses — is config.Platform).
type ServiceConfig struct {
	// ESLAddrs are the FreeSWITCH nodes (FREESWITCH_ESL_ADDR, comma-separated host:port).
	ESLAddrs []string
	// ESLPassword is the event-socket password (FREESWITCH_ESL_PASSWORD).
	ESLPassword logging.Secret
	// SessionsPerSecond is each node's originate budget (RINGBACK_SPS_PER_NODE); 0 = unlimited.
	SessionsPerSecond int
	// Gateway is the carrier gateway numbers are dialed through (RINGBACK_CARRIER_GATEWAY).
	Gateway string
	// Instance names this replica; calls it drives are picked up by the
	// replica with the same name after a restart (RINGBACK_INSTANCE;
	// default the hostname, which is the pod name on Kubernetes).
	Instance string
	// HeartbeatTTL (RINGBACK_HEARTBEAT_TTL, 3s to 5m) is how long after its
	// last heartbeat a replica counts as gone and the others adopt its
	// calls: shorter fails over sooner, and adopts the calls of a replica
	// merely stalled that long (safe, but churn).
	HeartbeatTTL time.Duration
	// MaxCallDuration caps and defaults max_duration_s (RINGBACK_MAX_CALL_DURATION).
	MaxCallDuration time.Duration
	// DefaultRingTimeout is a leg's ring timeout when none is given (RINGBACK_RING_TIMEOUT).
	DefaultRingTimeout time.Duration
	// RatingAddr is the rating service's gRPC target (RINGBACK_RATING_ADDR);
	// every leg to a number is authorized there before it is dialed.
	RatingAddr string
	// CDRAddr is the cdr service's gRPC target (RINGBACK_CDR_ADDR): a
	// campaign's failed calls are read from the call records.
	CDRAddr string
}

// LoadConfig reads origination's configuration.
func LoadConfig(l *config.Loader) ServiceConfig {
	host, _ := os.Hostname()
	if host == "" {
		host = "origination"
	}
	c := ServiceConfig{
		ESLAddrs:           l.HostPorts("FREESWITCH_ESL_ADDR", "127.0.0.1:8021", "FreeSWITCH event sockets, comma-separated host:port"),
		ESLPassword:        l.Secret("FREESWITCH_ESL_PASSWORD", "ClueCon", "FreeSWITCH event-socket password"),
		SessionsPerSecond:  l.Int("RINGBACK_SPS_PER_NODE", 0, "originates per second per FreeSWITCH node (0: unlimited); keep at or below the node's sps"),
		Gateway:            l.String("RINGBACK_CARRIER_GATEWAY", "carrier", "sofia gateway numbers are dialed through"),
		Instance:           l.String("RINGBACK_INSTANCE", host, "this replica's stable name (the pod name)"),
		HeartbeatTTL:       l.Duration("RINGBACK_HEARTBEAT_TTL", DefaultHeartbeatTTL, "how long after its last heartbeat a replica's calls are adopted by the others"),
		MaxCallDuration:    l.Duration("RINGBACK_MAX_CALL_DURATION", 4*time.Hour, "longest call; default and cap of max_duration_s"),
		DefaultRingTimeout: l.Duration("RINGBACK_RING_TIMEOUT", 30*time.Second, "ring timeout of a leg that gives none"),
		RatingAddr:         l.String("RINGBACK_RATING_ADDR", "127.0.0.1:50053", "rating service gRPC target; authorizes every leg"),
		CDRAddr:            l.String("RINGBACK_CDR_ADDR", "127.0.0.1:50054", "cdr service gRPC target; campaigns' failed calls are read there"),
	}
	l.Check(c.HeartbeatTTL >= 3*time.Second && c.HeartbeatTTL <= 5*time.Minute, "RINGBACK_HEARTBEAT_TTL", "must be 3s to 5m")
	return c
}

// Deps are the shared platform clients origination uses.
type Deps struct {
	DB    *pgxpool.Pool
	Cache *cache.Client
	Bus   *natsbus.Bus
}

// Service is origination assembled: engine, FreeSWITCH client, gRPC APIs.
type Service struct {
	Engine    *Engine
	Calls     *CallServer
	Endpoints *EndpointServer
	Campaigns *CampaignServer
	Banner    *BannerServer
	sw        *ESLSwitch
	client    *esl.Client
	rating    *grpc.ClientConn
	cdr       *grpc.ClientConn
	log       *slog.Logger
}

// NewService migrates origination's schema, connects to FreeSWITCH and
// builds the engine. draining tells the API to refuse new calls.
func NewService(ctx context.Context, cfg ServiceConfig, d Deps, draining func() bool, log *slog.Logger) (*Service, error) {
	if err := store.Migrate(ctx, d.DB, "origination", Migrations()); err != nil {
		return nil, err
	}
	sw := NewESLSwitch(log)
	client, err := esl.Dial(ctx, esl.Config{
		Addrs: cfg.ESLAddrs, Password: cfg.ESLPassword.Reveal(), SessionsPerSecond: cfg.SessionsPerSecond,
		Events: Events, Logger: log,
	}, sw.Handlers())
	if err != nil {
		return nil, fmt.Errorf("connect to FreeSWITCH: %w", err)
	}
	sw.Client = client
	ratingConn, err := grpc.NewClient(cfg.RatingAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("rating %s: %w", cfg.RatingAddr, err)
	}
	cdrConn, err := grpc.NewClient(cfg.CDRAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		client.Close()
		_ = ratingConn.Close()
		return nil, fmt.Errorf("cdr %s: %w", cfg.CDRAddr, err)
	}
	endpoints := &EndpointStore{DB: d.DB}
	engine := NewEngine(Config{Instance: cfg.Instance, DefaultRingTimeout: cfg.DefaultRingTimeout, MaxDuration: cfg.MaxCallDuration, HeartbeatTTL: cfg.HeartbeatTTL},
		sw, NewRedisStore(d.Cache.Redis()), BusPublisher{Bus: d.Bus}, CacheLocker{C: d.Cache},
		DialPlan{Gateway: cfg.Gateway, Endpoints: endpoints}, log)
	engine.UseRater(RatingClient{C: ratingv1.NewRatingServiceClient(ratingConn)})
	sw.Attach(engine)
	// Calls this instance drove before a restart are picked up now; the
	// client's NodeUp may already have done it, which is harmless twice.
	if err := engine.Recover(ctx, nil); err != nil {
		log.Error("recover calls at start", "err", err)
	}
	campaigns := &CampaignStore{DB: d.DB}
	cache := &campaignCache{store: campaigns, ttl: 2 * time.Second}
	return &Service{
		Engine:    engine,
		Calls:     &CallServer{Engine: engine, Redis: d.Cache.Redis(), Draining: draining, Log: log},
		Endpoints: &EndpointServer{Store: endpoints},
		Campaigns: &CampaignServer{Store: campaigns, Endpoints: endpoints, Engine: engine, CDRs: cdrv1.NewCdrServiceClient(cdrConn), cache: cache},
		Banner:    &BannerServer{Engine: engine, Campaign: cache, Draining: draining},
		sw:        sw, client: client, rating: ratingConn, cdr: cdrConn, log: log,
	}, nil
}

// Register adds origination's gRPC services.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	originationv1.RegisterCallServiceServer(r, s.Calls)
	originationv1.RegisterEndpointServiceServer(r, s.Endpoints)
	originationv1.RegisterCampaignServiceServer(r, s.Campaigns)
	originationv1.RegisterBannerServiceServer(r, s.Banner)
}

// Drain waits for the calls this instance drives to end (stage one of the
// two-stage shutdown; new calls are already refused).
func (s *Service) Drain(ctx context.Context) error {
	s.Engine.Leave()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		live, err := s.draining(ctx)
		if err != nil {
			return err
		}
		if len(live) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// draining are the calls Drain waits for: those this instance drives,
// but for two kinds that need nothing of it until it is back.
//   - Calls waiting for a redial or for opening hours have no channel:
//     another instance adopts them once this one is gone.
//   - An agent's session in its room lasts as long as the agent's shift.
//     Waiting for it would hold every rolling update for the whole
//     RINGBACK_SHUTDOWN_TIMEOUT, and the replica that comes back under the
//     same name takes it over where it was (its channel is checked, the
//     customers the dialer connects to the room go by their own calls);
//     if none comes back, another replica adopts it (adopt.go).
func (s *Service) draining(ctx context.Context) ([]*Call, error) {
	live, err := s.Engine.store.Live(ctx, s.Engine.cfg.Instance)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(live, func(c *Call) bool {
		return c.Status == StatusQueued && !c.NextAttemptAt.IsZero() || c.Session != "" && c.Status == StatusBridged
	}), nil
}

// LiveCount is the number of calls Drain waits for.
func (s *Service) LiveCount(ctx context.Context) int {
	live, _ := s.draining(ctx)
	return len(live)
}

// Close disconnects from FreeSWITCH and stops the engine. Calls keep their
// state in Redis; a restarted instance takes them over.
func (s *Service) Close() {
	s.client.Close()
	s.sw.Close()
	s.Engine.Close()
	_ = s.rating.Close()
	_ = s.cdr.Close()
}

var errDraining = statusError(codes.Unavailable, "DRAINING", "this origination instance is shutting down; retry")
