package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/natsbus/natstest"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// The delivery benchmarks (docs/benchmarks.md): call events are published
// on the CALLS stream of an in-process NATS server, with occurred_at set
// to the moment each is published, and a loopback receiver records when
// each delivery's first attempt arrives. Everything but PostgreSQL runs in
// the benchmark's process, receiver and publishers included, so the
// figures are those of one machine doing all of it.
//
//	go test -run '^$' -bench 'DeliveryThroughput' -benchtime 20000x ./webhook/
//	go test -run '^$' -bench 'DeliveryPaced|StalledNeighbour' -benchtime 1x ./webhook/
//	go test -run '^$' -bench 'NaiveDelivery' -benchtime 2000x ./webhook/
//
// Reported: deliveries/s (first attempts over the time from the first
// publish to the last first attempt), p50-ms and p99-ms (event occurred_at
// to its first attempt's arrival at the receiver).

// Offered load of the paced benchmarks.
const (
	pacedRate     = 3000 // events/s
	pacedFor      = 5 * time.Second
	neighbourRate = 1500 // events/s per account
	// neighbourFor is shorter than the stall, so that no stalled attempt
	// times out (and frees its slot) during the run.
	neighbourFor = 10 * time.Second
	stall        = 30 * time.Second
)

// benchEnv is the service's production configuration where testEnv
// shortens it: a lease renewed every 20 s and a poll every 500 ms, not
// every second and 100 ms.
func benchEnv() map[string]string {
	return map[string]string{
		"RINGBACK_WEBHOOK_BATCH":         "500",
		"RINGBACK_WEBHOOK_BATCH_WAIT":    "10ms",
		"RINGBACK_WEBHOOK_LEASE":         "1m",
		"RINGBACK_WEBHOOK_POLL_INTERVAL": "500ms",
	}
}

// BenchmarkDeliveryThroughput publishes b.N events (calls of about a dozen
// events, 8 publishers with 64 calls in progress each) as fast as the
// publishers can and waits for the receiver to have every first attempt.
// The publishers outrun delivery, so its percentiles are mostly the
// backlog's: the latency to quote is BenchmarkDeliveryPaced's.
func BenchmarkDeliveryThroughput(b *testing.B) {
	const account = "acct-a"
	lanes, _ := benchLanes(b.N, 8, 64, account)
	h := startHarness(b, benchEnv())
	recv := startBenchReceiver(b, b.N, 0)
	w, _ := h.subscribe(b, account, &webhookv1.Webhook{Url: recv.URL})
	b.ResetTimer()
	start := time.Now()
	publishLanes(b, h.bus, lanes, 0)
	recv.wait(b, 5*time.Minute)
	b.StopTimer()
	recv.report(b, start)
	reportStages(b, h.st.DB, w.GetId(), b.N)
}

// BenchmarkDeliveryPaced offers pacedRate events/s for pacedFor (b.N is
// not used) and reports what was achieved.
func BenchmarkDeliveryPaced(b *testing.B) {
	const account = "acct-a"
	n := int(pacedRate * pacedFor.Seconds())
	const publishers = 4
	// Each publisher has a tenth of a second's calls in progress, so a
	// call's events come about 100 ms apart, as in callEvents.
	lanes, _ := benchLanes(n, publishers, pacedRate/publishers/10, account)
	h := startHarness(b, benchEnv())
	recv := startBenchReceiver(b, n, 0)
	w, _ := h.subscribe(b, account, &webhookv1.Webhook{Url: recv.URL})
	b.ResetTimer()
	start := time.Now()
	publishLanes(b, h.bus, lanes, pacedRate/publishers)
	published := time.Since(start)
	recv.wait(b, 2*time.Minute)
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(n)/published.Seconds(), "published/s")
	recv.report(b, start)
	reportStages(b, h.st.DB, w.GetId(), n)
}

