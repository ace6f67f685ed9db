package gateway

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
)

func legacyQuery(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

func TestLegacyClickToDial(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, key := e.newAccount(t, "crm-co")
	_, keyLocked := e.newAccount(t, "locked-co", "203.0.113.0/24")
	_, otherKey := e.newAccount(t, "other-co")
	e.fake.mu.Lock()
	e.fake.endpoints[id] = []*originationv1.Endpoint{
		{Id: "0b7b6c1e-0000-4000-8000-000000000001", AccountId: id, Name: "Agent Maria", Kind: originationv1.EndpointKind_ENDPOINT_KIND_REGISTERED_USER, Address: "1001"},
		{Id: "0b7b6c1e-0000-4000-8000-000000000002", AccountId: id, Name: "Mobile", Kind: originationv1.EndpointKind_ENDPOINT_KIND_EXTERNAL_NUMBER, Address: "+5215512345678"},
	}
	e.fake.mu.Unlock()

	good := legacyQuery("username", "crm-co", "password", key, "first_num", "+15551230001", "second_num", "+15551230002")
	type party struct{ number, endpoint string }
	for _, tc := range []struct {
		name        string
		method      string
		path        string
		body        string
		contentType string
		remote      string
		status      int
		code        string
		first       party
		second      party
	}{
		{name: "GET", method: "GET", path: "/clickToDial.php?" + good, status: 200,
			first: party{number: "+15551230001"}, second: party{number: "+15551230002"}},
		{name: "GET second path", method: "GET", path: "/Welcome/ClickToDialExtenal?" + good, status: 200,
			first: party{number: "+15551230001"}, second: party{number: "+15551230002"}},
		{name: "POST form", method: "POST", path: "/clickToDial.php", body: good, contentType: "application/x-www-form-urlencoded", status: 200,
			first: party{number: "+15551230001"}, second: party{number: "+15551230002"}},
		{name: "POST JSON with numbers as numbers", method: "POST", path: "/Welcome/ClickToDialExtenal",
			body: `{"username":"crm-co","password":"` + key + `","first_num":15551230005,"second_num":"+1 (555) 123-0006"}`, status: 200,
			first: party{number: "+15551230005"}, second: party{number: "+15551230006"}},
		{name: "POST with credentials in the query", method: "POST", path: "/clickToDial.php?" + legacyQuery("username", "crm-co", "password", key),
			body: legacyQuery("first_num", "0052 55 1234 0000", "second_num", "15551230002"), contentType: "application/x-www-form-urlencoded", status: 200,
			first: party{number: "+525512340000"}, second: party{number: "+15551230002"}},
		{name: "agent first by extension, manual's secd_num", method: "GET", status: 200,
			path:  "/clickToDial.php?" + legacyQuery("username", "CRM-CO", "password", key, "first_num", "1001", "secd_num", "+15551230002"),
			first: party{endpoint: "0b7b6c1e-0000-4000-8000-000000000001"}, second: party{number: "+15551230002"}},
		{name: "prospect first, agent by name", method: "GET", status: 200,
			path:  "/clickToDial.php?" + legacyQuery("username", "crm-co", "password", key, "first_num", "+15551230001", "second_num", "agent maria"),
			first: party{number: "+15551230001"}, second: party{endpoint: "0b7b6c1e-0000-4000-8000-000000000001"}},
		{name: "endpoint by its number", method: "GET", status: 200,
			path:  "/clickToDial.php?" + legacyQuery("username", "crm-co", "password", key, "first_num", "5215512345678", "second_num", "+15551230002"),
			first: party{endpoint: "0b7b6c1e-0000-4000-8000-000000000002"}, second: party{number: "+15551230002"}},

		{name: "wrong password", method: "GET", status: 401, code: ReasonInvalidCredentials,
			path: "/clickToDial.php?" + legacyQuery("username", "crm-co", "password", "rb_aaaaaaaa_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "first_num", "+15551230001", "second_num", "+15551230002")},
		{name: "another account's key", method: "POST", status: 401, code: ReasonInvalidCredentials, path: "/clickToDial.php", contentType: "application/x-www-form-urlencoded",
			body: legacyQuery("username", "crm-co", "password", otherKey, "first_num", "+15551230001", "second_num", "+15551230002")},
		{name: "operator token is no password", method: "GET", status: 401, code: ReasonInvalidCredentials,
			path: "/clickToDial.php?" + legacyQuery("username", "crm-co", "password", testOperatorToken, "first_num", "+15551230001", "second_num", "+15551230002")},
		{name: "missing second_num", method: "GET", status: 400, code: ReasonMissingParameter,
			path: "/clickToDial.php?" + legacyQuery("username", "crm-co", "password", key, "first_num", "+15551230001")},
		{name: "missing password", method: "GET", status: 400, code: ReasonMissingParameter,
			path: "/clickToDial.php?" + legacyQuery("username", "crm-co", "first_num", "+15551230001", "second_num", "+15551230002")},
		{name: "malformed number", method: "GET", status: 400, code: ReasonInvalidNumber,
			path: "/clickToDial.php?" + legacyQuery("username", "crm-co", "password", key, "first_num", "55-abc", "second_num", "+15551230002")},
		{name: "too short", method: "GET", status: 400, code: ReasonInvalidNumber,
			path: "/clickToDial.php?" + legacyQuery("username", "crm-co", "password", key, "first_num", "+15551230001", "second_num", "123")},
		{name: "malformed JSON", method: "POST", path: "/clickToDial.php", body: `{"username":`, contentType: "application/json", status: 400, code: ReasonInvalidArgument},
		{name: "IP not allowed", method: "GET", status: 403, code: ReasonIPNotAllowed,
			path: "/clickToDial.php?" + legacyQuery("username", "locked-co", "password", keyLocked, "first_num", "+15551230001", "second_num", "+15551230002")},
		{name: "IP allowed", method: "GET", status: 200, remote: "203.0.113.4:5555",
			path:  "/clickToDial.php?" + legacyQuery("username", "locked-co", "password", keyLocked, "first_num", "+15551230001", "second_num", "+15551230002"),
			first: party{number: "+15551230001"}, second: party{number: "+15551230002"}},
		{name: "endpoint busy", method: "GET", status: 409, code: "ENDPOINT_BUSY",
			path: "/clickToDial.php?" + legacyQuery("username", "crm-co", "password", key, "first_num", busyNumber, "second_num", "+15551230002")},
		{name: "PUT", method: "PUT", path: "/clickToDial.php?" + good, status: 405, code: ReasonMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := e.do(t, req{method: tc.method, path: tc.path, body: tc.body, contentType: tc.contentType, remote: tc.remote})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Fatalf("content type %q", ct)
			}
			var body LegacyResponse
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("%v: %s", err, r.body)
			}
			if tc.status != http.StatusOK {
				if body.Status != "ERROR" || body.Code != tc.code || body.Message == "" || body.CallID != "" {
					t.Fatalf("body %s, want ERROR %s", r.body, tc.code)
				}
				return
			}
			if body.Status != "OK" || body.CallID == "" || body.Code != "" {
				t.Fatalf("body %s", r.body)
			}
			got := e.fake.created(t, body.CallID)
			cr := got.req.(*originationv1.CreateCallRequest)
			check := func(role string, p *originationv1.PartySpec, want party) {
				if p.GetNumber() != want.number || p.GetEndpointId() != want.endpoint {
					t.Errorf("%s party %v, want %+v", role, p, want)
				}
			}
			check("first", cr.GetFirst(), tc.first)
			check("second", cr.GetSecond(), tc.second)
			if v := got.md.Get(CallSourceHeader); len(v) != 1 || v[0] != "CALL_SOURCE_CLICK_TO_DIAL_LEGACY" {
				t.Errorf("call source %v", v)
			}
			if v := got.md.Get(AccountHeader); len(v) != 1 || v[0] == "" {
				t.Errorf("account %v", v)
			}
		})
	}
}
