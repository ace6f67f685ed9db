package gateway

import (
	"encoding/json"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/proto/gen/openapi"
)

// The contract: POST /v1/calls with the README's body answers 200 with the
// call at .call.id, and GET /v1/calls/{id} shows .call.status.
func TestCreateAndGetCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, key := e.newAccount(t, "calls-co")

	r := e.do(t, req{method: "POST", path: "/v1/calls", key: key,
		body: `{"first":{"number":"+15551230001"},"second":{"number":"+15551230002"}}`})
	if r.status != http.StatusOK {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	callID := r.str(t, "call.id")
	if callID == "" || r.str(t, "call.status") != "CALL_STATUS_QUEUED" || r.str(t, "call.accountId") != id {
		t.Fatalf("create: %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}

	got := e.fake.last(t, "CreateCall")
	cr := got.req.(*originationv1.CreateCallRequest)
	if cr.GetFirst().GetNumber() != "+15551230001" || cr.GetSecond().GetNumber() != "+15551230002" {
		t.Fatalf("CreateCall got %v", cr)
	}
	if v := got.md.Get(AccountHeader); len(v) != 1 || v[0] != id {
		t.Fatalf("%s = %v, want [%s]", AccountHeader, v, id)
	}
	if v := got.md.Get(CallSourceHeader); len(v) != 1 || v[0] != "CALL_SOURCE_API" {
		t.Fatalf("%s = %v", CallSourceHeader, v)
	}
	if v := got.md.Get("authorization"); len(v) != 0 {
		t.Fatalf("the API key reached origination: %v", v)
	}

	g := e.do(t, req{method: "GET", path: "/v1/calls/" + callID, key: key})
	if g.status != 200 || g.str(t, "call.id") != callID || g.str(t, "call.status") != "CALL_STATUS_COMPLETED" {
		t.Fatalf("get: %d %s", g.status, g.body)
	}
	// EmitUnpopulated is off: unset fields are absent, not null.
	if strings.Contains(string(g.body), "null") || strings.Contains(string(g.body), "failureReason") {
		t.Fatalf("get body has unpopulated fields: %s", g.body)
	}

	t.Run("proto field names accepted", func(t *testing.T) {
		t.Parallel()
		r := e.do(t, req{method: "POST", path: "/v1/calls", key: key,
			body: `{"first":{"number":"+15551230003","ring_timeout_ms":20000},"second":{"number":"+15551230004"},"max_duration_s":60}`})
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("unknown field refused", func(t *testing.T) {
		t.Parallel()
		e.do(t, req{method: "POST", path: "/v1/calls", key: key, body: `{"frist":{"number":"+15551230001"}}`}).
			wantError(t, 400, "INVALID_ARGUMENT")
	})
	t.Run("other account's call is not found", func(t *testing.T) {
		t.Parallel()
		_, other := e.newAccount(t, "other-calls-co")
		e.do(t, req{method: "GET", path: "/v1/calls/" + callID, key: other}).wantError(t, 404, "CALL_NOT_FOUND")
	})
}

// A client cannot choose the account (or call source) origination sees:
// Grpc-Metadata-* headers are dropped and the gateway's values are the only ones.
func TestSpoofedMetadataIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	idA, keyA := e.newAccount(t, "honest-co")
	idB, _ := e.newAccount(t, "victim-co")

	for _, h := range []map[string]string{
		{"Grpc-Metadata-Ringback-Account-Id": idB},
		{"Grpc-Metadata-ringback-account-id": idB, "Grpc-Metadata-Ringback-Call-Source": "CALL_SOURCE_DIALER"},
		{"Ringback-Account-Id": idB},
		{"Grpc-Metadata-Authorization": "Bearer x", "Grpc-Metadata-X-Forwarded-For": "10.1.1.1"},
	} {
		r := e.do(t, req{method: "POST", path: "/v1/calls", key: keyA, header: h,
			body: `{"first":{"number":"+15551230001"},"second":{"number":"+15551230002"}}`})
		if r.status != 200 || r.str(t, "call.accountId") != idA {
			t.Fatalf("headers %v: %d %s", h, r.status, r.body)
		}
		got := e.fake.last(t, "CreateCall")
		if v := got.md.Get(AccountHeader); len(v) != 1 || v[0] != idA {
			t.Fatalf("headers %v: origination saw account %v, want only %s", h, v, idA)
		}
		if v := got.md.Get(CallSourceHeader); len(v) != 1 || v[0] != "CALL_SOURCE_API" {
			t.Fatalf("headers %v: call source %v", h, v)
		}
		for k := range got.md {
			if strings.HasPrefix(k, "grpc-metadata") || k == "authorization" {
				t.Fatalf("headers %v: metadata %q reached origination", h, k)
			}
		}
	}
	if n := len(e.fake.callsFor(idB)); n != 0 {
		t.Fatalf("%d calls were placed for the victim", n)
	}
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, key := e.newAccount(t, "errors-co")
	for _, tc := range []struct {
		id     string
		status int
		code   string
		hidden string // text of the backend's message the client must not see
	}{
		{"err-invalid", 400, "INVALID_ARGUMENT", ""},
		{"err-notfound", 404, "CALL_NOT_FOUND", ""},
		{"err-busy", 409, "ENDPOINT_BUSY", ""},
		{"err-precondition", 409, "FAILED_PRECONDITION", ""},
		{"err-exists", 409, "ALREADY_EXISTS", ""},
		{"err-exhausted", 429, "RATE_LIMITED", ""},
		{"err-unauth", 401, "UNAUTHENTICATED", ""},
		{"err-permission", 403, "PERMISSION_DENIED", ""},
		{"err-unavailable", 503, "UNAVAILABLE", "10.9.8.7"},
		{"err-deadline", 504, "DEADLINE_EXCEEDED", ""},
		{"err-internal", 500, "INTERNAL", "engine.go"},
		{"err-unimplemented", 501, "UNIMPLEMENTED", ""},
	} {
		t.Run(tc.id, func(t *testing.T) {
			t.Parallel()
			r := e.do(t, req{method: "GET", path: "/v1/calls/" + tc.id, key: key})
			r.wantError(t, tc.status, tc.code)
			if tc.hidden != "" && strings.Contains(string(r.body), tc.hidden) {
				t.Fatalf("internal detail leaked: %s", r.body)
			}
			if r.header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Fatalf("content type %q", r.header.Get("Content-Type"))
			}
		})
	}

	t.Run("shape", func(t *testing.T) {
		t.Parallel()
		r := e.do(t, req{method: "GET", path: "/v1/calls/err-busy", key: key})
		var v map[string]map[string]any
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"code": "ENDPOINT_BUSY", "message": "endpoint is in another call", "http_status": float64(409)}
		if len(v) != 1 || len(v["error"]) != len(want) {
			t.Fatalf("body %s", r.body)
		}
		for k, w := range want {
			if v["error"][k] != w {
				t.Fatalf("error.%s = %v, want %v (%s)", k, v["error"][k], w, r.body)
			}
		}
	})
	t.Run("unknown route", func(t *testing.T) {
		t.Parallel()
		e.do(t, req{method: "GET", path: "/v1/nothing-here", key: key}).wantError(t, 404, ReasonNotFound)
		e.do(t, req{method: "GET", path: "/v2/calls"}).wantError(t, 404, ReasonNotFound)
		e.do(t, req{method: "DELETE", path: "/v1/calls", key: key}).wantError(t, 405, ReasonMethodNotAllowed)
	})
	t.Run("body too large", func(t *testing.T) {
		t.Parallel()
		big := `{"first":{"number":"+15551230001"},"announcement":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
		e.do(t, req{method: "POST", path: "/v1/calls", key: key, body: big}).wantError(t, 413, ReasonRequestTooLarge)
	})
	t.Run("body too large, length unknown", func(t *testing.T) {
		t.Parallel()
		big := `{"first":{"number":"+15551230001"},"announcement":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
		for _, path := range []string{"/v1/calls", "/clickToDial.php"} {
			hr := httptest.NewRequest("POST", path, io.NopCloser(strings.NewReader(big)))
			hr.ContentLength = -1 // chunked: only reading finds out
			hr.Header.Set("Content-Type", "application/json")
			hr.Header.Set("Authorization", "Bearer "+key)
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, hr)
			if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), ReasonRequestTooLarge) {
				t.Fatalf("%s: %d %s", path, w.Code, w.Body)
			}
		}
	})
	t.Run("malformed JSON", func(t *testing.T) {
		t.Parallel()
		e.do(t, req{method: "POST", path: "/v1/calls", key: key, body: `{"first":`}).wantError(t, 400, "INVALID_ARGUMENT")
	})
	t.Run("missing key has WWW-Authenticate", func(t *testing.T) {
		t.Parallel()
		r := e.do(t, req{method: "GET", path: "/v1/calls/x"})
		r.wantError(t, 401, ReasonUnauthenticated)
		if r.header.Get("WWW-Authenticate") == "" {
			t.Fatal("no WWW-Authenticate")
		}
	})
}

