package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testOperatorToken = "operator-token-0123456789abcdef"

// received is one RPC the fake origination service got.
type received struct {
	method string
	md     metadata.MD
	req    proto.Message
}

// fakeOrigination is a hand-written CallService and EndpointService (our
// own interfaces) that records what it receives: above all the metadata,
// to prove which account the gateway said a request was for.
type fakeOrigination struct {
	mu        sync.Mutex
	got       []received
	calls     map[string]*originationv1.Call
	endpoints map[string][]*originationv1.Endpoint // by account id
	byCall    map[string]received                  // the CreateCall of each call id
	n         int
}

func (f *fakeOrigination) record(ctx context.Context, method string, req proto.Message) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.got = append(f.got, received{method: method, md: md.Copy(), req: proto.Clone(req)})
	f.mu.Unlock()
	acc := md.Get(AccountHeader)
	if len(acc) != 1 || acc[0] == "" {
		return "", status.Error(codes.Unauthenticated, "no account in the request")
	}
	return acc[0], nil
}

// methods returns the RPCs of method received so far.
func (f *fakeOrigination) methods(method string) []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []received
	for _, g := range f.got {
		if g.method == method {
			out = append(out, g)
		}
	}
	return out
}

// last returns the last RPC of method, failing the test if there is none.
func (f *fakeOrigination) last(t *testing.T, method string) received {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.got) - 1; i >= 0; i-- {
		if f.got[i].method == method {
			return f.got[i]
		}
	}
	t.Fatalf("origination got no %s", method)
	return received{}
}

// created returns the CreateCall that made call id.
func (f *fakeOrigination) created(t *testing.T, id string) received {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.byCall[id]
	if !ok {
		t.Fatalf("origination created no call %q", id)
	}
	return r
}

// callsFor returns the CreateCall requests recorded for an account.
func (f *fakeOrigination) callsFor(account string) []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []received
	for _, g := range f.got {
		if g.method == "CreateCall" && len(g.md.Get(AccountHeader)) == 1 && g.md.Get(AccountHeader)[0] == account {
			out = append(out, g)
		}
	}
	return out
}

func withReason(c codes.Code, reason, msg string) error {
	st := status.New(c, msg)
	st, _ = st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "origination.ringback.dev"})
	return st.Err()
}

// busyNumber makes CreateCall fail as origination does when an endpoint is in another call.
const busyNumber = "+15550000409"

type fakeCalls struct {
	originationv1.UnimplementedCallServiceServer
	f *fakeOrigination
}

// ListLiveCalls answers no live calls.
func (s fakeCalls) ListLiveCalls(ctx context.Context, req *originationv1.ListLiveCallsRequest) (*originationv1.ListLiveCallsResponse, error) {
	if _, err := s.f.record(ctx, "ListLiveCalls", req); err != nil {
		return nil, err
	}
	return &originationv1.ListLiveCallsResponse{}, nil
}