// BenchmarkDeliveryStalledNeighbour offers neighbourRate events/s to each
// of two accounts for neighbourFor (b.N is not used) and reports account
// B's deliveries: "healthy" with both receivers acking at once, "stalled"
// with A's receiver answering nothing for 30 s (timeout_ms 30000), which
// must not hold B back.
func BenchmarkDeliveryStalledNeighbour(b *testing.B) {
	for _, tc := range []struct {
		name   string
		stallA time.Duration
	}{
		{"healthy", 0},
		{"stalled", stall},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const publishers = 4
			n := int(2 * neighbourRate * neighbourFor.Seconds())
			lanes, perAccount := benchLanes(n, publishers, 2*neighbourRate/publishers/10, "acct-a", "acct-b")
			h := startHarness(b, benchEnv())
			recvA := startBenchReceiver(b, perAccount["acct-a"], tc.stallA)
			recvB := startBenchReceiver(b, perAccount["acct-b"], 0)
			h.subscribe(b, "acct-a", &webhookv1.Webhook{Url: recvA.URL, TimeoutMs: int32(stall / time.Millisecond)})
			wb, _ := h.subscribe(b, "acct-b", &webhookv1.Webhook{Url: recvB.URL})
			b.ResetTimer()
			start := time.Now()
			publishLanes(b, h.bus, lanes, 2*neighbourRate/publishers)
			published := time.Since(start)
			recvB.wait(b, 2*time.Minute)
			b.StopTimer()
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(n)/published.Seconds(), "published/s")
			recvB.report(b, start)
			b.ReportMetric(float64(recvA.firsts()), "A-first-attempts")
			reportStages(b, h.st.DB, wb.GetId(), perAccount["acct-b"])
		})
	}
}

// BenchmarkNaiveDelivery is the baseline of BenchmarkDeliveryThroughput:
// the obvious implementation (naiveSender), measured the same way.
func BenchmarkNaiveDelivery(b *testing.B) {
	const account = "acct-a"
	lanes, _ := benchLanes(b.N, 8, 64, account)
	recv := startBenchReceiver(b, b.N, 0)
	bus := startNaiveSender(b, account, recv.URL)
	b.ResetTimer()
	start := time.Now()
	publishLanes(b, bus, lanes, 0)
	recv.wait(b, 10*time.Minute)
	b.StopTimer()
	recv.report(b, start)
}

// benchLanes returns n call events for publishers lanes, and how many are
// of each account: whole calls (callEvents) of the accounts in turn, each
// lane interleaving window calls at a time (a call's events in order),
// cut to n events.
func benchLanes(n, lanes, window int, accounts ...string) ([][]*eventsv1.CallEvent, map[string]int) {
	calls := make([][][]*eventsv1.CallEvent, lanes)
	for i, total := 0, 0; total < n; i++ {
		evs := callEvents(callSpec{Account: accounts[i%len(accounts)]})
		calls[i%lanes] = append(calls[i%lanes], evs)
		total += len(evs)
	}
	out := make([][]*eventsv1.CallEvent, lanes)
	total := 0
	for l, cs := range calls {
		for w := 0; w < len(cs); w += window {
			group := cs[w:min(w+window, len(cs))]
			for i := 0; ; i++ {
				more := false
				for _, c := range group {
					if i < len(c) {
						out[l], more = append(out[l], c[i]), true
					}
				}
				if !more {
					break
				}
			}
		}
		total += len(out[l])
	}
	// The last events of the lanes' last calls go: a call's first events
	// stay, in order.
	for total > n {
		for l := range out {
			if total > n && len(out[l]) > 0 {
				out[l] = out[l][:len(out[l])-1]
				total--
			}
		}
	}
	perAccount := map[string]int{}
	for _, lane := range out {
		for _, ev := range lane {
			perAccount[ev.GetAccountId()]++
		}
	}
	return out, perAccount
}