func TestIPAllowlist(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // trusts proxies in 10.0.0.0/8
	_, open := e.newAccount(t, "open-co")
	_, v4 := e.newAccount(t, "v4-co", "203.0.113.0/24")
	_, v6 := e.newAccount(t, "v6-co", "2001:db8::/32", "198.51.100.7")
	for _, tc := range []struct {
		name   string
		key    string
		remote string
		xff    string
		ok     bool
	}{
		{"empty allowlist, any address", open, "192.0.2.1:1234", "", true},
		{"allowed peer", v4, "203.0.113.9:5000", "", true},
		{"denied peer", v4, "192.0.2.1:1234", "", false},
		{"IPv4-mapped peer", v4, "[::ffff:203.0.113.9]:5000", "", true},
		{"bare address entry", v6, "198.51.100.7:1", "", true},
		{"IPv6 peer", v6, "[2001:db8::5]:443", "", true},
		{"IPv6 denied", v6, "[2001:db9::5]:443", "", false},
		{"trusted proxy, allowed client", v4, "10.1.2.3:80", "203.0.113.50", true},
		{"trusted proxy, denied client", v4, "10.1.2.3:80", "192.0.2.1", false},
		{"trusted proxy chain", v4, "10.1.2.3:80", "203.0.113.50, 10.9.9.9", true},
		{"spoofed left of the real client", v4, "10.1.2.3:80", "203.0.113.50, 192.0.2.1", false},
		{"untrusted peer's XFF ignored", v4, "192.0.2.1:1234", "203.0.113.50", false},
		{"untrusted peer cannot unlock with XFF", v4, "198.51.100.1:1", "203.0.113.1", false},
		{"allowed peer, XFF irrelevant", v4, "203.0.113.9:5000", "192.0.2.1", true},
		{"garbage XFF from trusted proxy", v4, "10.1.2.3:80", "not-an-ip", false},
		{"garbage XFF, empty allowlist", open, "10.1.2.3:80", "not-an-ip", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := map[string]string{}
			if tc.xff != "" {
				h["X-Forwarded-For"] = tc.xff
			}
			r := e.do(t, req{method: "GET", path: "/v1/accounts/me", key: tc.key, remote: tc.remote, header: h})
			if tc.ok {
				if r.status != 200 {
					t.Fatalf("%d %s", r.status, r.body)
				}
				return
			}
			r.wantError(t, 403, ReasonIPNotAllowed)
		})
	}

	t.Run("own allowlist change applies at once", func(t *testing.T) {
		t.Parallel()
		_, key := e.newAccount(t, "self-lock-co")
		r := e.do(t, req{method: "PATCH", path: "/v1/accounts/me", key: key, body: `{"ipAllowlist":["198.51.100.0/24"]}`})
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		e.do(t, req{method: "GET", path: "/v1/accounts/me", key: key}).wantError(t, 403, ReasonIPNotAllowed)
		if r := e.do(t, req{method: "GET", path: "/v1/accounts/me", key: key, remote: "198.51.100.20:1"}); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("operator is not bound by allowlists", func(t *testing.T) {
		t.Parallel()
		if r := e.do(t, req{method: "GET", path: "/v1/accounts", key: testOperatorToken, remote: "192.0.2.99:1"}); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

func TestPublicEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Run("openapi", func(t *testing.T) {
		t.Parallel()
		r := e.do(t, req{method: "GET", path: "/v1/openapi.json"})
		if r.status != 200 || r.header.Get("Content-Type") != "application/json" || string(r.body) != string(openapi.JSON) {
			t.Fatalf("%d %q", r.status, r.header.Get("Content-Type"))
		}
		if r.path(t, "swagger") != "2.0" || r.path(t, "paths") == nil {
			t.Fatal("not the OpenAPI document")
		}
	})
	t.Run("healthz", func(t *testing.T) {
		t.Parallel()
		if r := e.do(t, req{method: "GET", path: "/healthz"}); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

func TestBillingAccountPath(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/v1/accounts/a1/billing":              "a1",
		"/v1/accounts/a1/billing:topUp":        "a1",
		"/v1/accounts/a1/billing/transactions": "a1",
		"/v1/accounts/a1":                      "",
		"/v1/accounts/a1/api-keys":             "",
		"/v1/accounts":                         "",
		"/v1/calls/a1/billing":                 "",
	} {
		got, ok := billingAccount(path)
		if got != want || ok != (want != "") {
			t.Errorf("billingAccount(%q) = %q, %v; want %q", path, got, ok, want)
		}
	}
}

func TestRatingRefusalsAre422(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{"DESTINATION_NOT_SUPPORTED", "BLOCKED_DESTINATION", "INSUFFICIENT_BALANCE"} {
		st, _ := status.New(codes.FailedPrecondition, "no").WithDetails(&errdetails.ErrorInfo{Reason: reason})
		if d, _ := errorDetail(st.Err()); d.HTTPStatus != http.StatusUnprocessableEntity || d.Code != reason {
			t.Errorf("%s: %+v", reason, d)
		}
	}
	for path, want := range map[string]bool{"/v1/tariffs": true, "/v1/tariffs/x/rates": true, "/v1/blocked-prefixes/34": true,
		"/v1/directions/+34911234567": true, "/v1/accounts/x/billing": true, "/v1/calls": false, "/v1/rates/+1": false, "/v1/tariffsx": false} {
		if operatorPath(path) != want {
			t.Errorf("operatorPath(%q) = %v", path, !want)
		}
	}
}
