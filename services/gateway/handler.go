package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"
	"sync/atomic"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	accountsv1 "github.com/ringback/ringback/proto/gen/go/ringback/accounts/v1"
	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
	"github.com/ringback/ringback/proto/gen/openapi"
	"github.com/ringback/ringback/services/internal/cache"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/origination"
	"github.com/ringback/ringback/services/rating"
)

// Metadata keys the gateway sets on every call to a service. Client
// headers never reach these (see incomingHeader).
const (
	// AccountHeader carries the authenticated account's id.
	AccountHeader = origination.AccountHeader
	// CallSourceHeader carries the CallSource name of the call a request
	// creates: CALL_SOURCE_API for REST, CALL_SOURCE_CLICK_TO_DIAL_LEGACY for
	// clickToDial.
	CallSourceHeader = origination.SourceHeader
	// RoleHeader is "operator" on requests made with the operator token.
	RoleHeader = rating.RoleHeader
)

// Paths of the carrier-compatible clickToDial endpoint: the carrier's two
// (the second with its spelling, "Extenal"), and the correctly spelt one.
var LegacyClickToDialPaths = []string{"/clickToDial.php", "/Welcome/ClickToDialExtenal", "/Welcome/ClickToDialExternal"}

// marshaler is the REST JSON: protojson with lowerCamelCase names (as the
// OpenAPI document says), enums by name (CALL_STATUS_COMPLETED), and
// EmitUnpopulated false: fields at their zero value are left out (a live
// call has no endedAt and no failureReason rather than null and
// FAILURE_REASON_UNSPECIFIED; clients read a missing field as its zero).
// Requests may use the proto names too (max_duration_s); unknown fields are
// refused with INVALID_ARGUMENT, so a typo ("frist") is not silently a
// call without a first party.
var marshaler = &runtime.JSONPb{
	MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: false, UseProtoNames: false},
	UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
}

type handler struct {
	cfg       Config
	log       *slog.Logger
	store     *AccountStore
	calls     originationv1.CallServiceClient
	endpoints originationv1.EndpointServiceClient
	tariffs   ratingv1.TariffServiceClient
	cdrs      cdrv1.CdrServiceClient
	dialer    dialerv1.DialerServiceClient
	limiter   Limiter
	operator  []byte // operator token; empty: none
	mux       *http.ServeMux
	banner    *bannerAPI
}

// Backends are the services the gateway forwards to.
type Backends struct {
	Origination, Rating, CDR, Webhook grpc.ClientConnInterface
	// Dialer serves /v1/dialer/... (DialerService and AgentService); nil:
	// those routes are not served.
	Dialer grpc.ClientConnInterface
	// Limiter bounds getCdrs requests per account; nil: unbounded.
	Limiter Limiter
	// Redis holds the public banner's limits, duplicate keys and used
	// challenges; nil: the banner refuses calls (503).
	Redis *cache.Client
	// Events delivers call events to the visitors' status streams (the
	// NATS connection); nil: the streams poll origination.
	Events EventSubscriber
	// DemoCampaign, if set, names the campaign of /demo/banner (else
	// Config.DemoCampaign).
	DemoCampaign func() string
	// Metrics registers the gateway's own metrics; nil: not exported.
	Metrics prometheus.Registerer
}