// publishLanes publishes each lane's events in order, the lanes at once,
// each at rate events/s (0: as fast as it can), setting each event's
// occurred_at to the moment it is published.
func publishLanes(b *testing.B, bus *natsbus.Bus, lanes [][]*eventsv1.CallEvent, rate float64) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	errs := make(chan error, len(lanes))
	var wg sync.WaitGroup
	for _, lane := range lanes {
		wg.Go(func() {
			start := time.Now()
			for i, ev := range lane {
				if rate > 0 {
					if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
						time.Sleep(d)
					}
				}
				ev.OccurredAt = timestamppb.Now()
				data, err := proto.Marshal(ev)
				if err == nil {
					_, err = bus.Publish(ctx, subjectOf(ev), ev.GetEventId(), data)
				}
				if err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("publishing: %v", err)
	}
}

// benchReceiver is a webhook receiver that keeps, per delivery, only when
// its first attempt arrived and how long after the event that was: cheap
// enough not to be what is measured.
type benchReceiver struct {
	URL   string
	stall time.Duration
	quit  chan struct{}

	mu    sync.Mutex
	seen  map[string]bool
	lat   []time.Duration
	last  time.Time
	want  int
	done  chan struct{}
	wrong int // bodies without a readable timestamp
}

// startBenchReceiver starts a receiver expecting want deliveries that
// answers 200 at once or, with stall, after stall. It is closed when b
// ends, a stalled request let go first.
func startBenchReceiver(b testing.TB, want int, stall time.Duration) *benchReceiver {
	r := &benchReceiver{stall: stall, quit: make(chan struct{}), seen: make(map[string]bool, want),
		lat: make([]time.Duration, 0, want), want: want, done: make(chan struct{})}
	if want == 0 {
		close(r.done)
	}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	b.Cleanup(srv.Close)
	b.Cleanup(func() { close(r.quit) })
	r.URL = srv.URL + "/hook"
	return r
}

// timestampKey starts the native body's top-level timestamp (the event's
// occurred_at), which comes before the event's own fields.
var timestampKey = []byte(`"timestamp":"`)

func (r *benchReceiver) serve(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(req.Body)
	var occurred time.Time
	if i := bytes.Index(body, timestampKey); i >= 0 {
		rest := body[i+len(timestampKey):]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			occurred, _ = time.Parse(time.RFC3339Nano, string(rest[:j]))
		}
	}
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	if !r.seen[id] {
		r.seen[id] = true
		if occurred.IsZero() {
			r.wrong++
		}
		r.lat = append(r.lat, at.Sub(occurred))
		r.last = at
		if len(r.lat) == r.want {
			close(r.done)
		}
	}
	r.mu.Unlock()
	if r.stall > 0 {
		select {
		case <-time.After(r.stall):
		case <-r.quit:
		case <-req.Context().Done():
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (r *benchReceiver) firsts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lat)
}

// wait waits for every expected delivery's first attempt.
func (r *benchReceiver) wait(b *testing.B, timeout time.Duration) {
	b.Helper()
	select {
	case <-r.done:
	case <-time.After(timeout):
		b.Fatalf("after %v the receiver has %d of %d deliveries", timeout, r.firsts(), r.want)
	}
}

// report reports the deliveries/s since start and the percentiles of the
// time from an event to its first attempt.
func (r *benchReceiver) report(b *testing.B, start time.Time) {
	b.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wrong > 0 {
		b.Fatalf("%d deliveries without a readable timestamp", r.wrong)
	}
	lat := slices.Clone(r.lat)
	slices.Sort(lat)
	pct := func(q float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(math.Ceil(q*float64(len(lat)))) - 1
		return float64(lat[max(i, 0)]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(len(lat))/r.last.Sub(start).Seconds(), "deliveries/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// reportStages reports, from the delivery log of subscription sub (n
// deliveries), where the time to a first attempt went: ingest-p50-ms and
// ingest-p99-ms from occurred_at to the ingest batch that wrote the
// delivery (JetStream, batching, waiting for an ingester), dispatch-p50-ms
// and dispatch-p99-ms from there to the first attempt's start (the ingest
// transaction, the order gate, waiting for the call's previous event and
// for a request slot).
func reportStages(b *testing.B, db *pgxpool.Pool, sub string, n int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The receiver has the attempts before they are written.
	for {
		var logged int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM webhook.attempts a JOIN webhook.deliveries d ON d.id = a.delivery_id
			WHERE d.subscription_id = $1 AND a.number = 1`, sub).Scan(&logged); err != nil {
			b.Fatal(err)
		}
		if logged >= n {
			break
		}
		select {
		case <-ctx.Done():
			b.Fatalf("%d of %d first attempts logged", logged, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	var ingest, dispatch []float64
	if err := db.QueryRow(ctx, `SELECT
			percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM d.created_at - d.occurred_at)),
			percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM a.started_at - d.created_at))
		FROM webhook.deliveries d JOIN webhook.attempts a ON a.delivery_id = d.id AND a.number = 1
		WHERE d.subscription_id = $1`, sub).Scan(&ingest, &dispatch); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(ingest[0]*1000, "ingest-p50-ms")
	b.ReportMetric(ingest[1]*1000, "ingest-p99-ms")
	b.ReportMetric(dispatch[0]*1000, "dispatch-p50-ms")
	b.ReportMetric(dispatch[1]*1000, "dispatch-p99-ms")
}

// naiveSender is the obvious webhook sender, the baseline: one JetStream
// consumer handling one event at a time, which stores the delivery,
// signs and posts it, waits for the answer, records it and only then acks
// (so it loses nothing either, and keeps each call's order).
type naiveSender struct {
	db   *pgxpool.Pool
	sub  *Subscription
	key  []byte
	http *http.Client
}

// startNaiveSender runs a naiveSender for a native subscription of account
// to url on a database and NATS server of its own, and returns the bus to
// publish the events on.
func startNaiveSender(b *testing.B, account, url string) *natsbus.Bus {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := natstest.Start(b)
	pool, err := store.Open(ctx, storetest.NewDatabase(b), store.Options{AppName: "webhook-naive"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := store.Migrate(ctx, pool, "webhook", Migrations()); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	sub := &Subscription{
		ID: ids.NewV7(), AccountID: account, URL: url, Format: webhookv1.WebhookFormat_WEBHOOK_FORMAT_NATIVE,
		Enabled: true, TimeoutMS: DefaultTimeoutMS, MaxConcurrency: 1, Secret: NewSecret(), CreatedAt: now, UpdatedAt: now,
	}
	if err := (&Store{DB: pool}).CreateSubscription(ctx, sub, 50); err != nil {
		b.Fatal(err)
	}
	key, _ := parseSecret(sub.Secret)
	s := &naiveSender{db: pool, sub: sub, key: key,
		http: &http.Client{Timeout: time.Duration(sub.TimeoutMS) * time.Millisecond}}
	bus, err := natsbus.Connect(ctx, ns.URL(), "webhook-naive", quietLog(), natsbus.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bus.Close)
	if err := bus.EnsureStream(ctx, natsbus.Calls(0)); err != nil {
		b.Fatal(err)
	}
	c, err := bus.Consume(ctx, natsbus.ConsumerSpec{Stream: natsbus.CallsStream, Durable: "naive", MaxDeliver: -1, Workers: 1}, s.handle)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return bus
}

// handle delivers one event.
func (s *naiveSender) handle(ctx context.Context, m natsbus.Msg) error {
	ev := &eventsv1.CallEvent{}
	if err := proto.Unmarshal(m.Data, ev); err != nil {
		return natsbus.Permanent(err)
	}
	body, err := NativeBody(ev)
	if err != nil {
		return natsbus.Permanent(err)
	}
	dbctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// A redelivered event finds its row.
	var id string
	err = s.db.QueryRow(dbctx, `INSERT INTO webhook.deliveries (id, subscription_id, account_id, call_id, event_id,
			event_type, seq, occurred_at, name, payload, next_attempt_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), now())
		ON CONFLICT (subscription_id, event_id) DO UPDATE SET attempts = webhook.deliveries.attempts
		RETURNING id`,
		ids.NewV7(), s.sub.ID, ev.GetAccountId(), ev.GetCallId(), ev.GetEventId(), int16(ev.GetType()), int32(ev.GetSequence()),
		ev.GetOccurredAt().AsTime(), EventName(ev.GetType()), body).Scan(&id)
	if err != nil {
		return fmt.Errorf("store delivery of event %s: %w", ev.GetEventId(), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.sub.URL, bytes.NewReader(body))
	if err != nil {
		return natsbus.Permanent(err)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(s.key, id, ts, body))
	status := 0
	resp, err := s.http.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		status = resp.StatusCode
	}
	ok := status >= 200 && status <= 299
	if _, err := s.db.Exec(dbctx, `UPDATE webhook.deliveries SET state = CASE WHEN $2 THEN 2 ELSE 1 END,
			attempts = attempts + 1, last_status = $3, delivered_at = CASE WHEN $2 THEN now() END
		WHERE id = $1`, id, ok, status); err != nil {
		return fmt.Errorf("record delivery %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("deliver %s: status %d, %v", id, status, err)
	}
	return nil
}
