package webhook

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/natsbus/natstest"
	"github.com/ringback/ringback/services/internal/proctest"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
	"github.com/ringback/ringback/services/webhook/webhooktest"
)

// The webhook binary is killed with SIGKILL twice while calls stream in;
// once it runs again, every event has reached the receiver at least once
// (an attempt cut short by the kill may be repeated), each call's events
// first arrived in sequence order, and every delivery is recorded as
// delivered.
func TestSIGKILLDuringLoadLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the webhook binary")
	}
	t.Parallel()
	bin := proctest.Build(t, "github.com/ringback/ringback/services/cmd/webhook")
	ns := natstest.Start(t)
	dbURL := storetest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The receiver takes a few milliseconds, so that kills land while
	// requests are in flight.
	recv := webhooktest.Start(t, func(webhooktest.Request) (int, string, time.Duration) {
		return 200, "", time.Duration(rand.IntN(5001)) * time.Microsecond
	})

	// The subscription exists before the first run: the binary loads it at
	// start.
	pool, err := store.Open(ctx, dbURL, store.Options{AppName: "webhook-kill-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := store.Migrate(ctx, pool, "webhook", Migrations()); err != nil {
		t.Fatal(err)
	}
	account := "acct-" + ids.NewV4()
	now := time.Now().UTC()
	st := &Store{DB: pool}
	if err := st.CreateSubscription(ctx, &Subscription{
		ID: ids.NewV7(), AccountID: account, URL: recv.URL, Format: webhookv1.WebhookFormat_WEBHOOK_FORMAT_NATIVE,
		Enabled: true, TimeoutMS: 5000, MaxConcurrency: 16, Secret: NewSecret(), CreatedAt: now, UpdatedAt: now,
	}, 50); err != nil {
		t.Fatal(err)
	}

	start := func() *proctest.Proc {
		return proctest.Start(t, bin, "DATABASE_URL="+dbURL, "NATS_URL="+ns.URL(),
			"RINGBACK_ADMIN_ADDR=127.0.0.1:0", "RINGBACK_GRPC_ADDR=localhost:0", "RINGBACK_LOG_LEVEL=warn",
			"RINGBACK_WEBHOOK_ALLOW_NETWORKS=127.0.0.0/8", "RINGBACK_WEBHOOK_LEASE=2s", "RINGBACK_WEBHOOK_ACK_WAIT=2s",
			"RINGBACK_WEBHOOK_POLL_INTERVAL=100ms", "RINGBACK_WEBHOOK_GAP_WAIT=30s")
	}

	bus, err := natsbus.Connect(ctx, ns.URL(), "webhook-kill-test", quietLog(), natsbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if err := bus.EnsureStream(ctx, natsbus.Calls(0)); err != nil {
		t.Fatal(err)
	}

	// 300 calls, 20 in progress at a time: a call's events are interleaved
	// with the others', each call's in order, as origination publishes them.
	const calls, window = 300, 20
	var evs []*eventsv1.CallEvent
	for w := 0; w < calls; w += window {
		var group [][]*eventsv1.CallEvent
		for range window {
			group = append(group, callEvents(callSpec{Account: account}))
		}
		for i := 0; ; i++ {
			more := false
			for _, c := range group {
				if i < len(c) {
					evs, more = append(evs, c[i]), true
				}
			}
			if !more {
				break
			}
		}
	}
	total := len(evs)

	cmd := start()
	defer func() { cmd.Kill() }()

	var published atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i, ev := range evs {
			data, err := proto.Marshal(ev)
			if err == nil {
				_, err = bus.Publish(ctx, subjectOf(ev), ev.GetEventId(), data)
			}
			if err != nil {
				done <- err
				return
			}
			published.Add(1)
			if i%20 == 19 {
				time.Sleep(50 * time.Millisecond) // a sustained load (about 400 events/s), not one burst
			}
		}
		done <- nil
	}()

	// distinct counts the deliveries that reached the receiver (there is
	// one per event: a single subscription).
	distinct := func() int {
		seen := map[string]bool{}
		for _, r := range recv.Requests() {
			seen[r.ID] = true
		}
		return len(seen)
	}
	for kills := 0; kills < 2; kills++ {
		// Kill mid-stream, once deliveries are being made.
		want := total * (kills + 1) * 3 / 10
		deadline := time.Now().Add(30 * time.Second)
		for distinct() < want && time.Now().Before(deadline) {
			cmd.Alive(t)
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("kill %d: %d of %d events delivered, %d published", kills+1, distinct(), total, published.Load())
		cmd.Kill()
		cmd = start()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Every event arrives, and every delivery is recorded as delivered.
	settled := func() (delivered, rows int64, err error) {
		err = pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = $1), count(*) FROM webhook.deliveries`,
			int16(webhookv1.DeliveryState_DELIVERY_STATE_DELIVERED)).Scan(&delivered, &rows)
		return delivered, rows, err
	}
	for {
		cmd.Alive(t)
		delivered, rows, err := settled()
		if err != nil {
			t.Fatal(err)
		}
		if n := distinct(); n == total && delivered == int64(total) && rows == int64(total) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after the kills: %d of %d events reached the receiver; %d deliveries, %d delivered",
				distinct(), total, rows, delivered)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Per call, the first arrivals of its events are in sequence order; a
	// repeat may come later (at-least-once).
	reqs := recv.Requests()
	type event struct {
		call string
		seq  float64
	}
	first := map[event]bool{}
	last := map[string]float64{}
	for _, r := range reqs {
		e := event{r.CallID, seqOf(t, r.Body)}
		if first[e] {
			continue
		}
		first[e] = true
		if e.seq < last[e.call] {
			t.Errorf("call %s: event %v first arrived after event %v", e.call, e.seq, last[e.call])
		}
		last[e.call] = e.seq
	}
	for _, ev := range evs {
		if !first[event{ev.GetCallId(), float64(ev.GetSequence())}] {
			t.Errorf("call %s: event %d never arrived", ev.GetCallId(), ev.GetSequence())
		}
	}
	if len(first) != total {
		t.Errorf("%d distinct events arrived, want %d", len(first), total)
	}
	t.Logf("%d events, %d requests: %d repeated attempts", total, len(reqs), len(reqs)-len(first))
}

// subjectOf is the subject origination publishes ev on.
func subjectOf(ev *eventsv1.CallEvent) string {
	return "calls." + ev.GetAccountId() + "." + ev.GetCallId() + "." +
		strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"))
}
