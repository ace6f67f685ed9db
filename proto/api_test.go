package proto_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	accountsv1 "github.com/ringback/ringback/proto/gen/go/ringback/accounts/v1"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/proto/gen/openapi"
)

// The contract: this exact body must be accepted by POST /v1/calls.
const contractBody = `{"first":{"number":"+15551230001"},"second":{"number":"+15551230002"}}`

func TestCreateCallRequestJSON(t *testing.T) {
	t.Parallel()

	var req originationv1.CreateCallRequest
	if err := protojson.Unmarshal([]byte(contractBody), &req); err != nil {
		t.Fatalf("unmarshal contract body: %v", err)
	}
	if got := req.GetFirst().GetNumber(); got != "+15551230001" {
		t.Errorf("first.number = %q, want +15551230001", got)
	}
	if got := req.GetSecond().GetNumber(); got != "+15551230002" {
		t.Errorf("second.number = %q, want +15551230002", got)
	}

	full := &originationv1.CreateCallRequest{
		First: &originationv1.PartySpec{
			Target:         &originationv1.PartySpec_EndpointId{EndpointId: "ep_1"},
			CallerIdNumber: "+15550000001",
			CallerIdName:   "Sales",
			RingTimeoutMs:  20000,
		},
		Second:         &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15551230002"}},
		Mode:           originationv1.CallMode_CALL_MODE_SIMULTANEOUS,
		Announcement:   "ivr/ivr-please_hold.wav",
		MaxDurationS:   3600,
		Variables:      map[string]string{"ticket": "T-42"},
		IdempotencyKey: "k1",
	}
	b, err := protojson.Marshal(full)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	// protojson's JSON names are lowerCamelCase; these are what REST clients
	// and the OpenAPI document see.
	for _, key := range []string{"first", "second", "mode", "announcement", "maxDurationS", "variables", "idempotencyKey"} {
		if _, ok := m[key]; !ok {
			t.Errorf("JSON %s lacks key %q", b, key)
		}
	}
	first := m["first"].(map[string]any)
	for _, key := range []string{"endpointId", "callerIdNumber", "callerIdName", "ringTimeoutMs"} {
		if _, ok := first[key]; !ok {
			t.Errorf("JSON first %v lacks key %q", first, key)
		}
	}
	if got := m["second"].(map[string]any)["number"]; got != "+15551230002" {
		t.Errorf("second.number = %v", got)
	}
	if got := m["mode"]; got != "CALL_MODE_SIMULTANEOUS" {
		t.Errorf("mode = %v, want the enum value's name", got)
	}

	var back originationv1.CreateCallRequest
	if err := protojson.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	if !proto.Equal(full, &back) {
		t.Errorf("round trip changed the request:\n got %v\nwant %v", &back, full)
	}

	// Proto (snake_case) names are accepted on input too.
	var snake originationv1.CreateCallRequest
	if err := protojson.Unmarshal([]byte(`{"max_duration_s":60,"first":{"ring_timeout_ms":5}}`), &snake); err != nil {
		t.Fatalf("unmarshal snake_case: %v", err)
	}
	if snake.GetMaxDurationS() != 60 || snake.GetFirst().GetRingTimeoutMs() != 5 {
		t.Errorf("snake_case input not honored: %v", &snake)
	}
}

func TestCallEventBinaryRoundTrip(t *testing.T) {
	t.Parallel()

	ev := &eventsv1.CallEvent{
		EventId:   "ev_1",
		Sequence:  3,
		AccountId: "acc_1",
		CallId:    "call_1",
		Type:      eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED,
		Leg:       originationv1.LegRole_LEG_ROLE_FIRST,
		Call: &originationv1.Call{
			Id:     "call_1",
			Status: originationv1.CallStatus_CALL_STATUS_ANSWERED,
			First: &originationv1.Leg{
				Role:   originationv1.LegRole_LEG_ROLE_FIRST,
				Party:  &originationv1.PartyRef{Target: &originationv1.PartyRef_Number{Number: "+15551230001"}},
				Status: originationv1.LegStatus_LEG_STATUS_ANSWERED,
			},
		},
		Variables: map[string]string{"ticket": "T-42"},
		Node:      "127.0.0.1:8021",
	}
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back eventsv1.CallEvent
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if !proto.Equal(ev, &back) {
		t.Errorf("round trip changed the event:\n got %v\nwant %v", &back, ev)
	}
}