// NewHandler returns the gateway's public HTTP handler: the REST API of
// gateway.yaml (CallService and EndpointService forwarded to origination,
// rating's and cdr's services to them, AccountService served by accounts
// in-process), the carrier-compatible clickToDial and getCdrs, the CSV
// routes, the public click-to-call banner routes (banner.go),
// /v1/openapi.json and /healthz. accounts authenticates API keys;
// cfg gives the operator token, trusted proxies and request timeout.
func NewHandler(cfg Config, log *slog.Logger, accounts *AccountStore, accountServer accountsv1.AccountServiceServer, b Backends) (http.Handler, error) {
	if log == nil || accounts == nil || accountServer == nil || b.Origination == nil || b.Rating == nil || b.CDR == nil || b.Webhook == nil {
		return nil, errors.New("gateway: logger, account store, account server, origination, rating, cdr and webhook connections are required")
	}
	origination, rating := b.Origination, b.Rating
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxImportBytes <= 0 {
		cfg.MaxImportBytes = DefaultMaxImportBytes
	}
	if cfg.ImportTimeout <= 0 {
		cfg.ImportTimeout = DefaultImportTimeout
	}
	h := &handler{
		cfg:       cfg,
		log:       log,
		store:     accounts,
		calls:     originationv1.NewCallServiceClient(origination),
		endpoints: originationv1.NewEndpointServiceClient(origination),
		tariffs:   ratingv1.NewTariffServiceClient(rating),
		cdrs:      cdrv1.NewCdrServiceClient(b.CDR),
		limiter:   b.Limiter,
		operator:  []byte(cfg.OperatorToken.Reveal()),
	}
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithMetadata(h.metadata),
		runtime.WithErrorHandler(h.serviceError),
		runtime.WithRoutingErrorHandler(h.routingError),
		runtime.WithMiddlewares(h.authenticate),
		runtime.WithForwardResponseOption(func(_ context.Context, w http.ResponseWriter, _ proto.Message) error {
			w.Header().Set("Cache-Control", "no-store")
			return nil
		}),
		// X-HTTP-Method-Override would let a form POST become another method.
		runtime.WithDisableHTTPMethodOverride(),
	)
	ctx := context.Background() // only used by the generated code to register
	if err := originationv1.RegisterCallServiceHandlerClient(ctx, gw, h.calls); err != nil {
		return nil, fmt.Errorf("gateway: register CallService: %w", err)
	}
	if err := originationv1.RegisterEndpointServiceHandlerClient(ctx, gw, h.endpoints); err != nil {
		return nil, fmt.Errorf("gateway: register EndpointService: %w", err)
	}
	if err := originationv1.RegisterCampaignServiceHandlerClient(ctx, gw, originationv1.NewCampaignServiceClient(origination)); err != nil {
		return nil, fmt.Errorf("gateway: register CampaignService: %w", err)
	}
	if err := accountsv1.RegisterAccountServiceHandlerServer(ctx, gw, accountServer); err != nil {
		return nil, fmt.Errorf("gateway: register AccountService: %w", err)
	}
	if err := ratingv1.RegisterTariffServiceHandlerClient(ctx, gw, h.tariffs); err != nil {
		return nil, fmt.Errorf("gateway: register TariffService: %w", err)
	}
	if err := ratingv1.RegisterBillingServiceHandlerClient(ctx, gw, ratingv1.NewBillingServiceClient(rating)); err != nil {
		return nil, fmt.Errorf("gateway: register BillingService: %w", err)
	}
	if err := ratingv1.RegisterBlocklistServiceHandlerClient(ctx, gw, ratingv1.NewBlocklistServiceClient(rating)); err != nil {
		return nil, fmt.Errorf("gateway: register BlocklistService: %w", err)
	}
	if err := ratingv1.RegisterRatingServiceHandlerClient(ctx, gw, ratingv1.NewRatingServiceClient(rating)); err != nil {
		return nil, fmt.Errorf("gateway: register RatingService: %w", err)
	}
	if err := cdrv1.RegisterCdrServiceHandlerClient(ctx, gw, h.cdrs); err != nil {
		return nil, fmt.Errorf("gateway: register CdrService: %w", err)
	}
	if err := cdrv1.RegisterCommentServiceHandlerClient(ctx, gw, cdrv1.NewCommentServiceClient(b.CDR)); err != nil {
		return nil, fmt.Errorf("gateway: register CommentService: %w", err)
	}
	if err := cdrv1.RegisterStatisticsServiceHandlerClient(ctx, gw, cdrv1.NewStatisticsServiceClient(b.CDR)); err != nil {
		return nil, fmt.Errorf("gateway: register StatisticsService: %w", err)
	}
	if err := webhookv1.RegisterWebhookServiceHandlerClient(ctx, gw, webhookv1.NewWebhookServiceClient(b.Webhook)); err != nil {
		return nil, fmt.Errorf("gateway: register WebhookService: %w", err)
	}
	if err := webhookv1.RegisterNotificationServiceHandlerClient(ctx, gw, webhookv1.NewNotificationServiceClient(b.Webhook)); err != nil {
		return nil, fmt.Errorf("gateway: register NotificationService: %w", err)
	}

	h.banner = newBannerAPI(cfg, log, b, gw)

	if b.Dialer != nil {
		h.dialer = dialerv1.NewDialerServiceClient(b.Dialer)
		if err := dialerv1.RegisterDialerServiceHandlerClient(ctx, gw, h.dialer); err != nil {
			return nil, fmt.Errorf("gateway: register DialerService: %w", err)
		}
		if err := dialerv1.RegisterAgentServiceHandlerClient(ctx, gw, dialerv1.NewAgentServiceClient(b.Dialer)); err != nil {
			return nil, fmt.Errorf("gateway: register AgentService: %w", err)
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Access-Control-Allow-Origin", "*") // API explorers on other origins
		_, _ = w.Write(openapi.JSON)
	})
	legacy := http.HandlerFunc(h.clickToDial)
	for _, p := range LegacyClickToDialPaths {
		mux.Handle(p, legacy)
	}
	mux.HandleFunc(LegacyGetCdrsPath, h.getCdrs)
	mux.HandleFunc("GET "+cdrExportPath, h.exportCdrs)
	mux.HandleFunc("POST "+ratesImportPath, h.importRates)
	mux.HandleFunc("GET "+ratesExportPath, h.exportRates)
	if h.dialer != nil {
		mux.HandleFunc("POST "+dialerListsPath, h.importList)
		mux.HandleFunc("GET "+dialerRecordsExportPath, h.exportDialerRecords)
		mux.HandleFunc("GET "+dialerReportExportPath, h.exportDialerReport)
	}
	h.banner.register(mux) // public: no API key
	mux.Handle("/", gw)
	h.mux = mux
	return h, nil
}

