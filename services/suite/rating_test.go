package suite

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
)

// simOriginates reads how many originates the simulator has seen.
func (e *e2e) simOriginates(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(e.info.SimControlURL + "/counters")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	n, _ := c["originates"].(float64)
	return int(n)
}

// raw sends a request with a raw body and returns the status, the
// Content-Type and the body.
func (e *e2e) raw(t *testing.T, method, path, key, contentType string, body io.Reader) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.info.HTTPURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func TestEndToEndRating(t *testing.T) {
	e := start(t)

	t.Run("no rate: 422 and nothing reaches the switch (the contract)", func(t *testing.T) {
		before := e.simOriginates(t)
		for _, body := range []string{
			`{"first":{"number":"+8801712345678"},"second":{"number":"+15551230002"}}`,
			`{"first":{"number":"+15551230001"},"second":{"number":"+8801712345678"}}`,
		} {
			code, out := e.do(t, "POST", "/v1/calls", e.key, body)
			if code != 422 || !strings.Contains(dig(out, "error", "code"), "DESTINATION_NOT_SUPPORTED") {
				t.Fatalf("POST /v1/calls %s: %d %v", body, code, out)
			}
		}
		q := url.Values{"username": {"e2e"}, "password": {e.key}, "first_num": {"8801712345678"}, "second_num": {"15551230002"}}
		resp, err := http.Get(e.info.HTTPURL + "/clickToDial.php?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var legacy map[string]any
		json.NewDecoder(resp.Body).Decode(&legacy)
		resp.Body.Close()
		if resp.StatusCode != 422 || dig(legacy, "status") != "ERROR" || dig(legacy, "code") != "DESTINATION_NOT_SUPPORTED" {
			t.Fatalf("clickToDial to +88: %d %v", resp.StatusCode, legacy)
		}
		if after := e.simOriginates(t); after != before {
			t.Fatalf("refused calls reached the switch: %d originates, was %d", after, before)
		}
	})

	t.Run("rate and Direction lookup", func(t *testing.T) {
		code, out := e.do(t, "GET", "/v1/rates/+34911234567", e.key, "")
		if code != 200 || dig(out, "rate", "destination") != "Spain" || dig(out, "direction", "country") != "ES" ||
			dig(out, "rate", "ratePerMinuteMicros") != "15000" || dig(out, "number") != "+34911234567" {
			t.Fatalf("GET /v1/rates: %d %v", code, out)
		}
		code, out = e.do(t, "GET", "/v1/rates/+8801712345678", e.key, "")
		if code != 422 || dig(out, "error", "code") != "DESTINATION_NOT_SUPPORTED" {
			t.Fatalf("GET /v1/rates for +88: %d %v", code, out)
		}
		code, out = e.do(t, "GET", "/v1/directions/+447400123456", e.key, "")
		if code != 200 || dig(out, "direction", "country") != "GB" || dig(out, "direction", "lineType") != "LINE_TYPE_MOBILE" {
			t.Fatalf("GET /v1/directions: %d %v", code, out)
		}
		code, out = e.do(t, "GET", "/v1/accounts/"+e.info.DevAccountID+"/billing", e.key, "")
		if code != 200 || dig(out, "billing", "tariffId") != e.info.DevTariffID || dig(out, "billing", "mode") != "BILLING_MODE_POSTPAID" {
			t.Fatalf("dev account billing: %d %v", code, out)
		}
	})

	t.Run("tariffs are the operator's", func(t *testing.T) {
		if code, out := e.do(t, "POST", "/v1/tariffs", e.key, `{"name":"mine","currency":"USD"}`); code != 403 {
			t.Fatalf("account creating a tariff: %d %v", code, out)
		}
		if code, _, _ := e.raw(t, "POST", "/v1/tariffs/"+e.info.DevTariffID+"/rates:import", e.key, "text/csv", strings.NewReader("prefix,destination,rate_per_minute\n88,x,1\n")); code != 403 {
			t.Fatalf("account importing rates: %d", code)
		}
	})

	// A new prepaid account on a tariff loaded over REST from the example
	// file, plus a rate for +88.
	code, out := e.do(t, "POST", "/v1/tariffs", operatorToken, `{"name":"e2e prepaid","currency":"USD"}`)
	if code != 200 {
		t.Fatalf("create tariff: %d %v", code, out)
	}
	tariff := dig(out, "tariff", "id")
	t.Run("import with bad rows changes nothing and lists them", func(t *testing.T) {
		bad := "prefix,destination,rate_per_minute,connection_fee\n1,US,0.01,0\n1x,US,0.01,0\n44,UK,abc,0\n"
		code, ct, body := e.raw(t, "POST", "/v1/tariffs/"+tariff+"/rates:import", operatorToken, "text/csv", strings.NewReader(bad))
		var res struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
			RowErrors []struct {
				Line   int    `json:"line"`
				Reason string `json:"reason"`
			} `json:"rowErrors"`
			ErrorCount int `json:"errorCount"`
		}
		if err := json.Unmarshal(body, &res); err != nil || code != 422 || !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("bad import: %d %s %s", code, ct, body)
		}
		if res.Error.Code != "INVALID_RATES" || res.ErrorCount != 2 || len(res.RowErrors) != 2 || res.RowErrors[0].Line != 3 || res.RowErrors[1].Line != 4 {
			t.Fatalf("bad import answer: %s", body)
		}
		if code, out := e.do(t, "GET", "/v1/tariffs/"+tariff, operatorToken, ""); code != 200 || dig(out, "tariff", "rateCount") != "" {
			t.Fatalf("tariff after a failed import: %d %v", code, out)
		}
	})
	example, err := os.ReadFile("../../docs/examples/tariff.csv")
	if err != nil {
		t.Fatal(err)
	}
	deck := string(example) + "880,Bangladesh,0.05,0.02,60,60,\n"
	code, _, body := e.raw(t, "POST", "/v1/tariffs/"+tariff+"/rates:import", operatorToken, "text/csv", strings.NewReader(deck))
	if code != 200 || !strings.Contains(string(body), `"imported":"28"`) {
		t.Fatalf("import: %d %s", code, body)
	}
	code, ct, exported := e.raw(t, "GET", "/v1/tariffs/"+tariff+"/rates:export", operatorToken, "", nil)
	if code != 200 || !strings.HasPrefix(ct, "text/csv") || strings.Count(string(exported), "\n") != 29 || !strings.Contains(string(exported), "880,Bangladesh,0.05,0.02,60,60,") {
		t.Fatalf("export: %d %s\n%s", code, ct, exported)
	}
	code, acct := e.do(t, "POST", "/v1/accounts", operatorToken, `{"name":"e2e-prepaid"}`)
	if code != 200 {
		t.Fatalf("create account: %d %v", code, acct)
	}
	acctID := dig(acct, "account", "id")
	code, k := e.do(t, "POST", "/v1/accounts/"+acctID+"/api-keys", operatorToken, `{"name":"test"}`)
	if code != 200 {
		t.Fatalf("create key: %d %v", code, k)
	}
	key := dig(k, "secret")
	if code, out := e.do(t, "PATCH", "/v1/accounts/"+acctID+"/billing", operatorToken, `{"tariffId":"`+tariff+`","mode":"BILLING_MODE_PREPAID"}`); code != 200 || dig(out, "billing", "currency") != "USD" {
		t.Fatalf("assign tariff: %d %v", code, out)
	}

	t.Run("prepaid without balance: 422 INSUFFICIENT_BALANCE", func(t *testing.T) {
		code, out := e.do(t, "POST", "/v1/calls", key, `{"first":{"number":"+8801712345678"},"second":{"number":"+15551230002"}}`)
		if code != 422 || dig(out, "error", "code") != "INSUFFICIENT_BALANCE" {
			t.Fatalf("call without balance: %d %v", code, out)
		}
	})

	t.Run("a rated call is charged what its legs cost", func(t *testing.T) {
		if code, out := e.do(t, "POST", "/v1/accounts/"+acctID+"/billing:topUp", operatorToken, `{"amountMicros":"5000000","reference":"pay-1"}`); code != 200 || dig(out, "billing", "balanceMicros") != "5000000" {
			t.Fatalf("top up: %d %v", code, out)
		}
		code, out := e.do(t, "POST", "/v1/calls", key, `{"first":{"number":"+8801712340001"},"second":{"number":"+15551230002"}}`)
		if code != 200 {
			t.Fatalf("call: %d %v", code, out)
		}
		id := dig(out, "call", "id")
		if dig(out, "call", "first", "rate", "destination") != "Bangladesh" || dig(out, "call", "first", "rate", "prefix") != "880" ||
			dig(out, "call", "first", "direction", "country") != "BD" || dig(out, "call", "first", "maxDurationS") == "" {
			t.Fatalf("created call carries no rating: %v", out["call"])
		}
		e.eventTypes(t, id) // until the final event is in
		if code, out := e.do(t, "GET", "/v1/calls/"+id, key, ""); code != 200 || dig(out, "call", "status") != "CALL_STATUS_COMPLETED" {
			t.Fatalf("call: %d %v", code, out)
		}
		e.mu.Lock()
		evs := append([]*eventsv1.CallEvent(nil), e.events[id]...)
		e.mu.Unlock()
		var cost int64
		hangups := 0
		for _, ev := range evs {
			if ev.GetType() != eventsv1.EventType_EVENT_TYPE_LEG_HANGUP {
				continue
			}
			hangups++
			leg := ev.GetCall().GetFirst()
			if ev.GetLeg().String() == "LEG_ROLE_SECOND" {
				leg = ev.GetCall().GetSecond()
			}
			if leg.GetRate() == nil || leg.GetDirection() == nil {
				t.Fatalf("LEG_HANGUP without rate or Direction: %v", leg)
			}
			if leg.GetAnsweredAt() != nil && (leg.GetBillsec() == 0 || leg.GetCostMicros() == 0) {
				t.Fatalf("answered leg without billsec or cost: %v", leg)
			}
			cost += leg.GetCostMicros()
		}
		// Both legs answered: +880 bills a minute (60/60) plus its fee, +1 its 6 s.
		if hangups != 2 || cost < 50_000+20_000 {
			t.Fatalf("%d hangups costing %d", hangups, cost)
		}
		want := strconv.FormatInt(5_000_000-cost, 10)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, out := e.do(t, "GET", "/v1/accounts/"+acctID+"/billing", key, "")
			if dig(out, "billing", "balanceMicros") == want && dig(out, "billing", "reservedMicros") == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("balance %v, want %s and nothing reserved", out, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, tx := e.do(t, "GET", "/v1/accounts/"+acctID+"/billing/transactions", key, "")
		if list, _ := tx["transactions"].([]any); len(list) != 3 {
			t.Fatalf("ledger: %v", tx)
		}
	})

	t.Run("a leg is cut when the time paid for runs out", func(t *testing.T) {
		code, a := e.do(t, "POST", "/v1/accounts", operatorToken, `{"name":"e2e-tight"}`)
		if code != 200 {
			t.Fatalf("create account: %d %v", code, a)
		}
		id := dig(a, "account", "id")
		_, k := e.do(t, "POST", "/v1/accounts/"+id+"/api-keys", operatorToken, `{"name":"test"}`)
		e.do(t, "PATCH", "/v1/accounts/"+id+"/billing", operatorToken, `{"tariffId":"`+tariff+`","mode":"BILLING_MODE_PREPAID"}`)
		// 0.08: +880's fee (0.02) and one 60 s step (0.05), not two.
		e.do(t, "POST", "/v1/accounts/"+id+"/billing:topUp", operatorToken, `{"amountMicros":"80000","reference":"pay-tight"}`)
		// Both parties stay on the line until someone hangs up.
		code, out := e.do(t, "POST", "/v1/calls", dig(k, "secret"), `{"first":{"number":"+8801712340000"},"second":{"number":"+15551230000"}}`)
		if code != 200 || dig(out, "call", "first", "maxDurationS") != "60" {
			t.Fatalf("call: %d %v", code, out)
		}
		callID := dig(out, "call", "id")
		e.eventTypes(t, callID)
		_, c := e.do(t, "GET", "/v1/calls/"+callID, dig(k, "secret"), "")
		if dig(c, "call", "first", "hangupCause") != "ALLOTTED_TIMEOUT" || dig(c, "call", "status") != "CALL_STATUS_COMPLETED" {
			t.Fatalf("call on a tight balance: %v", c)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, b := e.do(t, "GET", "/v1/accounts/"+id+"/billing", dig(k, "secret"), "")
			bal, _ := strconv.ParseInt(dig(b, "billing", "balanceMicros"), 10, 64)
			if dig(b, "billing", "reservedMicros") == "" && bal < 80_000 {
				if bal < 0 {
					t.Fatalf("overspent: %v", b)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("never settled: %v", b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
