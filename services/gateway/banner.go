package gateway

// The public click-to-call banner API (issue 7): what a company's web page
// calls, with no API key, through the banner widget (GET /widget.js).
//
//	POST /v1/campaigns/{campaign}/click2call
//	     {"number","key"[,"name","consent","challenge","nonce"]}
//	     -> 200 {"call":<PublicCall>,"token","eventsUrl","joined"}
//	GET  /v1/campaigns/{campaign}/challenge?key=   -> 200 <Challenge>
//	GET  /v1/calls/{id}?token=                      -> 200 {"call":<PublicCall>}
//	GET  /v1/calls/{id}/events?token=               -> text/event-stream
//	GET  /widget.js, GET /demo/banner[?lang=es]
//
// A POST is admitted in this order, each refusal a JSON error
// {"error":{"code","message","http_status"}} with a stable code; nothing
// before the call is placed touches PostgreSQL or origination but the
// cached campaign lookup (and GetCall when joining a duplicate):
//
//	body       400 INVALID_ARGUMENT (not the JSON object, unknown field), 413 REQUEST_TOO_LARGE (> 4 KiB)
//	campaign   404 CAMPAIGN_NOT_FOUND, 503 UNAVAILABLE
//	key        401 INVALID_KEY, then 403 CAMPAIGN_DISABLED
//	origin     403 ORIGIN_NOT_ALLOWED
//	address    429 RATE_LIMITED + Retry-After (per IP, IPv6 per /64)
//	number     400 INVALID_NUMBER, 400 INVALID_ARGUMENT (name, consent)
//	prefixes   422 BLOCKED_DESTINATION (campaign prefixes, premium-rate, shared-cost)
//	challenge  428 CHALLENGE_REQUIRED, with "challenge":{...} in the error
//	duplicate  joins the call of the same number (200, "joined":true), or 409 DUPLICATE_IN_PROGRESS
//	limits     429 RATE_LIMITED + Retry-After (per number, per campaign)
//	call       origination's refusals: 422 DESTINATION_NOT_SUPPORTED,
//	           BLOCKED_DESTINATION, INSUFFICIENT_BALANCE; 409 CAMPAIGN_CLOSED
//	           (FAILED_PRECONDITION, like every "not now, retry later
//	           unchanged" of the API: the request is fine, the campaign is
//	           closed until it opens); 403 CAMPAIGN_DISABLED; 404 CAMPAIGN_NOT_FOUND
//
// Redis holds every limit: when it cannot be reached the answer is 503
// UNAVAILABLE (fail closed: an unprotected public endpoint that places
// paid calls is worse than a refused visitor).

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/cache"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/phone"
)

// Codes of the banner API's errors.
const (
	ReasonCampaignNotFound    = "CAMPAIGN_NOT_FOUND"
	ReasonInvalidKey          = "INVALID_KEY"
	ReasonCampaignDisabled    = "CAMPAIGN_DISABLED"
	ReasonCampaignClosed      = "CAMPAIGN_CLOSED"
	ReasonOriginNotAllowed    = "ORIGIN_NOT_ALLOWED"
	ReasonBlockedDestination  = "BLOCKED_DESTINATION"
	ReasonChallengeRequired   = "CHALLENGE_REQUIRED"
	ReasonDuplicateInProgress = "DUPLICATE_IN_PROGRESS"
	ReasonInvalidToken        = "INVALID_TOKEN"
)

const (
	bannerMaxBody    = 4 << 10
	bannerMaxName    = 100
	bannerMaxConsent = 1000
	bannerMaxNumber  = 40 // characters as typed
	// A request for a number whose twin is still being placed waits this
	// long for the twin's call id, looking every bannerDupPoll.
	bannerDupWait = 2 * time.Second
	bannerDupPoll = 50 * time.Millisecond
	// bannerDupPending bounds how long a request's pending claim lives: a
	// gateway that dies while placing the call must not block the number
	// for the whole window.
	bannerDupPending = 15 * time.Second
	// dupPending starts the duplicate key's value while its call is placed.
	dupPending = "pending:"
	// bannerCallTimeout bounds each GetCall of the public views.
	bannerCallTimeout = 10 * time.Second
)

