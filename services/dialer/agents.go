package dialer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/fieldmask"
	"github.com/ringback/ringback/services/internal/ids"
)

// The agents' API. An agent (its name, phone and campaigns) is a row of
// dialer.agents; what it is doing is its live state in the AgentStore
// (Redis), which every replica shares:
//
//	LOGGED_OUT -> LOGGING_IN (Login: its phone is called) -> READY (the phone answered and joined the room)
//	READY -> ON_CALL (the router gave it a customer) -> WRAP_UP (the call ended) -> READY (wrap_up_s later)
//	READY, WRAP_UP -> PAUSED (Pause) -> READY (SetReady); ON_CALL -> (Pause) -> PAUSED after the call and its wrap-up
//	any -> LOGGED_OUT (Logout, or the session call ended)

// Errors of the agents' API.
var (
	ErrAgentNotFound     = newError(codes.NotFound, "AGENT_NOT_FOUND", "agent not found")
	ErrAgentExists       = newError(codes.AlreadyExists, "AGENT_EXISTS", "the name or the endpoint is another agent's")
	ErrAgentLoggedIn     = newError(codes.FailedPrecondition, "AGENT_LOGGED_IN", "the agent is logged in")
	ErrInvalidAgentState = newError(codes.FailedPrecondition, "INVALID_AGENT_STATE", "the agent's state does not allow that")
	ErrEndpointBusy      = newError(codes.FailedPrecondition, "ENDPOINT_BUSY", "the agent's phone is in another call")
)

// Limits of an agent's settings.
const (
	DefaultWrapUp  = 10 * time.Second
	MaxWrapUpS     = 3600
	maxAgentCamps  = 100
	maxPauseReason = 100
)

// Variables of an agent's session call: the router knows the agent (and
// which of its logins the call is) by them.
const (
	VarAgent        = "dialer_agent_id"
	VarAgentSession = "dialer_agent_session"
)

// AgentServer is the AgentService gRPC API.
type AgentServer struct {
	dialerv1.UnimplementedAgentServiceServer
	DB     *pgxpool.Pool
	Agents *AgentStore
	// Calls places and hangs up the agents' session calls.
	Calls originationv1.CallServiceClient
	// Endpoints checks an agent's endpoint (nil: not checked).
	Endpoints originationv1.EndpointServiceClient
	// Changed is called when the agents a campaign can count on may have
	// changed (SetReady, Pause, Logout, UpdateAgent), so that the routers
	// look at the waiting calls at once rather than at their next look: a
	// freed agent takes one, and a queue left with no agent turns its
	// callers away (turnAwayWhenEmpty); nil: none.
	Changed func()
	// RPCTimeout bounds each request to origination (default 5s).
	RPCTimeout time.Duration
	Log        *slog.Logger
	Now        func() time.Time
}

func (s *AgentServer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *AgentServer) rpcTimeout() time.Duration {
	if s.RPCTimeout > 0 {
		return s.RPCTimeout
	}
	return DefaultRPCTimeout
}

func (s *AgentServer) changed() {
	if s.Changed != nil {
		s.Changed()
	}
}

// agentOutputOnly are the Agent fields a client cannot set.
var agentOutputOnly = map[string]bool{"id": true, "state": true, "pause_reason": true, "state_since": true, "call_id": true,
	"campaign_id": true, "session_call_id": true, "wrap_up_until": true, "pending_pause_reason": true, "calls_taken": true, "created_at": true}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// agentRow is an agent as stored in PostgreSQL.
type agentRow struct {
	a       *dialerv1.Agent
	account string
	logins  int64
}

const agentCols = `a.id, a.account_id, a.name, a.endpoint_id, a.wrap_up_s, a.logins, a.created_at,
	ARRAY(SELECT ac.campaign_id::text FROM dialer.agent_campaigns ac WHERE ac.agent_id = a.id ORDER BY ac.campaign_id)`

func scanAgent(row pgx.Row) (*agentRow, error) {
	var (
		r       agentRow
		id      string
		wrap    int32
		created time.Time
	)
	r.a = &dialerv1.Agent{}
	if err := row.Scan(&id, &r.account, &r.a.Name, &r.a.EndpointId, &wrap, &r.logins, &created, &r.a.CampaignIds); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrAgentNotFound
		}
		return nil, err
	}
	r.a.Id, r.a.WrapUpS, r.a.CreatedAt = id, proto.Int32(wrap), timestamppb.New(created)
	return &r, nil
}

