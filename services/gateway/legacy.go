package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/phone"
)

// The carrier-compatible clickToDial endpoint (seeds 002 and 004: the
// carrier's Click2Dial manual and CRM guide).
//
// Request, GET query or POST (application/x-www-form-urlencoded,
// multipart/form-data or a JSON object; query parameters also count on a
// POST, the body's win):
//
//	username    the account's name (the carrier's "CMWusername")
//	password    one of the account's API keys
//	first_num   dialed first: a phone number, or one of the account's
//	            endpoints by id, address (extension, SIP user or number) or
//	            name (the carrier's "CMW username o número CMW de la misma
//	            cuenta", i.e. the agent's phone)
//	second_num  dialed once first_num answers ("secd_num", the manual's
//	            spelling in its first example, is accepted too)
//
// Agent-first or prospect-first is only the order of first_num and
// second_num, as the CRM guide says ("si se desea cambiar el orden a llamar
// se cambia este orden"). Numbers are E.164 with or without "+"; spaces,
// dashes, dots and parentheses are ignored; a leading "00" is read as "+".
//
// Response: JSON, 200 once the call is accepted (like the carrier's, it
// says the request was recorded, not that the call will connect):
//
//	{"status":"OK","message":"call accepted","callid":"<call id>"}
//
// callid is the call's id, the same value the carrier's CDRs and webhooks
// call "callid", and GET /v1/calls/{id} takes. Errors use an HTTP 4xx/5xx
// status and:
//
//	{"status":"ERROR","code":"<stable code>","message":"<why>"}
//
// codes: MISSING_PARAMETER, INVALID_NUMBER, INVALID_ARGUMENT (400),
// INVALID_CREDENTIALS (401), IP_NOT_ALLOWED, ACCOUNT_SUSPENDED (403),
// ENDPOINT_NOT_FOUND (404), METHOD_NOT_ALLOWED (405), ENDPOINT_BUSY (409,
// an endpoint is in another call: "no es posible ejecutar el c2d si el EP
// ... está en una llamada"), REQUEST_TOO_LARGE (413), UNAVAILABLE (503).

// Codes of clickToDial errors not shared with the REST API.
const (
	ReasonMissingParameter   = "MISSING_PARAMETER"
	ReasonInvalidNumber      = "INVALID_NUMBER"
	ReasonInvalidCredentials = "INVALID_CREDENTIALS"
)

// LegacyResponse is the body of every clickToDial answer.
type LegacyResponse struct {
	Status  string `json:"status"`           // "OK" or "ERROR"
	Code    string `json:"code,omitempty"`   // errors only
	Message string `json:"message"`          // human-readable
	CallID  string `json:"callid,omitempty"` // success only
}

func isLegacyPath(p string) bool { return slices.Contains(LegacyClickToDialPaths, p) }

func writeLegacy(w http.ResponseWriter, status int, body LegacyResponse) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeLegacyError(w http.ResponseWriter, status int, code, msg string) {
	writeLegacy(w, status, LegacyResponse{Status: "ERROR", Code: code, Message: msg})
}

// legacyParams reads the request's parameters.
func legacyParams(r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		return r.URL.Query(), nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		vals := r.URL.Query()
		if len(bytes.TrimSpace(body)) == 0 {
			return vals, nil
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("the body is not a JSON object: %v", err)
		}
		for k, v := range obj {
			switch v := v.(type) {
			case string:
				vals.Set(k, v)
			case json.Number: // CRMs send phone numbers as JSON numbers
				vals.Set(k, v.String())
			case nil:
			default:
				return nil, fmt.Errorf("parameter %s must be a string or a number", k)
			}
		}
		return vals, nil
	case "multipart/form-data":
		if err := r.ParseMultipartForm(MaxBodyBytes); err != nil {
			return nil, err
		}
		return r.Form, nil
	default:
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.Form, nil
	}
}

// legacyAuth reads a carrier-compatible request's parameters and
// authenticates its username and password (an API key of the account so
// named), then admits the account (not suspended, allowed address). It
// answers the error and returns false when any of that fails.
func (h *handler) legacyAuth(w http.ResponseWriter, r *http.Request, required ...string) (url.Values, *Principal, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeLegacyError(w, http.StatusMethodNotAllowed, ReasonMethodNotAllowed, "use GET or POST")
		return nil, nil, false
	}
	params, err := legacyParams(r)
	if err != nil {
		if bodyTooLarge(r) {
			writeLegacyError(w, http.StatusRequestEntityTooLarge, ReasonRequestTooLarge, msgTooLarge)
			return nil, nil, false
		}
		writeLegacyError(w, http.StatusBadRequest, ReasonInvalidArgument, "cannot read the parameters: "+err.Error())
		return nil, nil, false
	}
	if !params.Has("second_num") && params.Has("secd_num") {
		params.Set("second_num", params.Get("secd_num"))
	}
	for _, name := range append([]string{"username", "password"}, required...) {
		if strings.TrimSpace(params.Get(name)) == "" {
			writeLegacyError(w, http.StatusBadRequest, ReasonMissingParameter, "missing parameter: "+name)
			return nil, nil, false
		}
	}
	p, err := h.store.Authenticate(r.Context(), params.Get("password"))
	if err == nil && !strings.EqualFold(p.AccountName, strings.TrimSpace(params.Get("username"))) {
		err = ErrUnauthenticated
	}
	if err != nil {
		if e, ok := asError(err); ok && e.Code == codes.Unauthenticated {
			writeLegacyError(w, http.StatusUnauthorized, ReasonInvalidCredentials, "invalid username or password")
			return nil, nil, false
		}
		d := h.authError(r, err)
		writeLegacyError(w, d.HTTPStatus, d.Code, d.Message)
		return nil, nil, false
	}
	if d, ok := h.admit(r, p); !ok {
		writeLegacyError(w, d.HTTPStatus, d.Code, d.Message)
		return nil, nil, false
	}
	return params, p, true
}

