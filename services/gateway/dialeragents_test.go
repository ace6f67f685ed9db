package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/dialer"
	"github.com/ringback/ringback/services/internal/cache/cachetest"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// hangupOK is the fake origination's CallService with a HangupCall that
// succeeds (the fake has none).
type hangupOK struct {
	originationv1.CallServiceClient
}

func (hangupOK) HangupCall(context.Context, *originationv1.HangupCallRequest, ...grpc.CallOption) (*originationv1.HangupCallResponse, error) {
	return &originationv1.HangupCallResponse{}, nil
}

// newAgentsEnv is newEnv with the real dialer APIs (DialerService and
// AgentService, their own database and Redis) behind /v1/dialer.
func newAgentsEnv(t *testing.T) (*env, *dialer.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := storetest.NewDB(t)
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	ddb := storetest.NewDB(t)
	if err := store.Migrate(ctx, ddb, "dialer", dialer.Migrations()); err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	fake, oconn := startFake(t)
	campaigns := &dialer.Server{DB: ddb, Log: slog.New(slog.DiscardHandler)}
	agents := &dialer.AgentServer{DB: ddb, Agents: dialer.NewAgentStore(cachetest.New(t)), Calls: hangupOK{originationv1.NewCallServiceClient(oconn)},
		Endpoints: originationv1.NewEndpointServiceClient(oconn), Log: slog.New(slog.DiscardHandler)}
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	dialerv1.RegisterDialerServiceServer(gs, campaigns)
	dialerv1.RegisterAgentServiceServer(gs, agents)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-served
	})
	conn, err := grpc.NewClient("passthrough:///dialer",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	st := NewAccountStore(db, log, StoreOptions{})
	t.Cleanup(st.Close)
	cfg := Config{OperatorToken: testOperatorToken, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	h, err := NewHandler(cfg, log, st, NewAccountServer(st, log),
		Backends{Origination: oconn, Rating: oconn, CDR: oconn, Webhook: oconn, Dialer: conn})
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: st, fake: fake, h: h, cfg: cfg}, campaigns
}

// restAgent is the JSON of an agent.
type restAgent struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	EndpointID         string   `json:"endpointId"`
	WrapUpS            *int     `json:"wrapUpS"`
	CampaignIDs        []string `json:"campaignIds"`
	State              string   `json:"state"`
	SessionCallID      string   `json:"sessionCallId"`
	PauseReason        string   `json:"pauseReason"`
	PendingPauseReason string   `json:"pendingPauseReason"`
}

