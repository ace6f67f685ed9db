package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/cdr"
	"github.com/ringback/ringback/services/internal/cache"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/rating/tariffcsv"
)

// Paths of the CDR routes the gateway serves itself.
const (
	// cdrExportPath streams CdrService.ExportCdrs as a CSV download; the
	// query parameters are ListCdrs' (filter.startTime, ...) plus
	// ascending and timeZone.
	cdrExportPath = "/v1/cdrs:export"
)

// LegacyGetCdrsPath is the carrier-compatible getCdrs endpoint.
const LegacyGetCdrsPath = "/getCdrs.php"

// Codes of getCdrs errors not shared with the REST API.
const (
	ReasonRateLimited = "RATE_LIMITED"
	ReasonInvalidDate = "INVALID_DATE"
)

// Limiter is the per-account allowance of getCdrs requests (Redis, shared
// by every gateway replica).
type Limiter interface {
	Allow(ctx context.Context, key string) (cache.Result, error)
}

// RedisLimiter applies one Limit to every key.
type RedisLimiter struct {
	Client *cache.Client
	Limit  cache.Limit
}

// Allow implements Limiter.
func (l RedisLimiter) Allow(ctx context.Context, key string) (cache.Result, error) {
	return l.Client.Allow(ctx, key, l.Limit)
}

// exportCdrs streams CdrService.ExportCdrs as a CSV download.
func (h *handler) exportCdrs(w http.ResponseWriter, r *http.Request) {
	p, ok := h.authenticated(w, r)
	if !ok {
		return
	}
	if p.Operator {
		writeError(w, ErrorDetail{Code: ReasonPermissionDenied, HTTPStatus: http.StatusForbidden,
			Message: "call records are an account's: use the account's API key"})
		return
	}
	req := &cdrv1.ExportCdrsRequest{}
	if err := runtime.PopulateQueryParameters(req, r.URL.Query(), utilities.NewDoubleArray(nil)); err != nil {
		writeError(w, ErrorDetail{Code: ReasonInvalidArgument, HTTPStatus: http.StatusBadRequest, Message: err.Error()})
		return
	}
	ctx := metadata.NewOutgoingContext(r.Context(), metadata.Pairs(AccountHeader, p.AccountID))
	stream, err := h.cdrs.ExportCdrs(ctx, req)
	if err != nil {
		h.serviceFailure(w, r, err)
		return
	}
	h.streamCSV(w, r, "cdrs.csv", func() ([]byte, error) {
		msg, err := stream.Recv()
		return msg.GetChunk(), err
	})
}

// The carrier-compatible getCdrs endpoint (seeds 002 and 004).
//
// Request, GET query or POST form/JSON like clickToDial: username (the
// account's name), password (one of its API keys), and one of
//
//	live=1      the account's live calls (duration "0"; connect_time
//	            1970-01-01 00:00:00 until the parties are connected)
//	recent=1    the records of the last 24 hours, oldest first
//	dateStart, dateEnd   records of calls detected in [dateStart, dateEnd),
//	            "YYYY-MM-DD HH:mm:ss" (or YYYY-MM-DD), oldest first, paged with
//	            ini (rows to skip, default 0) and cant (rows, default 100,
//	            at most 1000)
//
// Times are UTC unless tz names an IANA time zone (an extension: the
// carrier's were its own local time). The answer is a JSON array of
// records whose fields are all strings, as the carrier's were:
//
//	callid, ani, dnis, detect_time, connect_time, duration, ani_user,
//	dnis_user, cost, access_fee, rate, route_pattern, route_name
//
// ani and dnis are the first and second party (a number, or the endpoint's
// address), ani_user and dnis_user the endpoints' names; duration is the
// connected time in seconds; cost and access_fee (connection fees) are in
// the account's currency; rate, route_pattern and route_name are the rate
// of the call's destination (the second party, or the first when only it
// was rated). Instead of the carrier's "one request per 4 s" that delayed
// callers, each account has an allowance (RINGBACK_GETCDRS_PER_MINUTE,
// RINGBACK_GETCDRS_BURST): past it the answer is 429 with Retry-After.
// Errors are clickToDial's: {"status":"ERROR","code":...,"message":...}.

