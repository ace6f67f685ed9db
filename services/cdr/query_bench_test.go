package cdr

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// The 10-million-row query benchmark keeps its table in a database of its
// own, ringback_bench_cdr, filled once (a few minutes) and reused by later
// runs. It runs only when CDR_BENCH_ROWS is set (10000000 for the recorded
// figure):
//
//	CDR_BENCH_ROWS=10000000 go test -run XXX -bench ListFirstPage -benchtime 200x ./cdr/
const benchDB = "ringback_bench_cdr"

// Accounts of the benchmark table: "big" holds 90% of the rows over 90
// days, "small" the rest.
const (
	benchBig   = "bench-big"
	benchSmall = "bench-small"
	benchDays  = 90
)

func benchStore(b *testing.B) (*Store, int) {
	b.Helper()
	rows := envInt("CDR_BENCH_ROWS")
	if rows <= 0 {
		b.Skip("set CDR_BENCH_ROWS (e.g. 10000000) to run the query benchmarks")
	}
	ctx := context.Background()
	admin := storetest.AdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		b.Fatal(err)
	}
	var exists bool
	_ = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, benchDB).Scan(&exists)
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+benchDB); err != nil {
			b.Fatal(err)
		}
	}
	conn.Close(ctx)
	u, _ := url.Parse(admin)
	u.Path = "/" + benchDB
	pool, err := store.Open(ctx, u.String(), store.Options{AppName: "cdr-bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := store.Migrate(ctx, pool, "cdr", Migrations()); err != nil {
		b.Fatal(err)
	}
	st := &Store{DB: pool}
	var have int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM cdr.cdrs`).Scan(&have); err != nil {
		b.Fatal(err)
	}
	if have < rows {
		fillBench(b, st, have, rows)
	}
	return st, rows
}

// fillBench adds rows up to want, generated in PostgreSQL from one real
// encoded call (every row decodes as a whole call), a million per
// transaction.
func fillBench(b *testing.B, st *Store, have, want int) {
	b.Helper()
	ctx := context.Background()
	ev := finalEvent(benchBig, time.Now(), outcomes[0])
	call, err := proto.Marshal(ev.GetCall())
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	// Row i was created i*step before the fill's anchor, newest first.
	step := float64(benchDays*24*3600) / float64(want)
	fmt.Fprintf(os.Stderr, "filling %s with %d rows (have %d)...\n", benchDB, want-have, have)
	for lo := have; lo < want; lo += 1_000_000 {
		hi := min(lo+1_000_000, want)
		_, err := st.DB.Exec(ctx, `
INSERT INTO cdr.cdrs (call_id, account_id, created_at, answered_at, bridged_at, ended_at, status, source,
    campaign_id, failed_leg, failure_reason, hangup_cause, first_number, second_number, first_endpoint,
    second_endpoint, first_country, second_country, duration_s, billsec, cost_micros, access_fee_micros,
    currency, sequence, call)
SELECT 'bench-' || i,
       CASE WHEN i % 10 = 0 THEN $1 ELSE $2 END,
       date_trunc('day', now()) - make_interval(secs => i * $3::float8),
       NULL, NULL, date_trunc('day', now()) - make_interval(secs => i * $3::float8 - 60),
       (ARRAY[6, 6, 7, 7, 8])[1 + i % 5], 1,
       'camp-' || (i % 50), CASE WHEN i % 5 IN (2, 3) THEN 1 + i % 2 ELSE 0 END, CASE WHEN i % 5 IN (2, 3) THEN 1 + i % 7 ELSE 0 END,
       'NORMAL_CLEARING', '+1555' || lpad((i % 100000)::text, 7, '0'), '+52' || lpad((i % 977)::text, 10, '0'),
       '', CASE WHEN i % 3 = 0 THEN 'ep-' || (i % 40) ELSE '' END, 'US', CASE WHEN i % 4 = 0 THEN 'MX' ELSE 'US' END,
       60, 45, 19400, 5000, 'USD', 12, $4
FROM generate_series($5::bigint, $6::bigint - 1) AS i`, benchSmall, benchBig, step, call, lo, hi)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "  %d rows, %s\n", hi, time.Since(start).Round(time.Second))
	}
	if _, err := st.DB.Exec(ctx, `ANALYZE cdr.cdrs`); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "filled in %s\n", time.Since(start).Round(time.Second))
}

// BenchmarkListFirstPage: the first page (100 records, decoded, with
// comments looked up) of range queries over the 10-million-row table, as
// ListCdrs answers them; the baseline is the same page reached with
// OFFSET, as the carrier's ini paging does.
func BenchmarkListFirstPage(b *testing.B) {
	st, _ := benchStore(b)
	srv := &Server{Store: st}
	now := time.Now()
	ctx := tdbAs(benchBig)
	last := func(d time.Duration) *cdrv1.CdrFilter {
		return &cdrv1.CdrFilter{StartTime: timestamppb.New(now.Add(-d)), EndTime: timestamppb.New(now)}
	}
	month := 30 * 24 * time.Hour
	cases := []struct {
		name string
		req  *cdrv1.ListCdrsRequest
	}{
		{"30-days-newest", &cdrv1.ListCdrsRequest{Filter: last(month)}},
		{"30-days-oldest", &cdrv1.ListCdrsRequest{Filter: last(month), Ascending: true}},
		{"90-days-failed", &cdrv1.ListCdrsRequest{Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(now.Add(-90 * 24 * time.Hour)),
			Statuses: []originationv1.CallStatus{originationv1.CallStatus_CALL_STATUS_FAILED}}}},
		{"30-days-campaign", &cdrv1.ListCdrsRequest{Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(now.Add(-month)), CampaignId: "camp-7"}}},
		{"90-days-number", &cdrv1.ListCdrsRequest{Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(now.Add(-90 * 24 * time.Hour)), Number: "+15550012345"}}},
		{"30-days-country-MX", &cdrv1.ListCdrsRequest{Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(now.Add(-month)), Country: "MX"}}},
		{"30-days-country-none", &cdrv1.ListCdrsRequest{Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(now.Add(-month)), Country: "JP"}}},
		{"30-days-endpoint-none", &cdrv1.ListCdrsRequest{Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(now.Add(-month)), EndpointId: "ep-none"}}},
		{"baseline-offset-100000", &cdrv1.ListCdrsRequest{Filter: last(month), Offset: 100_000}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			c.req.PageSize = 100
			for b.Loop() {
				resp, err := srv.ListCdrs(ctx, c.req)
				if err != nil {
					b.Fatal(err)
				}
				if len(resp.GetCdrs()) == 0 && !strings.HasSuffix(b.Name(), "none") {
					b.Fatal("empty page")
				}
			}
		})
	}
	// The page after 1,000 pages of cursor paging: as fast as the first.
	b.Run("cursor-page-1001", func(b *testing.B) {
		req := &cdrv1.ListCdrsRequest{Filter: last(month), PageSize: 100}
		var token string
		for range 1000 {
			req.PageToken = token
			resp, err := srv.ListCdrs(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			token = resp.GetNextPageToken()
		}
		req.PageToken = token
		for b.Loop() {
			if _, err := srv.ListCdrs(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// exportSink is the server side of an export stream that counts what it
// is sent.
type exportSink struct {
	grpc.ServerStream
	ctx   context.Context
	bytes int64
	rows  int64
}

func (s *exportSink) Context() context.Context { return s.ctx }

func (s *exportSink) Send(m *cdrv1.ExportCdrsResponse) error {
	s.bytes += int64(len(m.GetChunk()))
	s.rows += int64(bytes.Count(m.GetChunk(), []byte{'\n'}))
	return nil
}

// BenchmarkExport1M: a CSV export of one million records of the
// 10-million-row table (about the last ten days of the big account),
// reporting rows/s and the peak heap while it runs: the export reads page
// by page, so memory stays flat whatever the row count.
func BenchmarkExport1M(b *testing.B) {
	st, rows := benchStore(b)
	srv := &Server{Store: st}
	// The big account has 90% of the rows spread evenly over the days.
	days := 1_000_000 / (float64(rows) * 0.9 / benchDays)
	end := time.Now()
	start := end.Add(-time.Duration(days * 24 * float64(time.Hour)))
	req := &cdrv1.ExportCdrsRequest{Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(start), EndTime: timestamppb.New(end)}}
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	var total, size int64
	began := time.Now()
	for b.Loop() {
		sink := &exportSink{ctx: tdbAs(benchBig)}
		if err := srv.ExportCdrs(req, sink); err != nil {
			b.Fatal(err)
		}
		total += sink.rows - 1
		size += sink.bytes
	}
	close(stop)
	b.ReportMetric(float64(total)/time.Since(began).Seconds(), "rows/s")
	b.ReportMetric(float64(total)/float64(b.N), "rows/export")
	b.ReportMetric(float64(size)/float64(b.N)/(1<<20), "MiB/export")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}

// BenchmarkStatistics: statistics by day over the last 30 days of the big
// account (about 3 million records), and by hour over one day (100,000),
// from the 10-million-row table.
func BenchmarkStatistics(b *testing.B) {
	st, _ := benchStore(b)
	srv := &StatisticsServer{Store: st}
	ctx := tdbAs(benchBig)
	now := time.Now()
	b.Run("30-days-by-day", func(b *testing.B) {
		req := &cdrv1.GetStatisticsRequest{Period: cdrv1.Period_PERIOD_DAY,
			Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(now.Add(-30 * 24 * time.Hour)), EndTime: timestamppb.New(now)}}
		for b.Loop() {
			if _, err := srv.GetStatistics(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1-day-by-hour", func(b *testing.B) {
		// The fill's newest records are from before today: yesterday is full.
		midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.Local)
		req := &cdrv1.GetStatisticsRequest{Period: cdrv1.Period_PERIOD_HOUR,
			Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(midnight.Add(-24 * time.Hour)), EndTime: timestamppb.New(midnight)}}
		for b.Loop() {
			if _, err := srv.GetStatistics(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
