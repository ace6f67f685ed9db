package dialer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/platform"
)

// service is the dialer assembled: the API, the engine and its consumer of
// call outcomes.
type service struct {
	api  *Server
	stop func(context.Context)
}

func startService(ctx context.Context, cfg Config, p *platform.Platform, calls originationv1.CallServiceClient,
	endpoints originationv1.EndpointServiceClient, log *slog.Logger) (*service, error) {
	if !cfg.Engine {
		log.Info("dialer: API replica; the engine runs elsewhere")
		return &service{api: &Server{DB: p.DB, Calls: calls, Endpoints: endpoints, Log: log}, stop: func(context.Context) {}}, nil
	}
	engine := NewEngine(EngineConfig{Instance: cfg.Instance, Tick: cfg.Tick, Lease: cfg.Lease, Endpoints: endpoints,
		DefaultHours: cfg.DefaultHours, OutcomeWorkers: cfg.OutcomeWorkers, Registerer: p.Registry}, p.DB, calls, log)
	// The dialer may start before anything created the stream it reads.
	if err := p.Bus.EnsureStream(ctx, natsbus.Calls(0)); err != nil {
		return nil, fmt.Errorf("calls stream: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	cons, err := engine.ConsumeOutcomes(runCtx, p.Bus)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("consume call outcomes: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		engine.Run(runCtx)
	}()
	api := &Server{DB: p.DB, Calls: calls, Endpoints: endpoints, Engine: engine, Log: log}
	return &service{api: api, stop: func(dctx context.Context) {
		// New dials stop at once; the calls in progress go on in
		// origination, and their outcomes reach whichever replica reads
		// them (another one, or this one after a restart).
		cancel()
		wg.Wait()
		if err := cons.Stop(dctx); err != nil {
			log.Warn("stop the outcome consumer", "err", err)
		}
	}}, nil
}