func agentErr(err error) error {
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "23505":
		return ErrAgentExists
	case errors.As(err, &pe) && pe.Code == "23503":
		return ErrCampaignNotFound // deleted meanwhile
	}
	return err
}

// withState fills in an agent's live state.
func withState(a *dialerv1.Agent, l agentLive) *dialerv1.Agent {
	a.State, a.CallsTaken = l.state, l.taken
	if l.state == dialerv1.AgentState_AGENT_STATE_LOGGED_OUT {
		a.CallsTaken = 0
		return a
	}
	if l.since.UnixMilli() > 0 {
		a.StateSince = timestamppb.New(l.since)
	}
	a.SessionCallId = l.session
	switch l.state {
	case dialerv1.AgentState_AGENT_STATE_ON_CALL:
		a.CallId, a.CampaignId, a.PendingPauseReason = l.call, l.campaign, l.pending
	case dialerv1.AgentState_AGENT_STATE_WRAP_UP:
		a.WrapUpUntil, a.PendingPauseReason = timestamppb.New(l.wrapUntil), l.pending
	case dialerv1.AgentState_AGENT_STATE_PAUSED:
		a.PauseReason = l.pause
	}
	return a
}

// load returns one of the account's agents, with its state.
func (s *AgentServer) load(ctx context.Context, q querier, account, id string, forUpdate bool) (*agentRow, error) {
	if !uuidRe.MatchString(id) {
		return nil, ErrAgentNotFound
	}
	lock := ""
	if forUpdate {
		lock = " FOR UPDATE OF a"
	}
	return scanAgent(q.QueryRow(ctx, `SELECT `+agentCols+` FROM dialer.agents a WHERE a.account_id = $1 AND a.id = $2`+lock, account, id))
}

// loadLive is load with the agent's state.
func (s *AgentServer) loadLive(ctx context.Context, account, id string) (*dialerv1.Agent, error) {
	r, err := s.load(ctx, s.DB, account, id, false)
	if err != nil {
		return nil, err
	}
	return s.live(ctx, r.a)
}

func (s *AgentServer) live(ctx context.Context, a *dialerv1.Agent) (*dialerv1.Agent, error) {
	l, err := s.Agents.state(ctx, a.GetId(), s.now())
	if err != nil {
		return nil, err
	}
	return withState(a, l), nil
}

// validate checks an agent's settings and normalizes them: the name, the
// endpoint (an endpoint of the account, checked with origination when
// checkEndpoint), the wrap-up (unset: 10 s) and the campaigns (of the
// account; sorted, without repeats).
func (s *AgentServer) validate(ctx context.Context, q querier, account string, a *dialerv1.Agent, checkEndpoint bool) error {
	bad := func(format string, args ...any) error {
		return ErrInvalidArgument.WithMsg(fmt.Sprintf(format, args...))
	}
	if !nameRe.MatchString(a.GetName()) {
		return bad("name must be 1-100 printable characters")
	}
	if a.WrapUpS == nil {
		a.WrapUpS = proto.Int32(int32(DefaultWrapUp / time.Second))
	}
	if w := a.GetWrapUpS(); w < 0 || w > MaxWrapUpS {
		return bad("wrap_up_s must be between 0 and %d", MaxWrapUpS)
	}
	ep := a.GetEndpointId()
	if ep == "" {
		return bad("endpoint_id is required (the agent's phone)")
	}
	if !uuidRe.MatchString(ep) {
		return bad("endpoint_id: %q is not an endpoint id", ep)
	}
	if checkEndpoint && s.Endpoints != nil {
		rctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, AccountHeader, account), s.rpcTimeout())
		_, err := s.Endpoints.GetEndpoint(rctx, &originationv1.GetEndpointRequest{Id: ep})
		cancel()
		if err != nil {
			return err // origination's NOT_FOUND ENDPOINT_NOT_FOUND, as it is
		}
	}
	camps := slices.Clone(a.GetCampaignIds())
	slices.Sort(camps)
	camps = slices.Compact(camps)
	if len(camps) > maxAgentCamps {
		return bad("campaign_ids: at most %d campaigns", maxAgentCamps)
	}
	for _, c := range camps {
		if !uuidRe.MatchString(c) {
			return ErrCampaignNotFound.WithMsg(fmt.Sprintf("campaign %q not found", c))
		}
	}
	if len(camps) > 0 {
		var found []string
		rows, err := q.Query(ctx, `SELECT id::text FROM dialer.campaigns WHERE account_id = $1 AND id = ANY($2::uuid[])`, account, camps)
		if err != nil {
			return err
		}
		if found, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		for _, c := range camps {
			if !slices.Contains(found, c) {
				return ErrCampaignNotFound.WithMsg(fmt.Sprintf("campaign %s not found", c))
			}
		}
	}
	a.CampaignIds = camps
	return nil
}

