package suite

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	"github.com/ringback/ringback/services/internal/mail/mailtest"
	"github.com/ringback/ringback/services/internal/store/storetest"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

// testLog keeps the suite's warnings and errors in the test output.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Process-wide pools that outlive a test on purpose.
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

const operatorToken = "e2e-operator-token-0123456789"

// e2e is one running suite and an HTTP client for it.
type e2e struct {
	t    *testing.T
	info Info
	key  string
	mail *mailtest.Server // where the suite's emails go
	db   string           // the suite's database URL (for more replicas, and to look inside)
	// demo is the campaign /demo/banner shows ("": the development one).
	demo atomic.Value

	mu     sync.Mutex
	events map[string][]*eventsv1.CallEvent
}

func start(t *testing.T) *e2e {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	mails := mailtest.Start(t, mailtest.Options{})
	db := storetest.NewDatabase(t)
	env := map[string]string{
		"RINGBACK_SMTP_ADDR":              mails.Addr(),
		"RINGBACK_SMTP_TLS":               "none",
		"RINGBACK_REMINDER_INTERVAL":      "200ms",
		"DATABASE_URL":                    db,
		"RINGBACK_HTTP_ADDR":              "127.0.0.1:0",
		"RINGBACK_ORIGINATION_ADMIN_ADDR": "127.0.0.1:0",
		"RINGBACK_ORIGINATION_GRPC_ADDR":  "localhost:0",
		"RINGBACK_GATEWAY_ADMIN_ADDR":     "127.0.0.1:0",
		"RINGBACK_GATEWAY_GRPC_ADDR":      "localhost:0",
		"RINGBACK_RATING_ADMIN_ADDR":      "127.0.0.1:0",
		"RINGBACK_RATING_GRPC_ADDR":       "localhost:0",
		"RINGBACK_CDR_ADMIN_ADDR":         "127.0.0.1:0",
		"RINGBACK_CDR_GRPC_ADDR":          "localhost:0",
		"RINGBACK_WEBHOOK_ADMIN_ADDR":     "127.0.0.1:0",
		"RINGBACK_WEBHOOK_GRPC_ADDR":      "localhost:0",
		"RINGBACK_DIALER_ADMIN_ADDR":      "127.0.0.1:0",
		"RINGBACK_DIALER_GRPC_ADDR":       "localhost:0",
		// A dead replica's records are adopted within seconds, not 10 s
		// (TestDialerReplicaSIGKILL's replicas use the same lease).
		"RINGBACK_DIALER_LEASE": "3s",
		// Retries in a test's time; the production schedule is 0s,5s,5m,...
		"RINGBACK_WEBHOOK_RETRY_SCHEDULE": "0s,300ms,600ms,1s,2s",
		"RINGBACK_INSTANCE":               "e2e-" + fmt.Sprint(time.Now().UnixNano()),
		"RINGBACK_SHUTDOWN_TIMEOUT":       "5s",
		"RINGBACK_OPERATOR_TOKEN":         operatorToken,
	}
	lookup := func(name string) (string, bool) {
		if v, ok := env[name]; ok {
			return v, true
		}
		if name == "REDIS_URL" || name == "RINGBACK_LOG_LEVEL" {
			return "", false
		}
		return "", false // nothing else from the environment: the test owns its setup
	}
	ready := make(chan Info, 1)
	done := make(chan error, 1)
	e := &e2e{t: t, mail: mails, db: db, events: map[string][]*eventsv1.CallEvent{}}
	e.demo.Store("")
	go func() {
		done <- Run(ctx, Options{
			Lookup: lookup, SimESLAddr: "127.0.0.1:0", SimControlAddr: "127.0.0.1:0", SimTimeScale: 10, // 20 left a loaded machine too little real time between the far ends' moves
			DevAccount: "e2e", DevKey: "rb_e2e_test_key_0123456789",
			Log:          testLog(t),
			Ready:        func(i Info) { ready <- i },
			DemoCampaign: func() string { return e.demo.Load().(string) },
		})
	}()
	select {
	case e.info = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("suite did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("suite did not start within 60 s")
	}
	e.key = e.info.DevKey
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("suite stopped with: %v", err)
		}
	})
	e.consumeEvents()
	return e
}

