package gateway

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/cache"
	"github.com/ringback/ringback/services/internal/cache/cachetest"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/natsbus/natstest"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// bannerBackend is a hand-written origination for the banner routes
// (BannerService and CallService.GetCall: our own contract), served over
// a real loopback gRPC listener.
type bannerBackend struct {
	originationv1.UnimplementedBannerServiceServer
	mu        sync.Mutex
	campaigns map[string]*originationv1.PublicCampaign
	calls     map[string]*originationv1.Call
	starts    []bannerStart
	lookups   map[string]int // GetPublicCampaign by id
	// startDelay makes StartBannerCall slow (concurrent duplicates).
	startDelay time.Duration
	// failures are StartBannerCall's errors by number.
	failures map[string]error
	n        int
	started  atomic.Int64
}

// bannerStart is one StartBannerCall received.
type bannerStart struct {
	md  metadata.MD
	req *originationv1.StartBannerCallRequest
}

type bannerCallService struct {
	originationv1.UnimplementedCallServiceServer
	f *bannerBackend
}

// unavailableCampaign is a campaign id whose lookup fails as if
// origination were down.
const unavailableCampaign = "cmp-unavailable"

func (f *bannerBackend) GetPublicCampaign(_ context.Context, req *originationv1.GetPublicCampaignRequest) (*originationv1.GetPublicCampaignResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups[req.GetId()]++
	if req.GetId() == unavailableCampaign {
		return nil, status.Error(codes.Unavailable, "connection refused")
	}
	c, ok := f.campaigns[req.GetId()]
	if !ok {
		return nil, withReason(codes.NotFound, ReasonCampaignNotFound, "campaign not found")
	}
	return &originationv1.GetPublicCampaignResponse{Campaign: proto.Clone(c).(*originationv1.PublicCampaign)}, nil
}

func (f *bannerBackend) StartBannerCall(ctx context.Context, req *originationv1.StartBannerCallRequest) (*originationv1.StartBannerCallResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.started.Add(1)
	f.mu.Lock()
	f.starts = append(f.starts, bannerStart{md: md.Copy(), req: proto.Clone(req).(*originationv1.StartBannerCallRequest)})
	delay, ferr := f.startDelay, f.failures[req.GetNumber()]
	camp := f.campaigns[req.GetCampaignId()]
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if ferr != nil {
		return nil, ferr
	}
	if camp == nil || md.Get(AccountHeader)[0] != camp.GetAccountId() {
		return nil, withReason(codes.NotFound, ReasonCampaignNotFound, "campaign not found")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	c := &originationv1.Call{
		Id: fmt.Sprintf("call-%s-%d", req.GetCampaignId(), f.n), AccountId: camp.GetAccountId(), CampaignId: req.GetCampaignId(),
		Source: originationv1.CallSource_CALL_SOURCE_BANNER, Status: originationv1.CallStatus_CALL_STATUS_QUEUED,
		VisitorLeg: originationv1.LegRole_LEG_ROLE_FIRST, Attempt: 1, MaxAttempts: 1 + camp.GetRedialAttempts(),
		First:  &originationv1.Leg{Role: originationv1.LegRole_LEG_ROLE_FIRST, Status: originationv1.LegStatus_LEG_STATUS_PENDING, Address: req.GetNumber()},
		Second: &originationv1.Leg{Role: originationv1.LegRole_LEG_ROLE_SECOND, Status: originationv1.LegStatus_LEG_STATUS_PENDING, Address: "operator-ext-7"},
	}
	f.calls[c.Id] = c
	return &originationv1.StartBannerCallResponse{Call: proto.Clone(c).(*originationv1.Call)}, nil
}

func (s bannerCallService) GetCall(ctx context.Context, req *originationv1.GetCallRequest) (*originationv1.GetCallResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	c, ok := s.f.calls[req.GetId()]
	if !ok || len(md.Get(AccountHeader)) != 1 || md.Get(AccountHeader)[0] != c.GetAccountId() {
		return nil, withReason(codes.NotFound, "CALL_NOT_FOUND", "call not found")
	}
	return &originationv1.GetCallResponse{Call: proto.Clone(c).(*originationv1.Call)}, nil
}

// update changes a call as origination would.
func (f *bannerBackend) update(id string, change func(*originationv1.Call)) *originationv1.Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f.calls[id])
	return proto.Clone(f.calls[id]).(*originationv1.Call)
}

func (f *bannerBackend) startsFor(campaignID string) []bannerStart {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bannerStart
	for _, s := range f.starts {
		if s.req.GetCampaignId() == campaignID {
			out = append(out, s)
		}
	}
	return out
}

func (f *bannerBackend) lookupsOf(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups[id]
}

func (f *bannerBackend) fail(number string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[number] = err
}

// serveBannerBackend serves a bannerBackend on loopback TCP until the test
// ends and returns a connection to it.
func serveBannerBackend(t testing.TB) (*bannerBackend, *grpc.ClientConn) {
	t.Helper()
	f := &bannerBackend{campaigns: map[string]*originationv1.PublicCampaign{}, calls: map[string]*originationv1.Call{},
		lookups: map[string]int{}, failures: map[string]error{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	originationv1.RegisterBannerServiceServer(srv, f)
	originationv1.RegisterCallServiceServer(srv, bannerCallService{f: f})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-served
	})
	return f, conn
}

// bannerLogger is testLogger for tests and benchmarks.
func bannerLogger(t testing.TB) *slog.Logger {
	return logging.New(tbWriter{t}, slog.LevelWarn, "gateway")
}

type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// bannerEnv is one test's gateway with the banner routes.
type bannerEnv struct {
	fake *bannerBackend
	h    http.Handler
	api  *bannerAPI
	rdb  *cache.Client
	bus  *natsbus.Bus // nil unless withNATS
	reg  *prometheus.Registry
}

type bannerEnvOptions struct {
	cfg     Config
	nats    bool
	rdb     *cache.Client
	noRedis bool
	demo    func() string
}

func withNATS(o *bannerEnvOptions)     { o.nats = true }
func withoutRedis(o *bannerEnvOptions) { o.noRedis = true }

// testProxy is the trusted proxy of the banner tests.
const testProxy = "10.1.2.3:4000"

