package suite

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// post sends the public banner request (no API key) and decodes the answer.
func (e *e2e) click2call(t *testing.T, campaign, key, number string) (int, map[string]any) {
	t.Helper()
	return e.do(t, "POST", "/v1/campaigns/"+campaign+"/click2call", "", fmt.Sprintf(`{"number":%q,"key":%q}`, number, key))
}

func callID(out map[string]any) string {
	if id := dig(out, "call", "id"); id != "" {
		return id
	}
	return dig(out, "id")
}

// visitorStates reads a call's status stream until it closes and returns
// the distinct states in order.
func (e *e2e) visitorStates(t *testing.T, id, token string) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", e.info.HTTPURL+"/v1/calls/"+id+"/events?token="+token, nil)
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var states []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatalf("event data %q: %v", data, err)
		}
		if s := dig(v, "call", "state"); len(states) == 0 || states[len(states)-1] != s {
			states = append(states, s)
		}
	}
	return states
}

// The contract with `make run`'s development campaign: the demo
// page embeds it; a busy visitor ends FAILED CALLING TO USER after the
// redials; +88 has no rate; an answering visitor is connected, and the
// status stream says so in plain states.
func TestEndToEndBannerContract(t *testing.T) {
	e := start(t)
	camp, key := e.info.DevCampaignID, e.info.DevCampaignKey
	if camp == "" || key == "" {
		t.Fatal("no development campaign")
	}
	resp, err := http.Get(e.info.HTTPURL + "/demo/banner")
	if err != nil {
		t.Fatal(err)
	}
	var page strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&page)
	resp.Body.Close()
	m := regexp.MustCompile(`<script[^>]*src="[^"]*widget\.js"[^>]*>`).FindString(page.String())
	if resp.StatusCode != 200 || !strings.Contains(m, `data-campaign="`+camp+`"`) || !strings.Contains(m, `data-key="`+key+`"`) {
		t.Fatalf("/demo/banner: %d, script tag %q", resp.StatusCode, m)
	}

	code, out := e.click2call(t, camp, key, "+8801712345678")
	if code != 422 || dig(out, "error", "code") != "DESTINATION_NOT_SUPPORTED" {
		t.Fatalf("+88: %d %v", code, out)
	}
	code, out = e.click2call(t, camp, key, "+15551230486")
	if code != 200 || callID(out) == "" || dig(out, "token") == "" {
		t.Fatalf("busy visitor: %d %v", code, out)
	}
	busy, busyToken := callID(out), dig(out, "token")
	code, out = e.click2call(t, camp, key, "(555) 123-0000") // national, the campaign's country is US
	if code != 200 {
		t.Fatalf("answering visitor: %d %v", code, out)
	}
	answered, token := callID(out), dig(out, "token")
	// The stream opens after the POST: a visitor who answers within
	// milliseconds (the simulator's ...0000 at time scale 10) may already be
	// past "calling_you". What it shows must go forward and end connected,
	// then ended.
	states := e.visitorStates(t, answered, token)
	order := []string{"queued", "calling_you", "connecting", "connected", "ended"}
	last := -1
	for _, st := range states {
		i := slices.Index(order, st)
		if i < last {
			t.Fatalf("states %v: %s after %s", states, st, order[last])
		}
		last = max(last, i)
	}
	if c, en := slices.Index(states, "connected"), slices.Index(states, "ended"); c < 0 || en < c || en != len(states)-1 {
		t.Fatalf("states %v: want connected, then ended last", states)
	}
	done := e.waitFinal(t, answered)
	if done["outcome"] != "COMPLETED" || dig(done, "first", "party", "number") != "+15551230000" {
		t.Fatalf("answered call: %v", done)
	}

	deadline := time.Now().Add(40 * time.Second) // two redials 5 s apart
	var c map[string]any
	for time.Now().Before(deadline) {
		_, got := e.do(t, "GET", "/v1/calls/"+busy, e.key, "")
		if c = got["call"].(map[string]any); dig(c, "status") == "CALL_STATUS_FAILED" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if dig(c, "status") != "CALL_STATUS_FAILED" || c["outcome"] != "FAILED CALLING TO USER" || dig(c, "attempt") != "3" ||
		len(c["attempts"].([]any)) != 2 || dig(c, "failureReason") != "FAILURE_REASON_BUSY" {
		t.Fatalf("busy call: %v", c)
	}
	// The public view says the same to the visitor.
	code, pub := e.do(t, "GET", "/v1/calls/"+busy+"?token="+busyToken, "", "")
	if code != 200 || dig(pub, "call", "state") != "failed_visitor" || dig(pub, "call", "outcome") != "FAILED CALLING TO USER" {
		t.Fatalf("the visitor's view: %d %v", code, pub)
	}
	if code, _ := e.do(t, "GET", "/v1/calls/"+busy+"?token="+token, "", ""); code != 401 {
		t.Fatalf("another call's token: %d", code)
	}
}

