package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/server"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// Run end to end over real sockets: the development account's key places a
// call through the public HTTP server, and the first shutdown stage stops
// everything cleanly (goleak checks nothing is left running).
func TestRun(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake := serveFake(t, lis)
	cfg := Config{
		Platform: config.Platform{DatabaseURL: storetest.NewDatabase(t), AdminAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
			ShutdownTimeout: 10 * time.Second},
		HTTPAddr:        "127.0.0.1:0",
		OriginationAddr: lis.Addr().String(),
		OperatorToken:   testOperatorToken,
		AuthCacheTTL:    time.Second,
		RequestTimeout:  5 * time.Second,
	}
	ctx, drain, _ := server.WithStages(context.Background())
	defer drain()
	ready := make(chan *server.Server, 1)
	devAccount := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, testLogger(t), prometheus.NewRegistry(), RunOptions{
			DevAccount: "dev", DevKey: "k",
			DevAccountReady: func(id, key string) {
				if key != "k" {
					t.Errorf("dev key %q", key)
				}
				devAccount <- id
			},
			Ready: func(s *server.Server) { ready <- s },
		})
	}()
	var srv *server.Server
	select {
	case srv = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	accountID := <-devAccount
	base := "http://" + srv.PublicAddr().String()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	send := func(method, path, key, body string) (int, map[string]any) {
		t.Helper()
		r, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		res, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		return res.StatusCode, v
	}

	if code, _ := send("GET", "/healthz", "", ""); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	code, v := send("POST", "/v1/calls", "k", `{"first":{"number":"+15551230001"},"second":{"number":"+15551230002"}}`)
	call, _ := v["call"].(map[string]any)
	if code != 200 || call["id"] == nil || call["accountId"] != accountID {
		t.Fatalf("POST /v1/calls: %d %v", code, v)
	}
	code, v = send("GET", "/v1/calls/"+call["id"].(string), "k", "")
	if call, _ := v["call"].(map[string]any); code != 200 || call["status"] != "CALL_STATUS_COMPLETED" {
		t.Fatalf("GET call: %d %v", code, v)
	}
	q := url.Values{"username": {"dev"}, "password": {"k"}, "first_num": {"+15551230001"}, "second_num": {"+15551230002"}}
	code, v = send("GET", "/clickToDial.php?"+q.Encode(), "", "")
	if code != 200 || v["status"] != "OK" || v["callid"] == "" {
		t.Fatalf("clickToDial: %d %v", code, v)
	}
	if got := fake.created(t, v["callid"].(string)).md.Get(CallSourceHeader); len(got) != 1 || got[0] != "CALL_SOURCE_CLICK_TO_DIAL_LEGACY" {
		t.Fatalf("call source %v", got)
	}
	if code, _ := send("GET", "/v1/calls/x", "wrong", ""); code != 401 {
		t.Fatalf("wrong key: %d", code)
	}
	res, err := client.Get("http://" + srv.AdminAddr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("readyz %d", res.StatusCode)
	}

	client.CloseIdleConnections()
	drain()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the shutdown signal")
	}
}
