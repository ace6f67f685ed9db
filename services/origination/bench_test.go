package origination

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/percipia/eslgo"
	"github.com/percipia/eslgo/command"
	"github.com/ringback/ringback/freeswitch/sim"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/store/storetest"
	"github.com/ringback/ringback/services/rating"
	"github.com/ringback/ringback/services/rating/tariffcsv"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkCreateCallSustained offers two-leg call requests at a fixed rate
// (BENCH_RATE calls/s for BENCH_SECONDS, open loop: a slow server shows up
// as latency, not as a lower offered rate) through the real gRPC API, and
// reports the rate served and the request latency percentiles. Every call
// really runs: both legs are originated on the simulator, answered, bridged
// and hung up (numbers ending 0002 hang up after 2 simulated seconds), with
// state in Redis and every event on JetStream.
// Run: go test -run '^$' -bench CreateCallSustained -benchtime 1x ./origination/
func BenchmarkCreateCallSustained(b *testing.B) {
	rate := envInt("BENCH_RATE", 500)
	secs := envInt("BENCH_SECONDS", 10)
	for i := 0; i < b.N; i++ {
		st := newBenchStack(b)
		if mode := os.Getenv("BENCH_RATED"); mode != "" {
			useRating(b, st, mode == "prepaid")
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		gs := grpc.NewServer()
		originationv1.RegisterCallServiceServer(gs, &CallServer{Engine: st.engine, Redis: st.store.rdb})
		go gs.Serve(lis)
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		client := originationv1.NewCallServiceClient(conn)
		ctx := metadata.AppendToOutgoingContext(context.Background(), AccountHeader, "acct-bench")

		total := rate * secs
		lat := make([]time.Duration, total)
		var errs atomic.Int64
		var wg sync.WaitGroup
		interval := time.Second / time.Duration(rate)
		start := time.Now()
		b.ResetTimer()
		for n := 0; n < total; n++ {
			if d := time.Until(start.Add(time.Duration(n) * interval)); d > 0 {
				time.Sleep(d)
			}
			wg.Add(1)
			go func(n int) {
				defer wg.Done()
				t0 := time.Now()
				_, err := client.CreateCall(ctx, &originationv1.CreateCallRequest{
					First:  &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: fmt.Sprintf("+1555%06d0002", n%1000000)}},
					Second: &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: fmt.Sprintf("+1777%06d0002", n%1000000)}},
				})
				lat[n] = time.Since(t0)
				if err != nil {
					errs.Add(1)
				}
			}(n)
		}
		wg.Wait()
		elapsed := time.Since(start)
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)]) / float64(time.Millisecond) }
		b.ReportMetric(float64(total)/elapsed.Seconds(), "calls/s")
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(float64(errs.Load()), "errors")
		b.StopTimer()
		// End to end: every call dialed, bridged, hung up and recorded. The
		// calls' own length (2 simulated s, 40 ms real) is part of it.
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if live, _ := st.store.LiveForAccount(context.Background(), "acct-bench"); len(live) == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if live, _ := st.store.LiveForAccount(context.Background(), "acct-bench"); len(live) != 0 {
			b.Fatalf("%d calls still live 60 s after the last request", len(live))
		}
		b.ReportMetric(float64(total)/time.Since(start).Seconds(), "completed-calls/s")
		conn.Close()
		gs.Stop()
	}
}

// useRating puts a real rating service (its own PostgreSQL database, the
// stack's NATS) in front of every leg, as in production: BENCH_RATED=postpaid
// authorizes both legs of every call before dialing; BENCH_RATED=prepaid
// also reserves each answered leg's time and settles it from its hangup
// event.
func useRating(b *testing.B, st *stack, prepaid bool) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := natsbus.Connect(ctx, st.nc.ConnectedUrl(), "rating-bench", log, natsbus.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bus.Close)
	svc, err := rating.NewService(ctx, rating.ServiceConfig{SyncInterval: time.Hour, ImportMaxRows: 1000, MaxCallDuration: 4 * time.Hour},
		rating.Deps{DB: storetest.NewDB(b), Bus: bus}, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(svc.Close)
	t, err := svc.Store.CreateTariff(ctx, "bench", "", "USD")
	if err != nil {
		b.Fatal(err)
	}
	res, err := tariffcsv.Parse(strings.NewReader("prefix,destination,rate_per_minute,min_seconds,increment_seconds\n1,US,0.01,6,6\n1555,US test,0.02,1,1\n"), tariffcsv.Options{})
	if err != nil || res.ErrorCount > 0 {
		b.Fatal(err, res.Errors)
	}
	if t, err = svc.Store.ImportRates(ctx, t.ID, rating.ImportReplace, res.Rates); err != nil {
		b.Fatal(err)
	}
	if err := svc.Rater.PutCompiled(t, res.Rates); err != nil {
		b.Fatal(err)
	}
	mode := rating.ModePostpaid
	if prepaid {
		mode = rating.ModePrepaid
		if _, _, err := svc.Store.TopUp(ctx, "acct-bench", 1_000_000_000_000, "bench", ""); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := svc.Store.UpdateBilling(ctx, "acct-bench", rating.BillingChange{TariffID: &t.ID, Mode: &mode}); err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	svc.Register(gs)
	go gs.Serve(lis)
	b.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	st.engine.UseRater(RatingClient{C: ratingv1.NewRatingServiceClient(conn)})
}

// BenchmarkBareEslgoOriginate is the baseline of the same run: a bare eslgo
// v1.5.0 `bgapi originate` loop against the same simulator, 64 goroutines,
// nothing else (no state, no events, no API). One two-leg call costs two
// originates, so compare calls/s with half of this.
func BenchmarkBareEslgoOriginate(b *testing.B) {
	s, err := sim.Start(context.Background(), sim.Config{ESLAddr: "127.0.0.1:0", ControlAddr: "-", TimeScale: 50})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	conn, err := eslgo.Dial(s.ESLAddr(), "ClueCon", func() {})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var n atomic.Int64
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			_, err := conn.SendCommand(context.Background(), command.API{Command: "originate",
				Arguments: fmt.Sprintf("sofia/gateway/carrier/1555%06d0002 &park()", i%1000000), Background: true})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "originates/s")
}
