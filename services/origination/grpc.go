package origination

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/apierr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// AccountHeader is the gRPC metadata key carrying the authenticated account
// ID. The gateway sets it after checking the API key; services trust it
// because they are only reachable from inside the cluster.
const AccountHeader = "ringback-account-id"

// ErrorDomain is the domain of every ErrorInfo this service returns.
const ErrorDomain = "origination.ringback.dev"

// AccountFromContext returns the account a request acts for.
func AccountFromContext(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(AccountHeader); len(v) == 1 && v[0] != "" {
		return v[0], nil
	}
	return "", statusError(codes.Unauthenticated, "UNAUTHENTICATED", "no account in the request")
}

// statusError builds a gRPC status with a stable machine-readable reason
// (google.rpc.ErrorInfo) that the gateway turns into the JSON error code.
func statusError(code codes.Code, reason, msg string) error {
	return apierr.New(ErrorDomain, code, reason, msg)
}

// GRPCError maps the engine's errors to gRPC statuses with stable reasons.
func GRPCError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrInvalid):
		return statusError(codes.InvalidArgument, "INVALID_ARGUMENT", err.Error())
	case errors.Is(err, ErrUnknownEndpoint):
		return statusError(codes.NotFound, "ENDPOINT_NOT_FOUND", err.Error())
	case errors.Is(err, ErrEndpointBusy):
		return statusError(codes.FailedPrecondition, "ENDPOINT_BUSY", err.Error())
	case errors.Is(err, ErrNotFound):
		return statusError(codes.NotFound, "CALL_NOT_FOUND", err.Error())
	case errors.Is(err, ErrNotReleasable):
		return statusError(codes.FailedPrecondition, "CALL_NOT_RELEASABLE", err.Error())
	case errors.Is(err, ErrNotWaiting):
		return statusError(codes.FailedPrecondition, "CALL_NOT_WAITING", err.Error())
	case errors.Is(err, ErrRatingUnavailable):
		return statusError(codes.Unavailable, "RATING_UNAVAILABLE", "rating is unavailable, so the call was not placed; retry shortly")
	case errors.Is(err, ErrNoSwitch):
		return statusError(codes.Unavailable, "SWITCH_UNAVAILABLE", "no FreeSWITCH node is connected; retry shortly")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return statusError(codes.DeadlineExceeded, "TIMEOUT", err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return statusError(codes.Internal, "INTERNAL", "internal error")
}

// CallServer is the CallService gRPC API.
type CallServer struct {
	originationv1.UnimplementedCallServiceServer
	Engine *Engine
	// Redis backs idempotency keys (24 h).
	Redis redis.UniversalClient
	Now   func() time.Time
	// Draining, when it reports true, makes CreateCall refuse new calls
	// (stage one of the two-stage shutdown).
	Draining func() bool
	// Log receives the internal errors the API hides from clients.
	Log *slog.Logger
}

// fail maps an error for the client and logs what the client won't see.
func (s *CallServer) fail(op string, err error) error {
	gerr := GRPCError(err)
	if st, _ := status.FromError(gerr); st.Code() == codes.Internal && s.Log != nil {
		s.Log.Error("call API internal error", "op", op, "err", err)
	}
	return gerr
}

