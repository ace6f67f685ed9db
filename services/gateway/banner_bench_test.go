package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
)

// BenchmarkBannerRefuseAbuse: many concurrent clients over loopback HTTP
// (the real handler, real Redis) send what a flood of a public banner
// looks like: addresses over their limit (behind a trusted proxy), a wrong
// key, a page of another origin, premium and blocked numbers from fresh
// addresses. None may reach StartBannerCall. Reports req/s.
func BenchmarkBannerRefuseAbuse(b *testing.B) { benchRefuseAbuse(b, true) }

// BenchmarkBannerRefuseAbuseNaive is the baseline: the same requests with
// the campaign cache off, so each one asks origination's GetPublicCampaign
// over gRPC first, as a gateway without the cache would.
func BenchmarkBannerRefuseAbuseNaive(b *testing.B) { benchRefuseAbuse(b, false) }

func benchRefuseAbuse(b *testing.B, cached bool) {
	e := newBannerEnv(b, func(o *bannerEnvOptions) {
		o.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	e.api.campaigns.off = !cached
	c := e.campaign(func(c *originationv1.PublicCampaign) {
		c.Limits.PerIpPerHour = 3
		c.BlockedPrefixes = []string{"1999"}
		c.Challenge = originationv1.ChallengeMode_CHALLENGE_MODE_ADAPTIVE
	})
	srv := httptest.NewServer(e.h)
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := srv.URL + "/v1/campaigns/" + c.Id + "/click2call"

	body := func(number, key string) []byte {
		p, _ := json.Marshal(map[string]string{"number": number, "key": key})
		return p
	}
	good := body("+15551230486", c.PublicKey)
	kinds := []struct {
		name   string
		body   []byte
		origin string
		xff    func(n uint64) string
		want   int
	}{
		{"over the per-IP limit", good, "https://shop.example.com", func(n uint64) string { return fmt.Sprintf("198.51.100.%d", n%4) }, 429},
		{"wrong key", body("+15551230486", "pk_guess"), "https://shop.example.com", nil, 401},
		{"other origin", good, "https://evil.example", nil, 403},
		{"blocked prefix", body("+19995550123", c.PublicKey), "", freshAddr, 422},
		{"premium", body("+19005550123", c.PublicKey), "", freshAddr, 422},
	}
	send := func(kind int, n uint64) (int, error) {
		k := kinds[kind]
		req, err := http.NewRequest("POST", url, bytes.NewReader(k.body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		if k.origin != "" {
			req.Header.Set("Origin", k.origin)
		}
		if k.xff != nil {
			req.Header.Set("X-Forwarded-For", k.xff(n))
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res.StatusCode, nil
	}
	// The flooding addresses use up their allowance first.
	const warm = 4 * 3
	for i := range uint64(warm) {
		kinds[3].xff = func(uint64) string { return fmt.Sprintf("198.51.100.%d", i%4) }
		if st, err := send(3, 0); err != nil || st != 422 {
			b.Fatalf("warm-up: %d %v", st, err)
		}
	}
	kinds[3].xff = freshAddr

	var seq, wrong atomic.Uint64
	var firstWrong atomic.Value
	b.SetParallelism(16) // 16 clients per CPU
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			kind := int(n % uint64(len(kinds)))
			st, err := send(kind, n)
			if err != nil || st != kinds[kind].want {
				if wrong.Add(1) == 1 {
					firstWrong.Store(fmt.Sprintf("%s: %d %v", kinds[kind].name, st, err))
				}
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(seq.Load())/elapsed.Seconds(), "req/s")
	if n := wrong.Load(); n > 0 {
		b.Fatalf("%d answers were not the expected refusal, first %v", n, firstWrong.Load())
	}
	if n := e.fake.started.Load(); n != 0 {
		b.Fatalf("%d abusive requests reached StartBannerCall", n)
	}
	lookups := e.fake.lookupsOf(c.Id)
	b.ReportMetric(float64(lookups)/float64(seq.Load()+warm), "lookups/req")
}

var freshCounter atomic.Uint32

// freshAddr is an address no request used before (100.64.0.0/10).
func freshAddr(uint64) string {
	n := freshCounter.Add(1)
	return netip.AddrFrom4([4]byte{100, 64 + byte(n>>16&0x3f), byte(n >> 8), byte(n)}).String()
}

// BenchmarkBannerSSELatency: from publishing a CallEvent on NATS
// (JetStream, as origination does) to the visitor's SSE client reading its
// data line, through the real handler over loopback HTTP. Reports p50 and
// p99 in milliseconds, and the same run's floor: a bare core-NATS
// subscriber on the same subject (raw-nats-*).
func BenchmarkBannerSSELatency(b *testing.B) {
	e := newBannerEnv(b, withNATS)
	srv := httptest.NewServer(e.h)
	b.Cleanup(srv.Close)
	c := e.campaign()
	started := e.call(b, c, "+15551230486", shop)
	_, msgs := openStream(b, srv, started, "")
	if m, _ := nextStatus(b, msgs); m.id != "0" {
		b.Fatalf("first message %+v", m)
	}
	call := e.fake.update(started.Call.ID, func(*originationv1.Call) {})
	statuses := []originationv1.CallStatus{originationv1.CallStatus_CALL_STATUS_DIALING, originationv1.CallStatus_CALL_STATUS_RINGING}
	raw := make(chan time.Time, 16)
	unsub, err := e.bus.Subscribe("calls."+call.AccountId+"."+call.Id+".>", func([]byte) { raw <- time.Now() })
	if err != nil {
		b.Fatal(err)
	}
	defer unsub()
	var lat, rawLat []time.Duration
	seq := uint32(0)
	for b.Loop() {
		seq++
		call.Status = statuses[seq%2] // every event changes the view
		ev := &eventsv1.CallEvent{EventId: fmt.Sprintf("%s.%d", call.Id, seq), Sequence: seq, AccountId: call.AccountId,
			CallId: call.Id, Type: eventsv1.EventType_EVENT_TYPE_LEG_RINGING, Call: call}
		data, err := proto.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := e.bus.Publish(b.Context(), "calls."+call.AccountId+"."+call.Id+".leg_ringing", ev.EventId, data); err != nil {
			b.Fatal(err)
		}
		m, v := nextStatus(b, msgs)
		lat = append(lat, time.Since(t0))
		rawLat = append(rawLat, (<-raw).Sub(t0))
		if m.id != fmt.Sprint(seq) || v.Status != call.Status.String() {
			b.Fatalf("message %+v, want sequence %d", m, seq)
		}
	}
	ms := func(d []time.Duration, q float64) float64 {
		slices.Sort(d)
		return float64(d[min(len(d)-1, int(q*float64(len(d))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(ms(lat, 0.50), "p50-ms")
	b.ReportMetric(ms(lat, 0.99), "p99-ms")
	b.ReportMetric(ms(rawLat, 0.50), "raw-nats-p50-ms")
	b.ReportMetric(ms(rawLat, 0.99), "raw-nats-p99-ms")
}