// setCampaigns replaces an agent's campaigns.
func setCampaigns(ctx context.Context, tx pgx.Tx, id string, camps []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM dialer.agent_campaigns WHERE agent_id = $1`, id); err != nil {
		return err
	}
	if len(camps) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO dialer.agent_campaigns (agent_id, campaign_id) SELECT $1, unnest($2::uuid[])`, id, camps)
	return err
}

// CreateAgent stores an agent, LOGGED_OUT.
func (s *AgentServer) CreateAgent(ctx context.Context, req *dialerv1.CreateAgentRequest) (*dialerv1.CreateAgentResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetAgent()
	if in == nil {
		in = &dialerv1.Agent{}
	}
	a := &dialerv1.Agent{Name: in.GetName(), EndpointId: in.GetEndpointId(), WrapUpS: in.WrapUpS, CampaignIds: in.GetCampaignIds()}
	var out *agentRow
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if err := s.validate(ctx, tx, account, a, true); err != nil {
			return err
		}
		id := ids.NewV4()
		if _, err := tx.Exec(ctx, `INSERT INTO dialer.agents (id, account_id, name, endpoint_id, wrap_up_s) VALUES ($1, $2, $3, $4, $5)`,
			id, account, a.GetName(), a.GetEndpointId(), a.GetWrapUpS()); err != nil {
			return agentErr(err)
		}
		if err := setCampaigns(ctx, tx, id, a.GetCampaignIds()); err != nil {
			return agentErr(err)
		}
		out, err = s.load(ctx, tx, account, id, false)
		return err
	})
	if err != nil {
		return nil, grpcError(s.Log, "CreateAgent", err)
	}
	return &dialerv1.CreateAgentResponse{Agent: withState(out.a, agentLive{state: dialerv1.AgentState_AGENT_STATE_LOGGED_OUT})}, nil
}

// GetAgent returns an agent with its state.
func (s *AgentServer) GetAgent(ctx context.Context, req *dialerv1.GetAgentRequest) (*dialerv1.GetAgentResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.loadLive(ctx, account, req.GetId())
	if err != nil {
		return nil, grpcError(s.Log, "GetAgent", err)
	}
	return &dialerv1.GetAgentResponse{Agent: a}, nil
}

