package origination

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/percipia/eslgo"
	"github.com/percipia/eslgo/command"
	"github.com/ringback/ringback/freeswitch/sim"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
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