// clickToDial serves the carrier-compatible endpoint (see above).
func (h *handler) clickToDial(w http.ResponseWriter, r *http.Request) {
	params, p, ok := h.legacyAuth(w, r, "first_num", "second_num")
	if !ok {
		return
	}
	ctx := r.Context()
	log := logging.WithAccount(h.log, p.AccountID)

	ctx = metadata.NewOutgoingContext(ctx, metadata.Pairs(
		AccountHeader, p.AccountID,
		CallSourceHeader, originationv1.CallSource_CALL_SOURCE_CLICK_TO_DIAL_LEGACY.String()))
	eps := &endpointIndex{client: h.endpoints}
	first, err := eps.party(ctx, "first_num", params.Get("first_num"))
	if err != nil {
		h.legacyFailure(w, r, log, err)
		return
	}
	second, err := eps.party(ctx, "second_num", params.Get("second_num"))
	if err != nil {
		h.legacyFailure(w, r, log, err)
		return
	}
	resp, err := h.calls.CreateCall(ctx, &originationv1.CreateCallRequest{First: first, Second: second})
	if err != nil {
		h.legacyFailure(w, r, log, err)
		return
	}
	log.Info("clickToDial call accepted", logging.CallID(resp.GetCall().GetId()))
	writeLegacy(w, http.StatusOK, LegacyResponse{Status: "OK", Message: "call accepted", CallID: resp.GetCall().GetId()})
}

func (h *handler) legacyFailure(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	d, internal := errorDetail(err)
	if internal {
		log.Error("clickToDial failed", "path", r.URL.Path, "code", d.Code, logging.Err(err))
	}
	writeLegacyError(w, d.HTTPStatus, d.Code, d.Message)
}

// endpointIndex resolves clickToDial's first_num and second_num, which the
// carrier lets name the agent's phone instead of a number. The account's
// endpoints are listed once per request, on first need.
type endpointIndex struct {
	client originationv1.EndpointServiceClient
	loaded bool
	list   []*originationv1.Endpoint
}

// maxLegacyEndpointPages bounds the listing (500 endpoints a page).
const maxLegacyEndpointPages = 20

func (x *endpointIndex) load(ctx context.Context) error {
	if x.loaded {
		return nil
	}
	token := ""
	for range maxLegacyEndpointPages {
		resp, err := x.client.ListEndpoints(ctx, &originationv1.ListEndpointsRequest{PageSize: 500, PageToken: token})
		if status.Code(err) == codes.Unimplemented {
			break // no endpoint service: numbers only
		}
		if err != nil {
			return err
		}
		x.list = append(x.list, resp.GetEndpoints()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	x.loaded = true
	return nil
}

// party turns a clickToDial value into a PartySpec: one of the account's
// endpoints if the value names one (so one-call-per-endpoint applies, as
// with the carrier), else a phone number.
func (x *endpointIndex) party(ctx context.Context, field, v string) (*originationv1.PartySpec, error) {
	v = strings.TrimSpace(v)
	number, isNumber := phone.Lenient(v)
	if err := x.load(ctx); err != nil {
		return nil, err
	}
	match := func(ok func(*originationv1.Endpoint) bool) *originationv1.Endpoint {
		for _, e := range x.list {
			if ok(e) {
				return e
			}
		}
		return nil
	}
	ep := match(func(e *originationv1.Endpoint) bool { return e.GetId() == v })
	if ep == nil {
		ep = match(func(e *originationv1.Endpoint) bool { return strings.EqualFold(e.GetAddress(), v) })
	}
	if ep == nil && isNumber {
		ep = match(func(e *originationv1.Endpoint) bool {
			n, ok := phone.Lenient(e.GetAddress())
			return ok && n == number && e.GetKind() == originationv1.EndpointKind_ENDPOINT_KIND_EXTERNAL_NUMBER
		})
	}
	if ep == nil {
		ep = match(func(e *originationv1.Endpoint) bool { return strings.EqualFold(e.GetName(), v) })
	}
	switch {
	case ep != nil:
		return &originationv1.PartySpec{Target: &originationv1.PartySpec_EndpointId{EndpointId: ep.GetId()}}, nil
	case isNumber:
		return &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: number}}, nil
	}
	return nil, newError(codes.InvalidArgument, ReasonInvalidNumber,
		fmt.Sprintf("%s %q is neither a phone number (7-15 digits) nor one of the account's endpoints", field, v))
}
