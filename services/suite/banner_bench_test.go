package suite

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/percipia/eslgo"
	"github.com/percipia/eslgo/command"

	"github.com/ringback/ringback/freeswitch/sim/scenario"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// bannerBench is the whole suite for a banner benchmark, a campaign whose
// limits it cannot reach, and an ESL listener on the simulator that notes
// when each event of interest arrives, by call (ringback_call_id) or by
// channel (Unique-ID).
type bannerBench struct {
	b         *testing.B
	info      Info
	camp, key string
	conn      *eslgo.Conn
	client    *http.Client

	mu   sync.Mutex
	seen map[string]time.Time // event name + " " + call or channel -> arrival
}

// startBench runs the whole suite for a benchmark, quietly, on a new
// database, with the simulator at scale playing sc (nil: its default
// scenario) and env over the defaults; it returns the suite's Info and its
// database URL.
func startBench(b *testing.B, scale float64, sc *scenario.Scenario, env map[string]string) (Info, string) {
	ctx, cancel := context.WithCancel(context.Background())
	db := storetest.NewDatabase(b)
	all := map[string]string{
		"DATABASE_URL": db, "RINGBACK_HTTP_ADDR": "127.0.0.1:0",
		"RINGBACK_INSTANCE": "bench-" + ids.NewV4(), "RINGBACK_LOG_LEVEL": "error", "RINGBACK_OPERATOR_TOKEN": operatorToken,
	}
	for _, s := range []string{"ORIGINATION", "GATEWAY", "RATING", "CDR", "WEBHOOK", "DIALER"} {
		all["RINGBACK_"+s+"_ADMIN_ADDR"], all["RINGBACK_"+s+"_GRPC_ADDR"] = "127.0.0.1:0", "localhost:0"
	}
	maps.Copy(all, env)
	// BENCH_LOG names a file for the suite's warnings and errors.
	var logTo io.Writer = io.Discard
	if path := os.Getenv("BENCH_LOG"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = f.Close() })
		logTo = f
	}
	log := slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ready, done := make(chan Info, 1), make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Lookup: func(n string) (string, bool) { v, ok := all[n]; return v, ok },
			SimESLAddr: "127.0.0.1:0", SimControlAddr: "127.0.0.1:0", SimTimeScale: scale, SimScenario: sc,
			DevAccount: "bench", DevKey: "rb_bench_key_0123456789", Log: log, Ready: func(i Info) { ready <- i }})
	}()
	var info Info
	select {
	case info = <-ready:
	case err := <-done:
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); <-done })
	return info, db
}

func startBannerBench(b *testing.B, scale float64, events ...string) *bannerBench {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	bb := &bannerBench{b: b, seen: map[string]time.Time{}, client: &http.Client{Timeout: 30 * time.Second}}
	bb.info, _ = startBench(b, scale, nil, nil)
	e := &e2e{info: bb.info, key: bb.info.DevKey}
	code, out := e.do(b, "POST", "/v1/campaigns", bb.info.DevKey, `{"name":"bench","operatorEndpointIds":[`+e.devOperator(b)+`],
		"challenge":"CHALLENGE_MODE_OFF","limits":{"perIpPerHour":1000000,"perNumberPerDay":1000,"perCampaignPerMinute":1000000}}`)
	if code != 200 {
		b.Fatalf("campaign: %d %v", code, out)
	}
	bb.camp, bb.key = dig(out, "campaign", "id"), dig(out, "campaign", "publicKey")
	opts := eslgo.DefaultInboundOptions
	opts.Logger = eslgo.NilLogger{} // its INFO lines would land in the benchmark's output
	conn, err := opts.Dial(bb.info.ESLAddr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	bb.conn = conn
	conn.RegisterEventListener(eslgo.EventListenAll, func(ev *eslgo.Event) {
		now := time.Now()
		bb.mu.Lock()
		defer bb.mu.Unlock()
		for _, k := range []string{ev.GetHeader("variable_ringback_call_id"), ev.GetHeader("Unique-ID")} {
			if k == "" {
				continue
			}
			if _, ok := bb.seen[ev.GetName()+" "+k]; !ok {
				bb.seen[ev.GetName()+" "+k] = now
			}
		}
	})
	if _, err := conn.SendCommand(ctx, command.Event{Format: "plain", Listen: events}); err != nil {
		b.Fatal(err)
	}
	return bb
}

// wait returns when the listener saw event for key (a call or a channel).
func (bb *bannerBench) wait(event, key string) time.Time {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Microsecond) {
		bb.mu.Lock()
		at, ok := bb.seen[event+" "+key]
		bb.mu.Unlock()
		if ok {
			return at
		}
	}
	bb.b.Fatalf("no %s for %s", event, key)
	return time.Time{}
}