func (s fakeCalls) CreateCall(ctx context.Context, req *originationv1.CreateCallRequest) (*originationv1.CreateCallResponse, error) {
	acc, err := s.f.record(ctx, "CreateCall", req)
	if err != nil {
		return nil, err
	}
	if req.GetFirst().GetNumber() == busyNumber || req.GetSecond().GetNumber() == busyNumber {
		return nil, withReason(codes.FailedPrecondition, "ENDPOINT_BUSY", "endpoint is in another call")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	src := originationv1.CallSource_CALL_SOURCE_API
	if v := md.Get(CallSourceHeader); len(v) == 1 {
		src = originationv1.CallSource(originationv1.CallSource_value[v[0]])
	}
	leg := func(role originationv1.LegRole, p *originationv1.PartySpec) *originationv1.Leg {
		ref := &originationv1.PartyRef{}
		if p.GetEndpointId() != "" {
			ref.Target = &originationv1.PartyRef_EndpointId{EndpointId: p.GetEndpointId()}
		} else {
			ref.Target = &originationv1.PartyRef_Number{Number: p.GetNumber()}
		}
		return &originationv1.Leg{Role: role, Party: ref, Status: originationv1.LegStatus_LEG_STATUS_PENDING}
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.n++
	c := &originationv1.Call{
		Id: fmt.Sprintf("call%04d", s.f.n), AccountId: acc, Source: src,
		Mode: originationv1.CallMode_CALL_MODE_SEQUENTIAL, Status: originationv1.CallStatus_CALL_STATUS_QUEUED,
		First: leg(originationv1.LegRole_LEG_ROLE_FIRST, req.GetFirst()), Second: leg(originationv1.LegRole_LEG_ROLE_SECOND, req.GetSecond()),
		CreatedAt: timestamppb.Now(),
	}
	if s.f.calls == nil {
		s.f.calls = map[string]*originationv1.Call{}
	}
	s.f.calls[c.Id] = c
	if s.f.byCall == nil {
		s.f.byCall = map[string]received{}
	}
	s.f.byCall[c.Id] = received{method: "CreateCall", md: md.Copy(), req: proto.Clone(req)}
	return &originationv1.CreateCallResponse{Call: c}, nil
}

// errorCalls maps GetCall ids to the errors the fake answers with, for the
// error mapping tests.
var errorCalls = map[string]error{
	"err-invalid":       withReason(codes.InvalidArgument, "INVALID_ARGUMENT", "number \"+1\" is too short"),
	"err-notfound":      withReason(codes.NotFound, "CALL_NOT_FOUND", "call not found"),
	"err-busy":          withReason(codes.FailedPrecondition, "ENDPOINT_BUSY", "endpoint is in another call"),
	"err-exhausted":     withReason(codes.ResourceExhausted, "RATE_LIMITED", "slow down"),
	"err-unavailable":   status.Error(codes.Unavailable, "dial tcp 10.9.8.7:50052: connection refused"),
	"err-deadline":      status.Error(codes.DeadlineExceeded, "context deadline exceeded"),
	"err-internal":      status.Error(codes.Internal, "panic: runtime error at engine.go:42"),
	"err-unauth":        withReason(codes.Unauthenticated, "UNAUTHENTICATED", "no account"),
	"err-permission":    status.Error(codes.PermissionDenied, "not yours"),
	"err-precondition":  status.Error(codes.FailedPrecondition, "call already ended"),
	"err-unimplemented": status.Error(codes.Unimplemented, "not implemented"),
	"err-exists":        status.Error(codes.AlreadyExists, "exists"),
}

func (s fakeCalls) GetCall(ctx context.Context, req *originationv1.GetCallRequest) (*originationv1.GetCallResponse, error) {
	acc, err := s.f.record(ctx, "GetCall", req)
	if err != nil {
		return nil, err
	}
	if err, ok := errorCalls[req.GetId()]; ok {
		return nil, err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	c, ok := s.f.calls[req.GetId()]
	if !ok || c.GetAccountId() != acc {
		return nil, withReason(codes.NotFound, "CALL_NOT_FOUND", "call not found")
	}
	done := proto.Clone(c).(*originationv1.Call)
	done.Status = originationv1.CallStatus_CALL_STATUS_COMPLETED
	done.Billsec = 12
	return &originationv1.GetCallResponse{Call: done}, nil
}

type fakeEndpoints struct {
	originationv1.UnimplementedEndpointServiceServer
	f *fakeOrigination
}

func (s fakeEndpoints) ListEndpoints(ctx context.Context, req *originationv1.ListEndpointsRequest) (*originationv1.ListEndpointsResponse, error) {
	acc, err := s.f.record(ctx, "ListEndpoints", req)
	if err != nil {
		return nil, err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return &originationv1.ListEndpointsResponse{Endpoints: s.f.endpoints[acc]}, nil
}

func (s fakeEndpoints) GetEndpoint(ctx context.Context, req *originationv1.GetEndpointRequest) (*originationv1.GetEndpointResponse, error) {
	acc, err := s.f.record(ctx, "GetEndpoint", req)
	if err != nil {
		return nil, err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for _, e := range s.f.endpoints[acc] {
		if e.GetId() == req.GetId() {
			return &originationv1.GetEndpointResponse{Endpoint: e}, nil
		}
	}
	return nil, withReason(codes.NotFound, "ENDPOINT_NOT_FOUND", "endpoint not found")
}

// startFake serves a fakeOrigination on an in-memory listener and returns
// a client connection to it.
func startFake(t *testing.T) (*fakeOrigination, *grpc.ClientConn) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	f := serveFake(t, lis)
	conn, err := grpc.NewClient("passthrough:///origination",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return f, conn
}

// serveFake serves a fakeOrigination on lis until the test ends.
func serveFake(t *testing.T, lis net.Listener) *fakeOrigination {
	t.Helper()
	f := &fakeOrigination{endpoints: map[string][]*originationv1.Endpoint{}}
	srv := grpc.NewServer()
	originationv1.RegisterCallServiceServer(srv, fakeCalls{f: f})
	originationv1.RegisterEndpointServiceServer(srv, fakeEndpoints{f: f})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return f
}

// env is one test's gateway: its own database, store, fake origination
// and handler.
type env struct {
	store *AccountStore
	fake  *fakeOrigination
	h     http.Handler
	cfg   Config
}

func testLogger(t *testing.T) *slog.Logger {
	return logging.New(testWriter{t}, slog.LevelWarn, "gateway")
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newEnv(t *testing.T, adjust ...func(*Config)) *env {
	t.Helper()
	return newEnvLimited(t, nil, adjust...)
}

// newEnvLimited is newEnv with a getCdrs limiter.
func newEnvLimited(t *testing.T, lim Limiter, adjust ...func(*Config)) *env {
	t.Helper()
	db := storetest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	st := NewAccountStore(db, log, StoreOptions{})
	t.Cleanup(st.Close) // before the pool closes: cleanups run last-in first-out
	fake, conn := startFake(t)
	cfg := Config{
		OperatorToken:  testOperatorToken,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		RequestTimeout: 10 * time.Second,
	}
	for _, a := range adjust {
		a(&cfg)
	}
	h, err := NewHandler(cfg, log, st, NewAccountServer(st, log), Backends{Origination: conn, Rating: conn, CDR: conn, Webhook: conn, Limiter: lim})
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: st, fake: fake, h: h, cfg: cfg}
}

// req describes one HTTP request to the handler.
type req struct {
	method, path string
	body         string
	key          string // Bearer token; empty: none
	remote       string // RemoteAddr; empty: httptest's 192.0.2.1:1234
	header       map[string]string
	contentType  string
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(t *testing.T, r req) resp {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	if r.key != "" {
		hr.Header.Set("Authorization", "Bearer "+r.key)
	}
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	} else if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, hr)
	return resp{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// json decodes the body into a generic value.
func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return v
}

// path reads a dotted path ("call.id") from a decoded JSON object.
func (r resp) path(t *testing.T, p string) any {
	t.Helper()
	var v any = r.json(t)
	for _, k := range strings.Split(p, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func (r resp) str(t *testing.T, p string) string {
	t.Helper()
	s, _ := r.path(t, p).(string)
	return s
}

// wantError checks a REST error response.
func (r resp) wantError(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var b ErrorBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("error body: %v: %s", err, r.body)
	}
	if b.Error.Code != code || b.Error.HTTPStatus != status || b.Error.Message == "" {
		t.Fatalf("error %+v, want code %s http_status %d and a message", b.Error, code, status)
	}
}

// newAccount creates an account with a key straight in the store.
func (e *env) newAccount(t *testing.T, name string, allow ...string) (id, key string) {
	t.Helper()
	ctx := context.Background()
	var l []netip.Prefix
	for _, a := range allow {
		p, err := parsePrefix(a)
		if err != nil {
			t.Fatal(err)
		}
		l = append(l, p)
	}
	a, err := e.store.CreateAccount(ctx, name, "", l)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := e.store.CreateKey(ctx, a.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	return a.ID, secret
}
