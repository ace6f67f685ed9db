package esl_test

import (
	"context"
	"testing"
	"time"

	"github.com/ringback/ringback/freeswitch/sim"
	"github.com/ringback/ringback/freeswitch/sim/scenario"
	"github.com/ringback/ringback/services/internal/esl"
)

// benchNumber answers after 100 ms and hangs up after 5 min of simulated
// time; at scale 1000 that is 0.1 ms and 300 ms, so a benchmark measures
// the client and the socket, no leg hangs up before its originate has
// reported (which under load can take tens of ms), and live channels stay
// below max_sessions.
const benchNumber = "sofia/gateway/carrier/15550009999"

func startBenchSim(b *testing.B) *sim.Sim {
	b.Helper()
	sc := scenario.Default()
	sc.Rules = append([]scenario.Rule{{
		Match: `9999$`,
		Outcomes: []scenario.Weighted{{Weight: 1, Spec: scenario.OutcomeSpec{
			Kind: scenario.Answer, Ring: scenario.Fixed(100 * time.Millisecond), Talk: scenario.Fixed(5 * time.Minute),
		}}},
	}}, sc.Rules...)
	s, err := sim.Start(context.Background(), sim.Config{
		ESLAddr: "127.0.0.1:0", ControlAddr: "-", TimeScale: 1000, Password: password, Scenario: sc,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkOriginate: parallel originates (8 goroutines per CPU) through
// the Client, each waiting for its BACKGROUND_JOB. Baseline:
// BenchmarkOriginateRawEslgo.
func BenchmarkOriginate(b *testing.B) {
	s := startBenchSim(b)
	cfg := testConfig(s.ESLAddr())
	cfg.Events = nil // BACKGROUND_JOB only, as the raw loop subscribes
	c := dial(b, cfg, esl.Handlers{})
	ctx := context.Background()
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Originate(ctx, s.ESLAddr(), esl.OriginateRequest{Dialstring: benchNumber, Timeout: 10 * time.Minute}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAPI: parallel `api eval` round trips through the Client (two
// pipelined command connections by default). Baseline: BenchmarkAPIRawEslgo,
// which does not match replies to callers (TestEslgoConcurrentReplies
// counts the misrouted ones).
func BenchmarkAPI(b *testing.B) {
	s := startBenchSim(b)
	c := dial(b, testConfig(s.ESLAddr()), esl.Handlers{})
	ctx := context.Background()
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.API(ctx, s.ESLAddr(), "eval x"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