// drainStreams ends the visitors' status streams (first shutdown stage).
func (h *handler) drainStreams() { h.banner.closeStreams() }

type bodyLimitKey struct{}

// bodyLimit records that a request body went over MaxBodyBytes, so the
// error handlers can answer 413 instead of the decoder's 400.
type bodyLimit struct{ exceeded atomic.Bool }

type limitedBody struct {
	io.ReadCloser
	lim *bodyLimit
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		b.lim.exceeded.Store(true)
	}
	return n, err
}

func bodyTooLarge(r *http.Request) bool {
	lim, _ := r.Context().Value(bodyLimitKey{}).(*bodyLimit)
	return lim != nil && lim.exceeded.Load()
}

var msgTooLarge = fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)

func tooLargeDetail() ErrorDetail {
	return ErrorDetail{Code: ReasonRequestTooLarge, Message: msgTooLarge, HTTPStatus: http.StatusRequestEntityTooLarge}
}

// ServeHTTP bounds the body and the time of every request, then routes it.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	limit, timeout := int64(MaxBodyBytes), h.cfg.RequestTimeout
	if isImport(r) || isListImport(r) {
		// A carrier's rate deck is tens of megabytes and takes seconds.
		limit, timeout = h.cfg.MaxImportBytes, h.cfg.ImportTimeout
	}
	if isDialerExport(r) {
		// A campaign's report may have a million rows (over 100 MiB of
		// CSV): its download has the import's time, not a request's.
		timeout = h.cfg.ImportTimeout
	}
	if isStatusStream(r) {
		// A visitor's status stream lives as long as the call.
		timeout = h.banner.maxStreamAge
	}
	if r.ContentLength > limit {
		if isLegacyPath(r.URL.Path) || r.URL.Path == LegacyGetCdrsPath {
			writeLegacyError(w, http.StatusRequestEntityTooLarge, ReasonRequestTooLarge, msgTooLarge)
		} else {
			writeError(w, tooLargeDetail())
		}
		return
	}
	lim := &bodyLimit{}
	ctx := context.WithValue(r.Context(), bodyLimitKey{}, lim)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r = r.WithContext(ctx)
	if r.Body != nil {
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit), lim: lim}
	}
	h.mux.ServeHTTP(w, r)
}

