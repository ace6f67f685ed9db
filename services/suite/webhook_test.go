package suite

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringback/ringback/services/webhook/webhooktest"
)

// The contract: a subscription created with POST /v1/webhooks and
// {"url", "format": "WEBHOOK_FORMAT_CARRIER"} receives, for one completed
// call, callStart and then callEnd, each retried until the receiver
// answers {"ack":"ok"}; every request is signed (checked with the Standard
// Webhooks reference library); the delivery log shows each attempt and a
// delivery can be sent again by hand. Other accounts see none of it, and
// private destinations are refused.
func TestEndToEndWebhooks(t *testing.T) {
	e := start(t)
	// The first attempt of each event is refused (500 for callStart, a 200
	// without the ack for callEnd); the second is acknowledged.
	recv := webhooktest.Start(t, func(r webhooktest.Request) (int, string, time.Duration) {
		switch {
		case r.N > 1:
			return 200, `{"ack":"ok"}`, 0
		case r.Action == "callStart":
			return 500, `{"error":"busy"}`, 0
		default:
			return 200, `OK`, 0
		}
	})
	code, out := e.do(t, "POST", "/v1/webhooks", e.key, `{"url":"`+recv.URL+`","format":"WEBHOOK_FORMAT_CARRIER"}`)
	if code != 200 || dig(out, "webhook", "id") == "" || dig(out, "secret") == "" {
		t.Fatalf("POST /v1/webhooks: %d %v", code, out)
	}
	hook, secret := dig(out, "webhook", "id"), dig(out, "secret")
	if dig(out, "webhook", "enabled") != "true" || dig(out, "webhook", "format") != "WEBHOOK_FORMAT_CARRIER" {
		t.Fatalf("created webhook: %v", out)
	}

	call := e.createCall(t, `{"first":{"number":"+15551230001"},"second":{"number":"+15551230002"},"variables":{"ticket":"T-7"}}`)
	e.waitFinal(t, call)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acked := func(reqs []webhooktest.Request, action string) bool {
		for _, r := range reqs {
			if r.CallID == call && r.Action == action && r.N > 1 {
				return true
			}
		}
		return false
	}
	reqs, err := recv.WaitFor(ctx, func(reqs []webhooktest.Request) bool { return acked(reqs, "callEnd") })
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range reqs {
		if r.CallID != call {
			continue
		}
		order = append(order, r.Action+"#"+strconv.Itoa(r.N))
		if err := webhooktest.Verify(secret, r); err != nil {
			t.Fatalf("signature of %s: %v", r.Action, err)
		}
	}
	want := []string{"callStart#1", "callStart#2", "callEnd#1", "callEnd#2"}
	if len(order) != len(want) {
		t.Fatalf("requests for the call: %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("requests for the call: %v, want %v", order, want)
		}
	}
	var end struct {
		Action string         `json:"action"`
		Data   map[string]any `json:"data"`
	}
	last := reqs[len(reqs)-1]
	if err := json.Unmarshal(last.Body, &end); err != nil {
		t.Fatal(err)
	}
	d := end.Data
	if d["callid"] != call || d["ani"] != "+15551230001" || d["dnis"] != "+15551230002" || d["type"] != "out" ||
		d["connect_time"] == "1970-01-01 00:00:00" || d["disconnect_time"] == "1970-01-01 00:00:00" || d["duration"] == "" ||
		d["cost"] == "" || d["account_id"] != e.info.DevAccountID {
		t.Fatalf("callEnd body: %s", last.Body)
	}
	if v, _ := d["variables"].(map[string]any); v["ticket"] != "T-7" {
		t.Fatalf("callEnd variables: %s", last.Body)
	}

	t.Run("delivery log", func(t *testing.T) {
		// The receiver has answered; the attempt is logged just after.
		var ds []any
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			code, out := e.do(t, "GET", "/v1/calls/"+call+"/webhook-deliveries", e.key, "")
			ds, _ = out["deliveries"].([]any)
			if code != 200 || len(ds) != 2 {
				t.Fatalf("deliveries of the call: %d %v", code, out)
			}
			done := 0
			for _, x := range ds {
				if dig(x.(map[string]any), "state") == "DELIVERY_STATE_DELIVERED" {
					done++
				}
			}
			if done == 2 || time.Now().After(deadline) {
				break
			}
		}
		var endID string
		for _, x := range ds {
			dm := x.(map[string]any)
			if dig(dm, "state") != "DELIVERY_STATE_DELIVERED" || dig(dm, "attempts") != "2" {
				t.Fatalf("delivery: %v", dm)
			}
			if dig(dm, "name") == "callEnd" {
				endID = dig(dm, "id")
			}
		}
		code, out = e.do(t, "GET", "/v1/webhooks/"+hook+"/deliveries/"+endID, e.key, "")
		log, _ := dig2(out, "delivery", "attemptLog").([]any)
		if code != 200 || len(log) != 2 {
			t.Fatalf("callEnd delivery: %d %v", code, out)
		}
		first, second := log[0].(map[string]any), log[1].(map[string]any)
		if dig(first, "status") != "200" || dig(first, "success") != "" || dig(first, "error") == "" || dig(first, "responseExcerpt") != "OK" ||
			dig(second, "success") != "true" {
			t.Fatalf("attempt log: %v", log)
		}
		code, out = e.do(t, "GET", "/v1/webhooks/"+hook+"/deliveries?state=DELIVERY_STATE_DELIVERED", e.key, "")
		if ds, _ := out["deliveries"].([]any); code != 200 || len(ds) < 2 {
			t.Fatalf("deliveries of the webhook: %d %v", code, out)
		}

		// Manual redelivery: the same webhook-id again.
		if code, out := e.do(t, "POST", "/v1/webhooks/"+hook+"/deliveries/"+endID+":redeliver", e.key, `{}`); code != 200 {
			t.Fatalf("redeliver: %d %v", code, out)
		}
		if _, err := recv.WaitFor(ctx, func(reqs []webhooktest.Request) bool {
			for _, r := range reqs {
				if r.ID == endID && r.N == 3 {
					return true
				}
			}
			return false
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("another account sees nothing", func(t *testing.T) {
		_, other := e.newAccount(t, "e2e-hooks-other")
		for _, path := range []string{"/v1/webhooks/" + hook, "/v1/webhooks/" + hook + "/deliveries"} {
			if code, out := e.do(t, "GET", path, other, ""); code != 404 || dig(out, "error", "code") != "WEBHOOK_NOT_FOUND" {
				t.Fatalf("other account GET %s: %d %v", path, code, out)
			}
		}
		if code, out := e.do(t, "GET", "/v1/calls/"+call+"/webhook-deliveries", other, ""); code != 200 || out["deliveries"] != nil {
			t.Fatalf("other account listing the call's deliveries: %d %v", code, out)
		}
		if code, out := e.do(t, "GET", "/v1/webhooks", other, ""); code != 200 || out["webhooks"] != nil {
			t.Fatalf("other account listing webhooks: %d %v", code, out)
		}
	})

	t.Run("private destinations are refused", func(t *testing.T) {
		for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "http://10.0.0.7/hook", "http://[fd00::1]/hook", "ftp://example.com/"} {
			code, out := e.do(t, "POST", "/v1/webhooks", e.key, `{"url":"`+u+`"}`)
			want := "DESTINATION_NOT_ALLOWED"
			if u[:3] == "ftp" {
				want = "INVALID_URL"
			}
			if code != 400 || dig(out, "error", "code") != want {
				t.Fatalf("POST /v1/webhooks %s: %d %v, want 400 %s", u, code, out, want)
			}
		}
	})
}

func dig2(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// A failed call created with reminderTimeoutS whose party nobody reaches
// within it makes one reminder email to the account's notification
// address, through every real service (origination stamps the timeout on
// the call, the webhook service reads it from the call's events and sends
// over SMTP); a failed call whose party a later call reached is not in it.
func TestEndToEndReminders(t *testing.T) {
	e := start(t)
	if code, out := e.do(t, "PUT", "/v1/notification-settings", e.key, `{"emails":["sales@example.com"],"timeZone":"Europe/Madrid"}`); code != 200 ||
		dig(out, "settings", "timeZone") != "Europe/Madrid" {
		t.Fatalf("PUT /v1/notification-settings: %d %v", code, out)
	}
	if code, out := e.do(t, "PUT", "/v1/notification-settings", e.key, `{"emails":["not an address"]}`); code != 400 || dig(out, "error", "code") != "INVALID_EMAIL" {
		t.Fatalf("bad email: %d %v", code, out)
	}
	// The visitor is busy: FAILED CALLING TO USER. Reminded after 8 s
	// unless called back.
	waiting := e.createCall(t, `{"first":{"number":"+15551230486"},"second":{"number":"+15551230002"},"reminderTimeoutS":8}`)
	// The visitor answers, the company is busy: FAILED CALLING TO COMPANY.
	calledBack := e.createCall(t, `{"first":{"number":"+34911230001"},"second":{"number":"+15551230486"},"reminderTimeoutS":8}`)
	if code, out := e.do(t, "GET", "/v1/calls/"+waiting, e.key, ""); code != 200 || dig(out, "call", "reminderTimeoutS") != "8" {
		t.Fatalf("call with a reminder: %d %v", code, out)
	}
	e.waitFinal(t, waiting)
	e.waitFinal(t, calledBack)
	// The company calls the second visitor back (an answering number).
	back := e.createCall(t, `{"first":{"number":"+15551230002"},"second":{"number":"+34911230001"}}`)
	if c := e.waitFinal(t, back); dig(c, "status") != "CALL_STATUS_COMPLETED" {
		t.Fatalf("call back: %v", c)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := e.mail.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if len(m.To) != 1 || m.To[0] != "sales@example.com" || !strings.Contains(m.Body, "+15551230486") ||
		!strings.Contains(m.Body, "FAILED CALLING TO USER (busy)") || !strings.Contains(m.Body, waiting) {
		t.Fatalf("reminder: to %v\n%s", m.To, m.Body)
	}
	if strings.Contains(m.Body, "+34911230001") {
		t.Fatalf("reminder lists a call whose party was called back:\n%s", m.Body)
	}
	// Each call is reminded once.
	time.Sleep(time.Second)
	if got := e.mail.Messages(); len(got) != 1 {
		var bodies []string
		for _, m := range got {
			bodies = append(bodies, m.Body)
		}
		t.Fatalf("%d emails, want 1:\n%s", len(got), strings.Join(bodies, "\n---\n"))
	}
}
