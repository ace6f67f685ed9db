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

// service is the dialer assembled: the APIs, the engine and its consumer of
// call outcomes, and the agents' router.
type service struct {
	api    *Server
	agents *AgentServer
	stop   func(context.Context)
}

// startService assembles the dialer. Every replica serves both APIs; the
// engine replicas also dial and run the agents' router (its consumer of
// the call events and its loop over the calls waiting for an agent). An API
// replica changes agents' states through Redis like any other, and tells
// the routers when an agent became free over NATS (AgentFreeSubject).
func startService(ctx context.Context, cfg Config, p *platform.Platform, calls originationv1.CallServiceClient,
	endpoints originationv1.EndpointServiceClient, log *slog.Logger) (*service, error) {
	store := NewAgentStore(p.Cache)
	agents := &AgentServer{DB: p.DB, Agents: store, Calls: calls, Endpoints: endpoints, Log: log}
	if !cfg.Engine {
		log.Info("dialer: API replica; the engine and the agents' router run elsewhere")
		agents.Changed = func() { _ = p.Bus.Notify(AgentFreeSubject, nil) }
		return &service{api: &Server{DB: p.DB, Calls: calls, Endpoints: endpoints, Agents: store, Log: log}, agents: agents, stop: func(context.Context) {}}, nil
	}
	engine := NewEngine(EngineConfig{Instance: cfg.Instance, Tick: cfg.Tick, Lease: cfg.Lease, Endpoints: endpoints,
		DefaultHours: cfg.DefaultHours, OutcomeWorkers: cfg.OutcomeWorkers, Registerer: p.Registry, Agents: store,
		AgentMultiplier: cfg.AgentMultiplier, PacingScale: cfg.PacingScale}, p.DB, calls, log)
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
	router := NewRouter(RouterConfig{Registerer: p.Registry}, store, calls, p.Bus, log)
	stopRouter, err := router.Start(ctx)
	if err != nil {
		cancel()
		_ = cons.Stop(context.Background())
		return nil, fmt.Errorf("agents' router: %w", err)
	}
	agents.Changed = router.Wake
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		engine.Run(runCtx)
	}()
	api := &Server{DB: p.DB, Calls: calls, Endpoints: endpoints, Engine: engine, Agents: store, Log: log}
	return &service{api: api, agents: agents, stop: func(dctx context.Context) {
		// New dials stop at once; the calls in progress go on in
		// origination, and their outcomes reach whichever replica reads
		// them (another one, or this one after a restart). The router
		// finishes the connections it started; the calls still waiting are
		// served by the other replicas' routers (they are in Redis).
		cancel()
		wg.Wait()
		if err := stopRouter(dctx); err != nil {
			log.Warn("stop the agents' router", "err", err)
		}
		if err := cons.Stop(dctx); err != nil {
			log.Warn("stop the outcome consumer", "err", err)
		}
	}}, nil
}