func newBannerEnv(t testing.TB, opts ...func(*bannerEnvOptions)) *bannerEnv {
	t.Helper()
	o := bannerEnvOptions{cfg: Config{
		OperatorToken:  testOperatorToken,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		RequestTimeout: 10 * time.Second,
		BannerSecret:   "banner-test-secret-0123456789abcdef",
		BannerPowBits:  8, // solved in a millisecond
	}}
	for _, f := range opts {
		f(&o)
	}
	e := &bannerEnv{reg: prometheus.NewRegistry()}
	switch {
	case o.noRedis:
	case o.rdb != nil:
		e.rdb = o.rdb
	default:
		e.rdb = cachetest.New(t)
	}
	if o.nats {
		srv := natstest.Start(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		bus, err := natsbus.Connect(ctx, srv.URL(), "gateway-test", bannerLogger(t), natsbus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bus.Close)
		if err := bus.EnsureStream(ctx, natsbus.Calls(time.Hour)); err != nil {
			t.Fatal(err)
		}
		e.bus = bus
	}
	db := storetest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	log := bannerLogger(t)
	st := NewAccountStore(db, log, StoreOptions{})
	t.Cleanup(st.Close)
	fake, conn := serveBannerBackend(t)
	b := Backends{Origination: conn, Rating: conn, CDR: conn, Webhook: conn, Redis: e.rdb, DemoCampaign: o.demo, Metrics: e.reg}
	if e.bus != nil {
		b.Events = e.bus
	}
	h, err := NewHandler(o.cfg, log, st, NewAccountServer(st, log), b)
	if err != nil {
		t.Fatal(err)
	}
	e.fake, e.h, e.api = fake, h, h.(*handler).banner
	t.Cleanup(e.api.closeStreams)
	return e
}

// campaign creates a campaign in the fake: challenge off, the example shop
// allowed, generous limits; change adjusts it.
func (e *bannerEnv) campaign(change ...func(*originationv1.PublicCampaign)) *originationv1.PublicCampaign {
	c := &originationv1.PublicCampaign{
		Id: "cmp-" + randomHex(6), AccountId: "acct-" + randomHex(4), Enabled: true, PublicKey: "pk_" + randomHex(12),
		AllowedOrigins: []string{"https://shop.example.com"},
		Limits:         &originationv1.BannerLimits{PerIpPerHour: 100, PerNumberPerDay: 5, PerCampaignPerMinute: 100, DuplicateWindowS: 120},
		Challenge:      originationv1.ChallengeMode_CHALLENGE_MODE_OFF,
		FirstParty:     originationv1.FirstParty_FIRST_PARTY_VISITOR,
	}
	for _, f := range change {
		f(c)
	}
	e.fake.mu.Lock()
	e.fake.campaigns[c.Id] = c
	e.fake.mu.Unlock()
	return c
}

// visitor describes who sends a banner request.
type visitor struct {
	origin string // Origin header; empty: none
	remote string // RemoteAddr; empty: 192.0.2.1:1234
	xff    string // X-Forwarded-For
	host   string
}

var shop = visitor{origin: "https://shop.example.com"}

func (e *bannerEnv) send(t testing.TB, method, path, body string, v visitor, header ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if v.remote != "" {
		r.RemoteAddr = v.remote
	}
	if v.origin != "" {
		r.Header.Set("Origin", v.origin)
	}
	if v.xff != "" {
		r.Header.Set("X-Forwarded-For", v.xff)
	}
	if v.host != "" {
		r.Host = v.host
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return resp{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// post sends a click2call with body's fields (number and key at least).
func (e *bannerEnv) post(t testing.TB, campaignID string, body map[string]any, v visitor) resp {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return e.send(t, "POST", "/v1/campaigns/"+campaignID+"/click2call", string(b), v)
}

// call is post for a request that must be admitted; it returns the answer.
func (e *bannerEnv) call(t testing.TB, c *originationv1.PublicCampaign, number string, v visitor) callStarted {
	t.Helper()
	r := e.post(t, c.Id, map[string]any{"number": number, "key": c.PublicKey}, v)
	if r.status != 200 {
		t.Fatalf("POST %s: %d %s", number, r.status, r.body)
	}
	var s callStarted
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatal(err)
	}
	if s.Call.ID == "" || s.Token == "" || s.EventsURL != "/v1/calls/"+s.Call.ID+"/events?token="+url.QueryEscape(s.Token) {
		t.Fatalf("answer %s", r.body)
	}
	return s
}

func (e *bannerEnv) refusals(t testing.TB, code string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ringback_gateway_banner_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// Every refusal before the call has its code and status, carries CORS
// headers only for allowed origins, and never reaches StartBannerCall.
func TestBannerRefusals(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)
	strict := e.campaign()
	spain := e.campaign(func(c *originationv1.PublicCampaign) {
		c.DefaultCountry = "ES"
		c.BlockedPrefixes = []string{"3480", "+4420"}
	})
	disabled := e.campaign(func(c *originationv1.PublicCampaign) { c.Enabled = false })
	ok := func(c *originationv1.PublicCampaign, extra ...any) map[string]any {
		m := map[string]any{"number": "+15551230486", "key": c.PublicKey}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		campaign string
		body     any // a map, or a raw string
		v        visitor
		status   int
		code     string
		cors     bool // Access-Control-Allow-Origin expected
	}{
		{"not JSON", strict.Id, "number=+15551230486", shop, 400, ReasonInvalidArgument, false},
		{"unknown field", strict.Id, ok(strict, "frist", "x"), shop, 400, ReasonInvalidArgument, false},
		{"two objects", strict.Id, `{"number":"+15551230486","key":"k"}{}`, shop, 400, ReasonInvalidArgument, false},
		{"too large", strict.Id, ok(strict, "consent", strings.Repeat("a", 5000)), shop, 413, ReasonRequestTooLarge, false},
		{"unknown campaign", "cmp-nowhere", ok(strict), shop, 404, ReasonCampaignNotFound, false},
		{"not a campaign id", "cmp.x*", ok(strict), shop, 404, ReasonCampaignNotFound, false},
		{"wrong key", strict.Id, ok(strict, "key", "pk_wrong"), shop, 401, ReasonInvalidKey, true},
		{"no key", strict.Id, map[string]any{"number": "+15551230486"}, shop, 401, ReasonInvalidKey, true},
		{"wrong key, other origin", strict.Id, ok(strict, "key", "pk_wrong"), visitor{origin: "https://evil.example"}, 401, ReasonInvalidKey, false},
		{"disabled", disabled.Id, ok(disabled), shop, 403, ReasonCampaignDisabled, true},
		{"origin not allowed", strict.Id, ok(strict), visitor{origin: "https://evil.example"}, 403, ReasonOriginNotAllowed, false},
		{"origin on another port", strict.Id, ok(strict), visitor{origin: "https://shop.example.com:8443"}, 403, ReasonOriginNotAllowed, false},
		{"null origin", strict.Id, ok(strict), visitor{origin: "null"}, 403, ReasonOriginNotAllowed, false},
		{"letters", spain.Id, ok(spain, "number", "call me"), shop, 400, ReasonInvalidNumber, true},
		{"too short", spain.Id, ok(spain, "number", "+1 555"), shop, 400, ReasonInvalidNumber, true},
		{"empty number", spain.Id, ok(spain, "number", ""), shop, 400, ReasonInvalidNumber, true},
		{"national without default country", strict.Id, ok(strict, "number", "612 345 678"), shop, 400, ReasonInvalidNumber, true},
		{"long name", spain.Id, ok(spain, "name", strings.Repeat("é", 101)), shop, 400, ReasonInvalidArgument, true},
		{"name with a newline", spain.Id, ok(spain, "name", "Ann\nBob"), shop, 400, ReasonInvalidArgument, true},
		{"consent with a NUL", spain.Id, ok(spain, "consent", "I agree\x00"), shop, 400, ReasonInvalidArgument, true},
		{"long consent", spain.Id, ok(spain, "consent", strings.Repeat("y", 1001)), shop, 400, ReasonInvalidArgument, true},
		{"blocked prefix", spain.Id, ok(spain, "number", "+34 800 123 456"), shop, 422, ReasonBlockedDestination, true},
		{"blocked prefix written with +", spain.Id, ok(spain, "number", "+442071234567"), shop, 422, ReasonBlockedDestination, true},
		{"blocked national number", spain.Id, ok(spain, "number", "800 123 456"), shop, 422, ReasonBlockedDestination, true},
		{"US premium", strict.Id, ok(strict, "number", "+1 900 555 0123"), shop, 422, ReasonBlockedDestination, true},
		{"UK premium", strict.Id, ok(strict, "number", "+44 909 879 0000"), shop, 422, ReasonBlockedDestination, true},
		{"Spanish shared cost", spain.Id, ok(spain, "number", "902 123 456"), shop, 422, ReasonBlockedDestination, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body, isRaw := tc.body.(string)
			if !isRaw {
				b, _ := json.Marshal(tc.body)
				body = string(b)
			}
			r := e.send(t, "POST", "/v1/campaigns/"+tc.campaign+"/click2call", body, tc.v)
			r.wantError(t, tc.status, tc.code)
			acao := r.header.Get("Access-Control-Allow-Origin")
			if tc.cors && (acao != tc.v.origin || r.header.Get("Vary") != "Origin" || r.header.Get("Access-Control-Expose-Headers") != "Retry-After") {
				t.Errorf("CORS headers %v, want the origin echoed", r.header)
			}
			if !tc.cors && acao != "" {
				t.Errorf("Access-Control-Allow-Origin %q on a refusal to a page that may not read it", acao)
			}
		})
	}
	t.Cleanup(func() {
		if n := e.fake.started.Load(); n != 0 {
			t.Errorf("%d calls reached StartBannerCall", n)
		}
		if n := e.fake.lookupsOf("cmp.x*"); n != 0 {
			t.Errorf("a malformed id was looked up %d times", n)
		}
		if n := e.refusals(t, ReasonBlockedDestination); n != 6 {
			t.Errorf("refusals{code=BLOCKED_DESTINATION} = %v, want 6", n)
		}
	})
}

// An unknown campaign is asked for once, then remembered; a campaign whose
// lookup fails is not remembered, and answers 503.
func TestBannerCampaignLookup(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)
	for range 3 {
		e.post(t, "cmp-unknown", map[string]any{"number": "+15551230486", "key": "k"}, shop).wantError(t, 404, ReasonCampaignNotFound)
	}
	if n := e.fake.lookupsOf("cmp-unknown"); n != 1 {
		t.Fatalf("unknown campaign looked up %d times, want 1 (negative cache)", n)
	}
	for range 2 {
		e.post(t, unavailableCampaign, map[string]any{"number": "+15551230486", "key": "k"}, shop).wantError(t, 503, ReasonUnavailable)
	}
	if n := e.fake.lookupsOf(unavailableCampaign); n != 2 {
		t.Fatalf("failed lookup asked %d times, want 2 (not cached)", n)
	}
	c := e.campaign()
	for i := range 5 {
		e.call(t, c, "+1555123100"+strconv.Itoa(i), shop)
	}
	if n := e.fake.lookupsOf(c.Id); n != 1 {
		t.Fatalf("campaign looked up %d times for 5 requests, want 1", n)
	}
}

// The campaign cache: one lookup however many wait for it, entries expire,
// and random ids cannot grow it past its bound.
func TestBannerCampaignCache(t *testing.T) {
	t.Parallel()
	fake, conn := serveBannerBackend(t)
	fake.campaigns["cmp-a"] = &originationv1.PublicCampaign{Id: "cmp-a", Enabled: true}
	cc := newCampaignCache(originationv1.NewBannerServiceClient(conn))
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	cc.now = func() time.Time { return time.Unix(0, now.Load()) }

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if c, err := cc.get(t.Context(), "cmp-a"); err != nil || c.pc.GetId() != "cmp-a" {
				t.Errorf("get: %v %v", c, err)
			}
		})
	}
	wg.Wait()
	if n := fake.lookupsOf("cmp-a"); n != 1 {
		t.Fatalf("%d lookups for 50 concurrent gets, want 1", n)
	}
	now.Add(int64(bannerCampaignTTL))
	if _, err := cc.get(t.Context(), "cmp-a"); err != nil {
		t.Fatal(err)
	}
	if n := fake.lookupsOf("cmp-a"); n != 2 {
		t.Fatalf("%d lookups after the TTL, want 2", n)
	}
	if _, err := cc.get(t.Context(), "cmp-gone"); err != errCampaignNotFound {
		t.Fatalf("unknown: %v", err)
	}
	now.Add(int64(bannerNotFoundTTL - time.Second))
	_, _ = cc.get(t.Context(), "cmp-gone")
	now.Add(int64(2 * time.Second))
	_, _ = cc.get(t.Context(), "cmp-gone")
	if n := fake.lookupsOf("cmp-gone"); n != 2 {
		t.Fatalf("%d lookups of an unknown id over 31 s, want 2", n)
	}

	for i := range bannerCacheEntries + 500 {
		cc.put(fmt.Sprintf("cmp-rnd-%d", i), campaignEntry{expires: cc.now().Add(time.Minute)})
	}
	if n := cc.size(); n > bannerCacheEntries {
		t.Fatalf("cache holds %d entries, bound %d", n, bannerCacheEntries)
	}
}