// ListAgents pages through the account's agents by name (with their
// states: one round trip to Redis per page).
func (s *AgentServer) ListAgents(ctx context.Context, req *dialerv1.ListAgentsRequest) (*dialerv1.ListAgentsResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after := ""
	if tok := req.GetPageToken(); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(b) == 0 || !utf8.Valid(b) {
			return nil, ErrInvalidPageToken
		}
		after = string(b)
	}
	camp := req.GetCampaignId()
	if camp != "" {
		var n int
		if !uuidRe.MatchString(camp) {
			return nil, ErrCampaignNotFound
		}
		if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM dialer.campaigns WHERE account_id = $1 AND id = $2`, account, camp).Scan(&n); err != nil {
			return nil, grpcError(s.Log, "ListAgents", err)
		}
		if n == 0 {
			return nil, ErrCampaignNotFound
		}
	}
	rows, err := s.DB.Query(ctx, `SELECT `+agentCols+` FROM dialer.agents a
		WHERE a.account_id = $1 AND a.name > $2
			AND ($3 = '' OR EXISTS (SELECT 1 FROM dialer.agent_campaigns ac WHERE ac.agent_id = a.id AND ac.campaign_id = NULLIF($3, '')::uuid))
		ORDER BY a.name LIMIT $4`, account, after, camp, size+1)
	if err != nil {
		return nil, grpcError(s.Log, "ListAgents", err)
	}
	var agents []*dialerv1.Agent
	for rows.Next() {
		r, err := scanAgent(rows)
		if err != nil {
			rows.Close()
			return nil, grpcError(s.Log, "ListAgents", err)
		}
		agents = append(agents, r.a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, grpcError(s.Log, "ListAgents", err)
	}
	resp := &dialerv1.ListAgentsResponse{}
	if len(agents) > size {
		agents = agents[:size]
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(agents[size-1].GetName()))
	}
	idsOf := make([]string, len(agents))
	for i, a := range agents {
		idsOf[i] = a.GetId()
	}
	lives, err := s.Agents.states(ctx, idsOf, s.now())
	if err != nil {
		return nil, grpcError(s.Log, "ListAgents", err)
	}
	for i, a := range agents {
		resp.Agents = append(resp.Agents, withState(a, lives[i]))
	}
	return resp, nil
}

// UpdateAgent changes an agent's name, endpoint (only while logged out),
// wrap-up or campaigns. A logged-in agent's new campaigns and wrap-up apply
// at once (the wrap-up from its next call).
func (s *AgentServer) UpdateAgent(ctx context.Context, req *dialerv1.UpdateAgentRequest) (*dialerv1.UpdateAgentResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetAgent()
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		paths = []string{"name", "endpoint_id", "wrap_up_s", "campaign_ids"}
	}
	var (
		out      *agentRow
		loggedIn bool
	)
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		// The row lock orders this with Login and DeleteAgent.
		cur, err := s.load(ctx, tx, account, in.GetId(), true)
		if err != nil {
			return err
		}
		next := proto.Clone(cur.a).(*dialerv1.Agent)
		for _, p := range paths {
			if agentOutputOnly[p] {
				continue // grpc-gateway may include them
			}
			if err := fieldmask.Copy(next, in, p); err != nil {
				return ErrInvalidArgument.WithMsg("update_mask: " + err.Error())
			}
		}
		newEndpoint := next.GetEndpointId() != cur.a.GetEndpointId()
		if err := s.validate(ctx, tx, account, next, newEndpoint); err != nil {
			return err
		}
		l, err := s.Agents.state(ctx, cur.a.GetId(), s.now())
		if err != nil {
			return err
		}
		loggedIn = l.state != dialerv1.AgentState_AGENT_STATE_LOGGED_OUT
		if newEndpoint && loggedIn {
			return ErrAgentLoggedIn.WithMsg("the endpoint of a logged-in agent cannot change: log it out first")
		}
		if _, err := tx.Exec(ctx, `UPDATE dialer.agents SET name = $2, endpoint_id = $3, wrap_up_s = $4, updated_at = now() WHERE id = $1`,
			cur.a.GetId(), next.GetName(), next.GetEndpointId(), next.GetWrapUpS()); err != nil {
			return agentErr(err)
		}
		if !slices.Equal(next.GetCampaignIds(), cur.a.GetCampaignIds()) {
			if err := setCampaigns(ctx, tx, cur.a.GetId(), next.GetCampaignIds()); err != nil {
				return agentErr(err)
			}
		}
		out, err = s.load(ctx, tx, account, cur.a.GetId(), false)
		return err
	})
	if err != nil {
		return nil, grpcError(s.Log, "UpdateAgent", err)
	}
	if loggedIn {
		// After the commit: a Login waiting on the row reads the new
		// campaigns itself, and this only repeats them.
		if err := s.Agents.configure(ctx, out.a.GetId(), out.a.GetCampaignIds(), int(out.a.GetWrapUpS())); err != nil {
			return nil, grpcError(s.Log, "UpdateAgent", err)
		}
		s.changed() // free in a campaign it was not in, or gone from one
	}
	a, err := s.live(ctx, out.a)
	if err != nil {
		return nil, grpcError(s.Log, "UpdateAgent", err)
	}
	return &dialerv1.UpdateAgentResponse{Agent: a}, nil
}

// DeleteAgent deletes a logged-out agent.
func (s *AgentServer) DeleteAgent(ctx context.Context, req *dialerv1.DeleteAgentRequest) (*dialerv1.DeleteAgentResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		cur, err := s.load(ctx, tx, account, req.GetId(), true)
		if err != nil {
			return err
		}
		l, err := s.Agents.state(ctx, cur.a.GetId(), s.now())
		if err != nil {
			return err
		}
		if l.state != dialerv1.AgentState_AGENT_STATE_LOGGED_OUT {
			return ErrAgentLoggedIn.WithMsg("a logged-in agent cannot be deleted: log it out first")
		}
		_, err = tx.Exec(ctx, `DELETE FROM dialer.agents WHERE id = $1`, cur.a.GetId())
		return err
	})
	if err != nil {
		return nil, grpcError(s.Log, "DeleteAgent", err)
	}
	if err := s.Agents.forget(ctx, req.GetId()); err != nil {
		s.Log.Warn("dialer: forget a deleted agent's state", "agent_id", req.GetId(), "err", err)
	}
	return &dialerv1.DeleteAgentResponse{}, nil
}

// outgoing is ctx with the metadata origination wants from the dialer.
func outgoingDialer(ctx context.Context, account string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, AccountHeader, account, callSourceHeader,
		originationv1.CallSource_CALL_SOURCE_DIALER.String())
}

// sessionKey is the idempotency key of an agent's n-th session call.
func sessionKey(id string, n int64) string { return "agent:" + id + ":" + strconv.FormatInt(n, 10) }

// Login logs an agent in: LOGGING_IN, and its phone is called into its room
// ("agent-<id>"); the router makes it READY when the phone joins the room.
func (s *AgentServer) Login(ctx context.Context, req *dialerv1.LoginRequest) (*dialerv1.LoginResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	var (
		r     *agentRow
		began bool
	)
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if r, err = s.load(ctx, tx, account, req.GetId(), true); err != nil {
			return err
		}
		// Each login has its number, kept in PostgreSQL so that a session
		// call's idempotency key is never reused.
		if err := tx.QueryRow(ctx, `UPDATE dialer.agents SET logins = logins + 1 WHERE id = $1 RETURNING logins`, r.a.GetId()).Scan(&r.logins); err != nil {
			return err
		}
		if err := s.Agents.login(ctx, r.a.GetId(), account, r.a.GetCampaignIds(), int(r.a.GetWrapUpS()), r.logins, s.now()); err != nil {
			if errors.Is(err, errStateLoggedIn) {
				return ErrAgentLoggedIn.WithMsg("the agent is logged in already")
			}
			return err
		}
		began = true
		return nil
	})
	if err != nil {
		if began { // the commit failed: no session call will come
			if aerr := s.Agents.abortLogin(context.WithoutCancel(ctx), r.a.GetId(), r.logins); aerr != nil {
				s.Log.Error("dialer: abort a failed login", "agent_id", r.a.GetId(), "err", aerr)
			}
		}
		return nil, grpcError(s.Log, "Login", err)
	}
	id, n := r.a.GetId(), r.logins
	log := s.Log.With("agent_id", id, "login", n)
	rctx, cancel := context.WithTimeout(outgoingDialer(ctx, account), s.rpcTimeout())
	resp, err := s.Calls.CreateCall(rctx, &originationv1.CreateCallRequest{
		First:          &originationv1.PartySpec{Target: &originationv1.PartySpec_EndpointId{EndpointId: r.a.GetEndpointId()}},
		Conference:     "agent-" + id,
		Variables:      map[string]string{VarAgent: id, VarAgentSession: strconv.FormatInt(n, 10)},
		IdempotencyKey: sessionKey(id, n),
	})
	cancel()
	if err != nil {
		if aerr := s.Agents.abortLogin(context.WithoutCancel(ctx), id, n); aerr != nil {
			log.Error("dialer: abort a failed login", "err", aerr)
		}
		if errorReason(status.Convert(err)) == "ENDPOINT_BUSY" {
			return nil, ErrEndpointBusy
		}
		return nil, grpcError(s.Log, "Login", err)
	}
	call := resp.GetCall()
	log = log.With("call_id", call.GetId())
	ok, err := s.Agents.setSession(context.WithoutCancel(ctx), id, n, call.GetId(), finalCall(call.GetStatus()))
	if err != nil {
		return nil, grpcError(s.Log, "Login", err)
	}
	if !ok && !finalCall(call.GetStatus()) {
		// Logged out while its phone was being called.
		log.Info("dialer: agent logged out during its login; session call hung up")
		s.hangup(ctx, log, account, call.GetId())
	}
	log.Info("dialer: agent logging in")
	a, err := s.live(ctx, r.a)
	if err != nil {
		return nil, grpcError(s.Log, "Login", err)
	}
	return &dialerv1.LoginResponse{Agent: a}, nil
}

// hangup hangs up a session call; an ended or forgotten call is fine.
func (s *AgentServer) hangup(ctx context.Context, log *slog.Logger, account, callID string) error {
	rctx, cancel := context.WithTimeout(outgoingDialer(context.WithoutCancel(ctx), account), s.rpcTimeout())
	defer cancel()
	_, err := s.Calls.HangupCall(rctx, &originationv1.HangupCallRequest{Id: callID})
	if err != nil && status.Code(err) != codes.NotFound {
		log.Warn("dialer: hang up an agent's session call", "call_id", callID, "err", err)
		return err
	}
	return nil
}

// Logout logs an agent out at once and hangs up its session call (a
// customer call in progress ends by itself). An agent logged out already
// is returned unchanged, its last session call hung up again (a no-op
// unless the last Logout could not reach origination).
func (s *AgentServer) Logout(ctx context.Context, req *dialerv1.LogoutRequest) (*dialerv1.LogoutResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.load(ctx, s.DB, account, req.GetId(), false)
	if err != nil {
		return nil, grpcError(s.Log, "Logout", err)
	}
	session, _, err := s.Agents.logout(ctx, r.a.GetId(), s.now())
	if err != nil {
		return nil, grpcError(s.Log, "Logout", err)
	}
	s.changed()
	if session != "" {
		if err := s.hangup(ctx, s.Log.With("agent_id", r.a.GetId()), account, session); err != nil {
			// Logged out: retrying hangs the phone up.
			return nil, grpcError(s.Log, "Logout", err)
		}
	}
	a, err := s.live(ctx, r.a)
	if err != nil {
		return nil, grpcError(s.Log, "Logout", err)
	}
	return &dialerv1.LogoutResponse{Agent: a}, nil
}

// SetReady makes a PAUSED or WRAP_UP agent READY now (a READY one stays).
func (s *AgentServer) SetReady(ctx context.Context, req *dialerv1.SetReadyRequest) (*dialerv1.SetReadyResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.load(ctx, s.DB, account, req.GetId(), false)
	if err != nil {
		return nil, grpcError(s.Log, "SetReady", err)
	}
	if err := s.Agents.setReady(ctx, r.a.GetId(), s.now()); err != nil {
		if errors.Is(err, errStateInvalid) {
			err = s.stateErr(ctx, r.a, "only a PAUSED or WRAP_UP agent can be made ready")
		}
		return nil, grpcError(s.Log, "SetReady", err)
	}
	s.changed()
	a, err := s.live(ctx, r.a)
	if err != nil {
		return nil, grpcError(s.Log, "SetReady", err)
	}
	return &dialerv1.SetReadyResponse{Agent: a}, nil
}

// stateErr is INVALID_AGENT_STATE naming the agent's state.
func (s *AgentServer) stateErr(ctx context.Context, a *dialerv1.Agent, msg string) error {
	l, err := s.Agents.state(ctx, a.GetId(), s.now())
	if err != nil {
		return ErrInvalidAgentState.WithMsg(msg)
	}
	return ErrInvalidAgentState.WithMsg(fmt.Sprintf("%s (the agent is %s)", msg, l.state.String()[len("AGENT_STATE_"):]))
}

// Pause pauses a READY or WRAP_UP agent now, an ON_CALL one after its call
// and wrap-up (pending_pause_reason); a PAUSED one takes the new reason.
func (s *AgentServer) Pause(ctx context.Context, req *dialerv1.PauseRequest) (*dialerv1.PauseResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	reason := req.GetReason()
	if reason == "" || utf8.RuneCountInString(reason) > maxPauseReason || !nameRe.MatchString(reason) {
		return nil, ErrInvalidArgument.WithMsg("reason is required: 1-100 printable characters")
	}
	r, err := s.load(ctx, s.DB, account, req.GetId(), false)
	if err != nil {
		return nil, grpcError(s.Log, "Pause", err)
	}
	if err := s.Agents.pause(ctx, r.a.GetId(), reason, s.now()); err != nil {
		if errors.Is(err, errStateInvalid) {
			err = s.stateErr(ctx, r.a, "a logged-out or logging-in agent cannot be paused")
		}
		return nil, grpcError(s.Log, "Pause", err)
	}
	s.changed()
	a, err := s.live(ctx, r.a)
	if err != nil {
		return nil, grpcError(s.Log, "Pause", err)
	}
	return &dialerv1.PauseResponse{Agent: a}, nil
}