// LegacyCdr is one record of getCdrs.
type LegacyCdr struct {
	CallID       string `json:"callid"`
	ANI          string `json:"ani"`
	DNIS         string `json:"dnis"`
	DetectTime   string `json:"detect_time"`
	ConnectTime  string `json:"connect_time"`
	Duration     string `json:"duration"`
	ANIUser      string `json:"ani_user"`
	DNISUser     string `json:"dnis_user"`
	Cost         string `json:"cost"`
	AccessFee    string `json:"access_fee"`
	Rate         string `json:"rate"`
	RoutePattern string `json:"route_pattern"`
	RouteName    string `json:"route_name"`
}

// legacyTime is the carrier's time format.
const legacyTime = "2006-01-02 15:04:05"

// legacyNever is the carrier's connect_time of a call that never connected.
const legacyNever = "1970-01-01 00:00:00"

// LegacyRecord renders a call as a getCdrs record; live calls have
// duration "0".
func LegacyRecord(c *originationv1.Call, live bool, loc *time.Location) LegacyCdr {
	at := func(t *timestamppb.Timestamp) string {
		if t == nil {
			return legacyNever
		}
		return t.AsTime().In(loc).Format(legacyTime)
	}
	cost, fee, _ := cdr.Charges(c)
	rate := c.GetSecond().GetRate()
	if rate == nil {
		rate = c.GetFirst().GetRate()
	}
	out := LegacyCdr{
		CallID: c.GetId(), ANI: c.GetFirst().GetAddress(), DNIS: c.GetSecond().GetAddress(),
		DetectTime: at(c.GetCreatedAt()), ConnectTime: at(c.GetBridgedAt()),
		Duration: strconv.Itoa(int(c.GetBillsec())),
		ANIUser:  c.GetFirst().GetEndpointName(), DNISUser: c.GetSecond().GetEndpointName(),
		Cost: tariffcsv.FormatMicros(cost), AccessFee: tariffcsv.FormatMicros(fee),
		Rate: "0", RoutePattern: rate.GetPrefix(), RouteName: rate.GetDestination(),
	}
	if rate != nil {
		out.Rate = tariffcsv.FormatMicros(rate.GetRatePerMinuteMicros())
	}
	if live {
		out.Duration = "0"
	}
	return out
}

// Bounds of getCdrs paging.
const (
	legacyDefaultCant = 100
	legacyMaxCant     = 1000
	legacyMaxIni      = 1_000_000
)