// Origins: listed ones (any case, trailing slash), "*", and the gateway's
// own; a preflight checks the origin only.
func TestBannerOrigins(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)
	listed := e.campaign(func(c *originationv1.PublicCampaign) {
		c.AllowedOrigins = []string{"HTTPS://Shop.Example.com/", "http://localhost:3000"}
	})
	anyOrigin := e.campaign(func(c *originationv1.PublicCampaign) { c.AllowedOrigins = []string{"*"} })
	for i, tc := range []struct {
		c      *originationv1.PublicCampaign
		v      visitor
		wantOK bool
	}{
		{listed, visitor{origin: "https://shop.example.com"}, true},
		{listed, visitor{origin: "http://localhost:3000"}, true},
		{listed, visitor{}, true}, // not a browser
		{listed, visitor{origin: "http://shop.example.com"}, false},
		{listed, visitor{origin: "https://gw.example.net", host: "gw.example.net"}, true}, // the gateway's own page
		{listed, visitor{origin: "https://gw.example.net", host: "gw.example.net:443"}, true},
		{listed, visitor{origin: "http://gw.example.net:8080", host: "gw.example.net:8080"}, true},
		{listed, visitor{origin: "http://gw.example.net:8080", host: "gw.example.net"}, false},
		{anyOrigin, visitor{origin: "https://anyone.example"}, true},
	} {
		r := e.post(t, tc.c.Id, map[string]any{"number": fmt.Sprintf("+1555123%04d", i), "key": tc.c.PublicKey}, tc.v)
		switch {
		case tc.wantOK && r.status != 200:
			t.Errorf("%d %+v: %d %s", i, tc.v, r.status, r.body)
		case tc.wantOK && tc.v.origin != "" && r.header.Get("Access-Control-Allow-Origin") != tc.v.origin:
			t.Errorf("%d %+v: Access-Control-Allow-Origin %q", i, tc.v, r.header.Get("Access-Control-Allow-Origin"))
		case !tc.wantOK:
			r.wantError(t, 403, ReasonOriginNotAllowed)
		}
	}

	pre := e.send(t, "OPTIONS", "/v1/campaigns/"+listed.Id+"/click2call", "", visitor{origin: "https://shop.example.com"},
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
	if pre.status != 204 || pre.header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" ||
		pre.header.Get("Access-Control-Allow-Methods") != "POST, OPTIONS" || pre.header.Get("Access-Control-Allow-Headers") != "Content-Type" ||
		pre.header.Get("Access-Control-Max-Age") != "600" || pre.header.Get("Vary") != "Origin" {
		t.Fatalf("preflight: %d %v", pre.status, pre.header)
	}
	pre = e.send(t, "OPTIONS", "/v1/campaigns/"+listed.Id+"/click2call", "", visitor{origin: "https://evil.example"},
		"Access-Control-Request-Method", "POST")
	pre.wantError(t, 403, ReasonOriginNotAllowed)
	if pre.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("refused preflight with CORS headers: %v", pre.header)
	}
	e.send(t, "OPTIONS", "/v1/campaigns/cmp-none/click2call", "", shop).wantError(t, 404, ReasonCampaignNotFound)
	if pre := e.send(t, "OPTIONS", "/v1/campaigns/"+listed.Id+"/challenge", "", shop); pre.status != 204 ||
		pre.header.Get("Access-Control-Allow-Methods") != "GET, OPTIONS" {
		t.Fatalf("challenge preflight: %d %v", pre.status, pre.header)
	}
}

// retryAfter reads a 429's Retry-After.
func retryAfter(t *testing.T, r resp) int {
	t.Helper()
	s, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || s < 1 {
		t.Fatalf("Retry-After %q, want whole seconds >= 1", r.header.Get("Retry-After"))
	}
	return s
}

// The per-IP limit counts the client behind a trusted proxy, and says so.
func TestBannerPerIPLimit(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)
	c := e.campaign(func(c *originationv1.PublicCampaign) { c.Limits.PerIpPerHour = 4 }) // burst 3, one per 15 min
	proxied := visitor{origin: shop.origin, remote: testProxy, xff: "203.0.113.9"}
	for i := range 3 {
		e.call(t, c, fmt.Sprintf("+155512300%02d", i), proxied)
	}
	r := e.post(t, c.Id, map[string]any{"number": "+15551230099", "key": c.PublicKey}, proxied)
	r.wantError(t, 429, ReasonRateLimited)
	if s := retryAfter(t, r); s < 14*60 || s > 15*60 {
		t.Errorf("Retry-After %d s, want about 15 minutes", s)
	}
	if !strings.Contains(r.str(t, "error.message"), "address") || r.header.Get("Access-Control-Allow-Origin") != shop.origin {
		t.Errorf("refusal %s %v", r.body, r.header)
	}
	// Another client behind the same proxy, and a forged X-Forwarded-For
	// from a client that is not a proxy, count on their own.
	e.call(t, c, "+15551230100", visitor{origin: shop.origin, remote: testProxy, xff: "203.0.113.10"})
	for range 3 {
		e.call(t, c, "+15551230101", visitor{origin: shop.origin, remote: "198.51.100.7:5555", xff: "203.0.113.9"})
	}
	e.post(t, c.Id, map[string]any{"number": "+15551230102", "key": c.PublicKey}, visitor{remote: "198.51.100.7:5555"}).wantError(t, 429, ReasonRateLimited)
	// IPv6 counts per /64.
	for i := range 3 {
		e.call(t, c, "+15551230200", visitor{remote: fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1)})
	}
	e.post(t, c.Id, map[string]any{"number": "+15551230201", "key": c.PublicKey}, visitor{remote: "[2001:db8:1:2:ffff::1]:443"}).wantError(t, 429, ReasonRateLimited)
	if n := len(e.fake.startsFor(c.Id)); n != 6 {
		t.Fatalf("%d calls placed, want 6 (3 + 1 + 1 + 1, the rest joined or refused)", n)
	}
}

// The per-number limit counts calls placed (a refused call counted too),
// and a failed call frees its number for the next request.
func TestBannerPerNumberLimit(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)
	c := e.campaign(func(c *originationv1.PublicCampaign) { c.Limits.PerNumberPerDay = 2 })
	const number = "+8801712345678"
	e.fake.fail(number, withReason(codes.FailedPrecondition, "DESTINATION_NOT_SUPPORTED", "no rate for +880"))
	for i := range 2 {
		e.post(t, c.Id, map[string]any{"number": number, "key": c.PublicKey}, visitor{remote: fmt.Sprintf("192.0.2.%d:1", i+1)}).
			wantError(t, 422, "DESTINATION_NOT_SUPPORTED")
	}
	r := e.post(t, c.Id, map[string]any{"number": number, "key": c.PublicKey}, visitor{remote: "192.0.2.9:1"})
	r.wantError(t, 429, ReasonRateLimited)
	if s := retryAfter(t, r); s < 11*3600 || s > 12*3600 {
		t.Errorf("Retry-After %d s, want about 12 hours (2 per day)", s)
	}
	if !strings.Contains(r.str(t, "error.message"), "number") {
		t.Errorf("message %q does not say which limit", r.str(t, "error.message"))
	}
	starts := e.fake.startsFor(c.Id)
	if len(starts) != 2 || starts[0].req.GetNumber() != number {
		t.Fatalf("StartBannerCall got %d requests: %v (a +88 number is passed unchanged for rating to refuse)", len(starts), starts)
	}
	// Another number is not limited.
	e.call(t, c, "+15551230486", shop)
}

// The per-campaign limit bounds all visitors together.
func TestBannerPerCampaignLimit(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)
	c := e.campaign(func(c *originationv1.PublicCampaign) { c.Limits.PerCampaignPerMinute = 2 })
	for i := range 2 {
		e.call(t, c, fmt.Sprintf("+155512301%02d", i), visitor{remote: fmt.Sprintf("192.0.2.%d:1", i+1)})
	}
	r := e.post(t, c.Id, map[string]any{"number": "+15551230199", "key": c.PublicKey}, visitor{remote: "192.0.2.50:1"})
	r.wantError(t, 429, ReasonRateLimited)
	if s := retryAfter(t, r); s > 30 {
		t.Errorf("Retry-After %d s, want at most 30 (2 per minute)", s)
	}
	if !strings.Contains(r.str(t, "error.message"), "campaign") {
		t.Errorf("message %q does not say which limit", r.str(t, "error.message"))
	}
	// The refused request did not hold the number.
	if v, err := e.rdb.Redis().Get(t.Context(), e.rdb.Key("banner", "dup", c.Id, "+15551230199")).Result(); err != redis.Nil {
		t.Fatalf("duplicate key left behind: %q %v", v, err)
	}
}