func (s *CallServer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func partyFromProto(p *originationv1.PartySpec) PartySpec {
	if p == nil {
		return PartySpec{}
	}
	return PartySpec{Number: p.GetNumber(), EndpointID: p.GetEndpointId(), CallerIDNumber: p.GetCallerIdNumber(),
		CallerIDName: p.GetCallerIdName(), RingTimeoutMS: int(p.GetRingTimeoutMs())}
}

func menuFromProto(m *originationv1.Menu) *Menu {
	if m == nil {
		return nil
	}
	out := &Menu{Tries: int(m.GetTries()), TimeoutMS: int(m.GetTimeoutMs()), Invalid: m.GetInvalid()}
	for _, o := range m.GetOptions() {
		// An unknown action stays "" and is refused by validation.
		out.Options = append(out.Options, MenuOption{Digit: o.GetDigit(), Action: menuActionFromProto[o.GetAction()]})
	}
	return out
}

func awaitFromProto(a *originationv1.AwaitAgent) *AwaitAgent {
	if a == nil {
		return nil
	}
	return &AwaitAgent{TimeoutMS: int(a.GetTimeoutMs()), SafeHarbour: a.GetSafeHarbour(), HoldMusic: a.GetHoldMusic()}
}

// CreateCall validates and starts a call; it answers at once with the call
// (its ID is returned even though the call is only dialing).
func (s *CallServer) CreateCall(ctx context.Context, req *originationv1.CreateCallRequest) (*originationv1.CreateCallResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if s.Draining != nil && s.Draining() {
		return nil, errDraining
	}
	if k := req.GetIdempotencyKey(); k != "" {
		if len(k) > 128 {
			return nil, statusError(codes.InvalidArgument, "INVALID_ARGUMENT", "idempotency_key is longer than 128 characters")
		}
		if id, err := s.Redis.Get(ctx, idemKey(account, k)).Result(); err == nil {
			c, err := s.Engine.Get(ctx, id)
			if err != nil {
				return nil, GRPCError(err)
			}
			return &originationv1.CreateCallResponse{Call: ToProto(c, s.now())}, nil
		}
	}
	if len(req.GetVariables()) > 64 {
		return nil, statusError(codes.InvalidArgument, "INVALID_ARGUMENT", "at most 64 variables")
	}
	for k, v := range req.GetVariables() {
		if k == "" || len(k) > 64 || len(v) > 1024 {
			return nil, statusError(codes.InvalidArgument, "INVALID_ARGUMENT", fmt.Sprintf("variable %q: names 1-64 characters, values up to 1024", k))
		}
	}
	mode := ModeSequential
	if req.GetMode() == originationv1.CallMode_CALL_MODE_SIMULTANEOUS {
		mode = ModeSimultaneous
	}
	c, err := s.Engine.Create(ctx, CreateRequest{
		AccountID: account, Source: sourceFromContext(ctx), Mode: mode,
		First: partyFromProto(req.GetFirst()), Second: partyFromProto(req.GetSecond()),
		Announcement: req.GetAnnouncement(), MaxDurationS: int(req.GetMaxDurationS()), Variables: req.GetVariables(),
		ReminderTimeoutS: int(req.GetReminderTimeoutS()), Menu: menuFromProto(req.GetMenu()),
		MachineDetection: MachineDetection{Enabled: req.GetMachineDetection().GetEnabled(), Message: req.GetMachineDetection().GetMessage()},
		Conference:       req.GetConference(), AwaitAgent: awaitFromProto(req.GetAwaitAgent()),
	})
	if err != nil {
		return nil, s.fail("CreateCall", err)
	}
	if k := req.GetIdempotencyKey(); k != "" {
		s.Redis.Set(ctx, idemKey(account, k), c.ID, 24*time.Hour)
	}
	return &originationv1.CreateCallResponse{Call: ToProto(c, s.now())}, nil
}

// SourceHeader is the gRPC metadata key naming where a call comes from
// (CALL_SOURCE_BANNER, CALL_SOURCE_CLICK_TO_DIAL_LEGACY, ...); trusted like
// AccountHeader because only internal services can reach the API.
const SourceHeader = "ringback-call-source"

func sourceFromContext(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(SourceHeader); len(v) == 1 {
		if src, ok := originationv1.CallSource_value[v[0]]; ok && src != 0 {
			return strings.TrimPrefix(v[0], "CALL_SOURCE_")
		}
	}
	return "API"
}

func idemKey(account, key string) string { return "origination:idem:" + account + ":" + key }

// GetCall returns a call of the caller's account.
func (s *CallServer) GetCall(ctx context.Context, req *originationv1.GetCallRequest) (*originationv1.GetCallResponse, error) {
	c, err := s.owned(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &originationv1.GetCallResponse{Call: ToProto(c, s.now())}, nil
}

// HangupCall ends a call of the caller's account.
func (s *CallServer) HangupCall(ctx context.Context, req *originationv1.HangupCallRequest) (*originationv1.HangupCallResponse, error) {
	if _, err := s.owned(ctx, req.GetId()); err != nil {
		return nil, err
	}
	cause := req.GetCause()
	if cause != "" && !validHangupCause(cause) {
		return nil, statusError(codes.InvalidArgument, "INVALID_ARGUMENT", "cause must be a FreeSWITCH hangup cause such as NORMAL_CLEARING")
	}
	if ms := req.GetUnansweredRingingMs(); ms != 0 {
		if ms < 0 || cause != "" {
			return nil, statusError(codes.InvalidArgument, "INVALID_ARGUMENT", "unanswered_ringing_ms must be positive, and without a cause")
		}
		c, err := s.Engine.Release(ctx, req.GetId(), time.Duration(ms)*time.Millisecond)
		if err != nil {
			return nil, GRPCError(err)
		}
		return &originationv1.HangupCallResponse{Call: ToProto(c, s.now())}, nil
	}
	c, err := s.Engine.Hangup(ctx, req.GetId(), cause)
	if err != nil {
		return nil, GRPCError(err)
	}
	return &originationv1.HangupCallResponse{Call: ToProto(c, s.now())}, nil
}

// ConnectCall puts the party of a call that waits for an agent in a room
// (normally the agent's session room). The call comes back with its
// conference set; it is BRIDGED once the party is in the room
// (CONFERENCE_JOINED), a few milliseconds later.
func (s *CallServer) ConnectCall(ctx context.Context, req *originationv1.ConnectCallRequest) (*originationv1.ConnectCallResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if id := req.GetId(); id == "" || len(id) > 64 {
		return nil, statusError(codes.InvalidArgument, "INVALID_ARGUMENT", "id is required")
	}
	if err := validRoom(req.GetConference()); err != nil {
		return nil, GRPCError(err)
	}
	// The engine checks the account on the call it loads anyway: one
	// read of the call rather than two on this latency-bound path.
	c, err := s.Engine.Connect(ctx, account, req.GetId(), req.GetConference())
	if err != nil {
		return nil, s.fail("ConnectCall", err)
	}
	return &originationv1.ConnectCallResponse{Call: ToProto(c, s.now())}, nil
}

// TurnAwayCall ends the wait of a call in a queue at once, with the
// queue's message (Engine.TurnAway).
func (s *CallServer) TurnAwayCall(ctx context.Context, req *originationv1.TurnAwayCallRequest) (*originationv1.TurnAwayCallResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if id := req.GetId(); id == "" || len(id) > 64 {
		return nil, statusError(codes.InvalidArgument, "INVALID_ARGUMENT", "id is required")
	}
	var reason FailureReason
	switch req.GetReason() {
	case originationv1.FailureReason_FAILURE_REASON_QUEUE_EMPTY:
		reason = ReasonQueueEmpty
	case originationv1.FailureReason_FAILURE_REASON_QUEUE_FULL:
		reason = ReasonQueueFull
	default:
		return nil, statusError(codes.InvalidArgument, "INVALID_ARGUMENT", "reason must be FAILURE_REASON_QUEUE_EMPTY or FAILURE_REASON_QUEUE_FULL")
	}
	c, err := s.Engine.TurnAway(ctx, account, req.GetId(), reason)
	if err != nil {
		return nil, s.fail("TurnAwayCall", err)
	}
	return &originationv1.TurnAwayCallResponse{Call: ToProto(c, s.now())}, nil
}

// ListLiveCalls lists the account's calls that have not ended.
func (s *CallServer) ListLiveCalls(ctx context.Context, req *originationv1.ListLiveCallsRequest) (*originationv1.ListLiveCallsResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	calls, err := s.Engine.LiveCalls(ctx, account)
	if err != nil {
		return nil, GRPCError(err)
	}
	size := int(req.GetPageSize())
	if size <= 0 || size > 500 {
		size = 100
	}
	start := 0
	if tok := req.GetPageToken(); tok != "" {
		start = len(calls)
		for i, c := range calls {
			if c.ID > tok {
				start = i
				break
			}
		}
	}
	resp := &originationv1.ListLiveCallsResponse{}
	for i := start; i < len(calls) && len(resp.Calls) < size; i++ {
		resp.Calls = append(resp.Calls, ToProto(calls[i], s.now()))
		if len(resp.Calls) == size && i+1 < len(calls) {
			resp.NextPageToken = calls[i].ID
		}
	}
	return resp, nil
}

// owned loads a call and hides other accounts' calls.
func (s *CallServer) owned(ctx context.Context, id string) (*Call, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if id == "" || len(id) > 64 {
		return nil, statusError(codes.InvalidArgument, "INVALID_ARGUMENT", "id is required")
	}
	c, err := s.Engine.Get(ctx, id)
	if err != nil {
		return nil, GRPCError(err)
	}
	if c.AccountID != account {
		return nil, GRPCError(fmt.Errorf("call %s: %w", id, ErrNotFound))
	}
	return c, nil
}

func validHangupCause(c string) bool {
	for _, r := range c {
		if (r < 'A' || r > 'Z') && r != '_' {
			return false
		}
	}
	return len(c) > 2 && len(c) < 40
}
