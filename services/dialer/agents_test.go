package dialer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/cache/cachetest"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/natsbus/natstest"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// agAccount is the account of the agents' tests.
const agAccount = "acc-agents"

// agEnv is the agents' API and router over real PostgreSQL, Redis and NATS,
// with a fake origination (agOrigination) on a loopback gRPC listener.
type agEnv struct {
	api  *AgentServer
	st   *AgentStore
	bus  *natsbus.Bus
	fake *agOrigination
	ctx  context.Context // as agAccount
}

func newAgEnv(t *testing.T) *agEnv {
	t.Helper()
	ctx := context.Background()
	db := storetest.NewDB(t)
	if err := store.Migrate(ctx, db, "dialer", Migrations()); err != nil {
		t.Fatal(err)
	}
	ns := natstest.Start(t)
	bus, err := natsbus.Connect(ctx, ns.URL(), "dialer-agents-test", slog.New(slog.NewTextHandler(io.Discard, nil)), natsbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if err := bus.EnsureStream(ctx, natsbus.Calls(0)); err != nil {
		t.Fatal(err)
	}
	fake := &agOrigination{bus: bus, endpoints: map[string]bool{}, busy: map[string]bool{}, calls: map[string]*agCall{}, idem: map[string]string{},
		done: make(chan struct{})}
	t.Cleanup(fake.close)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	originationv1.RegisterCallServiceServer(srv, fake)
	originationv1.RegisterEndpointServiceServer(srv, agEndpoints{f: fake})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	st := NewAgentStore(cachetest.New(t))
	api := &AgentServer{DB: db, Agents: st, Calls: originationv1.NewCallServiceClient(conn),
		Endpoints: originationv1.NewEndpointServiceClient(conn), Log: engLogger(), RPCTimeout: 2 * time.Second}
	return &agEnv{api: api, st: st, bus: bus, fake: fake, ctx: asAccount(agAccount)}
}

// campaign inserts a campaign of account and returns its id.
func (e *agEnv) campaign(t testing.TB, account string) string {
	t.Helper()
	id := ids.NewV4()
	if _, err := e.api.DB.Exec(context.Background(), `INSERT INTO dialer.campaigns (id, account_id, name, status, settings)
		VALUES ($1, $2, $3, $4, '{}')`, id, account, "campaign "+id, int16(dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)); err != nil {
		t.Fatal(err)
	}
	return id
}

// endpoint makes an endpoint of the fake and returns its id.
func (e *agEnv) endpoint() string {
	id := ids.NewV4()
	e.fake.mu.Lock()
	e.fake.endpoints[id] = true
	e.fake.mu.Unlock()
	return id
}

// agent creates an agent of agAccount in campaigns.
func (e *agEnv) agent(t testing.TB, name string, wrapS int32, campaigns ...string) *dialerv1.Agent {
	t.Helper()
	r, err := e.api.CreateAgent(e.ctx, &dialerv1.CreateAgentRequest{Agent: &dialerv1.Agent{Name: name, EndpointId: e.endpoint(),
		WrapUpS: proto.Int32(wrapS), CampaignIds: campaigns}})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetAgent()
}

func (e *agEnv) get(t testing.TB, id string) *dialerv1.Agent {
	t.Helper()
	r, err := e.api.GetAgent(e.ctx, &dialerv1.GetAgentRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetAgent()
}

func (e *agEnv) waitAgent(t testing.TB, id string, want dialerv1.AgentState) *dialerv1.Agent {
	t.Helper()
	var a *dialerv1.Agent
	eventually(t, fmt.Sprintf("agent %s %v", id, want), func() bool {
		a = e.get(t, id)
		return a.GetState() == want
	})
	return a
}

// login logs an agent in and answers its phone: READY (through the router).
func (e *agEnv) login(t testing.TB, id string) *dialerv1.Agent {
	t.Helper()
	r, err := e.api.Login(e.ctx, &dialerv1.LoginRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	e.fake.joinSession(r.GetAgent().GetSessionCallId())
	return e.waitAgent(t, id, dialerv1.AgentState_AGENT_STATE_READY)
}

// --- the fake origination ---

// agOrigination is the CallService of the agents' tests: session calls
// (conference) stay in their room until hung up; customer calls (made by
// customer) wait for ConnectCall until their deadline, then are abandoned.
// Events are published on the real NATS as origination does.
type agOrigination struct {
	originationv1.UnimplementedCallServiceServer
	bus  *natsbus.Bus
	done chan struct{}
	wg   sync.WaitGroup

	mu         sync.Mutex
	endpoints  map[string]bool
	busy       map[string]bool
	calls      map[string]*agCall
	idem       map[string]string
	creates    []*originationv1.CreateCallRequest
	createMD   []metadata.MD
	hangups    []string
	connects   []agConnect
	connectErr error // ConnectCall answers it (once)
	turnAways  map[string]originationv1.FailureReason
	violations []string
	seq        int
}

type agCall struct {
	call    *originationv1.Call
	seq     uint32
	waiting bool
}

type agConnect struct {
	call, room string
	at         time.Time
	md         metadata.MD
}

func (f *agOrigination) close() {
	close(f.done)
	f.wg.Wait()
}

func (f *agOrigination) CreateCall(ctx context.Context, req *originationv1.CreateCallRequest) (*originationv1.CreateCallResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	account := first(md.Get(AccountHeader))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, req)
	f.createMD = append(f.createMD, md)
	if id, ok := f.idem[account+"/"+req.GetIdempotencyKey()]; ok {
		return &originationv1.CreateCallResponse{Call: proto.Clone(f.calls[id].call).(*originationv1.Call)}, nil
	}
	ep := req.GetFirst().GetEndpointId()
	if !f.endpoints[ep] {
		return nil, refusal(codes.NotFound, "ENDPOINT_NOT_FOUND")
	}
	if f.busy[ep] {
		return nil, refusal(codes.FailedPrecondition, "ENDPOINT_BUSY")
	}
	f.seq++
	id := fmt.Sprintf("sess-%03d", f.seq)
	c := &originationv1.Call{Id: id, AccountId: account, Source: originationv1.CallSource_CALL_SOURCE_DIALER,
		Status: originationv1.CallStatus_CALL_STATUS_DIALING, Variables: req.GetVariables(), Conference: req.GetConference(), CreatedAt: timestamppb.Now(),
		First: &originationv1.Leg{Role: originationv1.LegRole_LEG_ROLE_FIRST, Party: &originationv1.PartyRef{Target: &originationv1.PartyRef_EndpointId{EndpointId: ep}}}}
	f.calls[id] = &agCall{call: c}
	f.idem[account+"/"+req.GetIdempotencyKey()] = id
	return &originationv1.CreateCallResponse{Call: proto.Clone(c).(*originationv1.Call)}, nil
}

func (f *agOrigination) HangupCall(ctx context.Context, req *originationv1.HangupCallRequest) (*originationv1.HangupCallResponse, error) {
	f.mu.Lock()
	f.hangups = append(f.hangups, req.GetId())
	ac := f.calls[req.GetId()]
	f.mu.Unlock()
	if ac == nil {
		return nil, refusal(codes.NotFound, "CALL_NOT_FOUND")
	}
	f.end(req.GetId(), originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
	f.mu.Lock()
	defer f.mu.Unlock()
	return &originationv1.HangupCallResponse{Call: proto.Clone(ac.call).(*originationv1.Call)}, nil
}

func (f *agOrigination) GetCall(ctx context.Context, req *originationv1.GetCallRequest) (*originationv1.GetCallResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ac, ok := f.calls[req.GetId()]
	if !ok {
		return nil, refusal(codes.NotFound, "CALL_NOT_FOUND")
	}
	return &originationv1.GetCallResponse{Call: proto.Clone(ac.call).(*originationv1.Call)}, nil
}

func (f *agOrigination) ConnectCall(ctx context.Context, req *originationv1.ConnectCallRequest) (*originationv1.ConnectCallResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.connects = append(f.connects, agConnect{call: req.GetId(), room: req.GetConference(), at: time.Now(), md: md})
	if err := f.connectErr; err != nil {
		f.connectErr = nil
		f.mu.Unlock()
		return nil, err
	}
	ac, ok := f.calls[req.GetId()]
	switch {
	case !ok:
		f.mu.Unlock()
		return nil, refusal(codes.NotFound, "CALL_NOT_FOUND")
	case !ac.waiting:
		f.mu.Unlock()
		return nil, refusal(codes.FailedPrecondition, "CALL_NOT_WAITING")
	}
	ac.waiting = false
	for id, other := range f.calls {
		if id != req.GetId() && other.call.GetConference() == req.GetConference() && strings.HasPrefix(id, "cust-") && !finalCall(other.call.GetStatus()) {
			f.violations = append(f.violations, fmt.Sprintf("%s connected to %s while %s is there", req.GetId(), req.GetConference(), id))
		}
	}
	f.mu.Unlock()
	f.publish(req.GetId(), eventsv1.EventType_EVENT_TYPE_CONFERENCE_JOINED, func(c *originationv1.Call) {
		c.Status, c.Conference, c.BridgedAt = originationv1.CallStatus_CALL_STATUS_BRIDGED, req.GetConference(), timestamppb.Now()
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	return &originationv1.ConnectCallResponse{Call: proto.Clone(ac.call).(*originationv1.Call)}, nil
}

// TurnAwayCall ends a waiting call FAILED with the queue's reason, as
// origination does after the no-agent message.
func (f *agOrigination) TurnAwayCall(ctx context.Context, req *originationv1.TurnAwayCallRequest) (*originationv1.TurnAwayCallResponse, error) {
	f.mu.Lock()
	ac, ok := f.calls[req.GetId()]
	switch {
	case !ok:
		f.mu.Unlock()
		return nil, refusal(codes.NotFound, "CALL_NOT_FOUND")
	case !ac.waiting:
		f.mu.Unlock()
		return nil, refusal(codes.FailedPrecondition, "CALL_NOT_WAITING")
	}
	if f.turnAways == nil {
		f.turnAways = map[string]originationv1.FailureReason{}
	}
	f.turnAways[req.GetId()] = req.GetReason()
	ac.waiting = false
	f.mu.Unlock()
	f.publish(req.GetId(), eventsv1.EventType_EVENT_TYPE_CALL_FAILED, func(c *originationv1.Call) {
		c.Status, c.EndedAt = originationv1.CallStatus_CALL_STATUS_FAILED, timestamppb.Now()
		c.FailedLeg, c.FailureReason = originationv1.LegRole_LEG_ROLE_SECOND, req.GetReason()
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	return &originationv1.TurnAwayCallResponse{Call: proto.Clone(ac.call).(*originationv1.Call)}, nil
}

// turnedAway is why a call was turned away (UNSPECIFIED: it was not).
func (f *agOrigination) turnedAway(call string) originationv1.FailureReason {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.turnAways[call]
}

// joinSession answers a session call: its phone is in its room.
func (f *agOrigination) joinSession(id string) {
	f.publish(id, eventsv1.EventType_EVENT_TYPE_CONFERENCE_JOINED, func(c *originationv1.Call) {
		c.Status, c.AnsweredAt = originationv1.CallStatus_CALL_STATUS_ANSWERED, timestamppb.Now()
	})
}

// customer makes an answered customer call of campaign wait for an agent
// for wait (AGENT_AWAITED); at its deadline, if not connected, it is
// abandoned and ends. It returns the call's id.
func (f *agOrigination) customer(campaign string, wait time.Duration) string {
	return f.customerWith(campaign, wait, nil)
}

// customerWith is customer with its call edited first (e.g. a BLAST's
// recipient who pressed CONNECT).
func (f *agOrigination) customerWith(campaign string, wait time.Duration, edit func(*originationv1.Call)) string {
	f.mu.Lock()
	f.seq++
	id := fmt.Sprintf("cust-%03d", f.seq)
	now := timestamppb.Now()
	ac := &agCall{waiting: true, call: &originationv1.Call{Id: id, AccountId: agAccount, Source: originationv1.CallSource_CALL_SOURCE_DIALER,
		Status: originationv1.CallStatus_CALL_STATUS_ANSWERED, AnsweredAt: now, CreatedAt: now,
		Variables:  map[string]string{VarCampaign: campaign, VarRecord: "1", VarRun: "1", VarTry: "1"},
		AwaitAgent: &originationv1.AwaitAgent{TimeoutMs: int32(wait / time.Millisecond), SafeHarbour: "/sounds/sorry.wav"}}}
	if edit != nil {
		edit(ac.call)
	}
	f.calls[id] = ac
	f.mu.Unlock()
	f.publish(id, eventsv1.EventType_EVENT_TYPE_AGENT_AWAITED, func(*originationv1.Call) {})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		select {
		case <-time.After(wait):
		case <-f.done:
			return
		}
		f.mu.Lock()
		abandon := ac.waiting
		ac.waiting = false
		f.mu.Unlock()
		if abandon {
			f.publish(id, eventsv1.EventType_EVENT_TYPE_CALL_ABANDONED, func(c *originationv1.Call) { c.Abandoned = true })
			f.end(id, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
		}
	}()
	return id
}

// end ends a call (hung up) and publishes its end; silent: no event.
func (f *agOrigination) end(id string, st originationv1.CallStatus, publish bool) {
	f.mu.Lock()
	ac := f.calls[id]
	if ac == nil || finalCall(ac.call.GetStatus()) {
		f.mu.Unlock()
		return
	}
	ac.waiting = false
	f.mu.Unlock()
	typ := map[originationv1.CallStatus]eventsv1.EventType{
		originationv1.CallStatus_CALL_STATUS_COMPLETED: eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED,
		originationv1.CallStatus_CALL_STATUS_FAILED:    eventsv1.EventType_EVENT_TYPE_CALL_FAILED,
		originationv1.CallStatus_CALL_STATUS_CANCELED:  eventsv1.EventType_EVENT_TYPE_CALL_CANCELED,
	}[st]
	change := func(c *originationv1.Call) { c.Status, c.EndedAt = st, timestamppb.Now() }
	if !publish {
		f.mu.Lock()
		change(ac.call)
		f.mu.Unlock()
		return
	}
	f.publish(id, typ, change)
}

func (f *agOrigination) publish(id string, typ eventsv1.EventType, change func(*originationv1.Call)) {
	f.mu.Lock()
	ac := f.calls[id]
	change(ac.call)
	ac.seq++
	ev := &eventsv1.CallEvent{EventId: fmt.Sprintf("%s.%d", id, ac.seq), Sequence: ac.seq, OccurredAt: timestamppb.Now(), AccountId: ac.call.GetAccountId(),
		CallId: id, Type: typ, Call: proto.Clone(ac.call).(*originationv1.Call), Variables: ac.call.GetVariables()}
	f.mu.Unlock()
	data, _ := proto.Marshal(ev)
	subject := fmt.Sprintf("calls.%s.%s.%s", ev.GetAccountId(), id, strings.ToLower(strings.TrimPrefix(typ.String(), "EVENT_TYPE_")))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = f.bus.Publish(ctx, subject, ev.GetEventId(), data)
}

func (f *agOrigination) connectsOf(call string) []agConnect {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []agConnect
	for _, c := range f.connects {
		if c.call == call {
			out = append(out, c)
		}
	}
	return out
}

func (f *agOrigination) callOf(id string) *originationv1.Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return proto.Clone(f.calls[id].call).(*originationv1.Call)
}

// agEndpoints is the fake's EndpointService: GetEndpoint only.
type agEndpoints struct {
	originationv1.UnimplementedEndpointServiceServer
	f *agOrigination
}

func (e agEndpoints) GetEndpoint(ctx context.Context, req *originationv1.GetEndpointRequest) (*originationv1.GetEndpointResponse, error) {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	md, _ := metadata.FromIncomingContext(ctx)
	if !e.f.endpoints[req.GetId()] || first(md.Get(AccountHeader)) != agAccount {
		return nil, refusal(codes.NotFound, "ENDPOINT_NOT_FOUND")
	}
	return &originationv1.GetEndpointResponse{Endpoint: &originationv1.Endpoint{Id: req.GetId()}}, nil
}

// --- the API's tests ---

func TestAgentCRUD(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	c1, c2 := e.campaign(t, agAccount), e.campaign(t, agAccount)
	other := e.campaign(t, "acc-other")
	ep := e.endpoint()

	created, err := e.api.CreateAgent(e.ctx, &dialerv1.CreateAgentRequest{Agent: &dialerv1.Agent{
		Name: "ana.souza", EndpointId: ep, CampaignIds: []string{c2, c1, c2}, State: dialerv1.AgentState_AGENT_STATE_READY}})
	if err != nil {
		t.Fatal(err)
	}
	a := created.GetAgent()
	want := []string{c1, c2}
	slices.Sort(want)
	if a.GetId() == "" || a.GetWrapUpS() != 10 || !slices.Equal(a.GetCampaignIds(), want) || a.GetState() != dialerv1.AgentState_AGENT_STATE_LOGGED_OUT ||
		a.GetCreatedAt() == nil {
		t.Fatalf("created %v", a)
	}
	if got := e.get(t, a.GetId()); !proto.Equal(got, a) {
		t.Fatalf("get %v, want %v", got, a)
	}

	tests := []struct {
		name         string
		agent        *dialerv1.Agent
		code         codes.Code
		reason       string
		otherAccount bool
	}{
		{"no name", &dialerv1.Agent{EndpointId: e.endpoint()}, codes.InvalidArgument, "INVALID_ARGUMENT", false},
		{"long name", &dialerv1.Agent{Name: strings.Repeat("x", 101), EndpointId: e.endpoint()}, codes.InvalidArgument, "INVALID_ARGUMENT", false},
		{"no endpoint", &dialerv1.Agent{Name: "b"}, codes.InvalidArgument, "INVALID_ARGUMENT", false},
		{"bad endpoint id", &dialerv1.Agent{Name: "b", EndpointId: "ep 1"}, codes.InvalidArgument, "INVALID_ARGUMENT", false},
		{"unknown endpoint", &dialerv1.Agent{Name: "b", EndpointId: ids.NewV4()}, codes.NotFound, "ENDPOINT_NOT_FOUND", false},
		{"negative wrap-up", &dialerv1.Agent{Name: "b", EndpointId: e.endpoint(), WrapUpS: proto.Int32(-1)}, codes.InvalidArgument, "INVALID_ARGUMENT", false},
		{"wrap-up over an hour", &dialerv1.Agent{Name: "b", EndpointId: e.endpoint(), WrapUpS: proto.Int32(3601)}, codes.InvalidArgument, "INVALID_ARGUMENT", false},
		{"another account's campaign", &dialerv1.Agent{Name: "b", EndpointId: e.endpoint(), CampaignIds: []string{c1, other}}, codes.NotFound, "CAMPAIGN_NOT_FOUND", false},
		{"bad campaign id", &dialerv1.Agent{Name: "b", EndpointId: e.endpoint(), CampaignIds: []string{"x"}}, codes.NotFound, "CAMPAIGN_NOT_FOUND", false},
		{"name taken", &dialerv1.Agent{Name: "ana.souza", EndpointId: e.endpoint()}, codes.AlreadyExists, "AGENT_EXISTS", false},
		{"endpoint taken", &dialerv1.Agent{Name: "b", EndpointId: ep}, codes.AlreadyExists, "AGENT_EXISTS", false},
		{"no account", &dialerv1.Agent{Name: "b", EndpointId: e.endpoint()}, codes.Unauthenticated, "UNAUTHENTICATED", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := e.ctx
			if tt.otherAccount {
				ctx = context.Background()
			}
			_, err := e.api.CreateAgent(ctx, &dialerv1.CreateAgentRequest{Agent: tt.agent})
			wantStatus(t, err, tt.code, tt.reason)
		})
	}
	// 0 s of wrap-up, and 3600, when asked.
	for _, w := range []int32{0, 3600} {
		if got := e.agent(t, fmt.Sprint("wrap ", w), w); got.GetWrapUpS() != w {
			t.Fatalf("wrap-up %d: %v", w, got)
		}
	}
	// Another account sees none of them.
	_, err = e.api.GetAgent(asAccount("acc-other"), &dialerv1.GetAgentRequest{Id: a.GetId()})
	wantStatus(t, err, codes.NotFound, "AGENT_NOT_FOUND")
	_, err = e.api.GetAgent(e.ctx, &dialerv1.GetAgentRequest{Id: "nope"})
	wantStatus(t, err, codes.NotFound, "AGENT_NOT_FOUND")

	// Updates: by mask, the others kept; a wrap-up of 0; new campaigns.
	up, err := e.api.UpdateAgent(e.ctx, &dialerv1.UpdateAgentRequest{Agent: &dialerv1.Agent{Id: a.GetId(), Name: "ana", WrapUpS: proto.Int32(0),
		CampaignIds: []string{c2}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name", "wrap_up_s", "campaign_ids", "state"}}})
	if err != nil {
		t.Fatal(err)
	}
	if u := up.GetAgent(); u.GetName() != "ana" || u.GetWrapUpS() != 0 || !slices.Equal(u.GetCampaignIds(), []string{c2}) || u.GetEndpointId() != ep {
		t.Fatalf("updated %v", u)
	}
	// wrap_up_s in the mask but unset: the default again.
	up, err = e.api.UpdateAgent(e.ctx, &dialerv1.UpdateAgentRequest{Agent: &dialerv1.Agent{Id: a.GetId()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"wrap_up_s"}}})
	if err != nil || up.GetAgent().GetWrapUpS() != 10 || up.GetAgent().GetName() != "ana" {
		t.Fatalf("wrap-up unset: %v %v", up, err)
	}
	_, err = e.api.UpdateAgent(e.ctx, &dialerv1.UpdateAgentRequest{Agent: &dialerv1.Agent{Id: a.GetId(), CampaignIds: []string{other}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"campaign_ids"}}})
	wantStatus(t, err, codes.NotFound, "CAMPAIGN_NOT_FOUND")
	_, err = e.api.UpdateAgent(e.ctx, &dialerv1.UpdateAgentRequest{Agent: &dialerv1.Agent{Id: a.GetId(), Name: "wrap 0"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}})
	wantStatus(t, err, codes.AlreadyExists, "AGENT_EXISTS")
	_, err = e.api.UpdateAgent(e.ctx, &dialerv1.UpdateAgentRequest{Agent: &dialerv1.Agent{Id: a.GetId()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"frist"}}})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	// An empty mask is every field: here, no endpoint.
	_, err = e.api.UpdateAgent(e.ctx, &dialerv1.UpdateAgentRequest{Agent: &dialerv1.Agent{Id: a.GetId(), Name: "ana"}})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	ep2 := e.endpoint()
	up, err = e.api.UpdateAgent(e.ctx, &dialerv1.UpdateAgentRequest{Agent: &dialerv1.Agent{Id: a.GetId(), Name: "ana", EndpointId: ep2}})
	if err != nil || up.GetAgent().GetEndpointId() != ep2 || len(up.GetAgent().GetCampaignIds()) != 0 || up.GetAgent().GetWrapUpS() != 10 {
		t.Fatalf("update every field: %v %v", up, err)
	}

	// Deleting a campaign takes it off its agents.
	b := e.agent(t, "bruno", 5, c1, c2)
	if _, err := e.api.DB.Exec(context.Background(), `DELETE FROM dialer.campaigns WHERE id = $1`, c1); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, b.GetId()); !slices.Equal(got.GetCampaignIds(), []string{c2}) {
		t.Fatalf("after the campaign's deletion: %v", got.GetCampaignIds())
	}

	if _, err := e.api.DeleteAgent(e.ctx, &dialerv1.DeleteAgentRequest{Id: b.GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = e.api.GetAgent(e.ctx, &dialerv1.GetAgentRequest{Id: b.GetId()})
	wantStatus(t, err, codes.NotFound, "AGENT_NOT_FOUND")
	_, err = e.api.DeleteAgent(e.ctx, &dialerv1.DeleteAgentRequest{Id: b.GetId()})
	wantStatus(t, err, codes.NotFound, "AGENT_NOT_FOUND")
}

func TestAgentList(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	c1, c2 := e.campaign(t, agAccount), e.campaign(t, agAccount)
	var names []string
	for i := range 7 {
		name := fmt.Sprintf("agent %02d", 7-i)
		camps := []string{c1}
		if i%2 == 0 {
			camps = append(camps, c2)
		}
		e.agent(t, name, 10, camps...)
		names = append(names, name)
	}
	slices.Sort(names)
	var got []string
	tok := ""
	for pages := 0; ; pages++ {
		r, err := e.api.ListAgents(e.ctx, &dialerv1.ListAgentsRequest{PageSize: 3, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range r.GetAgents() {
			got = append(got, a.GetName())
			if a.GetState() != dialerv1.AgentState_AGENT_STATE_LOGGED_OUT {
				t.Errorf("%s: %v", a.GetName(), a.GetState())
			}
		}
		if tok = r.GetNextPageToken(); tok == "" {
			if pages != 2 {
				t.Errorf("%d pages", pages+1)
			}
			break
		}
	}
	if !slices.Equal(got, names) {
		t.Fatalf("listed %v, want %v", got, names)
	}
	r, err := e.api.ListAgents(e.ctx, &dialerv1.ListAgentsRequest{CampaignId: c2})
	if err != nil || len(r.GetAgents()) != 4 || r.GetNextPageToken() != "" {
		t.Fatalf("c2's agents: %v %v", r, err)
	}
	if r, err := e.api.ListAgents(asAccount("acc-other"), &dialerv1.ListAgentsRequest{}); err != nil || len(r.GetAgents()) != 0 {
		t.Fatalf("another account's: %v %v", r, err)
	}
	_, err = e.api.ListAgents(e.ctx, &dialerv1.ListAgentsRequest{CampaignId: e.campaign(t, "acc-other")})
	wantStatus(t, err, codes.NotFound, "CAMPAIGN_NOT_FOUND")
	_, err = e.api.ListAgents(e.ctx, &dialerv1.ListAgentsRequest{PageSize: 1001})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	_, err = e.api.ListAgents(e.ctx, &dialerv1.ListAgentsRequest{PageToken: "!!"})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_PAGE_TOKEN")
}

// Login, pause, ready and logout through the API; the session's events are
// applied by the store directly (the router has its own tests).
func TestAgentSession(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	camp := e.campaign(t, agAccount)
	a := e.agent(t, "carla", 0, camp)
	id := a.GetId()

	// Pausing or readying a logged-out agent is refused.
	_, err := e.api.Pause(e.ctx, &dialerv1.PauseRequest{Id: id, Reason: "lunch"})
	wantStatus(t, err, codes.FailedPrecondition, "INVALID_AGENT_STATE")
	_, err = e.api.SetReady(e.ctx, &dialerv1.SetReadyRequest{Id: id})
	wantStatus(t, err, codes.FailedPrecondition, "INVALID_AGENT_STATE")
	// A busy phone: refused, still logged out.
	e.fake.mu.Lock()
	e.fake.busy[a.GetEndpointId()] = true
	e.fake.mu.Unlock()
	_, err = e.api.Login(e.ctx, &dialerv1.LoginRequest{Id: id})
	wantStatus(t, err, codes.FailedPrecondition, "ENDPOINT_BUSY")
	if got := e.get(t, id); got.GetState() != dialerv1.AgentState_AGENT_STATE_LOGGED_OUT {
		t.Fatalf("after ENDPOINT_BUSY: %v", got.GetState())
	}
	e.fake.mu.Lock()
	e.fake.busy[a.GetEndpointId()] = false
	e.fake.mu.Unlock()

	r, err := e.api.Login(e.ctx, &dialerv1.LoginRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	sess := r.GetAgent().GetSessionCallId()
	if r.GetAgent().GetState() != dialerv1.AgentState_AGENT_STATE_LOGGING_IN || sess == "" {
		t.Fatalf("login: %v", r.GetAgent())
	}
	e.fake.mu.Lock()
	req, md := e.fake.creates[len(e.fake.creates)-1], e.fake.createMD[len(e.fake.createMD)-1]
	e.fake.mu.Unlock()
	if req.GetFirst().GetEndpointId() != a.GetEndpointId() || req.GetConference() != "agent-"+id || req.GetVariables()[VarAgent] != id ||
		req.GetIdempotencyKey() != "agent:"+id+":2" || first(md.Get(AccountHeader)) != agAccount || first(md.Get(callSourceHeader)) != "CALL_SOURCE_DIALER" {
		t.Fatalf("session call %v, metadata %v", req, md)
	}
	_, err = e.api.Login(e.ctx, &dialerv1.LoginRequest{Id: id})
	wantStatus(t, err, codes.FailedPrecondition, "AGENT_LOGGED_IN")
	_, err = e.api.Pause(e.ctx, &dialerv1.PauseRequest{Id: id, Reason: "lunch"})
	wantStatus(t, err, codes.FailedPrecondition, "INVALID_AGENT_STATE")

	// The phone answered (what the router does with the event).
	if ok, err := e.st.joined(context.Background(), id, sess, "2", time.Now()); !ok || err != nil {
		t.Fatalf("joined %v %v", ok, err)
	}
	if got := e.get(t, id); got.GetState() != dialerv1.AgentState_AGENT_STATE_READY || got.GetStateSince() == nil {
		t.Fatalf("joined: %v", got)
	}
	// A logged-in agent's endpoint stays; it is not deleted.
	_, err = e.api.UpdateAgent(e.ctx, &dialerv1.UpdateAgentRequest{Agent: &dialerv1.Agent{Id: id, EndpointId: e.endpoint()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"endpoint_id"}}})
	wantStatus(t, err, codes.FailedPrecondition, "AGENT_LOGGED_IN")
	_, err = e.api.DeleteAgent(e.ctx, &dialerv1.DeleteAgentRequest{Id: id})
	wantStatus(t, err, codes.FailedPrecondition, "AGENT_LOGGED_IN")

	for _, tt := range []struct {
		reason string
		code   codes.Code
	}{{"", codes.InvalidArgument}, {strings.Repeat("é", 101), codes.InvalidArgument}, {"bad\nreason", codes.InvalidArgument}} {
		_, err = e.api.Pause(e.ctx, &dialerv1.PauseRequest{Id: id, Reason: tt.reason})
		wantStatus(t, err, tt.code, "INVALID_ARGUMENT")
	}
	p, err := e.api.Pause(e.ctx, &dialerv1.PauseRequest{Id: id, Reason: strings.Repeat("é", 100)})
	if err != nil || p.GetAgent().GetState() != dialerv1.AgentState_AGENT_STATE_PAUSED || p.GetAgent().GetPauseReason() != strings.Repeat("é", 100) {
		t.Fatalf("pause: %v %v", p, err)
	}
	var freed int
	e.api.Changed = func() { freed++ }
	rd, err := e.api.SetReady(e.ctx, &dialerv1.SetReadyRequest{Id: id})
	if err != nil || rd.GetAgent().GetState() != dialerv1.AgentState_AGENT_STATE_READY || rd.GetAgent().GetPauseReason() != "" || freed != 1 {
		t.Fatalf("ready: %v %v (freed %d)", rd, err, freed)
	}

	// On a call: a pause waits; the campaigns change while logged in.
	if _, _, ok, _ := e.st.Claim(context.Background(), camp, "cust-1", time.Now()); !ok {
		t.Fatal("not claimed")
	}
	p, err = e.api.Pause(e.ctx, &dialerv1.PauseRequest{Id: id, Reason: "coffee"})
	if err != nil || p.GetAgent().GetState() != dialerv1.AgentState_AGENT_STATE_ON_CALL || p.GetAgent().GetPendingPauseReason() != "coffee" ||
		p.GetAgent().GetCallId() != "cust-1" || p.GetAgent().GetCampaignId() != camp {
		t.Fatalf("pause on a call: %v %v", p, err)
	}
	camp2 := e.campaign(t, agAccount)
	if _, err := e.api.UpdateAgent(e.ctx, &dialerv1.UpdateAgentRequest{Agent: &dialerv1.Agent{Id: id, CampaignIds: []string{camp2}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"campaign_ids"}}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if s := snapshot(t, e.st, camp, now); s.LoggedIn != 0 {
		t.Fatalf("old campaign: %+v", s)
	}
	if s := snapshot(t, e.st, camp2, now); s.LoggedIn != 1 || len(s.OnCallSince) != 1 {
		t.Fatalf("new campaign: %+v", s)
	}
	if err := e.st.Release(context.Background(), id, "cust-1", time.Now(), false); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, id); got.GetState() != dialerv1.AgentState_AGENT_STATE_PAUSED || got.GetPauseReason() != "coffee" || got.GetCallsTaken() != 1 {
		t.Fatalf("after the call: %v", got)
	}

	// Logout: the phone is hung up; again: unchanged.
	lo, err := e.api.Logout(e.ctx, &dialerv1.LogoutRequest{Id: id})
	if err != nil || lo.GetAgent().GetState() != dialerv1.AgentState_AGENT_STATE_LOGGED_OUT || lo.GetAgent().GetSessionCallId() != "" {
		t.Fatalf("logout: %v %v", lo, err)
	}
	if c := e.fake.callOf(sess); c.GetStatus() != originationv1.CallStatus_CALL_STATUS_COMPLETED {
		t.Fatalf("session call %v", c.GetStatus())
	}
	if lo, err := e.api.Logout(e.ctx, &dialerv1.LogoutRequest{Id: id}); err != nil || lo.GetAgent().GetState() != dialerv1.AgentState_AGENT_STATE_LOGGED_OUT {
		t.Fatalf("logout again: %v %v", lo, err)
	}
	// Logged out: the endpoint may change, and it may be deleted.
	if _, err := e.api.UpdateAgent(e.ctx, &dialerv1.UpdateAgentRequest{Agent: &dialerv1.Agent{Id: id, EndpointId: e.endpoint()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"endpoint_id"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.DeleteAgent(e.ctx, &dialerv1.DeleteAgentRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
}

// prometheusCounter reads a counter of the router's metrics.
func prometheusCounter(t testing.TB, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
