package suite

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/percipia/eslgo"
	"github.com/percipia/eslgo/command"

	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// BenchmarkBannerPostToOriginate measures, through the whole suite (the
// gateway's public endpoint with its abuse checks, origination, rating, the
// simulator over ESL), the time from sending a valid banner POST to the
// first leg's channel appearing on the switch (its CHANNEL_CREATE read by
// an ESL listener). Requests are paced at 50/s so the figure is latency,
// not queueing. The baseline of the same run is the switch's own floor:
// a raw eslgo `bgapi originate` to the same CHANNEL_CREATE.
//
//	go test -run '^$' -bench BannerPostToOriginate -benchtime 400x -count 3 ./suite/
func BenchmarkBannerPostToOriginate(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{
		"DATABASE_URL": storetest.NewDatabase(b), "RINGBACK_HTTP_ADDR": "127.0.0.1:0",
		"RINGBACK_INSTANCE": "bench-" + ids.NewV4(), "RINGBACK_LOG_LEVEL": "error", "RINGBACK_OPERATOR_TOKEN": operatorToken,
	}
	for _, s := range []string{"ORIGINATION", "GATEWAY", "RATING", "CDR", "WEBHOOK"} {
		env["RINGBACK_"+s+"_ADMIN_ADDR"], env["RINGBACK_"+s+"_GRPC_ADDR"] = "127.0.0.1:0", "localhost:0"
	}
	ready, done := make(chan Info, 1), make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Lookup: func(n string) (string, bool) { v, ok := env[n]; return v, ok },
			SimESLAddr: "127.0.0.1:0", SimControlAddr: "127.0.0.1:0", SimTimeScale: 10,
			DevAccount: "bench", DevKey: "rb_bench_key_0123456789", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: func(i Info) { ready <- i }})
	}()
	var info Info
	select {
	case info = <-ready:
	case err := <-done:
		b.Fatal(err)
	}
	defer func() { cancel(); <-done }()
	e := &e2e{info: info, key: info.DevKey}

	// A campaign whose limits a benchmark cannot reach.
	code, out := e.do(b, "POST", "/v1/campaigns", info.DevKey, `{"name":"bench","operatorEndpointIds":[`+e.devOperator(b)+`],
		"challenge":"CHALLENGE_MODE_OFF","limits":{"perIpPerHour":1000000,"perNumberPerDay":1000,"perCampaignPerMinute":1000000}}`)
	if code != 200 {
		b.Fatalf("campaign: %d %v", code, out)
	}
	camp, key := dig(out, "campaign", "id"), dig(out, "campaign", "publicKey")

	// The listener: the first CHANNEL_CREATE of each call (by its
	// ringback_call_id variable) or of each raw originate (by UUID).
	var mu sync.Mutex
	seen := map[string]time.Time{}
	conn, err := eslgo.Dial(info.ESLAddr, "ClueCon", func() {})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	conn.RegisterEventListener(eslgo.EventListenAll, func(ev *eslgo.Event) {
		if ev.GetName() != "CHANNEL_CREATE" {
			return
		}
		now := time.Now()
		k := ev.GetHeader("variable_ringback_call_id")
		if k == "" {
			k = ev.GetHeader("Unique-ID")
		}
		mu.Lock()
		if _, ok := seen[k]; !ok {
			seen[k] = now
		}
		mu.Unlock()
	})
	if _, err := conn.SendCommand(ctx, command.Event{Format: "plain", Listen: []string{"CHANNEL_CREATE"}}); err != nil {
		b.Fatal(err)
	}
	wait := func(k string) time.Time {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			mu.Lock()
			at, ok := seen[k]
			mu.Unlock()
			if ok {
				return at
			}
		}
		b.Fatalf("no CHANNEL_CREATE for %s", k)
		return time.Time{}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var post, raw []time.Duration
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		number := fmt.Sprintf("+1555%06d0002", (time.Now().UnixNano()/1000+int64(i))%1000000)
		start := time.Now()
		resp, err := client.Post(info.HTTPURL+"/v1/campaigns/"+camp+"/click2call", "application/json",
			strings.NewReader(fmt.Sprintf(`{"number":%q,"key":%q}`, number, key)))
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := extractID(string(body))
		if resp.StatusCode != 200 || id == "" {
			b.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		post = append(post, wait(id).Sub(start))

		uuid := ids.NewV4()
		start = time.Now()
		if _, err := conn.SendCommand(ctx, command.API{Command: "originate", Background: true,
			Arguments: fmt.Sprintf("{origination_uuid=%s}sofia/gateway/carrier/1555%06d0002 &park()", uuid, i%1000000)}); err != nil {
			b.Fatal(err)
		}
		raw = append(raw, wait(uuid).Sub(start))
	}
	b.StopTimer()
	q := func(d []time.Duration, p float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(float64(len(s))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(q(post, 0.5), "p50_ms")
	b.ReportMetric(q(post, 0.99), "p99_ms")
	b.ReportMetric(q(raw, 0.5), "raw_eslgo_p50_ms")
	b.ReportMetric(q(raw, 0.99), "raw_eslgo_p99_ms")
}

func extractID(body string) string {
	_, rest, ok := strings.Cut(body, `"id":"`)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

// devOperator returns the development account's operator endpoint id,
// JSON-quoted.
func (e *e2e) devOperator(b *testing.B) string {
	code, out := e.do(b, "GET", "/v1/endpoints", e.key, "")
	if code != 200 {
		b.Fatalf("endpoints: %d %v", code, out)
	}
	for _, ep := range out["endpoints"].([]any) {
		if m := ep.(map[string]any); m["name"] == DevOperatorName {
			return `"` + fmt.Sprint(m["id"]) + `"`
		}
	}
	b.Fatal("no development operator")
	return ""
}