// A second request for a number joins the first's call, with a token of
// its own, without counting the number's or the campaign's limits.
func TestBannerDuplicateJoin(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)
	c := e.campaign(func(c *originationv1.PublicCampaign) {
		c.Limits.PerNumberPerDay = 1
		c.Limits.PerCampaignPerMinute = 1
		c.Limits.DuplicateWindowS = 90
	})
	first := e.call(t, c, "+15551230486", shop)
	if first.Joined {
		t.Fatal("first request joined")
	}
	for i := range 3 {
		again := e.call(t, c, "+1 555 123 0486", visitor{origin: shop.origin, remote: fmt.Sprintf("198.51.100.%d:1", i+1)})
		if !again.Joined || again.Call.ID != first.Call.ID || again.Call.State != StateQueued {
			t.Fatalf("duplicate: %+v, want call %s joined", again, first.Call.ID)
		}
		if _, err := e.api.tokens.verify(first.Call.ID, again.Token, time.Now()); err != nil {
			t.Fatalf("joined token: %v", err)
		}
	}
	if n := len(e.fake.startsFor(c.Id)); n != 1 {
		t.Fatalf("%d calls placed, want 1", n)
	}
	key := e.rdb.Key("banner", "dup", c.Id, "+15551230486")
	v, err := e.rdb.Redis().Get(t.Context(), key).Result()
	ttl, _ := e.rdb.Redis().TTL(t.Context(), key).Result()
	if err != nil || v != first.Call.ID || ttl <= 80*time.Second || ttl > 90*time.Second {
		t.Fatalf("duplicate key %q ttl %v (%v), want the call id with the window's expiry kept", v, ttl, err)
	}
}

// Once the joined call has ended, a new request for the number is a new
// call, not the old failure again; its claim then lasts the window.
func TestBannerDuplicateOfAnEndedCallIsANewCall(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)
	c := e.campaign(func(c *originationv1.PublicCampaign) { c.Limits.DuplicateWindowS = 90 })
	first := e.call(t, c, "+15551230486", shop)
	e.fake.update(first.Call.ID, func(call *originationv1.Call) {
		call.Status = originationv1.CallStatus_CALL_STATUS_FAILED
		call.FailedLeg = originationv1.LegRole_LEG_ROLE_FIRST
	})
	again := e.call(t, c, "+15551230486", shop)
	if again.Joined || again.Call.ID == first.Call.ID {
		t.Fatalf("a request after the call ended joined it: %+v", again)
	}
	if n := len(e.fake.startsFor(c.Id)); n != 2 {
		t.Fatalf("%d calls placed, want 2", n)
	}
	third := e.call(t, c, "+15551230486", shop)
	if !third.Joined || third.Call.ID != again.Call.ID {
		t.Fatalf("a duplicate of the live second call: %+v", third)
	}
	key := e.rdb.Key("banner", "dup", c.Id, "+15551230486")
	if ttl, _ := e.rdb.Redis().TTL(t.Context(), key).Result(); ttl <= 80*time.Second {
		t.Fatalf("the new call's claim expires in %v, want the window", ttl)
	}
}

