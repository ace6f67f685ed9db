package dialer

import (
	"context"
	"log/slog"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/platform"
)

// service is the dialer assembled: the API and the engine.
type service struct {
	api  *Server
	stop func(context.Context)
}

func startService(ctx context.Context, cfg Config, p *platform.Platform, calls originationv1.CallServiceClient,
	endpoints originationv1.EndpointServiceClient, log *slog.Logger) (*service, error) {
	api := &Server{DB: p.DB, Calls: calls, Endpoints: endpoints, Log: log}
	return &service{api: api, stop: func(context.Context) {}}, nil
}