// Every route of AgentService in gateway.yaml reaches the dialer, as the
// account of the key; the dialer's refusals are the REST JSON errors.
func TestDialerAgentRoutes(t *testing.T) {
	t.Parallel()
	e, _ := newAgentsEnv(t)
	account, key := e.newAccount(t, "acme")
	_, otherKey := e.newAccount(t, "other")
	ep := ids.NewV4()
	e.fake.mu.Lock()
	e.fake.endpoints[account] = append(e.fake.endpoints[account], &originationv1.Endpoint{Id: ep, Name: "ana's phone"})
	e.fake.mu.Unlock()

	call := func(method, path, body, key string, want int) resp {
		t.Helper()
		r := e.do(t, req{method: method, path: path, body: body, key: key})
		if r.status != want {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
		}
		return r
	}
	agentOf := func(r resp) restAgent {
		t.Helper()
		var out struct {
			Agent restAgent `json:"agent"`
		}
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatalf("%v: %s", err, r.body)
		}
		return out.Agent
	}
	wantCode := func(r resp, code string) {
		t.Helper()
		var out struct {
			Error ErrorDetail `json:"error"`
		}
		if err := json.Unmarshal(r.body, &out); err != nil || out.Error.Code != code {
			t.Fatalf("error %s (%v), want %s", r.body, err, code)
		}
	}

	r := call(http.MethodPost, "/v1/dialer/campaigns", `{"name":"Renewals"}`, key, http.StatusOK)
	var camp struct {
		Campaign struct {
			ID string `json:"id"`
		} `json:"campaign"`
	}
	if err := json.Unmarshal(r.body, &camp); err != nil {
		t.Fatal(err)
	}
	a := agentOf(call(http.MethodPost, "/v1/dialer/agents", `{"name":"ana.souza","endpointId":"`+ep+`","campaignIds":["`+camp.Campaign.ID+`"]}`,
		key, http.StatusOK))
	if a.ID == "" || a.State != "AGENT_STATE_LOGGED_OUT" || a.WrapUpS == nil || *a.WrapUpS != 10 || len(a.CampaignIDs) != 1 {
		t.Fatalf("created %+v", a)
	}
	wantCode(call(http.MethodPost, "/v1/dialer/agents", `{"name":"x","endpointId":"`+ids.NewV4()+`"}`, key, http.StatusNotFound), "ENDPOINT_NOT_FOUND")
	wantCode(call(http.MethodPost, "/v1/dialer/agents", `{"name":"ana.souza","endpointId":"`+ep+`"}`, key, http.StatusConflict), "AGENT_EXISTS")
	wantCode(call(http.MethodPost, "/v1/dialer/agents", `{"name":"","endpointId":"`+ep+`"}`, key, http.StatusBadRequest), "INVALID_ARGUMENT")

	path := "/v1/dialer/agents/" + a.ID
	if got := agentOf(call(http.MethodGet, path, "", key, http.StatusOK)); got.Name != "ana.souza" {
		t.Fatalf("get %+v", got)
	}
	wantCode(call(http.MethodGet, path, "", otherKey, http.StatusNotFound), "AGENT_NOT_FOUND")
	var list struct {
		Agents []restAgent `json:"agents"`
	}
	if err := json.Unmarshal(call(http.MethodGet, "/v1/dialer/agents?campaignId="+camp.Campaign.ID+"&pageSize=10", "", key, http.StatusOK).body, &list); err != nil ||
		len(list.Agents) != 1 || list.Agents[0].ID != a.ID {
		t.Fatalf("list %+v %v", list, err)
	}
	// PATCH: the body's fields are the mask; 0 s of wrap-up is kept.
	if got := agentOf(call(http.MethodPatch, path, `{"wrapUpS":0}`, key, http.StatusOK)); got.WrapUpS == nil || *got.WrapUpS != 0 || got.Name != "ana.souza" {
		t.Fatalf("patched %+v", got)
	}
	wantCode(call(http.MethodPost, path+":pause", `{"reason":"lunch"}`, key, http.StatusConflict), "INVALID_AGENT_STATE")
	wantCode(call(http.MethodPost, path+":ready", `{}`, key, http.StatusConflict), "INVALID_AGENT_STATE")

	in := agentOf(call(http.MethodPost, path+":login", `{}`, key, http.StatusOK))
	if in.State != "AGENT_STATE_LOGGING_IN" || in.SessionCallID == "" {
		t.Fatalf("login %+v", in)
	}
	created := e.fake.created(t, in.SessionCallID)
	if cr := created.req.(*originationv1.CreateCallRequest); cr.GetConference() != "agent-"+a.ID || cr.GetFirst().GetEndpointId() != ep ||
		created.md.Get(AccountHeader)[0] != account {
		t.Fatalf("session call %v %v", cr, created.md)
	}
	wantCode(call(http.MethodPost, path+":login", `{}`, key, http.StatusConflict), "AGENT_LOGGED_IN")
	wantCode(call(http.MethodDelete, path, "", key, http.StatusConflict), "AGENT_LOGGED_IN")
	if out := agentOf(call(http.MethodPost, path+":logout", `{}`, key, http.StatusOK)); out.State != "AGENT_STATE_LOGGED_OUT" {
		t.Fatalf("logout %+v", out)
	}
	call(http.MethodDelete, path, "", key, http.StatusOK)
	wantCode(call(http.MethodGet, path, "", key, http.StatusNotFound), "AGENT_NOT_FOUND")
}