// validID accepts the campaign and call ids the public routes take: they
// become Redis keys and NATS subject tokens, so nothing but letters,
// digits, '-' and '_'.
var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`).MatchString

// EventSubscriber is the core NATS subscription the status streams use
// (*natsbus.Bus): fn gets the data of each message on subject until
// unsubscribe; Flush returns once the server has the subscription.
type EventSubscriber interface {
	Subscribe(subject string, fn func(data []byte)) (unsubscribe func(), err error)
	Flush() error
}

// bannerAPI serves the public banner routes.
type bannerAPI struct {
	log        *slog.Logger
	trusted    []netip.Prefix
	campaigns  *campaignCache
	banner     originationv1.BannerServiceClient
	calls      originationv1.CallServiceClient
	rdb        *cache.Client // nil: the POST answers 503
	challenger Challenger
	tokens     statusTokens
	events     EventSubscriber // nil: status streams poll GetCall
	rest       http.Handler    // grpc-gateway, for GET /v1/calls/{id} with an API key
	metrics    *bannerMetrics
	now        func() time.Time

	// Status streams.
	streams      streamCounter
	maxStreamAge time.Duration
	pollEvery    time.Duration // without NATS
	resyncEvery  time.Duration // with NATS: a missed message is caught up after at most this long
	keepalive    time.Duration
	closing      chan struct{}
	closeOnce    sync.Once

	// The widget and the demo page.
	web          *webAssets
	demoCampaign func() string
	demoDefault  string

	lastFailureLog atomic.Int64 // unix nanoseconds; throttles failure logs
}

func newBannerAPI(cfg Config, log *slog.Logger, b Backends, rest http.Handler) *bannerAPI {
	secret := []byte(cfg.BannerSecret.Reveal())
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
		log.Warn("RINGBACK_BANNER_SECRET is not set: banner status tokens and challenges are signed with a random secret " +
			"of this process; several gateway replicas need a shared one (and tokens then survive restarts)")
	}
	bits := cfg.BannerPowBits
	if bits <= 0 {
		bits = DefaultBannerPowBits
	}
	perIP := cfg.BannerStreamsPerIP
	if perIP <= 0 {
		perIP = DefaultBannerStreamsPerIP
	}
	maxAge := cfg.BannerStreamMaxAge
	if maxAge <= 0 {
		maxAge = DefaultBannerStreamMaxAge
	}
	api := &bannerAPI{
		log:          log,
		trusted:      cfg.TrustedProxies,
		campaigns:    newCampaignCache(originationv1.NewBannerServiceClient(b.Origination)),
		banner:       originationv1.NewBannerServiceClient(b.Origination),
		calls:        originationv1.NewCallServiceClient(b.Origination),
		rdb:          b.Redis,
		challenger:   NewProofOfWork(secret, bits, b.Redis),
		tokens:       newStatusTokens(secret),
		events:       b.Events,
		rest:         rest,
		metrics:      newBannerMetrics(b.Metrics),
		now:          time.Now,
		streams:      streamCounter{max: perIP, open: map[string]int{}},
		maxStreamAge: maxAge,
		pollEvery:    500 * time.Millisecond,
		resyncEvery:  30 * time.Second,
		keepalive:    15 * time.Second,
		closing:      make(chan struct{}),
		web:          embeddedWeb(),
		demoCampaign: b.DemoCampaign,
		demoDefault:  cfg.DemoCampaign,
	}
	return api
}

// register adds the banner routes to mux (more specific than the
// grpc-gateway catch-all, so they win).
func (b *bannerAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/campaigns/{campaign}/click2call", b.click2call)
	mux.HandleFunc("OPTIONS /v1/campaigns/{campaign}/click2call", b.preflight("POST, OPTIONS"))
	mux.HandleFunc("GET /v1/campaigns/{campaign}/challenge", b.challenge)
	mux.HandleFunc("OPTIONS /v1/campaigns/{campaign}/challenge", b.preflight("GET, OPTIONS"))
	mux.HandleFunc("GET /v1/calls/{id}/events", b.statusEvents)
	mux.HandleFunc("GET /v1/calls/{id}", b.getCall)
	mux.HandleFunc("GET /widget.js", b.widget)
	mux.HandleFunc("GET /demo/banner", b.demo)
}

// isStatusStream reports whether r opens a status stream, which outlives
// the request timeout (it bounds itself with maxStreamAge).
func isStatusStream(r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/calls/")
	if !ok || r.Method != http.MethodGet {
		return false
	}
	id, tail, _ := strings.Cut(rest, "/")
	return id != "" && tail == "events"
}

// closeStreams ends every status stream (the first shutdown stage: the
// widgets reconnect to another replica).
func (b *bannerAPI) closeStreams() { b.closeOnce.Do(func() { close(b.closing) }) }

// bannerCallRequest is the POST body.
type bannerCallRequest struct {
	Number    string `json:"number"`
	Key       string `json:"key"`
	Name      string `json:"name"`
	Consent   string `json:"consent"`
	Challenge string `json:"challenge"`
	Nonce     string `json:"nonce"`
}

// callStarted is the answer of an admitted POST.
type callStarted struct {
	Call      PublicCall `json:"call"`
	Token     string     `json:"token"`
	EventsURL string     `json:"eventsUrl"`
	Joined    bool       `json:"joined"`
}

func (b *bannerAPI) click2call(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("campaign")
	req, d, ok := decodeClick2Call(w, r)
	if !ok {
		b.refuse(w, d)
		return
	}
	// a. The campaign.
	c := b.campaign(w, r, id)
	if c == nil {
		return
	}
	// b. Key and state; c. origin.
	if !b.admit(w, r, c, req.Key, "wrong or missing campaign key: copy the banner snippet from the campaign again") {
		return
	}
	// d. The visitor's address.
	if b.rdb == nil {
		b.unavailable(w, r, "banner", errors.New("no Redis (REDIS_URL) to hold the limits"))
		return
	}
	ipRes, err := b.rdb.Allow(ctx, "banner:ip:"+id+":"+limiterAddr(clientIP(r, b.trusted)), c.ipLimit)
	if err != nil {
		b.unavailable(w, r, "banner per-IP limit", err)
		return
	}
	if !ipRes.Allowed {
		b.limited(w, ipRes, "too many requests from your address")
		return
	}
	// e. What was typed.
	number, err := normalizeNumber(req.Number, c.pc.GetDefaultCountry())
	if err != nil {
		b.refuse(w, ErrorDetail{Code: ReasonInvalidNumber, HTTPStatus: http.StatusBadRequest, Message: err.Error()})
		return
	}
	if err := checkText("name", req.Name, bannerMaxName); err != nil {
		b.refuse(w, ErrorDetail{Code: ReasonInvalidArgument, HTTPStatus: http.StatusBadRequest, Message: err.Error()})
		return
	}
	if err := checkText("consent", req.Consent, bannerMaxConsent); err != nil {
		b.refuse(w, ErrorDetail{Code: ReasonInvalidArgument, HTTPStatus: http.StatusBadRequest, Message: err.Error()})
		return
	}
	// f. Destinations the banner never calls.
	if _, ok := c.blockedPrefix(number); ok {
		b.refuse(w, ErrorDetail{Code: ReasonBlockedDestination, HTTPStatus: http.StatusUnprocessableEntity,
			Message: "this campaign does not call numbers like " + number})
		return
	}
	if premiumNumber(number) {
		b.refuse(w, ErrorDetail{Code: ReasonBlockedDestination, HTTPStatus: http.StatusUnprocessableEntity,
			Message: "premium-rate and shared-cost numbers are not called"})
		return
	}
	// g. Proof of work, when the campaign wants one.
	need, err := b.needChallenge(ctx, c, ipRes)
	if err != nil {
		b.unavailable(w, r, "banner campaign limit", err)
		return
	}
	if need && !b.challenged(w, r, id, req) {
		return
	}
	// h. A second request for the same number joins the first's call
	// while it is live; once it has ended, a new request is a new call.
	dupKey := "banner:dup:" + id + ":" + number
	mine := dupPending + randomHex(8)
	for tries := 0; ; tries++ {
		callID, claimed, err := b.claim(ctx, dupKey, mine, min(c.dupWindow, bannerDupPending))
		if err == nil && !claimed {
			var call *originationv1.Call
			call, err = b.fetchCall(ctx, c, callID)
			if err == nil && !finalStatus(call.GetStatus()) {
				b.join(w, c, call)
				return
			}
			if err == nil || status.Code(err) == codes.NotFound {
				claimed, err = b.takeOver(ctx, dupKey, callID, mine)
				if err == nil && !claimed && tries < 2 {
					continue // another request took it over first: look again
				}
				if err == nil && !claimed {
					err = errDuplicateInProgress
				}
			} else {
				b.serviceRefusal(w, r, err)
				return
			}
		}
		switch {
		case errors.Is(err, errDuplicateInProgress):
			b.refuse(w, ErrorDetail{Code: ReasonDuplicateInProgress, HTTPStatus: http.StatusConflict,
				Message: "a call to this number is being placed: wait a moment and look at its status"})
			return
		case err != nil:
			b.unavailable(w, r, "banner duplicate check", err)
			return
		}
		break
	}
	placed := false
	defer func() {
		if !placed {
			b.release(dupKey, mine)
		}
	}()
	// i. Limits of the number and of the campaign.
	numRes, err := b.rdb.Allow(ctx, "banner:num:"+id+":"+number, c.numLimit)
	if err != nil {
		b.unavailable(w, r, "banner per-number limit", err)
		return
	}
	if !numRes.Allowed {
		b.limited(w, numRes, "this number was called too often today")
		return
	}
	campRes, err := b.rdb.Allow(ctx, campaignLimitKey(id), c.campLimit)
	if err != nil {
		b.unavailable(w, r, "banner campaign limit", err)
		return
	}
	if !campRes.Allowed {
		b.limited(w, campRes, "the campaign is taking too many calls right now")
		return
	}
	// j. The call.
	md := metadata.Pairs(AccountHeader, c.pc.GetAccountId(), CallSourceHeader, originationv1.CallSource_CALL_SOURCE_BANNER.String())
	ip := clientIP(r, b.trusted)
	clientAddr := ""
	if ip.IsValid() {
		clientAddr = ip.String()
	}
	res, err := b.banner.StartBannerCall(metadata.NewOutgoingContext(ctx, md), &originationv1.StartBannerCallRequest{
		CampaignId: id, Number: number, VisitorName: req.Name, Consent: req.Consent,
		ClientIp: clientAddr, Origin: r.Header.Get("Origin"),
	})
	if err != nil {
		b.serviceRefusal(w, r, err)
		return
	}
	call := res.GetCall()
	placed = true
	b.commit(dupKey, mine, call.GetId(), c.dupWindow)
	b.metrics.calls.WithLabelValues("placed").Inc()
	b.log.Info("banner call placed", logging.CallID(call.GetId()), logging.AccountID(c.pc.GetAccountId()), "campaign_id", id)
	// k.
	b.writeStarted(w, c, call, false)
}

// decodeClick2Call reads the POST body.
func decodeClick2Call(w http.ResponseWriter, r *http.Request) (bannerCallRequest, ErrorDetail, bool) {
	var req bannerCallRequest
	tooLarge := ErrorDetail{Code: ReasonRequestTooLarge, HTTPStatus: http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("request body larger than %d bytes", bannerMaxBody)}
	if r.ContentLength > bannerMaxBody {
		return req, tooLarge, false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, bannerMaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || bodyTooLarge(r):
		return req, tooLarge, false
	case err != nil:
		return req, ErrorDetail{Code: ReasonInvalidArgument, HTTPStatus: http.StatusBadRequest,
			Message: "send a JSON object {\"number\",\"key\"} (optionally name, consent, challenge, nonce): " + err.Error()}, false
	}
	return req, ErrorDetail{}, true
}

// campaign looks a request's campaign up; on failure it answers and
// returns nil.
func (b *bannerAPI) campaign(w http.ResponseWriter, r *http.Request, id string) *bannerCampaign {
	notFound := ErrorDetail{Code: ReasonCampaignNotFound, HTTPStatus: http.StatusNotFound, Message: "campaign not found"}
	if !validID(id) {
		b.refuse(w, notFound)
		return nil
	}
	c, err := b.campaigns.get(r.Context(), id)
	switch {
	case err == nil:
		return c
	case errors.Is(err, errCampaignNotFound):
		b.refuse(w, notFound)
	default:
		b.unavailable(w, r, "banner campaign lookup", err)
	}
	return nil
}

// keyMatches compares the visitor's key with the campaign's in constant time.
func (b *bannerAPI) keyMatches(c *bannerCampaign, key string) bool {
	want := c.pc.GetPublicKey()
	return want != "" && subtle.ConstantTimeCompare([]byte(key), []byte(want)) == 1
}

// cors reports whether the request's origin may use the campaign (no
// Origin: not a browser's cross-origin request, allowed) and, when it may,
// sets the CORS headers of the answer.
func (b *bannerAPI) cors(w http.ResponseWriter, r *http.Request, c *bannerCampaign) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !c.allowsOrigin(origin, r.Host) {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "Retry-After")
	return true
}

func (b *bannerAPI) refuseOrigin(w http.ResponseWriter, r *http.Request) {
	b.refuse(w, ErrorDetail{Code: ReasonOriginNotAllowed, HTTPStatus: http.StatusForbidden,
		Message: fmt.Sprintf("pages of %s may not use this campaign: add the origin to the campaign's allowed origins", r.Header.Get("Origin"))})
}

// preflight answers a CORS preflight: the key is not sent with it, so only
// the origin is checked against the campaign.
func (b *bannerAPI) preflight(methods string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := b.campaign(w, r, r.PathValue("campaign"))
		if c == nil {
			return
		}
		if !b.cors(w, r, c) {
			b.refuseOrigin(w, r)
			return
		}
		h := w.Header()
		if r.Header.Get("Origin") != "" {
			h.Set("Access-Control-Allow-Methods", methods)
			h.Set("Access-Control-Allow-Headers", "Content-Type")
			h.Set("Access-Control-Max-Age", "600")
		}
		h.Set("Allow", methods)
		w.WriteHeader(http.StatusNoContent)
	}
}

// admit checks a request's campaign key, that the campaign takes calls and
// the page's origin, or answers the refusal. The CORS headers go on the
// key and state errors too when the origin is allowed, so the campaign's
// own widget can read them.
func (b *bannerAPI) admit(w http.ResponseWriter, r *http.Request, c *bannerCampaign, key, wrongKey string) bool {
	originOK := b.cors(w, r, c)
	switch {
	case !b.keyMatches(c, key):
		b.refuse(w, ErrorDetail{Code: ReasonInvalidKey, HTTPStatus: http.StatusUnauthorized, Message: wrongKey})
	case !c.pc.GetEnabled():
		b.refuse(w, ErrorDetail{Code: ReasonCampaignDisabled, HTTPStatus: http.StatusForbidden, Message: "this campaign does not take calls"})
	case !originOK:
		b.refuseOrigin(w, r)
	default:
		return true
	}
	return false
}

// challenge issues a challenge to a campaign's widget (which may solve one
// before it is asked, e.g. while the visitor types).
func (b *bannerAPI) challenge(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("campaign")
	c := b.campaign(w, r, id)
	if c == nil {
		return
	}
	if !b.admit(w, r, c, r.URL.Query().Get("key"), "wrong or missing campaign key (?key=)") {
		return
	}
	ch, err := b.challenger.Issue(r.Context(), id)
	if err != nil {
		b.unavailable(w, r, "banner challenge", err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

// needChallenge applies the campaign's challenge mode. Adaptive (the
// default) asks for one once more than half of the burst of the visitor's
// address, or of the campaign, is used: real visitors never see it,
// floods pay for every request.
func (b *bannerAPI) needChallenge(ctx context.Context, c *bannerCampaign, ipRes cache.Result) (bool, error) {
	switch c.pc.GetChallenge() {
	case originationv1.ChallengeMode_CHALLENGE_MODE_OFF:
		return false, nil
	case originationv1.ChallengeMode_CHALLENGE_MODE_ALWAYS:
		return true, nil
	}
	if 2*ipRes.Remaining < c.ipLimit.Burst {
		return true, nil
	}
	avail, err := peekAllowance(ctx, b.rdb, campaignLimitKey(c.pc.GetId()), c.campLimit)
	if err != nil {
		return false, err
	}
	// As Allow's Remaining would be after this request.
	return 2*(avail-1) < c.campLimit.Burst, nil
}

func campaignLimitKey(id string) string { return "banner:camp:" + id }

// peekScript is cache.Allow's GCRA read without taking anything: how many
// requests key's allowance would admit now. It reads the key Allow writes
// (the client's prefix + "ratelimit:" + key).
var peekScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then
	tat = now
end
return math.floor((tonumber(ARGV[2]) - (tat - now)) / tonumber(ARGV[1]))`)