// Concurrent requests for one number place exactly one call, and all
// answer with it; a twin still in flight after 2 s is 409.
func TestBannerConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)
	e.fake.mu.Lock()
	e.fake.startDelay = 300 * time.Millisecond
	e.fake.mu.Unlock()
	c := e.campaign()
	const n = 12
	rs := make([]resp, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rs[i] = e.post(t, c.Id, map[string]any{"number": "+15551230777", "key": c.PublicKey},
				visitor{origin: shop.origin, remote: fmt.Sprintf("198.51.100.%d:1", i+1)})
		})
	}
	wg.Wait()
	answers := make([]callStarted, n)
	for i, r := range rs {
		if r.status != 200 || json.Unmarshal(r.body, &answers[i]) != nil {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	placed := 0
	for _, a := range answers {
		if a.Call.ID != answers[0].Call.ID {
			t.Fatalf("answers name calls %s and %s", answers[0].Call.ID, a.Call.ID)
		}
		if !a.Joined {
			placed++
		}
	}
	if got := len(e.fake.startsFor(c.Id)); got != 1 || placed != 1 {
		t.Fatalf("%d StartBannerCall, %d answers not joined; want 1 and 1", got, placed)
	}

	e.fake.mu.Lock()
	e.fake.startDelay = 3 * time.Second
	e.fake.mu.Unlock()
	slow := make(chan resp, 1)
	go func() {
		slow <- e.post(t, c.Id, map[string]any{"number": "+15551230778", "key": c.PublicKey}, shop)
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	e.post(t, c.Id, map[string]any{"number": "+15551230778", "key": c.PublicKey}, shop).wantError(t, 409, ReasonDuplicateInProgress)
	if d := time.Since(start); d < 1900*time.Millisecond {
		t.Errorf("409 after %v, want after waiting about 2 s", d)
	}
	if r := <-slow; r.status != 200 {
		t.Fatalf("slow first request: %d %s", r.status, r.body)
	}
}

// solvePoW finds a nonce for a challenge as the widget does.
func solvePoW(challenge string, bits int) string {
	for i := 0; ; i++ {
		n := strconv.Itoa(i)
		if leadingZeroBits(sha256.Sum256([]byte(challenge+":"+n))) >= bits {
			return n
		}
	}
}

// wrongNonce returns a nonce that does not solve challenge. Any fixed guess
// would solve it by chance once in 2^bits runs.
func wrongNonce(challenge string, bits int) string {
	for i := 0; ; i++ {
		n := "wrong" + strconv.Itoa(i)
		if leadingZeroBits(sha256.Sum256([]byte(challenge+":"+n))) < bits {
			return n
		}
	}
}

// challengeOf reads the challenge of a 428.
func challengeOf(t *testing.T, r resp) (string, int) {
	t.Helper()
	r.wantError(t, 428, ReasonChallengeRequired)
	ch, bits, exp := r.str(t, "error.challenge.challenge"), r.path(t, "error.challenge.bits"), r.str(t, "error.challenge.expiresAt")
	at, err := time.Parse(time.RFC3339, exp)
	if ch == "" || bits != float64(8) || err != nil || time.Until(at) < 4*time.Minute || time.Until(at) > 5*time.Minute {
		t.Fatalf("challenge %s", r.body)
	}
	return ch, 8
}

func TestBannerChallenge(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)

	t.Run("always", func(t *testing.T) {
		t.Parallel()
		c := e.campaign(func(c *originationv1.PublicCampaign) { c.Challenge = originationv1.ChallengeMode_CHALLENGE_MODE_ALWAYS })
		body := map[string]any{"number": "+15551230001", "key": c.PublicKey}
		r := e.post(t, c.Id, body, shop)
		ch, bits := challengeOf(t, r)
		if r.header.Get("Access-Control-Allow-Origin") != shop.origin {
			t.Fatalf("428 without CORS headers: %v", r.header)
		}
		nonce := solvePoW(ch, bits)
		body["challenge"], body["nonce"] = ch, wrongNonce(ch, bits)
		challengeOf(t, e.post(t, c.Id, body, shop)) // a wrong nonce
		body["nonce"] = nonce
		if r := e.post(t, c.Id, body, shop); r.status != 200 {
			t.Fatalf("solved: %d %s", r.status, r.body)
		}
		body["number"] = "+15551230002"
		r = e.post(t, c.Id, body, shop) // the same solution again
		challengeOf(t, r)
		if !strings.Contains(r.str(t, "error.message"), "already used") {
			t.Fatalf("reuse: %s", r.body)
		}
		other := e.campaign(func(c *originationv1.PublicCampaign) { c.Challenge = originationv1.ChallengeMode_CHALLENGE_MODE_ALWAYS })
		ch2, _ := challengeOf(t, e.post(t, other.Id, map[string]any{"number": "+15551230003", "key": other.PublicKey}, shop))
		body["challenge"], body["nonce"] = ch2, solvePoW(ch2, bits)
		challengeOf(t, e.post(t, c.Id, body, shop)) // another campaign's
		if n := len(e.fake.startsFor(c.Id)); n != 1 {
			t.Fatalf("%d calls placed, want 1", n)
		}
	})

	t.Run("adaptive per address", func(t *testing.T) {
		t.Parallel()
		c := e.campaign(func(c *originationv1.PublicCampaign) {
			c.Challenge = originationv1.ChallengeMode_CHALLENGE_MODE_UNSPECIFIED // adaptive
			c.Limits.PerIpPerHour = 8                                            // burst 3
		})
		e.call(t, c, "+15551230010", shop) // 2 of 3 left
		ch, bits := challengeOf(t, e.post(t, c.Id, map[string]any{"number": "+15551230011", "key": c.PublicKey}, shop))
		body := map[string]any{"number": "+15551230011", "key": c.PublicKey, "challenge": ch, "nonce": solvePoW(ch, bits)}
		if r := e.post(t, c.Id, body, shop); r.status != 200 {
			t.Fatalf("solved: %d %s", r.status, r.body)
		}
		// Another address is not asked.
		e.call(t, c, "+15551230012", visitor{origin: shop.origin, remote: "198.51.100.1:1"})
	})

	t.Run("adaptive per campaign", func(t *testing.T) {
		t.Parallel()
		c := e.campaign(func(c *originationv1.PublicCampaign) {
			c.Challenge = originationv1.ChallengeMode_CHALLENGE_MODE_ADAPTIVE
			c.Limits.PerCampaignPerMinute = 4
		})
		for i := range 2 {
			e.call(t, c, fmt.Sprintf("+155512300%d", 20+i), visitor{remote: fmt.Sprintf("198.51.100.%d:1", i+1)})
		}
		challengeOf(t, e.post(t, c.Id, map[string]any{"number": "+15551230030", "key": c.PublicKey}, visitor{origin: shop.origin, remote: "198.51.100.99:1"}))
	})

	t.Run("issued on request", func(t *testing.T) {
		t.Parallel()
		c := e.campaign(func(c *originationv1.PublicCampaign) { c.Challenge = originationv1.ChallengeMode_CHALLENGE_MODE_ALWAYS })
		r := e.send(t, "GET", "/v1/campaigns/"+c.Id+"/challenge?key="+c.PublicKey, "", shop)
		var ch struct {
			Challenge string `json:"challenge"`
			Bits      int    `json:"bits"`
			ExpiresAt string `json:"expiresAt"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &ch) != nil || ch.Challenge == "" || ch.Bits != 8 || ch.ExpiresAt == "" ||
			r.header.Get("Access-Control-Allow-Origin") != shop.origin {
			t.Fatalf("GET challenge: %d %s %v", r.status, r.body, r.header)
		}
		body := map[string]any{"number": "+15551230040", "key": c.PublicKey, "challenge": ch.Challenge, "nonce": solvePoW(ch.Challenge, ch.Bits)}
		if r := e.post(t, c.Id, body, shop); r.status != 200 {
			t.Fatalf("solved beforehand: %d %s", r.status, r.body)
		}
		e.send(t, "GET", "/v1/campaigns/"+c.Id+"/challenge?key=wrong", "", shop).wantError(t, 401, ReasonInvalidKey)
		e.send(t, "GET", "/v1/campaigns/"+c.Id+"/challenge?key="+c.PublicKey, "", visitor{origin: "https://evil.example"}).
			wantError(t, 403, ReasonOriginNotAllowed)
	})
}

// The proof of work refuses forged, expired and too easy challenges.
func TestBannerProofOfWork(t *testing.T) {
	t.Parallel()
	rdb := cachetest.New(t)
	now := time.Now()
	p := NewProofOfWork([]byte("secret"), 8, rdb)
	p.now = func() time.Time { return now }
	ch, err := p.Issue(t.Context(), "cmp-1")
	if err != nil || ch.Bits != 8 || !ch.ExpiresAt.Equal(now.Add(5*time.Minute).Truncate(time.Second)) {
		t.Fatalf("Issue: %+v %v", ch, err)
	}
	nonce := solvePoW(ch.Challenge, 8)
	forged := NewProofOfWork([]byte("other secret"), 8, rdb)
	forgedCh, _ := forged.Issue(t.Context(), "cmp-1")
	easy := NewProofOfWork([]byte("secret"), 4, rdb)
	easyCh, _ := easy.Issue(t.Context(), "cmp-1")
	tampered := []byte(ch.Challenge)
	tampered[3] ^= 1
	for _, tc := range []struct {
		name, challenge, nonce string
		at                     time.Time
	}{
		{"forged", forgedCh.Challenge, solvePoW(forgedCh.Challenge, 8), now},
		{"tampered", string(tampered), nonce, now},
		{"too easy", easyCh.Challenge, solvePoW(easyCh.Challenge, 8), now},
		{"expired", ch.Challenge, nonce, now.Add(5 * time.Minute)},
		{"no nonce", ch.Challenge, "", now},
		{"garbage", "!!", "1", now},
	} {
		p.now = func() time.Time { return tc.at }
		if err := p.Verify(t.Context(), "cmp-1", tc.challenge, tc.nonce); err == nil || !errors.Is(err, ErrChallengeFailed) {
			t.Errorf("%s: %v, want ErrChallengeFailed", tc.name, err)
		}
	}
	p.now = func() time.Time { return now }
	if err := p.Verify(t.Context(), "cmp-1", ch.Challenge, nonce); err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(t.Context(), "cmp-1", ch.Challenge, nonce); !errors.Is(err, ErrChallengeFailed) {
		t.Fatalf("reuse: %v", err)
	}
	down := NewProofOfWork([]byte("secret"), 8, downRedis(t))
	ch, _ = down.Issue(t.Context(), "cmp-1")
	if err := down.Verify(t.Context(), "cmp-1", ch.Challenge, solvePoW(ch.Challenge, 8)); err == nil || errors.Is(err, ErrChallengeFailed) {
		t.Fatalf("Redis down: %v, want an error that is not ErrChallengeFailed", err)
	}
}

// Numbers: national numbers with the campaign's country, "00" and "+"
// international ones as typed (test numbers and unknown countries too);
// the call carries the account, the source and the visitor's details.
func TestBannerStartBannerCall(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)
	c := e.campaign(func(c *originationv1.PublicCampaign) { c.DefaultCountry = "es" })
	for _, tc := range []struct{ typed, want string }{
		{"612 345 678", "+34612345678"},
		{"0034 612 345 679", "+34612345679"},
		{"+880 1712-345678", "+8801712345678"},
		{"+1 (555) 123-0486", "+15551230486"},
	} {
		r := e.post(t, c.Id, map[string]any{"number": tc.typed, "key": c.PublicKey, "name": "Ana Pérez", "consent": "I agree to be called"},
			visitor{origin: shop.origin, remote: testProxy, xff: "203.0.113.77"})
		if r.status != 200 {
			t.Fatalf("%s: %d %s", tc.typed, r.status, r.body)
		}
		starts := e.fake.startsFor(c.Id)
		s := starts[len(starts)-1]
		want := &originationv1.StartBannerCallRequest{CampaignId: c.Id, Number: tc.want, VisitorName: "Ana Pérez",
			Consent: "I agree to be called", ClientIp: "203.0.113.77", Origin: shop.origin}
		if !proto.Equal(s.req, want) {
			t.Errorf("%s: StartBannerCall %v, want %v", tc.typed, s.req, want)
		}
		if got := s.md.Get(AccountHeader); len(got) != 1 || got[0] != c.AccountId {
			t.Errorf("account metadata %v", got)
		}
		if got := s.md.Get(CallSourceHeader); len(got) != 1 || got[0] != "CALL_SOURCE_BANNER" {
			t.Errorf("source metadata %v", got)
		}
	}
}

// Origination's refusals keep their codes with the banner's statuses, and
// free the number.
func TestBannerOriginationRefusals(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)
	c := e.campaign()
	for i, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{withReason(codes.FailedPrecondition, "DESTINATION_NOT_SUPPORTED", "no rate"), 422, "DESTINATION_NOT_SUPPORTED"},
		{withReason(codes.FailedPrecondition, "BLOCKED_DESTINATION", "blocklist"), 422, ReasonBlockedDestination},
		{withReason(codes.FailedPrecondition, "INSUFFICIENT_BALANCE", "no money"), 422, "INSUFFICIENT_BALANCE"},
		{withReason(codes.FailedPrecondition, ReasonCampaignClosed, "closed until 09:00"), 409, ReasonCampaignClosed},
		{withReason(codes.FailedPrecondition, ReasonCampaignDisabled, "disabled"), 403, ReasonCampaignDisabled},
		{withReason(codes.NotFound, ReasonCampaignNotFound, "deleted"), 404, ReasonCampaignNotFound},
		{status.Error(codes.Unavailable, "dial tcp 10.0.0.1:50051: connection refused"), 503, ReasonUnavailable},
	} {
		number := fmt.Sprintf("+155512309%02d", i)
		e.fake.fail(number, tc.err)
		for range 2 { // the failed call released the number
			r := e.post(t, c.Id, map[string]any{"number": number, "key": c.PublicKey}, shop)
			r.wantError(t, tc.status, tc.code)
			if strings.Contains(string(r.body), "10.0.0.1") {
				t.Errorf("internal detail leaked: %s", r.body)
			}
		}
	}
	if n := len(e.fake.startsFor(c.Id)); n != 14 {
		t.Fatalf("%d StartBannerCall, want 14", n)
	}
}

func downRedis(t testing.TB) *cache.Client {
	c := cache.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1}), "test:")
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Without Redis the banner refuses (fail closed) but the challenge can
// still be fetched; the rest of the gateway is not affected.
func TestBannerRedisDown(t *testing.T) {
	t.Parallel()
	for name, opt := range map[string]func(*bannerEnvOptions){
		"unreachable": func(o *bannerEnvOptions) { o.rdb = downRedis(t) },
		"not set":     withoutRedis,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newBannerEnv(t, opt)
			c := e.campaign()
			e.post(t, c.Id, map[string]any{"number": "+15551230486", "key": c.PublicKey}, shop).wantError(t, 503, ReasonUnavailable)
			if n := e.fake.started.Load(); n != 0 {
				t.Fatalf("%d calls placed without Redis", n)
			}
			// Refusals that need no Redis keep their codes.
			e.post(t, c.Id, map[string]any{"number": "+15551230486", "key": "wrong"}, shop).wantError(t, 401, ReasonInvalidKey)
			if r := e.send(t, "GET", "/healthz", "", visitor{}); r.status != 200 {
				t.Fatalf("healthz %d", r.status)
			}
		})
	}
}

func TestBannerToken(t *testing.T) {
	t.Parallel()
	tok := newStatusTokens([]byte("secret"))
	now := time.Now()
	good := tok.issue("call-1", "cmp-1", now)
	if c, err := tok.verify("call-1", good, now.Add(23*time.Hour)); err != nil || c != "cmp-1" {
		t.Fatalf("verify: %q %v", c, err)
	}
	flip := func(i int) string {
		b := []byte(good)
		b[i] ^= 1
		return string(b)
	}
	p64, _, _ := strings.Cut(good, ".")
	forged := b64.EncodeToString([]byte("cmp-2."+strconv.FormatInt(now.Add(time.Hour).Unix(), 36))) + good[len(p64):]
	for name, tc := range map[string]struct {
		call, token string
		at          time.Time
	}{
		"payload bit":   {"call-1", flip(2), now},
		"mac bit":       {"call-1", flip(len(good) - 2), now},
		"other call":    {"call-2", good, now},
		"expired":       {"call-1", good, now.Add(24 * time.Hour)},
		"other secret":  {"call-1", newStatusTokens([]byte("other")).issue("call-1", "cmp-1", now), now},
		"other payload": {"call-1", forged, now},
		"empty":         {"call-1", "", now},
		"no dot":        {"call-1", "abc", now},
	} {
		if _, err := tok.verify(tc.call, tc.token, tc.at); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if len(good) > 100 {
		t.Errorf("token %d characters long: %s", len(good), good)
	}
}

// GET /v1/calls/{id}?token= is the visitor's public view; with an API key
// (or without a token) it is the REST API's.
func TestBannerPublicCall(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t)
	c := e.campaign()
	started := e.call(t, c, "+15551230486", shop)
	e.fake.update(started.Call.ID, func(call *originationv1.Call) {
		call.Status = originationv1.CallStatus_CALL_STATUS_RINGING
		call.First.Status = originationv1.LegStatus_LEG_STATUS_RINGING
	})
	path := "/v1/calls/" + started.Call.ID + "?token=" + url.QueryEscape(started.Token)
	r := e.send(t, "GET", path, "", shop)
	if r.status != 200 || r.str(t, "call.state") != StateCallingYou || r.str(t, "call.id") != started.Call.ID ||
		r.header.Get("Access-Control-Allow-Origin") != shop.origin {
		t.Fatalf("public view: %d %s", r.status, r.body)
	}
	allowed := []string{"id", "campaignId", "state", "status", "outcome", "failureReason", "attempt", "maxAttempts", "nextAttemptAt", "retryInS", "firstParty"}
	for k := range r.path(t, "call").(map[string]any) {
		if !slices.Contains(allowed, k) {
			t.Errorf("public view has %q", k)
		}
	}
	if strings.Contains(string(r.body), "5551230486") || strings.Contains(string(r.body), "operator-ext") {
		t.Errorf("public view shows a number: %s", r.body)
	}
	e.send(t, "GET", "/v1/calls/"+started.Call.ID+"?token=x"+started.Token, "", shop).wantError(t, 401, ReasonInvalidToken)
	other := e.call(t, c, "+15551230487", shop)
	e.send(t, "GET", "/v1/calls/"+started.Call.ID+"?token="+url.QueryEscape(other.Token), "", shop).wantError(t, 401, ReasonInvalidToken)
	e.send(t, "GET", path, "", visitor{origin: "https://evil.example"}).wantError(t, 403, ReasonOriginNotAllowed)
	// The REST API's GetCall, untouched.
	e.send(t, "GET", path, "", shop, "Authorization", "Bearer not-a-key").wantError(t, 401, ReasonUnauthenticated)
	r = e.send(t, "GET", "/v1/calls/"+started.Call.ID, "", shop)
	r.wantError(t, 401, ReasonUnauthenticated)
	if !strings.Contains(r.str(t, "error.message"), "API key") {
		t.Fatalf("without a token: %s", r.body)
	}
}

func TestBannerViewStates(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	legs := func(first, second originationv1.LegStatus) func(*originationv1.Call) {
		return func(c *originationv1.Call) {
			c.First = &originationv1.Leg{Status: first}
			c.Second = &originationv1.Leg{Status: second}
		}
	}
	const (
		pending  = originationv1.LegStatus_LEG_STATUS_PENDING
		dialing  = originationv1.LegStatus_LEG_STATUS_DIALING
		ringing  = originationv1.LegStatus_LEG_STATUS_RINGING
		answered = originationv1.LegStatus_LEG_STATUS_ANSWERED
		failed   = originationv1.LegStatus_LEG_STATUS_FAILED
	)
	companyFirst := func(c *originationv1.Call) { c.VisitorLeg = originationv1.LegRole_LEG_ROLE_SECOND }
	next := func(d time.Duration) func(*originationv1.Call) {
		return func(c *originationv1.Call) { c.NextAttemptAt = timestamppb.New(now.Add(d)) }
	}
	attempt := func(n int32) func(*originationv1.Call) { return func(c *originationv1.Call) { c.Attempt = n } }
	for _, tc := range []struct {
		name   string
		status originationv1.CallStatus
		change []func(*originationv1.Call)
		state  string
		retry  int64 // -1: none
	}{
		{"queued", originationv1.CallStatus_CALL_STATUS_QUEUED, nil, StateQueued, -1},
		{"scheduled", originationv1.CallStatus_CALL_STATUS_QUEUED, []func(*originationv1.Call){next(90*time.Minute + 500*time.Millisecond), attempt(1)}, StateScheduled, 5401},
		{"redialing", originationv1.CallStatus_CALL_STATUS_QUEUED, []func(*originationv1.Call){next(30 * time.Second), attempt(2)}, StateRedialing, 30},
		{"redial overdue", originationv1.CallStatus_CALL_STATUS_QUEUED, []func(*originationv1.Call){next(-time.Second), attempt(3)}, StateRedialing, 0},
		{"dialing the visitor", originationv1.CallStatus_CALL_STATUS_DIALING, []func(*originationv1.Call){legs(dialing, pending)}, StateCallingYou, -1},
		{"visitor ringing", originationv1.CallStatus_CALL_STATUS_RINGING, []func(*originationv1.Call){legs(ringing, pending)}, StateCallingYou, -1},
		{"visitor answered", originationv1.CallStatus_CALL_STATUS_ANSWERED, []func(*originationv1.Call){legs(answered, dialing)}, StateConnecting, -1},
		{"company first, ringing", originationv1.CallStatus_CALL_STATUS_RINGING, []func(*originationv1.Call){companyFirst, legs(ringing, pending)}, StateCallingCompany, -1},
		{"company first, answered", originationv1.CallStatus_CALL_STATUS_ANSWERED, []func(*originationv1.Call){companyFirst, legs(answered, pending)}, StateCallingCompany, -1},
		{"company first, visitor dialed", originationv1.CallStatus_CALL_STATUS_ANSWERED, []func(*originationv1.Call){companyFirst, legs(answered, dialing)}, StateCallingYou, -1},
		{"company first, visitor answered", originationv1.CallStatus_CALL_STATUS_ANSWERED, []func(*originationv1.Call){companyFirst, legs(answered, answered)}, StateConnecting, -1},
		{"dialing, no legs yet", originationv1.CallStatus_CALL_STATUS_DIALING, nil, StateQueued, -1},
		{"bridged", originationv1.CallStatus_CALL_STATUS_BRIDGED, []func(*originationv1.Call){legs(answered, answered)}, StateConnected, -1},
		// An attempt ending is not final yet: never back to "queued".
		{"visitor leg failed, call ending", originationv1.CallStatus_CALL_STATUS_RINGING, []func(*originationv1.Call){legs(failed, pending)}, StateCallingYou, -1},
		{"visitor hung up before the company", originationv1.CallStatus_CALL_STATUS_ANSWERED, []func(*originationv1.Call){legs(originationv1.LegStatus_LEG_STATUS_HUNGUP, ringing)}, StateConnecting, -1},
		{"visitor hung up after talking", originationv1.CallStatus_CALL_STATUS_ANSWERED, []func(*originationv1.Call){legs(originationv1.LegStatus_LEG_STATUS_HUNGUP, answered), func(c *originationv1.Call) { c.BridgedAt = timestamppb.New(now) }}, StateConnected, -1},
		{"company first, company failed, call ending", originationv1.CallStatus_CALL_STATUS_RINGING, []func(*originationv1.Call){companyFirst, legs(failed, pending)}, StateCallingCompany, -1},
		{"completed", originationv1.CallStatus_CALL_STATUS_COMPLETED, nil, StateEnded, -1},
		{"canceled", originationv1.CallStatus_CALL_STATUS_CANCELED, nil, StateCanceled, -1},
		{"visitor failed", originationv1.CallStatus_CALL_STATUS_FAILED, []func(*originationv1.Call){legs(failed, pending), func(c *originationv1.Call) {
			c.FailedLeg = originationv1.LegRole_LEG_ROLE_FIRST
			c.FailureReason = originationv1.FailureReason_FAILURE_REASON_BUSY
		}}, StateFailedVisitor, -1},
		{"company failed", originationv1.CallStatus_CALL_STATUS_FAILED, []func(*originationv1.Call){func(c *originationv1.Call) {
			c.FailedLeg = originationv1.LegRole_LEG_ROLE_SECOND
		}}, StateFailedCompany, -1},
		{"company first, company failed", originationv1.CallStatus_CALL_STATUS_FAILED, []func(*originationv1.Call){companyFirst, func(c *originationv1.Call) {
			c.FailedLeg = originationv1.LegRole_LEG_ROLE_FIRST
		}}, StateFailedCompany, -1},
		{"company first, visitor failed", originationv1.CallStatus_CALL_STATUS_FAILED, []func(*originationv1.Call){companyFirst, func(c *originationv1.Call) {
			c.FailedLeg = originationv1.LegRole_LEG_ROLE_SECOND
		}}, StateFailedVisitor, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &originationv1.Call{Id: "call-1", CampaignId: "cmp-1", Status: tc.status, Attempt: 1, MaxAttempts: 3}
			for _, f := range tc.change {
				f(c)
			}
			v := publicView(c, now)
			if v.State != tc.state || v.Status != tc.status.String() || v.ID != "call-1" || v.CampaignID != "cmp-1" {
				t.Fatalf("view %+v, want state %s", v, tc.state)
			}
			switch {
			case tc.retry < 0 && v.RetryInS != nil:
				t.Errorf("retryInS %d in state %s", *v.RetryInS, v.State)
			case tc.retry >= 0 && (v.RetryInS == nil || *v.RetryInS != tc.retry):
				t.Errorf("retryInS %v, want %d", v.RetryInS, tc.retry)
			}
			wantFirst := "visitor"
			if c.VisitorLeg == originationv1.LegRole_LEG_ROLE_SECOND {
				wantFirst = "company"
			}
			if v.FirstParty != wantFirst {
				t.Errorf("firstParty %q", v.FirstParty)
			}
		})
	}
	// JSON: unset optional fields are left out; times are RFC 3339.
	c := &originationv1.Call{Id: "call-2", CampaignId: "cmp-1", Status: originationv1.CallStatus_CALL_STATUS_FAILED,
		FailedLeg: originationv1.LegRole_LEG_ROLE_FIRST, FailureReason: originationv1.FailureReason_FAILURE_REASON_NO_ANSWER,
		Outcome: "FAILED CALLING TO USER", Attempt: 2, MaxAttempts: 2}
	b, _ := json.Marshal(publicView(c, now))
	want := `{"id":"call-2","campaignId":"cmp-1","state":"failed_visitor","status":"CALL_STATUS_FAILED","outcome":"FAILED CALLING TO USER",` +
		`"failureReason":"FAILURE_REASON_NO_ANSWER","attempt":2,"maxAttempts":2,"firstParty":"visitor"}`
	if string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
	c = &originationv1.Call{Id: "call-3", Status: originationv1.CallStatus_CALL_STATUS_QUEUED, Attempt: 2, MaxAttempts: 3,
		NextAttemptAt: timestamppb.New(now.Add(time.Minute))}
	b, _ = json.Marshal(publicView(c, now))
	if !strings.Contains(string(b), `"nextAttemptAt":"2026-06-01T10:01:00Z","retryInS":60`) || strings.Contains(string(b), "failureReason") {
		t.Errorf("JSON %s", b)
	}
}

// sseMsg is one Server-Sent Events message (or comment).
type sseMsg struct {
	event, id, data, comment string
}

// sseReader reads a stream's messages in the background.
func sseReader(body io.Reader) <-chan sseMsg {
	out := make(chan sseMsg, 64)
	go func() {
		defer close(out)
		br := bufio.NewReader(body)
		var m sseMsg
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if m != (sseMsg{}) {
					out <- m
				}
				m = sseMsg{}
			case strings.HasPrefix(line, ":"):
				m.comment = strings.TrimSpace(line[1:])
			default:
				k, v, _ := strings.Cut(line, ": ")
				switch k {
				case "event":
					m.event = v
				case "id":
					m.id = v
				case "data":
					m.data = v
				}
			}
		}
	}()
	return out
}

// openStream opens a call's status stream over real HTTP.
func openStream(t testing.TB, srv *httptest.Server, started callStarted, origin string) (*http.Response, <-chan sseMsg) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+started.EventsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("events: %d %s", res.StatusCode, b)
	}
	return res, sseReader(res.Body)
}

// nextStatus returns the next message that is not a comment.
func nextStatus(t testing.TB, msgs <-chan sseMsg) (sseMsg, PublicCall) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatal("stream ended")
			}
			if m.comment != "" && m.data == "" {
				continue
			}
			var body publicCallBody
			if m.event != "status" || json.Unmarshal([]byte(m.data), &body) != nil {
				t.Fatalf("message %+v", m)
			}
			return m, body.Call
		case <-timeout:
			t.Fatal("no message in 5 s")
		}
	}
}

// wantEnd checks the stream closes without another message.
func wantEnd(t testing.TB, msgs <-chan sseMsg) {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if ok {
			t.Fatalf("message after the final state: %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream not closed after the final state")
	}
}

// publisher publishes a call's events as origination does.
type publisher struct {
	t    testing.TB
	bus  *natsbus.Bus
	call *originationv1.Call
}

func (p *publisher) publish(seq uint32, typ eventsv1.EventType, change func(*originationv1.Call)) {
	p.t.Helper()
	if change != nil {
		change(p.call)
	}
	ev := &eventsv1.CallEvent{EventId: fmt.Sprintf("%s.%d", p.call.Id, seq), Sequence: seq, AccountId: p.call.AccountId,
		CallId: p.call.Id, Type: typ, Call: proto.Clone(p.call).(*originationv1.Call), OccurredAt: timestamppb.Now()}
	data, err := proto.Marshal(ev)
	if err != nil {
		p.t.Fatal(err)
	}
	subject := "calls." + p.call.AccountId + "." + p.call.Id + "." + strings.ToLower(strings.TrimPrefix(typ.String(), "EVENT_TYPE_"))
	// A stale republish has its own message id, or JetStream would drop it.
	if _, err := p.bus.Publish(p.t.Context(), subject, ev.EventId+"."+randomHex(4), data); err != nil {
		p.t.Fatal(err)
	}
}

// The status stream over NATS: the current state first, then each newer
// event in order (repeats and stale ones dropped), closed after the final
// state.
func TestBannerEventsNATS(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t, withNATS)
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	c := e.campaign()
	started := e.call(t, c, "+15551230486", shop)
	res, msgs := openStream(t, srv, started, shop.origin)
	h := res.Header
	if h.Get("Content-Type") != "text/event-stream" || h.Get("Cache-Control") != "no-store" || h.Get("X-Accel-Buffering") != "no" ||
		h.Get("Access-Control-Allow-Origin") != shop.origin {
		t.Fatalf("headers %v", h)
	}
	m, v := nextStatus(t, msgs)
	if m.id != "0" || v.State != StateQueued || v.ID != started.Call.ID {
		t.Fatalf("first message %+v", m)
	}
	call := e.fake.update(started.Call.ID, func(*originationv1.Call) {})
	p := &publisher{t: t, bus: e.bus, call: call}
	setLegs := func(status originationv1.CallStatus, first, second originationv1.LegStatus) func(*originationv1.Call) {
		return func(c *originationv1.Call) {
			c.Status, c.First.Status, c.Second.Status = status, first, second
		}
	}
	const (
		pending  = originationv1.LegStatus_LEG_STATUS_PENDING
		dialing  = originationv1.LegStatus_LEG_STATUS_DIALING
		ringing  = originationv1.LegStatus_LEG_STATUS_RINGING
		answered = originationv1.LegStatus_LEG_STATUS_ANSWERED
		hungup   = originationv1.LegStatus_LEG_STATUS_HUNGUP
	)
	p.publish(1, eventsv1.EventType_EVENT_TYPE_LEG_DIALING, setLegs(originationv1.CallStatus_CALL_STATUS_DIALING, dialing, pending))
	p.publish(2, eventsv1.EventType_EVENT_TYPE_LEG_RINGING, setLegs(originationv1.CallStatus_CALL_STATUS_RINGING, ringing, pending))
	p.publish(3, eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED, setLegs(originationv1.CallStatus_CALL_STATUS_ANSWERED, answered, pending))
	stale := proto.Clone(p.call).(*originationv1.Call)
	p.publish(2, eventsv1.EventType_EVENT_TYPE_LEG_RINGING, setLegs(originationv1.CallStatus_CALL_STATUS_RINGING, ringing, pending)) // a repeat
	p.call = stale
	p.publish(4, eventsv1.EventType_EVENT_TYPE_ANNOUNCEMENT_STARTED, nil) // no visible change
	p.publish(5, eventsv1.EventType_EVENT_TYPE_CALL_BRIDGED, setLegs(originationv1.CallStatus_CALL_STATUS_BRIDGED, answered, answered))
	p.publish(6, eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, func(c *originationv1.Call) {
		setLegs(originationv1.CallStatus_CALL_STATUS_COMPLETED, hungup, hungup)(c)
		c.Outcome = "COMPLETED"
	})
	for _, want := range []struct{ id, state, status string }{
		{"1", StateCallingYou, "CALL_STATUS_DIALING"},
		{"2", StateCallingYou, "CALL_STATUS_RINGING"},
		{"3", StateConnecting, "CALL_STATUS_ANSWERED"},
		{"5", StateConnected, "CALL_STATUS_BRIDGED"},
		{"6", StateEnded, "CALL_STATUS_COMPLETED"},
	} {
		m, v := nextStatus(t, msgs)
		if m.id != want.id || v.State != want.state || v.Status != want.status {
			t.Fatalf("message %s %+v, want id %s state %s status %s", m.id, v, want.id, want.state, want.status)
		}
	}
	wantEnd(t, msgs)

	// A call that has ended: its final state, and the end.
	done := e.call(t, c, "+15551230487", shop)
	e.fake.update(done.Call.ID, func(c *originationv1.Call) {
		c.Status, c.FailedLeg, c.FailureReason = originationv1.CallStatus_CALL_STATUS_FAILED, originationv1.LegRole_LEG_ROLE_FIRST, originationv1.FailureReason_FAILURE_REASON_BUSY
	})
	_, msgs = openStream(t, srv, done, "")
	if _, v := nextStatus(t, msgs); v.State != StateFailedVisitor || v.FailureReason != "FAILURE_REASON_BUSY" {
		t.Fatalf("final state %+v", v)
	}
	wantEnd(t, msgs)
}

// Without NATS the stream polls GetCall; keepalives flow; the streams of
// one address are bounded; a bad token is 401.
func TestBannerEventsPolling(t *testing.T) {
	t.Parallel()
	e := newBannerEnv(t, func(o *bannerEnvOptions) { o.cfg.BannerStreamsPerIP = 1 })
	e.api.pollEvery = 20 * time.Millisecond
	e.api.keepalive = 30 * time.Millisecond
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	c := e.campaign()
	started := e.call(t, c, "+15551230486", shop)
	_, msgs := openStream(t, srv, started, shop.origin)
	if m, v := nextStatus(t, msgs); m.id != "0" || v.State != StateQueued {
		t.Fatalf("first message %+v %+v", m, v)
	}
	// Keepalive comments while nothing changes.
	timeout := time.After(5 * time.Second)
	for got := false; !got; {
		select {
		case m := <-msgs:
			if m.comment == "keepalive" {
				got = true
			} else {
				t.Fatalf("message while nothing changed: %+v", m)
			}
		case <-timeout:
			t.Fatal("no keepalive")
		}
	}
	// Another stream from the same address is refused while this one is open.
	r := e.send(t, "GET", started.EventsURL, "", visitor{remote: "127.0.0.1:9"})
	r.wantError(t, 429, ReasonRateLimited)
	e.send(t, "GET", "/v1/calls/"+started.Call.ID+"/events?token=nope", "", shop).wantError(t, 401, ReasonInvalidToken)

	for _, step := range []struct {
		change func(*originationv1.Call)
		state  string
	}{
		{func(c *originationv1.Call) {
			c.Status, c.First.Status = originationv1.CallStatus_CALL_STATUS_RINGING, originationv1.LegStatus_LEG_STATUS_RINGING
		}, StateCallingYou},
		{func(c *originationv1.Call) {
			c.Status, c.First.Status = originationv1.CallStatus_CALL_STATUS_QUEUED, originationv1.LegStatus_LEG_STATUS_FAILED
			c.Attempt, c.NextAttemptAt = 2, timestamppb.New(time.Now().Add(time.Minute))
		}, StateRedialing},
		{func(c *originationv1.Call) {
			c.Status, c.First.Status, c.NextAttemptAt = originationv1.CallStatus_CALL_STATUS_CANCELED, originationv1.LegStatus_LEG_STATUS_FAILED, nil
			c.Outcome = "CANCELED"
		}, StateCanceled},
	} {
		e.fake.update(started.Call.ID, step.change)
		if _, v := nextStatus(t, msgs); v.State != step.state {
			t.Fatalf("state %+v, want %s", v, step.state)
		}
	}
	for m := range msgs { // only keepalives may remain before the end
		if m.data != "" {
			t.Fatalf("message after the final state: %+v", m)
		}
	}
}

// A stream ends at its age limit, and when the gateway starts shutting
// down, without a final state.
func TestBannerStreamEnds(t *testing.T) {
	t.Parallel()
	open := func(t *testing.T, maxAge time.Duration) (*bannerEnv, <-chan sseMsg) {
		e := newBannerEnv(t)
		e.api.maxStreamAge = maxAge // before the server's goroutines start
		srv := httptest.NewServer(e.h)
		t.Cleanup(srv.Close)
		started := e.call(t, e.campaign(), "+15551230486", shop)
		_, msgs := openStream(t, srv, started, "")
		nextStatus(t, msgs)
		return e, msgs
	}
	t.Run("age", func(t *testing.T) {
		t.Parallel()
		begin := time.Now()
		_, msgs := open(t, 300*time.Millisecond)
		wantEnd(t, msgs)
		if d := time.Since(begin); d > 4*time.Second {
			t.Fatalf("stream lived %v past its 300 ms", d)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		t.Parallel()
		e, msgs := open(t, time.Hour)
		e.h.(*handler).drainStreams()
		wantEnd(t, msgs)
	})
}

// The widget script and the demo page.
func TestBannerStatic(t *testing.T) {
	t.Parallel()
	var demoID atomic.Value
	demoID.Store("")
	e := newBannerEnv(t, func(o *bannerEnvOptions) { o.demo = func() string { return demoID.Load().(string) } })
	e.api.web = &webAssets{files: fstest.MapFS{
		"widget.js": {Data: []byte("/* widget */")},
		"demo.html": {Data: []byte(`<html lang="{{.Lang}}"><script src="/widget.js" data-campaign="{{.CampaignID}}" data-key="{{.PublicKey}}"></script></html>`)},
	}}
	r := e.send(t, "GET", "/widget.js", "", visitor{origin: "https://anyone.example"})
	if r.status != 200 || string(r.body) != "/* widget */" || r.header.Get("Content-Type") != "application/javascript; charset=utf-8" ||
		r.header.Get("Cache-Control") != "public, max-age=300" || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("widget.js: %d %v %s", r.status, r.header, r.body)
	}
	r = e.send(t, "GET", "/demo/banner", "", visitor{})
	r.wantError(t, 404, ReasonNotFound)
	if !strings.Contains(r.str(t, "error.message"), "RINGBACK_DEMO_CAMPAIGN") {
		t.Fatalf("no demo campaign: %s", r.body)
	}
	c := e.campaign()
	demoID.Store(c.Id)
	for lang, want := range map[string]string{"": "en", "es": "es", "fr": "en", "es&x=1": "es"} {
		r = e.send(t, "GET", "/demo/banner?lang="+lang, "", visitor{})
		wantBody := fmt.Sprintf(`<html lang="%s"><script src="/widget.js" data-campaign="%s" data-key="%s"></script></html>`, want, c.Id, c.PublicKey)
		if r.status != 200 || string(r.body) != wantBody || r.header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("demo ?lang=%s: %d %s", lang, r.status, r.body)
		}
		csp := r.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self';") || !strings.Contains(csp, "connect-src 'self';") {
			t.Fatalf("CSP %q", csp)
		}
	}
	demoID.Store("cmp-deleted")
	e.send(t, "GET", "/demo/banner", "", visitor{}).wantError(t, 404, ReasonCampaignNotFound)

	// The files built in: the real widget, and a demo page that renders.
	e.api.web = embeddedWeb()
	demoID.Store(c.Id)
	if r := e.send(t, "GET", "/widget.js", "", visitor{}); r.status != 200 || len(r.body) < 100 {
		t.Fatalf("built-in widget.js: %d, %d bytes", r.status, len(r.body))
	}
	if r := e.send(t, "GET", "/demo/banner?lang=es", "", visitor{}); r.status != 200 || !strings.Contains(string(r.body), c.PublicKey) {
		t.Fatalf("built-in demo: %d %s", r.status, r.body)
	}
}

func TestLoadBanner(t *testing.T) {
	t.Parallel()
	c, err := Load(config.MapLookup(map[string]string{}))
	if err != nil || c.BannerPowBits != DefaultBannerPowBits || c.BannerStreamsPerIP != DefaultBannerStreamsPerIP ||
		c.BannerStreamMaxAge != DefaultBannerStreamMaxAge || c.BannerSecret != "" || c.DemoCampaign != "" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = Load(config.MapLookup(map[string]string{"RINGBACK_BANNER_SECRET": strings.Repeat("s", 32), "RINGBACK_BANNER_POW_BITS": "20",
		"RINGBACK_BANNER_STREAMS_PER_IP": "5", "RINGBACK_BANNER_STREAM_MAX_AGE": "30m", "RINGBACK_DEMO_CAMPAIGN": "0190b5e2-aaaa-7bbb-8ccc-000000000001"}))
	if err != nil || c.BannerSecret.Reveal() != strings.Repeat("s", 32) || c.BannerPowBits != 20 || c.BannerStreamsPerIP != 5 ||
		c.BannerStreamMaxAge != 30*time.Minute || c.DemoCampaign != "0190b5e2-aaaa-7bbb-8ccc-000000000001" {
		t.Fatalf("set: %+v %v", c, err)
	}
	if fmt.Sprintf("%v", c) == "" || strings.Contains(fmt.Sprintf("%v %+v", c, c), strings.Repeat("s", 32)) {
		t.Fatal("the banner secret is printed")
	}
	for name, v := range map[string]string{
		"RINGBACK_BANNER_SECRET":   "short",
		"RINGBACK_BANNER_POW_BITS": "40",
		"RINGBACK_DEMO_CAMPAIGN":   "a.b",
	} {
		if _, err := Load(config.MapLookup(map[string]string{name: v})); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v", name, v, err)
		}
	}
}
