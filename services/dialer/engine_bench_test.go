package dialer

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/metadata"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
)

// benchRecords is how many records one campaign of the benchmark dials.
const benchRecords = 500

// BenchmarkEngineCampaign runs whole campaigns (benchRecords records, each
// answered at once by the fake origination) to FINISHED, one per op: claim,
// checks, CreateCall, the events back through NATS, the outcomes. The
// baseline places the same calls straight through the fake with as many at
// once as the cap, waiting for them to end: what the engine adds is the
// difference.
func BenchmarkEngineCampaign(b *testing.B) {
	for _, limit := range []int{10, 50} {
		b.Run(fmt.Sprintf("baseline/createcall/parallel=%d", limit), func(b *testing.B) {
			h := newEngHarness(b)
			h.fake.ring, h.fake.talk = 0, 0
			ctx := h.benchContext()
			for b.Loop() {
				var wg sync.WaitGroup
				sem := make(chan struct{}, limit)
				for i := range benchRecords {
					sem <- struct{}{}
					wg.Go(func() {
						defer func() { <-sem }()
						_, err := h.calls.CreateCall(ctx, &originationv1.CreateCallRequest{
							First:     &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: fmt.Sprintf("+3491%07d", i)}},
							Variables: map[string]string{VarRecord: fmt.Sprint(i), VarCampaign: "bench"},
						})
						if err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				for h.fake.liveCalls() > 0 {
					time.Sleep(time.Millisecond)
				}
			}
			b.ReportMetric(float64(benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
	// The engine's cases: calls ended at once, where the cap and the
	// engine's round trip bound the rate; and calls that ring and talk
	// (half a second in all) with many at once, as a campaign at the
	// switch's rate has them: at most cap/0.5 s = 1,000 dials/s.
	for _, tc := range []struct {
		limit, records int
		ring, talk     time.Duration
	}{
		{10, benchRecords, 0, 0},
		{50, benchRecords, 0, 0},
		{500, 6 * benchRecords, 200 * time.Millisecond, 300 * time.Millisecond},
	} {
		limit := tc.limit
		name := fmt.Sprintf("engine/cap=%d", limit)
		if tc.ring+tc.talk > 0 {
			name += fmt.Sprintf("/call=%s", tc.ring+tc.talk)
		}
		b.Run(name, func(b *testing.B) {
			h := newEngHarness(b)
			h.fake.ring, h.fake.talk = tc.ring, tc.talk
			e := h.start(b, "bench", func(c *EngineConfig) { c.Now = time.Now; c.OutcomeWorkers = 8 })
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				campaign := h.engCampaign(b, &dialerv1.Campaign{MaxConcurrentCalls: int32(limit)}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED)
				h.benchList(b, campaign, tc.records)
				b.StartTimer()
				before := processCPU()
				if _, err := h.db.Exec(context.Background(), `UPDATE dialer.campaigns SET status = 2 WHERE id = $1`, campaign); err != nil {
					b.Fatal(err)
				}
				e.Wake()
				for h.campaignStatus(b, campaign) != dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED {
					time.Sleep(time.Millisecond)
				}
				cpu += processCPU() - before
				if most := h.fake.maxLiveOf(campaign); most > limit {
					b.Fatalf("%d calls at once, cap %d", most, limit)
				}
			}
			b.ReportMetric(float64(tc.records)*float64(b.N)/b.Elapsed().Seconds(), "calls/s")
			// The CPU of the whole test process: the engine, and also the
			// in-process NATS server and the fake origination, so the
			// engine's own share is less.
			b.ReportMetric(cpu.Seconds()/b.Elapsed().Seconds(), "cores")
		})
	}
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (h *engHarness) benchContext() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), AccountHeader, engAccount, callSourceHeader, "CALL_SOURCE_DIALER")
}

// benchList inserts a READY list of n records with COPY.
func (h *engHarness) benchList(b *testing.B, campaign string, n int) {
	b.Helper()
	h.engList(b, campaign) // the list, empty
	var list string
	if err := h.db.QueryRow(context.Background(), `SELECT id::text FROM dialer.lists WHERE campaign_id = $1`, campaign).Scan(&list); err != nil {
		b.Fatal(err)
	}
	rows := make([][]any, n)
	for i := range rows {
		num := fmt.Sprintf("+3491%07d", i)
		rows[i] = []any{campaign, list, int64(i + 2), num, []string{num}, map[string]string{"Name": fmt.Sprint("n", i)}, 1}
	}
	if _, err := h.db.CopyFrom(context.Background(), pgx.Identifier{"dialer", "records"},
		[]string{"campaign_id", "list_id", "line", "raw", "numbers", "fields", "run"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkHoursNextAllowed(b *testing.B) {
	at := mustUTC("2026-03-06T17:30:00Z") // Friday evening in Madrid: the answer is Monday
	office := chours(cwin(hoursWeekdays, "09:00", "18:00"))
	b.Run("baseline/in-zone", func(b *testing.B) {
		// What any check costs: the instant in the zone and its weekday.
		loc := locations([]string{"Europe/Madrid"})[0]
		for b.Loop() {
			_ = at.In(loc).Weekday()
		}
	})
	b.Run("one-zone/allowed", func(b *testing.B) {
		t := mustUTC("2026-03-04T10:00:00Z")
		for b.Loop() {
			NextAllowed([]string{"Europe/Madrid"}, office, t)
		}
	})
	b.Run("one-zone/next", func(b *testing.B) {
		for b.Loop() {
			NextAllowed([]string{"Europe/Madrid"}, office, at)
		}
	})
	b.Run("two-zones/next", func(b *testing.B) {
		t := mustUTC("2026-03-07T02:30:00Z") // Friday evening in Boise and Los Angeles
		for b.Loop() {
			NextAllowed([]string{"America/Boise", "America/Los_Angeles"}, office, t)
		}
	})
}