// incomingHeader decides which client headers become gRPC metadata. Only
// harmless ones do: in particular Grpc-Metadata-* (grpc-gateway's default
// way to set arbitrary metadata) is dropped, so a client cannot send
// ringback-account-id or ringback-call-source itself. (grpc-gateway always
// forwards Authorization; the auth middleware removes it first, so API
// keys never reach the services.)
func incomingHeader(key string) (string, bool) {
	switch textproto.CanonicalMIMEHeaderKey(key) {
	case "User-Agent":
		return "grpcgateway-user-agent", true
	case "X-Request-Id":
		return "x-request-id", true
	}
	return "", false
}

// metadata is what the gateway tells the services about a REST request.
func (h *handler) metadata(ctx context.Context, _ *http.Request) metadata.MD {
	md := metadata.MD{}
	if p := PrincipalFromContext(ctx); p != nil && p.AccountID != "" {
		md.Set(AccountHeader, p.AccountID)
	} else if p != nil && p.Operator {
		md.Set(RoleHeader, "operator")
	}
	md.Set(CallSourceHeader, originationv1.CallSource_CALL_SOURCE_API.String())
	return md
}

// bearer returns the token of "Authorization: Bearer <token>".
func bearer(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// principal authenticates a Bearer token: the operator's, or an API key.
func (h *handler) principal(ctx context.Context, token string) (*Principal, error) {
	return authenticateToken(ctx, h.operator, h.store, token)
}

func authenticateToken(ctx context.Context, operator []byte, store *AccountStore, token string) (*Principal, error) {
	if len(operator) > 0 && subtle.ConstantTimeCompare([]byte(token), operator) == 1 {
		return &Principal{Operator: true}, nil
	}
	return store.Authenticate(ctx, token)
}

// authError turns an authentication failure into its JSON error.
func (h *handler) authError(r *http.Request, err error) ErrorDetail {
	if e, ok := asError(err); ok {
		d, _ := errorDetail(e)
		if e.Code == codes.Unauthenticated {
			d.Message = "invalid API key"
		}
		return d
	}
	h.log.Error("authenticate", "path", r.URL.Path, logging.Err(err))
	return ErrorDetail{Code: ReasonUnavailable, Message: "cannot check the API key right now, try again later",
		HTTPStatus: http.StatusServiceUnavailable}
}

// admit checks what applies to a principal on every route: not suspended,
// and calling from an allowed address.
func (h *handler) admit(r *http.Request, p *Principal) (ErrorDetail, bool) {
	if p.Suspended {
		return ErrorDetail{Code: ReasonAccountSuspended, Message: "the account is suspended", HTTPStatus: http.StatusForbidden}, false
	}
	if ip := clientIP(r, h.cfg.TrustedProxies); !p.Allows(ip) {
		return ErrorDetail{Code: ReasonIPNotAllowed, HTTPStatus: http.StatusForbidden,
			Message: fmt.Sprintf("requests from %s are not allowed for this account", addrText(ip))}, false
	}
	return ErrorDetail{}, true
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return "an unknown address"
	}
	return a.String()
}