// post sends a valid banner request for a fresh number ending in suffix
// and returns the answer's call id and events URL.
func (bb *bannerBench) post(i int, suffix string) (id, events string) {
	number := fmt.Sprintf("+1555%06d%s", (time.Now().UnixNano()/1000+int64(i))%1000000, suffix)
	resp, err := bb.client.Post(bb.info.HTTPURL+"/v1/campaigns/"+bb.camp+"/click2call", "application/json",
		strings.NewReader(fmt.Sprintf(`{"number":%q,"key":%q}`, number, bb.key)))
	if err != nil {
		bb.b.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Call      struct{ ID string }
		EventsURL string
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.Call.ID == "" {
		bb.b.Fatalf("POST: %d %v", resp.StatusCode, err)
	}
	return out.Call.ID, out.EventsURL
}

func quantileMS(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(float64(len(s))*p))].Microseconds()) / 1000
}

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
	bb := startBannerBench(b, 10, "CHANNEL_CREATE")
	var post, raw []time.Duration
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		start := time.Now()
		id, _ := bb.post(i, "0002")
		post = append(post, bb.wait("CHANNEL_CREATE", id).Sub(start))

		uuid := ids.NewV4()
		start = time.Now()
		if _, err := bb.conn.SendCommand(context.Background(), command.API{Command: "originate", Background: true,
			Arguments: fmt.Sprintf("{origination_uuid=%s}sofia/gateway/carrier/1555%06d0002 &park()", uuid, i%1000000)}); err != nil {
			b.Fatal(err)
		}
		raw = append(raw, bb.wait("CHANNEL_CREATE", uuid).Sub(start))
	}
	b.StopTimer()
	b.ReportMetric(quantileMS(post, 0.5), "p50_ms")
	b.ReportMetric(quantileMS(post, 0.99), "p99_ms")
	b.ReportMetric(quantileMS(raw, 0.5), "raw_eslgo_p50_ms")
	b.ReportMetric(quantileMS(raw, 0.99), "raw_eslgo_p99_ms")
}

// BenchmarkBannerSwitchToBrowser measures, through the whole suite, the
// time from the switch's event to the visitor's status stream showing it:
// the visitor's phone starts ringing (CHANNEL_PROGRESS, read by an ESL
// listener as origination reads it) until the SSE client of the call reads
// a view whose status is CALL_STATUS_RINGING (or later). The path: origination's event
// socket, the engine's state change saved in Redis, the event on JetStream,
// the gateway's core-NATS subscription, the SSE write. Each call's stream
// is opened right after its POST, before the simulator's phone rings
// (~1 s at time scale 1); calls are paced at 20/s. The baseline of the same
// run is the naive way a status page learns it: polling the call's status
// (GET /v1/calls/{id}?token=) once a second, as the widget does when it
// cannot stream.
//
//	go test -run '^$' -bench BannerSwitchToBrowser -benchtime 200x -count 3 ./suite/
func BenchmarkBannerSwitchToBrowser(b *testing.B) {
	bb := startBannerBench(b, 1, "CHANNEL_PROGRESS")
	var mu sync.Mutex
	var sse, poll []time.Duration
	// Rung, or further: a poller may only see the call once it answered.
	ringing := func(body string) bool {
		for _, st := range []string{"RINGING", "ANSWERED", "BRIDGED", "COMPLETED", "FAILED"} {
			if strings.Contains(body, `"CALL_STATUS_`+st+`"`) {
				return true
			}
		}
		return false
	}
	var wg sync.WaitGroup
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		id, events := bb.post(i, "0001")
		wg.Add(2)
		go func() { // the stream
			defer wg.Done()
			resp, err := bb.client.Get(bb.info.HTTPURL + events)
			if err != nil {
				b.Error(err)
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && ringing(data) {
					got := time.Now()
					d := got.Sub(bb.wait("CHANNEL_PROGRESS", id))
					mu.Lock()
					sse = append(sse, d)
					mu.Unlock()
					return
				}
			}
			b.Errorf("call %s: the stream ended without ringing", id)
		}()
		go func() { // the naive poller
			defer wg.Done()
			status := bb.info.HTTPURL + strings.Replace(events, "/events?", "?", 1)
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
				resp, err := bb.client.Get(status)
				if err != nil {
					b.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if ringing(string(body)) {
					d := time.Since(bb.wait("CHANNEL_PROGRESS", id))
					mu.Lock()
					poll = append(poll, d)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if len(sse) == 0 || len(poll) == 0 {
		b.Fatal("no results")
	}
	b.ReportMetric(quantileMS(sse, 0.5), "p50_ms")
	b.ReportMetric(quantileMS(sse, 0.99), "p99_ms")
	b.ReportMetric(quantileMS(poll, 0.5), "polling_p50_ms")
	b.ReportMetric(quantileMS(poll, 0.99), "polling_p99_ms")
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