// consumeEvents reads the call events from JetStream as consumers do.
func (e *e2e) consumeEvents() {
	nc, err := nats.Connect(e.info.NATSURL)
	if err != nil {
		e.t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	var cons jetstream.Consumer
	for i := 0; i < 50; i++ { // origination declares the stream at start
		if cons, err = js.OrderedConsumer(context.Background(), "CALLS", jetstream.OrderedConsumerConfig{}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var ev eventsv1.CallEvent
		if proto.Unmarshal(m.Data(), &ev) == nil {
			e.mu.Lock()
			e.events[ev.GetCallId()] = append(e.events[ev.GetCallId()], &ev)
			e.mu.Unlock()
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cc.Stop(); nc.Close() })
}

// do sends a request and decodes the JSON answer.
func (e *e2e) do(t testing.TB, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, e.info.HTTPURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		t.Fatalf("%s %s: not JSON: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

// newAccount creates an account with the operator token and returns its
// id and an API key of it.
func (e *e2e) newAccount(t *testing.T, name string) (id, key string) {
	t.Helper()
	code, acct := e.do(t, "POST", "/v1/accounts", operatorToken, `{"name":"`+name+`"}`)
	if code != 200 {
		t.Fatalf("create account: %d %v", code, acct)
	}
	id = dig(acct, "account", "id")
	code, k := e.do(t, "POST", "/v1/accounts/"+id+"/api-keys", operatorToken, `{"name":"test"}`)
	if code != 200 || dig(k, "secret") == "" {
		t.Fatalf("create key: %d %v", code, k)
	}
	return id, dig(k, "secret")
}

func dig(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	if cur == nil {
		return ""
	}
	return fmt.Sprint(cur)
}

func (e *e2e) createCall(t *testing.T, body string) string {
	t.Helper()
	code, out := e.do(t, "POST", "/v1/calls", e.key, body)
	if code != 200 || dig(out, "call", "id") == "" {
		t.Fatalf("POST /v1/calls %s: %d %v", body, code, out)
	}
	return dig(out, "call", "id")
}

// waitFinal polls GET /v1/calls/{id} until the call has ended.
func (e *e2e) waitFinal(t *testing.T, id string) map[string]any {
	t.Helper()
	return e.waitFinalWith(t, id, e.key)
}

func (e *e2e) waitStatus(t *testing.T, id, status string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, out := e.do(t, "GET", "/v1/calls/"+id, e.key, ""); dig(out, "call", "status") == status {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("call %s never reached %s", id, status)
}

func (e *e2e) eventTypes(t *testing.T, id string) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		evs := append([]*eventsv1.CallEvent(nil), e.events[id]...)
		e.mu.Unlock()
		if n := len(evs); n > 0 && strings.HasPrefix(evs[n-1].GetType().String(), "EVENT_TYPE_CALL_") &&
			evs[n-1].GetCall().GetEndedAt() != nil {
			var out []string
			for _, ev := range evs {
				out = append(out, strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"))
			}
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no final event for %s", id)
	return nil
}

func TestEndToEnd(t *testing.T) {
	e := start(t)

	t.Run("answered and bridged (the contract)", func(t *testing.T) {
		t.Parallel()
		id := e.createCall(t, `{"first":{"number":"+15551230001"},"second":{"number":"+15551230002"},"variables":{"crm":"42"}}`)
		c := e.waitFinal(t, id)
		if dig(c, "status") != "CALL_STATUS_COMPLETED" || dig(c, "bridgedAt") == "" || dig(c, "variables", "crm") != "42" {
			t.Fatalf("call: %v", c)
		}
		got := strings.Join(e.eventTypes(t, id), " ")
		want := "CALL_QUEUED CALL_DIALING LEG_RINGING LEG_ANSWERED LEG_DIALING LEG_RINGING LEG_ANSWERED CALL_BRIDGED LEG_HANGUP LEG_HANGUP CALL_COMPLETED"
		if got != want {
			t.Fatalf("JetStream events:\n got %s\nwant %s", got, want)
		}
	})
	failures := []struct {
		name, body, leg, reason string
	}{
		{"first party busy", `{"first":{"number":"+15551230486"},"second":{"number":"+15551230002"}}`, "LEG_ROLE_FIRST", "FAILURE_REASON_BUSY"},
		{"first party congested", `{"first":{"number":"+15551230503"},"second":{"number":"+15551230002"}}`, "LEG_ROLE_FIRST", "FAILURE_REASON_CONGESTION"},
		{"first party unallocated", `{"first":{"number":"+15551230404"},"second":{"number":"+15551230002"}}`, "LEG_ROLE_FIRST", "FAILURE_REASON_NO_ROUTE"},
		{"second party never answers", `{"first":{"number":"+15551230000"},"second":{"number":"+15551230408","ringTimeoutMs":2000}}`, "LEG_ROLE_SECOND", "FAILURE_REASON_NO_ANSWER"},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := e.waitFinal(t, e.createCall(t, tt.body))
			if dig(c, "status") != "CALL_STATUS_FAILED" || dig(c, "failedLeg") != tt.leg || dig(c, "failureReason") != tt.reason {
				t.Fatalf("call: status %s failedLeg %s reason %s; want FAILED %s %s", dig(c, "status"), dig(c, "failedLeg"), dig(c, "failureReason"), tt.leg, tt.reason)
			}
		})
	}
	t.Run("simultaneous mode", func(t *testing.T) {
		t.Parallel()
		c := e.waitFinal(t, e.createCall(t, `{"mode":"CALL_MODE_SIMULTANEOUS","first":{"number":"+15551230002"},"second":{"number":"+15557770002"}}`))
		if dig(c, "status") != "CALL_STATUS_COMPLETED" || dig(c, "mode") != "CALL_MODE_SIMULTANEOUS" {
			t.Fatalf("call: %v", c)
		}
	})
	t.Run("endpoint busy, then hangup through the API", func(t *testing.T) {
		t.Parallel()
		code, ep := e.do(t, "POST", "/v1/endpoints", e.key, `{"name":"agent 1000","kind":"ENDPOINT_KIND_REGISTERED_USER","address":"1000"}`)
		if code != 200 {
			t.Fatalf("create endpoint: %d %v", code, ep)
		}
		epID := dig(ep, "endpoint", "id")
		// user/1000 auto-answers and stays up; ...0000 too: the call holds.
		id := e.createCall(t, `{"first":{"endpointId":"`+epID+`"},"second":{"number":"+15559990000"}}`)
		code, out := e.do(t, "POST", "/v1/calls", e.key, `{"first":{"endpointId":"`+epID+`"},"second":{"number":"+15559990001"}}`)
		if code != 409 || dig(out, "error", "code") != "ENDPOINT_BUSY" {
			t.Fatalf("second call on a busy endpoint: %d %v", code, out)
		}
		e.waitStatus(t, id, "CALL_STATUS_BRIDGED")
		if code, out := e.do(t, "POST", "/v1/calls/"+id+":hangup", e.key, `{}`); code != 200 {
			t.Fatalf("hangup: %d %v", code, out)
		}
		if c := e.waitFinal(t, id); dig(c, "status") != "CALL_STATUS_COMPLETED" {
			t.Fatalf("hung-up call: %v", c)
		}
		// The endpoint is free again.
		id2 := e.createCall(t, `{"first":{"endpointId":"`+epID+`"},"second":{"number":"+15559990002"}}`)
		e.do(t, "POST", "/v1/calls/"+id2+":hangup", e.key, `{}`)
		e.waitFinal(t, id2)
	})
	t.Run("legacy clickToDial", func(t *testing.T) {
		t.Parallel()
		q := url.Values{"username": {"e2e"}, "password": {e.key}, "first_num": {"15551230001"}, "second_num": {"15551230002"}}
		resp, err := http.Get(e.info.HTTPURL + "/clickToDial.php?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 200 || dig(out, "status") != "OK" || dig(out, "callid") == "" {
			t.Fatalf("clickToDial: %d %v", resp.StatusCode, out)
		}
		if c := e.waitFinal(t, dig(out, "callid")); dig(c, "source") != "CALL_SOURCE_CLICK_TO_DIAL_LEGACY" {
			t.Fatalf("legacy call: %v", c)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name, key, body string
			status          int
			code            string
		}{
			{"malformed number", e.key, `{"first":{"number":"12ab"},"second":{"number":"+15551230002"}}`, 400, "INVALID_ARGUMENT"},
			{"unknown endpoint", e.key, `{"first":{"endpointId":"00000000-0000-4000-8000-000000000000"},"second":{"number":"+15551230002"}}`, 404, "ENDPOINT_NOT_FOUND"},
			{"missing key", "", `{"first":{"number":"+15551230001"},"second":{"number":"+15551230002"}}`, 401, "UNAUTHENTICATED"},
			{"wrong key", "rb_nope_nope", `{"first":{"number":"+15551230001"},"second":{"number":"+15551230002"}}`, 401, "UNAUTHENTICATED"},
			{"unknown field", e.key, `{"frist":{"number":"+15551230001"}}`, 400, ""},
		}
		for _, tt := range tests {
			code, out := e.do(t, "POST", "/v1/calls", tt.key, tt.body)
			if code != tt.status || (tt.code != "" && dig(out, "error", "code") != tt.code) {
				t.Errorf("%s: %d %v, want %d %s", tt.name, code, out, tt.status, tt.code)
			}
		}
		if code, out := e.do(t, "GET", "/v1/calls/nope", e.key, ""); code != 404 {
			t.Errorf("unknown call: %d %v", code, out)
		}
	})
	t.Run("IP not allowed", func(t *testing.T) {
		t.Parallel()
		// Its own account (made by an operator), locked to another network.
		code, acct := e.do(t, "POST", "/v1/accounts", operatorToken, `{"name":"e2e-locked"}`)
		if code != 200 {
			t.Fatalf("create account: %d %v", code, acct)
		}
		id := dig(acct, "account", "id")
		code, k := e.do(t, "POST", "/v1/accounts/"+id+"/api-keys", operatorToken, `{"name":"test"}`)
		if code != 200 || dig(k, "secret") == "" {
			t.Fatalf("create key: %d %v", code, k)
		}
		if code, out := e.do(t, "PATCH", "/v1/accounts/"+id, operatorToken, `{"ipAllowlist":["192.0.2.0/24"]}`); code != 200 {
			t.Fatalf("set allowlist: %d %v", code, out)
		}
		code, out := e.do(t, "POST", "/v1/calls", dig(k, "secret"), `{"first":{"number":"+15551230001"},"second":{"number":"+15551230002"}}`)
		if code != 403 || dig(out, "error", "code") != "IP_NOT_ALLOWED" {
			t.Fatalf("from a disallowed address: %d %v", code, out)
		}
	})
}

func TestEndToEndEventSocketDropped(t *testing.T) {
	// Its own suite: the drop disconnects every call placed meanwhile.
	e := start(t)
	id := e.createCall(t, `{"mode":"CALL_MODE_SIMULTANEOUS","first":{"number":"+15552220000"},"second":{"number":"+15553330000"}}`)
	e.waitStatus(t, id, "CALL_STATUS_BRIDGED")
	resp, err := http.Post(e.info.SimControlURL+"/faults/drop-connections", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	time.Sleep(200 * time.Millisecond)
	e.do(t, "POST", "/v1/calls/"+id+":hangup", e.key, `{}`)
	if c := e.waitFinal(t, id); dig(c, "status") != "CALL_STATUS_COMPLETED" {
		t.Fatalf("call after the drop: %v", c)
	}
}