// A company's own campaign: company first; the visitor busy on the first
// attempt and answering the second; the company not answering, listed
// among the failed calls and called back with one click.
func TestEndToEndBannerCampaign(t *testing.T) {
	e := start(t)
	acct, key := e.newAccount(t, "banner-co")
	if code, out := e.do(t, "PATCH", "/v1/accounts/"+acct+"/billing", operatorToken, `{"tariffId":"`+e.info.DevTariffID+`","mode":"BILLING_MODE_POSTPAID"}`); code != 200 {
		t.Fatalf("billing: %d %v", code, out)
	}
	code, ep := e.do(t, "POST", "/v1/endpoints", key, `{"name":"Desk","kind":"ENDPOINT_KIND_EXTERNAL_NUMBER","address":"+15550000001"}`)
	if code != 200 {
		t.Fatalf("endpoint: %d %v", code, ep)
	}
	desk := dig(ep, "endpoint", "id")
	code, ep = e.do(t, "POST", "/v1/endpoints", key, `{"name":"Nobody","kind":"ENDPOINT_KIND_EXTERNAL_NUMBER","address":"+15550000408","ringTimeoutMs":2000}`)
	if code != 200 {
		t.Fatalf("endpoint: %d %v", code, ep)
	}
	nobody := dig(ep, "endpoint", "id")
	newCampaign := func(body string) (string, string) {
		t.Helper()
		code, out := e.do(t, "POST", "/v1/campaigns", key, body)
		if code != 200 {
			t.Fatalf("campaign %s: %d %v", body, code, out)
		}
		return dig(out, "campaign", "id"), dig(out, "campaign", "publicKey")
	}
	// Company first: the desk answers, then the visitor.
	cf, cfKey := newCampaign(`{"name":"Company first","operatorEndpointIds":["` + desk + `"],"firstParty":"FIRST_PARTY_COMPANY","challenge":"CHALLENGE_MODE_OFF"}`)
	code, out := e.click2call(t, cf, cfKey, "+15551230000")
	if code != 200 {
		t.Fatalf("company first: %d %v", code, out)
	}
	c := e.waitFinalWith(t, callID(out), key)
	if c["outcome"] != "COMPLETED" || dig(c, "visitorLeg") != "LEG_ROLE_SECOND" || dig(c, "first", "address") != "+15550000001" {
		t.Fatalf("company-first call: %v", c)
	}

	// Visitor first, redialed: busy, then answered on the second attempt.
	vf, vfKey := newCampaign(`{"name":"Visitor first","operatorEndpointIds":["` + desk + `"],"redialAttempts":2,"redialIntervalS":1,"visitorRingTimeoutMs":120000,"challenge":"CHALLENGE_MODE_OFF"}`)
	code, out = e.click2call(t, vf, vfKey, "+15551230408")
	if code != 200 {
		t.Fatalf("visitor first: %d %v", code, out)
	}
	id := callID(out)
	uuid := e.waitLegRinging(t, id, key, "1")
	e.simControl(t, "/channels/"+uuid+"/hangup", `{"cause":"USER_BUSY"}`)
	uuid = e.waitLegRinging(t, id, key, "2")
	e.simControl(t, "/channels/"+uuid+"/answer", "")
	c = e.waitFinalWith(t, id, key)
	if c["outcome"] != "COMPLETED" || dig(c, "attempt") != "2" || len(c["attempts"].([]any)) != 1 {
		t.Fatalf("redialed call: %v", c)
	}

	// Nobody answers at the company: FAILED CALLING TO COMPANY, listed,
	// called back (the company first), listed as called back.
	nc, ncKey := newCampaign(`{"name":"Nobody home","operatorEndpointIds":["` + nobody + `"],"redialAttempts":3,"challenge":"CHALLENGE_MODE_OFF"}`)
	code, out = e.click2call(t, nc, ncKey, "+15551230000")
	if code != 200 {
		t.Fatalf("nobody home: %d %v", code, out)
	}
	failed := callID(out)
	c = e.waitFinalWith(t, failed, key)
	if c["outcome"] != "FAILED CALLING TO COMPANY" || dig(c, "attempt") != "1" || dig(c, "failureReason") != "FAILURE_REASON_NO_ANSWER" {
		t.Fatalf("company not answering: %v", c)
	}
	var list map[string]any
	deadline := time.Now().Add(10 * time.Second) // the record is written from the events
	for time.Now().Before(deadline) {
		_, list = e.do(t, "GET", "/v1/campaigns/"+nc+"/failed-calls", key, "")
		if calls, _ := list["calls"].([]any); len(calls) == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	calls, _ := list["calls"].([]any)
	if len(calls) != 1 || dig(calls[0].(map[string]any), "callId") != failed || dig(calls[0].(map[string]any), "outcome") != "FAILED CALLING TO COMPANY" ||
		dig(calls[0].(map[string]any), "visitorNumber") != "+15551230000" {
		t.Fatalf("failed calls: %v", list)
	}
	// The records say it too, in the CSV export and the campaign's statistics.
	req, _ := http.NewRequest("GET", e.info.HTTPURL+"/v1/cdrs:export?filter.campaignId="+nc, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	csvBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(csvBody), failed) || !strings.Contains(string(csvBody), "FAILED CALLING TO COMPANY") {
		t.Fatalf("export: %d %s", resp.StatusCode, csvBody)
	}
	_, stats := e.do(t, "GET", "/v1/statistics?groupBy=GROUP_BY_CAMPAIGN&filter.campaignId="+nc, key, "")
	if dig(stats, "total", "failedCompany") != "1" || dig(stats, "total", "failedVisitor") != "" {
		t.Fatalf("campaign statistics: %v", stats)
	}
	// Point the campaign at the desk, then call back.
	if code, out := e.do(t, "PATCH", "/v1/campaigns/"+nc, key, `{"operatorEndpointIds":["`+desk+`"]}`); code != 200 {
		t.Fatalf("patch: %d %v", code, out)
	}
	code, out = e.do(t, "POST", "/v1/campaigns/"+nc+"/failed-calls/"+failed+":callBack", key, `{}`)
	if code != 200 {
		t.Fatalf("call back: %d %v", code, out)
	}
	cb := e.waitFinalWith(t, dig(out, "call", "id"), key)
	if cb["outcome"] != "COMPLETED" || dig(cb, "callbackOf") != failed || dig(cb, "visitorLeg") != "LEG_ROLE_SECOND" {
		t.Fatalf("callback: %v", cb)
	}
	code, out = e.do(t, "POST", "/v1/campaigns/"+nc+"/failed-calls/"+failed+":callBack", key, `{}`)
	if code != 409 || dig(out, "error", "code") != "ALREADY_CALLED_BACK" {
		t.Fatalf("second callback: %d %v", code, out)
	}
	_, list = e.do(t, "GET", "/v1/campaigns/"+nc+"/failed-calls?pendingOnly=true", key, "")
	if calls, _ := list["calls"].([]any); len(calls) != 0 {
		t.Fatalf("pending failed calls after the callback: %v", list)
	}
	// Other accounts see nothing of it.
	_, other := e.newAccount(t, "banner-other")
	if code, _ := e.do(t, "GET", "/v1/campaigns/"+nc+"/failed-calls", other, ""); code != 404 {
		t.Fatalf("another account's failed calls: %d", code)
	}
}

func (e *e2e) waitFinalWith(t *testing.T, id, key string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		code, out := e.do(t, "GET", "/v1/calls/"+id, key, "")
		if code != 200 {
			t.Fatalf("GET /v1/calls/%s: %d %v", id, code, out)
		}
		switch dig(out, "call", "status") {
		case "CALL_STATUS_COMPLETED", "CALL_STATUS_FAILED", "CALL_STATUS_CANCELED":
			return out["call"].(map[string]any)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("call %s did not end", id)
	return nil
}

// waitLegRinging waits for the visitor's (first) leg of an attempt to ring
// and returns its channel UUID.
func (e *e2e) waitLegRinging(t *testing.T, id, key, attempt string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_, out := e.do(t, "GET", "/v1/calls/"+id, key, "")
		if dig(out, "call", "attempt") == attempt && dig(out, "call", "first", "status") == "LEG_STATUS_RINGING" {
			return dig(out, "call", "first", "uuid")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("call %s: attempt %s never rang", id, attempt)
	return ""
}

func (e *e2e) simControl(t *testing.T, path, body string) {
	t.Helper()
	resp, err := http.Post(e.info.SimControlURL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("simulator %s: %s", path, resp.Status)
	}
}
