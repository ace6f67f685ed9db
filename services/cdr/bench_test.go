package cdr

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/natsbus"
)

// benchEvents makes n final events of one account, alternating outcomes.
func benchEvents(account string, n int) []*eventsv1.CallEvent {
	base := time.Now().Add(-time.Hour)
	evs := make([]*eventsv1.CallEvent, n)
	for i := range evs {
		evs[i] = finalEvent(account, base.Add(time.Duration(i)*time.Microsecond), outcomes[i%len(outcomes)])
	}
	return evs
}

// publishAt publishes events at rate per second (0: as fast as possible),
// setting each call's end to its publication time, so that a record's
// recorded_at - ended_at is the time from the hangup event to the
// committed row.
func publishAt(b *testing.B, natsURL string, evs []*eventsv1.CallEvent, rate int) {
	b.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i, ev := range evs {
		if rate > 0 {
			if due := start.Add(time.Duration(i) * time.Second / time.Duration(rate)); time.Until(due) > 0 {
				time.Sleep(time.Until(due))
			}
		}
		now := timestamppb.Now()
		ev.Call.EndedAt, ev.OccurredAt = now, now
		data, err := proto.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishAsync("calls."+ev.GetAccountId()+"."+ev.GetCallId()+".call_completed", data,
			jetstream.WithMsgID(ev.GetEventId())); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged within a minute")
	}
}

// envInt reads a benchmark knob from the environment (0 when unset).
func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

// lag reports the median and 99th percentile of recorded_at - ended_at.
func lag(b *testing.B, st *Store, account string) (p50, p99 float64) {
	b.Helper()
	err := st.DB.QueryRow(context.Background(), `
SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM recorded_at - ended_at)),
       percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM recorded_at - ended_at))
FROM cdr.cdrs WHERE account_id = $1`, account).Scan(&p50, &p99)
	if err != nil {
		b.Fatal(err)
	}
	return p50 * 1000, p99 * 1000
}

func waitRecords(b *testing.B, st *Store, account string, n int64) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		got, err := st.Count(context.Background(), account)
		if err != nil {
			b.Fatal(err)
		}
		if got == n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("records of %s never reached %d", account, n)
}

// BenchmarkIngest is the ingest capacity: b.N final events wait in the
// stream, then the cdr service (as configured in production: batches of
// 1000, two writers) drains them into PostgreSQL. Records/s is the figure;
// the load generator does not share the two cores while it is measured.
//
//	go test -run XXX -bench 'Ingest$' -benchtime 200000x ./cdr/
func BenchmarkIngest(b *testing.B) {
	account := "bench-" + ids.NewV4()
	evs := benchEvents(account, b.N)
	var start time.Time
	e := newSvcEnvAfter(b, func(_ *natsbus.Bus, natsURL string) {
		publishAt(b, natsURL, evs, 0)
		b.ResetTimer()
		start = time.Now()
	})
	waitRecords(b, e.svc.Store, account, int64(b.N))
	took := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/took.Seconds(), "records/s")
}

// BenchmarkIngestSustained publishes final events at BENCH_RATE per second
// (default 20,000) while the cdr service ingests them, and reports the
// time from each hangup event to its committed row (recorded_at -
// ended_at; the event's end is set when it is published). The publisher
// shares the two cores with NATS, the service and PostgreSQL.
//
//	go test -run XXX -bench 'IngestSustained' -benchtime 200000x ./cdr/
func BenchmarkIngestSustained(b *testing.B) {
	e := newSvcEnv(b)
	rate := envInt("BENCH_RATE")
	if rate <= 0 {
		rate = 20_000
	}
	account := "bench-" + ids.NewV4()
	evs := benchEvents(account, b.N)
	b.ResetTimer()
	start := time.Now()
	publishAt(b, e.nats.URL(), evs, rate)
	published := time.Since(start)
	waitRecords(b, e.svc.Store, account, int64(b.N))
	took := time.Since(start)
	b.StopTimer()
	p50, p99 := lag(b, e.svc.Store, account)
	b.ReportMetric(float64(b.N)/published.Seconds(), "published/s")
	b.ReportMetric(float64(b.N)/took.Seconds(), "records/s")
	b.ReportMetric(p50, "p50-lag-ms")
	b.ReportMetric(p99, "p99-lag-ms")
}

// BenchmarkIngestNaive is the baseline: the same events, one INSERT per
// event from a per-message JetStream consumer (128 workers), the usual
// first implementation.
func BenchmarkIngestNaive(b *testing.B) {
	e := newSvcEnv(b)
	e.svc.Close() // the real ingester must not take the events
	account := "naive-" + ids.NewV4()
	c, err := e.bus.Consume(context.Background(), natsbus.ConsumerSpec{
		Stream: natsbus.CallsStream, Durable: "cdr-naive", FilterSubjects: []string{"calls." + account + ".>"}, Workers: 128,
		MaxAckPending: 4096,
	}, func(ctx context.Context, m natsbus.Msg) error {
		var ev eventsv1.CallEvent
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			return nil
		}
		raw, _ := proto.Marshal(ev.GetCall())
		r, _ := RowFrom(&ev, raw)
		_, err := e.svc.Store.Insert(ctx, []Row{r})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop(context.Background())
	evs := benchEvents(account, b.N)
	b.ResetTimer()
	start := time.Now()
	publishAt(b, e.nats.URL(), evs, envInt("BENCH_RATE"))
	waitRecords(b, e.svc.Store, account, int64(b.N))
	took := time.Since(start)
	b.StopTimer()
	p50, p99 := lag(b, e.svc.Store, account)
	b.ReportMetric(float64(b.N)/took.Seconds(), "records/s")
	b.ReportMetric(p50, "p50-lag-ms")
	b.ReportMetric(p99, "p99-lag-ms")
}

// BenchmarkStoreInsert: records written straight to PostgreSQL in
// statements of BENCH_BATCH rows (default 1000), without JetStream.
//
//	go test -run XXX -bench StoreInsert -benchtime 100000x ./cdr/
func BenchmarkStoreInsert(b *testing.B) {
	st := tdbOpen(b)
	batch := envInt("BENCH_BATCH")
	if batch <= 0 {
		batch = 1000
	}
	account := "bench-" + ids.NewV4()
	rows := make([]Row, b.N)
	for i, ev := range benchEvents(account, b.N) {
		raw, _ := proto.Marshal(ev.GetCall())
		rows[i], _ = RowFrom(ev, raw)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < len(rows); i += batch {
		if _, err := st.Insert(context.Background(), rows[i:min(i+batch, len(rows))]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}