// authenticated authenticates a request's Bearer token and admits its
// principal, or answers the error and returns false.
func (h *handler) authenticated(w http.ResponseWriter, r *http.Request) (*Principal, bool) {
	token, ok := bearer(r)
	if !ok {
		writeError(w, ErrorDetail{Code: ReasonUnauthenticated, HTTPStatus: http.StatusUnauthorized,
			Message: "missing API key: send Authorization: Bearer <key>"})
		return nil, false
	}
	p, err := h.principal(r.Context(), token)
	if err != nil {
		writeError(w, h.authError(r, err))
		return nil, false
	}
	if d, ok := h.admit(r, p); !ok {
		writeError(w, d)
		return nil, false
	}
	return p, true
}

// authenticate is the REST routes' middleware (it runs only for routes that
// exist, so an unknown path is 404 with or without a key).
func (h *handler) authenticate(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		p, ok := h.authenticated(w, r)
		if !ok {
			return
		}
		if p.Operator && !operatorPath(r.URL.Path) {
			writeError(w, ErrorDetail{Code: ReasonPermissionDenied, HTTPStatus: http.StatusForbidden,
				Message: "the operator token manages accounts, tariffs and the blocklist; use an account's API key for calls and endpoints"})
			return
		}
		if acct, ok := billingAccount(r.URL.Path); ok && p.Operator {
			// Rating keeps billing by account id without knowing accounts:
			// a mistyped id must be 404, not a balance for nobody.
			if _, err := h.store.GetAccount(r.Context(), acct); err != nil {
				d, internal := errorDetail(err)
				if internal {
					h.log.Error("check account", "path", r.URL.Path, logging.Err(err))
				}
				writeError(w, d)
				return
			}
		}
		r2 := r.WithContext(NewContext(r.Context(), p))
		r2.Header = r.Header.Clone()
		r2.Header.Del("Authorization")
		if !inPrefixes(remoteAddr(r), h.cfg.TrustedProxies) {
			r2.Header.Del("X-Forwarded-For") // the client's own claim
		}
		next(w, r2, params)
	}
}

// billingAccount returns the account of a /v1/accounts/{id}/billing... path.
func billingAccount(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/v1/accounts/")
	if !ok {
		return "", false
	}
	id, tail, _ := strings.Cut(rest, "/")
	if id == "" || (tail != "billing" && !strings.HasPrefix(tail, "billing/") && !strings.HasPrefix(tail, "billing:")) {
		return "", false
	}
	return id, true
}

// operatorPaths are the REST resources the operator token may use.
var operatorPaths = []string{"/v1/accounts", "/v1/tariffs", "/v1/blocked-prefixes", "/v1/directions/"}

func operatorPath(path string) bool {
	for _, p := range operatorPaths {
		if path == p || strings.HasPrefix(path, p+"/") || strings.HasPrefix(path, p+":") || (strings.HasSuffix(p, "/") && strings.HasPrefix(path, p)) {
			return true
		}
	}
	return false
}

// serviceError answers a failed REST request.
func (h *handler) serviceError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if bodyTooLarge(r) {
		writeError(w, tooLargeDetail())
		return
	}
	var hs *runtime.HTTPStatusError
	if errors.As(err, &hs) {
		writeError(w, ErrorDetail{Code: ReasonInvalidArgument, Message: hs.Error(), HTTPStatus: hs.HTTPStatus})
		return
	}
	d, internal := errorDetail(err)
	if internal {
		h.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", d.Code, logging.Err(err))
	}
	writeError(w, d)
}

func (h *handler) routingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, status int) {
	d := ErrorDetail{HTTPStatus: status}
	switch status {
	case http.StatusNotFound:
		d.Code, d.Message = ReasonNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)
	case http.StatusMethodNotAllowed:
		d.Code, d.Message = ReasonMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)
	default:
		d.Code, d.Message = ReasonInvalidArgument, http.StatusText(status)
	}
	writeError(w, d)
}