// peekAllowance returns how many requests l would admit on key right now.
func peekAllowance(ctx context.Context, rdb *cache.Client, key string, l cache.Limit) (int, error) {
	if err := l.Validate(); err != nil {
		return 0, fmt.Errorf("peek %s: %w", key, err)
	}
	iv := (l.Period / time.Duration(l.Rate)).Round(time.Microsecond).Microseconds() // as cache.Limit's interval
	n, err := peekScript.Run(ctx, rdb.Redis(), []string{rdb.Key("ratelimit", key)}, iv, iv*int64(l.Burst)).Int()
	if err != nil {
		return 0, fmt.Errorf("peek %s: %w", key, err)
	}
	return n, nil
}

// challenged checks the request's solved challenge; without a good one it
// answers 428 with a fresh challenge and returns false.
func (b *bannerAPI) challenged(w http.ResponseWriter, r *http.Request, id string, req bannerCallRequest) bool {
	msg := "solve the challenge and send it with its nonce"
	if req.Challenge != "" {
		err := b.challenger.Verify(r.Context(), id, req.Challenge, req.Nonce)
		if err == nil {
			return true
		}
		if !errors.Is(err, ErrChallengeFailed) {
			b.unavailable(w, r, "banner challenge", err)
			return false
		}
		msg = err.Error()
	}
	ch, err := b.challenger.Issue(r.Context(), id)
	if err != nil {
		b.unavailable(w, r, "banner challenge", err)
		return false
	}
	b.metrics.refusals.WithLabelValues(ReasonChallengeRequired).Inc()
	d := ErrorDetail{Code: ReasonChallengeRequired, HTTPStatus: http.StatusPreconditionRequired, Message: msg}
	writeJSON(w, d.HTTPStatus, challengeErrorBody{Error: challengeErrorDetail{ErrorDetail: d, Challenge: ch}})
	return false
}

