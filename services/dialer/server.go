package dialer

import (
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
)

// Server is the DialerService gRPC API. Its methods are split by concern:
// campaigns.go (campaigns, their statuses, reports), lists.go (recipient
// lists), dnc.go (do-not-call).
type Server struct {
	dialerv1.UnimplementedDialerServiceServer
	DB *pgxpool.Pool
	// Calls hangs up a cancelled campaign's live calls.
	Calls originationv1.CallServiceClient
	// Endpoints checks a campaign's on_answer endpoint (nil: not checked).
	Endpoints originationv1.EndpointServiceClient
	// Engine is woken when a campaign starts or resumes (nil in tests of
	// the API alone).
	Engine interface{ Wake() }
	// Agents gives a campaign served by agents its agents and waiting
	// calls in its progress (nil: not given).
	Agents *AgentStore
	Log    *slog.Logger
	Now    func() time.Time
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