func TestOpenAPIEmbedded(t *testing.T) {
	t.Parallel()

	var doc struct {
		Swagger string                     `json:"swagger"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.JSON, &doc); err != nil {
		t.Fatalf("embedded OpenAPI is not JSON: %v", err)
	}
	if doc.Swagger != "2.0" {
		t.Errorf("swagger = %q, want 2.0", doc.Swagger)
	}
	for _, path := range []string{
		"/v1/calls", "/v1/calls/{id}", "/v1/calls:live", "/v1/calls/{id}:hangup",
		"/v1/endpoints", "/v1/endpoints/{id}", "/v1/endpoints/{endpoint.id}",
		"/v1/accounts", "/v1/accounts/{id}", "/v1/accounts/{account.id}",
		"/v1/accounts/{accountId}/api-keys", "/v1/accounts/{accountId}/api-keys/{id}:revoke",
	} {
		if _, ok := doc.Paths[path]; !ok {
			t.Errorf("OpenAPI lacks path %s", path)
		}
	}
}

// recorder is a fake of every service: it records the request each method
// received, so the routes in gateway.yaml can be checked end to end through
// the generated grpc-gateway handlers.
type recorder struct {
	originationv1.UnimplementedCallServiceServer
	originationv1.UnimplementedEndpointServiceServer
	accountsv1.UnimplementedAccountServiceServer

	mu   sync.Mutex
	last map[string]proto.Message
}

func (r *recorder) record(method string, req proto.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[method] = req
}

func (r *recorder) got(method string) proto.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[method]
}

func (r *recorder) CreateCall(_ context.Context, req *originationv1.CreateCallRequest) (*originationv1.CreateCallResponse, error) {
	r.record("CreateCall", req)
	return &originationv1.CreateCallResponse{Call: &originationv1.Call{Id: "call_1", Status: originationv1.CallStatus_CALL_STATUS_QUEUED}}, nil
}

func (r *recorder) GetCall(_ context.Context, req *originationv1.GetCallRequest) (*originationv1.GetCallResponse, error) {
	r.record("GetCall", req)
	return &originationv1.GetCallResponse{Call: &originationv1.Call{Id: req.GetId()}}, nil
}

func (r *recorder) ListLiveCalls(_ context.Context, req *originationv1.ListLiveCallsRequest) (*originationv1.ListLiveCallsResponse, error) {
	r.record("ListLiveCalls", req)
	return &originationv1.ListLiveCallsResponse{}, nil
}

func (r *recorder) HangupCall(_ context.Context, req *originationv1.HangupCallRequest) (*originationv1.HangupCallResponse, error) {
	r.record("HangupCall", req)
	return &originationv1.HangupCallResponse{Call: &originationv1.Call{Id: req.GetId()}}, nil
}

func (r *recorder) CreateEndpoint(_ context.Context, req *originationv1.CreateEndpointRequest) (*originationv1.CreateEndpointResponse, error) {
	r.record("CreateEndpoint", req)
	return &originationv1.CreateEndpointResponse{Endpoint: req.GetEndpoint()}, nil
}

func (r *recorder) GetEndpoint(_ context.Context, req *originationv1.GetEndpointRequest) (*originationv1.GetEndpointResponse, error) {
	r.record("GetEndpoint", req)
	return &originationv1.GetEndpointResponse{}, nil
}

func (r *recorder) ListEndpoints(_ context.Context, req *originationv1.ListEndpointsRequest) (*originationv1.ListEndpointsResponse, error) {
	r.record("ListEndpoints", req)
	return &originationv1.ListEndpointsResponse{}, nil
}

func (r *recorder) UpdateEndpoint(_ context.Context, req *originationv1.UpdateEndpointRequest) (*originationv1.UpdateEndpointResponse, error) {
	r.record("UpdateEndpoint", req)
	return &originationv1.UpdateEndpointResponse{Endpoint: req.GetEndpoint()}, nil
}

func (r *recorder) DeleteEndpoint(_ context.Context, req *originationv1.DeleteEndpointRequest) (*originationv1.DeleteEndpointResponse, error) {
	r.record("DeleteEndpoint", req)
	return &originationv1.DeleteEndpointResponse{}, nil
}

func (r *recorder) CreateAccount(_ context.Context, req *accountsv1.CreateAccountRequest) (*accountsv1.CreateAccountResponse, error) {
	r.record("CreateAccount", req)
	return &accountsv1.CreateAccountResponse{Account: req.GetAccount()}, nil
}

func (r *recorder) GetAccount(_ context.Context, req *accountsv1.GetAccountRequest) (*accountsv1.GetAccountResponse, error) {
	r.record("GetAccount", req)
	return &accountsv1.GetAccountResponse{}, nil
}

func (r *recorder) ListAccounts(_ context.Context, req *accountsv1.ListAccountsRequest) (*accountsv1.ListAccountsResponse, error) {
	r.record("ListAccounts", req)
	return &accountsv1.ListAccountsResponse{}, nil
}

func (r *recorder) UpdateAccount(_ context.Context, req *accountsv1.UpdateAccountRequest) (*accountsv1.UpdateAccountResponse, error) {
	r.record("UpdateAccount", req)
	return &accountsv1.UpdateAccountResponse{Account: req.GetAccount()}, nil
}

func (r *recorder) CreateApiKey(_ context.Context, req *accountsv1.CreateApiKeyRequest) (*accountsv1.CreateApiKeyResponse, error) {
	r.record("CreateApiKey", req)
	return &accountsv1.CreateApiKeyResponse{ApiKey: &accountsv1.ApiKey{Id: "key_1"}, Secret: "s3cret"}, nil
}

func (r *recorder) ListApiKeys(_ context.Context, req *accountsv1.ListApiKeysRequest) (*accountsv1.ListApiKeysResponse, error) {
	r.record("ListApiKeys", req)
	return &accountsv1.ListApiKeysResponse{}, nil
}

func (r *recorder) RevokeApiKey(_ context.Context, req *accountsv1.RevokeApiKeyRequest) (*accountsv1.RevokeApiKeyResponse, error) {
	r.record("RevokeApiKey", req)
	return &accountsv1.RevokeApiKeyResponse{}, nil
}

func TestGatewayRoutes(t *testing.T) {
	t.Parallel()

	ctx := t.Context()
	fake := &recorder{last: map[string]proto.Message{}}
	mux := runtime.NewServeMux()
	if err := originationv1.RegisterCallServiceHandlerServer(ctx, mux, fake); err != nil {
		t.Fatal(err)
	}
	if err := originationv1.RegisterEndpointServiceHandlerServer(ctx, mux, fake); err != nil {
		t.Fatal(err)
	}
	if err := accountsv1.RegisterAccountServiceHandlerServer(ctx, mux, fake); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		name, method, path, body string
		rpc                      string
		want                     proto.Message
		wantAt                   [2]string // a dotted JSON path in the response and its value
	}{
		{
			name: "create call (contract body)", method: http.MethodPost, path: "/v1/calls", body: contractBody,
			rpc: "CreateCall",
			want: &originationv1.CreateCallRequest{
				First:  &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15551230001"}},
				Second: &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15551230002"}},
			},
			wantAt: [2]string{"call.id", "call_1"},
		},
		{
			name: "get call", method: http.MethodGet, path: "/v1/calls/call_1",
			rpc: "GetCall", want: &originationv1.GetCallRequest{Id: "call_1"},
			wantAt: [2]string{"call.id", "call_1"},
		},
		{
			name: "list live calls", method: http.MethodGet, path: "/v1/calls:live?pageSize=10&pageToken=abc",
			rpc: "ListLiveCalls", want: &originationv1.ListLiveCallsRequest{PageSize: 10, PageToken: "abc"},
		},
		{
			name: "hang up call", method: http.MethodPost, path: "/v1/calls/call_1:hangup", body: `{"cause":"CALL_REJECTED"}`,
			rpc: "HangupCall", want: &originationv1.HangupCallRequest{Id: "call_1", Cause: "CALL_REJECTED"},
		},
		{
			name: "hang up call, empty object", method: http.MethodPost, path: "/v1/calls/call_2:hangup", body: `{}`,
			rpc: "HangupCall", want: &originationv1.HangupCallRequest{Id: "call_2"},
		},
		{
			name: "hang up call, no body", method: http.MethodPost, path: "/v1/calls/call_3:hangup",
			rpc: "HangupCall", want: &originationv1.HangupCallRequest{Id: "call_3"},
		},
		{
			name: "create endpoint", method: http.MethodPost, path: "/v1/endpoints",
			body: `{"name":"Desk 3","kind":"ENDPOINT_KIND_EXTERNAL_NUMBER","address":"+15551230003","ringTimeoutMs":15000}`,
			rpc:  "CreateEndpoint",
			want: &originationv1.CreateEndpointRequest{Endpoint: &originationv1.Endpoint{
				Name: "Desk 3", Kind: originationv1.EndpointKind_ENDPOINT_KIND_EXTERNAL_NUMBER, Address: "+15551230003", RingTimeoutMs: 15000,
			}},
		},
		{
			name: "get endpoint", method: http.MethodGet, path: "/v1/endpoints/ep_1",
			rpc: "GetEndpoint", want: &originationv1.GetEndpointRequest{Id: "ep_1"},
		},
		{
			name: "list endpoints", method: http.MethodGet, path: "/v1/endpoints?pageSize=5",
			rpc: "ListEndpoints", want: &originationv1.ListEndpointsRequest{PageSize: 5},
		},
		{
			name: "delete endpoint", method: http.MethodDelete, path: "/v1/endpoints/ep_1",
			rpc: "DeleteEndpoint", want: &originationv1.DeleteEndpointRequest{Id: "ep_1"},
		},
		{
			name: "create account", method: http.MethodPost, path: "/v1/accounts", body: `{"name":"acme"}`,
			rpc: "CreateAccount", want: &accountsv1.CreateAccountRequest{Account: &accountsv1.Account{Name: "acme"}},
		},
		{
			name: "get account", method: http.MethodGet, path: "/v1/accounts/acc_1",
			rpc: "GetAccount", want: &accountsv1.GetAccountRequest{Id: "acc_1"},
		},
		{
			name: "list accounts", method: http.MethodGet, path: "/v1/accounts",
			rpc: "ListAccounts", want: &accountsv1.ListAccountsRequest{},
		},
		{
			name: "create API key", method: http.MethodPost, path: "/v1/accounts/acc_1/api-keys", body: `{"name":"CRM"}`,
			rpc: "CreateApiKey", want: &accountsv1.CreateApiKeyRequest{AccountId: "acc_1", Name: "CRM"},
			wantAt: [2]string{"secret", "s3cret"},
		},
		{
			name: "list API keys", method: http.MethodGet, path: "/v1/accounts/acc_1/api-keys",
			rpc: "ListApiKeys", want: &accountsv1.ListApiKeysRequest{AccountId: "acc_1"},
		},
		{
			name: "revoke API key", method: http.MethodPost, path: "/v1/accounts/acc_1/api-keys/key_1:revoke", body: `{}`,
			rpc: "RevokeApiKey", want: &accountsv1.RevokeApiKeyRequest{AccountId: "acc_1", Id: "key_1"},
		},
	}
	for _, tt := range tests {
		// Not parallel: cases share the recorder's per-method slot.
		t.Run(tt.name, func(t *testing.T) {
			body := do(t, srv.URL, tt.method, tt.path, tt.body)
			if got := fake.got(tt.rpc); !proto.Equal(got, tt.want) {
				t.Errorf("%s received\n %v\nwant\n %v", tt.rpc, got, tt.want)
			}
			if path, want := tt.wantAt[0], tt.wantAt[1]; path != "" {
				if got := lookup(t, body, path); got != want {
					t.Errorf("response %s: .%s = %v, want %q", body, path, got, want)
				}
			}
		})
	}

	// PATCH infers update_mask from the fields present in the JSON body, and
	// names them with proto (snake_case) paths.
	t.Run("update endpoint infers the mask", func(t *testing.T) {
		do(t, srv.URL, http.MethodPatch, "/v1/endpoints/ep_1", `{"name":"Desk 4","ringTimeoutMs":9000}`)
		req, _ := fake.got("UpdateEndpoint").(*originationv1.UpdateEndpointRequest)
		if req.GetEndpoint().GetId() != "ep_1" || req.GetEndpoint().GetName() != "Desk 4" || req.GetEndpoint().GetRingTimeoutMs() != 9000 {
			t.Errorf("UpdateEndpoint received %v", req)
		}
		paths := slices.Sorted(slices.Values(req.GetUpdateMask().GetPaths()))
		if want := []string{"name", "ring_timeout_ms"}; !slices.Equal(paths, want) {
			t.Errorf("update_mask = %v, want %v", paths, want)
		}
	})
	t.Run("update account infers the mask", func(t *testing.T) {
		do(t, srv.URL, http.MethodPatch, "/v1/accounts/acc_1", `{"ipAllowlist":["203.0.113.0/24"]}`)
		req, _ := fake.got("UpdateAccount").(*accountsv1.UpdateAccountRequest)
		if req.GetAccount().GetId() != "acc_1" || !slices.Equal(req.GetAccount().GetIpAllowlist(), []string{"203.0.113.0/24"}) {
			t.Errorf("UpdateAccount received %v", req)
		}
		if want := []string{"ip_allowlist"}; !slices.Equal(req.GetUpdateMask().GetPaths(), want) {
			t.Errorf("update_mask = %v, want %v", req.GetUpdateMask().GetPaths(), want)
		}
	})
}

// do sends one request and returns the body of its 200 response.
func do(t *testing.T, base, method, path, body string) []byte {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: status %d, body %s", method, path, resp.StatusCode, b)
	}
	return b
}

// lookup returns the value at a dotted path (e.g. "call.id") in a JSON object.
func lookup(t *testing.T, b []byte, path string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("response %s is not JSON: %v", b, err)
	}
	for _, key := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[key]
	}
	return v
}