var errDuplicateInProgress = errors.New("a request for the same number is in progress")

// claim takes the duplicate key of a number for this request (SET NX with
// the campaign's window), or returns the call id it holds. While a twin
// request holds it pending it looks again every bannerDupPoll, for up to
// bannerDupWait (then errDuplicateInProgress); if the twin failed and
// released it, this request takes it.
func (b *bannerAPI) claim(ctx context.Context, key, mine string, window time.Duration) (callID string, claimed bool, err error) {
	rdb, full := b.rdb.Redis(), b.rdb.Key(key)
	deadline := time.Now().Add(bannerDupWait)
	for {
		ok, err := rdb.SetNX(ctx, full, mine, window).Result()
		if err != nil {
			return "", false, err
		}
		if ok {
			return "", true, nil
		}
		v, err := rdb.Get(ctx, full).Result()
		switch {
		case errors.Is(err, redis.Nil): // released or expired meanwhile
		case err != nil:
			return "", false, err
		case !strings.HasPrefix(v, dupPending):
			return v, false, nil
		}
		if time.Now().After(deadline) {
			return "", false, errDuplicateInProgress
		}
		select {
		case <-ctx.Done():
			return "", false, ctx.Err()
		case <-time.After(bannerDupPoll):
		}
	}
}

// swapScript replaces the key's value ARGV[1] by ARGV[2] for ARGV[3] ms;
// a key that expired or changed meanwhile is left alone.
var swapScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return false`)

// takeOver claims a duplicate key that holds an ended call's id.
func (b *bannerAPI) takeOver(ctx context.Context, key, ended, mine string) (bool, error) {
	err := swapScript.Run(ctx, b.rdb.Redis(), []string{b.rdb.Key(key)}, ended, mine, bannerDupPending.Milliseconds()).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

// commit records the call placed for a claimed duplicate key, for the
// campaign's whole window from now.
func (b *bannerAPI) commit(key, mine, callID string, window time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := swapScript.Run(ctx, b.rdb.Redis(), []string{b.rdb.Key(key)}, mine, callID, window.Milliseconds()).Err(); err != nil && !errors.Is(err, redis.Nil) {
		b.logFailure("banner: record the call of a duplicate key", err, logging.CallID(callID))
	}
}

// release frees a claimed duplicate key whose call was not placed, if it
// still holds this request's pending value (compare-and-delete). Not the
// request's context: a visitor who leaves must not block the number for
// the whole window.
func (b *bannerAPI) release(key, mine string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.rdb.Unlock(ctx, key, mine); err != nil && !errors.Is(err, cache.ErrNotHeld) {
		b.logFailure("banner: release a duplicate key", err)
	}
}

// join answers a duplicate request with the live call of the first.
func (b *bannerAPI) join(w http.ResponseWriter, c *bannerCampaign, call *originationv1.Call) {
	b.metrics.calls.WithLabelValues("joined").Inc()
	b.writeStarted(w, c, call, true)
}

func (b *bannerAPI) writeStarted(w http.ResponseWriter, c *bannerCampaign, call *originationv1.Call, joined bool) {
	now := b.now()
	token := b.tokens.issue(call.GetId(), c.pc.GetId(), now)
	writeJSON(w, http.StatusOK, callStarted{
		Call:      publicView(call, now),
		Token:     token,
		EventsURL: "/v1/calls/" + url.PathEscape(call.GetId()) + "/events?token=" + url.QueryEscape(token),
		Joined:    joined,
	})
}

// fetchCall reads a campaign's call from origination on the campaign
// account's behalf; a call of another campaign is not found.
func (b *bannerAPI) fetchCall(ctx context.Context, c *bannerCampaign, id string) (*originationv1.Call, error) {
	ctx, cancel := context.WithTimeout(ctx, bannerCallTimeout)
	defer cancel()
	ctx = metadata.NewOutgoingContext(ctx, metadata.Pairs(AccountHeader, c.pc.GetAccountId()))
	res, err := b.calls.GetCall(ctx, &originationv1.GetCallRequest{Id: id})
	if err != nil {
		return nil, err
	}
	if res.GetCall().GetCampaignId() != c.pc.GetId() {
		return nil, newError(codes.NotFound, "CALL_NOT_FOUND", "call not found")
	}
	return res.GetCall(), nil
}

// bannerReasonStatus overrides the HTTP status of origination's refusals
// of a banner call (errorDetail maps rating's to 422 already).
var bannerReasonStatus = map[string]int{
	ReasonCampaignDisabled: http.StatusForbidden,
	ReasonCampaignNotFound: http.StatusNotFound,
}

// serviceRefusal answers a failed origination call.
func (b *bannerAPI) serviceRefusal(w http.ResponseWriter, r *http.Request, err error) {
	d, internal := errorDetail(err)
	if s, ok := bannerReasonStatus[d.Code]; ok {
		d.HTTPStatus = s
	}
	if internal {
		b.logFailure("banner: origination", err, "path", r.URL.Path, "code", d.Code)
	}
	b.refuse(w, d)
}

// limited answers 429 with Retry-After in whole seconds.
func (b *bannerAPI) limited(w http.ResponseWriter, res cache.Result, why string) {
	s := max(int64(math.Ceil(res.RetryAfter.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.FormatInt(s, 10))
	b.refuse(w, ErrorDetail{Code: ReasonRateLimited, HTTPStatus: http.StatusTooManyRequests,
		Message: fmt.Sprintf("%s: try again in %s", why, humanWait(s))})
}

// humanWait says a wait of s seconds in the largest unit that fits.
func humanWait(s int64) string {
	switch {
	case s == 1:
		return "1 second"
	case s < 120:
		return fmt.Sprintf("%d seconds", s)
	case s < 2*3600:
		return fmt.Sprintf("%d minutes", (s+59)/60)
	default:
		return fmt.Sprintf("%d hours", (s+3599)/3600)
	}
}

// unavailable answers 503: something the banner needs cannot be reached.
func (b *bannerAPI) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	if r.Context().Err() == nil {
		b.logFailure(what, err, "path", r.URL.Path)
	}
	b.refuse(w, ErrorDetail{Code: ReasonUnavailable, HTTPStatus: http.StatusServiceUnavailable,
		Message: "the service cannot take requests right now, try again later"})
}

// logFailure logs an infrastructure failure, at most once a second: during
// a Redis outage a flood must not become a flood of log lines.
func (b *bannerAPI) logFailure(what string, err error, args ...any) {
	now := time.Now().UnixNano()
	last := b.lastFailureLog.Load()
	if now-last < int64(time.Second) || !b.lastFailureLog.CompareAndSwap(last, now) {
		return
	}
	b.log.Error(what, append(args, logging.Err(err))...)
}

// refuse answers a refused request and counts it.
func (b *bannerAPI) refuse(w http.ResponseWriter, d ErrorDetail) {
	b.metrics.refusals.WithLabelValues(d.Code).Inc()
	writeError(w, d)
}

// challengeErrorBody is the error of a 428: the usual error object, plus
// the challenge to solve.
type challengeErrorBody struct {
	Error challengeErrorDetail `json:"error"`
}

type challengeErrorDetail struct {
	ErrorDetail
	Challenge Challenge `json:"challenge"`
}

// writeJSON writes a JSON body with writeError's headers.
func writeJSON(w http.ResponseWriter, status int, body any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// normalizeNumber returns a visitor's number in E.164. With a "+" or "00"
// it is read as international and only its form is checked (not the
// numbering plan: rating refuses destinations it has no rate for, with
// DESTINATION_NOT_SUPPORTED, and test numbers must pass). Without, it is a
// national number of the campaign's default country.
func normalizeNumber(s, country string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errors.New("type your phone number")
	case len(s) > bannerMaxNumber:
		return "", errors.New("that is too long for a phone number")
	case strings.HasPrefix(s, "+"):
		return phone.E164(s)
	case strings.HasPrefix(s, "00"):
		return phone.E164("+" + s[2:])
	case country == "":
		return "", errors.New("type your number with + and the country code")
	}
	n, err := phonenumbers.Parse(s, strings.ToUpper(country))
	if err != nil {
		return "", fmt.Errorf("%q is not a phone number: type it with + and the country code", s)
	}
	return phone.E164(phonenumbers.Format(n, phonenumbers.E164))
}

// premiumNumber reports whether a number is premium-rate or shared-cost
// (paid by the caller beyond the call: the banner's owner would pay the
// visitor's chosen destination).
func premiumNumber(e164 string) bool {
	n, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return false
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST:
		return true
	}
	return false
}

// checkText checks a free-text field: at most maxLen characters, none of
// them control characters.
func checkText(field, s string, maxLen int) error {
	if n := utf8.RuneCountInString(s); n > maxLen {
		return fmt.Errorf("%s is longer than %d characters", field, maxLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s contains a control character", field)
		}
	}
	return nil
}

// limiterAddr is the unit of the per-address limits: the address, or for
// IPv6 its /64 (one subscriber's whole allocation).
func limiterAddr(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// streamCounter bounds the status streams open per client address (on
// this replica).
type streamCounter struct {
	mu   sync.Mutex
	max  int
	open map[string]int
}

func (s *streamCounter) acquire(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key] >= s.max {
		return false
	}
	s.open[key]++
	return true
}

func (s *streamCounter) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key]--; s.open[key] <= 0 {
		delete(s.open, key)
	}
}

// bannerMetrics are the banner API's Prometheus metrics.
type bannerMetrics struct {
	refusals *prometheus.CounterVec // by code
	calls    *prometheus.CounterVec // by result: placed, joined
	streams  prometheus.Gauge
}

func newBannerMetrics(reg prometheus.Registerer) *bannerMetrics {
	m := &bannerMetrics{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ringback", Subsystem: "gateway",
			Name: "banner_refusals_total", Help: "Public banner requests refused, by error code."}, []string{"code"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ringback", Subsystem: "gateway",
			Name: "banner_calls_total", Help: "Public banner requests admitted, by result (placed: a new call; joined: a duplicate's)."}, []string{"result"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ringback", Subsystem: "gateway",
			Name: "banner_streams", Help: "Visitors' call status streams open."}),
	}
	if reg != nil {
		reg.MustRegister(m.refusals, m.calls, m.streams)
	}
	return m
}
