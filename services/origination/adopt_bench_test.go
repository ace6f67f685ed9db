package origination

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ringback/ringback/services/internal/ids"
)

// BenchmarkAdoptLiveCalls puts BENCH_CALLS (500) bridged calls on the
// simulator, driven by instance A. The baseline is a StatefulSet pod's
// restart: A comes back under its own name and recovers them (Recover at
// start). Then A goes away for good, and the stack's instance B adopts
// them: adopt_ms runs from the moment A's heartbeat expired to the last call
// B owns (B looks every adoptEvery, so up to a second of it is the wait for
// B's next look). Every call must be B's and still bridged at the end.
// Run: go test -run '^$' -bench AdoptLiveCalls -benchtime 1x -count 3 ./origination/
func BenchmarkAdoptLiveCalls(b *testing.B) {
	n := envInt("BENCH_CALLS", 500)
	for range b.N {
		st := newBenchStack(b)
		ctx := context.Background()
		cfg := Config{Instance: "a-" + ids.NewV4(), HeartbeatTTL: 3 * time.Second}
		a, aSw, aClient := st.instance(b, cfg, DialPlan{})
		calls := make([]string, n)
		for k := range calls {
			c, err := a.Create(ctx, CreateRequest{AccountID: "acct-bench", Mode: ModeSimultaneous,
				First: PartySpec{Number: fmt.Sprintf("+1555%03d0000", k%1000)}, Second: PartySpec{Number: fmt.Sprintf("+1556%03d0000", k%1000)}})
			if err != nil {
				b.Fatal(err)
			}
			calls[k] = c.ID
		}
		for _, id := range calls {
			st.waitStatus(id, StatusBridged)
		}

		// The baseline: A restarts under its own name.
		aClient.Close()
		aSw.Close()
		a.Close()
		a2, a2Sw, a2Client := st.instance(b, cfg, DialPlan{})
		start := time.Now()
		if err := a2.Recover(ctx, nil); err != nil {
			b.Fatal(err)
		}
		recovered := time.Since(start)

		// A goes away for good; B adopts.
		a2Client.Close()
		a2Sw.Close()
		a2.Close()
		for {
			alive, err := st.store.Alive(ctx, cfg.Instance)
			if err != nil {
				b.Fatal(err)
			}
			if !alive {
				break
			}
			time.Sleep(time.Millisecond)
		}
		start = time.Now()
		for {
			left, err := st.store.rdb.SCard(ctx, liveKey(cfg.Instance)).Result()
			if err != nil {
				b.Fatal(err)
			}
			if left == 0 {
				break
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("%d calls not adopted after a minute", left)
			}
			time.Sleep(time.Millisecond)
		}
		adopted := time.Since(start)
		for _, id := range calls {
			c, err := st.store.Get(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if c.Owner != st.cfg.Instance || c.Status != StatusBridged {
				b.Fatalf("call %s after the adoption: owner %s status %s", id, c.Owner, c.Status)
			}
		}
		b.ReportMetric(float64(recovered.Milliseconds()), "recover_ms")
		b.ReportMetric(float64(adopted.Milliseconds()), "adopt_ms")
		b.ReportMetric(float64(n)/adopted.Seconds(), "adopted_calls/s")
	}
}