// getCdrs serves the carrier-compatible endpoint (see above).
func (h *handler) getCdrs(w http.ResponseWriter, r *http.Request) {
	params, p, ok := h.legacyAuth(w, r)
	if !ok {
		return
	}
	log := logging.WithAccount(h.log, p.AccountID)
	if h.limiter != nil {
		res, err := h.limiter.Allow(r.Context(), "getcdrs:"+p.AccountID)
		switch {
		case err != nil:
			// Redis is only the allowance: serve rather than fail.
			log.Warn("getCdrs rate limit unavailable; request served", logging.Err(err))
		case !res.Allowed:
			secs := int(math.Ceil(res.RetryAfter.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			writeLegacyError(w, http.StatusTooManyRequests, ReasonRateLimited,
				fmt.Sprintf("too many getCdrs requests for this account; retry in %d s", max(secs, 1)))
			return
		}
	}
	loc := time.UTC
	if tz := strings.TrimSpace(params.Get("tz")); tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil || strings.Contains(tz, "..") {
			writeLegacyError(w, http.StatusBadRequest, ReasonInvalidArgument, fmt.Sprintf("tz %q: want an IANA time zone such as America/Mexico_City", tz))
			return
		}
		loc = l
	}
	ctx := metadata.NewOutgoingContext(r.Context(), metadata.Pairs(AccountHeader, p.AccountID))
	if params.Get("live") == "1" {
		h.legacyLive(ctx, w, r, loc)
		return
	}
	filter := &cdrv1.CdrFilter{}
	if params.Get("recent") == "1" {
		now := time.Now()
		filter.StartTime, filter.EndTime = timestamppb.New(now.Add(-24*time.Hour)), timestamppb.New(now)
		h.legacyPages(ctx, w, r, filter, 0, -1, loc)
		return
	}
	if !params.Has("dateStart") || !params.Has("dateEnd") {
		writeLegacyError(w, http.StatusBadRequest, ReasonMissingParameter, "give live=1, recent=1, or dateStart and dateEnd")
		return
	}
	start, err := legacyDate(params, "dateStart", loc)
	if err == nil {
		var end time.Time
		end, err = legacyDate(params, "dateEnd", loc)
		filter.StartTime, filter.EndTime = timestamppb.New(start), timestamppb.New(end)
	}
	if err != nil {
		writeLegacyError(w, http.StatusBadRequest, ReasonInvalidDate, err.Error())
		return
	}
	ini, err := legacyInt(params, "ini", 0, 0, legacyMaxIni)
	if err != nil {
		writeLegacyError(w, http.StatusBadRequest, ReasonInvalidArgument, err.Error())
		return
	}
	cant, err := legacyInt(params, "cant", legacyDefaultCant, 1, legacyMaxCant)
	if err != nil {
		writeLegacyError(w, http.StatusBadRequest, ReasonInvalidArgument, err.Error())
		return
	}
	h.legacyPages(ctx, w, r, filter, ini, cant, loc)
}

func legacyDate(params url.Values, name string, loc *time.Location) (time.Time, error) {
	v := strings.TrimSpace(params.Get(name))
	for _, layout := range []string{legacyTime, "2006-01-02T15:04:05", "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: want YYYY-MM-DD HH:mm:ss", name, v)
}

func legacyInt(params url.Values, name string, def, lo, hi int) (int, error) {
	v := strings.TrimSpace(params.Get(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s %q: want a whole number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// legacyPages writes the records of filter, oldest first, skipping ini and
// writing at most cant (every one when cant < 0), as one JSON array
// streamed page by page.
func (h *handler) legacyPages(ctx context.Context, w http.ResponseWriter, r *http.Request, filter *cdrv1.CdrFilter, ini, cant int, loc *time.Location) {
	const page = 1000
	out := newLegacyArray(w)
	token := ""
	skipped := false
	for {
		size := page
		if cant >= 0 {
			size = min(page, cant-out.n)
		}
		req := &cdrv1.ListCdrsRequest{Filter: filter, PageSize: int32(size), PageToken: token, Ascending: true}
		if !skipped && ini > 0 {
			req.Offset = int32(ini)
		}
		skipped = true
		resp, err := h.cdrs.ListCdrs(ctx, req)
		if err != nil {
			if out.n == 0 && !out.started {
				h.legacyFailure(w, r, logging.WithAccount(h.log, accountOf(ctx)), err)
				return
			}
			h.log.Error("getCdrs failed mid-stream", logging.Err(err))
			panic(http.ErrAbortHandler)
		}
		for _, c := range resp.GetCdrs() {
			out.add(LegacyRecord(c.GetCall(), false, loc))
		}
		token = resp.GetNextPageToken()
		if token == "" || (cant >= 0 && out.n >= cant) {
			break
		}
	}
	out.end()
}

// legacyLive writes the account's live calls.
func (h *handler) legacyLive(ctx context.Context, w http.ResponseWriter, r *http.Request, loc *time.Location) {
	var calls []*originationv1.Call
	token := ""
	for range 100 { // 500 a page: 50,000 live calls at most
		resp, err := h.calls.ListLiveCalls(ctx, &originationv1.ListLiveCallsRequest{PageSize: 500, PageToken: token})
		if err != nil {
			h.legacyFailure(w, r, logging.WithAccount(h.log, accountOf(ctx)), err)
			return
		}
		calls = append(calls, resp.GetCalls()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	out := newLegacyArray(w)
	for _, c := range calls {
		out.add(LegacyRecord(c, true, loc))
	}
	out.end()
}

func accountOf(ctx context.Context) string {
	md, _ := metadata.FromOutgoingContext(ctx)
	if v := md.Get(AccountHeader); len(v) == 1 {
		return v[0]
	}
	return ""
}

// legacyArray streams a JSON array of records.
type legacyArray struct {
	w       http.ResponseWriter
	enc     *json.Encoder
	n       int
	started bool
}

func newLegacyArray(w http.ResponseWriter) *legacyArray {
	return &legacyArray{w: w, enc: json.NewEncoder(w)}
}

func (a *legacyArray) start() {
	if a.started {
		return
	}
	a.started = true
	a.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	a.w.Header().Set("Cache-Control", "no-store")
	a.w.Header().Set("X-Content-Type-Options", "nosniff")
	a.w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(a.w, "[")
}

func (a *legacyArray) add(c LegacyCdr) {
	a.start()
	if a.n > 0 {
		_, _ = io.WriteString(a.w, ",")
	}
	_ = a.enc.Encode(c) // Encode ends with a newline: valid between elements
	a.n++
}

func (a *legacyArray) end() {
	a.start()
	_, _ = io.WriteString(a.w, "]\n")
}
